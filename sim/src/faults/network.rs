//! Network faults: partitions (sides that cannot reach each other), isolating one node,
//! one-way clogged links, and healing all of it.

use super::{check_node, need, random_node, Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError};
use super::{Target, TargetSpec};
use crate::scenario::FaultSpec;
use phantomdb::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// No message crosses from one side to another; every node is on exactly one side.
    Partition {
        sides: Vec<Vec<NodeId>>,
    },
    Isolate {
        node: Target,
    },
    /// Every link open again.
    Heal,
    /// Messages from `from` to `to` are held back (one way).
    Clog {
        from: NodeId,
        to: NodeId,
    },
    Unclog {
        from: NodeId,
        to: NodeId,
    },
}

impl From<Action> for AnyAction {
    fn from(a: Action) -> Self {
        AnyAction::Network(a)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Partition { sides } => write!(f, "partition {sides:?}"),
            Action::Isolate { node } => write!(f, "isolate {node}"),
            Action::Heal => write!(f, "heal"),
            Action::Clog { from, to } => write!(f, "clog n{from}->n{to}"),
            Action::Unclog { from, to } => write!(f, "unclog n{from}->n{to}"),
        }
    }
}

/// A network fault as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    Partitioned { sides: Vec<Vec<NodeId>> },
    Isolated { node: NodeId, target: Target },
    Healed,
    Clogged { from: NodeId, to: NodeId },
    Unclogged { from: NodeId, to: NodeId },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Partitioned { sides } => write!(f, "partition {sides:?}"),
            Applied::Isolated { node, target } => write!(f, "isolate n{node} ({target})"),
            Applied::Healed => write!(f, "heal"),
            Applied::Clogged { from, to } => write!(f, "clog n{from}->n{to}"),
            Applied::Unclogged { from, to } => write!(f, "unclog n{from}->n{to}"),
        }
    }
}

pub struct Network;

impl Family for Network {
    fn fields(&self, kind: FaultKind) -> &'static [&'static str] {
        match kind {
            FaultKind::Partition => &["sides"],
            FaultKind::Isolate => &["node"],
            FaultKind::Clog | FaultKind::Unclog => &["from", "to"],
            _ => &[],
        }
    }

    fn validate(&self, kind: FaultKind, f: &FaultSpec, nodes: u64) -> Result<(), SpecError> {
        match kind {
            FaultKind::Partition => {
                need(f.sides.is_some(), kind, "sides")?;
                let sides = f.sides.as_ref().expect("checked");
                let mut seen = std::collections::BTreeSet::new();
                for n in sides.iter().flatten() {
                    check_node(*n, nodes, "sides")?;
                    if !seen.insert(*n) {
                        return Err(SpecError::new("sides", format!("node {n} is on two sides")));
                    }
                }
                Ok(())
            }
            FaultKind::Isolate => need(f.node.is_some(), kind, "node"),
            FaultKind::Clog | FaultKind::Unclog => {
                need(f.from.is_some(), kind, "from")?;
                need(f.to.is_some(), kind, "to")?;
                check_node(f.from.expect("checked"), nodes, "from")?;
                check_node(f.to.expect("checked"), nodes, "to")
            }
            _ => Ok(()),
        }
    }

    fn resolve(&self, kind: FaultKind, f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> AnyAction {
        let node =
            |rng: &mut ChaCha8Rng| f.node.as_ref().map(|t: &TargetSpec| t.resolve(nodes, rng)).expect("validated");
        match kind {
            FaultKind::Partition => {
                // The nodes a file leaves out form one more side.
                let mut sides = f.sides.clone().expect("validated");
                let listed: Vec<u64> = sides.iter().flatten().copied().collect();
                let rest: Vec<u64> = (1..=nodes).filter(|n| !listed.contains(n)).collect();
                if !rest.is_empty() {
                    sides.push(rest);
                }
                Action::Partition { sides }
            }
            FaultKind::Isolate => Action::Isolate { node: node(rng) },
            FaultKind::Heal => Action::Heal,
            FaultKind::Clog => Action::Clog { from: f.from.expect("validated"), to: f.to.expect("validated") },
            FaultKind::Unclog => Action::Unclog { from: f.from.expect("validated"), to: f.to.expect("validated") },
            other => unreachable!("{} is not a network fault", other.name()),
        }
        .into()
    }

    fn draw(&self, kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
        let undo = Some(Action::Heal.into());
        match kind {
            FaultKind::Partition => {
                let mut all: Vec<u64> = (1..=b.nodes).collect();
                all.shuffle(rng);
                let cut = rng.gen_range(1..b.nodes.max(2)) as usize;
                let (a, c) = all.split_at(cut.min(all.len()));
                let mut sides = vec![a.to_vec(), c.to_vec()];
                sides.retain(|s| !s.is_empty());
                Some(Drawn { now: Action::Partition { sides }.into(), undo })
            }
            FaultKind::Isolate => {
                let node = if rng.gen_bool(0.7) { Target::Leader } else { Target::Node(random_node(rng, b.nodes)) };
                Some(Drawn { now: Action::Isolate { node }.into(), undo })
            }
            FaultKind::Clog => {
                let from = random_node(rng, b.nodes);
                let to = random_node(rng, b.nodes);
                (from != to).then(|| Drawn {
                    now: Action::Clog { from, to }.into(),
                    undo: Some(Action::Unclog { from, to }.into()),
                })
            }
            other => unreachable!("the nemesis draws no {}", other.name()),
        }
    }
}

#[cfg(madsim)]
mod apply {
    use super::{Action, Applied};
    use crate::faults::{FaultEvent, Skip};
    use crate::world::World;
    use phantomdb::NodeId;

    impl Action {
        pub(crate) fn apply(&self, world: &mut World) -> FaultEvent {
            let applied = match self {
                Action::Partition { sides } => {
                    cut(world, sides);
                    Applied::Partitioned { sides: sides.clone() }
                }
                Action::Isolate { node: target } => {
                    let Some(n) = world.resolve(*target) else {
                        return FaultEvent::Skipped { action: self.clone().into(), reason: Skip::NoNodeUp };
                    };
                    let rest: Vec<NodeId> = (1..=world.scenario.nodes).filter(|&m| m != n).collect();
                    cut(world, &[vec![n], rest]);
                    Applied::Isolated { node: n, target: *target }
                }
                Action::Heal => {
                    world.unclog_all();
                    Applied::Healed
                }
                Action::Clog { from, to } => {
                    world.clog(*from, *to);
                    Applied::Clogged { from: *from, to: *to }
                }
                Action::Unclog { from, to } => {
                    world.unclog(*from, *to);
                    Applied::Unclogged { from: *from, to: *to }
                }
            };
            FaultEvent::Network(applied)
        }
    }

    /// Replaces whatever cut the network had by one between `sides`.
    fn cut(world: &mut World, sides: &[Vec<NodeId>]) {
        world.unclog_all();
        for (i, a) in sides.iter().enumerate() {
            for (j, b) in sides.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            world.clog(x, y);
                        }
                    }
                }
            }
        }
    }

    /// The end of the faulty phase: every link open.
    pub(crate) fn heal(world: &mut World) {
        world.unclog_all();
    }
}

#[cfg(madsim)]
pub(crate) use apply::heal;
