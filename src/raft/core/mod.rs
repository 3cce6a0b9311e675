//! The Raft replica: its state, its inputs and queries, timers, and the dispatch of
//! messages. Each protocol concern lives in a file of its own, all of them `impl Raft`:
//!
//! ```text
//!   step(now, Tick | Receive) ─▶ receive ─┬─ election.rs           votes, pre-votes, roles (§5.2)
//!   propose, read_index, …                ├─ replication.rs        appends, commit rule (§5.3, §5.4)
//!                                         ├─ snapshot_transfer.rs  compaction, InstallSnapshot (§7)
//!                                         ├─ membership_change.rs  joint consensus (thesis §4)
//!                                         ├─ reads.rs              ReadIndex (thesis §6.4)
//!                                         └─ transfer.rs           leadership transfer (§3.10)
//!   drain_effects() ◀── effects, in the order the driver must apply them
//! ```
//!
//! Sub-states with logic of their own are separate types one level up:
//! `config_history.rs`, `read_queue.rs`, `incoming_snapshot.rs`, `progress.rs`, `log.rs`.

mod election;
mod membership_change;
mod reads;
mod replication;
mod snapshot_transfer;
mod transfer;

pub use snapshot_transfer::SnapshotChunk;

use transfer::Transfer;

use super::config_history::ConfigHistory;
use super::incoming_snapshot::IncomingSnapshot;
use super::lease::{self, DriftViolation};
use super::log::Log;
use super::progress::Progress;
use super::read_queue::ReadQueue;
use super::{
    AppendResult, ClockEcho, Config, ConfigError, Durability, Effect, Entry, Envelope, HardState, Index, Membership,
    Message, Payload, PlantedBug, SnapshotMeta, Term,
};
use crate::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Inputs besides proposals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Time passed; fire whatever deadline is due.
    Tick,
    /// A message from a peer. The driver has already checked `envelope.to`/`group`.
    Receive(Envelope),
    /// A chunk of the state machine the core asked for (`Effect::ReadSnapshotChunk`).
    SnapshotChunk(SnapshotChunk),
}

#[derive(Clone, Debug)]
pub(crate) enum Role {
    Follower,
    /// Asking for pre-votes: the term is unchanged until a quorum would vote for us.
    PreCandidate {
        votes: BTreeSet<NodeId>,
    },
    Candidate {
        votes: BTreeSet<NodeId>,
    },
    Leader {
        progress: BTreeMap<NodeId, Progress>,
    },
}

/// Why a proposal was not accepted. Both are definite: nothing was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("too many uncommitted entries")]
    Backpressure,
    #[error("leadership is being transferred to {to}")]
    Transferring { to: NodeId },
}

/// Why a configuration change was not started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("a new leader commits an entry of its own term before changing the configuration")]
    NotCommittedInTerm,
    #[error("a configuration change is still in progress")]
    ChangeInProgress,
    #[error("a configuration needs at least one voter, and no node can be both voter and learner")]
    Invalid,
    #[error("leadership is being transferred")]
    Transferring,
}

/// Why a leadership transfer cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("node {0} is not a voter of this group")]
    NotAVoter(NodeId),
}

