//! The directory of ranges the meta range keeps (ARCHITECTURE §3): whole range
//! descriptors that tile the key space, no gap and no overlap, as the ranges report them.
//!
//! A range changes in its own log (a split, a replica added or removed), so the meta
//! range hears of it afterwards, from whichever replica leads it, and the reports of
//! different ranges arrive in any order: the right half of a split may report before
//! the left one, or a range may report twice before its neighbour once. The directory
//! takes them in without ever holding a gap, an overlap or a piece of a descriptor.
//!
//! What makes that possible is the rule of generations: a descriptor made from others (the
//! halves of a split, a range with a replica more or less) has a generation above each of
//! theirs, and a range keeps its start key for life. So the descriptors that ever held a
//! key form one chain of growing generations, and the newest that holds a key is the one
//! that serves it.
//!
//! ```text
//!   learn(d): some known descriptor overlapping d is as new? ─yes─▶ Stale (changes nothing)
//!             └─no─▶ pending (older pending ones it overlaps go: they can never be whole)
//!                    ─▶ d's component: the tiled descriptors chained to d through pending ones
//!                    ─▶ the pending ones cover exactly the tiled ones' span? ─yes─▶ they replace them (Tiled)
//!                                                                         └─no──▶ wait (Pending)
//! ```
//!
//! Invariants, checked after every change: the tiled descriptors tile the key space and
//! each range is there once; pending descriptors overlap no other pending one, and each
//! is newer than every tiled descriptor it overlaps. Learning is deterministic: every
//! replica of the meta range that applies the same reports holds the same directory.

use crate::keyspace::RangeDescriptor;
use crate::GroupId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most descriptors waiting for their neighbours. Past it the oldest goes: ranges report
/// again, so a descriptor dropped comes back.
pub const PENDING_MAX: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// In key order, tiling the stored keys.
    tiled: Vec<RangeDescriptor>,
    /// In key order: descriptors newer than what `tiled` holds of their spans, waiting
    /// until they cover whole tiled descriptors.
    pending: Vec<RangeDescriptor>,
}

/// What one report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Not newer than what the directory knows of some key it holds: nothing changed.
    Stale,
    /// Not a span (its end is not after its start): refused.
    Malformed,
    /// Kept until the descriptors around it are known.
    Pending,
    /// The tiling changed: `replaced` descriptors made way for `placed` ones.
    Tiled { replaced: usize, placed: usize },
}

/// A span of stored keys, `start <= key < end` (`end: None`: to the end).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Span {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Span {
    fn of(r: &RangeDescriptor) -> Self {
        Span { start: r.start.clone(), end: r.end.clone() }
    }

    fn overlaps(&self, r: &RangeDescriptor) -> bool {
        let starts_before_r_ends = r.end.as_deref().is_none_or(|e| self.start.as_slice() < e);
        let r_starts_before_we_end = self.end.as_deref().is_none_or(|e| r.start.as_slice() < e);
        starts_before_r_ends && r_starts_before_we_end
    }

    /// Grows to take in `r`'s span; whether it grew.
    fn take_in(&mut self, r: &RangeDescriptor) -> bool {
        let mut grew = false;
        if r.start < self.start {
            self.start = r.start.clone();
            grew = true;
        }
        let ends_later = match (&r.end, &self.end) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(theirs), Some(ours)) => theirs > ours,
        };
        if ends_later {
            self.end = r.end.clone();
            grew = true;
        }
        grew
    }
}

/// Whether `ranges` (in key order) tile `span` exactly: no gap, no overlap.
fn tile(ranges: &[&RangeDescriptor], span: &Span) -> bool {
    let Some((first, last)) = ranges.first().zip(ranges.last()) else { return false };
    first.start == span.start
        && last.end == span.end
        && ranges.windows(2).all(|pair| pair[0].end.as_ref() == Some(&pair[1].start))
}

impl Directory {
    /// The directory of a cluster as created: its initial ranges, which tile the key space.
    pub fn new(ranges: &[RangeDescriptor]) -> Self {
        let mut tiled = ranges.to_vec();
        tiled.sort_by(|a, b| a.start.cmp(&b.start));
        let directory = Directory { tiled, pending: Vec::new() };
        directory.check();
        directory
    }

    /// The ranges, in key order, tiling the key space.
    pub fn ranges(&self) -> &[RangeDescriptor] {
        &self.tiled
    }

    /// Descriptors known but not tiled yet, in key order.
    pub fn pending(&self) -> &[RangeDescriptor] {
        &self.pending
    }

    /// The range of `id`, if tiled.
    pub fn find(&self, id: GroupId) -> Option<&RangeDescriptor> {
        self.tiled.iter().find(|r| r.id == id)
    }

