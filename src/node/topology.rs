//! What a node knows of the ranges: its map of the key space (for routing; exact for the
//! ranges it hosts, maybe stale for the others, and refreshed by every `RangeMoved` it
//! hears), the groups it hosts, and the groups a split gave it that have no replica
//! running yet.
//!
//! Groups change it while they apply (a split, `split.rs`; a replica change,
//! `replicas.rs`; a snapshot of a newer span); the event loop then starts a replica for
//! every group born and drops every replica removed.

use crate::keyspace::{Keyspace, RangeDescriptor};
use crate::GroupId;
use std::collections::BTreeSet;

pub struct Topology {
    pub map: Keyspace,
    pub hosted: BTreeSet<GroupId>,
    /// Ranges a split made that the node hosts and runs no replica of yet.
    pub born: Vec<RangeDescriptor>,
    /// Groups whose replica here was removed from the range and is not dropped yet.
    pub dropped: Vec<GroupId>,
    /// The ranges whose replica left this node, never adopted again at those generations.
    pub removed: super::replicas::Tombstones,
}

impl Topology {
    /// The error that tells a caller with `keys` where they are served now: the range
    /// that owns them, or `CrossGroup` if no one range does.
    pub fn moved(&self, keys: &[&[u8]]) -> super::ClientError {
        match self.map.route(keys) {
            Ok(g) => super::ClientError::RangeMoved { descriptor: Box::new(self.map.descriptor(g).clone()) },
            Err(crate::keyspace::Unroutable::CrossGroup) => super::ClientError::CrossGroup,
            Err(crate::keyspace::Unroutable::Reserved) => super::ClientError::ReservedKey,
        }
    }
}
