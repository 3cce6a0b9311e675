//! Detected corruption: what a node does when storage says a record of its data failed
//! its checksum (`StorageError::Corrupt`).
//!
//! ```text
//!   a read meets a bad record ─▶ the node poisons itself (like any storage error) and
//!                                 `mark`s that it must scrub; it serves nothing more
//!   restart, marked ─▶ `run`: read every group's span; a group whose span fails is
//!                      dropped (one batch: the span deleted, applied := the log's cut,
//!                      the `lost` mark if the cut is past 0), then the mark is removed
//!   group recovers lost ─▶ Raft `lose_state_machine`: no campaign, no commit; it fetches
//!                          a peer's state (`state_fetch`) ─▶ installed: the `lost` mark goes
//! ```
//!
//! Why only the data: the Raft log and hard state carry the node's votes and
//! acknowledgements, which a quorum counted on; a node that dropped them could elect a
//! leader without an entry it had acknowledged (protocol-aware recovery, Alagappan et al.,
//! FAST 2018, needs a protocol of its own for that). The data can be rebuilt from peers
//! at no risk: a state machine at the log's cut plus the log after it is the state. A
//! group whose log was never cut (cut 0) needs no peer: its own log from index 1 rebuilds
//! it, so it is simply dropped to empty and applies again — unless that log changed the
//! range itself (a split, a replica added or removed): the range's record is not data,
//! it stays as the newest entry left it, and applying those entries again would change it
//! twice (found by the `ranges` sweep once placement moved replicas under rotting disks:
//! one replica's descriptor ran two generations ahead of the others'). Such a group
//! fetches a peer's state like one whose log was cut.
//!
//! The mark is written by a node that is stopping on a corrupt read: a single batch, the
//! only write it makes once poisoned (it records the diagnosis; it retries nothing). If it
//! is lost, the next read of the bad record poisons the node again, and marks it then.

use super::created_with::NODE_PARTITION;
use super::disk::Disk;
use super::group_data::{DataSize, Span, DATA_PARTITION};
use super::raft_store::{Applied, RaftStore};
use super::range_change::RangeChange;
use super::NodeError;
use crate::io::{Storage, StorageError, WriteBatch};
use crate::raft::{Payload, PlantedBug};
use crate::GroupId;

const SCRUB_KEY: &[u8] = b"scrub";

/// Keys read per step of the scrub.
const PAGE_KEYS: usize = 1024;

/// Records that the node's data must be scrubbed before it serves again. Best effort: see
/// the module docs.
pub fn mark<S: Storage>(storage: &mut S) {
    let mut batch = WriteBatch::default();
    batch.put(NODE_PARTITION, SCRUB_KEY.to_vec(), Vec::new());
    if let Err(e) = storage.write(batch).and_then(|()| storage.sync()) {
        tracing::error!(error = %e, "could not record that the data must be scrubbed");
    }
}

/// What the scrub did to one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub group: GroupId,
    /// The index the group's data restarts from: the log's cut.
    pub base: u64,
}

/// Scrubs every group's data if the node was marked, and removes the mark. Returns the
/// groups whose data was dropped.
pub fn run<S: Storage>(
    disk: &mut Disk<S>,
    groups: &[(GroupId, Span)],
    planted_bug: Option<PlantedBug>,
) -> Result<Vec<Dropped>, NodeError> {
    if disk.storage.get(NODE_PARTITION, SCRUB_KEY)?.is_none() {
        return Ok(Vec::new());
    }
    let mut dropped = Vec::new();
    for (group, span) in groups {
        if is_whole(&disk.storage, span)? {
            continue;
        }
        let store = RaftStore::new(*group);
        let cut = store.load_cut(&disk.storage)?.map(|(meta, _)| meta).unwrap_or_default();
        let mut batch = WriteBatch::default();
        batch.delete_range(DATA_PARTITION, span.start.clone(), span.end.clone());
        store.stage_applied(Applied { index: cut.index, term: cut.term, size: DataSize::default() }, &mut batch);
        let own_log_rebuilds = cut.index == 0 && !changes_its_range(&store, &disk.storage)?;
        let lost = !own_log_rebuilds && !PlantedBug::RepairFromOwnLog.is_active(planted_bug);
        store.stage_lost(lost, &mut batch);
        disk.write(batch)?;
        crate::sometimes!("corrupt_data_dropped");
        tracing::warn!(group, base = cut.index, "corrupt data dropped; rebuilt from the log or a peer's state");
        dropped.push(Dropped { group: *group, base: cut.index });
    }
    let mut batch = WriteBatch::default();
    batch.delete(NODE_PARTITION, SCRUB_KEY.to_vec());
    disk.write(batch)?;
    // Durable before the groups recover: a crash must not find the span half trusted.
    disk.storage.sync()?;
    Ok(dropped)
}

