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
    /// The follower needs entries we compacted: our snapshot `index` goes to it chunk by
    /// chunk, the next from `offset`.
    Snapshot { index: Index, offset: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub match_index: Index,
    pub next_index: Index,
    pub state: ProgressState,
    /// Last index of each pipelined append in flight (Replicate only), oldest first.
    pub inflight: VecDeque<Index>,
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
            recent_active: false,
            read_seq_acked: 0,
            clock: FollowerClock::default(),
        }
    }

    /// Whether a non-heartbeat append may be sent now.
    pub fn can_send(&self, inflight_max: usize) -> bool {
        match self.state {
            ProgressState::Probe { paused } => !paused,
            ProgressState::Replicate => self.inflight.len() < inflight_max,
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// Records that entries up to `last_sent` went out.
    pub fn on_sent(&mut self, last_sent: Option<Index>) {
        match &mut self.state {
            ProgressState::Probe { paused } => *paused = true,
            ProgressState::Replicate => {
                if let Some(last) = last_sent {
                    self.next_index = last + 1;
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// The follower matches up to `index`. Returns whether `match_index` advanced.
    pub fn on_success(&mut self, index: Index) -> bool {
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        if let ProgressState::Probe { .. } | ProgressState::Snapshot { .. } = self.state {
            self.state = ProgressState::Replicate;
            self.inflight.clear();
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
        self.inflight.clear();
    }
}
