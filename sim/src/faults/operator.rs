//! Operator requests, sent to group 1's leader as an administrator would: hand
//! leadership to another node, and change the membership (add or remove a voter, add a
//! learner, replace the voters by joint consensus); and to the leader of the range of a
//! key: split it there, move one of its replicas to another node. A request the leader refuses (a change
//! in progress, it stopped leading meanwhile) is part of the game.

use super::Target;
use super::{check_node, need, random_node, Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError};
use crate::scenario::FaultSpec;
use phantomdb::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    TransferLeader {
        to: Target,
    },
    AddVoter {
        node: Target,
    },
    RemoveVoter {
        node: Target,
    },
    AddLearner {
        node: Target,
    },
    SetVoters {
        voters: Vec<NodeId>,
    },
    /// `None`: a workload key drawn when it fires.
    Split {
        key: Option<String>,
    },
    /// `None`s: drawn when it fires (`from`: the leader's choice).
    Move {
        key: Option<String>,
        from: Option<NodeId>,
        to: Option<NodeId>,
    },
}

impl From<Action> for AnyAction {
    fn from(a: Action) -> Self {
        AnyAction::Operator(a)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::TransferLeader { to } => write!(f, "transfer_leader to {to}"),
            Action::AddVoter { node } => write!(f, "add_voter {node}"),
            Action::RemoveVoter { node } => write!(f, "remove_voter {node}"),
            Action::AddLearner { node } => write!(f, "add_learner {node}"),
            Action::SetVoters { voters } => write!(f, "set_voters {voters:?}"),
            Action::Split { key: Some(key) } => write!(f, "split before {key:?}"),
            Action::Split { key: None } => write!(f, "split before a random key"),
            Action::Move { key, from, to } => {
                let or_any = |n: &Option<NodeId>| n.map_or("any".to_string(), |n| format!("n{n}"));
                let key = key.as_deref().map_or("a random key".to_string(), |k| format!("{k:?}"));
                write!(f, "move the replica of the range of {key} from {} to {}", or_any(from), or_any(to))
            }
        }
    }
}

/// A request as sent: to which leader, and for membership the configuration asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    Transfer {
        from: NodeId,
        to: NodeId,
    },
    Membership {
        action: Action,
        via: NodeId,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    },
    /// Asked of every node up in turn, until the range's leader takes it.
    Split {
        key: String,
    },
    /// Asked of the range's leader.
    Move {
        key: String,
        group: phantomdb::GroupId,
        via: NodeId,
        from: Option<NodeId>,
        to: NodeId,
    },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Transfer { from, to } => write!(f, "transfer_leader n{from} -> n{to}"),
            Applied::Membership { action, via, voters, learners } => {
                write!(f, "{action} via n{via}: voters {voters:?} learners {learners:?}")
            }
            Applied::Split { key } => write!(f, "split before {key:?}"),
            Applied::Move { key, group, via, from, to } => {
                write!(f, "move range {group} (of {key:?}) via n{via}: from {from:?} to n{to}")
            }
        }
    }
}

pub struct Operator;

