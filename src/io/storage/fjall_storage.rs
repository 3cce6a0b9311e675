//! The real storage: one fjall database per node; a partition is a fjall keyspace.
//! Batches are committed without durability and `sync` is `PersistMode::SyncAll`, so
//! many writes share one fsync (group commit).

use super::{check_partition, Op, Pairs, Storage, StorageError, StorageView, SyncJob, WriteBatch};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The in-memory write buffer of one partition before it is sealed and flushed. fjall's
/// default (64 MiB) lets a node hold up to five of them per busy partition (one active,
/// four sealed before writes halt): hundreds of MiB of resident memory that grow with
/// the load, and, when flushes fall behind, write halts of 100 ms steps inside the
/// event loop. Smaller buffers flush sooner and in smaller pieces.
const MEMTABLE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// fjall's flush and compaction threads: half the cores (at least one), so that they
/// leave the event loop a core. With fjall's default (one per core, up to four) on two
/// cores, 3 nodes under 64 writing clients had 2 to 3 times as many event-loop turns over
/// 100 ms, and elections (measured: README, *Steady under load*).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4))
}

pub struct FjallStorage {
    db: Database,
    keyspaces: Arc<Keyspaces>,
}

/// Keyspace handles, cached: opening one takes a lock inside fjall.
struct Keyspaces {
    db: Database,
    open: Mutex<BTreeMap<String, Keyspace>>,
}

impl Keyspaces {
    fn get(&self, name: &str) -> Result<Keyspace, StorageError> {
        check_partition(name)?;
        let mut ks = self.open.lock().expect("keyspace cache lock");
        if let Some(k) = ks.get(name) {
            return Ok(k.clone());
        }
        let options = || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES_MAX);
        let k = self.db.keyspace(name, options).map_err(io)?;
        ks.insert(name.to_string(), k.clone());
        Ok(k)
    }
}

/// A fjall snapshot: reads at the sequence number it was taken at.
pub struct FjallView {
    snapshot: Snapshot,
    keyspaces: Arc<Keyspaces>,
}

fn bounds<'a>(start: &'a [u8], end: Option<&'a [u8]>) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (Bound::Included(start), end.map_or(Bound::Unbounded, Bound::Excluded))
}

fn collect(iter: impl Iterator<Item = fjall::Guard>, limit: usize) -> Result<Pairs, StorageError> {
    let mut out = Vec::new();
    for guard in iter.take(limit) {
        let (k, v) = guard.into_inner().map_err(read)?;
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

impl StorageView for FjallView {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let ks = self.keyspaces.get(partition)?;
        Ok(self.snapshot.get(&ks, key).map_err(read)?.map(|v| v.to_vec()))
    }

    fn scan_range(
        &self,
        partition: &str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError> {
        let ks = self.keyspaces.get(partition)?;
        collect(self.snapshot.range::<&[u8], _>(&ks, bounds(start, end)), limit)
    }
}

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(e.to_string())
}

/// A read's error: a block that fails its checksum is detected corruption.
fn read(e: fjall::Error) -> StorageError {
    match e {
        fjall::Error::Storage(fjall::LsmError::ChecksumMismatch { .. }) => StorageError::Corrupt(e.to_string()),
        e => io(e),
    }
}

impl FjallStorage {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let db = Database::builder(path).manual_journal_persist(true).worker_threads(workers()).open().map_err(io)?;
        let keyspaces = Arc::new(Keyspaces { db: db.clone(), open: Mutex::new(BTreeMap::new()) });
        Ok(FjallStorage { db, keyspaces })
    }

    fn keyspace(&self, name: &str) -> Result<Keyspace, StorageError> {
        self.keyspaces.get(name)
    }
}

impl StorageView for FjallStorage {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.keyspace(partition)?.get(key).map_err(read)?.map(|v| v.to_vec()))
    }

    fn scan_range(
        &self,
        partition: &str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError> {
        collect(self.keyspace(partition)?.range::<&[u8], _>(bounds(start, end)), limit)
    }
}

impl Storage for FjallStorage {
    type View = FjallView;

    fn view(&self) -> Result<FjallView, StorageError> {
        Ok(FjallView { snapshot: self.db.snapshot(), keyspaces: self.keyspaces.clone() })
    }

    fn scan_prefix(&self, partition: &str, prefix: &[u8]) -> Result<Pairs, StorageError> {
        let mut out = Vec::new();
        for guard in self.keyspace(partition)?.prefix(prefix) {
            let (k, v) = guard.into_inner().map_err(read)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut b = self.db.batch().durability(None);
        // Keys put earlier in this batch, which a range delete later in it must see too
        // (fjall's range scan sees only committed data). Kept only if one comes.
        let ranged = batch.ops.iter().any(|op| matches!(op, Op::DeleteRange { .. }));
        let mut put_here: Vec<(String, Vec<u8>)> = Vec::new();
        for op in batch.ops {
            match op {
                Op::Put { partition, key, value } => {
                    if ranged {
                        put_here.push((partition.clone(), key.clone()));
                    }
                    b.insert(&self.keyspace(&partition)?, key, value)
                }
                Op::Delete { partition, key } => b.remove(&self.keyspace(&partition)?, key),
                Op::DeleteRange { partition, start, end } => {
                    // fjall has no range tombstone: every key of the span gets one, so
                    // the span is read. A block that fails its checksum stops that read
                    // too (fjall keeps keys and values in the same blocks): a node whose
                    // real disk rots stays down, and the operator replaces its data
                    // directory (the simulated disk models repairable rot only).
                    let ks = self.keyspace(&partition)?;
                    for guard in ks.range::<&[u8], _>(bounds(&start, end.as_deref())) {
                        b.remove(&ks, guard.key().map_err(read)?);
                    }
                    let in_span = |k: &Vec<u8>| *k >= start && end.as_ref().is_none_or(|e| k < e);
                    for (_, key) in put_here.iter().filter(|(p, k)| *p == partition && in_span(k)) {
                        b.remove(&ks, key.clone());
                    }
                }
            }
        }
        b.commit().map_err(io)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.db.persist(PersistMode::SyncAll).map_err(io)
    }

    fn start_sync(&mut self) -> SyncJob {
        let db = self.db.clone();
        Box::pin(async move {
            let fsync = tokio::task::spawn_blocking(move || db.persist(PersistMode::SyncAll));
            fsync.await.map_err(|e| StorageError::Io(format!("sync thread: {e}")))?.map_err(io)
        })
    }
}
