//! Log Matching — Raft paper, Figure 3: "if two logs contain an entry with the same index
//! and term, then the logs are identical in all entries up through the given index".
//!
//! We check the entry half on every write any node ever made: one (index, term) pair names
//! one entry, across all nodes and all time. (The prefix half follows from it by the
//! AppendEntries consistency check, §5.3; state machine safety checks the applied prefix.)

use super::Violations;
use crate::replay::GroupReplay;
use phantomdb::node::NodeEvent;
use std::collections::BTreeMap;

pub fn check(group: &GroupReplay) -> Vec<String> {
    let mut seen: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new(); // (index, term) -> (digest, node)
    let mut v = Violations::default();
    for s in &group.steps {
        let node = &s.node;
        if let NodeEvent::Appended { index, term, digest } = s.event {
            match seen.get(&(*index, *term)) {
                Some(&(d, other)) if d != *digest => v.push(format!(
                    "entry (index {index}, term {term}) differs: n{other} wrote {d:016x}, n{node} wrote {digest:016x}"
                )),
                Some(_) => {}
                None => {
                    seen.insert((*index, *term), (*digest, *node));
                }
            }
        }
    }
    v.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::Replay;
    use crate::trace::{TraceEvent, TraceKind};

    fn check_trace(trace: &[TraceEvent]) -> Vec<String> {
        check(&Replay::build(trace, 1, &[1, 2, 3]).groups[&1])
    }

    fn append(node: u64, index: u64, term: u64, digest: u64) -> TraceEvent {
        TraceEvent {
            t_ns: 0,
            kind: TraceKind::Node { node, group: 1, event: NodeEvent::Appended { index, term, digest } },
        }
    }

    #[test]
    fn passes_identical_entries_and_different_terms() {
        assert!(check_trace(&[append(1, 1, 1, 7), append(2, 1, 1, 7), append(3, 1, 2, 9)]).is_empty());
    }

    #[test]
    fn fails_two_entries_with_one_index_and_term() {
        let v = check_trace(&[append(1, 5, 2, 7), append(2, 5, 2, 8)]);
        assert_eq!(v.len(), 1, "{v:?}");
    }
}
