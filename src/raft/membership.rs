//! Who is in a group (Raft §6, thesis §4.3): voters, and during a change by joint
//! consensus the outgoing voters too, whose majority must also agree (C_old,new); learners
//! receive the log but never vote and never count.
//!
//! ```text
//!   C_old ──propose──▶ C_old,new (voters = new, outgoing = old) ──committed──▶ C_new
//!   every decision (election, commit, read confirmation, check-quorum) needs a majority
//!   of `voters` and, while joint, a majority of `outgoing` as well
//! ```
//! A node uses the newest configuration in its log, committed or not.

use super::Index;
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    /// Non-empty only while joint: the previous voters.
    pub outgoing: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership { voters: voters.into_iter().collect(), ..Default::default() }
    }

    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Votes and counts towards quorums (in either half of a joint configuration).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every voter of either half.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        self.voters.union(&self.outgoing).copied().collect()
    }

    /// Everyone the leader replicates to (voters of either half and learners).
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.all_voters().union(&self.learners).copied().collect()
    }

    /// Whether the nodes for which `yes` holds make a majority of every voter set.
    pub fn has_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        let majority =
            |set: &BTreeSet<NodeId>| set.is_empty() || set.iter().filter(|&&id| yes(id)).count() > set.len() / 2;
        majority(&self.voters) && majority(&self.outgoing)
    }

    /// The highest value that a majority of every voter set has reached, given each
    /// voter's value (a match index, an acknowledged round). `shrink` lowers the majority
    /// by one (the planted quorum bug).
    pub fn quorum_value(&self, value: impl Fn(NodeId) -> Index, shrink: bool) -> Index {
        let of = |set: &BTreeSet<NodeId>| {
            if set.is_empty() {
                return Index::MAX;
            }
            let mut values: Vec<Index> = set.iter().map(|&id| value(id)).collect();
            values.sort_unstable_by(|a, b| b.cmp(a));
            let quorum = if shrink { (set.len() / 2).max(1) } else { set.len() / 2 + 1 };
            values[quorum - 1]
        };
        of(&self.voters).min(of(&self.outgoing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_joint_configuration_needs_both_majorities() {
        let joint = Membership { voters: set(&[3, 4, 5]), outgoing: set(&[1, 2, 3]), learners: set(&[9]) };
        assert!(joint.has_quorum(|id| [1, 2, 4, 5].contains(&id)));
        assert!(!joint.has_quorum(|id| [1, 2, 3].contains(&id)), "only the old majority");
        assert!(!joint.has_quorum(|id| [3, 4, 5, 9].contains(&id)), "only the new majority (learners do not count)");
        assert!(joint.has_quorum(|id| [2, 3, 4].contains(&id)), "3 is in both");
    }

    #[test]
    fn the_quorum_value_is_the_lower_of_both_majorities() {
        let joint = Membership { voters: set(&[3, 4, 5]), outgoing: set(&[1, 2, 3]), learners: set(&[]) };
        let matched = |id: NodeId| [0, 10, 9, 8, 2, 1][id as usize];
        // Old majority {1,2,3} reaches 9; new majority {3,4,5} reaches 2.
        assert_eq!(joint.quorum_value(matched, false), 2);
        let simple = Membership::with_voters([1, 2, 3]);
        assert_eq!(simple.quorum_value(matched, false), 9);
        assert_eq!(simple.quorum_value(matched, true), 10, "the planted bug lets one node decide");
    }
}
