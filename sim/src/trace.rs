//! The event log of a run: node events, faults and phase changes, stamped with simulated
//! time. Its digest, `trace-hash`, is what "same seed, same run" is checked against.

use crate::faults::FaultEvent;
use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};
use serde::Serialize;

/// The phases of a run, in order (see `world`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// The workload runs and the schedule fires.
    Faulty,
    /// Every fault undone; the liveness probe writes.
    Healed,
    /// The workload has stopped; every key is read once more.
    FinalReads,
    End,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Faulty => "faulty",
            Phase::Healed => "healed",
            Phase::FinalReads => "final reads",
            Phase::End => "end",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TraceKind {
    /// An event of node `node`'s replica of Raft group `group`.
    Node {
        node: NodeId,
        group: GroupId,
        event: NodeEvent,
    },
    /// What a scheduled fault (or the heal) did.
    Fault(FaultEvent),
    Phase(Phase),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    pub t_ns: u64,
    pub kind: TraceKind,
}

impl std::fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.t_ns as f64 / 1e9;
        match &self.kind {
            // Group 1 unmarked: a single-group run reads as it always did.
            TraceKind::Node { node, group: 1, event } => write!(f, "{t:>10.6}s n{node} {event:?}"),
            TraceKind::Node { node, group, event } => write!(f, "{t:>10.6}s n{node}/g{group} {event:?}"),
            TraceKind::Fault(e) => write!(f, "{t:>10.6}s fault {e}"),
            TraceKind::Phase(p) => write!(f, "{t:>10.6}s phase {p}"),
        }
    }
}

/// FNV-1a, 64 bit: stable across platforms and Rust versions (unlike `DefaultHasher`).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn finish(self) -> u64 {
        self.0
    }
}
