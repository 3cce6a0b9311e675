//! Range tiling — the invariant of a range map (ARCHITECTURE §9; the rule behind
//! CockroachDB's meta-range consistency checks and TiKV's region epochs): at every moment
//! the ranges tile the key space, no gap and no overlap, and a range's generation only
//! grows. A split is an entry of its range's log, applied deterministically, so every
//! replica that applies it makes the same two ranges: one (range, generation) is one
//! descriptor wherever it is reported.
//!
//! Read from the trace: the ranges the cluster was created with, then every split
//! applied (`RangeSplit`: the range kept and the range made) and every range a snapshot
//! installed (`RangeInstalled`). The newest descriptor of each range must tile the key
//! space after every event.

use super::Violations;
use crate::trace::{TraceEvent, TraceKind};
use phantomdb::keyspace::{Keyspace, RangeDescriptor};
use phantomdb::node::NodeEvent;
use phantomdb::GroupId;
use std::collections::BTreeMap;

pub fn check(trace: &[TraceEvent], initial: &Keyspace) -> Vec<String> {
    let mut newest: BTreeMap<GroupId, RangeDescriptor> = initial.ranges().iter().map(|r| (r.id, r.clone())).collect();
    let mut seen: BTreeMap<(GroupId, u64), RangeDescriptor> =
        initial.ranges().iter().map(|r| ((r.id, r.generation), r.clone())).collect();
    let mut v = Violations::default();
    for e in trace {
        let TraceKind::Node { node, group, event } = &e.kind else { continue };
        let at = format!("n{node} at {:.6}s", e.t_ns as f64 / 1e9);
        let reported: Vec<&RangeDescriptor> = match event {
            NodeEvent::RangeSplit { left, right, .. } => {
                if left.id != *group {
                    v.push(format!("{at}: group {group} reported a split of range {}", left.id));
                }
                if left.end.as_ref() != Some(&right.start) {
                    v.push(format!("{at}: the halves of a split of range {group} do not touch: {left:?} {right:?}"));
                }
                vec![left, right]
            }
            NodeEvent::RangeInstalled { range } | NodeEvent::RangeReplicas { range, .. } => vec![range],
            _ => continue,
        };
        let mut changed = false;
        for d in reported {
            match seen.get(&(d.id, d.generation)) {
                Some(known) if known != d => v.push(format!(
                    "{at}: range {} generation {} is {d:?} here but {known:?} elsewhere",
                    d.id, d.generation
                )),
                Some(_) => {}
                None => {
                    seen.insert((d.id, d.generation), d.clone());
                }
            }
            if newest.get(&d.id).is_none_or(|n| n.generation < d.generation) {
                newest.insert(d.id, d.clone());
                changed = true;
            }
        }
        if changed {
            if let Err(e) = tiles(newest.values()) {
                v.push(format!("{at}: the ranges no longer tile the key space: {e}"));
            }
        }
    }
    v.into_vec()
}

/// Whether `ranges` tile the stored keys: from the least key, each ending where the next
/// starts, the last to the end.
pub(super) fn tiles<'a>(ranges: impl Iterator<Item = &'a RangeDescriptor>) -> Result<(), String> {
    let mut sorted: Vec<&RangeDescriptor> = ranges.collect();
    sorted.sort_by(|a, b| a.start.cmp(&b.start));
    let Some(first) = sorted.first() else { return Err("no range".into()) };
    if first.start.iter().any(|&b| b != 0) {
        return Err(format!("nothing covers the keys before range {}", first.id));
    }
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        match &a.end {
            Some(end) if *end == b.start => {}
            Some(end) if *end < b.start => return Err(format!("a gap between ranges {} and {}", a.id, b.id)),
            _ => return Err(format!("ranges {} and {} overlap", a.id, b.id)),
        }
    }
    match &sorted.last().expect("non-empty").end {
        None => Ok(()),
        Some(_) => Err("nothing covers the keys after the last range".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyspace() -> Keyspace {
        Keyspace::ranged(vec![b"m".to_vec()]).unwrap().place(&[1, 2, 3], 3).unwrap()
    }

    fn split(t_ns: u64, node: u64, range: &RangeDescriptor, at: &[u8], right_id: GroupId) -> TraceEvent {
        let (left, right) = range.split(at, right_id).expect("inside");
        let event = NodeEvent::RangeSplit { index: 5, left, right };
        TraceEvent { t_ns, kind: TraceKind::Node { node, group: range.id, event } }
    }

    #[test]
    fn passes_splits_that_every_replica_applies_alike() {
        let ks = keyspace();
        let r1 = ks.descriptor(1);
        let (left, _) = r1.split(b"f", 9).unwrap();
        let trace = [
            split(1, 1, r1, b"f", 9),
            split(2, 2, r1, b"f", 9),
            split(3, 1, &left, b"c", 10),
            split(4, 3, r1, b"f", 9), // a replica that lagged applies the old split later
            TraceEvent {
                t_ns: 5,
                kind: TraceKind::Node {
                    node: 2,
                    group: 1,
                    event: NodeEvent::RangeInstalled { range: left.split(b"c", 10).unwrap().0 },
                },
            },
        ];
        assert_eq!(check(&trace, &ks), Vec::<String>::new());
    }

    #[test]
    fn fails_replicas_that_split_one_range_differently() {
        let ks = keyspace();
        let r1 = ks.descriptor(1);
        let v = check(&[split(1, 1, r1, b"f", 9), split(2, 2, r1, b"g", 9)], &ks);
        assert!(v.iter().any(|m| m.contains("range 1 generation 2 is") && m.contains("elsewhere")), "{v:?}");
    }

    #[test]
    fn fails_ranges_that_overlap_or_leave_a_gap() {
        let ks = keyspace();
        let r1 = ks.descriptor(1);
        // A split that hands the right half a span reaching into range 2.
        let (left, mut right) = r1.split(b"f", 9).unwrap();
        right.end = Some(b"p".to_vec());
        let event = NodeEvent::RangeSplit { index: 5, left: left.clone(), right };
        let overlap = [TraceEvent { t_ns: 1, kind: TraceKind::Node { node: 1, group: 1, event } }];
        let v = check(&overlap, &ks);
        assert!(v.iter().any(|m| m.contains("overlap")), "{v:?}");
        // A snapshot that narrows range 1 with no range taking the rest.
        let event = NodeEvent::RangeInstalled { range: left };
        let gap = [TraceEvent { t_ns: 1, kind: TraceKind::Node { node: 1, group: 1, event } }];
        let v = check(&gap, &ks);
        assert!(v.iter().any(|m| m.contains("a gap between ranges 1 and 2")), "{v:?}");
    }
}
