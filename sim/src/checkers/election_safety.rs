//! Election Safety — Raft paper (Ongaro & Ousterhout 2014), Figure 3: "at most one leader
//! can be elected in a given term".

use super::Violations;
use crate::replay::GroupReplay;
use std::collections::BTreeMap;

pub fn check(group: &GroupReplay) -> Vec<String> {
    let mut leaders: BTreeMap<u64, (u64, u64)> = BTreeMap::new(); // term -> (node, t_ns)
    let mut v = Violations::default();
    for e in &group.elections {
        match leaders.get(&e.term) {
            Some(&(other, t)) if other != e.node => v.push(format!(
                "term {} has two leaders: n{other} (at {:.6}s) and n{} (at {:.6}s)",
                e.term,
                t as f64 / 1e9,
                e.node,
                e.t_ns as f64 / 1e9
            )),
            Some(_) => {}
            None => {
                leaders.insert(e.term, (e.node, e.t_ns));
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
    use phantomdb::node::NodeEvent;

    fn leader(t_ns: u64, node: u64, term: u64) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group: 1, event: NodeEvent::BecameLeader { term } } }
    }

    fn check_trace(trace: &[TraceEvent]) -> Vec<String> {
        check(&Replay::build(trace, 1, &[1, 2, 3]).groups[&1])
    }

    #[test]
    fn passes_one_leader_per_term() {
        assert!(check_trace(&[leader(1, 1, 1), leader(2, 2, 2), leader(3, 1, 3)]).is_empty());
    }

    #[test]
    fn fails_two_leaders_in_one_term() {
        let v = check_trace(&[leader(1, 1, 4), leader(2, 3, 4)]);
        assert_eq!(v.len(), 1);
        assert!(v[0].contains("term 4 has two leaders: n1"), "{v:?}");
    }
}
