//! The leader's view of one follower's log (Raft Fig. 2 nextIndex/matchIndex), with the
//! probe/replicate flow control of etcd and raft-rs: while probing, one AppendEntries at a
//! time; once the logs match, pipelined appends up to a bounded number in flight.

use super::lease::FollowerClock;
use super::Index;
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// Looking for the point where the logs agree; `paused` while a probe is outstanding.
    Probe { paused: bool },
    /// Logs agree up to `match_index`; entries are sent optimistically.
    Replicate,
    /// The follower needs entries we compacted: our state machine as of `index` goes to
    /// it chunk by chunk, `chunk` the one in flight.
    Snapshot { index: Index, chunk: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub match_index: Index,
    pub next_index: Index,
    pub state: ProgressState,
    /// Last index and bytes of each pipelined append in flight (Replicate only), oldest
    /// first, and their total bytes.
    pub inflight: VecDeque<(Index, usize)>,
    pub inflight_bytes: usize,
    /// Heard from since the leader's last quorum check (check-quorum).
    pub recent_active: bool,
    /// The highest `read_seq` the follower echoed this term.
    pub read_seq_acked: u64,
    /// The follower's clock as its answers show it (leases).
    pub clock: FollowerClock,
}

impl Progress {
    pub fn new(next_index: Index) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { paused: false },
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            recent_active: false,
            read_seq_acked: 0,
            clock: FollowerClock::default(),
        }
    }

    /// Whether a non-heartbeat append may be sent now: in Replicate, while fewer than
    /// `count_max` appends and `bytes_max` bytes of entries are unacknowledged.
    pub fn can_send(&self, count_max: usize, bytes_max: usize) -> bool {
        match self.state {
            ProgressState::Probe { paused } => !paused,
            ProgressState::Replicate => self.inflight.len() < count_max && self.inflight_bytes < bytes_max,
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Records that entries up to `last_sent`, of `bytes` in all, went out.
    pub fn on_sent(&mut self, last_sent: Option<Index>, bytes: usize) {
        match &mut self.state {
            ProgressState::Probe { paused } => *paused = true,
            ProgressState::Replicate => {
                if let Some(last) = last_sent {
                    self.next_index = last + 1;
                    self.inflight.push_back((last, bytes));
                    self.inflight_bytes += bytes;
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// Forgets every append in flight (they will be resent or were superseded).
    pub fn clear_inflight(&mut self) {
        self.inflight.clear();
        self.inflight_bytes = 0;
    }

    /// The follower matches up to `index`. Returns whether `match_index` advanced.
    pub fn on_success(&mut self, index: Index) -> bool {
        while let Some(&(last, bytes)) = self.inflight.front().filter(|(i, _)| *i <= index) {
            debug_assert!(last <= index);
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
        if let ProgressState::Probe { .. } | ProgressState::Snapshot { .. } = self.state {
            self.state = ProgressState::Replicate;
            self.clear_inflight();
        }
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index + 1);
        true
    }

    /// The follower refused at `next_index - 1`; start probing again from `next_index`.
    pub fn on_conflict(&mut self, next_index: Index) {
        assert!(next_index > self.match_index, "never probe below the known match");
        self.next_index = next_index;
        self.state = ProgressState::Probe { paused: false };
        self.clear_inflight();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_is_bounded_by_count_and_by_bytes() {
        let mut p = Progress::new(1);
        p.on_success(0);
        assert_eq!(p.state, ProgressState::Replicate);
        p.on_sent(Some(10), 600);
        assert!(p.can_send(3, 1_000));
        p.on_sent(Some(20), 600);
        assert!(!p.can_send(3, 1_000), "1200 bytes unacknowledged");
        assert!(p.can_send(3, 2_000));
        p.on_sent(Some(30), 10);
        assert!(!p.can_send(3, 1_000_000), "three in flight");
        p.on_success(20);
        assert_eq!((p.inflight.len(), p.inflight_bytes), (1, 10));
        assert!(p.can_send(3, 1_000));
        p.on_conflict(21);
        assert_eq!((p.inflight.len(), p.inflight_bytes), (0, 0));
    }
}
