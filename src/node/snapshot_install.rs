//! A follower's side of a snapshot stream, in storage: chunks of the leader's data are
//! kept aside in partition `snap-in` (under the group id, then the stored key) as they
//! arrive, and moved into the group's span once the last one is in. Nothing of a transfer
//! is kept in memory but its key count.
//!
//! ```text
//!   chunk 0 ─▶ drop what an earlier transfer left aside; every chunk ─▶ put aside
//!   last chunk ─▶ one batch: the log cut + the install record {applied, Clear}
//!              ─▶ Clear: delete the span's keys, a page per batch ─▶ record {Move}
//!              ─▶ Move: put aside → span and delete aside, a page per batch
//!              ─▶ one batch: the applied record, the install record deleted
//! ```
//!
//! Crash safety: storage keeps a prefix of batches, so a crash leaves either the old data
//! and log (no install record: the transfer starts over), or an install record whose
//! phase says how to go on. `resume` finishes such an install before the group recovers;
//! every step can be repeated. The old data is deleted only once the record is written,
//! and the data is never a mix of old and new once the applied record says it is done.

use super::disk::Disk;
use super::group_data::{Span, DATA_PARTITION};
use super::raft_store::{Applied, RaftStore};
use super::NodeError;
use crate::codec;
use crate::io::{Pairs, Storage, WriteBatch};
use crate::GroupId;
use serde::{Deserialize, Serialize};

const ASIDE_PARTITION: &str = "snap-in";

/// Keys moved or deleted per batch.
const PAGE_KEYS: usize = 1024;

/// The largest encoded chunk a follower decodes (a leader sends `snapshot_chunk_bytes_max`).
pub const CHUNK_BYTES_MAX: usize = 64 << 20;

/// How far an install got; kept in the group's Raft partition until it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Install {
    /// What the data will be once moved.
    pub applied: Applied,
    pub phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Deleting the group's old keys.
    Clear,
    /// Moving the keys put aside into the group's span.
    Move,
}

fn aside_key(group: GroupId, stored: &[u8]) -> Vec<u8> {
    let mut key = group.to_be_bytes().to_vec();
    key.extend_from_slice(stored);
    key
}

/// The pairs of one chunk, as a leader encodes them (stored keys, in order).
pub fn encode_chunk(pairs: &Pairs) -> Vec<u8> {
    codec::encode(pairs)
}

/// Puts a chunk aside (chunk 0 first drops what an earlier transfer left); returns the
/// number of keys in it. A chunk that does not decode, or holds a key outside the group's
/// span, came from a leader that is broken: fatal, like any corrupt state.
pub fn put_aside<S: Storage>(
    disk: &mut Disk<S>,
    group: GroupId,
    span: &Span,
    chunk: u64,
    data: &[u8],
) -> Result<u64, NodeError> {
    let pairs: Pairs = codec::decode(data, CHUNK_BYTES_MAX)
        .map_err(|e| NodeError::Corrupt(format!("group {group}: snapshot chunk {chunk} does not decode: {e}")))?;
    if chunk == 0 {
        clear_aside(disk, group)?;
    }
    for (stored, value) in pairs.iter() {
        if !span.holds(stored) {
            return Err(NodeError::Corrupt(format!(
                "group {group}: snapshot chunk {chunk} holds key {stored:?} outside {span:?}"
            )));
        }
        disk.batch.put(ASIDE_PARTITION, aside_key(group, stored), value.clone());
    }
    Ok(pairs.len() as u64)
}

/// The keys put aside for `group`: `[start, end)` of the aside partition.
fn aside_span(group: GroupId) -> (Vec<u8>, Vec<u8>) {
    (group.to_be_bytes().to_vec(), (group + 1).to_be_bytes().to_vec())
}

/// Runs `f` on every page of `[start, end)` of `partition` in key order, each page read
/// after the last one's batch was written. The scan moves on from the last key it saw
/// rather than starting over: the keys `f` deleted are tombstones an engine would walk
/// again on every page (found by the real-process test, where installs grew to seconds).
fn for_each_page<S: Storage>(
    disk: &mut Disk<S>,
    partition: &str,
    start: &[u8],
    end: Option<&[u8]>,
    mut f: impl FnMut(Pairs, &mut WriteBatch),
) -> Result<(), NodeError> {
    let mut from = start.to_vec();
    loop {
        let page = disk.storage.scan_range(partition, &from, end, PAGE_KEYS)?;
        let Some((last, _)) = page.last() else { return Ok(()) };
        from = last.clone();
        from.push(0);
        let full = page.len() == PAGE_KEYS;
        let mut batch = WriteBatch::default();
        f(page, &mut batch);
        disk.write(batch)?;
        if !full {
            return Ok(());
        }
    }
}

/// Deletes whatever was put aside for `group`, a page per batch.
fn clear_aside<S: Storage>(disk: &mut Disk<S>, group: GroupId) -> Result<(), NodeError> {
    // What is staged (an earlier chunk of this batch) must be seen by the scan.
    disk.write_batch()?;
    let (start, end) = aside_span(group);
    for_each_page(disk, ASIDE_PARTITION, &start, Some(&end), |page, batch| {
        for (key, _) in page {
            batch.delete(ASIDE_PARTITION, key);
        }
    })
}

/// Starts the install of what was put aside: `batch` already holds the log cut; the
/// install record joins it, and the move runs to its end.
pub fn install<S: Storage>(
    disk: &mut Disk<S>,
    store: &RaftStore,
    group: GroupId,
    span: &Span,
    applied: Applied,
) -> Result<(), NodeError> {
    let record = Install { applied, phase: Phase::Clear };
    store.stage_install(Some(&record), &mut disk.batch);
    disk.write_batch()?;
    run(disk, store, group, span, record)
}

/// Finishes an install a crash interrupted, or drops what a transfer left aside.
pub fn resume<S: Storage>(disk: &mut Disk<S>, group: GroupId, span: &Span) -> Result<(), NodeError> {
    let store = RaftStore::new(group);
    match store.load_install(&disk.storage)? {
        Some(record) => run(disk, &store, group, span, record),
        None => {
            clear_aside(disk, group)?;
            disk.write_batch()
        }
    }
}

fn run<S: Storage>(
    disk: &mut Disk<S>,
    store: &RaftStore,
    group: GroupId,
    span: &Span,
    mut record: Install,
) -> Result<(), NodeError> {
    if record.phase == Phase::Clear {
        for_each_page(disk, DATA_PARTITION, &span.start, span.end.as_deref(), |page, batch| {
            for (key, _) in page {
                batch.delete(DATA_PARTITION, key);
            }
        })?;
        record.phase = Phase::Move;
        store.stage_install(Some(&record), &mut disk.batch);
        disk.write_batch()?;
    }
    let (start, end) = aside_span(group);
    for_each_page(disk, ASIDE_PARTITION, &start, Some(&end), |page, batch| {
        for (key, value) in page {
            batch.put(DATA_PARTITION, key[start.len()..].to_vec(), value);
            batch.delete(ASIDE_PARTITION, key);
        }
    })?;
    store.stage_applied(record.applied, &mut disk.batch);
    store.stage_install(None, &mut disk.batch);
    disk.write_batch()
}
