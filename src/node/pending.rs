//! Requests waiting for an answer: proposals waiting to be applied (by log index) and
//! requests forwarded to the leader (by request id). Both tables are bounded and swept by
//! deadline.

use super::{ClientError, Wire};
use crate::codec;
use crate::io::Transport;
use crate::raft::{Index, Term};
use crate::state_machine::StateMachine;
use crate::{GroupId, NodeId};
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// What a call on a group of state machine `M` answers.
pub type CallResult<M> = Result<<M as StateMachine>::Output, ClientError>;

/// Who is waiting for an answer.
pub enum Origin<M: StateMachine> {
    Local(oneshot::Sender<CallResult<M>>),
    Remote { node: NodeId, group: GroupId, req_id: u64 },
}

impl<M: StateMachine> Origin<M> {
    /// Gives the caller its answer: in process, or over the transport to the node that
    /// forwarded the request.
    pub fn answer(self, transport: &impl Transport, result: CallResult<M>) {
        match self {
            Origin::Local(tx) => {
                let _ = tx.send(result);
            }
            Origin::Remote { node, group, req_id } => {
                let result = result.map(|output| codec::encode(&output));
                transport.send(node, codec::encode(&Wire::Reply { group, req_id, result }));
            }
        }
    }
}

pub struct Proposal<M: StateMachine> {
    pub term: Term,
    pub origin: Origin<M>,
    pub deadline_ms: u64,
}

pub struct Forward<M: StateMachine> {
    pub origin: Origin<M>,
    pub deadline_ms: u64,
    /// The leader it went to, and whether the command only reads.
    pub to: NodeId,
    pub read_only: bool,
}

/// A read-only command waiting for its ReadIndex confirmation (`index: None`), then for
/// the state machine to apply `index`.
pub struct Read<M: StateMachine> {
    pub command: M::Command,
    pub origin: Origin<M>,
    pub deadline_ms: u64,
    pub index: Option<Index>,
}

pub struct Pending<M: StateMachine> {
    pub proposals: BTreeMap<Index, Proposal<M>>,
    pub forwards: BTreeMap<u64, Forward<M>>,
    pub reads: BTreeMap<u64, Read<M>>,
    next_forward_id: u64,
    next_read_id: u64,
}

impl<M: StateMachine> Pending<M> {
    /// `first_forward_id` must differ between incarnations of a node: a reply the leader
    /// sends to a forward of a previous incarnation must not match a forward of this one
    /// (the simulator found exactly that: a read answered with another key's value).
    pub fn new(first_forward_id: u64) -> Self {
        Pending {
            proposals: BTreeMap::new(),
            forwards: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_forward_id: first_forward_id,
            next_read_id: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.proposals.len() + self.forwards.len() + self.reads.len()
    }

    /// Read ids are local to this incarnation: they never leave the node.
    pub fn add_read(&mut self, command: M::Command, origin: Origin<M>, deadline_ms: u64) -> u64 {
        self.next_read_id += 1;
        let id = self.next_read_id;
        self.reads.insert(id, Read { command, origin, deadline_ms, index: None });
        id
    }

    pub fn add_forward(&mut self, origin: Origin<M>, deadline_ms: u64, to: NodeId, read_only: bool) -> u64 {
        self.next_forward_id = self.next_forward_id.wrapping_add(1);
        let id = self.next_forward_id;
        self.forwards.insert(id, Forward { origin, deadline_ms, to, read_only });
        id
    }

    /// Removes the forwards that went to a node other than `leader` (a leader that was
    /// replaced): their callers should not wait out their deadline for an answer that
    /// is unlikely to come.
    pub fn take_forwards_not_to(&mut self, leader: NodeId) -> Vec<Forward<M>> {
        let stale: Vec<u64> = self.forwards.iter().filter(|(_, f)| f.to != leader).map(|(&i, _)| i).collect();
        stale.into_iter().map(|i| self.forwards.remove(&i).expect("listed")).collect()
    }

    /// Removes everything past its deadline; the callers hear `Timeout` (unknown outcome).
    pub fn expire(&mut self, now_ms: u64) -> Vec<Origin<M>> {
        let mut out = Vec::new();
        let late: Vec<Index> =
            self.proposals.iter().filter(|(_, p)| p.deadline_ms <= now_ms).map(|(&i, _)| i).collect();
        for i in late {
            out.push(self.proposals.remove(&i).expect("present").origin);
        }
        let late: Vec<u64> = self.forwards.iter().filter(|(_, f)| f.deadline_ms <= now_ms).map(|(&i, _)| i).collect();
        for i in late {
            out.push(self.forwards.remove(&i).expect("present").origin);
        }
        let late: Vec<u64> = self.reads.iter().filter(|(_, r)| r.deadline_ms <= now_ms).map(|(&i, _)| i).collect();
        for i in late {
            out.push(self.reads.remove(&i).expect("present").origin);
        }
        out
    }
}