pub struct Raft {
    /// Visible to the core's tests, which tune a replica after building it.
    pub(super) cfg: Config,
    rng: ChaCha8Rng,
    hard: HardState,
    log: Log,
    commit_index: Index,
    role: Role,
    leader_id: Option<NodeId>,
    election_deadline_ms: u64,
    heartbeat_deadline_ms: u64,
    /// Until then, a follower believes its leader alive (check-quorum): it neither grants
    /// pre-votes nor lets a vote request raise its term.
    lease_until_ms: u64,
    /// With lease reads, a node that just started refuses votes for the minimum election
    /// timeout: it may have promised a leader that before it restarted, and forgot.
    boot_lease_until_ms: u64,
    /// This leader sent `TimeoutNow` in its term: voters grant that election despite
    /// their vote leases, so it holds no lease for the rest of the term.
    lease_forfeited: bool,
    /// Reads answered from the lease, without a round of messages (for metrics).
    lease_reads_served: u64,
    /// Followers' clocks seen breaking the drift bound, and the latest.
    drift_violations: u64,
    last_drift_violation: Option<(NodeId, DriftViolation)>,
    /// When a leader next checks that it heard from a quorum (check-quorum).
    check_quorum_deadline_ms: u64,
    effects: Vec<Effect>,
    /// Elections this replica started since it was built (for metrics).
    elections_started: u64,
    /// A leader's ReadIndex reads and its rounds of contact.
    reads: ReadQueue,
    /// A leadership transfer in progress: the target, whether `TimeoutNow` went out, and
    /// when the attempt is abandoned (an election timeout after it began).
    transfer: Option<Transfer>,
    /// The driver's state machine is at this index (`advance_applied`): what a snapshot
    /// sent to a follower holds.
    applied: Index,
    /// The time of the latest input, for transitions that follow a commit.
    last_now_ms: u64,
    /// The configurations of the log: as of the snapshot and after it.
    configs: ConfigHistory,
    /// A snapshot being received from the leader, chunk by chunk.
    incoming_snapshot: IncomingSnapshot,
    /// A leader's bytes of entries past the commit index (entry sizes as `Entry::size_bytes`),
    /// bounded by `uncommitted_bytes_max`.
    uncommitted_bytes: usize,
    /// Proposals were appended since the last broadcast. Proposals are batched: the
    /// appends that carry them go out when the effects are drained, so many proposals
    /// between two drains travel in one AppendEntries per follower.
    broadcast_due: bool,
    /// The driver's state machine was lost (`lose_state_machine`): until a snapshot is
    /// installed this replica neither campaigns nor commits.
    awaiting_snapshot: bool,
}

impl std::fmt::Debug for Raft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft")
            .field("id", &self.cfg.id)
            .field("term", &self.hard.term)
            .field("voted_for", &self.hard.voted_for)
            .field("role", &self.role_name())
            .field("last_index", &self.log.last_index())
            .field("commit_index", &self.commit_index)
            .finish()
    }
}

impl Raft {
    /// Builds a replica from its persisted state (both empty for a fresh node).
    /// `seed` drives the randomised election timeouts.
    pub fn new(
        cfg: Config,
        seed: u64,
        now_ms: u64,
        hard: HardState,
        entries: Vec<Entry>,
    ) -> Result<Self, RecoverError> {
        Self::with_snapshot(cfg, seed, now_ms, hard, None, entries, 0)
    }

    /// Like [`Raft::new`] for a node whose log was compacted (`snapshot`: where, and the
    /// configuration then; `entries` follow it) and whose state machine has applied every
    /// entry up to `applied` (at least the snapshot's index: compaction follows applying).
    pub fn with_snapshot(
        cfg: Config,
        seed: u64,
        now_ms: u64,
        hard: HardState,
        snapshot: Option<(SnapshotMeta, Membership)>,
        entries: Vec<Entry>,
        applied: Index,
    ) -> Result<Self, RecoverError> {
        cfg.validate()?;
        let meta = snapshot.as_ref().map(|(m, _)| *m).unwrap_or_default();
        let base_membership = match &snapshot {
            Some((_, membership)) => membership.clone(),
            None => Membership::with_voters(cfg.voters.iter().copied()),
        };
        let configs = ConfigHistory::recover(base_membership, &entries);
        if meta.term > hard.term {
            return Err(RecoverError::Log(format!(
                "snapshot term {} is above the persisted term {}",
                meta.term, hard.term
            )));
        }
        let log = Log::from_parts(meta, entries).map_err(RecoverError::Log)?;
        if applied < meta.index || applied > log.last_index() {
            return Err(RecoverError::Log(format!(
                "applied {applied} is outside the log [{}, {}]",
                meta.index,
                log.last_index()
            )));
        }
        if let Some(last) = log.entry(log.last_index()) {
            if last.term > hard.term {
                return Err(RecoverError::Log(format!(
                    "last entry's term {} is above the persisted term {}",
                    last.term, hard.term
                )));
            }
        }
        let mut raft = Raft {
            rng: ChaCha8Rng::seed_from_u64(seed),
            cfg,
            hard,
            log,
            // What was applied was committed.
            commit_index: applied,
            applied,
            role: Role::Follower,
            leader_id: None,
            election_deadline_ms: 0,
            heartbeat_deadline_ms: 0,
            lease_until_ms: 0,
            boot_lease_until_ms: 0,
            lease_forfeited: false,
            lease_reads_served: 0,
            drift_violations: 0,
            last_drift_violation: None,
            check_quorum_deadline_ms: 0,
            effects: Vec::new(),
            elections_started: 0,
            broadcast_due: false,
            uncommitted_bytes: 0,
            reads: ReadQueue::default(),
            transfer: None,
            configs,
            last_now_ms: now_ms,
            incoming_snapshot: IncomingSnapshot::default(),
            awaiting_snapshot: false,
        };
        raft.reset_election_deadline(now_ms);
        if raft.cfg.lease_reads {
            raft.boot_lease_until_ms = now_ms + raft.cfg.election_timeout_ms_min;
        }
        Ok(raft)
    }

