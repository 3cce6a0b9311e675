//! Elections (§5.2), pre-vote (thesis §9.6) and the roles a replica moves between.

use super::{Raft, Role};
use crate::raft::progress::Progress;
use crate::raft::{Durability, Effect, Entry, Index, Message, Payload, PlantedBug, Term};
use crate::NodeId;
use std::collections::BTreeSet;

impl Raft {
    /// Pre-vote (thesis §9.6): ask for votes in term + 1 without taking it.
    pub(super) fn pre_campaign(&mut self, now_ms: u64) {
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
    pub(super) fn log_up_to_date(&self, last_log_index: Index, last_log_term: Term) -> bool {
        let ok = last_log_term > self.log.last_term()
            || (last_log_term == self.log.last_term() && last_log_index >= self.log.last_index());
        ok || PlantedBug::VoteIgnoresLog.is_active(self.cfg.planted_bug)
    }

    pub(super) fn handle_pre_vote(
        &mut self,
        now_ms: u64,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    ) {
        if self.in_lease(now_ms) {
            // Our leader is alive: no help for a rival, and no answer (as in etcd).
            return;
        }
        // A pre-vote for a later term may be granted whatever we voted in ours: granting
        // binds nothing.
        let can_vote = term > self.hard.term
            || self.hard.voted_for == Some(from)
            || (self.hard.voted_for.is_none() && self.leader_id.is_none());
        let granted = can_vote && !self.votes_withheld() && self.log_up_to_date(last_log_index, last_log_term);
        let term = if granted { term } else { self.hard.term };
        self.send(from, Message::PreVoteResponse { term, granted }, Durability::Immediately);
    }

    pub(super) fn handle_pre_vote_response(&mut self, now_ms: u64, from: NodeId, term: Term, granted: bool) {
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

    pub(super) fn campaign(&mut self, now_ms: u64, transfer: bool) {
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

    pub(super) fn become_follower(&mut self, now_ms: u64, term: Term, leader: Option<NodeId>) {
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

    pub(super) fn become_leader(&mut self, now_ms: u64) {
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
        self.reads.restart_rounds();
        self.lease_forfeited = false;
        // A no-op of the new term lets the leader commit what earlier terms left (§5.4.2).
        self.append_own(Payload::Noop);
        self.broadcast_append(false);
        self.maybe_commit(); // a single-voter group commits at once
    }

    pub(super) fn handle_request_vote(
        &mut self,
        now_ms: u64,
        from: NodeId,
        last_log_index: Index,
        last_log_term: Term,
    ) {
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
        // A replica made anew (empty, waiting for a peer's state, after an earlier one on
        // this node was removed) has forgotten the terms and votes of the one before it,
        // and has no log to protect: its vote could elect a stale replica in a
        // configuration long superseded, whose other members moved on (moves seed 463: a
        // replica removed while down came back with its old configuration {4, 5, 1}, and
        // node 1, removed since and added back empty, voted it leader without 300
        // committed entries). It votes again once it holds a state.
        let granted = can_vote && log_ok && !self.votes_withheld();
        if granted {
            self.hard.voted_for = Some(from);
            if !PlantedBug::VoteNotPersisted.is_active(self.cfg.planted_bug) {
                self.persist_hard_state();
            }
            self.reset_election_deadline(now_ms);
        }
        self.send(from, Message::RequestVoteResponse { term: self.hard.term, granted }, Durability::Synced);
    }

    pub(super) fn handle_vote_response(&mut self, now_ms: u64, from: NodeId, granted: bool) {
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

    /// A replica made anew, empty, waiting for a peer's state (`lose_state_machine` on an
    /// empty log): it neither votes nor commits past what it holds until the state comes.
    pub(super) fn made_anew(&self) -> bool {
        self.awaiting_snapshot && self.log.last_index() == 0
    }

    /// Whether being made anew keeps this replica from voting (not with the planted bug).
    fn votes_withheld(&self) -> bool {
        self.made_anew() && !PlantedBug::MadeAnewVotes.is_active(self.cfg.planted_bug)
    }

    /// Whether this node may start elections: a voter of the configuration in force, or
    /// of the one before it while that newest one is uncommitted. A leader that removed
    /// itself and lost its quorum before C_new committed may hold the only copy of C_new
    /// that C_new's voters lack: if it never campaigned, nobody could win (the simulator
    /// found the joint {4,5}→{5} stuck with 5 behind and 4 silent). Votes are still
    /// counted in the newest configuration, so this is safe; once C_new commits the node
    /// stays quiet.
    pub(super) fn may_campaign(&self) -> bool {
        if self.awaiting_snapshot {
            return false;
        }
        let me = self.cfg.id;
        if self.membership().is_voter(me) {
            return true;
        }
        match self.configs.newest() {
            Some((index, _)) if index > self.commit_index => self.membership_at(index - 1).is_voter(me),
            _ => false,
        }
    }

    /// The voters (of either half) other than this node: whom to ask for votes.
    pub(super) fn other_voters(&self) -> Vec<NodeId> {
        self.membership().all_voters().into_iter().filter(|&v| v != self.cfg.id).collect()
    }

    /// Whether `votes` (this node's included) elect it in the configuration in force.
    pub(super) fn won(&self, votes: &BTreeSet<NodeId>) -> bool {
        self.membership().has_quorum(|id| votes.contains(&id))
    }
}
