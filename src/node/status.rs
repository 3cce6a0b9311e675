//! What a node says about itself to operators (RESP `INFO`, admin `/status` and
//! `/metrics`): a snapshot the event loop publishes after every batch of inputs.

use crate::raft::{Index, Term};
use crate::{GroupId, NodeId};
use serde::Serialize;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub group: GroupId,
    /// `follower`, `candidate` or `leader`.
    pub role: &'static str,
    pub term: Term,
    pub leader: Option<NodeId>,
    /// The configuration in force: voters, the outgoing voters while a change is joint,
    /// and learners.
    pub voters: Vec<NodeId>,
    pub outgoing_voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub last_index: Index,
    pub commit_index: Index,
    pub applied_index: Index,
    /// On a leader: each other voter's matching log position and how far behind the
    /// leader's last entry it is. Empty elsewhere.
    pub followers: Vec<FollowerStatus>,
    pub elections_started: u64,
    /// Reads this node answered from its leader lease, and how often a follower's clock
    /// was seen breaking the drift bound (which suspends its part in leases), since the
    /// process started.
    pub lease_reads: u64,
    pub drift_violations: u64,
    /// The latest snapshot's last index (0: none), and snapshots taken here and installed
    /// from a leader since the process started.
    pub snapshot_index: Index,
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    /// On a leader handing over: the node it hands leadership to.
    pub transfer_target: Option<NodeId>,
    /// Keys in the state machine as applied here, and the bytes of their stored keys and
    /// values (the range's size, which a size-based split weighs).
    pub keys: u64,
    pub bytes: u64,
    /// Requests waiting for an answer (proposals and forwards).
    pub pending_requests: u64,
    /// The replica dropped its data as corrupt and waits for a peer's state: it neither
    /// votes for itself nor applies until that is installed (`node/scrub.rs`).
    pub rebuilding: bool,
    /// Splits of its range this replica applied since the process started.
    pub splits: u64,
    /// Replica moves and leadership transfers of its range that placement ordered and
    /// this replica started as the range's leader, since the process started.
    pub placement_ops: u64,
    /// On a leader: requests a second it took for the range in the last full second (what
    /// a load-based split weighs). 0 elsewhere.
    pub ops_per_s: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FollowerStatus {
    pub id: NodeId,
    pub match_index: Index,
    pub lag: u64,
}
