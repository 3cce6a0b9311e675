//! Configuration safety — Raft thesis §4 ("Cluster membership changes"): during a change
//! "it must not be possible for two leaders to be elected for the same term", which holds
//! only if no two configurations that can still make decisions have disjoint quorums.
//! Joint consensus (§4.3) guarantees it by passing through C_old,new, whose quorums need
//! majorities of both; the rules that keep it so are "one change at a time" and "a new
//! leader commits an entry of its term before it changes anything" (Ongaro, raft-dev,
//! 2015: without the latter, a leader can build on a predecessor's uncommitted
//! configuration and its successor on the older committed one, with disjoint quorums).
//!
//! Whenever a leader appends a configuration entry of its own term, every configuration
//! that can still decide anything must share a quorum member with it: the newest
//! committed configuration, and every configuration entry past the commit index in a log
//! that agrees with the committed prefix (an entry on a log that diverged from what was
//! committed can never commit). The replay (`crate::replay`) records each such append
//! with those configurations; this checker looks for disjoint quorums.

use super::Violations;
use crate::replay::{Config, GroupReplay};
use phantomdb::NodeId;
use std::collections::BTreeSet;

pub fn check(group: &GroupReplay) -> Vec<String> {
    let mut v = Violations::default();
    for change in &group.config_changes {
        for (whose, other) in &change.live {
            if let Some((mine, theirs)) = disjoint_quorums(&change.config, other) {
                v.push(format!(
                    "at {:.3}s n{}, leader of term {}, appended configuration {} at index {} while {whose} could still decide with {}: quorums {mine:?} and {theirs:?} share no node",
                    change.t_ns as f64 / 1e9,
                    change.node,
                    change.term,
                    change.config.describe(),
                    change.index,
                    other.describe(),
                ));
            }
        }
    }
    v.into_vec()
}

/// Nodes beyond which the exhaustive search is skipped (2^n subsets).
const SEARCH_NODES_MAX: usize = 20;

