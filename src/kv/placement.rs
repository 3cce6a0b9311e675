//! Which Raft group owns a key. A node hosts `groups` groups (1..=groups); each owns a
//! fixed, equal range of the 64-bit key-hash space:
//!
//! ```text
//!   hash(key) ∈ [0, 2^64)   ──split into `groups` equal ranges──▶   group 1, 2, …, groups
//! ```
//!
//! The map is static for the life of the cluster (moving ranges between groups comes
//! with sharding and rebalancing). The hash is FNV-1a with MurmurHash3's 64-bit
//! finaliser (FNV alone leaves the high bits of short, similar keys clustered): stable
//! across platforms and releases, since a key must stay where it was written.

use super::Command;
use crate::GroupId;

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// MurmurHash3's `fmix64`: every input bit reaches every output bit.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The group that owns `key` among `groups` (at least 1).
pub fn group_of_key(key: &[u8], groups: u64) -> GroupId {
    assert!(groups >= 1, "a node hosts at least one group");
    ((u128::from(mix(fnv1a(key))) * u128::from(groups)) >> 64) as GroupId + 1
}

impl Command {
    /// The keys the command touches (none for `CountKeys`, which touches them all).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Command::Get { key }
            | Command::Put { key, .. }
            | Command::Append { key, .. }
            | Command::Delete { key }
            | Command::Cas { key, .. }
            | Command::PutIf { key, .. }
            | Command::IncrBy { key, .. } => vec![key],
            Command::GetMany { keys } | Command::DeleteMany { keys } | Command::CountExisting { keys } => {
                keys.iter().map(Vec::as_slice).collect()
            }
            Command::PutMany { pairs } => pairs.iter().map(|(k, _)| k.as_slice()).collect(),
            Command::CountKeys => Vec::new(),
        }
    }

    /// The one group that can run the command alone, if there is one: every key it
    /// touches lives there. Commands across groups need transactions (not yet here).
    pub fn group(&self, groups: u64) -> Option<GroupId> {
        if groups == 1 {
            return Some(1);
        }
        let keys = self.keys();
        let first = group_of_key(keys.first()?, groups);
        keys.iter().all(|k| group_of_key(k, groups) == first).then_some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_every_group_and_stay_put() {
        let mut seen = [0u32; 4];
        for i in 0..4_000 {
            let g = group_of_key(format!("key{i}").as_bytes(), 4);
            seen[(g - 1) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1_200).contains(&n)), "{seen:?}");
        // Pinned: a key never moves between releases.
        assert_eq!(group_of_key(b"r0", 4), group_of_key(b"r0", 4));
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(group_of_key(b"anything", 1), 1);
    }

    #[test]
    fn a_command_runs_in_one_group_only_if_all_its_keys_live_there() {
        let key_in =
            |g: GroupId| (0..).map(|i| format!("k{i}").into_bytes()).find(|k| group_of_key(k, 3) == g).unwrap();
        let (a, b) = (key_in(1), key_in(2));
        assert_eq!(Command::Get { key: a.clone() }.group(3), Some(1));
        assert_eq!(Command::GetMany { keys: vec![a.clone(), a.clone()] }.group(3), Some(1));
        assert_eq!(Command::GetMany { keys: vec![a.clone(), b.clone()] }.group(3), None);
        assert_eq!(Command::CountKeys.group(3), None);
        assert_eq!(Command::CountKeys.group(1), Some(1));
        assert_eq!(Command::PutMany { pairs: vec![(b, vec![])] }.group(3), Some(2));
    }
}
