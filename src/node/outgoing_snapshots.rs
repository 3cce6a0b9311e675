//! A leader's side of snapshot streams: for each follower receiving its state machine, a
//! storage view taken when the transfer began (at the applied index) and where the chunk
//! in flight starts. Chunks are read from the view in key order, bounded in bytes, so
//! neither side ever holds more than a chunk in memory.
//!
//! ```text
//!   ReadSnapshotChunk{to, meta, n}
//!     no transfer of meta.index for `to` ─▶ new transfer: view now, at applied
//!     n == the chunk in flight ─▶ read it again (lost)
//!     n == the next one ─▶ read from where the last ended
//!     n == 0 ─▶ from the start of the same view (the follower started over)
//!     anything else ─▶ start over (chunk 0, a new view)
//! ```
//!
//! Every chunk carries the range the snapshot is of, so that a follower that skips a
//! split by installing it learns the range's new span.
//!
//! At most one transfer per follower; all of them go when the replica stops leading, and
//! one goes when it was idle for `TRANSFER_IDLE_MS` (a view holds old versions in storage).

use super::group_data::DATA_PARTITION;
use super::snapshot_install::encode_chunk;
use crate::io::{Pairs, StorageError, StorageView};
use crate::keyspace::RangeDescriptor;
use crate::raft::{Membership, SnapshotChunk, SnapshotMeta};
use crate::NodeId;
use std::collections::BTreeMap;

/// A transfer no chunk was asked of for this long is dropped (the follower starts over).
const TRANSFER_IDLE_MS: u64 = 30_000;

/// Keys read from storage per page while a chunk fills.
const PAGE_KEYS: usize = 256;

struct Transfer<V> {
    meta: SnapshotMeta,
    membership: Membership,
    /// The range as of `meta` (a split may narrow the group's while the transfer runs).
    range: RangeDescriptor,
    view: V,
    chunk: u64,
    /// The first stored key of the chunk in flight.
    start: Vec<u8>,
    /// The first stored key of the next chunk (`None`: the chunk in flight is the last).
    next: Option<Vec<u8>>,
    last_used_ms: u64,
}

/// The state machine as a new transfer starts from it.
pub struct Source<V> {
    pub meta: SnapshotMeta,
    pub membership: Membership,
    pub range: RangeDescriptor,
    pub view: V,
}

pub struct OutgoingSnapshots<V> {
    transfers: BTreeMap<NodeId, Transfer<V>>,
}

impl<V> Default for OutgoingSnapshots<V> {
    fn default() -> Self {
        OutgoingSnapshots { transfers: BTreeMap::new() }
    }
}

impl<V: StorageView> OutgoingSnapshots<V> {
    /// Reads chunk `chunk` of the transfer of `meta` to `to`; `source` starts a new one.
    #[allow(clippy::too_many_arguments)] // one request and what serving it needs
    pub fn read(
        &mut self,
        now_ms: u64,
        to: NodeId,
        meta: SnapshotMeta,
        chunk: u64,
        bytes_max: usize,
        source: impl FnOnce() -> Result<Source<V>, StorageError>,
    ) -> Result<SnapshotChunk, StorageError> {
        // A repeated chunk 0 reads the same view again: a new view for every repeat would
        // make every heartbeat start another transfer (found by the real-process test: a
        // follower received dozens of snapshots in one batch and installed each).
        let continues = self.transfers.get(&to).is_some_and(|t| {
            let same = t.meta.index == meta.index;
            same && (chunk == 0 || chunk == t.chunk || (chunk == t.chunk + 1 && t.next.is_some()))
        });
        if !continues {
            let Source { meta, membership, range, view } = source()?;
            let start = range.start.clone();
            let transfer =
                Transfer { meta, membership, range, view, chunk: 0, start, next: None, last_used_ms: now_ms };
            self.transfers.insert(to, transfer);
        }
        let t = self.transfers.get_mut(&to).expect("inserted above");
        if continues && chunk == 0 {
            t.start = t.range.start.clone();
            t.chunk = 0;
        } else if continues && chunk == t.chunk + 1 {
            t.start = t.next.take().expect("checked above");
            t.chunk = chunk;
        }
        t.last_used_ms = now_ms;
        let (pairs, next) = read_chunk(&t.view, &t.start, t.range.end.as_deref(), bytes_max)?;
        t.next = next.clone();
        Ok(SnapshotChunk {
            to,
            meta: t.meta,
            membership: t.membership.clone(),
            chunk: t.chunk,
            data: encode_chunk(&t.range, &pairs),
            done: next.is_none(),
        })
    }

    /// Drops every transfer (the replica stopped leading).
    pub fn clear(&mut self) {
        self.transfers.clear();
    }

    /// Drops transfers idle since `TRANSFER_IDLE_MS`.
    pub fn expire(&mut self, now_ms: u64) {
        self.transfers.retain(|_, t| now_ms < t.last_used_ms + TRANSFER_IDLE_MS);
    }
}

/// The pairs from `start` until `bytes_max` is reached or the span ends, and where the
/// next chunk starts (`None`: the span ended).
fn read_chunk(
    view: &impl StorageView,
    start: &[u8],
    end: Option<&[u8]>,
    bytes_max: usize,
) -> Result<(Pairs, Option<Vec<u8>>), StorageError> {
    let mut pairs = Pairs::new();
    let mut bytes = 0;
    let mut from = start.to_vec();
    loop {
        let page = view.scan_range(DATA_PARTITION, &from, end, PAGE_KEYS)?;
        let last_page = page.len() < PAGE_KEYS;
        for (key, value) in page {
            if bytes > 0 && bytes + key.len() + value.len() > bytes_max {
                return Ok((pairs, Some(key)));
            }
            bytes += key.len() + value.len();
            from = key.clone();
            pairs.push((key, value));
        }
        if last_page {
            return Ok((pairs, None));
        }
        from.push(0);
    }
}
