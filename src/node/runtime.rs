//! The event loop of one node hosting one or more Raft groups (see `group.rs` for what a
//! group does in each batch, `outbox.rs` for how their messages travel together).

use super::dedup::RecentRequests;
use super::disk::Disk;
use super::group::Replica;
use super::outbox::Outbox;
use super::pending::{CallResult, Origin};
use super::{ClientError, ControlError, NodeError, NodeEvent, NodeStatus, Observer, Wire, WIRE_BYTES_MAX};
use crate::codec;
use crate::io::{Clock, Inbound, Storage, Transport};
use crate::kv::Command;
use crate::raft::{self, Envelope};
use crate::{GroupId, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The node hosts groups `1..=groups`, each owning a fixed share of the keys
    /// (`kv::group_of_key`); every node of a cluster hosts the same groups, with the same
    /// initial `voters`.
    pub groups: u64,
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
            groups: 1,
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

    pub(super) fn raft_config(&self, group: GroupId) -> raft::Config {
        let mut c = raft::Config::new(self.id, group, self.voters.clone());
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

/// Client calls queued to a node before `execute` waits.
const CALL_QUEUE_MAX: usize = 1024;
/// How often expired requests are swept.
const SWEEP_INTERVAL_MS: u64 = 50;
/// The group operators' requests act on.
const CONTROL_GROUP: GroupId = 1;
/// Most groups one node hosts.
pub const GROUPS_MAX: u64 = 256;

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
    status: watch::Receiver<Vec<NodeStatus>>,
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

    /// Asks this node, which must lead group 1, to hand leadership to voter `to`.
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

    /// The latest published status of the node's group 1 (the only group of a real
    /// node; operators' requests above act on it too).
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().first().cloned().unwrap_or_default()
    }

    /// The latest published status of every group the node hosts, by group.
    pub fn group_statuses(&self) -> Vec<NodeStatus> {
        self.status.borrow().clone()
    }
}

pub struct Node<T, S> {
    cfg: NodeConfig,
    groups: BTreeMap<GroupId, Replica>,
    disk: Disk<S>,
    outbox: Outbox,
    transport: T,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    inbox: mpsc::Receiver<Inbound>,
    calls: mpsc::Receiver<Call>,
    controls: mpsc::Receiver<Control>,
    status: watch::Sender<Vec<NodeStatus>>,
    recent_requests: RecentRequests,
}

impl<T: Transport, S: Storage> Node<T, S> {
    /// Recovers the node (every group it hosts) from `storage`.
    pub fn new(
        cfg: NodeConfig,
        transport: T,
        inbox: mpsc::Receiver<Inbound>,
        storage: S,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
    ) -> Result<(Self, NodeHandle), NodeError> {
        if !(1..=GROUPS_MAX).contains(&cfg.groups) {
            return Err(NodeError::Config(format!("{} groups: expected 1 to {GROUPS_MAX}", cfg.groups)));
        }
        let now = clock.monotonic_ms();
        let groups = (1..=cfg.groups)
            .map(|g| Replica::recover(&cfg, g, &storage, now, observer.as_ref()).map(|r| (g, r)))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let (tx, calls) = mpsc::channel(CALL_QUEUE_MAX);
        let (control_tx, controls) = mpsc::channel(CONTROL_QUEUE_MAX);
        let (status, status_rx) = watch::channel(Vec::new());
        let mut node = Node {
            disk: Disk::new(storage, cfg.sync_writes),
            cfg,
            groups,
            outbox: Outbox::default(),
            transport,
            clock,
            observer,
            inbox,
            calls,
            controls,
            status,
            recent_requests: RecentRequests::default(),
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
            for &g in self.groups.keys() {
                self.observer.on_event(self.cfg.id, g, NodeEvent::Poisoned { error: e.to_string() });
            }
            tracing::error!(node = self.cfg.id, error = %e, "node stopped");
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
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    // Even with syncing off, a clean stop leaves everything on disk.
                    self.disk.sync_now()?;
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
                    Some(c) => self.on_control(c),
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
            for g in self.groups.values_mut() {
                g.tick(now);
            }
            if now >= next_sweep_ms {
                next_sweep_ms = now + SWEEP_INTERVAL_MS;
                for g in self.groups.values_mut() {
                    g.expire(now, &self.transport);
                }
            }
            self.flush()?;
            self.publish_status();
        }
    }

