//! When a range's leader splits the range on its own: once it holds more than
//! `range_bytes_max` (size), or serves more than `range_ops_per_s_max` requests a second
//! for `HOT_WINDOWS_MIN` windows in a row (load). A sans-IO core: the leader feeds it the
//! keys of the requests it takes and its applied size, and it answers with what it wants
//! next — a page of the range's data to read, or a split before a key.
//!
//! ```text
//!   request keys ─▶ observe ─▶ ops per window ─ hot for 2 windows? ─▶ sampled keys ─▶ balanced key? ─▶ Split(load)
//!   applied size ─▶ poll ─ bytes > max? ─▶ Read pages in key order until half the bytes ─▶ Split(size)
//! ```
//!
//! Why each choice:
//! - A size split cuts where half the bytes are behind, found by reading the span a page
//!   at a time over several turns: the event loop never stops for a whole range, and no
//!   more than a page is in memory.
//! - A load split cuts at a key drawn from the requests (a seeded reservoir sample), not
//!   at the middle of the span: a hot range's load is rarely spread like its keys. The key
//!   must leave at least a quarter of the samples on each side; a single hot key (or one
//!   hash slot) cannot be split, and the trigger does not try.
//! - After proposing, it waits `SPLIT_COOLDOWN_MS` (and the node resets it when the range
//!   changes): a split takes a round trip to apply, and the halves' loads start afresh.
//!
//! Contract: `poll` never asks for a split while not `eligible` (the node says so: it
//! leads the range, no move or membership change runs, the node hosts fewer ranges than
//! its limit), and never asks for one at the range's start (no empty half).

