//! No write applied outside its range (ARCHITECTURE §3; the check behind CockroachDB's
//! "request outside range bounds" and TiKV's `KeyNotInRegion`): a range applies a command
//! only if its span, as of the command's place in the range's log, holds every key the
//! command touches. A command routed with a stale map, or in the log after a split that
//! gave its key away, must be refused, never applied.
//!
//! The span at an index is read from the log's own history, not from what the replica
//! that applied it believed: the range's span when the cluster was created (or, for a
//! range a split made, the right half it was given), narrowed by every split entry of the
//! range before the index (`RangeSplit`, from whichever replica applied it: all agree, see
//! `range_tiling`) and set by every snapshot installed before it (`RangeInstalled`, at the
//! index of the `SnapshotInstalled` that follows it). Then every `Applied` command's keys must
//! lie in the span in force at its index.

use super::Violations;
use crate::trace::{TraceEvent, TraceKind};
use phantomdb::keyspace::{Keyspace, RangeDescriptor};
use phantomdb::node::NodeEvent;
use phantomdb::raft::Index;
use phantomdb::GroupId;
use std::collections::BTreeMap;

pub fn check(trace: &[TraceEvent], initial: &Keyspace) -> Vec<String> {
    // Per group: from which index on (exclusive) which span holds. Index 0: from the start.
    let mut spans: BTreeMap<GroupId, BTreeMap<Index, RangeDescriptor>> =
        initial.ranges().iter().map(|r| (r.id, BTreeMap::from([(0, r.clone())]))).collect();
    // A replica reports the range a snapshot gave it just before the install itself.
    let mut installing: BTreeMap<(u64, GroupId), RangeDescriptor> = BTreeMap::new();
    for e in trace {
        let TraceKind::Node { node, group, event } = &e.kind else { continue };
        match event {
            NodeEvent::RangeSplit { index, left, right } => {
                spans.entry(*group).or_default().insert(*index, left.clone());
                spans.entry(right.id).or_default().entry(0).or_insert_with(|| right.clone());
            }
            NodeEvent::RangeInstalled { range } => {
                installing.insert((*node, *group), range.clone());
            }
            NodeEvent::SnapshotInstalled { index, .. } => {
                if let Some(range) = installing.remove(&(*node, *group)) {
                    spans.entry(*group).or_default().entry(*index).or_insert(range);
                }
            }
            _ => {}
        }
    }
    let mut v = Violations::default();
    for e in trace {
        let TraceKind::Node { node, group, event: NodeEvent::Applied { index, keys, .. } } = &e.kind else {
            continue;
        };
        if keys.is_empty() {
            continue;
        }
        let at = format!("n{node} at {:.6}s", e.t_ns as f64 / 1e9);
        // The span set by the last change strictly before the entry.
        let Some((_, span)) = spans.get(group).and_then(|s| s.range(..*index).next_back()) else {
            v.push(format!("{at}: group {group} applied entry {index}, but no range of that group is known"));
            continue;
        };
        for key in keys.iter().filter(|k| !span.holds(k)) {
            v.push(format!(
                "{at}: range {group} applied entry {index} with key {:?}, outside its span [{:?}, {:?}) there",
                key.escape_ascii().to_string(),
                span.start.escape_ascii().to_string(),
                span.end.as_deref().map(|e| e.escape_ascii().to_string()),
            ));
        }
    }
    v.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyspace() -> Keyspace {
        Keyspace::ranged(vec![b"m".to_vec()]).unwrap().place(&[1, 2, 3], 3).unwrap()
    }

    fn ev(t_ns: u64, node: u64, group: GroupId, event: NodeEvent) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group, event } }
    }

    fn applied(t_ns: u64, node: u64, group: GroupId, index: Index, key: &str) -> TraceEvent {
        let keys = vec![key.as_bytes().to_vec()];
        ev(t_ns, node, group, NodeEvent::Applied { index, term: 1, digest: 0, keys })
    }

    /// Range 1 `["", "m")` splits at "f" at index 5, the right half becoming range 9.
    fn split_trace() -> Vec<TraceEvent> {
        let (left, right) = keyspace().descriptor(1).split(b"f", 9).unwrap();
        vec![
            applied(1, 1, 1, 4, "g"),
            ev(2, 1, 1, NodeEvent::RangeSplit { index: 5, left, right }),
            applied(3, 1, 1, 6, "a"),
            applied(3, 1, 9, 1, "g"),
            applied(4, 2, 1, 4, "g"), // a lagging replica, before the split: still its key
            applied(5, 1, 2, 3, "x"),
        ]
    }

    #[test]
    fn passes_commands_applied_where_their_keys_were_at_their_index() {
        assert_eq!(check(&split_trace(), &keyspace()), Vec::<String>::new());
    }

    #[test]
    fn fails_a_command_applied_after_the_split_gave_its_key_away() {
        let mut trace = split_trace();
        trace.push(applied(6, 2, 1, 7, "h"));
        let v = check(&trace, &keyspace());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("range 1 applied entry 7 with key \"h\", outside its span"), "{v:?}");
    }

    #[test]
    fn fails_a_command_of_another_range_and_knows_spans_from_snapshots() {
        let ks = keyspace();
        let v = check(&[applied(1, 1, 2, 3, "a")], &ks);
        assert!(v.iter().any(|m| m.contains("range 2 applied entry 3 with key \"a\"")), "{v:?}");
        // A replica that installed range 1 narrowed to ["", "c") at index 8 (its split
        // reported by no one) must not apply "d" after it.
        let narrowed = RangeDescriptor { end: Some(b"c".to_vec()), generation: 2, ..ks.descriptor(1).clone() };
        let trace = [
            ev(1, 3, 1, NodeEvent::RangeInstalled { range: narrowed }),
            ev(1, 3, 1, NodeEvent::SnapshotInstalled { index: 8, term: 2 }),
            applied(2, 3, 1, 9, "d"),
        ];
        let v = check(&trace, &ks);
        assert!(v.iter().any(|m| m.contains("entry 9 with key \"d\"")), "{v:?}");
    }
}
