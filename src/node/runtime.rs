//! The event loop of one node hosting one Raft group.

use super::dedup::RecentRequests;
use super::pending::{CallResult, Origin, Pending, Proposal};
use super::raft_store::RaftStore;
use super::{
    ClientError, ControlError, FollowerStatus, NodeError, NodeEvent, NodeStatus, Observer, Wire, WIRE_BYTES_MAX,
};
use crate::codec;
use crate::io::{Clock, Inbound, Storage, Transport, WriteBatch};
use crate::kv::{Command, KvStateMachine};
use crate::raft::{self, Durability, Effect, Input, Payload, ProposeError, Raft};
use crate::{GroupId, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    pub group: GroupId,
    pub voters: Vec<NodeId>,
    /// Seeds the Raft core's election timeouts and the ids of forwarded requests. Must
    /// differ between incarnations (restarts) of a node: the simulator derives it from the
    /// run's seed and the incarnation, a real node draws it from the OS.
    pub seed: u64,
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    pub heartbeat_interval_ms: u64,
    /// Entries in one AppendEntries message.
    pub append_entries_max: usize,
    /// How long a request may wait for its answer before the caller hears `Timeout`.
    pub request_timeout_ms: u64,
    /// Requests waiting for an answer (proposals + forwards) before new ones get `Busy`.
    pub pending_requests_max: usize,
    /// Inputs handled before effects are flushed: the group-commit batch.
    pub batch_inputs_max: usize,
    /// Sync storage before answering (the default). Off, an acknowledged write is on a
    /// quorum's disks only as far as their operating systems flushed it: faster, and lost
    /// if a quorum loses power at once. Raft's votes stay safe only with syncing on.
    pub sync_writes: bool,
    /// Log compaction: a snapshot is taken after this many entries are applied past the
    /// last one.
    pub snapshot_entries_min: u64,
    /// Bytes of snapshot per InstallSnapshot message.
    pub snapshot_chunk_bytes_max: usize,
    /// Raft pre-vote and check-quorum (see `raft::Config`); both on by default.
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Lease reads and the clock-drift bound they assume (see `raft::Config`); off by
    /// default: ReadIndex needs no assumption about clocks.
    pub lease_reads: bool,
    pub clock_drift_ppm_max: u64,
    pub planted_bug: Option<raft::PlantedBug>,
}

impl NodeConfig {
    /// Defaults for everything but identity; `seed` as documented on the field.
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> Self {
        let r = raft::Config::new(id, 1, voters.clone());
        NodeConfig {
            id,
            group: 1,
            voters,
            seed,
            election_timeout_ms_min: r.election_timeout_ms_min,
            election_timeout_ms_max: r.election_timeout_ms_max,
            heartbeat_interval_ms: r.heartbeat_interval_ms,
            append_entries_max: r.append_entries_max,
            request_timeout_ms: 2_000,
            pending_requests_max: 4096,
            batch_inputs_max: 256,
            sync_writes: true,
            snapshot_entries_min: 10_000,
            snapshot_chunk_bytes_max: r.snapshot_chunk_bytes_max,
            pre_vote: r.pre_vote,
            check_quorum: r.check_quorum,
            lease_reads: r.lease_reads,
            clock_drift_ppm_max: r.clock_drift_ppm_max,
            planted_bug: None,
        }
    }

    fn raft_config(&self) -> raft::Config {
        let mut c = raft::Config::new(self.id, self.group, self.voters.clone());
        c.election_timeout_ms_min = self.election_timeout_ms_min;
        c.election_timeout_ms_max = self.election_timeout_ms_max;
        c.heartbeat_interval_ms = self.heartbeat_interval_ms;
        c.append_entries_max = self.append_entries_max;
        c.pre_vote = self.pre_vote;
        c.check_quorum = self.check_quorum;
        c.lease_reads = self.lease_reads;
        c.clock_drift_ppm_max = self.clock_drift_ppm_max;
        c.snapshot_chunk_bytes_max = self.snapshot_chunk_bytes_max;
        c.planted_bug = self.planted_bug;
        c
    }
}

/// Separates the forward-id stream from the Raft core's stream drawn from the same seed.
const FORWARD_ID_STREAM: u64 = 0x0046_4f52_5741_5244;

