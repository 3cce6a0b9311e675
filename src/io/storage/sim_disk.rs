//! The simulated disk: a madsim plugin that owns every node's storage, so that it outlives
//! a node's tasks.
//!
//! ```text
//!   write(batch)  ──▶ current (visible)  + unsynced queue
//!   sync()        ──▶ durable += unsynced queue
//!   start_sync()  ──▶ (after the sync latency) durable += the batches queued at the start
//!   kill(node)    ──▶ durable += a seeded prefix of the unsynced queue; current = durable
//! ```
//!
//! Batches are atomic, so a torn write is a lost suffix of batches. `inject_io_error`
//! makes the node's next write or sync fail, `inject_read_error` its next read; either
//! poisons the node. `corrupt` damages one record as a flipped bit on the medium would:
//! reads that meet it fail with `StorageError::Corrupt` (the engine's checksum caught
//! it) until a write replaces or deletes it; it survives crashes. `set_sync_latency`
//! makes each sync job take a seeded time, so that a crash can land between a write and
//! the sync that makes it durable, and writes made during a sync stay unsynced.

use super::{
    check_partition, map_range, MapStorage, Op, Pairs, Storage, StorageError, StorageView, SyncJob, WriteBatch,
};
use madsim::plugin::{self, Simulator};
use madsim::rand::GlobalRng;
use madsim::task::NodeId as SimNodeId;
use madsim::time::TimeHandle;
use madsim::Config;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

type Map = MapStorage;

#[derive(Default)]
struct Disk {
    durable: Map,
    /// What reads see. Shared with live views: a write copies it only while one lives.
    current: Arc<Map>,
    unsynced: Vec<WriteBatch>,
    /// Batches ever written, and how many of them left the unsynced queue (made durable
    /// or resolved by a crash): the first queued batch is number `dequeued`.
    written: u64,
    dequeued: u64,
    io_error_pending: bool,
    read_error_pending: bool,
    /// Records that fail their checksum (partition, key).
    corrupt: BTreeSet<(String, Vec<u8>)>,
    /// Each sync takes a time drawn from `[lo, hi]` ms (`None`: no time).
    sync_latency_ms: Option<[u64; 2]>,
}

/// What a crash did to one disk, for the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashLoss {
    pub unsynced_batches: usize,
    pub kept_batches: usize,
}

pub struct SimDisk {
    rng: Mutex<GlobalRng>,
    disks: Mutex<BTreeMap<SimNodeId, Disk>>,
    last_crash: Mutex<BTreeMap<SimNodeId, CrashLoss>>,
}

