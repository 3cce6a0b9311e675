//! The event loop of one node hosting one or more Raft groups (see `group.rs` for what a
//! group does in each batch, `peer_frames.rs` for how their messages travel together,
//! `handle.rs` for the API callers hold, `range_work.rs` for the moves and splits the
//! node runs as its ranges' leader, `reports.rs` for what it tells the directory,
//! `placing.rs` for the placement its meta range's leader runs, `range_asks.rs` for what
//! it learns of ranges from their replicas).

mod handle;
mod placing;
mod range_asks;
mod range_work;
mod reports;

use handle::{Call, Control, CALL_QUEUE_MAX, CONTROL_QUEUE_MAX};
pub use handle::{NodeHandle, Submitted};

use super::dedup::RecentRequests;
use super::disk::Disk;
use super::forwarding::Elsewhere;
use super::group::{Replica, Staged};
use super::group_data::Span;
use super::peer_frames::PeerFrames;
use super::pending::Origin;
use super::raft_store::RaftStore;
use super::replica_move::ReplicaMove;
use super::replicas::Tombstones;
use super::split_trigger::SplitPolicy;
use super::topology::Topology;
use super::{created_with, scrub, snapshot_install, split};
use super::{ClientError, ControlError, NodeError, NodeEvent, NodeStatus, Observer, Wire, WIRE_BYTES_MAX};
use crate::codec;
use crate::io::{Clock, Inbound, Storage, StorageError, Transport};
use crate::keyspace::{Keyspace, RangeDescriptor, Unroutable};
use crate::raft::{self, Envelope};
use crate::state_machine::StateMachine;
use crate::{GroupId, NodeId};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The Raft settings every group of the node runs with: its `id` is the node's; its
    /// `group` and `voters` are set per group, from the group's range descriptor.
    pub raft: raft::Config,
    /// How the key space is cut into ranges and where their replicas are: the node
    /// hosts the groups whose descriptor lists it, each with those replicas as its
    /// initial voters. Every node of a cluster starts with the same keyspace.
    pub keyspace: Keyspace,
    /// Seeds the Raft core's election timeouts and the ids of forwarded requests. Must
    /// differ between incarnations (restarts) of a node: the simulator derives it from the
    /// run's seed and the incarnation, a real node draws it from the OS.
    pub seed: u64,
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
    /// When a range's leader splits it on its own: by size and by load (`split_trigger.rs`).
    pub split: SplitPolicy,
    /// Whether the meta range's leader, here, balances replicas and leaders over the
    /// servers (`crate::placement`; on by default). Off, replicas move only on request.
    pub placement: bool,
    /// How long a server may be silent before placement moves its replicas away.
    pub node_dead_ms: u64,
}

/// A range past this size splits (the real build's default; scenarios set their own).
pub const RANGE_BYTES_MAX_DEFAULT: u64 = 64 << 20;

impl NodeConfig {
    /// Defaults for everything but identity (Raft's are `raft::Config::new`'s); `seed` as
    /// documented on the field.
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> Self {
        NodeConfig {
            keyspace: Keyspace::hashed(1)
                .and_then(|k| k.place(&voters, voters.len()))
                .expect("one group on every voter is a keyspace"),
            raft: raft::Config::new(id, 1, voters),
            seed,
            request_timeout_ms: 2_000,
            pending_requests_max: 4096,
            batch_inputs_max: 256,
            sync_writes: true,
            snapshot_entries_min: 10_000,
            // Load splits are off by default: with every range on one node's event loop,
            // a split of a hot range adds no throughput until placement spreads the halves.
            split: SplitPolicy { range_bytes_max: RANGE_BYTES_MAX_DEFAULT, range_ops_per_s_max: 0 },
            placement: true,
            node_dead_ms: crate::placement::NODE_DEAD_MS_DEFAULT,
        }
    }

    pub fn id(&self) -> NodeId {
        self.raft.id
    }