/// Client calls queued to a node before `execute` waits.
const CALL_QUEUE_MAX: usize = 1024;
/// How often expired requests are swept.
const SWEEP_INTERVAL_MS: u64 = 50;

struct Call {
    command: Command,
    reply: oneshot::Sender<CallResult>,
}

/// Operators' requests, on a channel of their own so that client load cannot delay them.
enum Control {
    TransferLeader {
        to: NodeId,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    ChangeMembership {
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
}

/// Operators' requests queued to a node before `transfer_leadership` waits.
const CONTROL_QUEUE_MAX: usize = 16;

/// The in-process client API of a node (used by the real-cluster tests today and by the
/// RESP server later; simulated clients reach nodes over the transport with `Wire::Request`).
#[derive(Clone)]
pub struct NodeHandle {
    calls: mpsc::Sender<Call>,
    controls: mpsc::Sender<Control>,
    status: watch::Receiver<NodeStatus>,
}

/// A command handed to the node, whose answer is still to come.
pub struct Submitted(oneshot::Receiver<CallResult>);

impl Submitted {
    pub async fn result(self) -> CallResult {
        self.0.await.unwrap_or(Err(ClientError::Stopped))
    }
}

impl NodeHandle {
    /// Runs `command` linearizably through the group's leader.
    pub async fn execute(&self, command: Command) -> CallResult {
        self.submit(command).await?.result().await
    }

    /// Queues `command` (waiting while the node's call queue is full) and returns at once
    /// with its future answer. Commands submitted one after another through one handle
    /// enter the log in that order, so a pipelining client keeps its order.
    pub async fn submit(&self, command: Command) -> Result<Submitted, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.calls.send(Call { command, reply }).await.map_err(|_| ClientError::Stopped)?;
        Ok(Submitted(rx))
    }

    /// Asks this node, which must lead its group, to hand leadership to voter `to`.
    /// Returns once the transfer has started (or was refused); whether `to` takes over
    /// shows in the status (`leader`, `transfer_target`).
    pub async fn transfer_leadership(&self, to: NodeId) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        self.controls.send(Control::TransferLeader { to, reply }).await.map_err(|_| ControlError::Stopped)?;
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Asks this node, which must lead, to change the group's configuration to `voters`
    /// and `learners` (by joint consensus). Returns once the change has started; the
    /// status shows it go through (`outgoing_voters` empties when it is done).
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        let control = Control::ChangeMembership { voters, learners, reply };
        self.controls.send(control).await.map_err(|_| ControlError::Stopped)?;
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// The node's latest published status.
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }
}

pub struct Node<T, S> {
    cfg: NodeConfig,
    raft: Raft,
    store: RaftStore,
    storage: S,
    transport: T,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    inbox: mpsc::Receiver<Inbound>,
    calls: mpsc::Receiver<Call>,
    controls: mpsc::Receiver<Control>,
    sm: KvStateMachine,
    applied: raft::Index,
    pending: Pending,
    /// Writes were made since the last sync.
    unsynced: bool,
    batch: WriteBatch,
    status: watch::Sender<NodeStatus>,
    snapshots_taken: u64,
    snapshots_installed: u64,
    recent_requests: RecentRequests,
    /// The core's count of drift violations already reported.
    drift_violations_reported: u64,
    /// The leader as of the last batch, to notice a change.
    leader_seen: Option<NodeId>,
}

