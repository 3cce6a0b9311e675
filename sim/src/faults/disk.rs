//! Disk faults: the next write or sync of a node's storage fails (`disk_error`), which
//! poisons the node (it stops, as a real one would on a failed fsync) until it restarts;
//! or its syncs turn slow (`slow_disk`: each takes a time drawn from `latency_ms`), which
//! widens the window in which a crash finds written state not yet synced; or one record
//! of its data rots (`corrupt`): the read that meets it fails its checksum and poisons
//! the node, which drops its data at restart and rebuilds it (`node/scrub.rs`).

use super::{need, random_node, Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError, Target};
use crate::scenario::{FaultSpec, DISK_SYNC_MS_MAX};
use phantomdb::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    DiskError {
        node: Target,
    },
    /// The node's next read fails.
    ReadError {
        node: Target,
    },
    /// A record of the node's data is damaged.
    Corrupt {
        node: Target,
    },
    /// `sync_ms: None`: back to the scenario's `cluster.disk_sync_ms`.
    SlowDisk {
        node: Target,
        sync_ms: Option<[u64; 2]>,
    },
}

impl From<Action> for AnyAction {
    fn from(a: Action) -> Self {
        AnyAction::Disk(a)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::DiskError { node } => write!(f, "disk_error {node}"),
            Action::ReadError { node } => write!(f, "read_error {node}"),
            Action::Corrupt { node } => write!(f, "corrupt {node}"),
            Action::SlowDisk { node, sync_ms: Some([lo, hi]) } => write!(f, "slow_disk {node} syncs {lo}..{hi}ms"),
            Action::SlowDisk { node, sync_ms: None } => write!(f, "slow_disk {node} back to the scenario's"),
        }
    }
}

/// The variants' order is part of the trace hash's encoding: add new ones at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    /// An I/O error is armed on the node's disk.
    Injected { node: NodeId },
    /// The node's syncs take a time drawn from `sync_ms` (`None`: no time).
    Slowed { node: NodeId, sync_ms: Option<[u64; 2]> },
    /// A read error is armed on the node's disk.
    ReadInjected { node: NodeId },
    /// The record under `key` of the node's data is damaged (`None`: it held no data).
    Corrupted { node: NodeId, key: Option<Vec<u8>> },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Injected { node } => write!(f, "disk_error n{node}"),
            Applied::ReadInjected { node } => write!(f, "read_error n{node}"),
            Applied::Corrupted { node, key: Some(key) } => {
                write!(f, "corrupt n{node} record {}", String::from_utf8_lossy(key).escape_debug())
            }
            Applied::Corrupted { node, key: None } => write!(f, "corrupt n{node}: no data to damage"),
            Applied::Slowed { node, sync_ms: Some([lo, hi]) } => write!(f, "slow_disk n{node} syncs {lo}..{hi}ms"),
            Applied::Slowed { node, sync_ms: None } => write!(f, "slow_disk n{node} syncs take no time"),
        }
    }
}

pub struct Disk;