    /// The Raft settings of `range`'s group, whose initial voters are its replicas.
    pub(super) fn raft_config(&self, range: &RangeDescriptor) -> raft::Config {
        raft::Config { group: range.id, voters: range.replicas.clone(), ..self.raft.clone() }
    }

    /// The groups this node hosts, in key order: an initial voter hosts those whose
    /// replicas it is among (maybe none: it forwards every request); a spare node (not
    /// an initial voter) hosts every group, outside its membership until a membership
    /// change adds it (moves of replicas onto new nodes come with placement).
    pub fn hosted(&self) -> Vec<GroupId> {
        self.keyspace.ranges().iter().filter(|r| self.hosts(self.id(), r)).map(|r| r.id).collect()
    }

    /// Whether `node` of this cluster hosts `range` (see `hosted`).
    pub fn hosts(&self, node: NodeId, range: &RangeDescriptor) -> bool {
        !self.raft.voters.contains(&node) || range.replicas.contains(&node)
    }
}

/// default minimum election timeout: the loop must never stand still for one).
const SLOW_TURN_MS: u64 = 100;
/// Batches held for their sync before the node stops taking inputs (back-pressure: a
/// disk slower than the load fills this, and then the node waits for it).
const HELD_BATCHES_MAX: usize = 1024;

/// One batch's promises, held until its writes are durable (see `disk.rs`).
struct Held {
    /// The writes that must be durable first.
    mark: u64,
    /// Messages that promise durable state (`Durability::Synced`).
    frames: PeerFrames,
    groups: Vec<(GroupId, Staged)>,
}

impl Held {
    fn needs_sync(&self) -> bool {
        !self.frames.is_empty() || self.groups.iter().any(|(_, s)| s.needs_sync())
    }
}

/// How long a node waits before asking again which range an unknown group is.
const RANGE_ASK_INTERVAL_MS: u64 = 500;

/// How long a replica hears no leader before asking whether it is still one, and how
/// often it asks again: far past any election or ordinary partition (their replicas need
/// not ask), and soon enough that a removed replica does not hold its data for long.
const LEADERLESS_ASK_MS: u64 = 10_000;

/// How often expired requests are swept.
const SWEEP_INTERVAL_MS: u64 = 50;
/// Replica moves a node runs at once (as the leader of their ranges).
const MOVES_MAX: usize = 8;

pub struct Node<T, S: Storage, M: StateMachine> {
    cfg: NodeConfig,
    groups: BTreeMap<GroupId, Replica<M, S::View>>,
    disk: Disk<S>,
    /// Messages staged this turn that go out at once.
    frames: PeerFrames,
    /// Batches staged and not yet durable, oldest first.
    held: std::collections::VecDeque<Held>,
    transport: T,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    inbox: mpsc::Receiver<Inbound>,
    calls: mpsc::Receiver<Call<M>>,
    controls: mpsc::Receiver<Control>,
    status: watch::Sender<Vec<NodeStatus>>,
    range_map: watch::Sender<Keyspace>,
    recent_requests: RecentRequests,
    /// Requests for ranges this node hosts no replica of, forwarded to one.
    elsewhere: Elsewhere<M>,
    /// The range map, the groups hosted, and those a split just made.
    topology: Topology,
    /// Groups not hosted here whose range was asked of a peer, and when it may be asked
    /// again (`ask_range`).
    range_asks: BTreeMap<GroupId, u64>,
    /// Hosted groups without a known leader, and when their peers are asked (again)
    /// whether this node is still a replica (`ask_if_still_replica`).
    leaderless: BTreeMap<GroupId, u64>,
    /// Ranges led here whose half-done move is being tidied, and the index of the step
    /// last proposed (`range_work.rs`).
    tidying: BTreeMap<GroupId, raft::Index>,
    /// Replica moves of ranges this node leads, at most `MOVES_MAX`.
    moves: BTreeMap<GroupId, ReplicaMove>,
    /// When the ranges led here are next reported to the directory (`reports.rs`).
    next_report_ms: u64,
    /// The placement core, planning while this node leads the meta range (`placing.rs`).
    placement: crate::placement::Placement,
    /// When placement next plans.
    next_plan_ms: u64,
}

