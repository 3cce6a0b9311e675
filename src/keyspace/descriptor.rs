//! A range: one Raft group serving a span of stored keys, on its replicas.
//!
//! The generation grows with every change of the range's span or replicas (splits,
//! merges and moves, when they come), so of two descriptors of one range the newer is
//! the one with the higher generation; a client or node holding an older one routes
//! stale and is told so (`ClientError::RangeMoved`).

use crate::{GroupId, NodeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDescriptor {
    /// The range's Raft group.
    pub id: GroupId,
    /// Stored keys `start <= key < end` (`end: None`: to the end of the key space).
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
    pub generation: u64,
    /// The nodes that host a replica, distinct, in placement order.
    pub replicas: Vec<NodeId>,
}

impl RangeDescriptor {
    pub fn holds(&self, stored: &[u8]) -> bool {
        stored >= self.start.as_slice() && self.end.as_deref().is_none_or(|e| stored < e)
    }
}
