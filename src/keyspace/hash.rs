//! The static hash sharding of today: a node hosts `groups` groups (1..=groups); each owns
//! a fixed, equal range of the 64-bit key-hash space:
//!
//! ```text
//!   hash(key) ∈ [0, 2^64)   ──split into `groups` equal ranges──▶   group 1, 2, …, groups
//! ```
//!
//! The map is static for the life of the cluster (moving ranges between groups comes
//! with sharding and rebalancing). The hash is FNV-1a with MurmurHash3's 64-bit
//! finaliser (FNV alone leaves the high bits of short, similar keys clustered): stable
//! across platforms and releases, since a key must stay where it was written.

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
}
