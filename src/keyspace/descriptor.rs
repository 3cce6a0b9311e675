//! A range: one Raft group serving a span of stored keys, on its replicas.
//!
//! The generation grows with every change of the range's span or replicas (splits,
//! replicas added or removed by a move, and merges when they come), so of two descriptors of one range the newer is
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

    /// Whether the two spans share a key.
    pub fn overlaps(&self, other: &RangeDescriptor) -> bool {
        let starts_before_other_ends = other.end.as_deref().is_none_or(|e| self.start.as_slice() < e);
        let other_starts_before_we_end = self.end.as_deref().is_none_or(|e| other.start.as_slice() < e);
        starts_before_other_ends && other_starts_before_we_end
    }

    /// The two ranges a split at stored key `at` makes, or `None` if `at` is not strictly
    /// inside the span (a split there would leave an empty half). The left half keeps the
    /// id; the right one gets `right_id`. Both are one generation newer, on the same
    /// replicas.
    pub fn split(&self, at: &[u8], right_id: GroupId) -> Option<(RangeDescriptor, RangeDescriptor)> {
        if at <= self.start.as_slice() || !self.holds(at) {
            return None;
        }
        let generation = self.generation + 1;
        let left = RangeDescriptor { end: Some(at.to_vec()), generation, ..self.clone() };
        let right = RangeDescriptor { id: right_id, start: at.to_vec(), generation, ..self.clone() };
        Some((left, right))
    }

    /// The range with `node` among its replicas (last), one generation newer; `None` if
    /// it is one already.
    pub fn with_replica(&self, node: NodeId) -> Option<RangeDescriptor> {
        if self.replicas.contains(&node) {
            return None;
        }
        let mut replicas = self.replicas.clone();
        replicas.push(node);
        Some(RangeDescriptor { replicas, generation: self.generation + 1, ..self.clone() })
    }

    /// The range without `node` among its replicas, one generation newer; `None` if it
    /// is not one, or is the last.
    pub fn without_replica(&self, node: NodeId) -> Option<RangeDescriptor> {
        if !self.replicas.contains(&node) || self.replicas.len() == 1 {
            return None;
        }
        let replicas = self.replicas.iter().copied().filter(|&n| n != node).collect();
        Some(RangeDescriptor { replicas, generation: self.generation + 1, ..self.clone() })
    }

    /// The id the right half of a split of this range at its next generation gets: the
    /// same on every replica (it is derived, not drawn), distinct from every initial
    /// range's id (`GROUPS_MAX` and below) and the meta range's, and, with overwhelming likelihood, from every
    /// other split's (FNV-1a of the parent and the generation, in 48 bits). The meta group
    /// will hand out ids instead (ARCHITECTURE §3).
    pub fn right_id(&self) -> GroupId {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.id.to_be_bytes().into_iter().chain((self.generation + 1).to_be_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash & ((1 << 48) - 1)).max(super::META_RANGE + 1)
    }
}
