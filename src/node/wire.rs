//! Everything that travels between nodes (and, in simulation, between clients and nodes)
//! inside a transport frame.

use super::ClientError;
use crate::keyspace::RangeDescriptor;
use crate::placement::{NodeReport, Op};
use crate::raft::{Envelope, Index, Membership, SnapshotMeta};
use crate::GroupId;
use serde::{Deserialize, Serialize};

/// The largest encoded `Wire` message we decode (a full append batch plus framing slack).
pub const WIRE_BYTES_MAX: usize = crate::io::transport::FRAME_BODY_BYTES_MAX;
const _: () = assert!(crate::kv::COMMAND_BYTES_MAX < WIRE_BYTES_MAX);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    Raft(Envelope),
    /// Run `command` (encoded by the group's state machine) in `group`, answer with
    /// `Reply { group, req_id }`. A node forwards a client's request to the group's
    /// leader; a forwarded request is never forwarded again.
    Request {
        group: GroupId,
        req_id: u64,
        command: Vec<u8>,
    },
    /// The answer to a `Request`, its output encoded by the group's state machine.
    Reply {
        group: GroupId,
        req_id: u64,
        result: Result<Vec<u8>, ClientError>,
    },
    /// Raft messages of several groups for the same node, sent together (see `peer_frames.rs`).
    RaftBatch(Vec<Envelope>),
    /// A replica whose data was dropped as corrupt asks a peer of `group` for chunk
    /// `chunk` of its state machine (`state_fetch.rs`): of the transfer of `meta`, or
    /// (`None`) of a new one of the peer's applied state, which must reach `base`.
    StateWanted {
        group: GroupId,
        base: Index,
        meta: Option<SnapshotMeta>,
        chunk: u64,
    },
    /// A chunk of a peer's state machine as of `meta`, with the configuration then.
    StateChunk {
        group: GroupId,
        meta: SnapshotMeta,
        membership: Membership,
        chunk: u64,
        data: Vec<u8>,
        done: bool,
    },
    /// A node that hears Raft messages of a group it does not host asks a peer of the
    /// group which range it is (`split.rs`: a replica that skipped a split).
    RangeWanted {
        group: GroupId,
    },
    /// The answer: the range as the peer, a replica, has applied it.
    RangeKnown {
        range: RangeDescriptor,
    },
    /// The descriptors of ranges the sender leads, for the directory: to the meta range's
    /// replicas, whose leader proposes what is news (`crate::meta`).
    RangeReport {
        ranges: Vec<RangeDescriptor>,
    },
    /// What the sender leads, for placement: to the meta range's replicas, with the
    /// range reports (`crate::placement`).
    NodeReport {
        report: NodeReport,
    },
    /// An operation the meta range's leader asks of a range's leader (`crate::placement`).
    PlacementOrder {
        op: Op,
    },
}
