//! Splits through a range's own log (ARCHITECTURE §9): the leader appends a
//! `RangeChange::Split` (`Payload::Range`); every replica applies it in log order, like a
//! command, and so at the same point of the range's history:
//!
//! ```text
//!   Split { at } committed at index i of range R = [start, end)
//!     ─▶ entries before i applied and written (the split sees their data)
//!     ─▶ one batch: R = [start, at) one generation newer, applied = i,
//!                   the new range N = [at, end) on R's voters: its descriptor, its
//!                   applied record (index 0, its keys), the node's hosted set + N
//!     ─▶ the node starts N's replica: its data is already in place (one ordered
//!        storage, N's span is what R gave up); N elects a leader among R's voters
//!   entries after i for keys in [at, end) ─▶ not applied by R: answered RangeMoved(N)
//! ```
//!
//! Nothing is copied: a range is a span of the node's storage, so the right half's data
//! simply changes hands at index i, on every replica at once as far as the logs go. A
//! write to the right half that was in flight in R's log (proposed before the split
//! committed) is refused at apply by the span check (`group.rs`), and its client, told
//! `RangeMoved` with N's descriptor, retries at N: neither lost nor applied twice.
//!
//! A split that the span does not allow (at its start or outside it: a second split at
//! the same key, raced through two leaders) or that meets a joint configuration changes
//! nothing, the same on every replica. A replica that skips index i by installing a
//! snapshot of R taken after it learns R's new span from the snapshot (`snapshot_install`)
//! and drops the right half's data. Its replica of N is then missing:
//!
//! ```text
//!   Raft messages of N arrive, N unknown here ─▶ RangeWanted{N} to the sender (at most
//!     one ask per range per RANGE_ASK_INTERVAL_MS)
//!   RangeKnown{N's range} ─▶ listed among its replicas, and no range hosted here
//!     overlaps it (else the split is still ahead in R's log here: it will make N)
//!     ─▶ one batch: N's range, the hosted set + N, N's span emptied, N marked lost
//!     ─▶ N's replica starts without a state machine (Raft `lose_state_machine`: it
//!        neither campaigns nor applies) and fetches a peer's (`state_fetch.rs`)
//! ```

use super::disk::Disk;
use super::group_data::{DataSize, DATA_PARTITION};
use super::raft_store::{Applied, RaftStore};
use super::NodeError;
use crate::codec;
use crate::io::{Storage, WriteBatch};
use crate::keyspace::RangeDescriptor;
use crate::raft::{Index, Membership, Term};
use crate::GroupId;
use std::collections::BTreeSet;

/// The node's record of the groups it hosts, once a split changed them from the initial
/// placement (`NodeConfig::hosted`): partition `node`, key `hosted`.
const HOSTED_KEY: &[u8] = b"hosted";
const HOSTED_BYTES_MAX: usize = 1 << 20;

pub fn load_hosted(storage: &impl Storage) -> Result<Option<BTreeSet<GroupId>>, NodeError> {
    match storage.get(super::created_with::NODE_PARTITION, HOSTED_KEY)? {
        None => Ok(None),
        Some(bytes) => codec::decode(&bytes, HOSTED_BYTES_MAX)
            .map(Some)
            .map_err(|e| NodeError::Corrupt(format!("the hosted groups record: {e}"))),
    }
}

pub fn stage_hosted(hosted: &BTreeSet<GroupId>, batch: &mut WriteBatch) {
    batch.put(super::created_with::NODE_PARTITION, HOSTED_KEY.to_vec(), codec::encode(hosted));
}

/// What applying a split did: the range's new descriptor, and the new range's.
pub struct Split {
    pub left: RangeDescriptor,
    pub right: RangeDescriptor,
    /// The size of the left half (the right one's is in its applied record).
    pub left_size: DataSize,
}

