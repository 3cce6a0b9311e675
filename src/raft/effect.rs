//! What the core asks its driver to do.

use super::{Entry, Envelope, Index, Membership, SnapshotMeta, Term};
use crate::NodeId;
use serde::{Deserialize, Serialize};

/// The state that must survive a crash before we answer anyone (Raft Fig. 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// When a message may leave the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// At once: the message promises nothing about local state.
    Immediately,
    /// Only after every write effect emitted before it is durable.
    Synced,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    PersistHardState(HardState),
    /// Delete the log entries `from..=to` (a conflicting suffix).
    TruncateLog {
        from: Index,
        to: Index,
    },
    /// Write these entries (contiguous, following the log's current end).
    AppendLog(Vec<Entry>),
    Send {
        envelope: Envelope,
        after: Durability,
    },
    /// The commit index advanced to `index`.
    Commit {
        index: Index,
    },
    /// This replica won the election of `term`.
    BecameLeader {
        term: Term,
    },
    /// Read `id` (from [`super::Raft::read_index`]) may be served once the state machine
    /// has applied `index`: a quorum confirmed this leader after the read arrived.
    ReadReady {
        id: u64,
        index: Index,
    },
    /// A leader sends its state machine to a follower whose entries it compacted (§7):
    /// the driver reads chunk `chunk` of its state as of `meta.index` and steps
    /// `Input::SnapshotChunk` with it. Chunk 0 starts a transfer: at the state machine's
    /// applied index, which may be later than `meta.index` (the driver says which).
    ReadSnapshotChunk {
        to: NodeId,
        meta: SnapshotMeta,
        chunk: u64,
    },
    /// A follower received chunk `chunk` of the leader's snapshot `meta`, in order: the
    /// driver keeps it aside (chunk 0 first drops whatever an earlier transfer left).
    /// Nothing is promised about it until `InstallSnapshot`.
    SnapshotChunk {
        meta: SnapshotMeta,
        chunk: u64,
        data: Vec<u8>,
    },
    /// Every chunk of snapshot `meta` arrived: replace the state machine by them, persist
    /// that, and delete the log entries `discard` (inclusive) it replaces. The commit index
    /// is now `meta.index`; a `Send { after: Synced }` that follows promises it is durable.
    InstallSnapshot {
        meta: SnapshotMeta,
        /// The configuration at `meta.index`, persisted with the snapshot.
        membership: Membership,
        discard: Option<(Index, Index)>,
    },
    /// Read `id` will not be confirmed: this replica stopped leading. Nothing was changed,
    /// so the client may retry elsewhere.
    ReadFailed {
        id: u64,
    },
}
