//! A node's storage as its groups share it: one write batch for everything the groups
//! staged since the last write, and one sync for all of them (group commit across
//! groups). The sync discipline lives here: `make_durable` is what a message or an
//! answer that promises durable state waits for.

use super::NodeError;
use crate::io::{Storage, WriteBatch};
use std::time::Duration;

pub struct Disk<S> {
    pub storage: S,
    pub batch: WriteBatch,
    /// Writes were made since the last sync.
    unsynced: bool,
    /// See `NodeConfig::sync_writes`.
    sync_writes: bool,
}

impl<S: Storage> Disk<S> {
    pub fn new(storage: S, sync_writes: bool) -> Self {
        Disk { storage, batch: WriteBatch::default(), unsynced: false, sync_writes }
    }

    pub fn write_batch(&mut self) -> Result<(), NodeError> {
        if !self.batch.is_empty() {
            self.storage.write(std::mem::take(&mut self.batch))?;
            self.unsynced = true;
        }
        Ok(())
    }

    /// Writes what was staged, then `batch` (in that order: a crash keeps a prefix).
    pub fn write(&mut self, batch: WriteBatch) -> Result<(), NodeError> {
        self.write_batch()?;
        self.batch = batch;
        self.write_batch()
    }

    /// Syncs what was written, unless the configuration turned syncing off.
    pub async fn make_durable(&mut self) -> Result<(), NodeError> {
        if self.sync_writes {
            self.sync_now().await
        } else {
            self.write_batch()
        }
    }

    /// Writes and syncs whatever the configuration says (snapshots, a clean stop). A
    /// sync that takes time (`Storage::sync_delay`, the simulated disk's) makes the node
    /// wait, and a crash meanwhile finds the writes still unsynced.
    pub async fn sync_now(&mut self) -> Result<(), NodeError> {
        self.write_batch()?;
        if self.unsynced {
            let delay = self.storage.sync_delay();
            if delay > Duration::ZERO {
                tokio::time::sleep(delay).await;
            }
            self.storage.sync()?;
            self.unsynced = false;
        }
        Ok(())
    }
}
