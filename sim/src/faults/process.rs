//! Process faults: a node crashes (its unsynced writes may be lost, as after a power
//! cut) and restarts from what its disk kept.

use super::{need, random_node, Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError, Target};
use crate::scenario::FaultSpec;
use phantomdb::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Crash { node: Target },
    Restart { node: Target },
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
        }
    }
}

pub struct Process;

impl Family for Process {
    fn fields(&self, _kind: FaultKind) -> &'static [&'static str] {
        &["node"]
    }

    fn validate(&self, kind: FaultKind, f: &FaultSpec, _nodes: u64) -> Result<(), SpecError> {
        need(f.node.is_some(), kind, "node")
    }

    fn resolve(&self, kind: FaultKind, f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> AnyAction {
        let node = f.node.as_ref().expect("validated").resolve(nodes, rng);
        match kind {
            FaultKind::Crash => Action::Crash { node },
            FaultKind::Restart => Action::Restart { node },
            other => unreachable!("{} is not a process fault", other.name()),
        }
        .into()
    }

    fn draw(&self, kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
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
            let (Action::Crash { node: target } | Action::Restart { node: target }) = *self;
            let Some(node) = world.resolve(target) else {
                return FaultEvent::Skipped { action: (*self).into(), reason: Skip::NoNodeUp };
            };
            FaultEvent::Process(match self {
                Action::Crash { .. } => {
                    world.crash(node);
                    Applied::Crashed { node, target }
                }
                Action::Restart { .. } => {
                    world.restart(node);
                    Applied::Restarted { node }
                }
            })
        }
    }

    /// The end of the faulty phase: every node that is down, or whose storage failed,
    /// runs again.
    pub(crate) fn heal(world: &mut World) {
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
