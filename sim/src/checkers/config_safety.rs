//! Configuration safety — Raft thesis §4 ("Cluster membership changes"): during a change
//! "it must not be possible for two leaders to be elected for the same term", which holds
//! only if no two configurations that can still make decisions have disjoint quorums.
//! Joint consensus (§4.3) guarantees it by passing through C_old,new, whose quorums need
//! majorities of both; the rules that keep it so are "one change at a time" and "a new
//! leader commits an entry of its term before it changes anything" (Ongaro, raft-dev,
//! 2015: without the latter, a leader can build on a predecessor's uncommitted
//! configuration and its successor on the older committed one, with disjoint quorums).
//!
//! From the trace we rebuild every node's log and the configuration entries in it, and
//! the committed prefix. Whenever a leader appends a configuration entry of its own term,
//! every configuration that can still decide anything must share a quorum member with it:
//! the newest committed configuration, and every configuration entry past the commit index
//! in a log that agrees with the committed prefix (an entry on a log that diverged from
//! what was committed can never commit).

use super::Violations;
use crate::trace::{TraceEvent, TraceKind};
use phantomdb::node::NodeEvent;
use phantomdb::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Voters (and, while joint, outgoing voters) of a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Config {
    voters: BTreeSet<NodeId>,
    outgoing: BTreeSet<NodeId>,
}

impl Config {
    fn is_quorum(&self, members: &BTreeSet<NodeId>) -> bool {
        let majority = |set: &BTreeSet<NodeId>| set.is_empty() || set.intersection(members).count() > set.len() / 2;
        majority(&self.voters) && majority(&self.outgoing)
    }

    fn describe(&self) -> String {
        if self.outgoing.is_empty() {
            format!("{:?}", self.voters)
        } else {
            format!("{:?}->{:?}", self.outgoing, self.voters)
        }
    }
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

/// One node's log as the trace shows it: (term, digest) by index, and its configurations.
#[derive(Default)]
struct NodeLog {
    entries: BTreeMap<u64, (u64, u64)>,
    configs: BTreeMap<u64, Config>,
}

impl NodeLog {
    fn cut_from(&mut self, index: u64) {
        self.entries.split_off(&index);
        self.configs.split_off(&index);
    }
}

/// `initial_voters`: the group's configuration before any entry (committed by definition).
pub fn check(trace: &[TraceEvent], initial_voters: &[NodeId]) -> Vec<String> {
    let mut logs: BTreeMap<NodeId, NodeLog> = BTreeMap::new();
    let mut committed: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut committed_config =
        (0u64, Config { voters: initial_voters.iter().copied().collect(), outgoing: BTreeSet::new() });
    let mut leader_of: BTreeMap<u64, NodeId> = BTreeMap::new();
    let mut v = Violations::default();
    for e in trace {
        let TraceKind::Node { node, event, .. } = &e.kind else { continue };
        let node = *node;
        match event {
            NodeEvent::BecameLeader { term } => {
                leader_of.insert(*term, node);
            }
            NodeEvent::Appended { index, term, digest } => {
                let log = logs.entry(node).or_default();
                log.entries.insert(*index, (*term, *digest));
                log.configs.remove(index);
            }
            NodeEvent::Truncated { from } => logs.entry(node).or_default().cut_from(*from),
            NodeEvent::Recovered { last_index, .. } => logs.entry(node).or_default().cut_from(last_index + 1),
            NodeEvent::SnapshotInstalled { index, term } => {
                let log = logs.entry(node).or_default();
                if log.entries.get(index).map(|&(t, _)| t) != Some(*term) {
                    log.cut_from(index + 1);
                }
                // What the snapshot covers is committed: its configuration is tracked as such.
                log.configs = log.configs.split_off(&(index + 1));
            }
            NodeEvent::Committed { index } => {
                let log = logs.entry(node).or_default();
                let first_new = committed.keys().next_back().map_or(1, |&i| i + 1);
                for i in first_new..=*index {
                    if let Some(&entry) = log.entries.get(&i) {
                        committed.insert(i, entry);
                        if let Some(c) = log.configs.get(&i) {
                            committed_config = (i, c.clone());
                        }
                    }
                }
            }
            NodeEvent::ConfigAppended { index, term, voters, outgoing } => {
                let config =
                    Config { voters: voters.iter().copied().collect(), outgoing: outgoing.iter().copied().collect() };
                logs.entry(node).or_default().configs.insert(*index, config.clone());
                if leader_of.get(term) != Some(&node) {
                    continue; // a follower's copy: checked when its leader appended it
                }
                let live = live_configs(&logs, &committed, &committed_config, (node, *index));
                for (whose, other) in live {
                    if let Some((mine, theirs)) = disjoint_quorums(&config, &other) {
                        v.push(format!(
                            "at {:.3}s n{node}, leader of term {term}, appended configuration {} at index {index} while {whose} could still decide with {}: quorums {mine:?} and {theirs:?} share no node",
                            e.t_ns as f64 / 1e9,
                            config.describe(),
                            other.describe(),
                        ));
                    }
                }
            }
            NodeEvent::Applied { .. }
            | NodeEvent::Poisoned { .. }
            | NodeEvent::Compacted { .. }
            | NodeEvent::LeaseRead { .. }
            | NodeEvent::ClockDriftExceeded { .. } => {}
        }
    }
    v.into_vec()
}

/// The configurations that can still decide anything, but `except` (node, index): the
/// newest committed one, and uncommitted ones on logs that agree with the committed prefix.
fn live_configs(
    logs: &BTreeMap<NodeId, NodeLog>,
    committed: &BTreeMap<u64, (u64, u64)>,
    committed_config: &(u64, Config),
    except: (NodeId, u64),
) -> Vec<(String, Config)> {
    let commit = committed.keys().next_back().copied().unwrap_or(0);
    let mut live =
        vec![(format!("the committed configuration (index {})", committed_config.0), committed_config.1.clone())];
    for (&id, log) in logs {
        // A log whose entry at the commit index differs from the committed one diverged
        // below it: nothing after that point can ever commit.
        let agrees = match (log.entries.get(&commit), committed.get(&commit)) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => true,
        };
        if !agrees {
            continue;
        }
        for (&index, c) in log.configs.range(commit + 1..) {
            if (id, index) != except {
                live.push((format!("n{id}'s uncommitted configuration at index {index}"), c.clone()));
            }
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
