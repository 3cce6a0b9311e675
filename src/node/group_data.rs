//! A group's data as the node stores it: in the node's one ordered storage, partition
//! `data`, under the cluster's `Sharding::storage_key` (slot then key, or the key as it
//! is), so that a group's keys are the span `Keyspace::span(group)`, next to its Raft log.
//!
//! ```text
//!   committed entries ─▶ Applying (reads: its own writes, then storage) ─▶ stage
//!                          └─ one write batch: the changed keys + the applied record
//!   confirmed reads  ─▶ Reading (storage as it is)
//! ```
//!
//! The applied record (`raft_store::Applied`) and the data it describes are written in one
//! atomic batch, so after any crash the data is exactly the applied index's. A key that is
//! not in the group's span is a routing bug, and fatal.

use crate::io::{StorageError, StorageView, WriteBatch};
#[cfg(test)]
use crate::keyspace::Keyspace;
use crate::keyspace::{RangeDescriptor, Sharding};
use crate::state_machine::{Data, DataMut};
use std::collections::BTreeMap;

/// The partition every group's data lives in.
pub const DATA_PARTITION: &str = "data";

/// A group's span of stored keys: `start <= key < end` (`end: None`: to the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
    /// How a key becomes a stored key.
    pub sharding: Sharding,
}

impl Span {
    #[cfg(test)]
    pub fn of(keyspace: &Keyspace, group: crate::GroupId) -> Self {
        Span::of_range(keyspace.descriptor(group), keyspace.sharding())
    }

    pub fn of_range(range: &RangeDescriptor, sharding: Sharding) -> Self {
        Span { start: range.start.clone(), end: range.end.clone(), sharding }
    }

    /// Whether every one of `keys` (the state machine's) is stored in the span. A key
    /// stored in the system span is no state machine's (`keyspace::SYSTEM_START`).
    pub fn holds_keys(&self, keys: &[&[u8]]) -> bool {
        keys.iter().all(|k| {
            let stored = self.sharding.storage_key(k);
            stored.as_slice() < crate::keyspace::SYSTEM_START && self.holds(&stored)
        })
    }

    pub fn holds(&self, stored: &[u8]) -> bool {
        stored >= self.start.as_slice() && self.end.as_deref().is_none_or(|e| stored < e)
    }
}

/// How much data a group holds: its keys, and the bytes of their stored keys and values
/// (what a size-based split weighs, `split_trigger.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataSize {
    pub keys: u64,
    pub bytes: u64,
}

impl DataSize {
    /// The size of one stored pair.
    pub fn of_pair(stored: &[u8], value: &[u8]) -> Self {
        DataSize { keys: 1, bytes: (stored.len() + value.len()) as u64 }
    }

    pub fn add(&mut self, other: DataSize) {
        self.keys += other.keys;
        self.bytes += other.bytes;
    }

    /// Takes `part` away; `part` must be a part of it (a broken count is a bug).
    pub fn remove(&mut self, part: DataSize) {
        self.keys = self.keys.checked_sub(part.keys).expect("a present key is counted");
        self.bytes = self.bytes.checked_sub(part.bytes).expect("a present key's bytes are counted");
    }
}

fn stored(span: &Span, key: &[u8]) -> Vec<u8> {
    let stored = span.sharding.storage_key(key);
    assert!(span.holds(&stored), "key {key:?} is outside the group's span {span:?}");
    stored
}

/// The data of a group being applied to: its writes are kept until `stage`.
pub struct Applying<'a, V: StorageView> {
    storage: &'a V,
    span: &'a Span,
    /// Stored key → new value (`None`: deleted).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    size: DataSize,
    /// Keys outside the span are let through (`PlantedBug::StaleRoutingAccepted`).
    unchecked: bool,
    /// Overwrites keep the old pair's bytes (`PlantedBug::SizeIgnoresOverwrites`).
    size_bug: bool,
}

impl<'a, V: StorageView> Applying<'a, V> {
    pub fn new(storage: &'a V, span: &'a Span, size: DataSize) -> Self {
        Applying { storage, span, writes: BTreeMap::new(), size, unchecked: false, size_bug: false }
    }

    /// With `size_bug`, an overwrite's old pair stays counted (a planted bug's).
    pub fn size_bug(mut self, size_bug: bool) -> Self {
        self.size_bug = size_bug;
        self
    }

    /// With `unchecked`, keys outside the span are not refused (a planted bug's).
    pub fn unchecked(mut self, unchecked: bool) -> Self {
        self.unchecked = unchecked;
        self
    }

    fn stored(&self, key: &[u8]) -> Vec<u8> {
        if self.unchecked {
            self.span.sharding.storage_key(key)
        } else {
            stored(self.span, key)
        }
    }

    fn lookup(&self, stored: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.writes.get(stored) {
            Some(written) => Ok(written.clone()),
            None => self.storage.get(DATA_PARTITION, stored),
        }
    }

    /// Forgets the writes to stored keys from `at` on (`PlantedBug::SplitDropsRightWrites`).
    pub fn forget_from(&mut self, at: &[u8]) {
        self.writes.retain(|k, _| k.as_slice() < at);
    }