/// Two quorums, one of each configuration, with no member in common (if any exist).
fn disjoint_quorums(a: &Config, b: &Config) -> Option<(BTreeSet<NodeId>, BTreeSet<NodeId>)> {
    let all: Vec<NodeId> = a
        .voters
        .iter()
        .chain(&a.outgoing)
        .chain(&b.voters)
        .chain(&b.outgoing)
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if all.len() > SEARCH_NODES_MAX {
        return None;
    }
    for mask in 0u32..(1 << all.len()) {
        let left: BTreeSet<NodeId> =
            all.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, &n)| n).collect();
        let right: BTreeSet<NodeId> = all.iter().filter(|n| !left.contains(n)).copied().collect();
        if a.is_quorum(&left) && b.is_quorum(&right) {
            return Some((left, right));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::Replay;
    use crate::trace::{TraceEvent, TraceKind};
    use phantomdb::node::NodeEvent;

    fn check(trace: &[TraceEvent], initial_voters: &[NodeId]) -> Vec<String> {
        super::check(&Replay::build(trace, 1, initial_voters).groups[&1])
    }

    fn ev(t_ns: u64, node: u64, event: NodeEvent) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group: 1, event } }
    }

    /// A configuration entry appended at `node`: the Appended and ConfigAppended pair.
    fn config(t: u64, node: u64, index: u64, term: u64, voters: &[u64], outgoing: &[u64]) -> [TraceEvent; 2] {
        [
            ev(t, node, NodeEvent::Appended { index, term, digest: index * 1000 + term }),
            ev(
                t,
                node,
                NodeEvent::ConfigAppended { index, term, voters: voters.to_vec(), outgoing: outgoing.to_vec() },
            ),
        ]
    }

    fn commit(t: u64, node: u64, index: u64) -> TraceEvent {
        ev(t, node, NodeEvent::Committed { index })
    }

    #[test]
    fn disjoint_quorums_are_found_exactly_when_they_exist() {
        let c = |v: &[u64], o: &[u64]| Config {
            voters: v.iter().copied().collect(),
            outgoing: o.iter().copied().collect(),
        };
        assert!(disjoint_quorums(&c(&[1, 2, 3], &[]), &c(&[3, 4, 5], &[])).is_some());
        assert!(disjoint_quorums(&c(&[1, 2, 3], &[]), &c(&[1, 2, 3, 4], &[])).is_none(), "one node apart");
        // The single-server bug: a base of four, one change adds, another removes.
        assert!(disjoint_quorums(&c(&[1, 2, 3, 4, 5], &[]), &c(&[2, 3, 4], &[])).is_some());
        // Joint consensus: C_old,new shares a member with each side.
        let joint = c(&[3, 4, 5], &[1, 2, 3]);
        assert!(disjoint_quorums(&joint, &c(&[1, 2, 3], &[])).is_none());
        assert!(disjoint_quorums(&joint, &c(&[3, 4, 5], &[])).is_none());
    }

    #[test]
    fn passes_a_replacement_by_joint_consensus() {
        let mut trace = vec![ev(1, 1, NodeEvent::BecameLeader { term: 1 })];
        trace.extend(config(2, 1, 1, 1, &[3, 4, 5], &[1, 2, 3]));
        trace.extend(config(3, 2, 1, 1, &[3, 4, 5], &[1, 2, 3]));
        trace.push(commit(4, 1, 1));
        trace.extend(config(4, 1, 2, 1, &[3, 4, 5], &[]));
        assert_eq!(check(&trace, &[1, 2, 3]), Vec::<String>::new());
    }

    #[test]
    fn fails_a_replacement_in_one_step() {
        let mut trace = vec![ev(1, 1, NodeEvent::BecameLeader { term: 1 })];
        trace.extend(config(2, 1, 1, 1, &[3, 4, 5], &[]));
        let v = check(&trace, &[1, 2, 3]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("the committed configuration (index 0)"), "{v:?}");
    }

    #[test]
    fn fails_a_new_leader_building_on_its_predecessors_uncommitted_change() {
        // Term 1 leaves C_old,new uncommitted; the leader of term 2 starts the next change
        // from it at once, without committing anything of its own term.
        let mut trace = vec![ev(1, 1, NodeEvent::BecameLeader { term: 1 })];
        trace.extend(config(2, 1, 1, 1, &[3, 4, 5], &[1, 2, 3]));
        trace.extend(config(3, 3, 1, 1, &[3, 4, 5], &[1, 2, 3]));
        trace.push(ev(4, 3, NodeEvent::BecameLeader { term: 2 }));
        trace.extend(config(5, 3, 2, 2, &[1, 4, 5], &[3, 4, 5]));
        let v = check(&trace, &[1, 2, 3]);
        assert!(!v.is_empty());
        assert!(v[0].contains("{1, 4, 5}") && v[0].contains("committed configuration"), "{v:?}");
    }

    #[test]
    fn an_entry_on_a_diverged_log_is_not_live() {
        // Node 2 holds term 1's entries 1 and 2 (a configuration); index 1 then commits a
        // different entry (term 2's), so node 2's configuration can never commit. The
        // leader of term 2 may change to anything that overlaps the committed one.
        let mut trace = vec![ev(1, 1, NodeEvent::BecameLeader { term: 1 })];
        trace.push(ev(2, 2, NodeEvent::Appended { index: 1, term: 1, digest: 1001 }));
        trace.extend(config(2, 2, 2, 1, &[3, 4, 5], &[]));
        trace.push(ev(3, 3, NodeEvent::BecameLeader { term: 2 }));
        trace.push(ev(4, 3, NodeEvent::Appended { index: 1, term: 2, digest: 7 }));
        trace.push(commit(5, 3, 1));
        trace.extend(config(6, 3, 2, 2, &[1, 2], &[1, 2, 3]));
        assert_eq!(check(&trace, &[1, 2, 3]), Vec::<String>::new());
        // Had index 1 not committed, node 2's configuration would be live, and disjoint.
        let undecided: Vec<TraceEvent> = trace
            .into_iter()
            .filter(|e| !matches!(e.kind, TraceKind::Node { event: NodeEvent::Committed { .. }, .. }))
            .collect();
        assert_eq!(check(&undecided, &[1, 2, 3]).len(), 1);
    }

    #[test]
    fn a_deposed_leaders_append_at_an_index_committed_otherwise_decides_nothing() {
        // Node 3, leader of term 2, commits a plain entry at index 1 (the configuration
        // stays {1, 2, 3}). Node 1, still leader of term 1 and cut off, then appends
        // {1, 4, 5} at index 1: that entry can never commit, so it is not checked. The
        // same append at index 2 (past the commit index) is.
        let base = || {
            let mut t = vec![ev(1, 1, NodeEvent::BecameLeader { term: 1 })];
            t.push(ev(2, 3, NodeEvent::BecameLeader { term: 2 }));
            t.push(ev(3, 3, NodeEvent::Appended { index: 1, term: 2, digest: 7 }));
            t.push(commit(4, 3, 1));
            t
        };
        let mut overwritten = base();
        overwritten.extend(config(5, 1, 1, 1, &[1, 4, 5], &[]));
        assert_eq!(check(&overwritten, &[1, 2, 3]), Vec::<String>::new());
        let mut past_commit = base();
        past_commit.extend(config(5, 1, 2, 1, &[1, 4, 5], &[]));
        assert_eq!(check(&past_commit, &[1, 2, 3]).len(), 1, "{{1, 4, 5}} shares no quorum with {{1, 2, 3}}");
    }
}
