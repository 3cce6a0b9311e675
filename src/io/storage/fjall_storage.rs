//! The real storage: one fjall database per node; a partition is a fjall keyspace.
//! Batches are committed without durability and `sync` is `PersistMode::SyncAll`, so
//! many writes share one fsync (group commit).

use super::{check_partition, Op, Pairs, Storage, StorageError, WriteBatch};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

pub struct FjallStorage {
    db: Database,
    // Keyspace handles are cached; opening one takes a lock inside fjall.
    keyspaces: Mutex<BTreeMap<String, Keyspace>>,
}

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(e.to_string())
}

impl FjallStorage {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let db = Database::builder(path).manual_journal_persist(true).open().map_err(io)?;
        Ok(FjallStorage { db, keyspaces: Mutex::new(BTreeMap::new()) })
    }

    fn keyspace(&self, name: &str) -> Result<Keyspace, StorageError> {
        check_partition(name)?;
        let mut ks = self.keyspaces.lock().expect("keyspace cache lock");
        if let Some(k) = ks.get(name) {
            return Ok(k.clone());
        }
        let k = self.db.keyspace(name, KeyspaceCreateOptions::default).map_err(io)?;
        ks.insert(name.to_string(), k.clone());
        Ok(k)
    }
}

impl Storage for FjallStorage {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.keyspace(partition)?.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, partition: &str, prefix: &[u8]) -> Result<Pairs, StorageError> {
        let mut out = Vec::new();
        for guard in self.keyspace(partition)?.prefix(prefix) {
            let (k, v) = guard.into_inner().map_err(io)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut b = self.db.batch().durability(None);
        for op in batch.ops {
            match op {
                Op::Put { partition, key, value } => b.insert(&self.keyspace(&partition)?, key, value),
                Op::Delete { partition, key } => b.remove(&self.keyspace(&partition)?, key),
            }
        }
        b.commit().map_err(io)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.db.persist(PersistMode::SyncAll).map_err(io)
    }
}
