//! What a client call or a node can fail with.

use crate::io::StorageError;
use crate::keyspace::RangeDescriptor;
use crate::{GroupId, NodeId};
use serde::{Deserialize, Serialize};

/// Why a client call failed. [`ClientError::is_definite`] tells whether the command
/// certainly did not take effect (safe to retry) or might have (the outcome is unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ClientError {
    #[error("not the leader; try {leader_hint:?}")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("no leader is known right now")]
    NoLeader,
    #[error("too many requests in flight")]
    Busy,
    #[error("the proposal lost its place in the log to another leader's entry")]
    Dropped,
    #[error("the proposal was displaced from this node's log; it may or may not be applied")]
    Displaced,
    #[error("timed out; the command may or may not have been applied")]
    Timeout,
    #[error("forwarded to a leader that was replaced meanwhile; the command may or may not have been applied")]
    LeaderChanged,
    #[error("the command's keys live in different groups; commands across groups need transactions")]
    CrossGroup,
    #[error("keys beginning with byte 0xff are reserved for the system in range sharding")]
    ReservedKey,
    #[error("group {group} does not own the command's keys; route it again")]
    WrongGroup { group: GroupId },
    /// This node does not host the range of the command's keys: its descriptor says who
    /// does (and, by its generation, how new it is).
    #[error("range {} is served by {:?}", descriptor.id, descriptor.replicas)]
    RangeMoved { descriptor: Box<RangeDescriptor> },
    #[error("the request does not decode: {0}")]
    Malformed(String),
    #[error("the leader's answer does not decode ({0}); the command may or may not have been applied")]
    UndecodableReply(String),
    #[error("the node stopped; the command may or may not have been applied")]
    Stopped,
}

impl ClientError {
    pub fn is_definite(&self) -> bool {
        match self {
            ClientError::NotLeader { .. }
            | ClientError::NoLeader
            | ClientError::Busy
            | ClientError::Dropped
            | ClientError::CrossGroup
            | ClientError::ReservedKey
            | ClientError::WrongGroup { .. }
            | ClientError::RangeMoved { .. }
            | ClientError::Malformed(_) => true,
            ClientError::Displaced
            | ClientError::Timeout
            | ClientError::Stopped
            | ClientError::LeaderChanged
            | ClientError::UndecodableReply(_) => false,
        }
    }
}

/// Why an operator's request to a node (a leadership transfer) was not carried out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Transfer(#[from] crate::raft::TransferError),
    #[error(transparent)]
    Membership(#[from] crate::raft::MembershipError),
    #[error("this node hosts no group {0}")]
    NoSuchGroup(GroupId),
    #[error("node {node} hosts no replica of group {group}; move a replica there first (POST /ranges/move)")]
    NotHosted { node: NodeId, group: GroupId },
    #[error("a split at {key:?} would leave range {group} empty on one side")]
    SplitOutsideRange { group: GroupId, key: Vec<u8> },
    #[error("range {group} is changing its configuration; split it once the change is done")]
    SplitDuringChange { group: GroupId },
    #[error("this node hosts {hosted} groups, the most it may; no more splits")]
    TooManyGroups { hosted: usize },
    #[error(transparent)]
    Propose(#[from] crate::raft::ProposeError),
    #[error("this node does not lead range {group} (leader: {leader_hint:?}); ask its leader")]
    NotLeader { group: GroupId, leader_hint: Option<NodeId> },
    #[error("n{node} leads range {group}: transfer its leadership before moving its replica away")]
    MoveFromLeader { group: GroupId, node: NodeId },
    #[error("n{node} is not a voter of range {group}: nothing to move from there")]
    MoveFromNonVoter { group: GroupId, node: NodeId },
    #[error("n{node} hosts a replica of range {group} already")]
    MoveToReplica { group: GroupId, node: NodeId },
    #[error("n{node} is not a node of the cluster")]
    MoveToNonServer { node: NodeId },
    #[error("range {group} has a move or configuration change in progress; try once it is done")]
    MoveInProgress { group: GroupId },
    #[error("this node runs {running} moves, the most it may at once")]
    TooManyMoves { running: usize },
    #[error("the node stopped")]
    Stopped,
}

/// Why a node stopped. Each is fatal: the node does not retry.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("storage failed, node poisoned: {0}")]
    Storage(#[from] StorageError),
    #[error("persisted state is corrupt: {0}")]
    Corrupt(String),
    #[error("a committed entry does not decode as a command at index {index}: {reason}")]
    UndecodableCommand { index: u64, reason: String },
    #[error("bad configuration: {0}")]
    Config(String),
}
