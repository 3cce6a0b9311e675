//! Identifiers shared by every layer.

/// A node of the cluster. `0` is never a valid node id (it means "nobody").
pub type NodeId = u64;

/// A Raft group. Every message carries one from day one, so that a node can later host
/// many groups (multi-raft) without a wire change.
pub type GroupId = u64;