/// Whether the group's log holds a change of its range (a report to the meta range's
/// directory is data, not one).
fn changes_its_range(store: &RaftStore, storage: &impl Storage) -> Result<bool, NodeError> {
    for entry in store.load(storage)?.entries {
        if let Payload::Range(bytes) = &entry.payload {
            if !matches!(RangeChange::decode(bytes, entry.index)?, RangeChange::Report { .. }) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether every record of `span` reads back (other errors are the node's end, as ever).
fn is_whole(storage: &impl Storage, span: &Span) -> Result<bool, NodeError> {
    let mut from = span.start.clone();
    loop {
        let page = match storage.scan_range(DATA_PARTITION, &from, span.end.as_deref(), PAGE_KEYS) {
            Ok(page) => page,
            Err(StorageError::Corrupt(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let Some((last, _)) = page.last() else { return Ok(true) };
        if page.len() < PAGE_KEYS {
            return Ok(true);
        }
        from = last.clone();
        from.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::storage::memory::MemoryStorage;
    use crate::io::StorageView;
    use crate::keyspace::Keyspace;
    use crate::raft::{Entry, Membership, SnapshotMeta};

    /// Two groups with three keys each, applied as far as their logs were cut: group 2's at
    /// 7, group 1's at `cut_index` (0: never cut).
    fn node(cut_index: u64) -> (Disk<MemoryStorage>, Vec<(GroupId, Span)>) {
        let keyspace = Keyspace::hashed(2).unwrap();
        let groups: Vec<_> = [1, 2].into_iter().map(|g| (g, Span::of(&keyspace, g))).collect();
        let mut disk = Disk::new(MemoryStorage::default(), true);
        for (group, _) in &groups {
            let keys = (0..).map(|i| format!("k{i}").into_bytes()).filter(|k| keyspace.group_of_key(k) == *group);
            for key in keys.take(3) {
                disk.batch.put(DATA_PARTITION, keyspace.storage_key(&key), key);
            }
            let store = RaftStore::new(*group);
            let index = if *group == 1 { cut_index } else { 7 };
            let term = if index > 0 { 2 } else { 0 };
            store.stage_applied(Applied { index, term, size: DataSize { keys: 3, bytes: 0 } }, &mut disk.batch);
            if index > 0 {
                let meta = SnapshotMeta { index, term };
                store.stage_cut(meta, &Membership::with_voters([1, 2, 3]), None, &mut disk.batch);
            }
        }
        disk.write_batch().unwrap();
        (disk, groups)
    }

    fn keys(disk: &Disk<MemoryStorage>, span: &Span) -> usize {
        disk.storage.map.keys().filter(|(p, k)| p == DATA_PARTITION && span.holds(k)).count()
    }

    fn damage(disk: &mut Disk<MemoryStorage>, span: &Span) {
        let key = disk.storage.map.keys().find(|(p, k)| p == DATA_PARTITION && span.holds(k));
        let key = key.expect("the span holds a key").clone();
        disk.storage.corrupt.insert(key);
    }

    #[test]
    fn an_unmarked_node_scrubs_nothing() {
        let (mut disk, groups) = node(5);
        damage(&mut disk, &groups[0].1);
        let written = disk.storage.batches.len();
        assert_eq!(run(&mut disk, &groups, None).unwrap(), vec![]);
        assert_eq!(disk.storage.batches.len(), written, "not a write");
    }

    #[test]
    fn a_marked_node_drops_only_the_damaged_group_and_asks_peers_past_a_cut() {
        let (mut disk, groups) = node(5);
        damage(&mut disk, &groups[0].1);
        mark(&mut disk.storage);
        assert_eq!(run(&mut disk, &groups, None).unwrap(), vec![Dropped { group: 1, base: 5 }]);
        assert_eq!(keys(&disk, &groups[0].1), 0, "the damaged span is gone");
        assert_eq!(keys(&disk, &groups[1].1), 3, "the other group's data stays");
        let (one, two) =
            (RaftStore::new(1).load(&disk.storage).unwrap(), RaftStore::new(2).load(&disk.storage).unwrap());
        assert_eq!(
            one.applied,
            Applied { index: 5, term: 2, size: DataSize::default() },
            "applied restarts at the cut"
        );
        assert!(one.lost, "past a cut, only a peer has the state");
        assert_eq!(two.applied, Applied { index: 7, term: 2, size: DataSize { keys: 3, bytes: 0 } });
        assert!(!two.lost);
        assert_eq!(disk.storage.get(NODE_PARTITION, SCRUB_KEY).unwrap(), None, "the mark is removed");
        assert_eq!(run(&mut disk, &groups, None).unwrap(), vec![], "a second run finds nothing to do");
    }

    #[test]
    fn a_group_never_cut_rebuilds_from_its_own_log() {
        let (mut disk, groups) = node(0);
        damage(&mut disk, &groups[0].1);
        mark(&mut disk.storage);
        assert_eq!(run(&mut disk, &groups, None).unwrap(), vec![Dropped { group: 1, base: 0 }]);
        let one = RaftStore::new(1).load(&disk.storage).unwrap();
        assert_eq!(one.applied, Applied::default());
        assert!(!one.lost, "the log from index 1 is the whole state");
    }

    #[test]
    fn a_group_never_cut_whose_log_changed_its_range_asks_a_peer() {
        let (mut disk, groups) = node(0);
        let entries = |payloads: Vec<Payload>| {
            let entries = payloads.into_iter().enumerate();
            crate::raft::Effect::AppendLog(
                entries.map(|(i, payload)| Entry { term: 1, index: i as u64 + 1, payload }).collect(),
            )
        };
        let store = RaftStore::new(1);
        // A report is data (the meta range's directory), rebuilt with the rest.
        let report = RangeChange::Report { ranges: vec![] }.encode();
        store.stage(&entries(vec![Payload::Noop, Payload::Range(report.clone())]), &mut disk.batch);
        disk.write_batch().unwrap();
        assert!(!changes_its_range(&store, &disk.storage).unwrap());
        let added = RangeChange::AddReplica { node: 4 }.encode();
        store.stage(&entries(vec![Payload::Noop, Payload::Range(report), Payload::Range(added)]), &mut disk.batch);
        disk.write_batch().unwrap();
        damage(&mut disk, &groups[0].1);
        mark(&mut disk.storage);
        assert_eq!(run(&mut disk, &groups, None).unwrap(), vec![Dropped { group: 1, base: 0 }]);
        assert!(store.load(&disk.storage).unwrap().lost, "applied again, the change would count twice");
    }

    /// The planted bug `repair_from_own_log` forgets that the log before the cut is gone.
    #[test]
    fn the_planted_bug_rebuilds_past_a_cut_from_its_own_log() {
        let (mut disk, groups) = node(5);
        damage(&mut disk, &groups[0].1);
        mark(&mut disk.storage);
        run(&mut disk, &groups, Some(PlantedBug::RepairFromOwnLog)).unwrap();
        assert!(!RaftStore::new(1).load(&disk.storage).unwrap().lost);
    }
}
