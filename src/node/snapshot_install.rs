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
use super::group_data::{DataSize, Span, DATA_PARTITION};
use super::raft_store::{Applied, RaftStore};
use super::NodeError;
use crate::codec;
use crate::io::{Pairs, Storage, WriteBatch};
use crate::keyspace::RangeDescriptor;
use crate::GroupId;
use serde::{Deserialize, Serialize};

const ASIDE_PARTITION: &str = "snap-in";

/// Keys moved or deleted per batch.
const PAGE_KEYS: usize = 1024;

/// The largest encoded chunk a follower decodes (a leader sends `snapshot_chunk_bytes_max`).
pub const CHUNK_BYTES_MAX: usize = 64 << 20;

/// How far an install got; kept in the group's Raft partition until it is done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Install {
    /// What the data will be once moved.
    pub applied: Applied,
    /// The range the snapshot is of: the group's once the install is done (a split the
    /// node skipped narrowed it).
    pub range: RangeDescriptor,
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

/// One chunk as a leader encodes it: the range the snapshot is of, and its pairs (stored
/// keys, in order).
pub fn encode_chunk(range: &RangeDescriptor, pairs: &Pairs) -> Vec<u8> {
    codec::encode(&(range, pairs))
}

/// Puts a chunk aside (chunk 0 first drops what an earlier transfer left); returns the
/// number of keys in it and the range the snapshot is of. A chunk that does not decode,
/// is of another group, or holds a key outside its range came from a leader that is
/// broken: fatal, like any corrupt state.
pub fn put_aside<S: Storage>(
    disk: &mut Disk<S>,
    group: GroupId,
    chunk: u64,
    data: &[u8],
) -> Result<(DataSize, RangeDescriptor), NodeError> {
    let (range, pairs): (RangeDescriptor, Pairs) = codec::decode(data, CHUNK_BYTES_MAX)
        .map_err(|e| NodeError::Corrupt(format!("group {group}: snapshot chunk {chunk} does not decode: {e}")))?;
    if range.id != group {
        return Err(NodeError::Corrupt(format!("group {group}: snapshot chunk {chunk} is of range {}", range.id)));
    }
    if chunk == 0 {
        clear_aside(disk, group)?;
    }
    let mut size = DataSize::default();
    for (stored, value) in pairs.iter() {
        size.add(DataSize::of_pair(stored, value));
        if !range.holds(stored) {
            return Err(NodeError::Corrupt(format!(
                "group {group}: snapshot chunk {chunk} holds key {stored:?} outside {range:?}"
            )));
        }
        disk.batch.put(ASIDE_PARTITION, aside_key(group, stored), value.clone());
    }
    Ok((size, range))
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

/// Starts the install of what was put aside, a snapshot of `range`, over the group's
/// data in `span` (its range before the install): `batch` already holds the log cut;
/// the install record joins it, and the move runs to its end.
#[allow(clippy::too_many_arguments)] // the install and where it goes
pub fn install<S: Storage>(
    disk: &mut Disk<S>,
    store: &RaftStore,
    group: GroupId,
    span: &Span,
    applied: Applied,
    range: RangeDescriptor,
    planted_bug: Option<crate::raft::PlantedBug>,
) -> Result<(), NodeError> {
    let record = Install { applied, range, phase: Phase::Clear };
    if !crate::raft::PlantedBug::InstallWithoutRecord.is_active(planted_bug) {
        store.stage_install(Some(&record), &mut disk.batch);
    }
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
    store.stage_range(&record.range, &mut disk.batch);
    store.stage_install(None, &mut disk.batch);
    // A group whose data was dropped as corrupt (`scrub`) has it back.
    store.stage_lost(false, &mut disk.batch);
    disk.write_batch()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StorageView;
    use crate::keyspace::Keyspace;
    use std::collections::BTreeMap;

    /// What a crash leaves: every batch is recorded.
    type Recording = crate::io::storage::memory::MemoryStorage;

    fn data(storage: &Recording, span: &Span) -> BTreeMap<Vec<u8>, Vec<u8>> {
        storage.scan_range(DATA_PARTITION, &span.start, span.end.as_deref(), usize::MAX).unwrap().into_iter().collect()
    }

    fn stored(keyspace: &Keyspace, group: GroupId, prefix: &str, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..)
            .map(|i| format!("{prefix}{i}").into_bytes())
            .filter(|k| keyspace.group_of_key(k) == group)
            .take(n)
            .map(|k| (keyspace.storage_key(&k), k))
            .collect()
    }

    /// Crashes an install after each of its batches in turn, resumes, and says what the
    /// first crash that did not leave either the old state or the new one left.
    fn crash_anywhere_in_an_install(bug: Option<crate::raft::PlantedBug>) -> Result<(), String> {
        let keyspace = Keyspace::hashed(2).unwrap();
        let (group, span) = (1, Span::of(&keyspace, 1));
        let range = keyspace.descriptor(1);
        let store = RaftStore::new(group);
        let old = stored(&keyspace, 1, "old", 1_500);
        let new = stored(&keyspace, 1, "new", 2_100);
        let other = stored(&keyspace, 2, "other", 10);
        let (old_applied, new_applied) = (
            Applied { index: 5, term: 1, size: DataSize { keys: 1_500, bytes: 0 } },
            Applied { index: 9, term: 2, size: DataSize { keys: 2_100, bytes: 0 } },
        );
        let mut disk = Disk::new(Recording::default(), true);
        for (k, v) in old.iter().chain(&other) {
            disk.batch.put(DATA_PARTITION, k.clone(), v.clone());
        }
        store.stage_applied(old_applied, &mut disk.batch);
        let members = crate::raft::Membership::with_voters([1, 2, 3]);
        let cut = |index, term| crate::raft::SnapshotMeta { index, term };
        store.stage_cut(cut(5, 1), &members, None, &mut disk.batch);
        disk.write_batch().unwrap();
        for (i, chunk) in new.chunks(700).enumerate() {
            let (kept, of) = put_aside(&mut disk, group, i as u64, &encode_chunk(range, &chunk.to_vec())).unwrap();
            let mut size = DataSize::default();
            chunk.iter().for_each(|(k, v)| size.add(DataSize::of_pair(k, v)));
            assert_eq!((kept, &of), (size, range));
        }
        disk.write_batch().unwrap();
        let before = disk.storage.clone();
        let written = disk.storage.batches.len();
        // As the replica does: the log cut goes in the batch the install record joins.
        store.stage_cut(cut(9, 2), &members, None, &mut disk.batch);
        install(&mut disk, &store, group, &span, new_applied, range.clone(), bug).unwrap();
        let install_batches = disk.storage.batches[written..].to_vec();
        assert!(install_batches.len() > 4, "pages of a bounded size: {} batches", install_batches.len());
        let (old_data, new_data): (BTreeMap<_, _>, BTreeMap<_, _>) =
            (old.into_iter().collect(), new.into_iter().collect());
        for kept in 0..=install_batches.len() {
            let mut crashed = before.clone();
            for b in &install_batches[..kept] {
                b.apply_to(&mut crashed.map);
            }
            let mut disk = Disk::new(crashed, true);
            let at = format!("a crash after {kept} of the install's {} batches", install_batches.len());
            resume(&mut disk, group, &span).map_err(|e| format!("{at}: resume: {e}"))?;
            let recovered = store.load(&disk.storage).map_err(|e| format!("{at}: recovery: {e}"))?.applied;
            let expected = if kept == 0 { (&old_data, old_applied) } else { (&new_data, new_applied) };
            if recovered != expected.1 || &data(&disk.storage, &span) != expected.0 {
                return Err(format!("{at}: applied {recovered:?} and {} keys", data(&disk.storage, &span).len()));
            }
            assert_eq!(data(&disk.storage, &Span::of(&keyspace, 2)).len(), other.len(), "{at}: the other group's keys");
            let (start, end) = aside_span(group);
            assert!(disk.storage.scan_range(ASIDE_PARTITION, &start, Some(&end), 1).unwrap().is_empty(), "{at}: aside");
            assert_eq!(store.load_install(&disk.storage).unwrap(), None, "{at}: the install is over");
        }
        Ok(())
    }

    /// A crash after any batch of an install leaves, once `resume` ran, either the old
    /// data and applied record (the install record was not written) or the new ones,
    /// never a mix; the other group's keys are untouched and nothing stays aside.
    #[test]
    fn a_crash_anywhere_in_an_install_leaves_the_old_state_or_the_new() {
        crash_anywhere_in_an_install(None).unwrap();
    }

    /// The planted bug `install_without_record` (the old data deleted before the install
    /// record is written) is what the test above exists to catch.
    #[test]
    fn an_install_without_its_record_first_is_caught() {
        let found = crash_anywhere_in_an_install(Some(crate::raft::PlantedBug::InstallWithoutRecord));
        let error = found.expect_err("the planted bug breaks crash consistency");
        assert!(error.contains("recovery: persisted state is corrupt"), "{error}");
    }

    #[test]
    fn a_chunk_that_does_not_decode_or_leaves_the_span_is_refused() {
        let keyspace = Keyspace::hashed(2).unwrap();
        let range = keyspace.descriptor(1);
        let mut disk = Disk::new(Recording::default(), true);
        assert!(matches!(put_aside(&mut disk, 1, 0, &[0xff; 3]), Err(NodeError::Corrupt(_))));
        let foreign = stored(&keyspace, 2, "k", 1);
        assert!(matches!(put_aside(&mut disk, 1, 0, &encode_chunk(range, &foreign)), Err(NodeError::Corrupt(_))));
        let mine = stored(&keyspace, 1, "k", 1);
        let other_range = keyspace.descriptor(2);
        let e = put_aside(&mut disk, 1, 0, &encode_chunk(other_range, &mine)).unwrap_err();
        assert!(e.to_string().contains("is of range 2"), "{e}");
    }
}