    /// Whether `d` would change anything: it is a span, and newer than every descriptor
    /// known of its keys.
    pub fn is_news(&self, d: &RangeDescriptor) -> bool {
        let span = d.end.as_ref().is_none_or(|end| end > &d.start);
        let known = self.tiled.iter().chain(&self.pending);
        span && !known.filter(|r| r.overlaps(d)).any(|r| r.generation >= d.generation)
    }

    /// Takes in the descriptor a range reported (see the module's flow).
    pub fn learn(&mut self, d: &RangeDescriptor) -> Learned {
        self.learn_with(d, false)
    }

    /// `learn`; with `partial`, a component is tiled even when its pending descriptors do
    /// not cover it (`PlantedBug::DirectoryTiledPartly`).
    pub fn learn_with(&mut self, d: &RangeDescriptor, partial: bool) -> Learned {
        if d.end.as_ref().is_some_and(|end| end <= &d.start) {
            return Learned::Malformed;
        }
        if !self.is_news(d) {
            return Learned::Stale;
        }
        // Older pending descriptors it overlaps are beaten on some key for good.
        self.pending.retain(|p| !p.overlaps(d));
        if self.pending.len() >= PENDING_MAX {
            let oldest = (0..self.pending.len())
                .min_by_key(|&i| (self.pending[i].generation, self.pending[i].start.clone()))
                .expect("the pending list is full, so not empty");
            self.pending.remove(oldest);
        }
        let at = self.pending.partition_point(|p| p.start < d.start);
        self.pending.insert(at, d.clone());
        let learned = self.tile_component_of(d, partial);
        if !partial {
            self.check();
        }
        learned
    }

    /// Replaces the tiled descriptors of `d`'s component by its pending ones if these
    /// cover them exactly.
    fn tile_component_of(&mut self, d: &RangeDescriptor, partial: bool) -> Learned {
        let mut span = Span::of(d);
        loop {
            let mut grew = false;
            for r in self.tiled.iter().chain(&self.pending) {
                if span.overlaps(r) {
                    grew |= span.take_in(r);
                }
            }
            if !grew {
                break;
            }
        }
        let newer: Vec<&RangeDescriptor> = self.pending.iter().filter(|p| span.overlaps(p)).collect();
        if !partial && !tile(&newer, &span) {
            crate::sometimes!("directory_report_waits");
            return Learned::Pending;
        }
        let placed: Vec<RangeDescriptor> = newer.into_iter().cloned().collect();
        let before = self.tiled.len();
        self.tiled.retain(|r| !span.overlaps(r));
        let replaced = before - self.tiled.len();
        self.pending.retain(|p| !span.overlaps(p));
        let count = placed.len();
        self.tiled.extend(placed);
        self.tiled.sort_by(|a, b| a.start.cmp(&b.start));
        Learned::Tiled { replaced, placed: count }
    }

