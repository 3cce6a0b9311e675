//! Log replication (§5.3): appends, the consistency check, fast backtracking, flow control,
//! and the commit rule that counts only current-term entries (§5.4.2).

use super::{Raft, Role};
use crate::raft::lease::ClockSample;
use crate::raft::progress::ProgressState;
use crate::raft::{AppendResult, ClockEcho, Durability, Effect, Entry, Index, Message, Payload, PlantedBug, Term};
use crate::NodeId;

impl Raft {
    pub(super) fn append_own(&mut self, payload: Payload) -> Index {
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
            self.configs.append(index, m);
            self.membership_changed();
        }
        index
    }

    /// Sends appends to every follower that may receive one; `heartbeat` also sends each
    /// follower a heartbeat, and an append to each one that lags or is probing, even if
    /// paused, so that a lost message is retried every heartbeat interval.
    pub(super) fn broadcast_append(&mut self, heartbeat: bool) {
        let Role::Leader { progress } = &self.role else { return };
        let targets: Vec<(NodeId, Index)> = progress.iter().map(|(&id, p)| (id, p.match_index)).collect();
        let uncapped = PlantedBug::HeartbeatCommitUnmatched.is_active(self.cfg.planted_bug);
        for (to, match_index) in targets {
            if heartbeat {
                let message = Message::Heartbeat {
                    term: self.hard.term,
                    commit: if uncapped { self.commit_index } else { self.commit_index.min(match_index) },
                    read_seq: self.reads.seq(),
                    sent_ms: self.last_now_ms,
                };
                self.send(to, message, Durability::Immediately);
            }
            self.send_append(to, heartbeat);
        }
    }

    pub(super) fn send_append(&mut self, to: NodeId, heartbeat: bool) {
        let Role::Leader { progress } = &mut self.role else {
            return;
        };
        // Not a member any more (the configuration changed since this was decided).
        let Some(p) = progress.get_mut(&to) else { return };
        let snapshot = self.log.snapshot();
        if p.next_index <= snapshot.index || matches!(p.state, ProgressState::Snapshot { .. }) {
            // Entries it needs are compacted away: it gets the state machine instead,
            // as of the applied index. A heartbeat re-sends the chunk in flight (it may
            // have been lost).
            debug_assert!(self.applied >= snapshot.index, "the log is compacted only behind applied");
            let (index, chunk, fresh) = match p.state {
                ProgressState::Snapshot { index, chunk } => (index, chunk, false),
                _ => (self.applied, 0, true),
            };
            if !fresh && !heartbeat {
                return;
            }
            p.state = ProgressState::Snapshot { index, chunk };
            p.clear_inflight();
            self.read_snapshot_chunk(to, index, chunk);
            return;
        }
        let has_new = p.next_index <= self.log.last_index();
        let can_send = p.can_send(self.cfg.inflight_appends_max, self.cfg.inflight_bytes_max);
        if !heartbeat && (!has_new || !can_send) {
            return;
        }
        // A follower that holds our whole log needs only the heartbeat.
        let probing = matches!(p.state, ProgressState::Probe { .. });
        if heartbeat && !probing && p.match_index >= self.log.last_index() {
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
            read_seq: self.reads.seq(),
            sent_ms: self.last_now_ms,
        };
        self.send(to, message, Durability::Synced);
    }

    #[allow(clippy::too_many_arguments)] // the fields of one message
    pub(super) fn handle_append_entries(
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
    pub(super) fn append_from_leader(&mut self, entries: Vec<Entry>) {
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
                        crate::sometimes!("conflicting_suffix_truncated");
                        self.log.truncate_from(e.index);
                        self.configs.truncate_from(e.index);
                        self.effects.push(Effect::TruncateLog { from: e.index, to });
                    }
                    None => {}
                }
            }
            if let Payload::Membership(m) = &e.payload {
                self.configs.append(e.index, m.clone());
            }
            self.log.append(e.clone());
            fresh.push(e);
        }
        if !fresh.is_empty() {
            self.effects.push(Effect::AppendLog(fresh));
        }
    }

    /// A heartbeat of our term's leader: follow it, commit what it says we hold, and answer
    /// at once (the answer promises nothing about our log).
    pub(super) fn handle_heartbeat(&mut self, now_ms: u64, from: NodeId, commit: Index, read_seq: u64, sent_ms: u64) {
        self.become_follower(now_ms, self.hard.term, Some(from));
        self.lease_until_ms = now_ms + self.cfg.election_timeout_ms_min;
        // The leader caps `commit` at the match we acknowledged, after our sync: those
        // entries are ours, durable, and the leader's (Log Matching, §5.3).
        let commit = if PlantedBug::HeartbeatCommitUnmatched.is_active(self.cfg.planted_bug) {
            commit.min(self.log.last_index())
        } else {
            commit
        };
        // A replica made anew, empty and waiting for a peer's state, after an earlier one on
        // this node was removed (a move away, then one back) may hear of the match its
        // predecessor acknowledged as a learner, which counted for no quorum: it commits
        // no further than it holds, and its fetched state brings the rest.
        let commit = if self.made_anew() { commit.min(self.log.last_index()) } else { commit };
        assert!(
            commit <= self.log.last_index(),
            "node {}: heartbeat commits {commit} beyond our log ({})",
            self.cfg.id,
            self.log.last_index()
        );
        if commit > self.commit_index {
            self.set_commit(commit);
        }
        let clock = ClockEcho { sent_ms, follower_ms: now_ms };
        let reply = Message::HeartbeatResponse { term: self.hard.term, read_seq, clock };
        self.send(from, reply, Durability::Immediately);
    }

    /// What any answer of a follower tells its leader: it is alive (check-quorum), it saw
    /// read round `read_seq` (ReadIndex), and its clock (leases). Returns the follower's
    /// progress if we lead and it is a member.
    pub(super) fn heard_from_follower(&mut self, now_ms: u64, from: NodeId, read_seq: u64, clock: ClockEcho) -> bool {
        let Role::Leader { progress } = &mut self.role else {
            return false;
        };
        let Some(p) = progress.get_mut(&from) else {
            return false;
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
        true
    }

    pub(super) fn handle_append_response(
        &mut self,
        now_ms: u64,
        from: NodeId,
        result: AppendResult,
        read_seq: u64,
        clock: ClockEcho,
    ) {
        if !self.heard_from_follower(now_ms, from, read_seq, clock) {
            return;
        }
        let last_index = self.log.last_index();
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

    pub(super) fn maybe_commit(&mut self) {
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
        } else {
            crate::sometimes!("old_term_entry_on_majority");
            if PlantedBug::CommitOldTerm.is_active(self.cfg.planted_bug) {
                self.set_commit(candidate);
            }
        }
    }

    pub(super) fn set_commit(&mut self, index: Index) {
        if self.awaiting_snapshot {
            // Nothing to apply to: the commit index waits for the snapshot.
            debug_assert!(!self.is_leader(), "a replica without its state never leads");
            return;
        }
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
        if self.is_leader() && self.committed_in_term() {
            self.reads.on_commit_in_term(index);
        }
    }
}
