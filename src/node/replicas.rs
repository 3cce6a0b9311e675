//! A range's replicas change through its own log (`RangeChange::AddReplica`,
//! `RemoveReplica`), so that every replica agrees on the descriptor at each index, and the
//! generation grows with each change. They bracket the group's configuration changes in
//! a move (`replica_move.rs`):
//!
//! ```text
//!   AddReplica{to} applied ─▶ the descriptor lists `to` (one generation newer); `to`
//!     does not apply it: it hosts nothing yet, and creates its replica, empty, when the
//!     group's messages reach it and a peer's descriptor lists it (`runtime/`)
//!   ... `to` a learner, caught up, promoted; `from` demoted to a learner ...
//!   RemoveReplica{from} applied ─▶ the descriptor no longer lists `from`; on `from`
//!     itself, one batch: the range's data and Raft records deleted, the hosted set
//!     without it, a tombstone (the generation it left at) so that a stale peer's
//!     descriptor never makes it adopt the range again
//! ```
//!
//! A replica removed whose log already makes it a member again (a crash lost the batch
//! that dropped it, and a later move added it back before it applied its removal again)
//! keeps its replica: it may have acknowledged entries to the leader as that member.
//!
//! A change that does not apply (the node is listed already, or not at all; removing a
//! voter, or the last replica) changes nothing but the applied index, the same on every
//! replica.

use super::disk::Disk;
use super::group_data::DATA_PARTITION;
use super::raft_store::{Applied, RaftStore};
use super::range_change::RangeChange;
use super::split::stage_hosted;
use super::NodeError;
use crate::codec;
use crate::io::{Storage, WriteBatch};
use crate::keyspace::RangeDescriptor;
use crate::raft::Membership;
use crate::{GroupId, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// What applying a replica change did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing but the applied index.
    Unchanged,
    /// The range has this descriptor now.
    Changed(RangeDescriptor),
    /// This node's replica was removed: the group's records and data are gone.
    Removed(RangeDescriptor),
}

/// Applies `change` (an `AddReplica` or `RemoveReplica`) at `applied` to `range` on node
/// `me`, whose configuration then is `membership`; `member_later`: the newest
/// configuration in this node's log lists it (a later move brought it back, and it may
/// have acknowledged entries as a member since: it keeps its replica, only the descriptor
/// changes). Writes one batch.
#[allow(clippy::too_many_arguments)] // one entry and the state it applies to
pub fn apply<S: Storage>(
    disk: &mut Disk<S>,
    store: &RaftStore,
    range: &RangeDescriptor,
    change: &RangeChange,
    applied: Applied,
    me: NodeId,
    membership: &Membership,
    member_later: bool,
    hosted: &mut BTreeSet<GroupId>,
    removed: &mut Tombstones,
) -> Result<Outcome, NodeError> {
    let next = match change {
        RangeChange::AddReplica { node } => range.with_replica(*node),
        // A voter's replica is never removed: the group would lose a member it counts.
        RangeChange::RemoveReplica { node } if membership.is_voter(*node) => None,
        RangeChange::RemoveReplica { node } => range.without_replica(*node),
        RangeChange::Split { .. } => unreachable!("a split is applied by split.rs"),
        RangeChange::Report { .. } => unreachable!("a report is applied as a write (directory_reports.rs)"),
    };
    let Some(next) = next else {
        store.stage_applied(applied, &mut disk.batch);
        disk.write_batch()?;
        return Ok(Outcome::Unchanged);
    };
    if matches!(change, RangeChange::RemoveReplica { node } if *node == me) && !member_later {
        drop_replica(disk, store, range, &next, hosted, removed)?;
        return Ok(Outcome::Removed(next));
    }
    store.stage_applied(applied, &mut disk.batch);
    store.stage_range(&next, &mut disk.batch);
    disk.write_batch()?;
    Ok(Outcome::Changed(next))
}

/// Drops this node's replica of `range` (its data span, its Raft records, its place among
/// the hosted groups) and keeps a tombstone at `newer`'s generation, in one batch: after
/// its removal applied here, or when a peer's `newer` descriptor no longer lists it (a
/// replica removed while it was down or cut off never hears its removal: garbage
/// collection, like CockroachDB's replica GC queue).
pub fn drop_replica<S: Storage>(
    disk: &mut Disk<S>,
    store: &RaftStore,
    range: &RangeDescriptor,
    newer: &RangeDescriptor,
    hosted: &mut BTreeSet<GroupId>,
    removed: &mut Tombstones,
) -> Result<(), NodeError> {
    assert_eq!(range.id, newer.id, "a replica is dropped by its own range's descriptor");
    assert!(newer.generation > range.generation, "dropped by a newer descriptor: {newer:?} after {range:?}");
    store.stage_drop(&mut disk.batch);
    disk.batch.delete_range(DATA_PARTITION, range.start.clone(), range.end.clone());
    assert!(hosted.remove(&range.id), "range {} is hosted here", range.id);
    stage_hosted(hosted, &mut disk.batch);
    removed.insert(range.id, newer.generation);
    removed.stage(&mut disk.batch);
    disk.write_batch()
}

/// The ranges whose replica left this node, with the generation they left at: a
/// descriptor of that generation or older is stale here. Partition `node`, key
/// `removed`; at most `TOMBSTONES_MAX`, the oldest ids forgotten first (a range that
/// old has long settled elsewhere).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tombstones(BTreeMap<GroupId, u64>);

