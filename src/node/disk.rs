//! A node's storage as its groups share it: one write batch for everything the groups
//! staged since the last write, and one sync for all of them (group commit across
//! groups), which runs while the event loop goes on (a pipelined group commit).
//!
//! ```text
//!   stage ─▶ batch ──write──▶ storage (written: n) ──start_sync──▶ job ──done──▶ durable: n
//!                 ▲                                     │
//!                 └── while a job runs, batches wait ───┘  (fjall's writes would wait too)
//! ```
//!
//! What waits on durability names a *mark*: the number of writes that must be durable
//! for it (`mark`, taken when it was staged). `is_durable(mark)` says when it may go.

use super::NodeError;
use crate::io::{Storage, SyncJob, WriteBatch};

pub struct Disk<S> {
    pub storage: S,
    pub batch: WriteBatch,
    /// Batches written so far, and how many of them a finished sync covers.
    written: u64,
    durable: u64,
    /// The sync in progress and how many writes it covers.
    syncing: Option<(u64, SyncJob)>,
    /// See `NodeConfig::sync_writes`.
    sync_writes: bool,
}

impl<S: Storage> Disk<S> {
    pub fn new(storage: S, sync_writes: bool) -> Self {
        Disk { storage, batch: WriteBatch::default(), written: 0, durable: 0, syncing: None, sync_writes }
    }

    pub fn write_batch(&mut self) -> Result<(), NodeError> {
        if !self.batch.is_empty() {
            self.storage.write(std::mem::take(&mut self.batch))?;
            self.written += 1;
        }
        Ok(())
    }

    /// Writes what was staged, then `batch` (in that order: a crash keeps a prefix).
    pub fn write(&mut self, batch: WriteBatch) -> Result<(), NodeError> {
        self.write_batch()?;
        self.batch = batch;
        self.write_batch()
    }

    /// The writes that must be durable for what was staged until now: those made, and
    /// the one the staged batch is waiting for.
    pub fn mark(&self) -> u64 {
        self.written + u64::from(!self.batch.is_empty())
    }

    /// Whether the writes up to `mark` are written, and synced if they `need_sync` and the
    /// configuration syncs.
    pub fn is_durable(&self, mark: u64, need_sync: bool) -> bool {
        if need_sync && self.sync_writes {
            mark <= self.durable
        } else {
            mark <= self.written
        }
    }

    pub fn is_syncing(&self) -> bool {
        self.syncing.is_some()
    }

    /// Writes the staged batch and starts a sync of every write so far, unless one is
    /// running (the caller starts the next when it is done) or there is nothing to sync.
    pub fn start_sync(&mut self) -> Result<(), NodeError> {
        if self.syncing.is_some() {
            return Ok(());
        }
        self.write_batch()?;
        if self.durable < self.written {
            self.syncing = Some((self.written, self.storage.start_sync()));
        }
        Ok(())
    }

    /// Waits for the sync in progress (forever if there is none: a `select!` branch).
    /// Cancel-safe: the job lives on in `self` until it completes.
    pub async fn sync_done(&mut self) -> Result<(), NodeError> {
        let Some((covers, job)) = self.syncing.as_mut() else {
            return std::future::pending().await;
        };
        let covers = *covers;
        let result = job.await;
        self.syncing = None;
        result?;
        debug_assert!(covers <= self.written, "a sync covers writes that were made");
        self.durable = self.durable.max(covers);
        Ok(())
    }

    /// Writes and syncs everything, whatever the configuration says (a clean stop).
    pub async fn sync_now(&mut self) -> Result<(), NodeError> {
        if self.is_syncing() {
            self.sync_done().await?;
        }
        self.start_sync()?;
        if self.is_syncing() {
            self.sync_done().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Pairs, StorageError, StorageView};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// Counts writes; a sync job records how many writes it covers.
    #[derive(Default)]
    struct Counting {
        writes: u64,
        synced: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    }

    impl StorageView for Counting {
        fn get(&self, _: &str, _: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            Ok(None)
        }
        fn scan_range(&self, _: &str, _: &[u8], _: Option<&[u8]>, _: usize) -> Result<Pairs, StorageError> {
            Ok(Vec::new())
        }
    }

    impl Storage for Counting {
        type View = Counting;
        fn scan_prefix(&self, _: &str, _: &[u8]) -> Result<Pairs, StorageError> {
            Ok(Vec::new())
        }
        fn view(&self) -> Result<Counting, StorageError> {
            Ok(Counting::default())
        }
        fn write(&mut self, _: WriteBatch) -> Result<(), StorageError> {
            self.writes += 1;
            Ok(())
        }
        fn sync(&mut self) -> Result<(), StorageError> {
            Ok(())
        }
        fn start_sync(&mut self) -> SyncJob {
            let (covers, synced) = (self.writes, self.synced.clone());
            Box::pin(async move {
                synced.lock().unwrap().push(covers);
                Ok(())
            })
        }
    }

    fn stage(disk: &mut Disk<Counting>) {
        disk.batch.put("p", b"k".to_vec(), b"v".to_vec());
    }

    fn finish_sync(disk: &mut Disk<Counting>) {
        let mut done = pin!(disk.sync_done());
        let poll = done.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(poll, Poll::Ready(Ok(()))), "the job completes at once");
    }

    #[test]
    fn a_mark_is_durable_once_a_sync_that_started_after_its_write_completes() {
        let mut disk = Disk::new(Counting::default(), true);
        stage(&mut disk);
        let first = disk.mark();
        assert_eq!(first, 1, "the staged batch is the write it waits for");
        assert!(!disk.is_durable(first, false), "not even written");
        disk.start_sync().unwrap();
        assert!(disk.is_syncing());
        assert!(disk.is_durable(first, false), "written by the sync's start");
        assert!(!disk.is_durable(first, true), "not synced yet");
        // Staged while the sync runs: waits for the next one.
        stage(&mut disk);
        let second = disk.mark();
        assert_eq!(second, 2);
        disk.start_sync().unwrap();
        finish_sync(&mut disk);
        assert!(disk.is_durable(first, true));
        assert!(!disk.is_durable(second, true), "written after the sync started");
        disk.start_sync().unwrap();
        finish_sync(&mut disk);
        assert!(disk.is_durable(second, true));
        assert_eq!(
            *disk.storage.synced.lock().unwrap(),
            vec![1, 2],
            "one job per round, each covering what was written"
        );
        disk.start_sync().unwrap();
        assert!(!disk.is_syncing(), "nothing new to sync");
    }

    #[test]
    fn without_syncing_a_mark_is_durable_once_written() {
        let mut disk = Disk::new(Counting::default(), false);
        stage(&mut disk);
        let mark = disk.mark();
        disk.write_batch().unwrap();
        assert!(disk.is_durable(mark, true));
    }
}