    /// The value of a system record at `stored` (a stored key of the system span, which
    /// only the meta range holds: no user key maps there).
    pub fn get_system(&self, stored: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        assert!(stored >= crate::keyspace::SYSTEM_START, "{stored:?} is not a system key");
        assert!(self.span.holds(stored), "system key {stored:?} is outside the group's span {:?}", self.span);
        self.lookup(stored)
    }

    /// Writes a system record (see `get_system`); counted in the range's size.
    pub fn put_system(&mut self, stored: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        if let Some(old) = self.get_system(stored)? {
            self.size.remove(DataSize::of_pair(stored, &old));
        }
        self.size.add(DataSize::of_pair(stored, &value));
        self.writes.insert(stored.to_vec(), Some(value));
        Ok(())
    }

    /// Stages the writes into `batch`; the group's size after them.
    pub fn stage(self, batch: &mut WriteBatch) -> DataSize {
        for (key, value) in self.writes {
            match value {
                Some(v) => batch.put(DATA_PARTITION, key, v),
                None => batch.delete(DATA_PARTITION, key),
            }
        }
        self.size
    }
}

impl<V: StorageView> Data for Applying<'_, V> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.lookup(&self.stored(key))
    }
    fn key_count(&self) -> u64 {
        self.size.keys
    }
}

impl<V: StorageView> DataMut for Applying<'_, V> {
    fn put(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        let stored = self.stored(key);
        if let Some(old) = self.lookup(&stored)? {
            if !self.size_bug {
                self.size.remove(DataSize::of_pair(&stored, &old));
            }
        }
        self.size.add(DataSize::of_pair(&stored, &value));
        self.writes.insert(stored, Some(value));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, StorageError> {
        let stored = self.stored(key);
        let Some(old) = self.lookup(&stored)? else { return Ok(false) };
        self.size.remove(DataSize::of_pair(&stored, &old));
        self.writes.insert(stored, None);
        Ok(true)
    }
}

/// The data of a group as storage holds it, for reads.
pub struct Reading<'a, V: StorageView> {
    pub storage: &'a V,
    pub span: &'a Span,
    pub keys: u64,
}

impl<V: StorageView> Data for Reading<'_, V> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.storage.get(DATA_PARTITION, &stored(self.span, key))
    }
    fn key_count(&self) -> u64 {
        self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Pairs;
    use crate::state_machine::MemoryData;

    /// A storage view over a map of stored keys, in the data partition.
    struct Map(BTreeMap<Vec<u8>, Vec<u8>>);

    impl StorageView for Map {
        fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            assert_eq!(partition, DATA_PARTITION);
            Ok(self.0.get(key).cloned())
        }
        fn scan_range(&self, _: &str, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Pairs, StorageError> {
            let end = end.map(<[u8]>::to_vec);
            Ok(self
                .0
                .range(start.to_vec()..)
                .take_while(|(k, _)| end.as_ref().is_none_or(|e| *k < e))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
    }

    #[test]
    fn applying_reads_its_own_writes_and_counts_keys_like_a_map() {
        let span = Span::of(&Keyspace::hashed(1).unwrap(), 1);
        let mut stored = BTreeMap::new();
        stored.insert(Sharding::Hash.storage_key(b"old"), b"1".to_vec());
        let storage = Map(stored);
        let old_size = DataSize::of_pair(&Sharding::Hash.storage_key(b"old"), b"1");
        let mut applying = Applying::new(&storage, &span, old_size);
        let mut model = MemoryData::default();
        model.put(b"old", b"1".to_vec()).unwrap();
        for (key, value) in [("a", Some("x")), ("a", Some("y")), ("old", None), ("b", None), ("old", Some("2"))] {
            match value {
                Some(v) => {
                    applying.put(key.as_bytes(), v.as_bytes().to_vec()).unwrap();
                    model.put(key.as_bytes(), v.as_bytes().to_vec()).unwrap();
                }
                None => assert_eq!(applying.delete(key.as_bytes()).unwrap(), model.delete(key.as_bytes()).unwrap()),
            }
            for k in ["a", "b", "old"] {
                assert_eq!(applying.get(k.as_bytes()).unwrap(), model.get(k.as_bytes()).unwrap(), "{k}");
            }
            assert_eq!(applying.key_count(), model.key_count());
        }
        let mut batch = WriteBatch::default();
        let size = |k: &str, v: &str| DataSize::of_pair(&Sharding::Hash.storage_key(k.as_bytes()), v.as_bytes());
        let mut expected = size("a", "y");
        expected.add(size("old", "2"));
        assert_eq!(applying.stage(&mut batch), expected, "keys and bytes of what is left");
        assert_eq!(batch.ops.len(), 2, "one write per changed key: {batch:?}");
    }

    #[test]
    #[should_panic(expected = "outside the group's span")]
    fn a_key_of_another_group_is_refused() {
        let keyspace = Keyspace::hashed(2).unwrap();
        let span = Span::of(&keyspace, 1);
        let storage = Map(BTreeMap::new());
        let reading = Reading { storage: &storage, span: &span, keys: 0 };
        let _ = reading.get(&keyspace.key_in(2, "k"));
    }
}