impl Simulator for SimDisk {
    fn new(rand: &GlobalRng, _time: &TimeHandle, _config: &Config) -> Self {
        SimDisk {
            rng: Mutex::new(rand.clone()),
            disks: Mutex::new(BTreeMap::new()),
            last_crash: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs when madsim kills a node: keep what was synced and a seeded prefix of the rest.
    fn reset_node(&self, id: SimNodeId) {
        let mut disks = self.disks.lock().expect("sim disk lock");
        let Some(disk) = disks.get_mut(&id) else {
            return;
        };
        let unsynced = std::mem::take(&mut disk.unsynced);
        let keep = self.rng.lock().expect("sim disk rng lock").gen_range(0..=unsynced.len());
        for batch in &unsynced[..keep] {
            apply(&mut disk.durable, batch);
        }
        disk.current = Arc::new(disk.durable.clone());
        disk.dequeued = disk.written;
        disk.io_error_pending = false;
        self.last_crash
            .lock()
            .expect("sim disk lock")
            .insert(id, CrashLoss { unsynced_batches: unsynced.len(), kept_batches: keep });
    }
}

impl SimDisk {
    fn current() -> std::sync::Arc<SimDisk> {
        plugin::simulator::<SimDisk>()
    }

    /// The next write or sync of `node` fails with an I/O error.
    pub fn inject_io_error(node: SimNodeId) {
        Self::current().disks.lock().expect("sim disk lock").entry(node).or_default().io_error_pending = true;
    }

    /// The next read of `node` (a get, a scan, a view) fails with an I/O error.
    pub fn inject_read_error(node: SimNodeId) {
        Self::current().disks.lock().expect("sim disk lock").entry(node).or_default().read_error_pending = true;
    }

    /// Damages one record of `partition` on `node`'s disk, drawn from the seed among
    /// those it holds; returns its key (`None`: the partition is empty, nothing happens).
    pub fn corrupt(node: SimNodeId, partition: &str) -> Option<Vec<u8>> {
        let sim = Self::current();
        let mut disks = sim.disks.lock().expect("sim disk lock");
        let disk = disks.entry(node).or_default();
        let keys: Vec<&Vec<u8>> = map_range(&disk.current, partition, &[], None).map(|((_, k), _)| k).collect();
        if keys.is_empty() {
            return None;
        }
        let key = keys[sim.rng.lock().expect("sim disk rng lock").gen_range(0..keys.len())].clone();
        disk.corrupt.insert((partition.to_string(), key.clone()));
        Some(key)
    }

    /// Whether `node`'s disk holds a damaged record no write has replaced yet.
    pub fn is_damaged(node: SimNodeId) -> bool {
        Self::with_disk(node, |d| !d.corrupt.is_empty())
    }

    /// Fails a read that returns or looks up a damaged record.
    fn check_corrupt<'a>(
        node: SimNodeId,
        partition: &str,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), StorageError> {
        Self::with_disk(node, |d| {
            if d.corrupt.is_empty() {
                return Ok(());
            }
            for key in keys {
                if d.corrupt.contains(&(partition.to_string(), key.to_vec())) {
                    return Err(StorageError::Corrupt(format!("checksum mismatch in {partition} at key {key:?}")));
                }
            }
            Ok(())
        })
    }

    /// Withdraws injected errors that have not fired yet, and damage no write has
    /// repaired (a node that met it dropped its data already).
    pub fn clear_faults(node: SimNodeId) {
        Self::with_disk(node, |d| {
            d.io_error_pending = false;
            d.read_error_pending = false;
            d.corrupt.clear();
        });
    }

    /// Fails this read if a read error is armed (it fires once).
    fn read_fault(node: SimNodeId) -> Result<(), StorageError> {
        if Self::with_disk(node, |d| std::mem::take(&mut d.read_error_pending)) {
            return Err(StorageError::Io("injected I/O error on read".into()));
        }
        Ok(())
    }

    /// From now on each sync of `node` takes a time drawn from `[lo, hi]` ms (`None`:
    /// syncs take no time). Survives crashes: it is the disk's, not the process's.
    pub fn set_sync_latency(node: SimNodeId, ms: Option<[u64; 2]>) {
        if let Some([lo, hi]) = ms {
            assert!(lo <= hi, "sync latency [{lo}, {hi}] is not a range");
        }
        Self::current().disks.lock().expect("sim disk lock").entry(node).or_default().sync_latency_ms = ms;
    }

    /// What the last crash of `node` lost, if it crashed.
    pub fn last_crash(node: SimNodeId) -> Option<CrashLoss> {
        Self::current().last_crash.lock().expect("sim disk lock").get(&node).copied()
    }

    fn with_disk<T>(node: SimNodeId, f: impl FnOnce(&mut Disk) -> T) -> T {
        let sim = Self::current();
        let mut disks = sim.disks.lock().expect("sim disk lock");
        f(disks.entry(node).or_default())
    }
}

fn apply(map: &mut Map, batch: &WriteBatch) {
    batch.apply_to(map);
}

fn range(map: &Map, partition: &str, start: &[u8], end: Option<&[u8]>, limit: usize) -> Pairs {
    map_range(map, partition, start, end).take(limit).map(|((_, k), v)| (k.clone(), v.clone())).collect()
}

/// A read view of a simulated disk: the map as it was, shared until the next write.
pub struct SimView {
    node: SimNodeId,
    map: Arc<Map>,
}

impl StorageView for SimView {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        check_partition(partition)?;
        SimDisk::check_corrupt(self.node, partition, [key])?;
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
        let pairs = range(&self.map, partition, start, end, limit);
        SimDisk::check_corrupt(self.node, partition, pairs.iter().map(|(k, _)| k.as_slice()))?;
        Ok(pairs)
    }
}