impl<T: Transport, S: Storage, M: StateMachine> Node<T, S, M> {
    /// Recovers the node (every group it hosts) from `storage`.
    pub fn new(
        cfg: NodeConfig,
        transport: T,
        inbox: mpsc::Receiver<Inbound>,
        storage: S,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
    ) -> Result<(Self, NodeHandle<M>), NodeError> {
        let now = clock.monotonic_ms();
        let mut disk = Disk::new(storage, cfg.sync_writes);
        created_with::check(&mut disk, cfg.keyspace.sharding())?;
        let topology = recover_topology(&cfg, &disk.storage)?;
        let sharding = cfg.keyspace.sharding();
        let ranges: Vec<RangeDescriptor> =
            topology.hosted.iter().map(|&g| topology.map.descriptor(g).clone()).collect();
        // Before anything reads the data: a node that stopped on corrupt data drops it.
        let spans: Vec<(GroupId, Span)> = ranges.iter().map(|r| (r.id, Span::of_range(r, sharding))).collect();
        for dropped in scrub::run(&mut disk, &spans, cfg.raft.planted_bug)? {
            observer.on_event(cfg.id(), dropped.group, NodeEvent::DataDropped { base: dropped.base });
        }
        for (g, span) in &spans {
            snapshot_install::resume(&mut disk, *g, span)?;
        }
        // A resumed install may have changed a range: recover from the records.
        let topology = recover_topology(&cfg, &disk.storage)?;
        let groups = topology
            .hosted
            .iter()
            .map(|&g| {
                let range = topology.map.descriptor(g).clone();
                Replica::recover(&cfg, range, &disk.storage, now, observer.as_ref()).map(|r| (g, r))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let elsewhere = Elsewhere::new(cfg.seed, cfg.request_timeout_ms, cfg.pending_requests_max);
        let placement =
            crate::placement::Placement::new(cfg.raft.voters.iter().copied(), cfg.node_dead_ms, cfg.raft.planted_bug);
        let (tx, calls) = mpsc::channel(CALL_QUEUE_MAX);
        let (control_tx, controls) = mpsc::channel(CONTROL_QUEUE_MAX);
        let (status, status_rx) = watch::channel(Vec::new());
        let (range_map, range_map_rx) = watch::channel(topology.map.clone());
        let mut node = Node {
            disk,
            cfg,
            groups,
            frames: PeerFrames::default(),
            held: Default::default(),
            transport,
            clock,
            observer,
            inbox,
            calls,
            controls,
            status,
            range_map,
            recent_requests: RecentRequests::default(),
            elsewhere,
            topology,
            range_asks: BTreeMap::new(),
            leaderless: BTreeMap::new(),
            tidying: BTreeMap::new(),
            moves: BTreeMap::new(),
            next_report_ms: now + reports::REPORT_INTERVAL_MS,
            placement,
            next_plan_ms: now,
        };
        node.publish_status();
        let handle = NodeHandle { calls: tx, controls: control_tx, status: status_rx, range_map: range_map_rx };
        Ok((node, handle))
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
        if let Err(NodeError::Storage(StorageError::Corrupt(_))) = &result {
            scrub::mark(&mut self.disk.storage);
        }
        if let Err(e) = &result {
            for &g in self.groups.keys() {
                self.observer.on_event(self.cfg.id(), g, NodeEvent::Poisoned { error: e.to_string() });
            }
            tracing::error!(node = self.cfg.id(), error = %e, "node stopped");
        }
        result
    }

    fn next_deadline_ms(&self) -> u64 {
        self.groups.values().map(|g| g.raft.next_deadline_ms()).min().unwrap_or(u64::MAX)
    }

    async fn run_loop(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        let mut next_sweep_ms = self.clock.monotonic_ms() + SWEEP_INTERVAL_MS;
        let mut calls_open = true;
        let mut controls_open = true;
        tokio::pin!(shutdown);
        loop {
            let now = self.clock.monotonic_ms();
            let wake_ms = self.next_deadline_ms().min(next_sweep_ms);
            let wait = self.clock.sleep_for(wake_ms.saturating_sub(now));
            // A disk slower than the load: stop taking inputs until a sync completes.
            let taking = self.held.len() < HELD_BATCHES_MAX;
            let syncing = self.disk.is_syncing();
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    // Even with syncing off, a clean stop leaves everything on disk.
                    self.disk.sync_now().await?;
                    tracing::info!(node = self.cfg.id(), "node stopped on request");
                    return Ok(());
                }
                synced = self.disk.sync_done(), if syncing => synced?,
                _ = tokio::time::sleep(wait) => {}
                inbound = self.inbox.recv(), if taking => match inbound {
                    Some(m) => self.on_inbound(m)?,
                    None => return Ok(()),
                },
                call = self.calls.recv(), if calls_open && taking => match call {
                    Some(c) => self.on_call(c.command, Origin::Local(c.reply)),
                    None => calls_open = false,
                },
                control = self.controls.recv(), if controls_open => match control {
                    Some(c) => self.on_control(c)?,
                    None => controls_open = false,
                },
            }
            let turn_started_ms = self.clock.monotonic_ms();
            // Group commit: take what else is ready, then flush once.
            for _ in 0..if taking { self.cfg.batch_inputs_max } else { 0 } {
                if let Ok(m) = self.inbox.try_recv() {
                    self.on_inbound(m)?;
                } else if let Ok(c) = self.calls.try_recv() {
                    self.on_call(c.command, Origin::Local(c.reply));
                } else {
                    break;
                }
            }
            let now = self.clock.monotonic_ms();
            for g in self.groups.values_mut() {
                g.tick(now);
            }
            self.drive_moves(now);
            self.tidy_half_moves();
            self.drive_splits(now)?;
            self.ask_if_still_replica(now);
            self.report_ranges(now)?;
            self.plan_placement(now)?;
            if now >= next_sweep_ms {
                next_sweep_ms = now + SWEEP_INTERVAL_MS;
                for g in self.groups.values_mut() {
                    g.expire(now, &self.transport);
                }
                self.elsewhere.expire(now, &self.transport);
            }
            let staged_ms = self.flush()?;
            let finished_ms = self.clock.monotonic_ms();
            let took_ms = finished_ms - turn_started_ms;
            if took_ms >= SLOW_TURN_MS {
                // The event loop stood still that long: heartbeats and votes waited too.
                // Where: stepping the cores and writing the batch, or applying.
                let (stage_ms, finish_ms) = (staged_ms - turn_started_ms, finished_ms - staged_ms);
                let held = self.held.len();
                tracing::warn!(node = self.cfg.id(), took_ms, stage_ms, finish_ms, held, "slow turn");
            }
            self.publish_status();
        }
    }