use super::group_data::DataSize;
use crate::keyspace::Sharding;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The thresholds (0: that trigger is off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPolicy {
    pub range_bytes_max: u64,
    pub range_ops_per_s_max: u64,
}

/// How long one load window lasts.
pub const LOAD_WINDOW_MS: u64 = 1_000;
/// Windows in a row over the threshold before a load split: a burst is not a hot range.
pub const HOT_WINDOWS_MIN: u32 = 2;
/// Keys kept in the load sample, and the fewest a load split is chosen from.
pub const SAMPLES_MAX: usize = 64;
pub const SAMPLES_MIN: usize = 16;
/// After asking for a split, the trigger waits this long before asking again.
pub const SPLIT_COOLDOWN_MS: u64 = 2_000;
/// Pairs read per page by a size split's search.
pub const PAGE_PAIRS_MAX: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitReason {
    Size,
    Load,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// Read up to `PAGE_PAIRS_MAX` stored pairs of the range from stored key `from` on,
    /// and hand them to `on_page`.
    Read { from: Vec<u8> },
    /// Split the range before user key `key`.
    Split { key: Vec<u8>, reason: SplitReason },
}

/// A size split's search for the key half the bytes are behind.
#[derive(Clone, Debug)]
struct Search {
    /// Where the next page starts.
    from: Vec<u8>,
    /// Bytes to pass before the split key: half of the size when the search began.
    target_bytes: u64,
    passed_bytes: u64,
    /// The key found, to be asked for by the next `poll`.
    found: Option<Vec<u8>>,
}

pub struct SplitTrigger {
    policy: SplitPolicy,
    sharding: Sharding,
    /// Where the range's stored keys start (a split there would leave an empty half).
    start: Vec<u8>,
    rng: ChaCha8Rng,
    window_start_ms: u64,
    window_ops: u64,
    hot_windows: u32,
    /// The last closed window's rate.
    ops_per_s: u64,
    /// Stored keys sampled from the requests since the range got hot (reservoir).
    samples: Vec<Vec<u8>>,
    sampled_of: u64,
    search: Option<Search>,
    quiet_until_ms: u64,
}

impl SplitTrigger {
    pub fn new(now_ms: u64, policy: SplitPolicy, sharding: Sharding, start: Vec<u8>, seed: u64) -> Self {
        SplitTrigger {
            policy,
            sharding,
            start,
            rng: ChaCha8Rng::seed_from_u64(seed),
            window_start_ms: now_ms,
            window_ops: 0,
            hot_windows: 0,
            ops_per_s: 0,
            samples: Vec::new(),
            sampled_of: 0,
            search: None,
            quiet_until_ms: 0,
        }
    }

    /// Forgets load and any search: the range changed (split, or the leader changed).
    pub fn reset(&mut self, now_ms: u64, start: Vec<u8>) {
        self.start = start;
        self.window_start_ms = now_ms;
        self.window_ops = 0;
        self.hot_windows = 0;
        self.ops_per_s = 0;
        self.samples.clear();
        self.sampled_of = 0;
        self.search = None;
    }

    /// Requests a second in the last closed window.
    pub fn ops_per_s(&self) -> u64 {
        self.ops_per_s
    }

    /// A request for user keys `keys`, taken by the leader.
    pub fn observe(&mut self, now_ms: u64, keys: &[&[u8]]) {
        self.close_windows(now_ms);
        self.window_ops += 1;
        let Some(key) = keys.first() else { return };
        if self.policy.range_ops_per_s_max == 0 || self.hot_windows == 0 {
            return;
        }
        // Reservoir sampling (Vitter's algorithm R): every request since the range got
        // hot has the same chance of being in the sample.
        self.sampled_of += 1;
        let stored = self.sharding.storage_key(key);
        if self.samples.len() < SAMPLES_MAX {
            self.samples.push(stored);
        } else {
            let slot = self.rng.gen_range(0..self.sampled_of);
            if let Some(kept) = self.samples.get_mut(slot as usize) {
                *kept = stored;
            }
        }
    }

    fn close_windows(&mut self, now_ms: u64) {
        let elapsed_ms = now_ms.saturating_sub(self.window_start_ms);
        if elapsed_ms < LOAD_WINDOW_MS {
            return;
        }
        self.ops_per_s = self.window_ops * 1_000 / elapsed_ms;
        let hot = self.policy.range_ops_per_s_max > 0 && self.ops_per_s > self.policy.range_ops_per_s_max;
        if hot {
            self.hot_windows = self.hot_windows.saturating_add(1);
        } else {
            self.hot_windows = 0;
            self.samples.clear();
            self.sampled_of = 0;
        }
        self.window_start_ms = now_ms;
        self.window_ops = 0;
    }

    /// What the trigger wants now, for a range of `size` (as applied here).
    pub fn poll(&mut self, now_ms: u64, size: DataSize, eligible: bool) -> Option<Want> {
        self.close_windows(now_ms);
        if !eligible || now_ms < self.quiet_until_ms {
            self.search = None;
            return None;
        }
        if let Some(search) = &mut self.search {
            let Some(key) = search.found.take() else {
                return Some(Want::Read { from: search.from.clone() });
            };
            self.search = None;
            return Some(self.asked(now_ms, key, SplitReason::Size));
        }
        if self.policy.range_bytes_max > 0 && size.bytes > self.policy.range_bytes_max {
            let search =
                Search { from: self.start.clone(), target_bytes: size.bytes / 2, passed_bytes: 0, found: None };
            let want = Want::Read { from: search.from.clone() };
            self.search = Some(search);
            return Some(want);
        }
        if self.hot_windows >= HOT_WINDOWS_MIN && self.samples.len() >= SAMPLES_MIN {
            let key = self.balanced_key();
            self.samples.clear();
            self.sampled_of = 0;
            self.hot_windows = 0;
            return match key {
                Some(key) => Some(self.asked(now_ms, key, SplitReason::Load)),
                None => {
                    // One hot key (or slot): no split helps. Look again after a pause.
                    self.quiet_until_ms = now_ms + SPLIT_COOLDOWN_MS;
                    None
                }
            };
        }
        None
    }

    fn asked(&mut self, now_ms: u64, stored: Vec<u8>, reason: SplitReason) -> Want {
        self.quiet_until_ms = now_ms + SPLIT_COOLDOWN_MS;
        Want::Split { key: self.sharding.user_key(&stored).to_vec(), reason }
    }

    /// A page the search asked for (`Want::Read`): stored pairs in key order from its
    /// `from`; fewer than `PAGE_PAIRS_MAX` means the span ended.
    pub fn on_page(&mut self, now_ms: u64, pairs: &[(Vec<u8>, Vec<u8>)]) {
        let Some(search) = &mut self.search else { return };
        for (stored, value) in pairs {
            search.passed_bytes += DataSize::of_pair(stored, value).bytes;
            if search.passed_bytes >= search.target_bytes {
                let point = self.sharding.split_point(self.sharding.user_key(stored));
                if point.as_slice() > self.start.as_slice() {
                    search.found = Some(stored.clone());
                    return;
                }
            }
        }
        match pairs.last() {
            Some((last, _)) if pairs.len() >= PAGE_PAIRS_MAX => {
                search.from = last.clone();
                search.from.push(0);
            }
            // The span ended before a key past its start: nothing to cut (one hash slot
            // holds it all, or the data shrank). Look again after a pause.
            _ => {
                self.search = None;
                self.quiet_until_ms = now_ms + SPLIT_COOLDOWN_MS;
            }
        }
    }

    /// The sampled key whose split point leaves the samples most evenly on both sides,
    /// if it leaves at least a quarter on each.
    fn balanced_key(&self) -> Option<Vec<u8>> {
        let mut samples = self.samples.clone();
        samples.sort();
        let points: Vec<Vec<u8>> =
            samples.iter().map(|s| self.sharding.split_point(self.sharding.user_key(s))).collect();
        let total = samples.len();
        let mut best: Option<(usize, usize)> = None;
        for (i, point) in points.iter().enumerate() {
            if point.as_slice() <= self.start.as_slice() || (i > 0 && points[i - 1] == *point) {
                continue;
            }
            // Sorted: the samples before the first with this point are left of it.
            let left = i;
            let right = total - i;
            if left.min(right) * 4 < total {
                continue;
            }
            let imbalance = left.abs_diff(right);
            if best.is_none_or(|(_, b)| imbalance < b) {
                best = Some((i, imbalance));
            }
        }
        best.map(|(i, _)| samples[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(bytes_max: u64, ops_max: u64) -> SplitTrigger {
        let policy = SplitPolicy { range_bytes_max: bytes_max, range_ops_per_s_max: ops_max };
        SplitTrigger::new(0, policy, Sharding::Range, Vec::new(), 7)
    }

    fn size(bytes: u64) -> DataSize {
        DataSize { keys: bytes / 10, bytes }
    }

    /// Ten-byte pairs `k000`..: key of four bytes, value of six.
    fn pairs(from: usize, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (from..from + n).map(|i| (format!("k{i:03}").into_bytes(), b"vvvvvv".to_vec())).collect()
    }

    #[test]
    fn a_range_under_both_thresholds_wants_nothing() {
        let mut t = trigger(1_000, 100);
        for ms in 0..3_000 {
            if ms % 20 == 0 {
                t.observe(ms, &[b"a"]);
            }
            assert_eq!(t.poll(ms, size(1_000), true), None);
        }
        assert_eq!(t.ops_per_s(), 50);
    }

    #[test]
    fn a_large_range_is_split_where_half_its_bytes_are_behind() {
        let mut t = trigger(1_000, 0);
        assert_eq!(t.poll(0, size(2_000), true), Some(Want::Read { from: Vec::new() }));
        t.on_page(0, &pairs(0, PAGE_PAIRS_MAX)[..150]);
        let want = t.poll(1, size(2_000), true);
        assert_eq!(want, Some(Want::Split { key: b"k099".to_vec(), reason: SplitReason::Size }), "100 pairs = 1,000 B");
        assert_eq!(t.poll(2, size(2_000), true), None, "quiet while the split applies");
    }

    #[test]
    fn a_size_search_reads_page_after_page() {
        let mut t = trigger(1_000, 0);
        let total = 3 * PAGE_PAIRS_MAX as u64 * 10;
        assert_eq!(t.poll(0, size(total), true), Some(Want::Read { from: Vec::new() }));
        t.on_page(0, &pairs(0, PAGE_PAIRS_MAX));
        let mut next = format!("k{:03}", PAGE_PAIRS_MAX - 1).into_bytes();
        next.push(0);
        assert_eq!(t.poll(1, size(total), true), Some(Want::Read { from: next }));
    }

    #[test]
    fn a_size_search_that_finds_no_key_past_the_start_gives_up_for_a_while() {
        let mut t = trigger(1_000, 0);
        t.poll(0, size(2_000), true);
        t.on_page(1, &pairs(0, 10));
        assert_eq!(t.poll(2, size(2_000), true), None);
        assert!(matches!(t.poll(1 + SPLIT_COOLDOWN_MS, size(2_000), true), Some(Want::Read { .. })));
    }

    #[test]
    fn nothing_is_wanted_while_not_eligible() {
        let mut t = trigger(1_000, 0);
        assert_eq!(t.poll(0, size(5_000), false), None);
        assert!(t.poll(1, size(5_000), true).is_some());
        assert_eq!(t.poll(2, size(5_000), false), None, "a search stops when the range is not eligible");
    }

    /// Requests for `keys` in turn, `per_s` a second, from `from_ms` for `ms`; the split
    /// the trigger asked for, if any.
    fn load(t: &mut SplitTrigger, from_ms: u64, ms: u64, per_s: u64, keys: &[&[u8]]) -> Option<Want> {
        let mut wanted = None;
        let step_ms = 1_000 / per_s;
        for (i, now) in (from_ms..from_ms + ms).step_by(step_ms as usize).enumerate() {
            t.observe(now, &[keys[i % keys.len()]]);
            if let Some(w) = t.poll(now, size(0), true) {
                assert!(wanted.is_none(), "one split per cooldown: {w:?}");
                wanted = Some(w);
            }
        }
        wanted
    }

    #[test]
    fn a_hot_range_is_split_at_a_sampled_key_that_balances_the_load() {
        let mut t = trigger(0, 100);
        let keys: Vec<Vec<u8>> = (b'a'..=b'z').map(|c| vec![c]).collect();
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let want = load(&mut t, 0, 2_999, 200, &keys);
        let Some(Want::Split { key, reason: SplitReason::Load }) = want else { panic!("{want:?}") };
        assert!((b"g".as_slice()..=b"t".as_slice()).contains(&key.as_slice()), "near the middle: {key:?}");
        assert_eq!(t.ops_per_s(), 200);
    }

    #[test]
    fn a_burst_of_one_window_is_not_a_hot_range() {
        let mut t = trigger(0, 100);
        let keys: [&[u8]; 3] = [b"a", b"m", b"z"];
        assert_eq!(load(&mut t, 0, 1_000, 500, &keys), None);
        assert_eq!(load(&mut t, 1_000, 3_000, 50, &keys), None);
    }

    #[test]
    fn one_hot_key_is_not_split() {
        let mut t = trigger(0, 100);
        assert_eq!(load(&mut t, 0, 5_000, 200, &[b"hot"]), None);
        // Seven in eight requests on one key: no cut leaves a quarter on the side of it.
        let keys: [&[u8]; 8] = [b"a", b"hot", b"hot", b"hot", b"hot", b"hot", b"hot", b"hot"];
        let mut t = trigger(0, 100);
        assert_eq!(load(&mut t, 0, 5_000, 200, &keys), None);
    }

    #[test]
    fn hash_sharding_splits_between_slots() {
        let policy = SplitPolicy { range_bytes_max: 0, range_ops_per_s_max: 100 };
        let mut t = SplitTrigger::new(0, policy, Sharding::Hash, 0u16.to_be_bytes().to_vec(), 7);
        let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("key{i}").into_bytes()).collect();
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let Some(Want::Split { key, .. }) = load(&mut t, 0, 2_999, 200, &keys) else { panic!() };
        let slot = crate::keyspace::slot(&key);
        let left = keys.iter().filter(|k| crate::keyspace::slot(k) < slot).count();
        assert!((10..=30).contains(&left), "{left} of 40 keys left of slot {slot}");
    }
}