impl Family for Operator {
    fn fields(&self, kind: FaultKind) -> &'static [&'static str] {
        match kind {
            FaultKind::SetVoters => &["voters"],
            FaultKind::Split => &["key"],
            FaultKind::Move => &["key", "from", "to"],
            _ => &["node"],
        }
    }

    fn validate(&self, kind: FaultKind, f: &FaultSpec, nodes: u64) -> Result<(), SpecError> {
        if kind == FaultKind::Move {
            if let Some(n) = f.from {
                check_node(n, nodes, "from")?;
            }
            if let Some(n) = f.to {
                check_node(n, nodes, "to")?;
            }
            if f.from.is_some() && f.from == f.to {
                return Err(SpecError::new("to", "a move goes to another node than `from`"));
            }
            return Ok(());
        }
        if kind == FaultKind::Split {
            return match &f.key {
                Some(k) if k.is_empty() => Err(SpecError::new("key", "a split before the empty key splits nothing")),
                _ => Ok(()),
            };
        }
        if kind != FaultKind::SetVoters {
            return need(f.node.is_some(), kind, "node");
        }
        need(f.voters.is_some(), kind, "voters")?;
        let voters = f.voters.as_ref().expect("checked");
        if voters.is_empty() {
            return Err(SpecError::new("voters", "a group needs at least one voter"));
        }
        voters.iter().try_for_each(|n| check_node(*n, nodes, "voters"))
    }

    fn resolve(&self, kind: FaultKind, f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> AnyAction {
        let mut node = || f.node.as_ref().expect("validated").resolve(nodes, rng);
        match kind {
            FaultKind::TransferLeader => Action::TransferLeader { to: node() },
            FaultKind::AddVoter => Action::AddVoter { node: node() },
            FaultKind::RemoveVoter => Action::RemoveVoter { node: node() },
            FaultKind::AddLearner => Action::AddLearner { node: node() },
            FaultKind::SetVoters => {
                let voters: BTreeSet<NodeId> = f.voters.iter().flatten().copied().collect();
                Action::SetVoters { voters: voters.into_iter().collect() }
            }
            FaultKind::Split => Action::Split { key: f.key.clone() },
            FaultKind::Move => Action::Move { key: f.key.clone(), from: f.from, to: f.to },
            other => unreachable!("{} is not an operator request", other.name()),
        }
        .into()
    }

    fn draw(&self, kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
        let (now, undo) = match kind {
            // Membership churn: one change now, and its opposite later.
            FaultKind::AddVoter => {
                let node = Target::Node(random_node(rng, b.nodes));
                (Action::AddVoter { node }, Some(Action::RemoveVoter { node }))
            }
            FaultKind::RemoveVoter => {
                let node = Target::Node(random_node(rng, b.nodes));
                (Action::RemoveVoter { node }, Some(Action::AddVoter { node }))
            }
            FaultKind::AddLearner => {
                let node = Target::Node(random_node(rng, b.nodes));
                (Action::AddLearner { node }, Some(Action::AddVoter { node }))
            }
            FaultKind::SetVoters => {
                // A random majority-sized set; the next draw replaces it.
                let mut all: Vec<NodeId> = (1..=b.nodes).collect();
                all.shuffle(rng);
                all.truncate((b.nodes / 2 + 1) as usize);
                all.sort_unstable();
                (Action::SetVoters { voters: all }, None)
            }
            FaultKind::TransferLeader => {
                // Nothing to undo: leadership simply moved.
                let to = if rng.gen_bool(0.7) { Target::Follower } else { Target::Node(random_node(rng, b.nodes)) };
                (Action::TransferLeader { to }, None)
            }
            // Nothing to undo: merges come later.
            FaultKind::Split => (Action::Split { key: None }, None),
            // Nothing to undo: the replica is elsewhere now, as good as before.
            FaultKind::Move => (Action::Move { key: None, from: None, to: None }, None),
            other => unreachable!("{} is not an operator request", other.name()),
        };
        Some(Drawn { now: now.into(), undo: undo.map(Into::into) })
    }
}

#[cfg(madsim)]
mod apply {
    use super::{Action, Applied};
    use crate::faults::{FaultEvent, Skip};
    use crate::world::World;
    use phantomdb::kv::KvStateMachine;
    use phantomdb::node::NodeHandle;
    use phantomdb::{GroupId, NodeId};
    use std::collections::BTreeSet;

    /// The Raft group operators' requests act on (a real node hosts one; in multi-group
    /// scenarios they change the first).
    const OPERATOR_GROUP: GroupId = 1;

    impl Action {
        pub(crate) fn apply(&self, world: &mut World) -> FaultEvent {
            let applied = match self {
                Action::TransferLeader { to } => transfer(world, *to),
                Action::AddVoter { node } | Action::RemoveVoter { node } | Action::AddLearner { node } => {
                    change(world, self, *node)
                }
                Action::SetVoters { voters } => set_voters(world, self, voters),
                Action::Split { key } => Ok(split(world, key.clone())),
                Action::Move { key, from, to } => move_replica(world, key.clone(), *from, *to),
            };
            match applied {
                Ok(a) => FaultEvent::Operator(a),
                Err(reason) => FaultEvent::Skipped { action: self.clone().into(), reason },
            }
        }
    }

    /// The leader of group 1 and its client API (operators' requests act on group 1).
    fn leader(world: &World) -> Option<(NodeId, NodeHandle<KvStateMachine>)> {
        let l = world.current_leader()?;
        let api = world.node_apis.lock().expect("node api lock").get(&l).cloned()?;
        Some((l, api))
    }