/// Applies `Split { at }`, entry `index` (of `term`) of `range`, whose data (written,
/// with every entry before `index` applied) is of `size`; `membership` is the
/// group's configuration at `index`, `hosted` the node's groups. Writes one batch and
/// returns the split, or `None` if the split changes nothing (see the module doc).
#[allow(clippy::too_many_arguments)] // one entry and the state it applies to
pub fn apply<S: Storage>(
    disk: &mut Disk<S>,
    store: &RaftStore,
    range: &RangeDescriptor,
    at: &[u8],
    (index, term): (Index, Term),
    size: DataSize,
    membership: &Membership,
    hosted: &mut BTreeSet<GroupId>,
) -> Result<Option<Split>, NodeError> {
    let applied = Applied { index, term, size };
    // A move in progress lists a replica that is no voter yet (or not any more): the
    // halves would disagree on their replicas. The split waits for the move.
    let listed: BTreeSet<_> = range.replicas.iter().copied().collect();
    let voters_only = membership.outgoing.is_empty() && membership.learners.is_empty() && listed == membership.voters;
    let halves = range.split(at, range.right_id()).filter(|_| voters_only);
    let Some((left, mut right)) = halves else {
        store.stage_applied(applied, &mut disk.batch);
        disk.write_batch()?;
        return Ok(None);
    };
    assert!(!hosted.contains(&right.id), "split id {} of range {} is taken", right.id, range.id);
    right.replicas = membership.voters.iter().copied().collect();
    let right_size = measure(disk, &right)?;
    let mut left_size = size;
    left_size.remove(right_size);
    if cfg!(debug_assertions) {
        // The size that split triggers weigh must be the data's. Checked at every split in
        // the builds with debug assertions (the simulator's, the tests'): a scan of the
        // left half, too slow for the real build's 64 MiB ranges.
        assert_eq!(left_size, measure(disk, &left)?, "range {}: the recorded size is not the data's", range.id);
    }
    store.stage_applied(Applied { size: left_size, ..applied }, &mut disk.batch);
    store.stage_range(&left, &mut disk.batch);
    let right_store = RaftStore::new(right.id);
    right_store.stage_range(&right, &mut disk.batch);
    right_store.stage_founders(&right.replicas, &mut disk.batch);
    right_store.stage_applied(Applied { index: 0, term: 0, size: right_size }, &mut disk.batch);
    hosted.insert(right.id);
    stage_hosted(hosted, &mut disk.batch);
    disk.write_batch()?;
    Ok(Some(Split { left, right, left_size }))
}

/// Makes this node a replica of `range`, which a split made and this node skipped:
/// records it with an empty span, marked lost so that it waits for a peer's state
/// (see the module doc). One batch.
pub fn adopt_missing<S: Storage>(
    disk: &mut Disk<S>,
    range: &RangeDescriptor,
    hosted: &mut BTreeSet<GroupId>,
) -> Result<(), NodeError> {
    assert!(hosted.insert(range.id), "range {} is hosted already", range.id);
    let store = RaftStore::new(range.id);
    store.stage_range(range, &mut disk.batch);
    store.stage_founders(&range.replicas, &mut disk.batch);
    store.stage_lost(true, &mut disk.batch);
    disk.batch.delete_range(DATA_PARTITION, range.start.clone(), range.end.clone());
    stage_hosted(hosted, &mut disk.batch);
    disk.write_batch()
}

/// Keys read per page while measuring.
const COUNT_PAGE_KEYS: usize = 1024;