    fn on_control(&mut self, control: Control) {
        let now = self.clock.monotonic_ms();
        let group = self.groups.get_mut(&CONTROL_GROUP).expect("every node hosts group 1");
        match control {
            Control::TransferLeader { to, reply } => {
                let result = group.raft.transfer_leadership(now, to).map_err(ControlError::from);
                if result.is_ok() {
                    tracing::info!(node = self.cfg.id, to, "transferring leadership");
                }
                let _ = reply.send(result);
            }
            Control::ChangeMembership { voters, learners, reply } => {
                let result = group.raft.propose_membership(voters.clone(), learners.clone()).map(|index| {
                    tracing::info!(node = self.cfg.id, index, ?voters, ?learners, "configuration change started");
                });
                let _ = reply.send(result.map_err(ControlError::from));
            }
        }
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
            Wire::Raft(env) => self.on_raft(inbound.from, env),
            Wire::RaftBatch(envelopes) => {
                for env in envelopes {
                    self.on_raft(inbound.from, env);
                }
            }
            Wire::Request { req_id, command } => {
                if !self.recent_requests.first_time(inbound.from, req_id) {
                    tracing::debug!(node = self.cfg.id, from = inbound.from, req_id, "duplicate request dropped");
                    return;
                }
                let origin = Origin::Remote { node: inbound.from, req_id };
                let Some(g) = command.group(self.cfg.groups) else {
                    origin.answer(&self.transport, Err(ClientError::CrossGroup));
                    return;
                };
                let group = self.groups.get(&g).expect("routed to a hosted group");
                if group.raft.membership().is_member(inbound.from) && !group.raft.is_leader() {
                    // Forwarded once already: answer instead of forwarding in a loop.
                    let hint = group.raft.leader_id();
                    origin.answer(&self.transport, Err(ClientError::NotLeader { leader_hint: hint }));
                } else {
                    self.on_call(command, origin);
                }
            }
            Wire::Reply { req_id, result } => {
                // Forward ids are drawn per group from independent random starts.
                if let Some(f) = self.groups.values_mut().find_map(|g| g.pending.forwards.remove(&req_id)) {
                    f.origin.answer(&self.transport, result);
                }
            }
        }
    }

    fn on_raft(&mut self, from: NodeId, env: Envelope) {
        let now = self.clock.monotonic_ms();
        match self.groups.get_mut(&env.group) {
            Some(g) if env.to == self.cfg.id && env.from == from => g.receive(now, env),
            _ => tracing::warn!(node = self.cfg.id, from, group = env.group, "misrouted raft message dropped"),
        }
    }

    fn on_call(&mut self, command: Command, origin: Origin) {
        let Some(g) = command.group(self.cfg.groups) else {
            origin.answer(&self.transport, Err(ClientError::CrossGroup));
            return;
        };
        let now = self.clock.monotonic_ms();
        let group = self.groups.get_mut(&g).expect("routed to a hosted group");
        group.on_call(now, command, origin, &self.transport, self.observer.as_ref());
    }

    /// Every group's effects, then one write, one sync (if a message or an answer needs
    /// it), one frame per peer; then each group applies and answers.
    fn flush(&mut self) -> Result<(), NodeError> {
        let mut committed = false;
        for g in self.groups.values_mut() {
            committed |= g.stage(&mut self.disk, &mut self.outbox, &self.transport)?;
        }
        self.disk.write_batch()?;
        if self.outbox.needs_sync || committed {
            // Answers promise durability too (a committed entry is on a quorum's disks;
            // we sync our own writes as well before saying so).
            self.disk.make_durable()?;
        }
        for g in self.groups.values_mut() {
            g.report(self.observer.as_ref());
        }
        self.outbox.flush(&self.transport);
        for g in self.groups.values_mut() {
            g.finish(&mut self.disk, &self.transport, self.observer.as_ref())?;
        }
        Ok(())
    }
}
