//! Caught-up promotion — a replica moved onto a node becomes a voter only once it holds
//! the range's log (Raft thesis §4.2.1, "catching up new servers": a new server joins as
//! a non-voting member until it has caught up, or the cluster may be left without a
//! quorum of servers that have the log; CockroachDB's rule of a learner snapshot before
//! promotion). A move that promoted an empty learner and demoted the replica it replaces
//! would leave the range one failure from unavailable, with a voter that cannot lead.
//!
//! Read from the trace: a node is *moved in* to a range once a replica reports the
//! range's replicas with it newly listed (`RangeReplicas`, the move's `AddReplica` entry
//! at index A). The configuration that makes it a voter is reported first by the leader
//! that appended it (`ConfigAppended` with the node among the incoming voters and not
//! among the outgoing ones). At that moment the node's log, as its own events tell it
//! (appends, truncations, snapshots installed, recoveries), must reach A: the move waits
//! for the learner's acknowledged match to pass the entry that made it a learner, which
//! comes after A.

use super::Violations;
use crate::trace::{TraceEvent, TraceKind};
use phantomdb::keyspace::{Keyspace, RangeDescriptor};
use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};
use std::collections::{BTreeMap, BTreeSet};

pub fn check(trace: &[TraceEvent], initial: &Keyspace) -> Vec<String> {
    let mut newest: BTreeMap<GroupId, RangeDescriptor> = initial.ranges().iter().map(|r| (r.id, r.clone())).collect();
    // (group, node) -> the index of the entry that listed the node.
    let mut moved_in: BTreeMap<(GroupId, NodeId), u64> = BTreeMap::new();
    let mut log_end: BTreeMap<(GroupId, NodeId), u64> = BTreeMap::new();
    let mut configs_seen: BTreeSet<(GroupId, u64, u64)> = BTreeSet::new();
    let mut v = Violations::default();
    for e in trace {
        let TraceKind::Node { node, group, event } = &e.kind else { continue };
        let end = log_end.entry((*group, *node)).or_default();
        match event {
            NodeEvent::Appended { index, .. } => *end = *index,
            NodeEvent::Truncated { from } => *end = (*end).min(from.saturating_sub(1)),
            NodeEvent::SnapshotInstalled { index, .. } => *end = (*end).max(*index),
            NodeEvent::Recovered { last_index, .. } => *end = *last_index,
            NodeEvent::RangeSplit { right, .. } => {
                newest.entry(right.id).or_insert_with(|| right.clone());
            }
            NodeEvent::RangeReplicas { index, range } => {
                let before = newest.get(&range.id);
                if before.is_some_and(|b| b.generation >= range.generation) {
                    continue;
                }
                for &n in &range.replicas {
                    if before.is_some_and(|b| !b.replicas.contains(&n)) {
                        moved_in.insert((range.id, n), *index);
                    }
                }
                newest.insert(range.id, range.clone());
            }
            NodeEvent::ConfigAppended { index, term, voters, outgoing } => {
                if !configs_seen.insert((*group, *index, *term)) {
                    continue; // reported by the leader first; the followers' copies follow
                }
                for &n in voters.iter().filter(|n| !outgoing.contains(n)) {
                    let Some(&added) = moved_in.get(&(*group, n)) else { continue };
                    let held = log_end.get(&(*group, n)).copied().unwrap_or(0);
                    if held < added {
                        v.push(format!(
                            "n{node} at {:.6}s promoted n{n} to a voter of range {group} (entry {index}) while its log \
                             ended at {held}, before entry {added} that moved it in",
                            e.t_ns as f64 / 1e9
                        ));
                    }
                    moved_in.remove(&(*group, n));
                }
            }
            _ => {}
        }
    }
    v.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_ns: u64, node: NodeId, event: NodeEvent) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group: 1, event } }
    }

    /// Range 1 on n1..n3 moves its replica on n3 to n4: listed at entry 10, promoted at 14.
    fn trace(n4_holds: u64) -> (Vec<TraceEvent>, Keyspace) {
        let ks = Keyspace::ranged(vec![]).unwrap().place(&[1, 2, 3], 3).unwrap();
        let added = ks.descriptor(1).with_replica(4).unwrap();
        let promote = NodeEvent::ConfigAppended { index: 14, term: 2, voters: vec![1, 2, 4], outgoing: vec![1, 2, 3] };
        let trace = vec![
            ev(1, 1, NodeEvent::RangeReplicas { index: 10, range: added.clone() }),
            ev(2, 2, NodeEvent::RangeReplicas { index: 10, range: added }),
            ev(3, 4, NodeEvent::Recovered { term: 0, snapshot_index: 0, last_index: 0, applied_index: 0 }),
            ev(4, 4, NodeEvent::SnapshotInstalled { index: n4_holds, term: 2 }),
            ev(5, 1, promote.clone()),
            ev(6, 4, promote),
        ];
        (trace, ks)
    }

    #[test]
    fn passes_a_learner_promoted_once_it_holds_the_log() {
        let (trace, ks) = trace(12);
        assert_eq!(check(&trace, &ks), Vec::<String>::new());
    }

    #[test]
    fn fails_a_learner_promoted_before_it_caught_up() {
        let (trace, ks) = trace(0);
        let v = check(&trace, &ks);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("promoted n4") && v[0].contains("ended at 0"), "{v:?}");
    }
}
