//! ReadIndex reads (thesis §6.4) on the replica's side: the queue itself is
//! `read_queue.rs`; here a leader admits reads, confirms rounds with a quorum and fails
//! reads when it stops leading.

use super::{ProposeError, Raft, Role};
use crate::raft::{Effect, PlantedBug};
use crate::NodeId;

impl Raft {
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
        if self.reads.is_full() {
            return Err(ProposeError::Backpressure);
        }
        self.reads.push(id, self.commit_index, self.committed_in_term());
        Ok(())
    }

    pub(super) fn committed_in_term(&self) -> bool {
        self.log.term_at(self.commit_index) == Some(self.hard.term)
    }

    /// Answers the reads whose round a quorum has echoed.
    pub(super) fn release_reads(&mut self) {
        let Role::Leader { progress } = &self.role else {
            return;
        };
        let me = self.cfg.id;
        let seq = self.reads.seq();
        let acked = |id: NodeId| if id == me { seq } else { progress.get(&id).map_or(0, |p| p.read_seq_acked) };
        let confirmed = if PlantedBug::ReadIndexWithoutQuorum.is_active(self.cfg.planted_bug) {
            seq
        } else {
            self.membership().quorum_value(acked, false)
        };
        for (id, index) in self.reads.take_confirmed(confirmed) {
            self.effects.push(Effect::ReadReady { id, index });
        }
    }

    /// A leader that stops leading fails its pending reads.
    pub(super) fn fail_reads(&mut self) {
        let ids = self.reads.take_all();
        if !ids.is_empty() {
            crate::sometimes!("read_failed_on_leader_change");
        }
        for id in ids {
            self.effects.push(Effect::ReadFailed { id });
        }
    }
}
