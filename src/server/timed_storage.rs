//! A [`Storage`] wrapper that times syncs into the metrics and logs slow writes and reads.
//! Lives in the real I/O shell: it reads the OS clock, which no protocol core may.

use super::metrics::Metrics;
use crate::io::storage::StorageView;
use crate::io::{Pairs, Storage, StorageError, SyncJob, WriteBatch};
use std::sync::Arc;
use std::time::Instant;

/// A single write or read that takes this long is logged: the event loop waited on it.
/// (fjall holds a tree's version lock through the fsync of its version file after every
/// flush and compaction, and reads and writes wait on that lock: on this project's test
/// machine single reads took up to 193 ms.)
const SLOW_CALL_MS: u64 = 50;

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
        let started = Instant::now();
        let result = self.inner.get(partition, key);
        let took_ms = started.elapsed().as_millis() as u64;
        if took_ms >= SLOW_CALL_MS {
            tracing::warn!(took_ms, partition, "slow storage read");
        }
        result
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
        let started = Instant::now();
        let ops = batch.ops.len();
        let result = self.inner.write(batch);
        let took_ms = started.elapsed().as_millis() as u64;
        if took_ms >= SLOW_CALL_MS {
            tracing::warn!(took_ms, ops, "slow storage write");
        }
        result
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.inner.sync();
        self.metrics.storage_sync.observe(started.elapsed());
        result
    }

    fn start_sync(&mut self) -> SyncJob {
        let job = self.inner.start_sync();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = job.await;
            metrics.storage_sync.observe(started.elapsed());
            result
        })
    }
}
