//! Durable storage: named, ordered key-value partitions with atomic write batches and an
//! explicit `sync`.
//!
//! Contract (checked by [`conformance`] against every implementation):
//! - `write` applies a batch atomically: after any crash either all of it or none of it is
//!   there. It is visible to reads at once but durable only after a later `sync` returns.
//! - After a crash, what remains is everything synced plus a *prefix* of the batches
//!   written after the last sync (never a later batch without an earlier one).
//! - `scan_prefix` and `scan_range` return keys in ascending byte order; `scan_range`
//!   returns at most `limit` pairs, so a caller pages through a span in bounded steps.
//! - `view` is a consistent read view as of its creation: writes after it are invisible to
//!   it, for as long as it lives (keep views short-lived: they hold old versions).
//! - `Op::DeleteRange` removes every key of a span, including records that no longer
//!   read back (a corrupt one): it is how a node drops data it cannot trust.
//! - A read that meets a record failing its checksum returns `StorageError::Corrupt`
//!   (detected corruption: the engine never hands out bad bytes).
//! - Any `Err` is fatal for the caller: the node poisons itself and stops. Storage is never
//!   retried silently, because after a failed fsync the state of the file is unknown
//!   (the lesson of PostgreSQL's "fsyncgate").

pub mod conformance;
#[cfg(not(madsim))]
mod fjall_storage;
#[cfg(test)]
pub mod memory;
#[cfg(madsim)]
mod sim_disk;

#[cfg(not(madsim))]
pub use fjall_storage::{FjallStorage, FjallView};
#[cfg(madsim)]
pub use sim_disk::{SimDisk, SimStorage, SimView};

/// One mutation inside a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        partition: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        partition: String,
        key: Vec<u8>,
    },
    /// Every key with `start <= key < end` (`end: None`: to the partition's end).
    DeleteRange {
        partition: String,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    },
}

impl Op {
    pub fn partition(&self) -> &str {
        match self {
            Op::Put { partition, .. } | Op::Delete { partition, .. } | Op::DeleteRange { partition, .. } => partition,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<Op>,
}

impl WriteBatch {
    pub fn put(&mut self, partition: &str, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put { partition: partition.to_string(), key, value });
    }
    pub fn delete(&mut self, partition: &str, key: Vec<u8>) {
        self.ops.push(Op::Delete { partition: partition.to_string(), key });
    }
    pub fn delete_range(&mut self, partition: &str, start: Vec<u8>, end: Option<Vec<u8>>) {
        self.ops.push(Op::DeleteRange { partition: partition.to_string(), start, end });
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The batch applied to storage held as one map of (partition, key): the simulated
    /// disk, and the in-memory storages of unit tests.
    #[cfg(any(madsim, test))]
    pub fn apply_to(&self, map: &mut MapStorage) {
        for op in &self.ops {
            match op {
                Op::Put { partition, key, value } => {
                    map.insert((partition.clone(), key.clone()), value.clone());
                }
                Op::Delete { partition, key } => {
                    map.remove(&(partition.clone(), key.clone()));
                }
                Op::DeleteRange { partition, start, end } => {
                    let doomed: Vec<_> =
                        map_range(map, partition, start, end.as_deref()).map(|(k, _)| k.clone()).collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
    }
}

/// Storage as one ordered map of (partition, key) to value.
#[cfg(any(madsim, test))]
pub type MapStorage = std::collections::BTreeMap<(String, Vec<u8>), Vec<u8>>;

/// The entries of `partition` with `start <= key < end`, in key order.
#[cfg(any(madsim, test))]
pub fn map_range<'a>(
    map: &'a MapStorage,
    partition: &'a str,
    start: &[u8],
    end: Option<&'a [u8]>,
) -> impl Iterator<Item = (&'a (String, Vec<u8>), &'a Vec<u8>)> + 'a {
    use std::ops::Bound;
    let from = (partition.to_string(), start.to_vec());
    let to = match end {
        Some(e) => Bound::Excluded((partition.to_string(), e.to_vec())),
        None => Bound::Unbounded,
    };
    map.range((Bound::Included(from), to)).take_while(move |((p, _), _)| p == partition)
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    #[error("I/O error: {0}")]
    Io(String),
    /// A record failed its checksum: the data on disk is not what was written.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("invalid partition name {0:?} (1 to 64 characters from [A-Za-z0-9_-])")]
    InvalidPartition(String),
}

/// Key-value pairs in ascending key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads: of a storage's current state ([`Storage`] is one), or of a view of it as it was
/// when the view was taken ([`Storage::view`]).
pub trait StorageView: Send + 'static {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// The pairs with `start <= key < end` (`end: None`: to the partition's end), in key
    /// order, at most `limit` of them.
    fn scan_range(
        &self,
        partition: &str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError>;
}

pub trait Storage: StorageView {
    type View: StorageView;
    fn scan_prefix(&self, partition: &str, prefix: &[u8]) -> Result<Pairs, StorageError>;
    /// A consistent read view as of now.
    fn view(&self) -> Result<Self::View, StorageError>;
    fn write(&mut self, batch: WriteBatch) -> Result<(), StorageError>;
    /// Makes every batch written so far durable, blocking the caller until it is.
    fn sync(&mut self) -> Result<(), StorageError>;
    /// Starts a sync that runs while the caller goes on (the node's event loop must not
    /// stand still for an fsync): once the job completes with `Ok`, every batch written
    /// before this call is durable. Batches written while it runs may be too, or not; a
    /// later sync covers them. Writing while a job runs is allowed but may wait for it
    /// (fjall holds its journal's lock through the fsync), so the node defers its writes.
    /// A real disk's job runs on a blocking thread; the simulated disk's takes the disk's
    /// simulated latency, and a crash meanwhile finds the writes unsynced.
    fn start_sync(&mut self) -> SyncJob;
}

/// A sync in progress (see [`Storage::start_sync`]).
pub type SyncJob = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StorageError>> + Send>>;

pub(crate) fn check_partition(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidPartition(name.to_string()))
    }
}