impl<T: Transport, S: Storage> Node<T, S> {
    /// Recovers the node from `storage`.
    pub fn new(
        cfg: NodeConfig,
        transport: T,
        inbox: mpsc::Receiver<Inbound>,
        storage: S,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
    ) -> Result<(Self, NodeHandle), NodeError> {
        let seed = cfg.seed;
        let store = RaftStore::new(cfg.group);
        let recovered = store.load(&storage)?;
        let hard = recovered.hard;
        let (sm, snapshot) = match recovered.snapshot {
            None => (KvStateMachine::default(), None),
            Some((meta, membership, data)) => {
                let sm = KvStateMachine::restore(&data)
                    .map_err(|e| NodeError::Corrupt(format!("snapshot at {}: {e}", meta.index)))?;
                (sm, Some((meta, membership, Arc::new(data))))
            }
        };
        let snapshot_index = snapshot.as_ref().map_or(0, |(m, _, _)| m.index);
        let last_index = recovered.entries.last().map_or(snapshot_index, |e| e.index);
        let raft =
            Raft::with_snapshot(cfg.raft_config(), cfg.seed, clock.monotonic_ms(), hard, snapshot, recovered.entries)
                .map_err(|e| NodeError::Corrupt(e.to_string()))?;
        observer.on_event(cfg.id, NodeEvent::Recovered { term: hard.term, snapshot_index, last_index });
        let (tx, calls) = mpsc::channel(CALL_QUEUE_MAX);
        let (control_tx, controls) = mpsc::channel(CONTROL_QUEUE_MAX);
        let (status, status_rx) = watch::channel(NodeStatus::default());
        let mut node = Node {
            cfg,
            raft,
            store,
            storage,
            transport,
            clock,
            observer,
            inbox,
            calls,
            controls,
            sm,
            applied: snapshot_index,
            pending: Pending::new(ChaCha8Rng::seed_from_u64(seed ^ FORWARD_ID_STREAM).gen()),
            unsynced: false,
            batch: WriteBatch::default(),
            status,
            snapshots_taken: 0,
            snapshots_installed: 0,
            recent_requests: RecentRequests::default(),
            drift_violations_reported: 0,
            leader_seen: None,
        };
        node.publish_status();
        Ok((node, NodeHandle { calls: tx, controls: control_tx, status: status_rx }))
    }

    /// Runs until storage fails (the node is poisoned) or the transport's inbox closes.
    /// Dropping every [`NodeHandle`] does not stop the node: peers and remote clients
    /// still reach it through the transport.
    pub async fn run(self) -> Result<(), NodeError> {
        self.run_until(std::future::pending()).await
    }

