//! The changes of a range that go through its own log (`Payload::Range`), applied by
//! every replica at the same point of the range's history: a split (`split.rs`), and a
//! replica added to or removed from the range's descriptor (`replicas.rs`, the first and
//! last steps of a move, `replica_move.rs`); and, in the meta range, the reports of
//! ranges to the directory (`crate::meta`).

use super::NodeError;
use crate::codec;
use crate::keyspace::RangeDescriptor;
use crate::raft::Index;
use crate::NodeId;
use serde::{Deserialize, Serialize};

/// A change of a range, through its log. New variants go last: committed entries keep
/// their encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeChange {
    /// Cut the range at stored key `at`: the range keeps `[start, at)`, a new one takes
    /// `[at, end)`.
    Split { at: Vec<u8> },
    /// `node` hosts a replica of the range from now on (before it joins the group's
    /// configuration: it creates its replica when the group's messages reach it).
    AddReplica { node: NodeId },
    /// `node` no longer hosts a replica of the range (after it left the group's voters):
    /// it drops its replica and data when it applies this.
    RemoveReplica { node: NodeId },
    /// Ranges tell the directory their descriptors (the meta range only, `crate::meta`):
    /// every replica learns them into the directory it stores.
    Report { ranges: Vec<RangeDescriptor> },
}

/// The largest encoded range change decoded: a report of descriptors (`REPORT_BYTES_MAX`,
/// past which a report ends, plus its last descriptor: two stored keys of a command's size
/// at most).
const RANGE_CHANGE_BYTES_MAX: usize = REPORT_BYTES_MAX + 3 * crate::kv::COMMAND_BYTES_MAX;

/// A report takes no more descriptors once its encoding reaches this size.
pub const REPORT_BYTES_MAX: usize = 256 << 10;

impl RangeChange {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a committed change: failing is fatal (the log is corrupt).
    pub fn decode(bytes: &[u8], index: Index) -> Result<Self, NodeError> {
        codec::decode(bytes, RANGE_CHANGE_BYTES_MAX)
            .map_err(|e| NodeError::UndecodableCommand { index, reason: format!("range change: {e}") })
    }
}
