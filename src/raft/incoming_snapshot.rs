//! A follower's side of InstallSnapshot (§7): the leader's snapshot arrives in numbered
//! chunks, one in flight; a chunk with any other number than the next (lost, duplicated,
//! reordered) is ignored and the follower repeats which one it wants. The chunks' bytes
//! are the driver's to keep (`Effect::SnapshotChunk`); this counts them and their size.
//!
//! ```text
//!   chunk(meta, n, bytes, done)
//!     other meta than the one in progress ─▶ start over for this one (want chunk 0)
//!     n == 0 ─▶ start over (the leader did: its chunks come from a new read)
//!     n == wanted ─▶ Accepted (over the size bound: Ignored, start over from chunk 0)
//!     n == wanted and done ─▶ Complete      anything else ─▶ Ignored { wanted }
//! ```

use super::SnapshotMeta;

/// The largest snapshot a follower accepts from its leader.
pub(super) const SNAPSHOT_RECEIVE_BYTES_MAX: u64 = 1 << 34;

#[derive(Clone, Debug, Default)]
pub(super) struct IncomingSnapshot {
    /// The snapshot being received: the next chunk wanted and the bytes so far.
    in_progress: Option<(SnapshotMeta, u64, u64)>,
}

/// What a chunk did to the transfer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Received {
    /// Not the chunk wanted: the leader sends chunk `wanted`.
    Ignored { wanted: u64 },
    /// The chunk wanted; the leader sends chunk `wanted` next.
    Accepted { wanted: u64 },
    /// The last chunk: the snapshot is whole.
    Complete,
}

impl IncomingSnapshot {
    /// Forgets a transfer in progress (the snapshot is not needed any more).
    pub fn abandon(&mut self) {
        self.in_progress = None;
    }

    pub fn accept(&mut self, meta: SnapshotMeta, chunk: u64, bytes: u64, done: bool) -> Received {
        self.accept_bounded(meta, chunk, bytes, done, SNAPSHOT_RECEIVE_BYTES_MAX)
    }

    fn accept_bounded(&mut self, meta: SnapshotMeta, chunk: u64, bytes: u64, done: bool, bytes_max: u64) -> Received {
        let (_, wanted, received) = match &mut self.in_progress {
            Some(p) if p.0 == meta && chunk != 0 => p,
            _ => self.in_progress.insert((meta, 0, 0)),
        };
        if chunk != *wanted {
            return Received::Ignored { wanted: *wanted };
        }
        if *received + bytes > bytes_max {
            // Larger than we accept: drop it; the leader starts over, and an operator
            // sees the node stay behind.
            self.in_progress = None;
            return Received::Ignored { wanted: 0 };
        }
        *received += bytes;
        *wanted += 1;
        if done {
            self.in_progress = None;
            return Received::Complete;
        }
        Received::Accepted { wanted: *wanted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: SnapshotMeta = SnapshotMeta { index: 10, term: 2 };

    #[test]
    fn chunks_in_order_complete_the_snapshot_and_others_are_ignored() {
        let mut s = IncomingSnapshot::default();
        assert_eq!(s.accept(META, 0, 2, false), Received::Accepted { wanted: 1 });
        assert_eq!(s.accept(META, 0, 2, false), Received::Accepted { wanted: 1 }, "chunk 0 starts over");
        assert_eq!(s.accept(META, 5, 2, true), Received::Ignored { wanted: 1 }, "from the future");
        assert_eq!(s.accept(META, 2, 2, true), Received::Ignored { wanted: 1 }, "a gap");
        assert_eq!(s.accept(META, 1, 2, true), Received::Complete);
        assert_eq!(s.accept(META, 1, 2, true), Received::Ignored { wanted: 0 }, "a late repeat starts over");
    }

    #[test]
    fn a_newer_snapshot_replaces_the_one_in_progress() {
        let mut s = IncomingSnapshot::default();
        s.accept(META, 0, 3, false);
        let newer = SnapshotMeta { index: 20, term: 3 };
        assert_eq!(s.accept(newer, 1, 3, true), Received::Ignored { wanted: 0 });
        assert_eq!(s.accept(newer, 0, 3, true), Received::Complete);
    }

    #[test]
    fn a_snapshot_over_the_bound_is_dropped_and_starts_over() {
        let mut s = IncomingSnapshot::default();
        assert_eq!(s.accept_bounded(META, 0, 3, false, 4), Received::Accepted { wanted: 1 });
        assert_eq!(s.accept_bounded(META, 1, 2, false, 4), Received::Ignored { wanted: 0 });
        s.abandon();
        assert_eq!(s.accept_bounded(META, 0, 2, true, 4), Received::Complete);
    }
}
