//! One Raft group as a node hosts it: the core, the state machine it drives, and the
//! client requests waiting on it. The node's event loop owns the shared I/O and takes
//! every group through the same steps per batch of inputs:
//!
//! ```text
//!   inputs ─▶ Replica::{on_call, step}        (core steps, requests recorded)
//!          ─▶ Replica::stage                  (effects → the shared write batch, the peer frames;
//!                                              snapshot chunks read or put aside, installs)
//!          ─▶ node: write the batch (unless a sync runs), send what needs no durability,
//!             hold the rest (`Staged`, the Synced messages) until the batch is durable
//!          ─▶ Replica::report, Replica::finish (once durable: events out, then apply the
//!                                              commits into storage, compact, serve reads)
//! ```
//!
//! The next batch may be staged while one is held: the core has moved on, and what it
//! promised goes out in order as syncs complete.
//!
//! The group's data is in storage (`group_data.rs`); snapshots stream from and into it
//! (`outgoing_snapshots.rs`, `snapshot_install.rs`).

use super::directory_reports;
use super::disk::Disk;
use super::group_data::{Applying, DataSize, Reading, Span, DATA_PARTITION};
use super::outgoing_snapshots::{OutgoingSnapshots, Source};
use super::peer_frames::PeerFrames;
use super::pending::{CallResult, Origin, Pending, Proposal};
use super::raft_store::{Applied, RaftStore};
use super::range_change::RangeChange;
use super::replicas::{self, Outcome};
use super::snapshot_install;
use super::split;
use super::split_trigger::{SplitTrigger, Want, PAGE_PAIRS_MAX};
use super::state_fetch::{StateFetch, Verdict};
use super::topology::Topology;
use super::{ClientError, ControlError, FollowerStatus, NodeConfig, NodeError, NodeEvent, NodeStatus, Observer, Wire};
use crate::codec;
use crate::io::{Storage, Transport};
use crate::keyspace::{RangeDescriptor, META_RANGE};
use crate::raft::{self, Durability, Effect, Index, Input, Payload, ProposeError, Raft};
use crate::state_machine::StateMachine;
use crate::{GroupId, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How many times `snapshot_entries_min` a leader's log may grow for its slowest follower
/// before it is cut anyway (that follower then gets a snapshot).
const LOG_KEPT_FOR_FOLLOWERS_MAX: u64 = 4;

/// Separates the forward-id stream from the Raft core's stream drawn from the same seed.
const FORWARD_ID_STREAM: u64 = 0x0046_4f52_5741_5244;
/// And the split trigger's samples' stream ("SAMPLES").
const SPLIT_SAMPLE_STREAM: u64 = 0x0053_414d_504c_4553;

/// Group 1 keeps the node's seed as it is; other groups get their own streams.
fn group_seed(seed: u64, group: GroupId) -> u64 {
    seed ^ (group - 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

pub struct Replica<M: StateMachine, V> {
    pub id: GroupId,
    node: NodeId,
    request_timeout_ms: u64,
    pending_requests_max: usize,
    snapshot_entries_min: u64,
    snapshot_chunk_bytes_max: usize,
    pub raft: Raft,
    store: RaftStore,
    /// The range the group serves, as far as it has applied (a split changes it).
    range: RangeDescriptor,
    /// The group's keys in storage: `range`'s span.
    span: Span,
    /// The range of the snapshot being received, as its chunks say.
    incoming_range: Option<RangeDescriptor>,
    /// Where the group's data is (as written to storage, synced or not).
    applied: Applied,
    /// The size of the data put aside by the snapshot transfer in progress
    /// (`snapshot_install`).
    incoming_size: DataSize,
    /// Snapshot streams to followers, while leading.
    outgoing: OutgoingSnapshots<V>,
    /// Our state lent to peers that lost theirs (`state_fetch.rs`), in any role.
    lending: OutgoingSnapshots<V>,
    /// Our own state being fetched from a peer, while it is lost.
    fetch: Option<StateFetch>,
    pub pending: Pending<M>,
    snapshots_taken: u64,
    snapshots_installed: u64,
    splits: u64,
    /// Replica moves and leadership transfers placement ordered that this replica, as its
    /// range's leader, started (`runtime/placing.rs`).
    pub(super) placement_ops: u64,
    /// When a message of the group last reached this replica (its start, before any).
    heard_ms: u64,
    /// This node's replica was removed from the range (`replicas.rs`): its records are
    /// gone, it writes nothing more, and the event loop drops it.
    removed: bool,
    /// When to split the range on its own (as its leader), and the range generation and
    /// term it counts for: a new one starts it afresh.
    split_trigger: SplitTrigger,
    trigger_epoch: (u64, raft::Term),
    /// The core's count of drift violations already reported.
    drift_violations_reported: u64,
    /// The leader as of the last batch, to notice a change.
    leader_seen: Option<NodeId>,
    /// The newest commit index staged and not yet handed to `finish`.
    commit: Option<Index>,
    /// Events since the last `stage` took them (a `finish` adds some for the next).
    staged: Vec<NodeEvent>,
    /// The meta range's only: the cluster's ranges as created, the directory before any
    /// report (`directory_reports.rs`).
    founding: Vec<RangeDescriptor>,
}

/// What one group staged in one batch, held until the batch is durable.
#[derive(Debug, Default)]
pub struct Staged {
    events: Vec<NodeEvent>,
    /// Entries committed up to here (applied by `finish`, answered after the sync).
    commit: Option<Index>,
}

impl Staged {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.commit.is_none()
    }

    /// Answers to committed entries wait for the batch's sync.
    pub fn needs_sync(&self) -> bool {
        self.commit.is_some()
    }
}

impl<M: StateMachine, V: crate::io::StorageView> Replica<M, V> {
    /// Recovers the group of `range` (as last recorded) on node `cfg.id` from `storage`
    /// (an install a crash interrupted is finished first: `snapshot_install::resume`).
    pub fn recover<S: Storage<View = V>>(
        cfg: &NodeConfig,
        range: RangeDescriptor,
        storage: &S,
        now_ms: u64,
        observer: &dyn Observer,
    ) -> Result<Self, NodeError> {
        let group = range.id;
        let store = RaftStore::new(group);
        let recovered = store.load(storage)?;
        let hard = recovered.hard;
        let snapshot = recovered.cut;
        let applied = recovered.applied;
        let snapshot_index = snapshot.as_ref().map_or(0, |(m, _)| m.index);
        let last_index = recovered.entries.last().map_or(snapshot_index, |e| e.index);
        let seed = group_seed(cfg.seed, group);
        let mut raft_cfg = cfg.raft_config(&range);
        // The configuration before any entry is the one the group started with, not the
        // range's replicas now (moves change them; found by `moves` seed 475, where two
        // restarted replicas applied a split the others refused).
        raft_cfg.voters = match store.load_founders(storage)? {
            Some(voters) => voters,
            None => cfg.keyspace.find(group).map_or(range.replicas.clone(), |r| r.replicas.clone()),
        };
        if crate::buggify!("small_windows") {
            raft_cfg.append_entries_max = 1;
            raft_cfg.inflight_appends_max = 1;
        }
        let mut raft = Raft::with_snapshot(raft_cfg, seed, now_ms, hard, snapshot, recovered.entries, applied.index)
            .map_err(|e| NodeError::Corrupt(format!("group {group}: {e}")))?;
        let fetch = recovered.lost.then(|| {
            // Dropped as corrupt (`scrub`): the log alone cannot rebuild it.
            raft.lose_state_machine();
            let peers = raft.membership().members().into_iter().filter(|&n| n != cfg.id()).collect();
            StateFetch::new(group, snapshot_index, peers)
        });
        observer.on_event(
            cfg.id(),
            group,
            NodeEvent::Recovered { term: hard.term, snapshot_index, last_index, applied_index: applied.index },
        );
        // What the log holds now, as the checkers must see it: a batch written but not
        // synced when the node died may have survived without its events being reported
        // (they wait for the sync). Found by a slow disk: `default` seeds 2 and 27 failed
        // leader completeness on entries the new leader did hold.
        for index in snapshot_index + 1..=last_index {
            let entry = raft.entry(index).expect("recovered entries are in the log");
            for event in appended_events(entry) {
                observer.on_event(cfg.id(), group, event);
            }
        }
        let range_start = range.start.clone();
        Ok(Replica {
            id: group,
            node: cfg.id(),
            request_timeout_ms: cfg.request_timeout_ms,
            pending_requests_max: cfg.pending_requests_max,
            snapshot_entries_min: cfg.snapshot_entries_min,
            snapshot_chunk_bytes_max: cfg.raft.snapshot_chunk_bytes_max,
            raft,
            store,
            span: Span::of_range(&range, cfg.keyspace.sharding()),
            range,
            incoming_range: None,
            applied,
            incoming_size: DataSize::default(),
            outgoing: OutgoingSnapshots::default(),
            lending: OutgoingSnapshots::default(),
            fetch,
            pending: Pending::new(ChaCha8Rng::seed_from_u64(seed ^ FORWARD_ID_STREAM).gen()),
            snapshots_taken: 0,
            snapshots_installed: 0,
            splits: 0,
            placement_ops: 0,
            heard_ms: now_ms,
            split_trigger: SplitTrigger::new(
                now_ms,
                cfg.split,
                cfg.keyspace.sharding(),
                range_start,
                seed ^ SPLIT_SAMPLE_STREAM,
            ),
            trigger_epoch: (0, 0),
            removed: false,
            drift_violations_reported: 0,
            leader_seen: None,
            commit: None,
            staged: Vec::new(),
            founding: if group == META_RANGE { cfg.keyspace.ranges().to_vec() } else { Vec::new() },
        })
    }

    pub fn status(&self) -> NodeStatus {
        let last_index = self.raft.last_index();
        let followers = self
            .raft
            .follower_match()
            .into_iter()
            .map(|(id, match_index)| FollowerStatus { id, match_index, lag: last_index.saturating_sub(match_index) })
            .collect();
        let membership = self.raft.membership();
        NodeStatus {
            id: self.node,
            group: self.id,
            role: self.raft.role_name(),
            term: self.raft.term(),
            leader: self.raft.leader_id(),
            voters: membership.voters.iter().copied().collect(),
            outgoing_voters: membership.outgoing.iter().copied().collect(),
            learners: membership.learners.iter().copied().collect(),
            last_index,
            commit_index: self.raft.commit_index(),
            applied_index: self.applied.index,
            followers,
            elections_started: self.raft.elections_started(),
            lease_reads: self.raft.lease_reads_served(),
            drift_violations: self.raft.drift_violations().0,
            transfer_target: self.raft.transfer_target(),
            snapshot_index: self.raft.snapshot_meta().index,
            snapshots_taken: self.snapshots_taken,
            snapshots_installed: self.snapshots_installed,
            keys: self.applied.size.keys,
            bytes: self.applied.size.bytes,
            pending_requests: self.pending.len() as u64,
            rebuilding: self.raft.awaiting_snapshot(),
            splits: self.splits,
            placement_ops: self.placement_ops,
            ops_per_s: if self.raft.is_leader() { self.ops_per_s() } else { 0 },
        }
    }

    /// A client's command for this group: a read goes through ReadIndex (or the lease),
    /// a write into the log; on a follower either is forwarded to the leader.
    pub fn on_call(
        &mut self,
        now_ms: u64,
        command: M::Command,
        origin: Origin<M>,
        transport: &impl Transport,
        observer: &dyn Observer,
    ) {
        if self.pending.len() >= self.pending_requests_max {
            origin.answer(transport, Err(ClientError::Busy));
            return;
        }
        if self.raft.is_leader() {
            self.split_trigger.observe(now_ms, &M::keys(&command));
        }
        let deadline_ms = now_ms + self.request_timeout_ms;
        if M::is_read_only(&command) {
            // ReadIndex: confirmed by a round of heartbeats, not written to the log.
            let id = self.pending.add_read(command, origin, deadline_ms);
            let by_lease = self.raft.lease_reads_served();
            match self.raft.read_index(now_ms, id) {
                Err(e) => {
                    let read = self.pending.reads.remove(&id).expect("just added");
                    self.refused(read.command, read.origin, deadline_ms, e, transport);
                }
                Ok(()) if self.raft.lease_reads_served() > by_lease => {
                    let event = NodeEvent::LeaseRead { commit_index: self.raft.commit_index() };
                    observer.on_event(self.node, self.id, event);
                }
                Ok(()) => {}
            }
            return;
        }
        match self.raft.propose(M::encode(&command)) {
            Ok((index, term)) => {
                let previous = self.pending.proposals.insert(index, Proposal { term, origin, deadline_ms });
                if let Some(p) = previous {
                    // An older proposal of ours left the log at this index. It may still be
                    // committed by a later leader that holds it (Raft Figure 8), so its
                    // outcome is unknown, not failed.
                    p.origin.answer(transport, Err(ClientError::Displaced));
                }
            }
            Err(e) => self.refused(command, origin, deadline_ms, e, transport),
        }
    }

    /// Proposes to split the range before user key `key` (the leader only). Returns the
    /// index of the split entry; it takes effect when applied (`split.rs`).
    pub fn propose_split(&mut self, key: &[u8]) -> Result<Index, ControlError> {
        let at = self.span.sharding.split_point(key);
        // The meta range is never cut: the directory is one range's (`crate::meta`).
        let meta = self.id == META_RANGE;
        if meta || at.as_slice() <= self.span.start.as_slice() || !self.span.holds(&at) {
            return Err(ControlError::SplitOutsideRange { group: self.id, key: key.to_vec() });
        }
        let membership = self.raft.membership();
        if !membership.outgoing.is_empty() || !membership.learners.is_empty() {
            return Err(ControlError::SplitDuringChange { group: self.id });
        }
        let (index, _) = self.raft.propose_range(RangeChange::Split { at }.encode())?;
        Ok(index)
    }

    /// The cluster's ranges as created (the meta range's replica only; empty for others).
    pub fn founding(&self) -> &[RangeDescriptor] {
        &self.founding
    }

    /// Proposes a report of `ranges` to the directory (the meta range's leader only).
    pub fn propose_report(&mut self, ranges: Vec<RangeDescriptor>) -> Result<Index, ControlError> {
        debug_assert_eq!(self.id, META_RANGE, "only the meta range keeps the directory");
        let (index, _) = self.raft.propose_range(RangeChange::Report { ranges }.encode())?;
        Ok(index)
    }

    /// What the split trigger wants now (`split_trigger.rs`); `eligible` as its contract
    /// says. A `Want::Read` is answered with `read_for_split`.
    pub fn poll_split(&mut self, now_ms: u64, eligible: bool) -> Option<Want> {
        if self.id == META_RANGE {
            return None;
        }
        let epoch = (self.range.generation, self.raft.term());
        if epoch != self.trigger_epoch {
            self.trigger_epoch = epoch;
            self.split_trigger.reset(now_ms, self.span.start.clone());
        }
        self.split_trigger.poll(now_ms, self.applied.size, eligible)
    }

    /// Reads the page of the range's data from stored key `from` that the split trigger
    /// asked for, and hands it over.
    pub fn read_for_split(
        &mut self,
        now_ms: u64,
        storage: &impl crate::io::StorageView,
        from: &[u8],
    ) -> Result<(), crate::io::StorageError> {
        let page = storage.scan_range(DATA_PARTITION, from, self.span.end.as_deref(), PAGE_PAIRS_MAX)?;
        self.split_trigger.on_page(now_ms, &page);
        Ok(())
    }

    /// Requests a second this replica took as leader in the last full second.
    pub fn ops_per_s(&self) -> u64 {
        self.split_trigger.ops_per_s()
    }

    /// Whether the range, as applied here, holds every one of `keys` (user keys).
    pub fn holds_keys(&self, keys: &[&[u8]]) -> bool {
        self.span.holds_keys(keys)
    }

    /// The size of the range's data as applied here.
    pub fn size(&self) -> DataSize {
        self.applied.size
    }

    /// The index the group's data is at.
    pub fn applied_index(&self) -> Index {
        self.applied.index
    }

    /// The range the group serves, as far as it has applied.
    pub fn range(&self) -> &RangeDescriptor {
        &self.range
    }

    /// The core refused a proposal or read: forward it to the leader we know, or answer.
    fn refused(
        &mut self,
        command: M::Command,
        origin: Origin<M>,
        deadline_ms: u64,
        e: ProposeError,
        transport: &impl Transport,
    ) {
        match e {
            // A transfer lasts an election timeout at most: a retry soon succeeds.
            ProposeError::Backpressure | ProposeError::Transferring { .. } => {
                origin.answer(transport, Err(ClientError::Busy))
            }
            ProposeError::NotLeader { leader_hint: Some(leader) } if leader != self.node => {
                let req_id = self.pending.add_forward(origin, deadline_ms, leader, M::is_read_only(&command));
                let request = Wire::Request { group: self.id, req_id, command: M::encode(&command) };
                transport.send(leader, codec::encode(&request));
            }
            ProposeError::NotLeader { .. } => origin.answer(transport, Err(ClientError::NoLeader)),
        }
    }

    /// Callers whose requests passed their deadline hear `Timeout`.
    pub fn expire(&mut self, now_ms: u64, transport: &impl Transport) {
        self.outgoing.expire(now_ms);
        self.lending.expire(now_ms);
        if let Some((to, ask)) = self.fetch.as_mut().and_then(|f| f.poll(now_ms)) {
            transport.send(to, codec::encode(&ask));
        }
        for origin in self.pending.expire(now_ms) {
            origin.answer(transport, Err(ClientError::Timeout));
        }
    }

    /// Applies the core's effects to the shared write batch and peer frames, in order, and
    /// answers what needs no durability. Returns what waits for the batch: its events
    /// (`report`, once the batch is written, and synced where due: a write that fails
    /// poisons the node, and its events must not claim otherwise) and its commit
    /// (`finish`).
    pub fn stage<S: Storage<View = V>>(
        &mut self,
        now_ms: u64,
        disk: &mut Disk<S>,
        topology: &mut Topology,
        frames: &mut PeerFrames,
        transport: &impl Transport,
    ) -> Result<Staged, NodeError> {
        if self.removed {
            return Ok(Staged::default());
        }
        if let (count, Some((peer, v))) = self.raft.drift_violations() {
            if count > self.drift_violations_reported {
                self.drift_violations_reported = count;
                self.staged.push(NodeEvent::ClockDriftExceeded { peer, ratio_ppm: v.ratio_ppm });
            }
        }
        // A chunk read for a follower steps the core again, which sends it: drain until
        // the core has nothing more to say.
        loop {
            let effects = self.raft.drain_effects();
            if effects.is_empty() {
                break;
            }
            self.stage_effects(now_ms, effects, disk, topology, frames, transport)?;
        }
        Ok(Staged { events: std::mem::take(&mut self.staged), commit: self.commit.take() })
    }

    #[allow(clippy::too_many_arguments)] // the effects and every place they go
    fn stage_effects<S: Storage<View = V>>(
        &mut self,
        now_ms: u64,
        effects: Vec<Effect>,
        disk: &mut Disk<S>,
        topology: &mut Topology,
        frames: &mut PeerFrames,
        transport: &impl Transport,
    ) -> Result<(), NodeError> {
        for effect in effects {
            self.store.stage(&effect, &mut disk.batch);
            match effect {
                Effect::PersistHardState(_) => {}
                Effect::TruncateLog { from, .. } => self.staged.push(NodeEvent::Truncated { from }),
                Effect::AppendLog(entries) => {
                    for e in &entries {
                        self.staged.extend(appended_events(e));
                    }
                }
                Effect::Send { envelope, after } => frames.push(envelope, after == Durability::Synced),
                Effect::Commit { index } => {
                    // Reported in order with the appends around it (a leader appends the
                    // next configuration right after its joint one commits).
                    self.staged.push(NodeEvent::Committed { index });
                    self.commit = Some(index);
                }
                Effect::BecameLeader { term } => self.staged.push(NodeEvent::BecameLeader { term }),
                Effect::ReadSnapshotChunk { to, meta, chunk } => {
                    let applied = self.applied;
                    let (raft, range) = (&self.raft, &self.range);
                    let source = || {
                        Ok(Source {
                            meta: raft::SnapshotMeta { index: applied.index, term: applied.term },
                            membership: raft.membership_at(applied.index),
                            range: range.clone(),
                            view: disk.storage.view()?,
                        })
                    };
                    let read = self.outgoing.read(now_ms, to, meta, chunk, self.snapshot_chunk_bytes_max, source)?;
                    self.raft.step(now_ms, Input::SnapshotChunk(read));
                }
                Effect::SnapshotChunk { chunk, data, .. } => self.put_aside(disk, chunk, &data)?,
                Effect::InstallSnapshot { meta, .. } => {
                    // The log cut is staged above; the data follows it now.
                    let applied = Applied { index: meta.index, term: meta.term, size: self.incoming_size };
                    let bug = self.raft.config().planted_bug;
                    let range = self.incoming_range.take().expect("a snapshot's chunks say its range");
                    snapshot_install::install(disk, &self.store, self.id, &self.span, applied, range.clone(), bug)?;
                    self.applied = applied;
                    self.incoming_size = DataSize::default();
                    if range != self.range {
                        // A split this replica skipped: the right half's data went with the
                        // old span (see `split.rs`).
                        crate::sometimes!("range_installed_from_snapshot");
                        topology.map.learn(&range);
                        self.span = Span::of_range(&range, self.span.sharding);
                        self.range = range.clone();
                        self.staged.push(NodeEvent::RangeInstalled { range });
                    }
                    // Our own proposals it covers may or may not be in it.
                    let covered: Vec<Index> = self.pending.proposals.range(..=meta.index).map(|(&i, _)| i).collect();
                    for i in covered {
                        let p = self.pending.proposals.remove(&i).expect("listed");
                        p.origin.answer(transport, Err(ClientError::Displaced));
                    }
                    self.snapshots_installed += 1;
                    self.staged.push(NodeEvent::SnapshotInstalled { index: meta.index, term: meta.term });
                }
                Effect::ReadReady { id, index } => {
                    // Gone already if it timed out meanwhile.
                    if let Some(read) = self.pending.reads.get_mut(&id) {
                        read.index = Some(index);
                    }
                }
                Effect::ReadFailed { id } => {
                    if let Some(read) = self.pending.reads.remove(&id) {
                        let hint = self.raft.leader_id();
                        read.origin.answer(transport, Err(ClientError::NotLeader { leader_hint: hint }));
                    }
                }
            }
        }
        Ok(())
    }

    /// Hands a held batch's events to the observer, in order.
    pub fn report(&self, staged: &mut Staged, observer: &dyn Observer) {
        for event in staged.events.drain(..) {
            observer.on_event(self.node, self.id, event);
        }
    }

    /// Once a held batch is durable: applies what it committed, stages a snapshot if one
    /// is due, serves confirmed reads, and lets go of requests forwarded to a replaced
    /// leader. Only applying writes, so the node hands it a commit only while no sync
    /// runs (a write would wait for the sync).
    pub fn finish<S: Storage<View = V>>(
        &mut self,
        staged: Staged,
        disk: &mut Disk<S>,
        topology: &mut Topology,
        transport: &impl Transport,
        observer: &dyn Observer,
    ) -> Result<(), NodeError> {
        debug_assert!(staged.events.is_empty(), "reported before it is finished");
        if self.removed {
            return Ok(());
        }
        if let Some(index) = staged.commit {
            if crate::buggify!("pause_apply") {
                // Applied with a later batch: the next `stage` takes it along.
                self.commit = self.commit.max(Some(index));
            } else {
                self.apply_committed(index, disk, topology, transport, observer)?;
                if self.removed {
                    return Ok(());
                }
                self.maybe_compact(disk);
            }
        }
        self.serve_reads(disk, topology, transport)?;
        self.on_leader_change(transport);
        Ok(())
    }

    /// Applies the committed entries into one batch with the applied record, and writes
    /// it: reads served after it see it. It needs no sync of its own: the entries are
    /// durable, and a crash that loses the batch re-applies them. A split among them ends
    /// the batch before it, and is applied in one of its own (`split.rs`); a command
    /// whose keys are not in the range's span as of its index is not applied but
    /// answered `RangeMoved` (stale routing, or written before a split that ran first).
    fn apply_committed<S: Storage>(
        &mut self,
        commit: Index,
        disk: &mut Disk<S>,
        topology: &mut Topology,
        transport: &impl Transport,
        observer: &dyn Observer,
    ) -> Result<(), NodeError> {
        if self.applied.index >= commit {
            return Ok(());
        }
        let bug = self.raft.config().planted_bug;
        let stale_accepted = raft::PlantedBug::StaleRoutingAccepted.is_active(bug);
        let mut applied = self.applied;
        while applied.index < commit {
            let size_bug = raft::PlantedBug::SizeIgnoresOverwrites.is_active(bug);
            let mut data =
                Applying::new(&disk.storage, &self.span, applied.size).unchecked(stale_accepted).size_bug(size_bug);
            let mut change = None;
            while applied.index < commit {
                let index = applied.index + 1;
                let entry = self.raft.entry(index).expect("committed entries are in the log");
                let mut applied_keys = Vec::new();
                let mut tiled = None;
                let output = match &entry.payload {
                    // Configurations act in the core, on append.
                    Payload::Noop | Payload::Membership(_) => None,
                    Payload::Range(bytes) => match RangeChange::decode(bytes, index)? {
                        // Into the batch like a write: the directory is the meta range's data.
                        RangeChange::Report { ranges } if self.id == META_RANGE => {
                            tiled = directory_reports::learn(&mut data, &self.founding, &ranges, bug)?;
                            None
                        }
                        RangeChange::Report { .. } => None,
                        other => {
                            change = Some((index, entry.term, other));
                            break;
                        }
                    },
                    Payload::Command(bytes) => {
                        let command = M::decode(bytes)
                            .map_err(|e| NodeError::UndecodableCommand { index, reason: e.to_string() })?;
                        let keys = M::keys(&command);
                        if self.span.holds_keys(&keys) || stale_accepted {
                            applied_keys = keys.iter().map(|k| self.span.sharding.storage_key(k)).collect();
                            Some(Ok(M::apply(&command, &mut data)?))
                        } else {
                            crate::sometimes!("range_moved_at_apply");
                            Some(Err(topology.moved(&keys)))
                        }
                    }
                };
                applied.index = index;
                applied.term = entry.term;
                let event = NodeEvent::Applied { index, term: entry.term, digest: entry.digest(), keys: applied_keys };
                observer.on_event(self.node, self.id, event);
                if let Some(ranges) = tiled {
                    observer.on_event(self.node, self.id, NodeEvent::DirectoryTiled { index, ranges });
                }
                answer_proposal(&mut self.pending, index, entry.term, output, transport);
            }
            if let Some((_, _, RangeChange::Split { at })) = &change {
                if raft::PlantedBug::SplitDropsRightWrites.is_active(bug) {
                    data.forget_from(at);
                }
            }
            applied.size = data.stage(&mut disk.batch);
            let Some((index, term, change)) = change else { break };
            // The change reads the data as of the entry before it.
            self.store.stage_applied(applied, &mut disk.batch);
            disk.write_batch()?;
            let membership = self.raft.membership_at(index);
            let entry = self.raft.entry(index).expect("committed entries are in the log");
            let digest = entry.digest();
            match change {
                RangeChange::Split { at } => {
                    let hosted = &mut topology.hosted;
                    let (store, range) = (&self.store, &self.range);
                    let done = split::apply(disk, store, range, &at, (index, term), applied.size, &membership, hosted)?;
                    applied.index = index;
                    applied.term = term;
                    observer.on_event(self.node, self.id, NodeEvent::Applied { index, term, digest, keys: Vec::new() });
                    if let Some(done) = done {
                        crate::sometimes!("range_split");
                        self.splits += 1;
                        applied.size = done.left_size;
                        self.range = done.left.clone();
                        self.span = Span::of_range(&self.range, self.span.sharding);
                        topology.map.learn(&done.left);
                        topology.map.learn(&done.right);
                        let event = NodeEvent::RangeSplit { index, left: done.left, right: done.right.clone() };
                        observer.on_event(self.node, self.id, event);
                        topology.born.push(done.right);
                    }
                }
                change => {
                    applied.index = index;
                    applied.term = term;
                    let (hosted, removed) = (&mut topology.hosted, &mut topology.removed);
                    let member_later = self.raft.member_after(index, self.node);
                    let outcome = replicas::apply(
                        disk,
                        &self.store,
                        &self.range,
                        &change,
                        applied,
                        self.node,
                        &membership,
                        member_later,
                        hosted,
                        removed,
                    )?;
                    observer.on_event(self.node, self.id, NodeEvent::Applied { index, term, digest, keys: Vec::new() });
                    match outcome {
                        Outcome::Unchanged => {}
                        Outcome::Changed(range) => {
                            topology.map.learn(&range);
                            self.range = range.clone();
                            observer.on_event(self.node, self.id, NodeEvent::RangeReplicas { index, range });
                        }
                        Outcome::Removed(range) => {
                            crate::sometimes!("replica_removed");
                            topology.map.learn(&range);
                            self.range = range.clone();
                            observer.on_event(self.node, self.id, NodeEvent::RangeReplicas { index, range });
                            answer_proposal(&mut self.pending, index, term, None, transport);
                            // Its records are gone: nothing more is written for it, and
                            // the event loop drops it once this turn's batches are out.
                            self.removed = true;
                            self.applied = applied;
                            topology.dropped.push(self.id);
                            return Ok(());
                        }
                    }
                }
            }
            answer_proposal(&mut self.pending, index, term, None, transport);
        }
        let lags = raft::PlantedBug::AppliedRecordLags.is_active(bug);
        self.store.stage_applied(if lags { self.applied } else { applied }, &mut disk.batch);
        disk.write_batch()?;
        self.applied = applied;
        self.raft.advance_applied(applied.index);
        Ok(())
    }

    /// Log compaction: once `snapshot_entries_min` entries were applied since the last
    /// cut, the log is cut at the applied index, or on a leader no further than its
    /// slowest follower has (so that a follower that just installed a snapshot goes on
    /// from the log, rather than needing another because the leader cut meanwhile: found
    /// by the real-process test, where a restarted node installed snapshot after snapshot).
    /// A follower that stays `LOG_KEPT_FOR_FOLLOWERS_MAX` times that far behind gets a
    /// snapshot. The data already holds the entries cut, written in an earlier batch, so
    /// the cut needs no sync: a crash keeps the data of any cut it keeps.
    fn maybe_compact<S: Storage>(&mut self, disk: &mut Disk<S>) {
        let last = self.raft.snapshot_meta();
        let applied = self.applied.index;
        let slowest = self.raft.follower_match().into_iter().map(|(_, m)| m).min().unwrap_or(applied);
        let mut index = applied.min(slowest.max(last.index));
        if index < last.index + self.snapshot_entries_min {
            let log_too_long = applied >= last.index + LOG_KEPT_FOR_FOLLOWERS_MAX * self.snapshot_entries_min;
            let early = || applied > last.index && crate::buggify!("snapshot_early");
            if !(log_too_long || early()) {
                return;
            }
            index = applied;
        }
        let term = self.raft.term_at(index).expect("an index past the cut is in the log");
        let meta = raft::SnapshotMeta { index, term };
        let membership = self.raft.membership_at(index);
        self.store.stage_cut(meta, &membership, Some((last.index + 1, index)), &mut disk.batch);
        self.raft.compact(index);
        self.snapshots_taken += 1;
        // Reported with the next batch, once the cut is written.
        self.staged.push(NodeEvent::Compacted { index });
    }

    /// Serves the confirmed reads whose index the state machine has reached.
    /// A read whose keys a split gave away meanwhile is answered `RangeMoved`.
    fn serve_reads<S: Storage>(
        &mut self,
        disk: &Disk<S>,
        topology: &Topology,
        transport: &impl Transport,
    ) -> Result<(), NodeError> {
        let applied = self.applied.index;
        let due: Vec<u64> = self
            .pending
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(&id, _)| id)
            .collect();
        let data = Reading { storage: &disk.storage, span: &self.span, keys: self.applied.size.keys };
        for id in due {
            let read = self.pending.reads.remove(&id).expect("listed above");
            let keys = M::keys(&read.command);
            if !self.span.holds_keys(&keys) {
                read.origin.answer(transport, Err(topology.moved(&keys)));
                continue;
            }
            let output = M::read(&read.command, &data)?;
            read.origin.answer(transport, Ok(output));
        }
        Ok(())
    }

    /// A new leader is known: requests forwarded to the old one are answered now rather
    /// than at their deadline, so their clients turn to the new leader. A read is simply
    /// refused (it changed nothing); a write may have reached the old leader's log and
    /// still commit, so its outcome is unknown.
    fn on_leader_change(&mut self, transport: &impl Transport) {
        if !self.raft.is_leader() {
            self.outgoing.clear();
        }
        let leader = self.raft.leader_id();
        if leader == self.leader_seen {
            return;
        }
        self.leader_seen = leader;
        let Some(leader) = leader else { return };
        for f in self.pending.take_forwards_not_to(leader) {
            let error = if f.read_only {
                ClientError::NotLeader { leader_hint: Some(leader) }
            } else {
                ClientError::LeaderChanged
            };
            f.origin.answer(transport, Err(error));
        }
    }

    /// The replica is dropped (removed from its range): everyone still waiting on it is
    /// answered. A forwarded write may have run at the leader: its outcome is unknown.
    pub fn retire(self, transport: &impl Transport) {
        let moved = || ClientError::RangeMoved { descriptor: Box::new(self.range.clone()) };
        for (_, p) in self.pending.proposals {
            p.origin.answer(transport, Err(ClientError::Displaced));
        }
        for (_, f) in self.pending.forwards {
            let error = if f.read_only { moved() } else { ClientError::LeaderChanged };
            f.origin.answer(transport, Err(error));
        }
        for (_, r) in self.pending.reads {
            r.origin.answer(transport, Err(moved()));
        }
    }

    /// Drops this replica, which `newer` (a peer's descriptor of the range, a generation
    /// on) no longer lists: it was removed while it could not hear of it. Like applying its
    /// removal, but from the descriptor: the event loop drops it at the end of the turn.
    pub fn collect<S: Storage<View = V>>(
        &mut self,
        disk: &mut Disk<S>,
        topology: &mut Topology,
        newer: RangeDescriptor,
        observer: &dyn Observer,
    ) -> Result<(), NodeError> {
        let (hosted, removed) = (&mut topology.hosted, &mut topology.removed);
        replicas::drop_replica(disk, &self.store, &self.range, &newer, hosted, removed)?;
        crate::sometimes!("removed_replica_collected");
        topology.map.learn(&newer);
        observer.on_event(self.node, self.id, NodeEvent::ReplicaCollected { range: newer.clone() });
        self.range = newer;
        self.removed = true;
        topology.dropped.push(self.id);
        Ok(())
    }

    /// Whether this node's replica was removed from the range (see `removed`).
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// A peer that lost its state asks for chunk `chunk` of ours (`state_fetch.rs`): it
    /// gets it if our state is whole and reaches `base`, as of our applied index when the
    /// transfer began.
    #[allow(clippy::too_many_arguments)] // one request and what serving it needs
    pub fn lend_state<S: Storage<View = V>>(
        &mut self,
        now_ms: u64,
        from: NodeId,
        base: Index,
        meta: Option<raft::SnapshotMeta>,
        chunk: u64,
        disk: &Disk<S>,
        transport: &impl Transport,
    ) -> Result<(), NodeError> {
        let applied = self.applied;
        if self.raft.awaiting_snapshot() || (meta.is_none() && applied.index < base) {
            return Ok(()); // it asks another peer after a timeout
        }
        let current = raft::SnapshotMeta { index: applied.index, term: applied.term };
        let (raft, range) = (&self.raft, &self.range);
        let source = || {
            Ok(Source {
                meta: current,
                membership: raft.membership_at(applied.index),
                range: range.clone(),
                view: disk.storage.view()?,
            })
        };
        let read =
            self.lending.read(now_ms, from, meta.unwrap_or(current), chunk, self.snapshot_chunk_bytes_max, source)?;
        let answer = Wire::StateChunk {
            group: self.id,
            meta: read.meta,
            membership: read.membership,
            chunk: read.chunk,
            data: read.data,
            done: read.done,
        };
        transport.send(from, codec::encode(&answer));
        Ok(())
    }

    /// A chunk of a peer's state, fetched while ours is lost: put aside, and once the last
    /// is in, handed to the core, whose `InstallSnapshot` effect installs it.
    #[allow(clippy::too_many_arguments)] // the fields of one message
    pub fn on_state_chunk<S: Storage<View = V>>(
        &mut self,
        now_ms: u64,
        from: NodeId,
        meta: raft::SnapshotMeta,
        membership: raft::Membership,
        chunk: u64,
        data: &[u8],
        done: bool,
        disk: &mut Disk<S>,
        transport: &impl Transport,
    ) -> Result<(), NodeError> {
        let Some(fetch) = self.fetch.as_mut() else { return Ok(()) };
        match fetch.on_chunk(now_ms, from, meta, membership, chunk, done) {
            Verdict::Ignore => {}
            Verdict::Keep { ask: (to, ask) } => {
                self.put_aside(disk, chunk, data)?;
                transport.send(to, codec::encode(&ask));
            }
            Verdict::Last { meta, membership } => {
                self.put_aside(disk, chunk, data)?;
                if self.raft.restore_state(now_ms, meta, membership) {
                    self.fetch = None;
                } else if let Some(fetch) = self.fetch.as_mut() {
                    fetch.restart();
                }
            }
        }
        Ok(())
    }

    fn put_aside<S: Storage<View = V>>(
        &mut self,
        disk: &mut Disk<S>,
        chunk: u64,
        data: &[u8],
    ) -> Result<(), NodeError> {
        if chunk == 0 {
            self.incoming_size = DataSize::default();
        }
        let (size, range) = snapshot_install::put_aside(disk, self.id, chunk, data)?;
        self.incoming_size.add(size);
        self.incoming_range = Some(range);
        Ok(())
    }

    /// Steps the core with a message addressed to this group.
    pub fn receive(&mut self, now_ms: u64, envelope: raft::Envelope) {
        self.heard_ms = now_ms;
        self.raft.step(now_ms, Input::Receive(envelope));
    }

    /// Whether this replica, not leading, has had no leader, or heard no message of its
    /// group, since `quiet_ms` ago: a leftover learner never campaigns, so it keeps the
    /// leader it last heard, and only its silence tells that it may be a replica no more.
    pub fn quiet(&self, now_ms: u64, quiet_ms: u64) -> bool {
        !self.raft.is_leader() && (self.raft.leader_id().is_none() || now_ms.saturating_sub(self.heard_ms) >= quiet_ms)
    }

    /// Fires the core's timers if due.
    pub fn tick(&mut self, now_ms: u64) {
        if now_ms >= self.raft.next_deadline_ms() {
            self.raft.step(now_ms, Input::Tick);
        }
    }
}

/// Answers our proposal at `index`, if any: with `output` if the entry applied there
/// is the one proposed (same term), else `Dropped` (another leader's entry replaced it).
fn answer_proposal<M: StateMachine>(
    pending: &mut Pending<M>,
    index: Index,
    term: raft::Term,
    output: Option<Result<M::Output, ClientError>>,
    transport: &impl Transport,
) {
    if let Some(p) = pending.proposals.remove(&index) {
        let result: CallResult<M> = match output {
            Some(out) if p.term == term => out,
            _ => Err(ClientError::Dropped),
        };
        p.origin.answer(transport, result);
    }
}

/// The events that say `entry` is in a node's log: `Appended`, and `ConfigAppended` too
/// for a configuration.
fn appended_events(entry: &raft::Entry) -> impl Iterator<Item = NodeEvent> {
    let config = match &entry.payload {
        Payload::Membership(m) => Some(NodeEvent::ConfigAppended {
            index: entry.index,
            term: entry.term,
            voters: m.voters.iter().copied().collect(),
            outgoing: m.outgoing.iter().copied().collect(),
        }),
        _ => None,
    };
    std::iter::once(NodeEvent::Appended { index: entry.index, term: entry.term, digest: entry.digest() }).chain(config)
}