impl Family for Disk {
    fn fields(&self, kind: FaultKind) -> &'static [&'static str] {
        match kind {
            FaultKind::SlowDisk => &["node", "latency_ms"],
            _ => &["node"],
        }
    }

    fn validate(&self, kind: FaultKind, f: &FaultSpec, _nodes: u64) -> Result<(), SpecError> {
        need(f.node.is_some(), kind, "node")?;
        // A slow_disk without `latency_ms` sets the disk back to `cluster.disk_sync_ms`
        // (the nemesis's undo, so that a shrunk schedule can say it).
        if let (FaultKind::SlowDisk, Some([a, b])) = (kind, f.latency_ms) {
            if a > b || b > DISK_SYNC_MS_MAX {
                return Err(SpecError::new(
                    "latency_ms",
                    format!("[{a}, {b}]: expected min <= max <= {DISK_SYNC_MS_MAX}"),
                ));
            }
        }
        Ok(())
    }

    fn resolve(&self, kind: FaultKind, f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> AnyAction {
        let node = f.node.as_ref().expect("validated").resolve(nodes, rng);
        match kind {
            FaultKind::SlowDisk => Action::SlowDisk { node, sync_ms: f.latency_ms }.into(),
            FaultKind::ReadError => Action::ReadError { node }.into(),
            FaultKind::Corrupt => Action::Corrupt { node }.into(),
            _ => Action::DiskError { node }.into(),
        }
    }

    fn draw(&self, kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
        let node = Target::Node(random_node(rng, b.nodes));
        match kind {
            FaultKind::SlowDisk => {
                // A sync spike: a disk that stalls for up to a few heartbeats.
                let hi = rng.gen_range(5..=100);
                Some(Drawn {
                    now: Action::SlowDisk { node, sync_ms: Some([hi / 4, hi]) }.into(),
                    undo: Some(Action::SlowDisk { node, sync_ms: None }.into()),
                })
            }
            FaultKind::ReadError => Some(Drawn {
                now: Action::ReadError { node }.into(),
                undo: Some(super::process::Action::Restart { node }.into()),
            }),
            FaultKind::Corrupt => Some(Drawn {
                now: Action::Corrupt { node }.into(),
                undo: Some(super::process::Action::Restart { node }.into()),
            }),
            // A poisoned node stays down until restarted: the restart is the undo.
            _ => Some(Drawn {
                now: Action::DiskError { node }.into(),
                undo: Some(super::process::Action::Restart { node }.into()),
            }),
        }
    }
}

#[cfg(madsim)]
mod apply {
    use super::{Action, Applied};
    use crate::faults::{FaultEvent, Skip};
    use crate::world::World;
    use phantomdb::io::storage::SimDisk;
    use phantomdb::node::DATA_PARTITION;

    impl Action {
        pub(crate) fn apply(&self, world: &mut World) -> FaultEvent {
            let target = match *self {
                Action::DiskError { node }
                | Action::ReadError { node }
                | Action::Corrupt { node }
                | Action::SlowDisk { node, .. } => node,
            };
            let Some(node) = world.resolve(target) else {
                return FaultEvent::Skipped { action: (*self).into(), reason: Skip::NoNodeUp };
            };
            match *self {
                Action::DiskError { .. } => {
                    SimDisk::inject_io_error(world.sim_id(node));
                    FaultEvent::Disk(Applied::Injected { node })
                }
                Action::ReadError { .. } => {
                    SimDisk::inject_read_error(world.sim_id(node));
                    FaultEvent::Disk(Applied::ReadInjected { node })
                }
                Action::Corrupt { .. } => {
                    // One damaged replica at a time: real rot is rare and independent,
                    // and a majority rotting at once can destroy state no log still holds.
                    let unrepaired = (1..=world.scenario.nodes)
                        .find(|&n| n != node && (SimDisk::is_damaged(world.sim_id(n)) || world.rebuilding(n)));
                    if let Some(other) = unrepaired {
                        return FaultEvent::Skipped { action: (*self).into(), reason: Skip::DamageUnrepaired(other) };
                    }
                    let key = SimDisk::corrupt(world.sim_id(node), DATA_PARTITION);
                    FaultEvent::Disk(Applied::Corrupted { node, key })
                }
                Action::SlowDisk { sync_ms, .. } => {
                    let sync_ms = sync_ms.or(world.scenario.disk_sync_ms);
                    SimDisk::set_sync_latency(world.sim_id(node), sync_ms);
                    FaultEvent::Disk(Applied::Slowed { node, sync_ms })
                }
            }
        }
    }

    /// At the start of a run: every disk syncs as the scenario says.
    pub(crate) fn init(world: &mut World) {
        for node in 1..=world.scenario.nodes {
            SimDisk::set_sync_latency(world.sim_id(node), world.scenario.disk_sync_ms);
        }
    }

    /// The end of the faulty phase: an error injected but not yet hit would poison a node
    /// after the heal (so would damage no read has met yet: it is withdrawn too), and a
    /// disk slowed by a fault goes back to the scenario's speed.
    pub(crate) fn heal(world: &mut World) {
        for node in 1..=world.scenario.nodes {
            SimDisk::clear_faults(world.sim_id(node));
        }
        init(world);
    }
}

#[cfg(madsim)]
pub(crate) use apply::{heal, init};
