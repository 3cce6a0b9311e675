//! Which range owns a key, and so which Raft group serves a request, and on which nodes.
//!
//! The key space is tiled by ranges (`descriptor.rs`), each a span of stored keys served
//! by one Raft group on its replicas. How a key becomes a stored key is the cluster's
//! sharding mode (`sharding.rs`): by Redis Cluster slot (`hash`, ranges are slot
//! intervals) or as it is (`range`, ranges are key intervals in byte order). Today the
//! tiling is fixed when the cluster is created (equal slot intervals, or the split points
//! given) and each range's replicas are placed round-robin over the initial voters; after
//! the ranges of user keys comes the meta range, over the system span, which holds the
//! directory of ranges (`crate::meta`). Ranges split and move through their own logs.
//!
//! ```text
//!   keys of a request ─▶ stored key (sharding) ─▶ the range whose span holds it ─▶ all the same? ─yes─▶ that range
//!                                                                                    └─no──▶ CrossGroup (needs transactions)
//! ```

mod descriptor;
mod sharding;
mod slot;

pub use descriptor::RangeDescriptor;
pub use sharding::{Sharding, UnknownSharding};
pub use slot::{slot, SLOTS};

use crate::raft::PlantedBug;
use crate::{GroupId, NodeId};

/// How the key space is cut into ranges, and where each range's replicas are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    /// The bug routing is built with, if any (the simulator's planted bugs).
    planted_bug: Option<PlantedBug>,
    sharding: Sharding,
    /// In key order, tiling the stored keys: the first starts at the least one, each
    /// ends where the next starts, the last runs to the end. As created, range `i` (from
    /// 0) is group `i + 1`; splits add ranges with derived ids (`RangeDescriptor::right_id`).
    ranges: Vec<RangeDescriptor>,
}

/// Most ranges one cluster is cut into (and so most groups one node hosts).
pub const GROUPS_MAX: u64 = 256;

/// The meta range: the range of the system span, where the cluster's directory of ranges
/// lives (`crate::meta`). Its id is no initial range's (those are `GROUPS_MAX` and below)
/// and no split's (`RangeDescriptor::right_id`).
pub const META_RANGE: GroupId = GROUPS_MAX + 1;

/// Where the system span starts: stored keys from here to the end are the system's, and
/// no user key is stored there (FoundationDB reserves keys from `\xff` the same way). In
/// hash sharding a stored key starts with its slot, below `0x40`; in range sharding, user
/// keys beginning with byte `0xff` are refused (`Unroutable::Reserved`).
pub const SYSTEM_START: &[u8] = &[0xff];

/// Most replicas of the meta range: it holds the cluster's truth, so it is on 5 nodes
/// where there are 5, like etcd's recommended cluster (3 where there are 3 or 4).
pub const META_REPLICAS_MAX: usize = 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyspaceError {
    #[error("{0} groups: expected 1 to {GROUPS_MAX}")]
    Groups(u64),
    #[error("split points must be non-empty and strictly increasing: {0:?} after {1:?}")]
    SplitPoints(Vec<u8>, Vec<u8>),
    #[error("replication factor {factor}: expected 1 to the {voters} initial voters")]
    ReplicationFactor { factor: usize, voters: usize },
    #[error("split point {0:?} is in the system span (keys beginning with byte 0xff are reserved)")]
    ReservedSplitPoint(Vec<u8>),
}

/// Why a request has no single group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unroutable {
    /// Its keys live in different groups.
    CrossGroup,
    /// A key is stored in the system span, where no user key may be (`SYSTEM_START`).
    Reserved,
}

impl Keyspace {
    /// `groups` equal intervals of the slots (hash sharding), not placed yet (`place`).
    pub fn hashed(groups: u64) -> Result<Self, KeyspaceError> {
        const { assert!(GROUPS_MAX <= SLOTS as u64, "a group owns at least one slot") };
        if !(1..=GROUPS_MAX).contains(&groups) {
            return Err(KeyspaceError::Groups(groups));
        }
        let first_slot = |g: u64| ((g - 1) * u64::from(SLOTS) / groups) as u16;
        let bounds = (2..=groups).map(|g| first_slot(g).to_be_bytes().to_vec()).collect();
        Ok(Keyspace::tiled(Sharding::Hash, 0u16.to_be_bytes().to_vec(), bounds))
    }

