//! Which group owns a key, and so which group serves a request.
//!
//! Today the key space is cut by a static hash into `groups` equal shares (`hash.rs`), and
//! every node hosts every group. Ranges with descriptors and generations (ARCHITECTURE §3)
//! replace the static cut; routing stays here, so the node runtime and the clients ask
//! one place.
//!
//! ```text
//!   keys of a request ─▶ group_of_key(each) ─▶ all the same? ─yes─▶ that group
//!                                                  └─no──▶ CrossGroup (needs transactions)
//! ```

mod hash;

pub use hash::group_of_key;

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

    /// The one group that can serve a request on `keys` alone: every key lives there. No
    /// keys (a request about a whole group's state) routes only where there is one group.
    pub fn route(&self, keys: &[&[u8]]) -> Result<GroupId, Unroutable> {
        if self.groups == 1 {
            return Ok(1);
        }
        let first = group_of_key(keys.first().ok_or(Unroutable::CrossGroup)?, self.groups);
        if keys.iter().all(|k| group_of_key(k, self.groups) == first) {
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
    }

    #[test]
    fn the_number_of_groups_is_bounded() {
        assert_eq!(Keyspace::hashed(0), Err(KeyspaceError::Groups(0)));
        assert_eq!(Keyspace::hashed(GROUPS_MAX + 1), Err(KeyspaceError::Groups(GROUPS_MAX + 1)));
        assert_eq!(Keyspace::hashed(GROUPS_MAX).unwrap().groups().count() as u64, GROUPS_MAX);
    }
}
