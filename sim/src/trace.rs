//! The event log of a run: node events, faults and phase changes, stamped with simulated
//! time. Its digest, `trace-hash`, is what "same seed, same run" is checked against.

use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceKind {
    /// An event of node `node`'s replica of Raft group `group`.
    Node {
        node: NodeId,
        group: GroupId,
        event: NodeEvent,
    },
    Fault(String),
    Phase(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
            TraceKind::Fault(s) => write!(f, "{t:>10.6}s fault {s}"),
            TraceKind::Phase(s) => write!(f, "{t:>10.6}s phase {s}"),
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
