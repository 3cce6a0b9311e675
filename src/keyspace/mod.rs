//! Which group owns a key, and so which group serves a request.
//!
//! Today the key space is cut into `groups` equal intervals of Redis Cluster's slots
//! (`slot.rs`), and every node hosts every group. Ranges with descriptors and generations
//! (ARCHITECTURE §3) replace the static cut; routing stays here, so the node runtime and
//! the clients ask one place.
//!
//! ```text
//!   keys of a request ─▶ slot(each) ─▶ group of the slot interval ─▶ all the same? ─yes─▶ that group
//!                                                                       └─no──▶ CrossGroup (needs transactions)
//! ```
//!
//! In storage a key is stored under its slot (big-endian) followed by the key
//! (`storage_key`), so a group's keys are one contiguous span of the node's ordered
//! storage (`span`): reading, snapshotting or splitting a group is a scan of a key span.

mod slot;

pub use slot::{slot, SLOTS};

use crate::GroupId;

/// The cut of the key space a cluster was created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyspace {
    groups: u64,
}

/// Most groups one node hosts.
pub const GROUPS_MAX: u64 = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyspaceError {
    #[error("{0} groups: expected 1 to {GROUPS_MAX}")]
    Groups(u64),
}

/// Why a request has no single group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unroutable {
    /// Its keys live in different groups.
    CrossGroup,
}

impl Keyspace {
    pub fn hashed(groups: u64) -> Result<Self, KeyspaceError> {
        const { assert!(GROUPS_MAX <= SLOTS as u64, "a group owns at least one slot") };
        if (1..=GROUPS_MAX).contains(&groups) {
            Ok(Keyspace { groups })
        } else {
            Err(KeyspaceError::Groups(groups))
        }
    }

    /// The groups, in order.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> {
        1..=self.groups
    }

    /// The first slot of `group`'s interval: group g owns `[first_slot(g), first_slot(g + 1))`.
    fn first_slot(&self, group: GroupId) -> u64 {
        (group - 1) * u64::from(SLOTS) / self.groups
    }

    /// The group whose slot interval holds `key`'s slot.
    pub fn group_of_key(&self, key: &[u8]) -> GroupId {
        let slot = u64::from(slot(key));
        // The last group whose interval starts at or before the slot.
        let guess = slot * self.groups / u64::from(SLOTS) + 1;
        let group = if guess < self.groups && self.first_slot(guess + 1) <= slot { guess + 1 } else { guess };
        debug_assert!(self.first_slot(group) <= slot, "slot {slot} before group {group}");
        debug_assert!(group == self.groups || slot < self.first_slot(group + 1), "slot {slot} after group {group}");
        group
    }

    /// Where `key` is stored: its slot, big-endian, then the key.
    pub fn storage_key(key: &[u8]) -> Vec<u8> {
        let mut stored = Vec::with_capacity(2 + key.len());
        stored.extend_from_slice(&slot(key).to_be_bytes());
        stored.extend_from_slice(key);
        stored
    }

    /// The user key of a stored one (see `storage_key`).
    pub fn user_key(stored: &[u8]) -> &[u8] {
        assert!(stored.len() >= 2, "a stored key starts with its slot");
        &stored[2..]
    }

    /// The stored keys of `group`: `start <= key < end` (`end: None`: to the end).
    pub fn span(&self, group: GroupId) -> (Vec<u8>, Option<Vec<u8>>) {
        assert!(self.groups().any(|g| g == group), "group {group} is not in the keyspace");
        let start = (self.first_slot(group) as u16).to_be_bytes().to_vec();
        let end = (group < self.groups).then(|| (self.first_slot(group + 1) as u16).to_be_bytes().to_vec());
        (start, end)
    }

    /// The one group that can serve a request on `keys` alone: every key lives there. No
    /// keys (a request about a whole group's state) routes only where there is one group.
    pub fn route(&self, keys: &[&[u8]]) -> Result<GroupId, Unroutable> {
        if self.groups == 1 {
            return Ok(1);
        }
        let first = self.group_of_key(keys.first().ok_or(Unroutable::CrossGroup)?);
        if keys.iter().all(|k| self.group_of_key(k) == first) {
            Ok(first)
        } else {
            Err(Unroutable::CrossGroup)
        }
    }

    /// Some key that `group` owns, for probes that must reach every group.
    pub fn key_in(&self, group: GroupId, prefix: &str) -> Vec<u8> {
        assert!(self.groups().any(|g| g == group), "group {group} is not in the keyspace");
        (0u64..)
            .map(|i| format!("{prefix}{i}").into_bytes())
            .find(|k| self.route(&[k]) == Ok(group))
            .expect("every group owns keys")
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
        assert_eq!(Keyspace::hashed(1).unwrap().route(&[]), Ok(1));
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
                let stored = Keyspace::storage_key(&key);
                assert!(stored >= start, "{groups} groups: key{i} before group {g}'s span");
                assert!(end.is_none_or(|e| stored < e), "{groups} groups: key{i} after group {g}'s span");
                assert_eq!(Keyspace::user_key(&stored), key.as_slice());
            }
            let mean = 4_000 / groups as u32;
            if groups <= 7 {
                assert!(seen.iter().all(|&n| n > mean * 3 / 4 && n < mean * 5 / 4), "{groups}: {seen:?}");
            }
            for g in 1..groups {
                assert_eq!(ks.span(g).1, Some(ks.span(g + 1).0), "groups {g} and {} touch", g + 1);
            }
            assert_eq!(ks.span(1).0, vec![0, 0]);
            assert_eq!(ks.span(groups).1, None);
        }
    }

    #[test]
    fn the_number_of_groups_is_bounded() {
        assert_eq!(Keyspace::hashed(0), Err(KeyspaceError::Groups(0)));
        assert_eq!(Keyspace::hashed(GROUPS_MAX + 1), Err(KeyspaceError::Groups(GROUPS_MAX + 1)));
        assert_eq!(Keyspace::hashed(GROUPS_MAX).unwrap().groups().count() as u64, GROUPS_MAX);
    }
}
