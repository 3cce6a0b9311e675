//! Process faults: a node crashes (its unsynced writes may be lost, as after a power
//! cut) and restarts from what its disk kept; a node added to the cluster starts for the
//! first time.

use super::{need, random_node, Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError, Target};
use crate::scenario::FaultSpec;
use phantomdb::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Crash {
        node: Target,
    },
    Restart {
        node: Target,
    },
    /// `None`: the lowest-numbered node still waiting to be added.
    AddNode {
        node: Option<Target>,
    },
}

impl From<Action> for AnyAction {
    fn from(a: Action) -> Self {
        AnyAction::Process(a)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Crash { node } => write!(f, "crash {node}"),
            Action::Restart { node } => write!(f, "restart {node}"),
            Action::AddNode { node: Some(node) } => write!(f, "add node {node}"),
            Action::AddNode { node: None } => write!(f, "add the next node"),
        }
    }
}

/// A process fault as applied, and what the crash cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    Crashed {
        node: NodeId,
        target: Target,
    },
    Restarted {
        node: NodeId,
    },
    /// A crash of a running node threw away `lost` of its `unsynced` write batches.
    LostUnsynced {
        node: NodeId,
        lost: u64,
        unsynced: u64,
    },
    /// The heal restarted a node that was down or poisoned.
    HealRestarted {
        node: NodeId,
    },
    /// A node waiting to be added started for the first time (at the heal, if no fault
    /// added it before).
    Added {
        node: NodeId,
    },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Crashed { node, target } => write!(f, "crash n{node} ({target})"),
            Applied::Restarted { node } => write!(f, "restart n{node}"),
            Applied::LostUnsynced { node, lost, unsynced } => {
                write!(f, "n{node} lost {lost} of {unsynced} unsynced batches")
            }
            Applied::HealRestarted { node } => write!(f, "heal: restart n{node}"),
            Applied::Added { node } => write!(f, "n{node} added"),
        }
    }
}

pub struct Process;

impl Family for Process {
    fn fields(&self, _kind: FaultKind) -> &'static [&'static str] {
        &["node"]
    }

    fn validate(&self, kind: FaultKind, f: &FaultSpec, _nodes: u64) -> Result<(), SpecError> {
        need(f.node.is_some() || kind == FaultKind::AddNode, kind, "node")
    }

    fn resolve(&self, kind: FaultKind, f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> AnyAction {
        let node = f.node.as_ref().map(|n| n.resolve(nodes, rng));
        match kind {
            FaultKind::Crash => Action::Crash { node: node.expect("validated") },
            FaultKind::Restart => Action::Restart { node: node.expect("validated") },
            FaultKind::AddNode => Action::AddNode { node },
            other => unreachable!("{} is not a process fault", other.name()),
        }
        .into()
    }

    fn draw(&self, kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
        if kind == FaultKind::AddNode {
            return Some(Drawn { now: Action::AddNode { node: None }.into(), undo: None });
        }
        assert_eq!(kind, FaultKind::Crash, "the nemesis draws no {}", kind.name());
        let node = if rng.gen_bool(0.3) { Target::Leader } else { Target::Node(random_node(rng, b.nodes)) };
        Some(Drawn { now: Action::Crash { node }.into(), undo: Some(Action::Restart { node }.into()) })
    }
}

#[cfg(madsim)]
mod apply {
    use super::{Action, Applied};
    use crate::faults::{FaultEvent, Skip};
    use crate::trace::TraceKind;
    use crate::world::World;

    impl Action {
        pub(crate) fn apply(&self, world: &mut World) -> FaultEvent {
            let target = match *self {
                Action::Crash { node } | Action::Restart { node } => node,
                Action::AddNode { node } => return add(world, node),
            };
            let Some(node) = world.resolve(target) else {
                return FaultEvent::Skipped { action: (*self).into(), reason: Skip::NoNodeUp };
            };
            // A node waiting to be added has never run: only `add_node` starts it.
            if world.waiting_to_add(node) {
                return FaultEvent::Skipped { action: (*self).into(), reason: Skip::NotAdded(node) };
            }
            FaultEvent::Process(match self {
                Action::Crash { .. } => {
                    world.crash(node);
                    Applied::Crashed { node, target }
                }
                Action::Restart { .. } => {
                    world.restart(node);
                    Applied::Restarted { node }
                }
                Action::AddNode { .. } => unreachable!("added above"),
            })
        }
    }

    fn add(world: &mut World, target: Option<crate::faults::Target>) -> FaultEvent {
        let skipped = |reason| FaultEvent::Skipped { action: Action::AddNode { node: target }.into(), reason };
        let node = match target {
            None => match world.next_to_add() {
                Some(node) => node,
                None => return skipped(Skip::NoneToAdd),
            },
            Some(t) => match world.resolve(t) {
                Some(node) => node,
                None => return skipped(Skip::NoNodeUp),
            },
        };
        if !world.add_node(node) {
            return skipped(Skip::NotAdded(node));
        }
        FaultEvent::Process(Applied::Added { node })
    }

    /// The end of the faulty phase: every node that is down, or whose storage failed,
    /// runs again.
    pub(crate) fn heal(world: &mut World) {
        while let Some(node) = world.next_to_add() {
            world.add_node(node);
            world.log(TraceKind::Fault(FaultEvent::Process(Applied::Added { node })));
        }
        let poisoned = world.poisoned();
        for node in 1..=world.scenario.nodes {
            if !world.is_up(node) || poisoned.contains(&node) {
                world.restart(node);
                world.log(TraceKind::Fault(FaultEvent::Process(Applied::HealRestarted { node })));
            }
        }
    }
}

#[cfg(madsim)]
pub(crate) use apply::heal;
