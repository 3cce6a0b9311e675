//! Storage in memory for the node's unit tests: one map, every batch recorded (so a test
//! can replay any prefix of them: what a crash leaves), and records a test marks as
//! damaged failing every read that meets them, as the simulated disk's do.

use super::{check_partition, map_range, MapStorage, Pairs, Storage, StorageError, StorageView, SyncJob, WriteBatch};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    pub map: MapStorage,
    pub batches: Vec<WriteBatch>,
    /// Damaged records (partition, key): reads that meet them fail; a write heals them.
    pub corrupt: BTreeSet<(String, Vec<u8>)>,
}

impl MemoryStorage {
    fn check<'a>(&self, partition: &str, keys: impl IntoIterator<Item = &'a [u8]>) -> Result<(), StorageError> {
        for key in keys {
            if self.corrupt.contains(&(partition.to_string(), key.to_vec())) {
                return Err(StorageError::Corrupt(format!("{partition} {key:?}")));
            }
        }
        Ok(())
    }
}

impl StorageView for MemoryStorage {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        check_partition(partition)?;
        self.check(partition, [key])?;
        Ok(self.map.get(&(partition.to_string(), key.to_vec())).cloned())
    }

    fn scan_range(
        &self,
        partition: &str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError> {
        check_partition(partition)?;
        let pairs: Pairs =
            map_range(&self.map, partition, start, end).take(limit).map(|((_, k), v)| (k.clone(), v.clone())).collect();
        self.check(partition, pairs.iter().map(|(k, _)| k.as_slice()))?;
        Ok(pairs)
    }
}

impl Storage for MemoryStorage {
    type View = MemoryStorage;

    fn scan_prefix(&self, partition: &str, prefix: &[u8]) -> Result<Pairs, StorageError> {
        let all = self.scan_range(partition, prefix, None, usize::MAX)?;
        Ok(all.into_iter().filter(|(k, _)| k.starts_with(prefix)).collect())
    }

    fn view(&self) -> Result<MemoryStorage, StorageError> {
        Ok(self.clone())
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        let before = self.map.clone();
        batch.apply_to(&mut self.map);
        // A record written or deleted anew is whole again.
        let touched: Vec<_> = self.corrupt.iter().filter(|k| before.get(k) != self.map.get(k)).cloned().collect();
        for k in touched {
            self.corrupt.remove(&k);
        }
        self.batches.push(batch);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn start_sync(&mut self) -> SyncJob {
        Box::pin(async { Ok(()) })
    }
}
