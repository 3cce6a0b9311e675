//! Replica balance — placement's goal once load settles (issue 10's "replica and leader
//! counts per node within one of the mean"; CockroachDB's replicate queue rebalances to
//! the same bound around the mean range count): at the end of the healed phase, every
//! server holds a number of replicas within one of the mean over the servers.
//!
//! Read from the trace: the ranges the cluster was created with, and the newest
//! descriptor of each range as its replicas applied it (`RangeSplit`, `RangeReplicas`,
//! `RangeInstalled`) before the final reads began. A replica is counted on every node
//! its range's newest descriptor lists. Servers are the cluster's initial voters, added
//! nodes included (they start empty); spare nodes outside them host no counted replica.
//! It also tells since when the counts had held within the bound without a break, the
//! figure of how long placement takes after the last `add_node`. Leader balance is
//! placement's second goal and not checked here: a leadership can move
//! only to a replica, so it is balanced as far as replicas allow.

use crate::faults::{process, FaultEvent};
use crate::trace::{Phase, TraceEvent, TraceKind};
use phantomdb::keyspace::{Keyspace, RangeDescriptor};
use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};
use std::collections::BTreeMap;

/// The replicas each server held when the final reads began, and since when the counts
/// had been within one of the mean without a break (`None`: they were not then).
#[derive(Debug, PartialEq, Eq)]
pub struct Balance {
    pub counts: BTreeMap<NodeId, usize>,
    pub balanced_since_ns: Option<u64>,
    /// When the last node of `added_nodes` joined, if one did.
    pub last_added_ns: Option<u64>,
    /// The newest descriptor of every range then.
    pub ranges: Vec<RangeDescriptor>,
}

pub fn replay(trace: &[TraceEvent], initial: &Keyspace, servers: &[NodeId]) -> Balance {
    let mut newest: BTreeMap<GroupId, RangeDescriptor> = initial.ranges().iter().map(|r| (r.id, r.clone())).collect();
    let learn = |newest: &mut BTreeMap<GroupId, RangeDescriptor>, d: &RangeDescriptor| {
        let known = newest.get(&d.id).map_or(0, |n| n.generation);
        if d.generation > known {
            newest.insert(d.id, d.clone());
        }
    };
    let mut balanced_since_ns = check(&counts(&newest, servers)).is_empty().then_some(0);
    let mut last_added_ns = None;
    for e in trace {
        match &e.kind {
            TraceKind::Phase(Phase::FinalReads) => break,
            TraceKind::Fault(FaultEvent::Process(process::Applied::Added { .. })) => last_added_ns = Some(e.t_ns),
            TraceKind::Node { event, .. } => {
                match event {
                    NodeEvent::RangeSplit { left, right, .. } => {
                        learn(&mut newest, left);
                        learn(&mut newest, right);
                    }
                    NodeEvent::RangeReplicas { range, .. } | NodeEvent::RangeInstalled { range } => {
                        learn(&mut newest, range)
                    }
                    _ => continue,
                }
                let balanced = check(&counts(&newest, servers)).is_empty();
                balanced_since_ns = match (balanced, balanced_since_ns) {
                    (false, _) => None,
                    (true, None) => Some(e.t_ns),
                    (true, since) => since,
                };
            }
            _ => {}
        }
    }
    Balance {
        counts: counts(&newest, servers),
        balanced_since_ns,
        last_added_ns,
        ranges: newest.into_values().collect(),
    }
}

fn counts(newest: &BTreeMap<GroupId, RangeDescriptor>, servers: &[NodeId]) -> BTreeMap<NodeId, usize> {
    let mut counts: BTreeMap<NodeId, usize> = servers.iter().map(|&n| (n, 0)).collect();
    for r in newest.values() {
        for n in &r.replicas {
            if let Some(c) = counts.get_mut(n) {
                *c += 1;
            }
        }
    }
    counts
}

/// A violation for each server further than one replica from the mean.
pub fn check(counts: &BTreeMap<NodeId, usize>) -> Vec<String> {
    let servers = counts.len();
    if servers == 0 {
        return Vec::new();
    }
    let total: usize = counts.values().sum();
    let mean = total as f64 / servers as f64;
    // |c - total / n| <= 1, in integers: |c·n - total| <= n.
    counts
        .iter()
        .filter(|&(_, &c)| (c * servers).abs_diff(total) > servers)
        .map(|(n, c)| {
            format!("n{n} holds {c} replicas at the end of the healed phase, the mean is {mean:.2}: {counts:?}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyspace() -> Keyspace {
        Keyspace::ranged(vec![b"f".to_vec(), b"m".to_vec(), b"t".to_vec()]).unwrap().place(&[1, 2, 3], 3).unwrap()
    }

    fn ev(t_ns: u64, kind: TraceKind) -> TraceEvent {
        TraceEvent { t_ns, kind }
    }

    fn moved(t_ns: u64, range: &RangeDescriptor, from: NodeId, to: NodeId) -> TraceEvent {
        let mut r = range.clone();
        r.replicas.retain(|&n| n != from);
        r.replicas.push(to);
        r.generation += 1;
        ev(t_ns, TraceKind::Node { node: to, group: r.id, event: NodeEvent::RangeReplicas { index: 9, range: r } })
    }

    #[test]
    fn fails_a_node_left_empty_and_passes_once_it_is_filled() {
        let ks = keyspace();
        // 4 ranges and the meta range, 3 replicas each, on nodes 1..=3; node 4 empty.
        let servers = [1, 2, 3, 4];
        let v = check(&replay(&[], &ks, &servers).counts);
        assert!(v.iter().any(|m| m.starts_with("n4 holds 0 replicas")), "{v:?}");
        // Three moves onto node 4 make 4,4,4,3: within one of the mean 3.75.
        let r = ks.ranges();
        let trace = [moved(1, &r[0], 1, 4), moved(2, &r[1], 2, 4), moved(3, &r[2], 3, 4)];
        let b = replay(&trace, &ks, &servers);
        assert_eq!(b.counts.values().copied().collect::<Vec<_>>(), [4, 4, 4, 3]);
        assert_eq!(check(&b.counts), Vec::<String>::new());
        assert_eq!(b.balanced_since_ns, Some(3), "since the third move");
        // The same moves after the final reads began do not count.
        let late: Vec<TraceEvent> =
            std::iter::once(ev(0, TraceKind::Phase(Phase::FinalReads))).chain(trace.iter().cloned()).collect();
        assert_eq!(replay(&late, &ks, &servers).counts[&4], 0);
    }

    #[test]
    fn an_older_descriptor_heard_later_changes_nothing() {
        let ks = keyspace();
        let r = ks.ranges();
        let stale = ev(
            2,
            TraceKind::Node { node: 1, group: r[0].id, event: NodeEvent::RangeInstalled { range: r[0].clone() } },
        );
        let c = replay(&[moved(1, &r[0], 1, 4), stale], &ks, &[1, 2, 3, 4]).counts;
        assert_eq!(c[&4], 1);
        assert_eq!(c[&1], 4);
    }

    #[test]
    fn two_apart_can_still_be_within_one_of_the_mean_but_three_apart_cannot() {
        let c: BTreeMap<NodeId, usize> = [(1, 7), (2, 6), (3, 6), (4, 6), (5, 5)].into();
        assert_eq!(check(&c), Vec::<String>::new(), "mean 6");
        let c: BTreeMap<NodeId, usize> = [(1, 7), (2, 7), (3, 7), (4, 7), (5, 5)].into();
        assert_eq!(check(&c).len(), 1, "mean 6.6: n5 is 1.6 below");
    }
}
