//! Disk faults: the next write or sync of a node's storage fails, which poisons the node
//! (it stops, as a real one would on a failed fsync) until it restarts.

use super::{need, random_node, Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError, Target};
use crate::scenario::FaultSpec;
use phantomdb::NodeId;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    DiskError { node: Target },
}

impl From<Action> for AnyAction {
    fn from(a: Action) -> Self {
        AnyAction::Disk(a)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Action::DiskError { node } = self;
        write!(f, "disk_error {node}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    /// An I/O error is armed on the node's disk.
    Injected { node: NodeId },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Applied::Injected { node } = self;
        write!(f, "disk_error n{node}")
    }
}

pub struct Disk;

impl Family for Disk {
    fn fields(&self, _kind: FaultKind) -> &'static [&'static str] {
        &["node"]
    }

    fn validate(&self, kind: FaultKind, f: &FaultSpec, _nodes: u64) -> Result<(), SpecError> {
        need(f.node.is_some(), kind, "node")
    }

    fn resolve(&self, _kind: FaultKind, f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> AnyAction {
        Action::DiskError { node: f.node.as_ref().expect("validated").resolve(nodes, rng) }.into()
    }

    fn draw(&self, _kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
        let node = Target::Node(random_node(rng, b.nodes));
        // A poisoned node stays down until restarted: the restart is the undo.
        Some(Drawn {
            now: Action::DiskError { node }.into(),
            undo: Some(super::process::Action::Restart { node }.into()),
        })
    }
}

#[cfg(madsim)]
mod apply {
    use super::{Action, Applied};
    use crate::faults::{FaultEvent, Skip};
    use crate::world::World;
    use phantomdb::io::storage::SimDisk;

    impl Action {
        pub(crate) fn apply(&self, world: &mut World) -> FaultEvent {
            let Action::DiskError { node: target } = *self;
            let Some(node) = world.resolve(target) else {
                return FaultEvent::Skipped { action: (*self).into(), reason: Skip::NoNodeUp };
            };
            SimDisk::inject_io_error(world.sim_id(node));
            FaultEvent::Disk(Applied::Injected { node })
        }
    }

    /// The end of the faulty phase: an error injected but not yet hit would poison a node
    /// after the heal.
    pub(crate) fn heal(world: &mut World) {
        for node in 1..=world.scenario.nodes {
            SimDisk::clear_faults(world.sim_id(node));
        }
    }
}

#[cfg(madsim)]
pub(crate) use apply::heal;
