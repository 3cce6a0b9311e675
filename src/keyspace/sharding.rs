//! The two ways a cluster maps keys to ranges, chosen when it is created and fixed for its
//! life (a key must stay where it was written):
//!
//! - **hash**: a key is stored under its Redis Cluster slot (big-endian) followed by the
//!   key, so ranges are slot intervals, keys sharing a `{tag}` stay together and
//!   cluster-aware Redis clients can compute the range of a key themselves;
//! - **range**: a key is stored as it is, so ranges are intervals of keys in byte order
//!   and a scan of a range reads keys in order.
//!
//! Either way a range is one span of stored keys in the node's ordered storage.

use super::slot::slot;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharding {
    #[default]
    Hash,
    Range,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?}: expected \"hash\" or \"range\"")]
pub struct UnknownSharding(pub String);

impl Sharding {
    /// Where `key` is stored.
    pub fn storage_key(self, key: &[u8]) -> Vec<u8> {
        match self {
            Sharding::Hash => {
                let mut stored = Vec::with_capacity(2 + key.len());
                stored.extend_from_slice(&slot(key).to_be_bytes());
                stored.extend_from_slice(key);
                stored
            }
            Sharding::Range => key.to_vec(),
        }
    }

    /// The user key of a stored one (see `storage_key`).
    pub fn user_key(self, stored: &[u8]) -> &[u8] {
        match self {
            Sharding::Hash => {
                assert!(stored.len() >= 2, "a stored key starts with its slot");
                &stored[2..]
            }
            Sharding::Range => stored,
        }
    }

    /// Where a split at `key` cuts the stored keys: before `key` itself (range), or before
    /// its slot (hash: a slot, and so every key of one hash tag, stays in one range).
    pub fn split_point(self, key: &[u8]) -> Vec<u8> {
        match self {
            Sharding::Hash => super::slot(key).to_be_bytes().to_vec(),
            Sharding::Range => key.to_vec(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sharding::Hash => "hash",
            Sharding::Range => "range",
        }
    }
}

impl std::fmt::Display for Sharding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Sharding {
    type Err = UnknownSharding;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hash" => Ok(Sharding::Hash),
            "range" => Ok(Sharding::Range),
            other => Err(UnknownSharding(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_key_gives_back_its_user_key_and_range_mode_keeps_byte_order() {
        for sharding in [Sharding::Hash, Sharding::Range] {
            for key in [&b""[..], b"a", b"{tag}x", b"\xff\x00"] {
                assert_eq!(sharding.user_key(&sharding.storage_key(key)), key, "{sharding}");
            }
            assert_eq!(sharding.to_string().parse::<Sharding>(), Ok(sharding));
        }
        let (a, b) = (Sharding::Range.storage_key(b"apple"), Sharding::Range.storage_key(b"banana"));
        assert!(a < b);
        assert_eq!("ranges".parse::<Sharding>(), Err(UnknownSharding("ranges".into())));
    }
}
