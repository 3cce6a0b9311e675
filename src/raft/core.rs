//! The Raft replica: roles, elections, replication and the commit rule.

use super::lease::{self, ClockSample, DriftViolation};
use super::log::Log;
use super::progress::{Progress, ProgressState};
use super::{
    AppendResult, ClockEcho, Config, ConfigError, Durability, Effect, Entry, Envelope, HardState, Index, Membership,
    Message, Payload, PlantedBug, SnapshotMeta, Term,
};
use crate::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The largest snapshot a follower accepts from its leader.
const SNAPSHOT_RECEIVE_BYTES_MAX: usize = 1 << 30;

/// Reads a leader holds at once; more are refused with `Backpressure`.
const READS_PENDING_MAX: usize = 16 * 1024;

#[derive(Clone, Copy, Debug)]
struct Transfer {
    to: NodeId,
    timeout_now_sent: bool,
    deadline_ms: u64,
}

/// A read waiting for a quorum to confirm the leader.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    id: u64,
    /// The commit index when the read arrived: serve it once applied.
    index: Index,
    /// The round a quorum must echo (0: not sent yet).
    seq: u64,
}

/// Inputs besides proposals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Time passed; fire whatever deadline is due.
    Tick,
    /// A message from a peer. The driver has already checked `envelope.to`/`group`.
    Receive(Envelope),
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
    /// The leader's current contact round (see `Message::AppendEntries::read_seq`).
    read_seq: u64,
    /// Reads waiting for this leader's first commit in its term (a new leader does not
    /// know the commit index until then; thesis §6.4 step 1).
    reads_awaiting_commit: Vec<u64>,
    /// Reads waiting for a quorum to echo `seq` (0: their round is not sent yet).
    reads_awaiting_quorum: Vec<PendingRead>,
    /// A leadership transfer in progress: the target, whether `TimeoutNow` went out, and
    /// when the attempt is abandoned (an election timeout after it began).
    transfer: Option<Transfer>,
    /// The bytes of the latest snapshot (`log.snapshot()`), to send to followers that need
    /// what it replaced.
    snapshot_data: Option<Arc<Vec<u8>>>,
    /// The time of the latest input, for transitions that follow a commit.
    last_now_ms: u64,
    /// The configuration as of the snapshot (or the initial voters).
    base_membership: Membership,
    /// Configurations in the log after the snapshot, by index; the last is in force.
    configs: BTreeMap<Index, Membership>,
    /// A snapshot being received from the leader, chunk by chunk.
    incoming_snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    /// A leader's bytes of entries past the commit index (entry sizes as `Entry::size_bytes`),
    /// bounded by `uncommitted_bytes_max`.
    uncommitted_bytes: usize,
    /// Proposals were appended since the last broadcast. Proposals are batched: the
    /// appends that carry them go out when the effects are drained, so many proposals
    /// between two drains travel in one AppendEntries per follower.
    broadcast_due: bool,
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
        Self::with_snapshot(cfg, seed, now_ms, hard, None, entries)
    }

    /// Like [`Raft::new`] for a node that persisted a snapshot: `entries` follow it.
    pub fn with_snapshot(
        cfg: Config,
        seed: u64,
        now_ms: u64,
        hard: HardState,
        snapshot: Option<(SnapshotMeta, Membership, Arc<Vec<u8>>)>,
        entries: Vec<Entry>,
    ) -> Result<Self, RecoverError> {
        cfg.validate()?;
        let meta = snapshot.as_ref().map(|(m, _, _)| *m).unwrap_or_default();
        let base_membership = match &snapshot {
            Some((_, membership, _)) => membership.clone(),
            None => Membership::with_voters(cfg.voters.iter().copied()),
        };
        let configs = entries
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Membership(m) => Some((e.index, m.clone())),
                _ => None,
            })
            .collect();
        if meta.term > hard.term {
            return Err(RecoverError::Log(format!(
                "snapshot term {} is above the persisted term {}",
                meta.term, hard.term
            )));
        }
        let log = Log::from_parts(meta, entries).map_err(RecoverError::Log)?;
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
            // What a snapshot holds was committed.
            commit_index: meta.index,
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
            read_seq: 0,
            transfer: None,
            snapshot_data: snapshot.map(|(_, _, d)| d),
            base_membership,
            configs,
            last_now_ms: now_ms,
            incoming_snapshot: None,
            reads_awaiting_commit: Vec::new(),
            reads_awaiting_quorum: Vec::new(),
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
    /// `None` for indexes not in the log, those compacted into the snapshot included.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.entry(index)
    }
    /// The configuration in force: the newest in the log.
    pub fn membership(&self) -> &Membership {
        self.configs.values().next_back().unwrap_or(&self.base_membership)
    }

    /// The configuration in force at `index` (what a snapshot there must carry).
    pub fn membership_at(&self, index: Index) -> Membership {
        self.configs.range(..=index).next_back().map_or_else(|| self.base_membership.clone(), |(_, m)| m.clone())
    }

    /// Starts a change to `voters` and `learners` (§6): if the voters change, through the
    /// joint configuration, which the leader replaces by the new one once committed. One
    /// change at a time, and only after this leader committed an entry of its term.
    /// Returns where the first entry of the change landed.
    pub fn propose_membership(
        &mut self,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<Index, MembershipError> {
        if !self.is_leader() {
            return Err(MembershipError::NotLeader { leader_hint: self.leader_id });
        }
        if voters.is_empty() || !voters.is_disjoint(&learners) {
            return Err(MembershipError::Invalid);
        }
        if self.transfer.is_some() {
            return Err(MembershipError::Transferring);
        }
        let bug = PlantedBug::ConfigChangeBeforeCommitInTerm.is_active(self.cfg.planted_bug);
        if !self.committed_in_term() && !bug {
            return Err(MembershipError::NotCommittedInTerm);
        }
        let current = self.membership().clone();
        let last_config = self.configs.keys().next_back().copied();
        // The planted bug takes a predecessor's configuration as settled.
        let settled = |i: Index| bug && self.log.term_at(i).is_some_and(|t| t < self.hard.term);
        let pending = last_config.is_some_and(|i| i > self.commit_index && !settled(i));
        if (current.is_joint() && !last_config.is_some_and(settled)) || pending {
            return Err(MembershipError::ChangeInProgress);
        }
        let next = if voters == current.voters {
            Membership { voters, outgoing: BTreeSet::new(), learners }
        } else {
            Membership { voters, outgoing: current.voters, learners }
        };
        let index = self.append_own(Payload::Membership(next));
        self.broadcast_due = true;
        self.maybe_commit();
        Ok(index)
    }

    /// The configuration changed (appended, truncated, compacted or installed): a leader
    /// replicates to exactly the members.
    fn membership_changed(&mut self) {
        let members = self.membership().members();
        let next = self.log.last_index() + 1;
        let me = self.cfg.id;
        let Role::Leader { progress } = &mut self.role else { return };
        progress.retain(|id, _| members.contains(id));
        for id in members {
            if id != me {
                progress.entry(id).or_insert_with(|| Progress::new(next));
            }
        }
    }

    /// After a commit: a committed joint configuration is followed by the new one; a
    /// leader no longer among the voters of a committed configuration steps down (§6).
    fn advance_membership(&mut self, now_ms: u64) {
        if !self.is_leader() {
            return;
        }
        let Some((&index, m)) = self.configs.iter().next_back() else {
            if !self.base_membership.is_voter(self.cfg.id) {
                let term = self.hard.term;
                self.become_follower(now_ms, term, None);
            }
            return;
        };
        if index > self.commit_index {
            return;
        }
        if m.is_joint() {
            let next = Membership { voters: m.voters.clone(), outgoing: BTreeSet::new(), learners: m.learners.clone() };
            self.append_own(Payload::Membership(next));
            self.broadcast_due = true;
            self.maybe_commit();
        } else if !m.is_voter(self.cfg.id) {
            let term = self.hard.term;
            self.become_follower(now_ms, term, None);
        }
    }

    /// What the latest snapshot replaced (index 0: no snapshot).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.snapshot()
    }

    /// The driver took a snapshot of the state machine at `index` (applied, so committed)
    /// and made it durable: forget the entries it covers and send it to followers that
    /// need them.
    pub fn compact(&mut self, index: Index, data: Arc<Vec<u8>>) {
        assert!(index <= self.commit_index, "snapshot at {index} beyond commit {}", self.commit_index);
        assert!(index > self.log.snapshot().index, "snapshots move forward");
        self.base_membership = self.membership_at(index);
        self.configs = self.configs.split_off(&(index + 1));
        self.log.compact_to(index);
        self.snapshot_data = Some(data);
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
        if self.reads_awaiting_quorum.iter().any(|r| r.seq == 0) {
            // One round of contact confirms every read that arrived since the last round.
            self.read_seq += 1;
            let seq = self.read_seq;
            for r in self.reads_awaiting_quorum.iter_mut().filter(|r| r.seq == 0) {
                r.seq = seq;
            }
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
        }
        self.check_invariants();
    }

    /// Appends `command` to the leader's log. On success returns where it landed: the
    /// proposal is committed iff the entry applied at that index has that term.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<(Index, Term), ProposeError> {
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
        if self.uncommitted_bytes > 0 && self.uncommitted_bytes + command.len() > self.cfg.uncommitted_bytes_max {
            return Err(ProposeError::Backpressure);
        }
        let index = self.append_own(Payload::Command(command));
        self.broadcast_due = true;
        // Followers' acknowledgements trigger commits; a single-voter group has none.
        self.maybe_commit();
        self.check_invariants();
        Ok((index, self.hard.term))
    }

    /// Hands leadership to voter `to` (thesis §3.10): proposals are refused meanwhile;
    /// once `to`'s log matches ours it is told to start an election at once, which it
    /// wins unless something fails; after an election timeout the attempt is abandoned.
    /// Asking for a transfer to ourselves, or again to the same target, changes nothing.
    pub fn transfer_leadership(&mut self, now_ms: u64, to: NodeId) -> Result<(), TransferError> {
        if !self.is_leader() {
            return Err(TransferError::NotLeader { leader_hint: self.leader_id });
        }
        if !self.membership().is_voter(to) {
            return Err(TransferError::NotAVoter(to));
        }
        if to == self.cfg.id || self.transfer.is_some_and(|t| t.to == to) {
            return Ok(());
        }
        self.transfer =
            Some(Transfer { to, timeout_now_sent: false, deadline_ms: now_ms + self.cfg.election_timeout_ms_min });
        self.maybe_send_timeout_now(to);
        // Catch the target up if it is behind: a heartbeat goes even where the pipeline
        // is paused, and a rejection sets the leader probing from the right place.
        self.send_append(to, true);
        Ok(())
    }

    /// The leadership transfer in progress, if any: its target.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.to)
    }

    fn maybe_send_timeout_now(&mut self, from: NodeId) {
        let Some(t) = self.transfer else { return };
        let Role::Leader { progress } = &self.role else { return };
        let caught_up = progress.get(&from).is_some_and(|p| p.match_index == self.log.last_index());
        if t.to != from || t.timeout_now_sent || !caught_up {
            return;
        }
        self.transfer = Some(Transfer { timeout_now_sent: true, ..t });
        self.lease_forfeited = true;
        self.send(from, Message::TimeoutNow { term: self.hard.term }, Durability::Immediately);
    }

    /// Starts a linearizable read (ReadIndex, thesis §6.4): the answer comes as
    /// `Effect::ReadReady { id, index }` once a quorum has confirmed this leader, or as
    /// `Effect::ReadFailed { id }` if it stops leading first. `id` is the caller's.
    /// With lease reads on and the lease valid at `now_ms`, the answer is immediate.
    pub fn read_index(&mut self, now_ms: u64, id: u64) -> Result<(), ProposeError> {
        if !self.is_leader() {
            return Err(ProposeError::NotLeader { leader_hint: self.leader_id });
        }
        if self.lease_valid(now_ms) {
            self.lease_reads_served += 1;
            self.effects.push(Effect::ReadReady { id, index: self.commit_index });
            return Ok(());
        }
        if self.reads_awaiting_commit.len() + self.reads_awaiting_quorum.len() >= READS_PENDING_MAX {
            return Err(ProposeError::Backpressure);
        }
        if self.committed_in_term() {
            self.reads_awaiting_quorum.push(PendingRead { id, index: self.commit_index, seq: 0 });
        } else {
            self.reads_awaiting_commit.push(id);
        }
        Ok(())
    }

    fn committed_in_term(&self) -> bool {
        self.log.term_at(self.commit_index) == Some(self.hard.term)
    }

    /// Answers the reads whose round a quorum has echoed.
    fn release_reads(&mut self) {
        let Role::Leader { progress } = &self.role else {
            return;
        };
        let me = self.cfg.id;
        let acked =
            |id: NodeId| if id == me { self.read_seq } else { progress.get(&id).map_or(0, |p| p.read_seq_acked) };
        let confirmed = if PlantedBug::ReadIndexWithoutQuorum.is_active(self.cfg.planted_bug) {
            self.read_seq
        } else {
            self.membership().quorum_value(acked, false)
        };
        let (ready, waiting): (Vec<PendingRead>, Vec<PendingRead>) =
            std::mem::take(&mut self.reads_awaiting_quorum).into_iter().partition(|r| r.seq != 0 && r.seq <= confirmed);
        self.reads_awaiting_quorum = waiting;
        for r in ready {
            self.effects.push(Effect::ReadReady { id: r.id, index: r.index });
        }
    }

    /// A leader that stops leading fails its pending reads.
    fn fail_reads(&mut self) {
        let ids: Vec<u64> = std::mem::take(&mut self.reads_awaiting_commit)
            .into_iter()
            .chain(std::mem::take(&mut self.reads_awaiting_quorum).into_iter().map(|r| r.id))
            .collect();
        for id in ids {
            self.effects.push(Effect::ReadFailed { id });
        }
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

    // ----- elections (§5.2) --------------------------------------------------------

    /// Pre-vote (thesis §9.6): ask for votes in term + 1 without taking it.
    fn pre_campaign(&mut self, now_ms: u64) {
        self.leader_id = None;
        self.role = Role::PreCandidate { votes: BTreeSet::from([self.cfg.id]) };
        self.reset_election_deadline(now_ms);
        if self.won(&BTreeSet::from([self.cfg.id])) {
            self.campaign(now_ms, false);
            return;
        }
        // Nothing changed that needs persisting: the term and vote are untouched.
        let message = Message::PreVote {
            term: self.hard.term + 1,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        for to in self.other_voters() {
            self.send(to, message.clone(), Durability::Immediately);
        }
    }

    /// §5.4.1: a vote goes only to a candidate whose log is at least as up to date.
    fn log_up_to_date(&self, last_log_index: Index, last_log_term: Term) -> bool {
        let ok = last_log_term > self.log.last_term()
            || (last_log_term == self.log.last_term() && last_log_index >= self.log.last_index());
        ok || PlantedBug::VoteIgnoresLog.is_active(self.cfg.planted_bug)
    }

    fn handle_pre_vote(&mut self, now_ms: u64, from: NodeId, term: Term, last_log_index: Index, last_log_term: Term) {
        if self.in_lease(now_ms) {
            // Our leader is alive: no help for a rival, and no answer (as in etcd).
            return;
        }
        // A pre-vote for a later term may be granted whatever we voted in ours: granting
        // binds nothing.
        let can_vote = term > self.hard.term
            || self.hard.voted_for == Some(from)
            || (self.hard.voted_for.is_none() && self.leader_id.is_none());
        let granted = can_vote && self.log_up_to_date(last_log_index, last_log_term);
        let term = if granted { term } else { self.hard.term };
        self.send(from, Message::PreVoteResponse { term, granted }, Durability::Immediately);
    }

    fn handle_pre_vote_response(&mut self, now_ms: u64, from: NodeId, term: Term, granted: bool) {
        let proposed = self.hard.term + 1;
        let Role::PreCandidate { votes } = &mut self.role else {
            return;
        };
        if !granted || term != proposed {
            return;
        }
        votes.insert(from);
        let votes = votes.clone();
        if self.membership().is_voter(from) && self.won(&votes) {
            self.campaign(now_ms, false);
        }
    }

    fn campaign(&mut self, now_ms: u64, transfer: bool) {
        self.elections_started += 1;
        self.hard.term += 1;
        self.hard.voted_for = Some(self.cfg.id);
        self.persist_hard_state();
        self.leader_id = None;
        self.role = Role::Candidate { votes: BTreeSet::from([self.cfg.id]) };
        self.reset_election_deadline(now_ms);
        if self.won(&BTreeSet::from([self.cfg.id])) {
            self.become_leader(now_ms);
            return;
        }
        let message = Message::RequestVote {
            term: self.hard.term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
        };
        for to in self.other_voters() {
            self.send(to, message.clone(), Durability::Synced);
        }
    }

    fn become_follower(&mut self, now_ms: u64, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.hard.term, "terms never go back");
        if self.is_leader() {
            self.fail_reads();
            self.transfer = None;
        }
        if term > self.hard.term {
            self.hard.term = term;
            self.hard.voted_for = None;
            self.persist_hard_state();
        }
        self.role = Role::Follower;
        self.leader_id = leader;
        self.reset_election_deadline(now_ms);
    }

    fn become_leader(&mut self, now_ms: u64) {
        assert!(matches!(self.role, Role::Candidate { .. }), "only a candidate becomes leader");
        let next = self.log.last_index() + 1;
        self.uncommitted_bytes =
            (self.commit_index + 1..next).filter_map(|i| self.log.entry(i)).map(Entry::size_bytes).sum();
        let me = self.cfg.id;
        let progress = self
            .membership()
            .members()
            .into_iter()
            .filter(|&id| id != me)
            .map(|id| (id, Progress::new(next)))
            .collect();
        self.role = Role::Leader { progress };
        self.leader_id = Some(self.cfg.id);
        self.effects.push(Effect::BecameLeader { term: self.hard.term });
        self.heartbeat_deadline_ms = self.next_heartbeat_ms(now_ms);
        self.check_quorum_deadline_ms = now_ms + self.cfg.election_timeout_ms_min;
        self.read_seq = 0;
        self.lease_forfeited = false;
        // A no-op of the new term lets the leader commit what earlier terms left (§5.4.2).
        self.append_own(Payload::Noop);
        self.broadcast_append(false);
        self.maybe_commit(); // a single-voter group commits at once
    }

    fn handle_request_vote(&mut self, now_ms: u64, from: NodeId, last_log_index: Index, last_log_term: Term) {
        let log_ok = self.log_up_to_date(last_log_index, last_log_term);
        // As in etcd: a follower that knows this term's leader does not vote (a leader of
        // the term exists, so no other candidate could be elected in it anyway).
        let can_vote = match self.hard.voted_for {
            None => self.leader_id.is_none(),
            Some(v) => v == from,
        };
        // Whoever asks gets an answer, even from a node outside the configuration this node
        // has: the candidate may still count it (a joint configuration it has not left),
        // and only the candidate's configuration decides whose votes count.
        let granted = can_vote && log_ok;
        if granted {
            self.hard.voted_for = Some(from);
            if !PlantedBug::VoteNotPersisted.is_active(self.cfg.planted_bug) {
                self.persist_hard_state();
            }
            self.reset_election_deadline(now_ms);
        }
        self.send(from, Message::RequestVoteResponse { term: self.hard.term, granted }, Durability::Synced);
    }

    fn handle_vote_response(&mut self, now_ms: u64, from: NodeId, granted: bool) {
        let Role::Candidate { votes } = &mut self.role else {
            return;
        };
        if !granted {
            return;
        }
        votes.insert(from);
        let votes = votes.clone();
        if self.membership().is_voter(from) && self.won(&votes) {
            self.become_leader(now_ms);
        }
    }

    // ----- replication (§5.3) ------------------------------------------------------

    fn append_own(&mut self, payload: Payload) -> Index {
        let entry = Entry { term: self.hard.term, index: self.log.last_index() + 1, payload };
        let index = entry.index;
        self.uncommitted_bytes += entry.size_bytes();
        let config = match &entry.payload {
            Payload::Membership(m) => Some(m.clone()),
            _ => None,
        };
        self.log.append(entry.clone());
        self.effects.push(Effect::AppendLog(vec![entry]));
        if let Some(m) = config {
            self.configs.insert(index, m);
            self.membership_changed();
        }
        index
    }

    /// Sends appends to every follower that may receive one; `heartbeat` also reaches
    /// paused followers, so that a lost message is retried every heartbeat interval.
    fn broadcast_append(&mut self, heartbeat: bool) {
        let Role::Leader { progress } = &self.role else { return };
        let targets: Vec<NodeId> = progress.keys().copied().collect();
        for to in targets {
            self.send_append(to, heartbeat);
        }
    }

    fn send_append(&mut self, to: NodeId, heartbeat: bool) {
        let Role::Leader { progress } = &mut self.role else {
            return;
        };
        // Not a member any more (the configuration changed since this was decided).
        let Some(p) = progress.get_mut(&to) else { return };
        let snapshot = self.log.snapshot();
        if p.next_index <= snapshot.index || matches!(p.state, ProgressState::Snapshot { .. }) {
            // Entries it needs are compacted away: it gets the snapshot instead. A
            // heartbeat re-sends the chunk in flight (it may have been lost).
            let (index, offset) = match p.state {
                ProgressState::Snapshot { index, offset } if index == snapshot.index => (index, offset),
                _ => (snapshot.index, 0),
            };
            let fresh =
                !matches!(p.state, ProgressState::Snapshot { index: i, offset: o } if i == index && o == offset);
            if !fresh && !heartbeat {
                return;
            }
            p.state = ProgressState::Snapshot { index, offset };
            p.clear_inflight();
            self.send_snapshot_chunk(to, offset);
            return;
        }
        let has_new = p.next_index <= self.log.last_index();
        let can_send = p.can_send(self.cfg.inflight_appends_max, self.cfg.inflight_bytes_max);
        if !heartbeat && (!has_new || !can_send) {
            return;
        }
        let prev_log_index = p.next_index - 1;
        let prev_log_term = self.log.term_at(prev_log_index).expect("next_index within log + 1");
        let entries = if can_send {
            self.log.slice(p.next_index, self.cfg.append_entries_max, self.cfg.append_bytes_max)
        } else {
            Vec::new()
        };
        p.on_sent(entries.last().map(|e| e.index), entries.iter().map(Entry::size_bytes).sum());
        // The follower clamps `leader_commit` to the last entry this message proves it
        // holds (Fig. 2, AppendEntries rule 5), so sending our whole commit index is safe.
        let message = Message::AppendEntries {
            term: self.hard.term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_seq: self.read_seq,
            sent_ms: self.last_now_ms,
        };
        self.send(to, message, Durability::Synced);
    }

    /// `prev` is the (index, term) the entries follow.
    fn send_snapshot_chunk(&mut self, to: NodeId, offset: u64) {
        let meta = self.log.snapshot();
        let data = self.snapshot_data.as_ref().expect("a compacted log has its snapshot");
        let start = (offset as usize).min(data.len());
        let end = (start + self.cfg.snapshot_chunk_bytes_max).min(data.len());
        let message = Message::InstallSnapshot {
            term: self.hard.term,
            meta,
            membership: self.base_membership.clone(),
            offset: start as u64,
            data: data[start..end].to_vec(),
            done: end == data.len(),
        };
        self.send(to, message, Durability::Immediately);
    }

    #[allow(clippy::too_many_arguments)] // the fields of one message
    fn handle_install_snapshot(
        &mut self,
        now_ms: u64,
        from: NodeId,
        meta: SnapshotMeta,
        membership: Membership,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        self.become_follower(now_ms, self.hard.term, Some(from));
        self.lease_until_ms = now_ms + self.cfg.election_timeout_ms_min;
        let term = self.hard.term;
        if meta.index <= self.commit_index {
            // We hold all of it already (committed entries match the leader's, §5.4).
            self.incoming_snapshot = None;
            let reply = Message::InstallSnapshotResponse { term, meta, received: 0, done: true };
            self.send(from, reply, Durability::Immediately);
            return;
        }
        let buffer = match &mut self.incoming_snapshot {
            Some((m, buf)) if *m == meta => buf,
            _ => &mut self.incoming_snapshot.insert((meta, Vec::new())).1,
        };
        if offset == buffer.len() as u64 && buffer.len() + data.len() <= SNAPSHOT_RECEIVE_BYTES_MAX {
            buffer.extend_from_slice(&data);
        } else if offset == buffer.len() as u64 {
            // Larger than we accept: drop it; the leader starts over, and an operator
            // sees the node stay behind.
            buffer.clear();
        }
        let received = buffer.len() as u64;
        if !done || offset + data.len() as u64 != received {
            let reply = Message::InstallSnapshotResponse { term, meta, received, done: false };
            self.send(from, reply, Durability::Immediately);
            return;
        }
        let (_, bytes) = self.incoming_snapshot.take().expect("filled above");
        let data = Arc::new(bytes);
        let kept_suffix = self.log.term_at(meta.index) == Some(meta.term);
        let discard = self.log.install(meta);
        let stale = self.membership().clone();
        self.configs = if kept_suffix { self.configs.split_off(&(meta.index + 1)) } else { BTreeMap::new() };
        self.base_membership =
            if PlantedBug::SnapshotStaleConfig.is_active(self.cfg.planted_bug) { stale } else { membership.clone() };
        self.commit_index = meta.index;
        self.snapshot_data = Some(data.clone());
        self.effects.push(Effect::InstallSnapshot { meta, membership, data, discard });
        let reply = Message::InstallSnapshotResponse { term, meta, received, done: true };
        self.send(from, reply, Durability::Synced);
    }

    fn handle_install_snapshot_response(&mut self, from: NodeId, meta: SnapshotMeta, received: u64, done: bool) {
        let Role::Leader { progress } = &mut self.role else { return };
        let Some(p) = progress.get_mut(&from) else { return };
        p.recent_active = true;
        let ProgressState::Snapshot { index, .. } = p.state else { return };
        if index != meta.index {
            return; // about an older snapshot
        }
        if done {
            p.match_index = p.match_index.max(meta.index);
            p.next_index = meta.index + 1;
            p.state = ProgressState::Probe { paused: false };
            self.maybe_commit();
            self.send_append(from, false);
            self.maybe_send_timeout_now(from);
        } else {
            p.state = ProgressState::Snapshot { index, offset: received };
            self.send_snapshot_chunk(from, received);
        }
    }

    #[allow(clippy::too_many_arguments)] // the fields of one message
    fn handle_append_entries(
        &mut self,
        now_ms: u64,
        from: NodeId,
        prev: (Index, Term),
        entries: Vec<Entry>,
        leader_commit: Index,
        read_seq: u64,
        sent_ms: u64,
    ) {
        let (mut prev_log_index, mut prev_log_term) = prev;
        let mut entries = entries;
        // A valid leader of our term: follow it (a candidate of the same term steps down).
        self.become_follower(now_ms, self.hard.term, Some(from));
        self.lease_until_ms = now_ms + self.cfg.election_timeout_ms_min;
        let term = self.hard.term;
        let snapshot = self.log.snapshot();
        if prev_log_index < snapshot.index {
            // What our snapshot covers is committed, so the leader holds the same entries:
            // skip them and check the rest against the snapshot's last entry.
            let skip = ((snapshot.index - prev_log_index) as usize).min(entries.len());
            entries.drain(..skip);
            prev_log_index = snapshot.index;
            prev_log_term = snapshot.term;
        }
        let result = match self.log.term_at(prev_log_index) {
            None => AppendResult::Conflict {
                rejected_prev_index: prev_log_index,
                hint_index: self.log.last_index() + 1,
                hint_term: None,
            },
            Some(t) if t != prev_log_term => AppendResult::Conflict {
                rejected_prev_index: prev_log_index,
                hint_index: self.log.first_index_of_term_at(prev_log_index),
                hint_term: Some(t),
            },
            Some(_) => {
                let last_new = prev_log_index + entries.len() as Index;
                self.append_from_leader(entries);
                let new_commit = leader_commit.min(last_new);
                if new_commit > self.commit_index {
                    self.set_commit(new_commit);
                }
                AppendResult::Success { match_index: last_new }
            }
        };
        let clock = ClockEcho { sent_ms, follower_ms: now_ms };
        self.send(from, Message::AppendEntriesResponse { term, result, read_seq, clock }, Durability::Synced);
    }

    /// Appends the leader's entries, dropping ones we already have and truncating a
    /// conflicting suffix (§5.3: "if an existing entry conflicts with a new one … delete
    /// the existing entry and all that follow it").
    fn append_from_leader(&mut self, entries: Vec<Entry>) {
        let mut fresh = Vec::new();
        for e in entries {
            if fresh.is_empty() {
                match self.log.term_at(e.index) {
                    Some(t) if t == e.term => continue,
                    Some(_) => {
                        assert!(
                            e.index > self.commit_index,
                            "leader {:?} asks to truncate committed entry {} (commit {})",
                            self.leader_id,
                            e.index,
                            self.commit_index
                        );
                        let to = self.log.last_index();
                        self.log.truncate_from(e.index);
                        self.configs.split_off(&e.index);
                        self.effects.push(Effect::TruncateLog { from: e.index, to });
                    }
                    None => {}
                }
            }
            if let Payload::Membership(m) = &e.payload {
                self.configs.insert(e.index, m.clone());
            }
            self.log.append(e.clone());
            fresh.push(e);
        }
        if !fresh.is_empty() {
            self.effects.push(Effect::AppendLog(fresh));
        }
    }

    fn handle_append_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        result: AppendResult,
        read_seq: u64,
        clock: ClockEcho,
    ) {
        let last_index = self.log.last_index();
        let Role::Leader { progress } = &mut self.role else {
            return;
        };
        let Some(p) = progress.get_mut(&from) else {
            return;
        };
        p.recent_active = true;
        // Our own send time, echoed: never later than now on our monotonic clock. Only
        // leases need the samples.
        if self.cfg.lease_reads && clock.sent_ms <= now_ms {
            let sample = ClockSample { sent_ms: clock.sent_ms, follower_ms: clock.follower_ms, received_ms: now_ms };
            if let Some(v) = p.clock.observe(sample, self.cfg.clock_drift_ppm_max) {
                self.drift_violations += 1;
                self.last_drift_violation = Some((from, v));
            }
        }
        if read_seq > p.read_seq_acked {
            p.read_seq_acked = read_seq;
            self.release_reads();
        }
        let Role::Leader { progress } = &mut self.role else {
            unreachable!("still leader");
        };
        let p = progress.get_mut(&from).expect("looked up above");
        match result {
            AppendResult::Success { match_index } => {
                assert!(match_index <= last_index, "follower matches beyond our log");
                if p.on_success(match_index) {
                    self.maybe_commit();
                }
                self.send_append(from, false);
                self.maybe_send_timeout_now(from);
            }
            AppendResult::Conflict { rejected_prev_index, hint_index, hint_term } => {
                // Stale answers to appends we already moved past are ignored.
                if rejected_prev_index < p.match_index {
                    return;
                }
                if matches!(p.state, ProgressState::Probe { .. }) && rejected_prev_index + 1 != p.next_index {
                    return;
                }
                let skip_to = match hint_term.and_then(|t| self.log.last_index_of_term(t)) {
                    Some(i) => i + 1,
                    None => hint_index,
                };
                let next = skip_to.min(rejected_prev_index).max(p.match_index + 1);
                p.on_conflict(next);
                self.send_append(from, false);
            }
        }
    }

    // ----- commitment (§5.4.2) -----------------------------------------------------

    fn maybe_commit(&mut self) {
        let Role::Leader { progress } = &self.role else {
            return;
        };
        let (me, last) = (self.cfg.id, self.log.last_index());
        let matched = |id: NodeId| if id == me { last } else { progress.get(&id).map_or(0, |p| p.match_index) };
        let shrink = PlantedBug::QuorumOffByOne.is_active(self.cfg.planted_bug);
        let candidate = self.membership().quorum_value(matched, shrink).min(last);
        if candidate <= self.commit_index {
            return;
        }
        // Only entries of the current term are committed by counting replicas; earlier
        // ones follow (Figure 8).
        if self.log.term_at(candidate) == Some(self.hard.term) {
            self.set_commit(candidate);
        }
    }

    fn set_commit(&mut self, index: Index) {
        assert!(index > self.commit_index, "commit index only grows");
        assert!(index <= self.log.last_index(), "cannot commit beyond the log");
        if self.is_leader() {
            let newly: usize =
                (self.commit_index + 1..=index).filter_map(|i| self.log.entry(i)).map(Entry::size_bytes).sum();
            self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(newly);
        }
        self.commit_index = index;
        self.effects.push(Effect::Commit { index });
        let now = self.last_now_ms;
        self.advance_membership(now);
        if self.is_leader() && self.committed_in_term() && !self.reads_awaiting_commit.is_empty() {
            for id in std::mem::take(&mut self.reads_awaiting_commit) {
                self.reads_awaiting_quorum.push(PendingRead { id, index, seq: 0 });
            }
        }
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
                    let leader = matches!(env.message, Message::AppendEntries { .. }).then_some(from);
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
            Message::InstallSnapshot { meta, membership, offset, data, done, .. } => {
                if self.is_leader() {
                    panic!("node {} is leader of term {} and got a snapshot from {from}", self.cfg.id, term);
                }
                self.handle_install_snapshot(now_ms, from, meta, membership, offset, data, done)
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

    /// Whether this node may start elections: a voter of the configuration in force, or
    /// of the one before it while that newest one is uncommitted. A leader that removed
    /// itself and lost its quorum before C_new committed may hold the only copy of C_new
    /// that C_new's voters lack: if it never campaigned, nobody could win (the simulator
    /// found the joint {4,5}→{5} stuck with 5 behind and 4 silent). Votes are still
    /// counted in the newest configuration, so this is safe; once C_new commits the node
    /// stays quiet.
    fn may_campaign(&self) -> bool {
        let me = self.cfg.id;
        if self.membership().is_voter(me) {
            return true;
        }
        match self.configs.keys().next_back() {
            Some(&index) if index > self.commit_index => self.membership_at(index - 1).is_voter(me),
            _ => false,
        }
    }

    /// The voters (of either half) other than this node: whom to ask for votes.
    fn other_voters(&self) -> Vec<NodeId> {
        self.membership().all_voters().into_iter().filter(|&v| v != self.cfg.id).collect()
    }

    /// Whether `votes` (this node's included) elect it in the configuration in force.
    fn won(&self, votes: &BTreeSet<NodeId>) -> bool {
        self.membership().has_quorum(|id| votes.contains(&id))
    }

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
