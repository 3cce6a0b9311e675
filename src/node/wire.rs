//! Everything that travels between nodes (and, in simulation, between clients and nodes)
//! inside a transport frame.

use super::ClientError;
use crate::kv::{Command, Output, COMMAND_BYTES_MAX};
use crate::raft::Envelope;
use serde::{Deserialize, Serialize};

/// The largest encoded `Wire` message we decode (a full append batch plus framing slack).
pub const WIRE_BYTES_MAX: usize = crate::io::transport::FRAME_BODY_BYTES_MAX;
const _: () = assert!(COMMAND_BYTES_MAX < WIRE_BYTES_MAX);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    Raft(Envelope),
    /// Run `command`, answer with `Reply { req_id }`. A node forwards a client's request
    /// to the leader; a forwarded request is never forwarded again.
    Request {
        req_id: u64,
        command: Command,
    },
    Reply {
        req_id: u64,
        result: Result<Output, ClientError>,
    },
    /// Raft messages of several groups for the same node, sent together (see `outbox.rs`).
    RaftBatch(Vec<Envelope>),
}
