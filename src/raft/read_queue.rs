//! A leader's ReadIndex reads (thesis §6.4) on their way to an answer.
//!
//! ```text
//!   read arrives ─▶ no commit of this term yet? ─yes─▶ awaiting_commit
//!                        │ no                               │ first commit in the term
//!                        ▼                                  ▼
//!                 awaiting_quorum (index = commit index, seq = 0: no round yet)
//!                        │ start_round: every read without a round gets seq = ++seq,
//!                        │              and one heartbeat round carries it
//!                        ▼
//!                 a quorum echoed seq ─▶ ready: serve once `index` is applied
//! ```
//!
//! A leader that steps down takes every read out (`take_all`): they fail, and the client
//! retries elsewhere. The queue is bounded (`READS_PENDING_MAX`).

use super::Index;

/// Reads a leader holds at once; more are refused with `Backpressure`.
pub(super) const READS_PENDING_MAX: usize = 16 * 1024;

/// A read waiting for a quorum to confirm the leader.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    id: u64,
    /// The commit index when the read arrived: serve it once applied.
    index: Index,
    /// The round a quorum must echo (0: not sent yet).
    seq: u64,
}

#[derive(Clone, Debug, Default)]
pub(super) struct ReadQueue {
    /// The leader's current contact round (see `Message::AppendEntries::read_seq`).
    seq: u64,
    /// Reads waiting for this leader's first commit in its term (a new leader does not
    /// know the commit index until then; thesis §6.4 step 1).
    awaiting_commit: Vec<u64>,
    /// Reads waiting for a quorum to echo their round.
    awaiting_quorum: Vec<PendingRead>,
}

impl ReadQueue {
    /// The round the leader's appends carry now.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn is_full(&self) -> bool {
        self.awaiting_commit.len() + self.awaiting_quorum.len() >= READS_PENDING_MAX
    }

    /// A read arrived; `commit_index` is known to be current iff `committed_in_term`.
    pub fn push(&mut self, id: u64, commit_index: Index, committed_in_term: bool) {
        assert!(!self.is_full(), "the caller refuses reads beyond the bound");
        if committed_in_term {
            self.awaiting_quorum.push(PendingRead { id, index: commit_index, seq: 0 });
        } else {
            self.awaiting_commit.push(id);
        }
    }

    /// The leader committed an entry of its term at `index`: reads that waited for it
    /// read at `index`.
    pub fn on_commit_in_term(&mut self, index: Index) {
        for id in std::mem::take(&mut self.awaiting_commit) {
            self.awaiting_quorum.push(PendingRead { id, index, seq: 0 });
        }
    }

    /// Gives every read without a round the next one; whether there were any (then a
    /// round of heartbeats must go out).
    pub fn start_round(&mut self) -> bool {
        if !self.awaiting_quorum.iter().any(|r| r.seq == 0) {
            return false;
        }
        self.seq += 1;
        let seq = self.seq;
        for r in self.awaiting_quorum.iter_mut().filter(|r| r.seq == 0) {
            r.seq = seq;
        }
        true
    }

    /// Removes the reads whose round is at or below `confirmed` (a quorum echoed it):
    /// `(id, index)` for each.
    pub fn take_confirmed(&mut self, confirmed: u64) -> Vec<(u64, Index)> {
        let (ready, waiting): (Vec<PendingRead>, Vec<PendingRead>) =
            std::mem::take(&mut self.awaiting_quorum).into_iter().partition(|r| r.seq != 0 && r.seq <= confirmed);
        self.awaiting_quorum = waiting;
        ready.into_iter().map(|r| (r.id, r.index)).collect()
    }

    /// Every read, for a leader that stops leading (they fail).
    pub fn take_all(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.awaiting_commit)
            .into_iter()
            .chain(std::mem::take(&mut self.awaiting_quorum).into_iter().map(|r| r.id))
            .collect()
    }

    /// A new term of leadership: rounds count from zero again (followers echo rounds of
    /// the current term only).
    pub fn restart_rounds(&mut self) {
        assert!(self.awaiting_commit.is_empty(), "reads of an earlier leadership were failed");
        assert!(self.awaiting_quorum.is_empty(), "reads of an earlier leadership were failed");
        self.seq = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_waits_for_the_first_commit_of_the_term_then_for_its_round() {
        let mut q = ReadQueue::default();
        q.push(1, 5, false);
        assert!(!q.start_round(), "nothing can be confirmed before the term's first commit");
        q.on_commit_in_term(7);
        q.push(2, 7, true);
        assert!(q.start_round());
        assert_eq!(q.seq(), 1);
        assert!(!q.start_round(), "one round serves every read that arrived before it");
        assert_eq!(q.take_confirmed(0), []);
        q.push(3, 8, true);
        assert!(q.start_round());
        assert_eq!(q.take_confirmed(1), [(1, 7), (2, 7)]);
        assert_eq!(q.take_all(), [3]);
        q.restart_rounds();
        assert_eq!(q.seq(), 0);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut q = ReadQueue::default();
        for id in 0..READS_PENDING_MAX as u64 {
            q.push(id, 1, id % 2 == 0);
        }
        assert!(q.is_full());
    }
}