    fn check(&self) {
        assert!(!self.tiled.is_empty(), "a directory holds a range");
        // The least stored key: empty (range sharding) or slot 0's (hash sharding).
        let first = &self.tiled[0];
        assert!(first.start.iter().all(|&b| b == 0), "the first range starts at the least key: {first:?}");
        for pair in self.tiled.windows(2) {
            assert_eq!(pair[0].end.as_ref(), Some(&pair[1].start), "tiled ranges touch: {pair:?}");
        }
        assert_eq!(self.tiled.last().and_then(|r| r.end.as_ref()), None, "the last range runs to the end");
        let ids: BTreeSet<GroupId> = self.tiled.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), self.tiled.len(), "a range is tiled once");
        for pair in self.pending.windows(2) {
            assert!(!pair[0].overlaps(&pair[1]), "pending descriptors are disjoint: {pair:?}");
            assert!(pair[0].start < pair[1].start, "pending descriptors are in key order");
        }
        for p in &self.pending {
            for t in self.tiled.iter().filter(|t| t.overlaps(p)) {
                assert!(
                    p.generation > t.generation,
                    "a pending descriptor is newer than what it overlaps: {p:?} {t:?}"
                );
            }
        }
        assert!(self.pending.len() <= PENDING_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Keyspace;

    fn initial() -> Directory {
        Directory::new(Keyspace::ranged(vec![b"m".to_vec()]).unwrap().place(&[1, 2, 3], 3).unwrap().ranges())
    }

    fn ids(d: &Directory) -> Vec<(GroupId, u64)> {
        d.ranges().iter().map(|r| (r.id, r.generation)).collect()
    }

    #[test]
    fn a_split_reported_half_by_half_in_either_order_is_tiled_once_both_are_known() {
        let start = initial();
        let parent = start.find(1).unwrap().clone();
        let (left, right) = parent.split(b"f", 900).unwrap();
        for (first, second) in [(&left, &right), (&right, &left)] {
            let mut d = start.clone();
            assert_eq!(d.learn(first), Learned::Pending, "half a split leaves a gap: it waits");
            assert_eq!(ids(&d), ids(&start), "the tiling is as it was");
            assert_eq!(d.learn(first), Learned::Stale, "the same report again changes nothing");
            assert_eq!(d.learn(second), Learned::Tiled { replaced: 1, placed: 2 });
            assert_eq!(ids(&d)[..2], [(1, 2), (900, 2)]);
            assert!(d.pending().is_empty());
            assert_eq!(d.learn(&parent), Learned::Stale, "the parent is older than both halves");
        }
    }

    #[test]
    fn a_newer_descriptor_of_a_tiled_range_replaces_it_at_once() {
        let mut d = initial();
        let moved = d.find(1).unwrap().with_replica(4).unwrap();
        assert_eq!(d.learn(&moved), Learned::Tiled { replaced: 1, placed: 1 });
        assert_eq!(d.find(1), Some(&moved));
        let not_a_span = RangeDescriptor { end: Some(Vec::new()), generation: 9, ..moved };
        assert_eq!(d.learn(&not_a_span), Learned::Malformed);
    }

    #[test]
    fn reports_of_two_splits_out_of_order_wait_for_the_range_that_fills_the_gap() {
        // Range 1 [, m) splits at f (making 900 [f, m)), then again at c (making 901
        // [c, f)). The directory hears 1's newest and 901 first, then 900.
        let mut d = initial();
        let (l1, r900) = d.find(1).unwrap().split(b"f", 900).unwrap();
        let (l2, r901) = l1.split(b"c", 901).unwrap();
        assert_eq!(d.learn(&l2), Learned::Pending);
        assert_eq!(d.learn(&r901), Learned::Pending, "[f, m) is still unknown");
        assert_eq!(d.learn(&l1), Learned::Stale, "an older descriptor of 1 overlaps newer pending ones");
        assert_eq!(d.learn(&r900), Learned::Tiled { replaced: 1, placed: 3 });
        assert_eq!(ids(&d)[..3], [(1, 3), (901, 3), (900, 2)]);
    }

    #[test]
    fn a_pending_descriptor_beaten_by_a_newer_one_goes() {
        // 900 [f, m) is reported, then is superseded by its own newer descriptor before
        // range 1's half arrives: only the newest is tiled.
        let mut d = initial();
        let (left, right) = d.find(1).unwrap().split(b"f", 900).unwrap();
        let right_moved = right.with_replica(4).unwrap();
        assert_eq!(d.learn(&right), Learned::Pending);
        assert_eq!(d.learn(&right_moved), Learned::Pending);
        assert_eq!(d.pending(), std::slice::from_ref(&right_moved));
        assert_eq!(d.learn(&left), Learned::Tiled { replaced: 1, placed: 2 });
        assert_eq!(d.find(900), Some(&right_moved));
    }

    #[test]
    fn a_partial_tiling_leaves_a_gap() {
        let mut d = initial();
        let (_, right) = d.find(1).unwrap().split(b"f", 900).unwrap();
        assert_eq!(d.learn_with(&right, true), Learned::Tiled { replaced: 1, placed: 1 });
        assert_eq!(d.ranges()[0].start, b"f", "[, f) has no range: what the planted bug does");
    }

    #[test]
    fn the_pending_list_is_bounded_and_gives_up_its_oldest() {
        let mut d = initial();
        let parent = d.find(2).unwrap().clone();
        // Many disjoint right halves of range 2 at growing generations, none tiling it.
        let mut last = None;
        for i in 0..PENDING_MAX as u32 + 10 {
            let at = [b'n', (i >> 8) as u8, i as u8, 1];
            let piece = RangeDescriptor {
                id: 1_000 + u64::from(i),
                start: at.to_vec(),
                end: Some([b'n', (i >> 8) as u8, i as u8, 2].to_vec()),
                generation: 2 + u64::from(i),
                replicas: parent.replicas.clone(),
            };
            assert_eq!(d.learn(&piece), Learned::Pending);
            last = Some(piece);
        }
        assert_eq!(d.pending().len(), PENDING_MAX);
        assert!(d.pending().contains(&last.unwrap()), "the newest stays");
        assert_eq!(d.pending().iter().map(|p| p.generation).min(), Some(12), "the oldest went");
    }
}