const TOMBSTONES_KEY: &[u8] = b"removed";
const TOMBSTONES_MAX: usize = crate::keyspace::GROUPS_MAX as usize;
const TOMBSTONES_BYTES_MAX: usize = 1 << 20;

impl Tombstones {
    pub fn load(storage: &impl Storage) -> Result<Self, NodeError> {
        match storage.get(super::created_with::NODE_PARTITION, TOMBSTONES_KEY)? {
            None => Ok(Tombstones::default()),
            Some(bytes) => codec::decode(&bytes, TOMBSTONES_BYTES_MAX)
                .map(Tombstones)
                .map_err(|e| NodeError::Corrupt(format!("the removed ranges record: {e}"))),
        }
    }

    fn insert(&mut self, group: GroupId, generation: u64) {
        self.0.insert(group, generation);
        while self.0.len() > TOMBSTONES_MAX {
            self.0.pop_first();
        }
    }

    fn stage(&self, batch: &mut WriteBatch) {
        batch.put(super::created_with::NODE_PARTITION, TOMBSTONES_KEY.to_vec(), codec::encode(&self.0));
    }

    /// Whether `range` is one this node left, at that generation or later.
    pub fn left(&self, range: &RangeDescriptor) -> bool {
        self.0.get(&range.id).is_some_and(|&g| range.generation <= g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::storage::memory::MemoryStorage;
    use crate::io::StorageView;
    use crate::keyspace::Keyspace;
    use crate::node::group_data::DataSize;

    fn setup() -> (Disk<MemoryStorage>, RangeDescriptor) {
        let mut disk = Disk::new(MemoryStorage::default(), true);
        for key in ["a", "b"] {
            disk.batch.put(DATA_PARTITION, key.as_bytes().to_vec(), b"v".to_vec());
        }
        RaftStore::new(1)
            .stage_applied(Applied { index: 3, term: 1, size: DataSize { keys: 2, bytes: 0 } }, &mut disk.batch);
        disk.write_batch().unwrap();
        let range = Keyspace::ranged(vec![]).unwrap().place(&[1, 2, 3], 3).unwrap().descriptor(1).clone();
        (disk, range)
    }

    fn membership(voters: &[NodeId], learners: &[NodeId]) -> Membership {
        Membership {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn an_added_replica_is_listed_one_generation_newer() {
        let (mut disk, range) = setup();
        let store = RaftStore::new(1);
        let (mut hosted, mut removed) = (BTreeSet::from([1]), Tombstones::default());
        let applied = Applied { index: 4, term: 1, size: DataSize { keys: 2, bytes: 0 } };
        let add = RangeChange::AddReplica { node: 4 };
        let m = membership(&[1, 2, 3], &[]);
        let out = apply(&mut disk, &store, &range, &add, applied, 1, &m, false, &mut hosted, &mut removed).unwrap();
        let Outcome::Changed(next) = out else { panic!("{out:?}") };
        assert_eq!(next.replicas, [1, 2, 3, 4]);
        assert_eq!(next.generation, range.generation + 1);
        assert_eq!(store.load_range(&disk.storage).unwrap(), Some(next.clone()));
        assert_eq!(store.load_applied(&disk.storage).unwrap(), applied);
        let again = apply(&mut disk, &store, &next, &add, applied, 1, &m, false, &mut hosted, &mut removed).unwrap();
        assert_eq!(again, Outcome::Unchanged, "listed already");
    }

    #[test]
    fn a_voter_is_never_removed_and_a_removed_replica_takes_its_records_and_data_with_it() {
        let (mut disk, range) = setup();
        let store = RaftStore::new(1);
        let (mut hosted, mut removed) = (BTreeSet::from([1]), Tombstones::default());
        let applied = Applied { index: 4, term: 1, size: DataSize { keys: 2, bytes: 0 } };
        let remove = RangeChange::RemoveReplica { node: 1 };
        let voter = membership(&[1, 2, 3], &[]);
        let out =
            apply(&mut disk, &store, &range, &remove, applied, 1, &voter, false, &mut hosted, &mut removed).unwrap();
        assert_eq!(out, Outcome::Unchanged);
        let learner = membership(&[2, 3, 4], &[1]);
        let out = apply(&mut disk, &store, &range, &remove, applied, 1, &learner, true, &mut hosted, &mut removed);
        assert!(matches!(out.unwrap(), Outcome::Changed(_)), "a member again later keeps its replica");
        assert_eq!(hosted, BTreeSet::from([1]));
        let out =
            apply(&mut disk, &store, &range, &remove, applied, 1, &learner, false, &mut hosted, &mut removed).unwrap();
        let Outcome::Removed(next) = out else { panic!("{out:?}") };
        assert_eq!(next.replicas, [2, 3]);
        assert!(hosted.is_empty());
        assert_eq!(super::super::split::load_hosted(&disk.storage).unwrap(), Some(BTreeSet::new()));
        assert_eq!(store.load_applied(&disk.storage).unwrap(), Applied::default(), "the records are gone");
        assert!(disk.storage.scan_range(DATA_PARTITION, b"", None, 10).unwrap().is_empty(), "and the data");
        let loaded = Tombstones::load(&disk.storage).unwrap();
        assert!(loaded.left(&range), "an older descriptor listing it is stale here");
        assert!(loaded.left(&next));
        assert!(!loaded.left(&next.with_replica(1).unwrap()), "a newer one adds it again");
    }
}
