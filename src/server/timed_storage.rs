//! A [`Storage`] wrapper that times syncs into the metrics. Lives in the real I/O shell:
//! it reads the OS clock, which no protocol core may.

use super::metrics::Metrics;
use crate::io::storage::StorageView;
use crate::io::{Pairs, Storage, StorageError, WriteBatch};
use std::sync::Arc;
use std::time::Instant;

pub struct TimedStorage<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S: Storage> TimedStorage<S> {
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        TimedStorage { inner, metrics }
    }
}

impl<S: Storage> StorageView for TimedStorage<S> {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(partition, key)
    }

    fn scan_range(
        &self,
        partition: &str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError> {
        self.inner.scan_range(partition, start, end, limit)
    }
}

impl<S: Storage> Storage for TimedStorage<S> {
    type View = S::View;

    fn view(&self) -> Result<S::View, StorageError> {
        self.inner.view()
    }

    fn scan_prefix(&self, partition: &str, prefix: &[u8]) -> Result<Pairs, StorageError> {
        self.inner.scan_prefix(partition, prefix)
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        self.inner.write(batch)
    }

    fn sync_delay(&mut self) -> std::time::Duration {
        self.inner.sync_delay()
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.inner.sync();
        self.metrics.storage_sync.observe(started.elapsed());
        result
    }
}
