//! Leader Completeness — Raft paper, Figure 3 and §5.4: "if a log entry is committed in a
//! given term, then that entry will be present in the logs of the leaders for all
//! higher-numbered terms".
//!
//! From the replay (`crate::replay`) we take each winner's log when it won, and when each
//! index was first committed and which entry it held. A leader elected after an entry was committed must hold that entry: once a
//! majority is in the committing term, no election in an older term can succeed, so
//! "elected later" means "of a higher-numbered term".

use super::Violations;
use crate::replay::GroupReplay;

pub fn check(group: &GroupReplay) -> Vec<String> {
    let mut v = Violations::default();
    for e in &group.elections {
        for (&index, c) in group.committed.iter().filter(|(_, c)| c.t_ns < e.t_ns) {
            match e.log.get(&index) {
                Some(&(t, d)) if t == c.term && d == c.digest => {}
                held => v.push(format!(
                    "n{} became leader of term {} at {:.6}s without committed entry (index {index}, term {}); it \
                     holds {held:?}",
                    e.node,
                    e.term,
                    e.t_ns as f64 / 1e9,
                    c.term
                )),
            }
        }
    }
    v.into_vec()
}

#[cfg(test)]
mod tests {
    use crate::replay::Replay;
    use crate::trace::{TraceEvent, TraceKind};
    use phantomdb::node::NodeEvent;

    fn check(trace: &[TraceEvent]) -> Vec<String> {
        super::check(&Replay::build(trace, 1, &[1, 2, 3]).groups[&1])
    }

    fn ev(t_ns: u64, node: u64, event: NodeEvent) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group: 1, event } }
    }

    fn append(t: u64, node: u64, index: u64, term: u64) -> TraceEvent {
        ev(t, node, NodeEvent::Appended { index, term, digest: index * 100 + term })
    }

    #[test]
    fn passes_when_the_next_leader_holds_what_was_committed() {
        let trace = [
            ev(1, 1, NodeEvent::BecameLeader { term: 1 }),
            append(2, 1, 1, 1),
            append(3, 2, 1, 1),
            ev(4, 1, NodeEvent::Committed { index: 1 }),
            ev(5, 2, NodeEvent::BecameLeader { term: 2 }),
        ];
        assert!(check(&trace).is_empty());
    }

    #[test]
    fn fails_when_a_leader_lacks_a_committed_entry() {
        let trace = [
            ev(1, 1, NodeEvent::BecameLeader { term: 1 }),
            append(2, 1, 1, 1),
            append(3, 2, 1, 1),
            ev(4, 1, NodeEvent::Committed { index: 1 }),
            // Node 3 never got the entry, yet wins term 2 (a vote that ignored the log).
            ev(5, 3, NodeEvent::BecameLeader { term: 2 }),
        ];
        let v = check(&trace);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("n3 became leader of term 2"), "{v:?}");
    }

    #[test]
    fn an_entry_lost_in_a_crash_counts_as_missing() {
        let trace = [
            ev(1, 1, NodeEvent::BecameLeader { term: 1 }),
            append(2, 1, 1, 1),
            append(3, 2, 1, 1),
            ev(4, 1, NodeEvent::Committed { index: 1 }),
            // Node 2 loses its unsynced copy (a durability bug) and then leads.
            ev(5, 2, NodeEvent::Recovered { term: 1, snapshot_index: 0, last_index: 0, applied_index: 0 }),
            ev(6, 2, NodeEvent::BecameLeader { term: 2 }),
        ];
        assert_eq!(check(&trace).len(), 1);
    }
}