    // ----- queries -----------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn term(&self) -> Term {
        self.hard.term
    }
    pub fn hard_state(&self) -> HardState {
        self.hard
    }
    pub fn role_name(&self) -> &'static str {
        match self.role {
            Role::Follower => "follower",
            Role::PreCandidate { .. } => "pre-candidate",
            Role::Candidate { .. } => "candidate",
            Role::Leader { .. } => "leader",
        }
    }
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    /// The term of entry `index`: known for the entries in the log and the last one the
    /// log was compacted to.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.term_at(index)
    }
    /// `None` for indexes not in the log, those compacted into the snapshot included.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.entry(index)
    }
    /// Reads this replica answered from its lease since it was built.
    pub fn lease_reads_served(&self) -> u64 {
        self.lease_reads_served
    }

    /// How often a follower's clock was seen breaking the drift bound, and the latest case.
    pub fn drift_violations(&self) -> (u64, Option<(NodeId, DriftViolation)>) {
        (self.drift_violations, self.last_drift_violation)
    }

    /// Whether this leader may answer reads from its lease at `now_ms` (see `lease.rs`):
    /// lease reads are on, it committed in its term, it never handed leadership away in
    /// it, and a quorum of followers whose clocks keep the bound acknowledged an append
    /// sent less than a lease ago.
    pub fn lease_valid(&self, now_ms: u64) -> bool {
        let Role::Leader { progress } = &self.role else { return false };
        if !self.cfg.lease_reads || self.lease_forfeited || !self.committed_in_term() {
            return false;
        }
        let me = self.cfg.id;
        // Shifted by one so that 0 means "backs no lease".
        let from = |id: NodeId| {
            if id == me {
                now_ms + 1
            } else {
                progress.get(&id).and_then(|p| p.clock.lease_from_ms(now_ms)).map_or(0, |t| t + 1)
            }
        };
        let start = self.membership().quorum_value(from, false);
        let lease = lease::lease_ms(self.cfg.election_timeout_ms_min, self.cfg.clock_drift_ppm_max);
        start > 0 && now_ms < start - 1 + lease
    }

    /// Elections this replica started since it was built.
    pub fn elections_started(&self) -> u64 {
        self.elections_started
    }
    /// A leader's view of how far each other voter's log matches its own (empty on a
    /// follower or candidate).
    pub fn follower_match(&self) -> Vec<(NodeId, Index)> {
        match &self.role {
            Role::Leader { progress } => progress.iter().map(|(&id, p)| (id, p.match_index)).collect(),
            _ => Vec::new(),
        }
    }
    /// The earliest time at which `Input::Tick` has work to do.
    pub fn next_deadline_ms(&self) -> u64 {
        let deadline = match self.role {
            Role::Leader { .. } if self.cfg.check_quorum => {
                self.heartbeat_deadline_ms.min(self.check_quorum_deadline_ms)
            }
            Role::Leader { .. } => self.heartbeat_deadline_ms,
            _ => self.election_deadline_ms,
        };
        match self.transfer {
            Some(t) => deadline.min(t.deadline_ms),
            None => deadline,
        }
    }

    /// Takes the effects produced since the last call, in the order they must be applied.
    pub fn drain_effects(&mut self) -> Vec<Effect> {
        if self.reads.start_round() {
            // One round of contact confirms every read that arrived since the last round.
            self.broadcast_due = false;
            self.broadcast_append(true);
            self.release_reads();
        }
        if std::mem::take(&mut self.broadcast_due) {
            // Still leader (a step since the proposal may have deposed us): send what the
            // batch of proposals appended.
            self.broadcast_append(false);
        }
        std::mem::take(&mut self.effects)
    }

    // ----- inputs ------------------------------------------------------------------

    pub fn step(&mut self, now_ms: u64, input: Input) {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        match input {
            Input::Tick => self.tick(now_ms),
            Input::Receive(env) => self.receive(now_ms, env),
            Input::SnapshotChunk(chunk) => self.on_snapshot_chunk(chunk),
        }
        self.check_invariants();
    }

    /// Appends `command` to the leader's log. On success returns where it landed: the
    /// proposal is committed iff the entry applied at that index has that term.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<(Index, Term), ProposeError> {
        self.propose_payload(Payload::Command(command))
    }

    /// Appends a change of the group's range (`Payload::Range`), like `propose`.
    pub fn propose_range(&mut self, change: Vec<u8>) -> Result<(Index, Term), ProposeError> {
        self.propose_payload(Payload::Range(change))
    }

    fn propose_payload(&mut self, payload: Payload) -> Result<(Index, Term), ProposeError> {
        let bytes = match &payload {
            Payload::Command(b) | Payload::Range(b) => b.len(),
            Payload::Noop | Payload::Membership(_) => 0,
        };
        if !self.is_leader() {
            return Err(ProposeError::NotLeader { leader_hint: self.leader_id });
        }
        if let Some(t) = self.transfer {
            // Entries appended now could leave the target behind forever (thesis §3.10).
            return Err(ProposeError::Transferring { to: t.to });
        }
        if self.log.last_index() - self.commit_index >= self.cfg.uncommitted_entries_max {
            return Err(ProposeError::Backpressure);
        }
        // At least one proposal is always let in, however large (within the command limit).
        if self.uncommitted_bytes > 0 && self.uncommitted_bytes + bytes > self.cfg.uncommitted_bytes_max {
            return Err(ProposeError::Backpressure);
        }
        let index = self.append_own(payload);
        self.broadcast_due = true;
        // Followers' acknowledgements trigger commits; a single-voter group has none.
        self.maybe_commit();
        self.check_invariants();
        Ok((index, self.hard.term))
    }

    // ----- time --------------------------------------------------------------------

    fn tick(&mut self, now_ms: u64) {
        match self.role {
            Role::Leader { .. } => {
                if self.cfg.check_quorum && now_ms >= self.check_quorum_deadline_ms && !self.check_quorum(now_ms) {
                    return;
                }
                if self.transfer.is_some_and(|t| now_ms >= t.deadline_ms) {
                    // The target did not take over in time: lead on, accept proposals again.
                    self.transfer = None;
                }
                if now_ms >= self.heartbeat_deadline_ms {
                    self.heartbeat_deadline_ms = self.next_heartbeat_ms(now_ms);
                    self.broadcast_append(true);
                }
            }
            Role::Follower | Role::PreCandidate { .. } | Role::Candidate { .. } => {
                if now_ms >= self.election_deadline_ms && !self.may_campaign() {
                    // Learners, removed nodes and nodes not yet added never campaign.
                    self.role = Role::Follower;
                    self.reset_election_deadline(now_ms);
                } else if now_ms >= self.election_deadline_ms {
                    if self.cfg.pre_vote {
                        self.pre_campaign(now_ms);
                    } else {
                        self.campaign(now_ms, false);
                    }
                }
            }
        }
    }

    /// The leader's periodic check that a quorum still answers it. Returns false if it
    /// stepped down.
    fn check_quorum(&mut self, now_ms: u64) -> bool {
        let Role::Leader { progress } = &mut self.role else { unreachable!("only a leader checks its quorum") };
        let me = self.cfg.id;
        let active: BTreeSet<NodeId> =
            progress.iter().filter(|(_, p)| p.recent_active).map(|(&id, _)| id).chain([me]).collect();
        for p in progress.values_mut() {
            p.recent_active = false;
        }
        self.check_quorum_deadline_ms = now_ms + self.cfg.election_timeout_ms_min;
        if self.membership().has_quorum(|id| active.contains(&id)) {
            return true;
        }
        // Clients of a leader that cannot commit should go elsewhere (thesis §6.2).
        crate::sometimes!("check_quorum_step_down");
        let term = self.hard.term;
        self.become_follower(now_ms, term, None);
        false
    }

    /// Whether this node believes a leader is alive (only with check-quorum): a leader
    /// itself, or a follower that heard from its leader within the minimum election
    /// timeout.
    fn in_lease(&self, now_ms: u64) -> bool {
        if PlantedBug::VoteDuringLease.is_active(self.cfg.planted_bug) {
            return false;
        }
        self.cfg.check_quorum
            && match self.role {
                Role::Leader { .. } => true,
                _ => (self.leader_id.is_some() && now_ms < self.lease_until_ms) || now_ms < self.boot_lease_until_ms,
            }
    }

    /// Heartbeats fall on multiples of the interval of the node's clock, so that every
    /// group a node leads sends them in the same batch and the node layer coalesces them
    /// into one message per peer.
    fn next_heartbeat_ms(&self, now_ms: u64) -> u64 {
        let interval = self.cfg.heartbeat_interval_ms;
        (now_ms / interval + 1) * interval
    }

    fn reset_election_deadline(&mut self, now_ms: u64) {
        let timeout = self.rng.gen_range(self.cfg.election_timeout_ms_min..self.cfg.election_timeout_ms_max);
        self.election_deadline_ms = now_ms + timeout;
    }
    // ----- messages ----------------------------------------------------------------

    fn receive(&mut self, now_ms: u64, env: Envelope) {
        if env.group != self.cfg.group || env.to != self.cfg.id {
            debug_assert!(false, "driver must route envelopes: {env:?}");
            return;
        }
        let from = env.from;
        let term = env.message.term();
        if term > self.hard.term {
            match env.message {
                // A pre-vote never raises a term: not the receiver's, and a grant (which
                // carries the term asked about) not the pre-candidate's.
                Message::PreVote { .. } | Message::PreVoteResponse { granted: true, .. } => {}
                // Thesis §4.2.3: while we believe a leader alive, a vote request from a
                // node that lost touch with it neither raises our term nor gets an answer.
                Message::RequestVote { transfer: false, .. } if self.in_lease(now_ms) => return,
                _ => {
                    let from_leader = matches!(env.message, Message::AppendEntries { .. } | Message::Heartbeat { .. });
                    let leader = from_leader.then_some(from);
                    self.become_follower(now_ms, term, leader);
                }
            }
        } else if term < self.hard.term {
            // Tell a stale sender about the newer term so that it steps down.
            match env.message {
                Message::RequestVote { .. } => {
                    let reply = Message::RequestVoteResponse { term: self.hard.term, granted: false };
                    self.send(from, reply, Durability::Immediately);
                }
                Message::PreVote { .. } => {
                    let reply = Message::PreVoteResponse { term: self.hard.term, granted: false };
                    self.send(from, reply, Durability::Immediately);
                }
                Message::AppendEntries { prev_log_index, .. } => {
                    let reply = Message::AppendEntriesResponse {
                        term: self.hard.term,
                        read_seq: 0,
                        clock: ClockEcho::default(),
                        result: AppendResult::Conflict {
                            rejected_prev_index: prev_log_index,
                            hint_index: 0,
                            hint_term: None,
                        },
                    };
                    self.send(from, reply, Durability::Immediately);
                }
                Message::Heartbeat { .. } => {
                    let reply =
                        Message::HeartbeatResponse { term: self.hard.term, read_seq: 0, clock: ClockEcho::default() };
                    self.send(from, reply, Durability::Immediately);
                }
                _ => {}
            }
            return;
        }
        match env.message {
            Message::RequestVote { last_log_index, last_log_term, .. } => {
                self.handle_request_vote(now_ms, from, last_log_index, last_log_term)
            }
            Message::RequestVoteResponse { granted, .. } => self.handle_vote_response(now_ms, from, granted),
            Message::PreVote { term, last_log_index, last_log_term } => {
                self.handle_pre_vote(now_ms, from, term, last_log_index, last_log_term)
            }
            Message::PreVoteResponse { term, granted } => self.handle_pre_vote_response(now_ms, from, term, granted),
            Message::AppendEntries {
                prev_log_index, prev_log_term, entries, leader_commit, read_seq, sent_ms, ..
            } => {
                if self.is_leader() {
                    // Two leaders in one term would break election safety (§5.2).
                    panic!("node {} is leader of term {} and got an append from {from}", self.cfg.id, term);
                }
                let prev = (prev_log_index, prev_log_term);
                self.handle_append_entries(now_ms, from, prev, entries, leader_commit, read_seq, sent_ms)
            }
            Message::AppendEntriesResponse { result, read_seq, clock, .. } => {
                self.handle_append_response(now_ms, from, result, read_seq, clock)
            }
            Message::Heartbeat { commit, read_seq, sent_ms, .. } => {
                if self.is_leader() {
                    panic!("node {} is leader of term {} and got a heartbeat from {from}", self.cfg.id, term);
                }
                self.handle_heartbeat(now_ms, from, commit, read_seq, sent_ms)
            }
            Message::HeartbeatResponse { read_seq, clock, .. } => {
                self.heard_from_follower(now_ms, from, read_seq, clock);
            }
            Message::InstallSnapshot { meta, membership, chunk, data, done, .. } => {
                if self.is_leader() {
                    panic!("node {} is leader of term {} and got a snapshot from {from}", self.cfg.id, term);
                }
                self.handle_install_snapshot(now_ms, from, meta, membership, chunk, data, done)
            }
            Message::InstallSnapshotResponse { meta, received, done, .. } => {
                self.handle_install_snapshot_response(from, meta, received, done)
            }
            Message::TimeoutNow { .. } => {
                // Only a follower of this term's leader takes the hint (a candidate is
                // already campaigning; a leader is the sender).
                let follower = matches!(self.role, Role::Follower | Role::PreCandidate { .. });
                if follower && self.leader_id == Some(from) && self.may_campaign() {
                    self.campaign(now_ms, true);
                }
            }
        }
    }

    fn send(&mut self, to: NodeId, message: Message, after: Durability) {
        let envelope = Envelope { group: self.cfg.group, from: self.cfg.id, to, message };
        self.effects.push(Effect::Send { envelope, after });
    }

    fn persist_hard_state(&mut self) {
        self.effects.push(Effect::PersistHardState(self.hard));
    }
    // ----- helpers -----------------------------------------------------------------

    fn check_invariants(&self) {
        debug_assert!(self.commit_index <= self.log.last_index(), "commit beyond log");
        debug_assert!(self.log.last_term() <= self.hard.term, "log term beyond current term");
        if let Role::Leader { progress } = &self.role {
            debug_assert_eq!(self.leader_id, Some(self.cfg.id));
            debug_assert_eq!(self.hard.voted_for, Some(self.cfg.id), "a leader voted for itself");
            for p in progress.values() {
                debug_assert!(p.match_index < p.next_index, "match below next");
                debug_assert!(p.next_index <= self.log.last_index() + 1, "next within log + 1");
            }
        }
        if let Role::Candidate { votes } | Role::PreCandidate { votes } = &self.role {
            debug_assert!(votes.contains(&self.cfg.id));
        }
    }
}

/// Persisted state that cannot be a Raft replica's: fatal for the node.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("bad configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("persisted log is inconsistent: {0}")]
    Log(String),
}