    fn on_control(&mut self, control: Control) -> Result<(), NodeError> {
        let now = self.clock.monotonic_ms();
        let node = self.cfg.id();
        match control {
            Control::Directory { reply } => {
                let meta = crate::keyspace::META_RANGE;
                let result = match self.groups.get(&meta) {
                    None => Err(ControlError::NoSuchGroup(meta)),
                    // A storage error poisons the node, as anywhere else.
                    Some(g) => Ok(super::directory_reports::read(&self.disk.storage, g.founding())?),
                };
                let _ = reply.send(result);
            }
            Control::TransferLeader { group, to, reply } => {
                let result = match self.groups.get_mut(&group) {
                    None => Err(ControlError::NoSuchGroup(group)),
                    Some(g) => g.raft.transfer_leadership(now, to).map_err(ControlError::from),
                };
                if result.is_ok() {
                    tracing::info!(node, group, to, "transferring leadership");
                }
                let _ = reply.send(result);
            }
            Control::Split { key, reply } => {
                let result = self.split(&key);
                if let Ok(group) = result {
                    tracing::info!(node, group, key = ?key, "split proposed");
                }
                let _ = reply.send(result);
            }
            Control::ChangeMembership { group, voters, learners, reply } => {
                // A member that hosts no replica would never answer: the group could lose
                // its quorum to a configuration that cannot work.
                let range = self.topology.map.find(group);
                let hosts = |n: NodeId| range.is_some_and(|r| self.cfg.hosts(n, r));
                let absent = voters.iter().chain(&learners).copied().find(|&n| !hosts(n));
                let result = match (self.groups.get_mut(&group), absent) {
                    (None, _) => Err(ControlError::NoSuchGroup(group)),
                    (Some(_), Some(n)) => Err(ControlError::NotHosted { node: n, group }),
                    (Some(g), None) => {
                        g.raft.propose_membership(voters.clone(), learners.clone()).map_err(ControlError::from)
                    }
                };
                if let Ok(index) = result {
                    tracing::info!(node, group, index, ?voters, ?learners, "configuration change started");
                }
                let _ = reply.send(result.map(|_| ()));
            }
            Control::Move { group, from, to, reply } => {
                let result = self.start_move(now, group, from, to);
                if let Ok(from) = result {
                    tracing::info!(node, group, from, to, "replica move started");
                }
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    fn publish_status(&mut self) {
        let statuses: Vec<NodeStatus> = self.groups.values().map(Replica::status).collect();
        self.status.send_if_modified(|current| {
            let changed = *current != statuses;
            if changed {
                *current = statuses;
            }
            changed
        });
        let map = &self.topology.map;
        self.range_map.send_if_modified(|current| {
            let changed = current != map;
            if changed {
                *current = map.clone();
            }
            changed
        });
    }

    /// Handles one message; an error is a storage failure (lending or taking a peer's
    /// state reads and writes storage), and poisons the node.
    fn on_inbound(&mut self, inbound: Inbound) -> Result<(), NodeError> {
        let wire: Wire = match codec::decode(&inbound.payload, WIRE_BYTES_MAX) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(node = self.cfg.id(), from = inbound.from, error = %e, "undecodable message dropped");
                return Ok(());
            }
        };
        self.on_message(inbound.from, wire)
    }

    fn on_message(&mut self, from: NodeId, wire: Wire) -> Result<(), NodeError> {
        let now = self.clock.monotonic_ms();
        match wire {
            Wire::Raft(env) => self.on_raft(from, env),
            Wire::RaftBatch(envelopes) => {
                for env in envelopes {
                    self.on_raft(from, env);
                }
            }
            Wire::Request { group, req_id, command } => {
                if !self.recent_requests.first_time(from, req_id) {
                    tracing::debug!(node = self.cfg.id(), from, req_id, "duplicate request dropped");
                    return Ok(());
                }
                let origin = Origin::Remote { node: from, group, req_id };
                let command = match M::decode(&command) {
                    Ok(c) => c,
                    Err(e) => {
                        origin.answer(&self.transport, Err(ClientError::Malformed(e.to_string())));
                        return Ok(());
                    }
                };
                // The sender routed it; a route that disagrees with ours is stale (theirs,
                // or ours for a range we do not host: they learn it is not newer).
                match self.route(&command) {
                    Ok(g) if g == group => {}
                    Ok(_) => {
                        let moved = self.topology.moved(&M::keys(&command));
                        origin.answer(&self.transport, Err(moved));
                        return Ok(());
                    }
                    Err(e) => {
                        origin.answer(&self.transport, Err(e));
                        return Ok(());
                    }
                }
                let Some(replica) = self.groups.get(&group) else {
                    if self.is_server(from) {
                        // A node forwarded it here: answer who hosts it, rather than
                        // forward a forward.
                        crate::sometimes!("range_moved_answered");
                        let moved = self.topology.moved(&M::keys(&command));
                        origin.answer(&self.transport, Err(moved));
                    } else {
                        self.on_call(command, origin);
                    }
                    return Ok(());
                };
                if replica.raft.membership().is_member(from) && !replica.raft.is_leader() {
                    // Forwarded once already: answer instead of forwarding in a loop.
                    let hint = replica.raft.leader_id();
                    origin.answer(&self.transport, Err(ClientError::NotLeader { leader_hint: hint }));
                } else {
                    self.on_call(command, origin);
                }
            }
            Wire::RangeWanted { group } => {
                if let Some(g) = self.groups.get(&group) {
                    let known = Wire::RangeKnown { range: g.range().clone() };
                    self.transport.send(from, codec::encode(&known));
                }
            }
            Wire::RangeKnown { range } if self.is_server(from) => self.on_range_known(now, range)?,
            Wire::RangeKnown { .. } => {}
            Wire::RangeReport { ranges } if self.is_server(from) => self.on_range_report(from, ranges)?,
            Wire::RangeReport { .. } => {}
            Wire::NodeReport { report } => self.placement.heard(now, from, &report),
            Wire::PlacementOrder { op } if self.is_server(from) => self.on_placement_order(now, op),
            Wire::PlacementOrder { .. } => {}
            Wire::StateWanted { group, base, meta, chunk } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.lend_state(now, from, base, meta, chunk, &self.disk, &self.transport)?;
                }
            }
            Wire::StateChunk { group, meta, membership, chunk, data, done } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    let (disk, transport) = (&mut self.disk, &self.transport);
                    g.on_state_chunk(now, from, meta, membership, chunk, &data, done, disk, transport)?;
                }
            }
            Wire::Reply { group, req_id, result } => {
                if let Err(ClientError::RangeMoved { descriptor }) = &result {
                    self.topology.map.learn(descriptor);
                }
                // A hosted group's own forward (to its leader), or one of ours to a
                // range's replicas elsewhere (a range hosted here may be asked too, see
                // `on_call`).
                let local = self.groups.get_mut(&group).and_then(|g| g.pending.forwards.remove(&req_id));
                let Some(f) = local else {
                    self.elsewhere.on_reply(group, req_id, result, &self.transport);
                    return Ok(());
                };
                let result = result.and_then(|bytes| {
                    // The leader answered, so the command may have run: an answer we
                    // cannot read leaves the outcome unknown.
                    codec::decode(&bytes, WIRE_BYTES_MAX).map_err(|e| ClientError::UndecodableReply(e.to_string()))
                });
                f.origin.answer(&self.transport, result);
            }
        }
        Ok(())
    }

    fn on_raft(&mut self, from: NodeId, env: Envelope) {
        let now = self.clock.monotonic_ms();
        let addressed = env.to == self.cfg.id() && env.from == from;
        let from_server = self.is_server(from);
        match self.groups.get_mut(&env.group) {
            Some(g) if addressed => g.receive(now, env),
            None if addressed && from_server => self.ask_range(now, from, env.group),
            _ => tracing::warn!(node = self.cfg.id(), from, group = env.group, "misrouted raft message dropped"),
        }
    }

    /// The group that serves `command`, or the error its caller hears.
    fn route(&self, command: &M::Command) -> Result<GroupId, ClientError> {
        self.route_keys(&M::keys(command))
    }

    fn route_keys(&self, keys: &[&[u8]]) -> Result<GroupId, ClientError> {
        self.topology.map.route(keys).map_err(|e| match e {
            Unroutable::CrossGroup => ClientError::CrossGroup,
            Unroutable::Reserved => ClientError::ReservedKey,
        })
    }

    /// Whether `node` is one of the cluster's initial voters (where every replica is
    /// placed), not a client: only the simulator's clients send requests over the
    /// transport. A spare could send one too, but it hosts every group, so it never
    /// forwards one it could not serve.
    fn is_server(&self, node: NodeId) -> bool {
        self.cfg.raft.voters.contains(&node)
    }

    /// A client's command: to the replica of its group here, or forwarded to one.
    fn on_call(&mut self, command: M::Command, origin: Origin<M>) {
        let g = match self.route(&command) {
            Ok(g) => g,
            Err(e) => return origin.answer(&self.transport, Err(e)),
        };
        let now = self.clock.monotonic_ms();
        let me = self.cfg.id();
        match self.groups.get_mut(&g) {
            Some(group) if group.holds_keys(&M::keys(&command)) => {
                group.on_call(now, command, origin, &self.transport, self.observer.as_ref())
            }
            Some(_) => {
                // The map's entry for these keys is what is left of a range hosted here
                // after the map learnt its narrower descriptor, not who took the rest (a
                // replica that arrived after the splits, say). Its other replicas know:
                // their answer (`RangeMoved`) teaches the map.
                let mut rest = self.topology.map.descriptor(g).clone();
                rest.replicas.retain(|&n| n != me);
                if rest.replicas.is_empty() {
                    return origin.answer(&self.transport, Err(ClientError::NoLeader));
                }
                crate::sometimes!("stale_remnant_asked");
                self.elsewhere.forward(now, &rest, &command, origin, &self.transport)
            }
            None => self.elsewhere.forward(now, self.topology.map.descriptor(g), &command, origin, &self.transport),
        }
    }

    /// Every group's effects into one batch, written unless a sync runs (the write
    /// would wait for it); messages that promise nothing go at once, the rest of the
    /// batch is held for its sync. Then what is durable is released, and the next sync
    /// starts. Returns when staging ended, for the slow-turn report.
    fn flush(&mut self) -> Result<u64, NodeError> {
        let now = self.clock.monotonic_ms();
        let mut held = Held { mark: 0, frames: PeerFrames::default(), groups: Vec::new() };
        for (&id, g) in self.groups.iter_mut() {
            let staged = g.stage(now, &mut self.disk, &mut self.topology, &mut self.frames, &self.transport)?;
            if !staged.is_empty() {
                held.groups.push((id, staged));
            }
        }
        if !self.disk.is_syncing() {
            self.disk.write_batch()?;
        }
        held.mark = self.disk.mark();
        held.frames = self.frames.take_synced();
        if raft::PlantedBug::SendBeforeSync.is_active(self.cfg.raft.planted_bug) {
            held.frames.flush(&self.transport);
        }
        self.frames.flush(&self.transport);
        if !held.frames.is_empty() || !held.groups.is_empty() {
            self.held.push_back(held);
        }
        let staged_ms = self.clock.monotonic_ms();
        self.release()?;
        Ok(staged_ms)
    }

    /// Starts a replica for every group a split gave this node (its records are written,
    /// with the split's batch).
    fn start_born(&mut self) -> Result<(), NodeError> {
        let now = self.clock.monotonic_ms();
        for range in std::mem::take(&mut self.topology.born) {
            let id = range.id;
            let replica = Replica::recover(&self.cfg, range, &self.disk.storage, now, self.observer.as_ref())?;
            assert!(self.groups.insert(id, replica).is_none(), "group {id} was born twice");
        }
        Ok(())
    }

    /// Drops every replica its range removed from this node (its records went with the
    /// batch that applied the removal): whoever waits on it is answered.
    fn drop_removed(&mut self) {
        for id in std::mem::take(&mut self.topology.dropped) {
            let g = self.groups.remove(&id).expect("a removed replica was running");
            debug_assert!(g.is_removed(), "group {id} dropped but not removed");
            tracing::info!(node = self.cfg.id(), group = id, "replica removed from its range and dropped");
            g.retire(&self.transport);
        }
    }

    /// Hands out the held batches that are durable, oldest first: their events, then
    /// their messages, then each group applies and answers (answers promise durability:
    /// a committed entry is on a quorum's disks, and on ours too before we say so). Then
    /// starts a sync for the rest. Finishing writes, so it waits while a sync runs.
    fn release(&mut self) -> Result<(), NodeError> {
        // Every group serves its confirmed reads and notices leader changes, sync or not
        // (with nothing to apply, `finish` writes nothing).
        for g in self.groups.values_mut() {
            g.finish(Staged::default(), &mut self.disk, &mut self.topology, &self.transport, self.observer.as_ref())?;
        }
        if self.disk.is_syncing() {
            return Ok(());
        }
        self.disk.write_batch()?;
        while let Some(front) = self.held.front() {
            if !self.disk.is_durable(front.mark, front.needs_sync()) {
                break;
            }
            let mut held = self.held.pop_front().expect("looked at");
            // A replica removed since its batch was staged is gone: what it staged then
            // was written before its removal deleted its records, and promises nothing.
            let live = |id: GroupId| self.groups.get(&id).is_some_and(|g| !g.is_removed());
            held.groups.retain(|(id, _)| live(*id));
            held.frames.retain_groups(live);
            for (id, staged) in held.groups.iter_mut() {
                self.groups[id].report(staged, self.observer.as_ref());
            }
            held.frames.flush(&self.transport);
            for (id, staged) in held.groups {
                let g = self.groups.get_mut(&id).expect("a hosted group");
                g.finish(staged, &mut self.disk, &mut self.topology, &self.transport, self.observer.as_ref())?;
            }
        }
        self.start_born()?;
        self.drop_removed();
        if self.held.front().is_some_and(Held::needs_sync) {
            self.disk.start_sync()?;
        }
        // What is still held waits for a sync that runs: nothing waits for nothing.
        debug_assert!(self.held.is_empty() || self.disk.is_syncing(), "held batches with no sync to release them");
        Ok(())
    }
}

