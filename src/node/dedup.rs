//! Requests that arrive twice. The transport may deliver a frame more than once (the
//! simulator duplicates; a real network and a retrying link could too). Raft messages
//! are idempotent, but a client request is not: an `Append` run twice appends twice. The
//! node remembers the most recent request ids per sender and drops repeats.

use crate::NodeId;
use std::collections::{BTreeSet, VecDeque};

/// Request ids remembered; a duplicate arrives within a network delay of the original, so
/// this covers far more than the window it needs.
pub const REMEMBERED_MAX: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct RecentRequests {
    seen: BTreeSet<(NodeId, u64)>,
    order: VecDeque<(NodeId, u64)>,
}

impl RecentRequests {
    /// Records `(from, req_id)`; false if it was seen already.
    pub fn first_time(&mut self, from: NodeId, req_id: u64) -> bool {
        if !self.seen.insert((from, req_id)) {
            return false;
        }
        self.order.push_back((from, req_id));
        if self.order.len() > REMEMBERED_MAX {
            let old = self.order.pop_front().expect("non-empty");
            self.seen.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_recognised_and_memory_is_bounded() {
        let mut r = RecentRequests::default();
        assert!(r.first_time(1, 7));
        assert!(!r.first_time(1, 7));
        assert!(r.first_time(2, 7), "ids are per sender");
        for i in 0..REMEMBERED_MAX as u64 {
            r.first_time(3, i);
        }
        assert_eq!(r.order.len(), REMEMBERED_MAX);
        assert!(r.first_time(1, 7), "the oldest were forgotten");
    }
}
