//! The live view of a run: what the world needs to know about the nodes while it runs
//! (who leads each group, whose storage failed), kept up to date as node events arrive,
//! so that a fault that targets "the leader" reads it instead of rescanning the trace.
//!
//! Contract: after observing a prefix of a trace, the view answers as a scan of that
//! prefix would: the leader of a group is the winner of its highest term (the highest
//! node id if a term had two, which election safety then reports); a node is poisoned if
//! its last `Poisoned` or `Recovered` event, in any group, was `Poisoned`; a node's group
//! is rebuilding if it dropped its data past index 0 (`DataDropped`) and has installed no
//! snapshot since.

use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct LiveView {
    /// (term, node) of the latest election won, per group.
    leaders: BTreeMap<GroupId, (u64, NodeId)>,
    poisoned: BTreeSet<NodeId>,
    rebuilding: BTreeSet<(NodeId, GroupId)>,
}

impl LiveView {
    pub fn observe(&mut self, node: NodeId, group: GroupId, event: &NodeEvent) {
        match event {
            NodeEvent::BecameLeader { term } => {
                let latest = self.leaders.entry(group).or_insert((*term, node));
                *latest = (*latest).max((*term, node));
            }
            NodeEvent::Recovered { .. } => {
                self.poisoned.remove(&node);
            }
            NodeEvent::Poisoned { .. } => {
                self.poisoned.insert(node);
            }
            NodeEvent::DataDropped { base } if *base > 0 => {
                self.rebuilding.insert((node, group));
            }
            NodeEvent::SnapshotInstalled { .. } => {
                self.rebuilding.remove(&(node, group));
            }
            _ => {}
        }
    }

    /// The node that won `group`'s highest term so far (it may have crashed since).
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.leaders.get(&group).map(|&(_, n)| n)
    }

    /// Whether `node` waits for a peer's state in some group (its own was dropped).
    pub fn rebuilding(&self, node: NodeId) -> bool {
        self.rebuilding.range((node, 0)..=(node, GroupId::MAX)).next().is_some()
    }

    /// Nodes whose last life ended in a storage failure.
    pub fn poisoned(&self) -> &BTreeSet<NodeId> {
        &self.poisoned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_is_the_winner_of_the_highest_term() {
        let mut v = LiveView::default();
        v.observe(2, 1, &NodeEvent::BecameLeader { term: 3 });
        v.observe(1, 1, &NodeEvent::BecameLeader { term: 2 });
        v.observe(4, 2, &NodeEvent::BecameLeader { term: 9 });
        assert_eq!(v.leader(1), Some(2));
        assert_eq!(v.leader(2), Some(4));
        assert_eq!(v.leader(3), None);
    }

    #[test]
    fn a_recovery_clears_poisoning_and_a_new_failure_sets_it() {
        let mut v = LiveView::default();
        v.observe(3, 1, &NodeEvent::Poisoned { error: "io".into() });
        assert!(v.poisoned().contains(&3));
        v.observe(3, 2, &NodeEvent::Recovered { term: 1, snapshot_index: 0, last_index: 0, applied_index: 0 });
        assert!(v.poisoned().is_empty());
    }
}