/// The groups the node hosts (as recorded once a split changed them, else as placed at
/// creation) with their ranges as recorded, and the routing map that knows them.
fn recover_topology(cfg: &NodeConfig, storage: &impl Storage) -> Result<Topology, NodeError> {
    let hosted = match split::load_hosted(storage)? {
        Some(hosted) => hosted,
        None => cfg.hosted().into_iter().collect(),
    };
    let mut map = cfg.keyspace.clone();
    for &g in &hosted {
        let range = match RaftStore::new(g).load_range(storage)? {
            Some(range) => range,
            None => map.find(g).cloned().ok_or_else(|| NodeError::Corrupt(format!("group {g} has no range")))?,
        };
        map.learn(&range);
    }
    let removed = Tombstones::load(storage)?;
    Ok(Topology { map, hosted, born: Vec::new(), dropped: Vec::new(), removed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::META_RANGE;

    /// Node 2 of 4 voters and a spare, 4 ranges with 2 replicas each.
    fn config(id: NodeId) -> NodeConfig {
        let mut cfg = NodeConfig::new(id, vec![1, 2, 3, 4], 0);
        cfg.keyspace = Keyspace::hashed(4).and_then(|k| k.place(&[1, 2, 3, 4], 2)).unwrap();
        cfg
    }

    #[test]
    fn a_node_hosts_the_ranges_placed_on_it_with_their_replicas_as_voters() {
        let cfg = config(2);
        // Replicas dealt round-robin: [1, 2], [3, 4], [1, 2], [3, 4].
        assert_eq!(cfg.hosted(), [1, 3, META_RANGE], "and the meta range, on the first 3 of 4 voters");
        assert_eq!(cfg.raft_config(cfg.keyspace.descriptor(3)).voters, [1, 2]);
        assert_eq!(cfg.raft_config(cfg.keyspace.descriptor(3)).group, 3);
        assert_eq!(config(5).hosted(), [1, 2, 3, 4, META_RANGE], "a spare hosts every range, outside its membership");
        let mut few = config(4);
        few.keyspace = Keyspace::hashed(1).and_then(|k| k.place(&[1, 2, 3, 4], 3)).unwrap();
        assert!(few.hosted().is_empty(), "a voter without a replica hosts nothing (node 4 is not on the meta range)");
        assert!(!few.hosts(4, few.keyspace.descriptor(1)), "so it can join no group's membership");
        assert!(few.hosts(5, few.keyspace.descriptor(1)), "a spare can");
        assert_eq!(
            NodeConfig::new(1, vec![1, 2, 3], 0).hosted(),
            [1, META_RANGE],
            "by default one range on every voter"
        );
    }
}
