//! Moving encoded frames between nodes.
//!
//! Contract: `send` is best-effort and never blocks. A frame may be dropped (full queue,
//! broken connection, partition), delayed, duplicated or reordered across connections;
//! the protocols above (Raft) tolerate all of that. A delivered frame is intact: frames
//! carry a CRC32 and a corrupt one is dropped, never handed up. Over TCP a frame is also
//! authenticated: only a peer holding the cluster secret is heard ([`auth`]). Every queue is bounded.
//!
//! ```text
//!   send(to, payload) ─▶ SendQueues: one bounded queue + worker per peer ─▶ Link::deliver
//!                                          (TCP connection, or madsim Endpoint)
//!   receive loop ─▶ FrameDecoder (size limit, checksum) ─▶ bounded inbox ─▶ node
//! ```

#[cfg(not(madsim))]
pub mod auth;
pub mod frame;
mod send_queues;
#[cfg(madsim)]
mod sim;
#[cfg(not(madsim))]
mod tcp;

pub use frame::{Frame, FrameDecoder, FrameError, FRAME_BODY_BYTES_MAX};
#[cfg(madsim)]
pub use sim::{frames_sent, set_duplicate_rate, sim_addr, SimTransport};
#[cfg(not(madsim))]
pub use tcp::{PeerHealth, TcpTransport};

use crate::NodeId;

/// A payload received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub from: NodeId,
    pub payload: Vec<u8>,
}

pub trait Transport: Send + Sync + 'static {
    /// Queues `payload` for `to`; drops it when that peer's queue is full or unknown.
    fn send(&self, to: NodeId, payload: Vec<u8>);
}

/// Frames queued per peer before new ones are dropped.
pub const SEND_QUEUE_FRAMES_MAX: usize = 1024;
/// Frames received and not yet taken by the node before new ones are dropped (sim) or
/// the connection is back-pressured (TCP).
pub const INBOX_FRAMES_MAX: usize = 4096;