    /// Like [`Node::run`], and also stops cleanly when `shutdown` completes: the batch in
    /// hand is finished and synced, then waiting callers hear `Stopped` (their outcome is
    /// unknown: a quorum may still commit what they proposed).
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let result = self.run_loop(shutdown).await;
        if let Err(e) = &result {
            self.observer.on_event(self.cfg.id, NodeEvent::Poisoned { error: e.to_string() });
            tracing::error!(node = self.cfg.id, error = %e, "node stopped");
        }
        result
    }

    async fn run_loop(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let mut next_sweep_ms = self.clock.monotonic_ms() + SWEEP_INTERVAL_MS;
        let mut calls_open = true;
        let mut controls_open = true;
        tokio::pin!(shutdown);
        loop {
            let now = self.clock.monotonic_ms();
            let wake_ms = self.raft.next_deadline_ms().min(next_sweep_ms);
            let wait = self.clock.sleep_for(wake_ms.saturating_sub(now));
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    // Even with syncing off, a clean stop leaves everything on disk.
                    self.sync_now()?;
                    tracing::info!(node = self.cfg.id, "node stopped on request");
                    return Ok(());
                }
                _ = tokio::time::sleep(wait) => {}
                inbound = self.inbox.recv() => match inbound {
                    Some(m) => self.on_inbound(m),
                    None => return Ok(()),
                },
                call = self.calls.recv(), if calls_open => match call {
                    Some(c) => self.on_call(c.command, Origin::Local(c.reply)),
                    None => calls_open = false,
                },
                control = self.controls.recv(), if controls_open => match control {
                    Some(Control::TransferLeader { to, reply }) => {
                        let now = self.clock.monotonic_ms();
                        let result = self.raft.transfer_leadership(now, to).map_err(ControlError::from);
                        if result.is_ok() {
                            tracing::info!(node = self.cfg.id, to, "transferring leadership");
                        }
                        let _ = reply.send(result);
                    }
                    Some(Control::ChangeMembership { voters, learners, reply }) => {
                        let result = self.raft.propose_membership(voters.clone(), learners.clone()).map(|index| {
                            tracing::info!(node = self.cfg.id, index, ?voters, ?learners, "configuration change started");
                        });
                        let _ = reply.send(result.map_err(ControlError::from));
                    }
                    None => controls_open = false,
                },
            }
            // Group commit: take what else is ready, then flush once.
            for _ in 0..self.cfg.batch_inputs_max {
                if let Ok(m) = self.inbox.try_recv() {
                    self.on_inbound(m);
                } else if let Ok(c) = self.calls.try_recv() {
                    self.on_call(c.command, Origin::Local(c.reply));
                } else {
                    break;
                }
            }
            let now = self.clock.monotonic_ms();
            if now >= self.raft.next_deadline_ms() {
                self.raft.step(now, Input::Tick);
            }
            if now >= next_sweep_ms {
                next_sweep_ms = now + SWEEP_INTERVAL_MS;
                for origin in self.pending.expire(now) {
                    self.answer(origin, Err(ClientError::Timeout));
                }
            }
            self.flush_effects()?;
            self.publish_status();
        }
    }

    fn publish_status(&mut self) {
        let last_index = self.raft.last_index();
        let followers = self
            .raft
            .follower_match()
            .into_iter()
            .map(|(id, match_index)| FollowerStatus { id, match_index, lag: last_index.saturating_sub(match_index) })
            .collect();
        let status = NodeStatus {
            id: self.cfg.id,
            group: self.cfg.group,
            role: self.raft.role_name(),
            term: self.raft.term(),
            leader: self.raft.leader_id(),
            voters: self.raft.membership().voters.iter().copied().collect(),
            outgoing_voters: self.raft.membership().outgoing.iter().copied().collect(),
            learners: self.raft.membership().learners.iter().copied().collect(),
            last_index,
            commit_index: self.raft.commit_index(),
            applied_index: self.applied,
            followers,
            elections_started: self.raft.elections_started(),
            lease_reads: self.raft.lease_reads_served(),
            drift_violations: self.raft.drift_violations().0,
            transfer_target: self.raft.transfer_target(),
            snapshot_index: self.raft.snapshot_meta().index,
            snapshots_taken: self.snapshots_taken,
            snapshots_installed: self.snapshots_installed,
            keys: self.sm.len() as u64,
            pending_requests: self.pending.len() as u64,
        };
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            if changed {
                *current = status;
            }
            changed
        });
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        let wire: Wire = match codec::decode(&inbound.payload, WIRE_BYTES_MAX) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(node = self.cfg.id, from = inbound.from, error = %e, "undecodable message dropped");
                return;
            }
        };
        match wire {
            Wire::Raft(env) => {
                if env.to != self.cfg.id || env.group != self.cfg.group || env.from != inbound.from {
                    tracing::warn!(node = self.cfg.id, from = inbound.from, "misrouted raft message dropped");
                    return;
                }
                self.raft.step(self.clock.monotonic_ms(), Input::Receive(env));
            }
            Wire::Request { req_id, command } => {
                if !self.recent_requests.first_time(inbound.from, req_id) {
                    tracing::debug!(node = self.cfg.id, from = inbound.from, req_id, "duplicate request dropped");
                    return;
                }
                let origin = Origin::Remote { node: inbound.from, req_id };
                if self.raft.membership().is_member(inbound.from) && !self.raft.is_leader() {
                    // Forwarded once already: answer instead of forwarding in a loop.
                    let hint = self.raft.leader_id();
                    self.answer(origin, Err(ClientError::NotLeader { leader_hint: hint }));
                } else {
                    self.on_call(command, origin);
                }
            }
            Wire::Reply { req_id, result } => {
                if let Some(f) = self.pending.forwards.remove(&req_id) {
                    self.answer(f.origin, result);
                }
            }
        }
    }

    fn on_call(&mut self, command: Command, origin: Origin) {
        if self.pending.len() >= self.cfg.pending_requests_max {
            self.answer(origin, Err(ClientError::Busy));
            return;
        }
        let deadline_ms = self.clock.monotonic_ms() + self.cfg.request_timeout_ms;
        if command.is_read_only() {
            // ReadIndex: confirmed by a round of heartbeats, not written to the log.
            let id = self.pending.add_read(command, origin, deadline_ms);
            let by_lease = self.raft.lease_reads_served();
            match self.raft.read_index(self.clock.monotonic_ms(), id) {
                Err(e) => {
                    let read = self.pending.reads.remove(&id).expect("just added");
                    self.refused(read.command, read.origin, deadline_ms, e);
                }
                Ok(()) if self.raft.lease_reads_served() > by_lease => {
                    let event = NodeEvent::LeaseRead { commit_index: self.raft.commit_index() };
                    self.observer.on_event(self.cfg.id, event);
                }
                Ok(()) => {}
            }
            return;
        }
        match self.raft.propose(command.encode()) {
            Ok((index, term)) => {
                let previous = self.pending.proposals.insert(index, Proposal { term, origin, deadline_ms });
                if let Some(p) = previous {
                    // An older proposal of ours left the log at this index. It may still be
                    // committed by a later leader that holds it (Raft Figure 8), so its
                    // outcome is unknown, not failed.
                    self.answer(p.origin, Err(ClientError::Displaced));
                }
            }
            Err(e) => self.refused(command, origin, deadline_ms, e),
        }
    }

    /// The core refused a proposal or read: forward it to the leader we know, or answer.
    fn refused(&mut self, command: Command, origin: Origin, deadline_ms: u64, e: ProposeError) {
        match e {
            // A transfer lasts an election timeout at most: a retry soon succeeds.
            ProposeError::Backpressure | ProposeError::Transferring { .. } => {
                self.answer(origin, Err(ClientError::Busy))
            }
            ProposeError::NotLeader { leader_hint: Some(leader) } if leader != self.cfg.id => {
                let req_id = self.pending.add_forward(origin, deadline_ms, leader, command.is_read_only());
                let wire = Wire::Request { req_id, command };
                self.transport.send(leader, codec::encode(&wire));
            }
            ProposeError::NotLeader { .. } => self.answer(origin, Err(ClientError::NoLeader)),
        }
    }

    /// Serves the confirmed reads whose index the state machine has reached.
    fn serve_reads(&mut self) {
        let applied = self.applied;
        let due: Vec<u64> = self
            .pending
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let read = self.pending.reads.remove(&id).expect("listed above");
            let output = self.sm.apply(&read.command);
            self.answer(read.origin, Ok(output));
        }
    }

    fn answer(&mut self, origin: Origin, result: CallResult) {
        match origin {
            Origin::Local(tx) => {
                let _ = tx.send(result);
            }
            Origin::Remote { node, req_id } => {
                self.transport.send(node, codec::encode(&Wire::Reply { req_id, result }));
            }
        }
    }

    /// Applies the core's effects in order, syncing before any message that promises
    /// durable state, then applies newly committed entries.
    fn flush_effects(&mut self) -> Result<(), NodeError> {
        if let (count, Some((peer, v))) = self.raft.drift_violations() {
            if count > self.drift_violations_reported {
                self.drift_violations_reported = count;
                let event = NodeEvent::ClockDriftExceeded { peer, ratio_ppm: v.ratio_ppm };
                self.observer.on_event(self.cfg.id, event);
            }
        }
        let mut commit = None;
        for effect in self.raft.drain_effects() {
            self.store.stage(&effect, &mut self.batch);
            match effect {
                Effect::PersistHardState(_) => {}
                Effect::TruncateLog { from, .. } => {
                    self.observer.on_event(self.cfg.id, NodeEvent::Truncated { from });
                }
                Effect::AppendLog(entries) => {
                    for e in &entries {
                        let event = NodeEvent::Appended { index: e.index, term: e.term, digest: e.digest() };
                        self.observer.on_event(self.cfg.id, event);
                        if let Payload::Membership(m) = &e.payload {
                            let event = NodeEvent::ConfigAppended {
                                index: e.index,
                                term: e.term,
                                voters: m.voters.iter().copied().collect(),
                                outgoing: m.outgoing.iter().copied().collect(),
                            };
                            self.observer.on_event(self.cfg.id, event);
                        }
                    }
                }
                Effect::Send { envelope, after } => {
                    if after == Durability::Synced {
                        self.make_durable()?;
                    }
                    let to = envelope.to;
                    self.transport.send(to, codec::encode(&Wire::Raft(envelope)));
                }
                Effect::Commit { index } => {
                    // Reported in order with the appends around it (a leader appends the
                    // next configuration right after its joint one commits).
                    self.observer.on_event(self.cfg.id, NodeEvent::Committed { index });
                    commit = Some(index);
                }
                Effect::BecameLeader { term } => {
                    self.observer.on_event(self.cfg.id, NodeEvent::BecameLeader { term });
                }
                Effect::InstallSnapshot { meta, data, .. } => {
                    // Staged above; the state machine follows it now.
                    self.sm = KvStateMachine::restore(&data).map_err(|e| {
                        NodeError::Corrupt(format!("leader's snapshot at {} does not decode: {e}", meta.index))
                    })?;
                    self.applied = meta.index;
                    // Our own proposals it covers may or may not be in it.
                    let covered: Vec<raft::Index> =
                        self.pending.proposals.range(..=meta.index).map(|(&i, _)| i).collect();
                    for i in covered {
                        let p = self.pending.proposals.remove(&i).expect("listed");
                        self.answer(p.origin, Err(ClientError::Displaced));
                    }
                    self.snapshots_installed += 1;
                    let event = NodeEvent::SnapshotInstalled { index: meta.index, term: meta.term };
                    self.observer.on_event(self.cfg.id, event);
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
                        self.answer(read.origin, Err(ClientError::NotLeader { leader_hint: hint }));
                    }
                }
            }
        }
        self.write_batch()?;
        if let Some(index) = commit {
            // Answers promise durability too (the entry is committed, so a quorum synced
            // it; we sync our own writes as well before saying so).
            self.make_durable()?;
            self.apply_committed(index)?;
            self.maybe_snapshot()?;
        }
        self.serve_reads();
        self.on_leader_change();
        Ok(())
    }

    /// A new leader is known: requests forwarded to the old one are answered now rather
    /// than at their deadline, so their clients turn to the new leader. A read is simply
    /// refused (it changed nothing); a write may have reached the old leader's log and
    /// still commit, so its outcome is unknown.
    fn on_leader_change(&mut self) {
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
            self.answer(f.origin, Err(error));
        }
    }

    /// Log compaction: once `snapshot_entries_min` entries were applied since the last
    /// snapshot, the state machine is saved (durably, before the entries it replaces are
    /// dropped) and the log is cut behind it.
    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let last = self.raft.snapshot_meta();
        if self.applied < last.index + self.cfg.snapshot_entries_min {
            return Ok(());
        }
        let index = self.applied;
        let term = self.raft.entry(index).expect("applied entries past the snapshot are in the log").term;
        let data = self.sm.snapshot();
        let meta = raft::SnapshotMeta { index, term };
        let membership = self.raft.membership_at(index);
        self.store.stage_snapshot(meta, &membership, &data, Some((last.index + 1, index)), &mut self.batch);
        // The entries go only once the snapshot that replaces them is on disk.
        self.sync_now()?;
        self.raft.compact(index, Arc::new(data));
        self.snapshots_taken += 1;
        self.observer.on_event(self.cfg.id, NodeEvent::Compacted { index });
        Ok(())
    }

    fn write_batch(&mut self) -> Result<(), NodeError> {
        if !self.batch.is_empty() {
            self.storage.write(std::mem::take(&mut self.batch))?;
            self.unsynced = true;
        }
        Ok(())
    }

    /// Syncs what was written, unless the configuration turned syncing off.
    fn make_durable(&mut self) -> Result<(), NodeError> {
        if self.cfg.sync_writes {
            self.sync_now()
        } else {
            self.write_batch()
        }
    }

    fn sync_now(&mut self) -> Result<(), NodeError> {
        self.write_batch()?;
        if self.unsynced {
            self.storage.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn apply_committed(&mut self, commit: raft::Index) -> Result<(), NodeError> {
        while self.applied < commit {
            let index = self.applied + 1;
            let entry = self.raft.entry(index).expect("committed entries are in the log").clone();
            let output = match &entry.payload {
                // Configurations act in the core, on append.
                Payload::Noop | Payload::Membership(_) => None,
                Payload::Command(bytes) => {
                    let command = Command::decode(bytes)
                        .map_err(|e| NodeError::UndecodableCommand { index, reason: e.to_string() })?;
                    Some(self.sm.apply(&command))
                }
            };
            self.applied = index;
            let event = NodeEvent::Applied { index, term: entry.term, digest: entry.digest() };
            self.observer.on_event(self.cfg.id, event);
            if let Some(p) = self.pending.proposals.remove(&index) {
                let result = match output {
                    Some(out) if p.term == entry.term => Ok(out),
                    _ => Err(ClientError::Dropped),
                };
                self.answer(p.origin, result);
            }
        }
        Ok(())
    }
}
