//! Messages between replicas of one group (Raft Fig. 2), wrapped in an [`Envelope`] that
//! names the group so that one node can host many groups.

use super::{Entry, Index, Membership, SnapshotMeta, Term};
use crate::{GroupId, NodeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub group: GroupId,
    pub from: NodeId,
    pub to: NodeId,
    pub message: Message,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// `transfer`: the election a leader asked for by `TimeoutNow`; voters grant it even
    /// while they believe that leader alive (check-quorum's lease does not apply).
    RequestVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        transfer: bool,
    },
    RequestVoteResponse {
        term: Term,
        granted: bool,
    },
    /// "Would you vote for me in `term`?" (the sender's term + 1; the sender's own term
    /// stays). Answering changes nothing on the receiver.
    PreVote {
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    },
    /// A grant carries the term asked about; a refusal the refuser's own term.
    PreVoteResponse {
        term: Term,
        granted: bool,
    },
    /// `read_seq` numbers the leader's rounds of contact within its term; the follower
    /// echoes it, which proves to the leader that it still led when that round went out
    /// (ReadIndex, thesis §6.4).
    AppendEntries {
        term: Term,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        read_seq: u64,
        /// The leader's clock when it sent this (leases and the drift check, see
        /// `lease.rs`).
        sent_ms: u64,
    },
    /// `clock` echoes the append's `sent_ms` with the follower's clock on receipt.
    AppendEntriesResponse {
        term: Term,
        result: AppendResult,
        read_seq: u64,
        clock: ClockEcho,
    },
    /// The leader's heartbeat: it keeps followers from campaigning and carries a read
    /// round. `commit` is the leader's commit index capped at the follower's known match,
    /// so the follower holds those entries. It claims nothing about the leader's log and
    /// goes out at once, even while the leader's disk syncs; a heartbeat that was an
    /// empty AppendEntries had to wait for that sync, and a sync slower than the election
    /// timeout cost an election (issue 10, item 10).
    Heartbeat {
        term: Term,
        commit: Index,
        read_seq: u64,
        sent_ms: u64,
    },
    /// Answers a heartbeat at once: it claims nothing about the follower's log, only that
    /// the follower heard this leader (check-quorum, ReadIndex rounds, leases).
    HeartbeatResponse {
        term: Term,
        read_seq: u64,
        clock: ClockEcho,
    },
    /// Leadership transfer (thesis §3.10): "start an election now"; the leader sends it
    /// once the target's log matches its own.
    TimeoutNow {
        term: Term,
    },
    /// A chunk of the leader's snapshot (§7), for a follower that needs entries the leader
    /// has compacted away. Chunks go one at a time, numbered from 0; `done` marks the last.
    /// What `data` holds is the state machine's (the core does not read it).
    InstallSnapshot {
        term: Term,
        meta: SnapshotMeta,
        /// The configuration in force at `meta.index`.
        membership: Membership,
        chunk: u64,
        data: Vec<u8>,
        done: bool,
    },
    /// `received`: the chunks of `meta`'s snapshot the follower holds (the number of the
    /// next it wants); `done`: the snapshot is installed and durable.
    InstallSnapshotResponse {
        term: Term,
        meta: SnapshotMeta,
        received: u64,
        done: bool,
    },
}

/// A follower's clock reading, taken when it received the append sent at `sent_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEcho {
    pub sent_ms: u64,
    pub follower_ms: u64,
}

/// The follower's answer to an AppendEntries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `match_index`.
    Success { match_index: Index },
    /// The consistency check failed at `rejected_prev_index`. The hint lets the leader skip
    /// a whole conflicting term at once: `hint_term` is the follower's term at that index
    /// (None when its log is shorter) and `hint_index` the first index the leader should try.
    Conflict { rejected_prev_index: Index, hint_index: Index, hint_term: Option<Term> },
}

impl Message {
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::PreVote { term, .. }
            | Message::PreVoteResponse { term, .. }
            | Message::TimeoutNow { term }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. } => *term,
        }
    }
}