    /// Ranges of keys in byte order (range sharding), cut at `split_points`, not placed
    /// yet (`place`): `k` split points make `k + 1` ranges.
    pub fn ranged(split_points: Vec<Vec<u8>>) -> Result<Self, KeyspaceError> {
        let ranges = split_points.len() as u64 + 1;
        if ranges > GROUPS_MAX {
            return Err(KeyspaceError::Groups(ranges));
        }
        let mut previous: &[u8] = b"";
        for point in &split_points {
            if point.as_slice() >= SYSTEM_START {
                return Err(KeyspaceError::ReservedSplitPoint(point.clone()));
            }
            if point.as_slice() <= previous {
                return Err(KeyspaceError::SplitPoints(point.clone(), previous.to_vec()));
            }
            previous = point;
        }
        Ok(Keyspace::tiled(Sharding::Range, Vec::new(), split_points))
    }

    /// Ranges between consecutive `bounds` (`first`, the least stored key, before the
    /// first, the system span after the last), then the meta range over the system span,
    /// at generation 1, without replicas.
    fn tiled(sharding: Sharding, first: Vec<u8>, bounds: Vec<Vec<u8>>) -> Self {
        let starts: Vec<Vec<u8>> = std::iter::once(first).chain(bounds.iter().cloned()).collect();
        let ends = bounds.into_iter().map(Some).chain(std::iter::once(Some(SYSTEM_START.to_vec())));
        let user = starts.into_iter().zip(ends).enumerate().map(|(i, (start, end))| RangeDescriptor {
            id: i as GroupId + 1,
            start,
            end,
            generation: 1,
            replicas: Vec::new(),
        });
        let meta = RangeDescriptor {
            id: META_RANGE,
            start: SYSTEM_START.to_vec(),
            end: None,
            generation: 1,
            replicas: Vec::new(),
        };
        let ranges = user.chain(std::iter::once(meta)).collect();
        let keyspace = Keyspace { planted_bug: None, sharding, ranges };
        keyspace.check_tiling();
        keyspace
    }

    /// Routing with `bug` planted (see `PlantedBug::RangeStartRoutedLeft`).
    pub fn with_planted_bug(mut self, bug: Option<PlantedBug>) -> Self {
        self.planted_bug = bug;
        self
    }

    /// Places `replication_factor` replicas of every range on distinct nodes of `voters`,
    /// dealt round-robin (the replicas of range `i` take the next `replication_factor`
    /// turns after range `i - 1`'s), so that every node hosts as many replicas as any
    /// other, give or take one. The meta range goes on the first voters: 5 of them where
    /// there are 5, 3 where there are 3 or 4, else all (an odd count: a fourth voter
    /// tolerates no more failures than three).
    pub fn place(mut self, voters: &[NodeId], replication_factor: usize) -> Result<Self, KeyspaceError> {
        if replication_factor == 0 || replication_factor > voters.len() {
            return Err(KeyspaceError::ReplicationFactor { factor: replication_factor, voters: voters.len() });
        }
        for (i, range) in self.ranges.iter_mut().filter(|r| r.id != META_RANGE).enumerate() {
            let turn = i * replication_factor;
            range.replicas = (turn..turn + replication_factor).map(|t| voters[t % voters.len()]).collect();
        }
        let meta_replicas = match voters.len().min(META_REPLICAS_MAX) {
            4 => 3,
            n => n,
        };
        let meta = self.ranges.iter_mut().find(|r| r.id == META_RANGE).expect("a keyspace has its meta range");
        meta.replicas = voters[..meta_replicas].to_vec();
        Ok(self)
    }

    pub fn sharding(&self) -> Sharding {
        self.sharding
    }

