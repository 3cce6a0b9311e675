//! State Machine Safety — Raft paper, Figure 3: "if a server has applied a log entry at a
//! given index to its state machine, no other server will ever apply a different log entry
//! for the same index". Also: each node applies indices in order, without gaps, from just
//! after what its data held at every restart and after every installed snapshot; and a snapshot
//! agrees with the log (its last entry is the one applied at that index everywhere).

use super::Violations;
use crate::replay::GroupReplay;
use phantomdb::node::NodeEvent;
use std::collections::BTreeMap;

pub fn check(group: &GroupReplay) -> Vec<String> {
    let mut applied: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new(); // index -> (term, digest, node)
    let mut next: BTreeMap<u64, u64> = BTreeMap::new(); // node -> next index it must apply
    let mut v = Violations::default();
    for s in &group.steps {
        let (node, event) = (&s.node, s.event);
        match event {
            NodeEvent::Recovered { applied_index, .. } => {
                next.insert(*node, applied_index + 1);
            }
            NodeEvent::SnapshotInstalled { index, term } => {
                next.insert(*node, index + 1);
                if let Some(&(t, _, other)) = applied.get(index) {
                    if t != *term {
                        v.push(format!(
                            "n{node} installed a snapshot ending at index {index} term {term}, but n{other} applied \
                             term {t} there"
                        ));
                    }
                }
            }
            NodeEvent::Applied { index, term, digest, .. } => {
                let want = next.entry(*node).or_insert(1);
                if *index != *want {
                    v.push(format!("n{node} applied index {index} when {want} was next"));
                }
                *want = index + 1;
                match applied.get(index) {
                    Some(&(t, d, other)) if t != *term || d != *digest => v.push(format!(
                        "index {index}: n{other} applied (term {t}, {d:016x}) but n{node} applied (term {term}, {digest:016x})"
                    )),
                    Some(_) => {}
                    None => {
                        applied.insert(*index, (*term, *digest, *node));
                    }
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
    use crate::replay::Replay;
    use crate::trace::{TraceEvent, TraceKind};

    fn check(trace: &[TraceEvent]) -> Vec<String> {
        super::check(&Replay::build(trace, 1, &[1, 2, 3]).groups[&1])
    }

    fn ev(node: u64, event: NodeEvent) -> TraceEvent {
        TraceEvent { t_ns: 0, kind: TraceKind::Node { node, group: 1, event } }
    }
    fn applied(node: u64, index: u64, term: u64, digest: u64) -> TraceEvent {
        ev(node, NodeEvent::Applied { index, term, digest, keys: Vec::new() })
    }

    #[test]
    fn passes_the_same_prefix_and_a_reapply_after_restart() {
        let t = [
            applied(1, 1, 1, 5),
            applied(2, 1, 1, 5),
            applied(1, 2, 1, 6),
            ev(1, NodeEvent::Recovered { term: 1, snapshot_index: 0, last_index: 2, applied_index: 0 }),
            applied(1, 1, 1, 5),
        ];
        assert!(check(&t).is_empty());
    }

    #[test]
    fn fails_different_entries_at_one_index() {
        let v = check(&[applied(1, 1, 1, 5), applied(2, 1, 2, 9)]);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn fails_a_gap() {
        let v = check(&[applied(1, 1, 1, 5), applied(1, 3, 1, 7)]);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn after_a_snapshot_application_resumes_past_it() {
        let t = [
            applied(1, 1, 1, 5),
            applied(1, 2, 1, 6),
            applied(1, 3, 1, 7),
            ev(2, NodeEvent::SnapshotInstalled { index: 3, term: 1 }),
            applied(2, 4, 1, 8),
            ev(2, NodeEvent::Recovered { term: 1, snapshot_index: 3, last_index: 4, applied_index: 3 }),
            applied(2, 4, 1, 8),
        ];
        assert!(check(&t).is_empty(), "{:?}", check(&t));
    }

    #[test]
    fn fails_a_snapshot_that_disagrees_with_the_log() {
        let t = [applied(1, 1, 1, 5), applied(1, 2, 2, 6), ev(2, NodeEvent::SnapshotInstalled { index: 2, term: 1 })];
        let v = check(&t);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("installed a snapshot ending at index 2 term 1"), "{v:?}");
    }
}
