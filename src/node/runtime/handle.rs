//! The in-process API of a node: the handle callers hold, and the calls and operators'
//! requests it queues to the event loop (bounded: a full queue makes the caller wait).

use super::super::pending::CallResult;
use super::super::{ClientError, ControlError, NodeStatus};
use crate::keyspace::Keyspace;
use crate::state_machine::StateMachine;
use crate::{GroupId, NodeId};
use std::collections::BTreeSet;
use tokio::sync::{mpsc, oneshot, watch};

/// Client calls queued to a node before `execute` waits.
pub(super) const CALL_QUEUE_MAX: usize = 1024;
/// A turn of the event loop that takes this long is reported (two thirds of the
pub(super) struct Call<M: StateMachine> {
    pub(super) command: M::Command,
    pub(super) reply: oneshot::Sender<CallResult<M>>,
}

/// Operators' requests, on a channel of their own so that client load cannot delay them.
pub(super) enum Control {
    TransferLeader {
        group: GroupId,
        to: NodeId,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    ChangeMembership {
        group: GroupId,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    Split {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<GroupId, ControlError>>,
    },
    Move {
        group: GroupId,
        from: Option<NodeId>,
        to: NodeId,
        reply: oneshot::Sender<Result<NodeId, ControlError>>,
    },
    Directory {
        reply: oneshot::Sender<Result<crate::meta::Directory, ControlError>>,
    },
}

/// Operators' requests queued to a node before `transfer_leadership` waits.
pub(super) const CONTROL_QUEUE_MAX: usize = 16;

/// The in-process client API of a node (used by the real-cluster tests today and by the
/// RESP server later; simulated clients reach nodes over the transport with `Wire::Request`).
pub struct NodeHandle<M: StateMachine> {
    pub(super) calls: mpsc::Sender<Call<M>>,
    pub(super) controls: mpsc::Sender<Control>,
    pub(super) status: watch::Receiver<Vec<NodeStatus>>,
    pub(super) range_map: watch::Receiver<Keyspace>,
}

// Not derived: a derive would ask `M: Clone`, which the handle does not need.
impl<M: StateMachine> Clone for NodeHandle<M> {
    fn clone(&self) -> Self {
        NodeHandle {
            calls: self.calls.clone(),
            controls: self.controls.clone(),
            status: self.status.clone(),
            range_map: self.range_map.clone(),
        }
    }
}

/// A command handed to the node, whose answer is still to come.
pub struct Submitted<M: StateMachine>(oneshot::Receiver<CallResult<M>>);

impl<M: StateMachine> Submitted<M> {
    pub async fn result(self) -> CallResult<M> {
        self.0.await.unwrap_or(Err(ClientError::Stopped))
    }
}

impl<M: StateMachine> NodeHandle<M> {
    /// Runs `command` linearizably through the leader of the group that owns its keys.
    pub async fn execute(&self, command: M::Command) -> CallResult<M> {
        self.submit(command).await?.result().await
    }

    /// Queues `command` (waiting while the node's call queue is full) and returns at once
    /// with its future answer. Commands submitted one after another through one handle
    /// enter the log in that order, so a pipelining client keeps its order.
    pub async fn submit(&self, command: M::Command) -> Result<Submitted<M>, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.calls.send(Call { command, reply }).await.map_err(|_| ClientError::Stopped)?;
        Ok(Submitted(rx))
    }

    /// Asks this node, which must lead `group`, to hand leadership to voter `to`.
    /// Returns once the transfer has started (or was refused); whether `to` takes over
    /// shows in the status (`leader`, `transfer_target`).
    pub async fn transfer_leadership(&self, group: GroupId, to: NodeId) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        let control = Control::TransferLeader { group, to, reply };
        self.controls.send(control).await.map_err(|_| ControlError::Stopped)?;
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Asks this node, which must lead `group`, to change its configuration to `voters`
    /// and `learners` (by joint consensus). Returns once the change has started; the
    /// status shows it go through (`outgoing_voters` empties when it is done).
    pub async fn change_membership(
        &self,
        group: GroupId,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        let control = Control::ChangeMembership { group, voters, learners, reply };
        self.controls.send(control).await.map_err(|_| ControlError::Stopped)?;
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Asks this node, which must lead the range holding user key `key`, to split it
    /// before `key` (before its slot in hash sharding). Returns the range split once the
    /// split is in its log; it takes effect when applied (`split.rs`).
    pub async fn split_range(&self, key: Vec<u8>) -> Result<GroupId, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.controls.send(Control::Split { key, reply }).await.map_err(|_| ControlError::Stopped)?;
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Asks this node, which must lead `group`, to move the range's replica on `from` (a
    /// follower voter; `None`: the lowest-numbered one) to node `to`, which hosts none
    /// (`replica_move.rs`). Returns the node moved from once the move has started; the
    /// range's replicas (`range_map`, `GET /ranges`) show it done.
    pub async fn move_replica(&self, group: GroupId, from: Option<NodeId>, to: NodeId) -> Result<NodeId, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.controls.send(Control::Move { group, from, to, reply }).await.map_err(|_| ControlError::Stopped)?;
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// The directory of ranges as this node's replica of the meta range has applied it
    /// (`crate::meta`); `NoSuchGroup` on a node that hosts none.
    pub async fn directory(&self) -> Result<crate::meta::Directory, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.controls.send(Control::Directory { reply }).await.map_err(|_| ControlError::Stopped)?;
        rx.await.unwrap_or(Err(ControlError::Stopped))
    }

    /// The latest published status of the node's first group (the only group of a real
    /// node today).
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().first().cloned().unwrap_or_default()
    }

    /// The latest published status of every group the node hosts, by group.
    pub fn group_statuses(&self) -> Vec<NodeStatus> {
        self.status.borrow().clone()
    }

    /// The node's map of the ranges: exact for those it hosts, as last learnt for others.
    pub fn range_map(&self) -> Keyspace {
        self.range_map.borrow().clone()
    }
}