    fn transfer(world: &mut World, to: crate::faults::Target) -> Result<Applied, Skip> {
        // Both are looked up before either can fail: the world's draws stay in order.
        let leader = leader(world);
        let target = world.resolve(to);
        let (l, api) = leader.ok_or(Skip::NoLeader)?;
        let t = target.ok_or(Skip::NoNodeUp)?;
        if l == t {
            return Err(Skip::AlreadyLeads(t));
        }
        tokio::spawn(async move {
            let _ = api.transfer_leadership(OPERATOR_GROUP, t).await;
        });
        Ok(Applied::Transfer { from: l, to: t })
    }

    /// Asks the leader to change the configuration it has in force by one node.
    fn change(world: &mut World, action: &Action, node: crate::faults::Target) -> Result<Applied, Skip> {
        let leader = leader(world);
        let target = world.resolve(node);
        let (l, api) = leader.ok_or(Skip::NoLeader)?;
        let t = target.ok_or(Skip::NoNodeUp)?;
        let status = api.status();
        let mut voters: BTreeSet<NodeId> = status.voters.iter().copied().collect();
        let mut learners: BTreeSet<NodeId> = status.learners.iter().copied().collect();
        match action {
            Action::AddVoter { .. } => {
                learners.remove(&t);
                voters.insert(t);
            }
            Action::RemoveVoter { .. } => {
                voters.remove(&t);
                learners.remove(&t);
            }
            _ if voters.contains(&t) => return Err(Skip::IsVoter(t)),
            _ => {
                learners.insert(t);
            }
        }
        if voters.is_empty() {
            return Err(Skip::LastVoter(t));
        }
        send(api, l, action, voters, learners)
    }

    /// Asks the leader to make `voters` the voters (learners among them promoted).
    fn set_voters(world: &mut World, action: &Action, voters: &[NodeId]) -> Result<Applied, Skip> {
        let (l, api) = leader(world).ok_or(Skip::NoLeader)?;
        let voters: BTreeSet<NodeId> = voters.iter().copied().collect();
        let learners: BTreeSet<NodeId> = api.status().learners.into_iter().filter(|n| !voters.contains(n)).collect();
        send(api, l, action, voters, learners)
    }

    /// Asks every node up, in id order, to split the range holding `key` (a workload key
    /// drawn now if `None`) until one, its leader, takes it.
    fn split(world: &mut World, key: Option<String>) -> Applied {
        let key = key.unwrap_or_else(|| world.random_workload_key());
        let apis: Vec<NodeHandle<KvStateMachine>> =
            world.node_apis.lock().expect("node api lock").values().cloned().collect();
        let asked = key.clone().into_bytes();
        tokio::spawn(async move {
            for api in apis {
                if api.split_range(asked.clone()).await.is_ok() {
                    break;
                }
            }
        });
        Applied::Split { key }
    }

    /// Asks the leader of the range holding `key` (drawn now if `None`), as the lowest
    /// node up maps it, to move its replica on `from` to `to` (drawn now among the nodes
    /// that host none, if `None`).
    fn move_replica(
        world: &mut World,
        key: Option<String>,
        from: Option<NodeId>,
        to: Option<NodeId>,
    ) -> Result<Applied, Skip> {
        let key = key.unwrap_or_else(|| world.random_workload_key());
        let map = world.range_map().ok_or(Skip::NoNodeUp)?;
        let group = map.route(&[key.as_bytes()]).expect("one key is in one range");
        let replicas = map.descriptor(group).replicas.clone();
        let to = match to {
            Some(n) => n,
            None => world.random_node_outside(&replicas).ok_or(Skip::NowhereToMove)?,
        };
        let via = world.leader_of(group).ok_or(Skip::NoLeader)?;
        let apis = world.node_apis.lock().expect("node api lock").clone();
        let api = apis.get(&via).cloned().ok_or(Skip::NoLeader)?;
        tokio::spawn(async move {
            let _ = api.move_replica(group, from, to).await;
        });
        Ok(Applied::Move { key, group, via, from, to })
    }

    fn send(
        api: NodeHandle<KvStateMachine>,
        via: NodeId,
        action: &Action,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<Applied, Skip> {
        let applied =
            Applied::Membership { action: action.clone(), via, voters: voters.clone(), learners: learners.clone() };
        tokio::spawn(async move {
            let _ = api.change_membership(OPERATOR_GROUP, voters, learners).await;
        });
        Ok(applied)
    }
}
