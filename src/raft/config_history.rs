//! The configurations a replica's log holds (thesis §4): the one as of the snapshot, and
//! every configuration entry after it, by index. The newest is in force as soon as it is
//! appended, committed or not (§4.1), so truncating the log can bring an older one back.
//!
//! ```text
//!   snapshot ── base ──┬── after[i1] ── after[i2] ── …   the last one is in force
//!   compact(i):  base = at(i), entries ≤ i dropped
//!   truncate_from(i): entries ≥ i dropped (the log lost them)
//!   install(snapshot at i, its config): base = that, entries ≤ i dropped (or all)
//! ```

use super::{Entry, Index, Membership, Payload};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub(super) struct ConfigHistory {
    /// The configuration as of the snapshot (or the initial voters).
    base: Membership,
    /// Configurations in the log after the snapshot, by index.
    after: BTreeMap<Index, Membership>,
}

impl ConfigHistory {
    /// The history of a log that follows a snapshot whose configuration is `base`.
    pub fn recover(base: Membership, entries: &[Entry]) -> Self {
        let after = entries
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Membership(m) => Some((e.index, m.clone())),
                _ => None,
            })
            .collect();
        ConfigHistory { base, after }
    }

    /// The configuration in force: the newest in the log.
    pub fn in_force(&self) -> &Membership {
        self.after.values().next_back().unwrap_or(&self.base)
    }

    /// The configuration in force at `index`.
    pub fn at(&self, index: Index) -> Membership {
        self.after.range(..=index).next_back().map_or_else(|| self.base.clone(), |(_, m)| m.clone())
    }

    /// The configuration as of the snapshot.
    pub fn base(&self) -> &Membership {
        &self.base
    }

    /// The newest configuration entry in the log, if any is past the snapshot.
    pub fn newest(&self) -> Option<(Index, &Membership)> {
        self.after.iter().next_back().map(|(&i, m)| (i, m))
    }

    pub fn append(&mut self, index: Index, membership: Membership) {
        if let Some((newest, _)) = self.newest() {
            assert!(index > newest, "configuration at {index} appended before one at {newest}");
        }
        self.after.insert(index, membership);
    }

    /// The log lost its entries from `index` on.
    pub fn truncate_from(&mut self, index: Index) {
        self.after.split_off(&index);
    }

    /// A snapshot at `index` replaced the entries up to it.
    pub fn compact(&mut self, index: Index) {
        self.base = self.at(index);
        self.after = self.after.split_off(&(index + 1));
    }

    /// A leader's snapshot at `index`, whose configuration is `base`, replaced the log up
    /// to `index` (and, unless `kept_suffix`, everything after it too).
    pub fn install(&mut self, index: Index, base: Membership, kept_suffix: bool) {
        self.after = if kept_suffix { self.after.split_off(&(index + 1)) } else { BTreeMap::new() };
        self.base = base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(voters: &[u64]) -> Membership {
        Membership::with_voters(voters.iter().copied())
    }

    fn config_entry(index: Index, voters: &[u64]) -> Entry {
        Entry { term: 1, index, payload: Payload::Membership(m(voters)) }
    }

    #[test]
    fn the_newest_configuration_is_in_force_and_truncation_brings_the_older_back() {
        let entries = [config_entry(3, &[1, 2]), Entry { term: 1, index: 4, payload: Payload::Noop }];
        let mut h = ConfigHistory::recover(m(&[1, 2, 3]), &entries);
        assert_eq!(h.in_force(), &m(&[1, 2]));
        assert_eq!(h.at(2), m(&[1, 2, 3]));
        assert_eq!(h.at(4), m(&[1, 2]));
        h.append(6, m(&[1]));
        assert_eq!(h.newest().map(|(i, _)| i), Some(6));
        h.truncate_from(5);
        assert_eq!(h.in_force(), &m(&[1, 2]));
        h.truncate_from(3);
        assert_eq!(h.in_force(), &m(&[1, 2, 3]));
        assert_eq!(h.newest(), None);
    }

    #[test]
    fn compaction_and_installation_move_the_base() {
        let mut h = ConfigHistory::recover(m(&[1, 2, 3]), &[config_entry(3, &[1, 2]), config_entry(7, &[2])]);
        h.compact(5);
        assert_eq!(h.base(), &m(&[1, 2]));
        assert_eq!(h.newest().map(|(i, _)| i), Some(7));
        let mut kept = h.clone();
        kept.install(6, m(&[9]), true);
        assert_eq!((kept.base(), kept.in_force()), (&m(&[9]), &m(&[2])));
        h.install(8, m(&[4]), false);
        assert_eq!((h.base(), h.newest()), (&m(&[4]), None));
    }

    #[test]
    #[should_panic(expected = "appended before")]
    fn configurations_are_appended_in_log_order() {
        let mut h = ConfigHistory::recover(m(&[1]), &[config_entry(5, &[1, 2])]);
        h.append(4, m(&[1]));
    }
}
