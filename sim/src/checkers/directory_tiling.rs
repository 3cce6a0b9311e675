//! Directory tiling — the meta range's directory of ranges is a consistent shard map at
//! every index (ARCHITECTURE §3 and issue 10's "at every meta commit the descriptors
//! tile the key space"; the rule CockroachDB's meta2 consistency checker holds meta
//! records to): no gap, no overlap, each range once; the newest owner of every key never
//! goes back to an older one; and every descriptor in it is one a range really had.
//!
//! Read from the trace: every `DirectoryTiled` (the tiling a meta replica holds after
//! applying the reports at an index). The directory is a function of the meta range's
//! log, so two replicas at one index must hold the same one, and a later index a tiling
//! no older at any key. A descriptor is real if the cluster was created with it or a
//! range reported it applied (`RangeSplit`, `RangeReplicas`, `RangeInstalled`) before
//! the directory held it.

use super::range_tiling::tiles;
use super::Violations;
use crate::trace::{TraceEvent, TraceKind};
use phantomdb::keyspace::{Keyspace, RangeDescriptor};
use phantomdb::node::NodeEvent;
use phantomdb::GroupId;
use std::collections::BTreeMap;

pub fn check(trace: &[TraceEvent], initial: &Keyspace) -> Vec<String> {
    let mut real: BTreeMap<(GroupId, u64), RangeDescriptor> =
        initial.ranges().iter().map(|r| ((r.id, r.generation), r.clone())).collect();
    let mut at_index: BTreeMap<u64, Vec<RangeDescriptor>> = BTreeMap::new();
    let mut v = Violations::default();
    for e in trace {
        let TraceKind::Node { node, event, .. } = &e.kind else { continue };
        let at = format!("n{node} at {:.6}s", e.t_ns as f64 / 1e9);
        match event {
            NodeEvent::RangeSplit { left, right, .. } => {
                for d in [left, right] {
                    real.entry((d.id, d.generation)).or_insert_with(|| d.clone());
                }
            }
            NodeEvent::RangeReplicas { range, .. } | NodeEvent::RangeInstalled { range } => {
                real.entry((range.id, range.generation)).or_insert_with(|| range.clone());
            }
            NodeEvent::DirectoryTiled { index, ranges } => {
                let at = format!("{at}, directory at index {index}");
                if let Err(e) = tiles(ranges.iter()) {
                    v.push(format!("{at}: the directory does not tile the key space: {e}"));
                }
                for d in ranges {
                    match real.get(&(d.id, d.generation)) {
                        None => v.push(format!(
                            "{at}: range {} generation {} was never reported: {d:?}",
                            d.id, d.generation
                        )),
                        Some(known) if known != d => v.push(format!(
                            "{at}: range {} generation {} is {d:?}, but the range had {known:?}",
                            d.id, d.generation
                        )),
                        Some(_) => {}
                    }
                }
                match at_index.get(index) {
                    Some(seen) if seen != ranges => {
                        v.push(format!("{at}: another replica held another directory at this index: {seen:?}"))
                    }
                    Some(_) => {}
                    None => {
                        let earlier = at_index.range(..index).next_back().map(|(&i, r)| (i, r));
                        let later = at_index.range(index + 1..).next().map(|(&i, r)| (i, r));
                        if let Some((i, older)) = earlier {
                            if let Some(e) = went_back(older, ranges) {
                                v.push(format!("{at}: older than the directory at index {i}: {e}"));
                            }
                        }
                        if let Some((i, newer)) = later {
                            if let Some(e) = went_back(ranges, newer) {
                                v.push(format!("{at}: newer than the directory at index {i}: {e}"));
                            }
                        }
                        at_index.insert(*index, ranges.clone());
                    }
                }
            }
            _ => {}
        }
    }
    v.into_vec()
}

/// Where `newer` holds a key with an older descriptor than `older` does, if anywhere.
fn went_back(older: &[RangeDescriptor], newer: &[RangeDescriptor]) -> Option<String> {
    newer.iter().find_map(|n| {
        let o = older.iter().find(|o| o.overlaps(n) && o.generation > n.generation)?;
        Some(format!(
            "range {} generation {} took keys of range {} generation {}",
            n.id, n.generation, o.id, o.generation
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyspace() -> Keyspace {
        Keyspace::ranged(vec![b"m".to_vec()]).unwrap().place(&[1, 2, 3], 3).unwrap()
    }

    fn ev(t_ns: u64, node: u64, event: NodeEvent) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group: 1, event } }
    }

    fn tiled(t_ns: u64, node: u64, index: u64, ranges: &[&RangeDescriptor]) -> TraceEvent {
        let mut ranges: Vec<RangeDescriptor> = ranges.iter().map(|&r| r.clone()).collect();
        ranges.sort_by(|a, b| a.start.cmp(&b.start));
        ev(t_ns, node, NodeEvent::DirectoryTiled { index, ranges })
    }

    #[test]
    fn passes_a_directory_that_follows_a_split() {
        let ks = keyspace();
        let [r1, r2, meta] = ks.ranges() else { panic!("three ranges") };
        let (left, right) = r1.split(b"f", 900).unwrap();
        let trace = [
            ev(1, 1, NodeEvent::RangeSplit { index: 5, left: left.clone(), right: right.clone() }),
            tiled(2, 1, 3, &[&left, &right, r2, meta]),
            tiled(3, 2, 3, &[&left, &right, r2, meta]),
            tiled(4, 3, 2, &[r1, r2, meta]),
        ];
        assert_eq!(check(&trace, &ks), Vec::<String>::new());
    }

    #[test]
    fn fails_a_gap_an_unreported_range_a_disagreement_and_a_step_back() {
        let ks = keyspace();
        let [r1, r2, meta] = ks.ranges() else { panic!("three ranges") };
        let (left, right) = r1.split(b"f", 900).unwrap();
        let split = || ev(1, 1, NodeEvent::RangeSplit { index: 5, left: left.clone(), right: right.clone() });

        let v = check(&[split(), tiled(2, 1, 3, &[&right, r2, meta])], &ks);
        assert!(v.iter().any(|m| m.contains("does not tile") && m.contains("before range 900")), "{v:?}");

        let v = check(&[tiled(2, 1, 3, &[&left, &right, r2, meta])], &ks);
        assert!(v.iter().any(|m| m.contains("range 900 generation 2 was never reported")), "{v:?}");

        let v = check(&[split(), tiled(2, 1, 3, &[&left, &right, r2, meta]), tiled(3, 2, 3, &[r1, r2, meta])], &ks);
        assert!(v.iter().any(|m| m.contains("another directory at this index")), "{v:?}");

        let v = check(&[split(), tiled(2, 1, 3, &[&left, &right, r2, meta]), tiled(3, 2, 4, &[r1, r2, meta])], &ks);
        assert!(v.iter().any(|m| m.contains("older than the directory at index 3")), "{v:?}");
    }
}
