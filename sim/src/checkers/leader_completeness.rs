//! Leader Completeness — Raft paper, Figure 3 and §5.4: "if a log entry is committed in a
//! given term, then that entry will be present in the logs of the leaders for all
//! higher-numbered terms".
//!
//! From the trace we rebuild every node's log (appends, truncations, and the prefix that
//! survived each restart) and note when each index was first committed and which entry
//! it held. A leader elected after an entry was committed must hold that entry: once a
//! majority is in the committing term, no election in an older term can succeed, so
//! "elected later" means "of a higher-numbered term".

use super::Violations;
use crate::trace::{TraceEvent, TraceKind};
use phantomdb::node::NodeEvent;
use std::collections::BTreeMap;

/// (term, digest) of each index of one node's log.
type NodeLog = BTreeMap<u64, (u64, u64)>;

pub fn check(trace: &[TraceEvent]) -> Vec<String> {
    let mut logs: BTreeMap<u64, NodeLog> = BTreeMap::new();
    // index -> (term, digest, t_ns) of the entry when the index was first committed.
    let mut committed: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    let mut v = Violations::default();
    for e in trace {
        let TraceKind::Node { node, event, .. } = &e.kind else { continue };
        let log = logs.entry(*node).or_default();
        match event {
            NodeEvent::Appended { index, term, digest } => {
                log.insert(*index, (*term, *digest));
            }
            NodeEvent::Truncated { from } => {
                log.split_off(from);
            }
            NodeEvent::Recovered { last_index, .. } => {
                // Unsynced writes past the surviving prefix were lost in the crash.
                log.split_off(&(last_index + 1));
            }
            NodeEvent::SnapshotInstalled { index, term } => {
                // The snapshot stands for the committed entries up to `index`; a suffix
                // survives only if it agrees with the snapshot's last entry (§7).
                if log.get(index).map(|&(t, _)| t) != Some(*term) {
                    log.split_off(&(index + 1));
                }
                for (&i, &(t, d, _)) in committed.range(..=*index) {
                    log.insert(i, (t, d));
                }
            }
            NodeEvent::Committed { index } => {
                let first_new = committed.keys().next_back().map_or(1, |&i| i + 1);
                for i in first_new..=*index {
                    if let Some(&(term, digest)) = log.get(&i) {
                        committed.insert(i, (term, digest, e.t_ns));
                    }
                }
            }
            NodeEvent::BecameLeader { term } => {
                for (&index, &(entry_term, digest, _)) in committed.iter().filter(|(_, c)| c.2 < e.t_ns) {
                    match log.get(&index) {
                        Some(&(t, d)) if t == entry_term && d == digest => {}
                        held => v.push(format!(
                            "n{node} became leader of term {term} at {:.6}s without committed entry (index {index}, \
                             term {entry_term}); it holds {held:?}",
                            e.t_ns as f64 / 1e9
                        )),
                    }
                }
            }
            // Compaction drops entries from memory, not from what the node holds.
            NodeEvent::Applied { .. }
            | NodeEvent::ConfigAppended { .. }
            | NodeEvent::Poisoned { .. }
            | NodeEvent::Compacted { .. }
            | NodeEvent::LeaseRead { .. }
            | NodeEvent::ClockDriftExceeded { .. } => {}
        }
    }
    v.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ev(5, 2, NodeEvent::Recovered { term: 1, snapshot_index: 0, last_index: 0 }),
            ev(6, 2, NodeEvent::BecameLeader { term: 2 }),
        ];
        assert_eq!(check(&trace).len(), 1);
    }
}