/// A node's handle to its simulated disk. Open it inside the node (it binds to the
/// current madsim node).
#[derive(Debug)]
pub struct SimStorage {
    node: SimNodeId,
}

impl SimStorage {
    pub fn open() -> Self {
        SimStorage { node: plugin::node() }
    }
}

/// Reads of the current state are reads of a view taken now and dropped at once: the map
/// is shared for the read, never copied (a write copies only while a view lives).
impl StorageView for SimStorage {
    fn get(&self, partition: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.view()?.get(partition, key)
    }

    fn scan_range(
        &self,
        partition: &str,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StorageError> {
        self.view()?.scan_range(partition, start, end, limit)
    }
}

impl Storage for SimStorage {
    type View = SimView;

    fn view(&self) -> Result<SimView, StorageError> {
        SimDisk::read_fault(self.node)?;
        Ok(SimView { node: self.node, map: SimDisk::with_disk(self.node, |d| d.current.clone()) })
    }

    fn scan_prefix(&self, partition: &str, prefix: &[u8]) -> Result<Pairs, StorageError> {
        check_partition(partition)?;
        SimDisk::read_fault(self.node)?;
        let pairs: Pairs = SimDisk::with_disk(self.node, |d| {
            map_range(&d.current, partition, prefix, None)
                .take_while(|((_, k), _)| k.starts_with(prefix))
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect()
        });
        SimDisk::check_corrupt(self.node, partition, pairs.iter().map(|(k, _)| k.as_slice()))?;
        Ok(pairs)
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StorageError> {
        for op in &batch.ops {
            check_partition(op.partition())?;
        }
        SimDisk::with_disk(self.node, |d| {
            if std::mem::take(&mut d.io_error_pending) {
                return Err(StorageError::Io("injected I/O error on write".into()));
            }
            if !d.corrupt.is_empty() {
                // A record written anew is whole again.
                for op in &batch.ops {
                    match op {
                        Op::Put { partition, key, .. } | Op::Delete { partition, key } => {
                            d.corrupt.remove(&(partition.clone(), key.clone()));
                        }
                        Op::DeleteRange { partition, start, end } => d.corrupt.retain(|(p, k)| {
                            !(p == partition && k.as_slice() >= start.as_slice() && end.as_ref().is_none_or(|e| k < e))
                        }),
                    }
                }
            }
            apply(Arc::make_mut(&mut d.current), &batch);
            d.unsynced.push(batch);
            d.written += 1;
            Ok(())
        })
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        SimDisk::with_disk(self.node, |d| d.make_durable(d.written))
    }

    fn start_sync(&mut self) -> SyncJob {
        let delay = self.sync_delay();
        let (node, upto) = (self.node, SimDisk::with_disk(self.node, |d| d.written));
        Box::pin(async move {
            if delay > std::time::Duration::ZERO {
                madsim::time::sleep(delay).await;
            }
            SimDisk::with_disk(node, |d| d.make_durable(upto))
        })
    }
}

impl SimStorage {
    /// How long the next sync job takes (the disk's latency, drawn from the seed).
    fn sync_delay(&self) -> std::time::Duration {
        let sim = SimDisk::current();
        let latency = sim.disks.lock().expect("sim disk lock").get(&self.node).and_then(|d| d.sync_latency_ms);
        match latency {
            None => std::time::Duration::ZERO,
            Some([lo, hi]) => {
                let ms = sim.rng.lock().expect("sim disk rng lock").gen_range(lo..=hi);
                std::time::Duration::from_millis(ms)
            }
        }
    }
}

impl Disk {
    /// Makes the batches numbered below `upto` durable (those still queued).
    fn make_durable(&mut self, upto: u64) -> Result<(), StorageError> {
        if std::mem::take(&mut self.io_error_pending) {
            return Err(StorageError::Io("injected I/O error on fsync".into()));
        }
        let n = upto.saturating_sub(self.dequeued).min(self.unsynced.len() as u64) as usize;
        for batch in self.unsynced.drain(..n) {
            apply(&mut self.durable, &batch);
        }
        self.dequeued += n as u64;
        Ok(())
    }
}