/// The size of `range`'s span in storage, read a page at a time.
fn measure<S: Storage>(disk: &Disk<S>, range: &RangeDescriptor) -> Result<DataSize, NodeError> {
    let mut from = range.start.clone();
    let mut size = DataSize::default();
    loop {
        let page = disk.storage.scan_range(DATA_PARTITION, &from, range.end.as_deref(), COUNT_PAGE_KEYS)?;
        for (stored, value) in &page {
            size.add(DataSize::of_pair(stored, value));
        }
        match page.last() {
            Some((last, _)) if page.len() == COUNT_PAGE_KEYS => {
                from = last.clone();
                from.push(0);
            }
            _ => return Ok(size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::storage::memory::MemoryStorage;
    use crate::io::StorageView;
    use crate::keyspace::Keyspace;

    fn setup() -> (Disk<MemoryStorage>, RangeDescriptor, Membership) {
        let mut disk = Disk::new(MemoryStorage::default(), true);
        for key in ["a", "b", "f", "g", "h"] {
            disk.batch.put(DATA_PARTITION, key.as_bytes().to_vec(), b"v".to_vec());
        }
        disk.write_batch().unwrap();
        let range = Keyspace::ranged(vec![]).unwrap().place(&[1, 2, 3], 3).unwrap().descriptor(1).clone();
        let membership = Membership { voters: [1, 2, 3].into(), ..Default::default() };
        (disk, range, membership)
    }

    #[test]
    fn a_split_hands_the_right_half_to_a_new_range_in_one_batch() {
        let (mut disk, range, membership) = setup();
        let store = RaftStore::new(1);
        let mut hosted = BTreeSet::from([1]);
        // Five pairs of a one-byte key and value.
        let size = |keys| DataSize { keys, bytes: 2 * keys };
        let split = apply(&mut disk, &store, &range, b"f", (7, 2), size(5), &membership, &mut hosted).unwrap().unwrap();
        assert_eq!((split.left.end.as_deref(), split.left_size), (Some(&b"f"[..]), size(2)));
        assert_eq!(split.right.start, b"f");
        assert_eq!(split.right.replicas, [1, 2, 3]);
        assert_eq!(hosted, BTreeSet::from([1, split.right.id]));
        assert_eq!(load_hosted(&disk.storage).unwrap(), Some(hosted));
        let left = store.load_applied(&disk.storage).unwrap();
        assert_eq!((left.index, left.size), (7, size(2)));
        assert_eq!(store.load_range(&disk.storage).unwrap(), Some(split.left.clone()));
        let right_store = RaftStore::new(split.right.id);
        assert_eq!(right_store.load(&disk.storage).unwrap().applied, Applied { index: 0, term: 0, size: size(3) });
        assert_eq!(right_store.load_range(&disk.storage).unwrap(), Some(split.right));
    }

    #[test]
    fn a_missing_replica_is_adopted_empty_and_lost() {
        let (mut disk, range, _) = setup();
        let (_, right) = range.split(b"f", 9).unwrap();
        let mut hosted = BTreeSet::from([1]);
        adopt_missing(&mut disk, &right, &mut hosted).unwrap();
        assert_eq!(hosted, BTreeSet::from([1, 9]));
        assert_eq!(load_hosted(&disk.storage).unwrap(), Some(hosted));
        let store = RaftStore::new(9);
        assert_eq!(store.load_range(&disk.storage).unwrap(), Some(right.clone()));
        assert!(store.load(&disk.storage).unwrap().lost, "it waits for a peer's state");
        let left_over = disk.storage.scan_range(DATA_PARTITION, &right.start, None, 10).unwrap();
        assert!(left_over.is_empty(), "nothing stale stays in its span: {left_over:?}");
        let kept = disk.storage.scan_range(DATA_PARTITION, b"", Some(b"f"), 10).unwrap();
        assert_eq!(kept.len(), 2, "the keys before it are not its own");
    }

    #[test]
    fn a_split_the_span_or_configuration_does_not_allow_changes_nothing_but_the_applied_index() {
        let (mut disk, range, membership) = setup();
        let store = RaftStore::new(1);
        let mut hosted = BTreeSet::from([1]);
        assert!(apply(
            &mut disk,
            &store,
            &range,
            b"",
            (3, 1),
            DataSize { keys: 5, bytes: 10 },
            &membership,
            &mut hosted
        )
        .unwrap()
        .is_none());
        let joint = Membership { outgoing: [1, 2, 4].into(), ..membership };
        assert!(apply(&mut disk, &store, &range, b"f", (4, 1), DataSize { keys: 5, bytes: 10 }, &joint, &mut hosted)
            .unwrap()
            .is_none());
        assert_eq!(hosted, BTreeSet::from([1]));
        assert_eq!(store.load_applied(&disk.storage).unwrap().index, 4);
        assert_eq!(store.load_range(&disk.storage).unwrap(), None, "the descriptor stays the initial one");
    }
}
