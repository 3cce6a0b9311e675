//! A follower's side of InstallSnapshot (§7): the leader's snapshot arrives in chunks,
//! one in flight, each at the offset the follower said it holds; a chunk at any other
//! offset (lost, duplicated, reordered) is ignored and the follower repeats where it is.
//!
//! ```text
//!   chunk(meta, offset, data, done)
//!     other meta than the one in progress ─▶ start over for this one
//!     offset == received ─▶ append (over the size bound: drop all, start over)
//!     done and everything received ─▶ Complete(bytes)   else ─▶ Partial { received }
//! ```

use super::SnapshotMeta;

/// The largest snapshot a follower accepts from its leader.
pub(super) const SNAPSHOT_RECEIVE_BYTES_MAX: usize = 1 << 30;

#[derive(Clone, Debug, Default)]
pub(super) struct IncomingSnapshot {
    /// The snapshot being received, and its bytes so far.
    in_progress: Option<(SnapshotMeta, Vec<u8>)>,
}

/// Where a chunk left the transfer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Received {
    /// The follower holds the first `received` bytes; the leader sends from there.
    Partial { received: u64 },
    /// The whole snapshot.
    Complete(Vec<u8>),
}

impl IncomingSnapshot {
    /// Forgets a transfer in progress (the snapshot is not needed any more).
    pub fn abandon(&mut self) {
        self.in_progress = None;
    }

    pub fn accept(&mut self, meta: SnapshotMeta, offset: u64, data: &[u8], done: bool) -> Received {
        self.accept_bounded(meta, offset, data, done, SNAPSHOT_RECEIVE_BYTES_MAX)
    }

    fn accept_bounded(
        &mut self,
        meta: SnapshotMeta,
        offset: u64,
        data: &[u8],
        done: bool,
        bytes_max: usize,
    ) -> Received {
        let buffer = match &mut self.in_progress {
            Some((m, buf)) if *m == meta => buf,
            _ => &mut self.in_progress.insert((meta, Vec::new())).1,
        };
        if offset == buffer.len() as u64 && buffer.len() + data.len() <= bytes_max {
            buffer.extend_from_slice(data);
        } else if offset == buffer.len() as u64 {
            // Larger than we accept: drop it; the leader starts over, and an operator
            // sees the node stay behind.
            buffer.clear();
        }
        let received = buffer.len() as u64;
        if !done || offset + data.len() as u64 != received {
            return Received::Partial { received };
        }
        let (_, bytes) = self.in_progress.take().expect("filled above");
        Received::Complete(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: SnapshotMeta = SnapshotMeta { index: 10, term: 2 };

    #[test]
    fn chunks_in_order_complete_the_snapshot_and_others_are_ignored() {
        let mut s = IncomingSnapshot::default();
        assert_eq!(s.accept(META, 0, b"ab", false), Received::Partial { received: 2 });
        assert_eq!(s.accept(META, 0, b"ab", false), Received::Partial { received: 2 }, "a duplicate");
        assert_eq!(s.accept(META, 5, b"zz", true), Received::Partial { received: 2 }, "from the future");
        assert_eq!(s.accept(META, 2, b"cd", true), Received::Complete(b"abcd".to_vec()));
        assert_eq!(s.accept(META, 2, b"cd", true), Received::Partial { received: 0 }, "a late repeat starts over");
    }

    #[test]
    fn a_newer_snapshot_replaces_the_one_in_progress() {
        let mut s = IncomingSnapshot::default();
        s.accept(META, 0, b"old", false);
        let newer = SnapshotMeta { index: 20, term: 3 };
        assert_eq!(s.accept(newer, 0, b"new", true), Received::Complete(b"new".to_vec()));
    }

    #[test]
    fn a_snapshot_over_the_bound_is_dropped_and_starts_over() {
        let mut s = IncomingSnapshot::default();
        assert_eq!(s.accept_bounded(META, 0, b"abc", false, 4), Received::Partial { received: 3 });
        assert_eq!(s.accept_bounded(META, 3, b"de", false, 4), Received::Partial { received: 0 });
        s.abandon();
        assert_eq!(s.accept_bounded(META, 0, b"ab", true, 4), Received::Complete(b"ab".to_vec()));
    }
}