    /// The groups, in key order of their first range (a stale piece, see `learn`, is
    /// not listed again).
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        let mut seen = std::collections::BTreeSet::new();
        self.ranges.iter().map(|r| r.id).filter(move |&g| seen.insert(g))
    }

    /// Every range in key order, the meta range last.
    pub fn ranges(&self) -> &[RangeDescriptor] {
        &self.ranges
    }

    /// The ranges of user keys, in key order: all but the meta range (which is last, at
    /// the system span, and never split).
    pub fn user_ranges(&self) -> &[RangeDescriptor] {
        let (meta, user) = self.ranges.split_last().expect("a keyspace has its meta range");
        debug_assert_eq!(meta.id, META_RANGE);
        user
    }

    /// The groups of `user_ranges`, in key order (a stale piece listed once).
    pub fn user_groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups().filter(|&g| g != META_RANGE)
    }

    pub fn descriptor(&self, group: GroupId) -> &RangeDescriptor {
        self.find(group).unwrap_or_else(|| panic!("group {group} is not in the keyspace"))
    }

    /// The range of `group`, if this map knows it.
    pub fn find(&self, group: GroupId) -> Option<&RangeDescriptor> {
        self.ranges.iter().filter(|r| r.id == group).max_by_key(|r| r.generation)
    }

    /// Takes in `range`, newer than what this map holds of its span: the ranges it
    /// overlaps, if all older, give up what it covers (a range cut to nothing goes), and
    /// it takes their place. A descriptor not newer than every range it overlaps changes
    /// nothing: the map never goes back. The map stays a tiling, but what an overlapped
    /// range keeps outside `range` is a stale piece: its owner is not known here, and
    /// requests for it go to the old range, whose replicas answer who owns it now. So an
    /// id may appear twice; `find` gives its newest descriptor. Returns whether it changed.
    pub fn learn(&mut self, range: &RangeDescriptor) -> bool {
        if !self.ranges.iter().filter(|r| r.overlaps(range)).all(|r| r.generation < range.generation) {
            return false;
        }
        let mut tiled = Vec::with_capacity(self.ranges.len() + 2);
        for r in self.ranges.drain(..) {
            if !r.overlaps(range) {
                tiled.push(r);
                continue;
            }
            if r.start < range.start {
                tiled.push(RangeDescriptor { end: Some(range.start.clone()), ..r.clone() });
            }
            if let Some(end) = &range.end {
                if r.end.as_ref().is_none_or(|e| e > end) {
                    tiled.push(RangeDescriptor { start: end.clone(), ..r });
                }
            }
        }
        tiled.push(range.clone());
        tiled.sort_by(|a, b| a.start.cmp(&b.start));
        self.ranges = tiled;
        self.check_tiling();
        true
    }

    /// The ranges tile the stored keys: in key order, each ending where the next starts,
    /// the last to the end.
    fn check_tiling(&self) {
        assert!(!self.ranges.is_empty(), "a keyspace has a range");
        for pair in self.ranges.windows(2) {
            assert_eq!(pair[0].end.as_ref(), Some(&pair[1].start), "ranges touch: {pair:?}");
        }
        assert_eq!(self.ranges.last().and_then(|r| r.end.as_ref()), None, "the last range runs to the end");
    }

    /// Where `key` is stored (see `Sharding`).
    pub fn storage_key(&self, key: &[u8]) -> Vec<u8> {
        self.sharding.storage_key(key)
    }

    /// The group whose range holds `key`.
    pub fn group_of_key(&self, key: &[u8]) -> GroupId {
        let stored = self.storage_key(key);
        // The last range that starts at or before the key: the first starts at the
        // least stored key, so there is one. (Routing is not trusted alone: a range
        // applies only keys its span holds, `node::group_data`.)
        let after = if PlantedBug::RangeStartRoutedLeft.is_active(self.planted_bug) {
            self.ranges.partition_point(|r| r.start.as_slice() < stored.as_slice()).max(1)
        } else {
            self.ranges.partition_point(|r| r.start.as_slice() <= stored.as_slice())
        };
        self.ranges[after - 1].id
    }

    /// The stored keys of `group`: `start <= key < end` (`end: None`: to the end).
    pub fn span(&self, group: GroupId) -> (Vec<u8>, Option<Vec<u8>>) {
        let range = self.descriptor(group);
        (range.start.clone(), range.end.clone())
    }

    /// The one group that can serve a request on `keys` alone: every key lives there. No
    /// keys (a request about a whole group's state) routes only where there is one group.
    pub fn route(&self, keys: &[&[u8]]) -> Result<GroupId, Unroutable> {
        if keys.iter().any(|k| self.storage_key(k).as_slice() >= SYSTEM_START) {
            return Err(Unroutable::Reserved);
        }
        if let [only] = self.user_ranges() {
            return Ok(only.id);
        }
        let first = self.group_of_key(keys.first().ok_or(Unroutable::CrossGroup)?);
        if keys.iter().all(|k| self.group_of_key(k) == first) {
            Ok(first)
        } else {
            Err(Unroutable::CrossGroup)
        }
    }

    /// Some key that `group` owns, for probes that must reach every group: the first
    /// `prefix<i>` it owns, or else (a key range that holds none of them) its first key.
    pub fn key_in(&self, group: GroupId, prefix: &str) -> Vec<u8> {
        const TRIES: u64 = 100_000;
        let range = self.descriptor(group);
        let named = (0..TRIES).map(|i| format!("{prefix}{i}").into_bytes()).find(|k| self.group_of_key(k) == group);
        named.unwrap_or_else(|| {
            assert_eq!(self.sharding, Sharding::Range, "every slot interval holds one of {TRIES} keys");
            range.start.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_routes_to_one_group_only_if_all_its_keys_live_there() {
        let ks = Keyspace::hashed(3).unwrap();
        let (a, b) = (ks.key_in(1, "k"), ks.key_in(2, "k"));
        assert_eq!(ks.route(&[&a]), Ok(1));
        assert_eq!(ks.route(&[&a, &a]), Ok(1));
        assert_eq!(ks.route(&[&a, &b]), Err(Unroutable::CrossGroup));
        assert_eq!(ks.route(&[]), Err(Unroutable::CrossGroup));
        assert_eq!(ks.route(&[&b]), Ok(2));
        assert_eq!(Keyspace::hashed(1).unwrap().route(&[]), Ok(1), "one user range, and the meta range");
        assert_eq!(ks.route(&[b"{t}a", b"{t}b"]), ks.route(&[b"t"]), "one tag, one group");
    }

    #[test]
    fn groups_tile_the_slots_and_their_keys_are_their_span() {
        for groups in [1, 2, 3, 7, 256] {
            let ks = Keyspace::hashed(groups).unwrap();
            let mut seen = vec![0u32; groups as usize];
            for i in 0..4_000 {
                let key = format!("key{i}").into_bytes();
                let g = ks.group_of_key(&key);
                seen[(g - 1) as usize] += 1;
                let (start, end) = ks.span(g);
                let stored = ks.storage_key(&key);
                assert!(stored >= start, "{groups} groups: key{i} before group {g}'s span");
                assert!(end.is_none_or(|e| stored < e), "{groups} groups: key{i} after group {g}'s span");
                assert_eq!(ks.sharding().user_key(&stored), key.as_slice());
            }
            let mean = 4_000 / groups as u32;
            if groups <= 7 {
                assert!(seen.iter().all(|&n| n > mean * 3 / 4 && n < mean * 5 / 4), "{groups}: {seen:?}");
            }
            for g in 1..groups {
                assert_eq!(ks.span(g).1, Some(ks.span(g + 1).0), "groups {g} and {} touch", g + 1);
            }
            assert_eq!(ks.span(1).0, vec![0, 0]);
            assert_eq!(ks.span(groups).1.as_deref(), Some(SYSTEM_START), "the system span follows");
            assert_eq!(ks.span(META_RANGE), (SYSTEM_START.to_vec(), None));
        }
    }

    #[test]
    fn the_number_of_groups_is_bounded() {
        assert_eq!(Keyspace::hashed(0), Err(KeyspaceError::Groups(0)));
        assert_eq!(Keyspace::hashed(GROUPS_MAX + 1), Err(KeyspaceError::Groups(GROUPS_MAX + 1)));
        assert_eq!(Keyspace::hashed(GROUPS_MAX).unwrap().user_groups().count() as u64, GROUPS_MAX);
    }

    #[test]
    fn split_points_cut_keys_in_byte_order() {
        let ks = Keyspace::ranged(vec![b"b".to_vec(), b"m".to_vec()]).unwrap();
        assert_eq!(ks.groups().collect::<Vec<_>>(), [1, 2, 3, META_RANGE]);
        assert_eq!(ks.group_of_key(b""), 1);
        assert_eq!(ks.group_of_key(b"azz"), 1);
        assert_eq!(ks.group_of_key(b"b"), 2, "a split point starts its range");
        assert_eq!(ks.group_of_key(b"lzz"), 2);
        assert_eq!(ks.group_of_key(b"m"), 3);
        assert_eq!(ks.group_of_key(b"\xfe\xff"), 3);
        assert_eq!(ks.route(&[b"\xff"]), Err(Unroutable::Reserved), "the system span is no user's");
        assert_eq!(ks.route(&[b"a", b"\xffmeta"]), Err(Unroutable::Reserved));
        assert_eq!(
            Keyspace::hashed(2).unwrap().route(&[b"\xff"]).map(|_| ()),
            Ok(()),
            "a hashed key is stored by slot"
        );
        assert_eq!(
            Keyspace::ranged(vec![b"\xffa".to_vec()]),
            Err(KeyspaceError::ReservedSplitPoint(b"\xffa".to_vec()))
        );
        assert_eq!(ks.span(2), (b"b".to_vec(), Some(b"m".to_vec())));
        assert_eq!(ks.route(&[b"a", b"c"]), Err(Unroutable::CrossGroup));
        assert_eq!(ks.descriptor(2).generation, 1);
        assert_eq!(Keyspace::ranged(vec![]).unwrap().user_groups().count(), 1);
        assert_eq!(
            Keyspace::ranged(vec![b"m".to_vec(), b"b".to_vec()]),
            Err(KeyspaceError::SplitPoints(b"b".to_vec(), b"m".to_vec()))
        );
        assert!(matches!(Keyspace::ranged(vec![Vec::new()]), Err(KeyspaceError::SplitPoints(..))), "not empty");
        let narrow = Keyspace::ranged(vec![b"a".to_vec(), b"a\x00".to_vec()]).unwrap();
        assert_eq!(narrow.key_in(2, "probe"), b"a", "a range without a probe<i> is probed at its start");
        assert_eq!(narrow.group_of_key(&narrow.key_in(3, "probe")), 3);
    }

    #[test]
    fn a_map_learns_newer_ranges_and_never_goes_back() {
        let mut ks = Keyspace::ranged(vec![b"m".to_vec()]).unwrap().place(&[1, 2, 3], 3).unwrap();
        let parent = ks.descriptor(1).clone();
        assert_eq!(parent.split(b"", 9), None, "a split at the start leaves an empty half");
        assert_eq!(parent.split(b"m", 9), None, "a split at the end too");
        let (left, right) = parent.split(b"f", parent.right_id()).unwrap();
        assert_eq!((left.id, left.generation, left.end.as_deref()), (1, 2, Some(&b"f"[..])));
        assert_eq!((right.start.as_slice(), right.end.as_deref(), right.generation), (&b"f"[..], Some(&b"m"[..]), 2));
        assert!(right.id > GROUPS_MAX, "a split's id is not an initial range's");
        assert_ne!(right.id, left.split(b"c", left.right_id()).unwrap().1.id, "nor another split's");

        let mut stale = ks.clone();
        assert!(ks.learn(&right), "the right half is news");
        assert_eq!(ks.group_of_key(b"g"), right.id);
        assert_eq!(ks.group_of_key(b"a"), 1, "the rest stays with the parent, a stale piece");
        assert_eq!(ks.descriptor(1).generation, 1, "the parent is known as it was, but for its span");
        assert_eq!(ks.descriptor(1).end.as_deref(), Some(&b"f"[..]));
        assert!(ks.learn(&left));
        assert_eq!(ks.descriptor(1), &left);
        assert_eq!(ks.user_groups().collect::<Vec<_>>(), [1, right.id, 2]);
        assert!(!ks.learn(&parent), "an older descriptor changes nothing");
        assert!(!ks.learn(&right), "nor the same one again");
        assert!(stale.learn(&left), "in either order");
        assert_eq!(stale.group_of_key(b"g"), 1, "the right half is a stale piece of the parent");
        assert_eq!(stale.user_groups().collect::<Vec<_>>(), [1, 2], "listed once");
        assert!(stale.learn(&right));
        assert_eq!(stale, ks);
    }

    #[test]
    fn replicas_are_placed_on_distinct_nodes_and_spread_evenly() {
        let voters = [1, 2, 3, 4, 5, 6, 7];
        let ks = Keyspace::hashed(10).unwrap().place(&voters, 3).unwrap();
        let mut hosted = [0; 8];
        for range in ks.user_ranges() {
            let distinct: std::collections::BTreeSet<_> = range.replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{range:?}");
            for &n in &range.replicas {
                hosted[n as usize] += 1;
            }
        }
        let (min, max) = (hosted[1..].iter().min().unwrap(), hosted[1..].iter().max().unwrap());
        assert!(max - min <= 1, "{hosted:?}");
        assert_eq!(
            Keyspace::hashed(1).unwrap().place(&voters, 8),
            Err(KeyspaceError::ReplicationFactor { factor: 8, voters: 7 })
        );
        assert!(Keyspace::hashed(1).unwrap().place(&voters, 0).is_err());
        let meta = |voters: &[NodeId]| {
            Keyspace::hashed(1).unwrap().place(voters, 1).unwrap().descriptor(META_RANGE).replicas.clone()
        };
        assert_eq!(meta(&voters), [1, 2, 3, 4, 5], "the meta range on the first five");
        assert_eq!(meta(&[1, 2, 3, 4]), [1, 2, 3], "an odd count");
        assert_eq!(meta(&[1, 2]), [1, 2]);
    }
}
