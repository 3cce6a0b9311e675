//! The event log of a run: node events, faults and phase changes, stamped with simulated
//! time. Its digest, `trace-hash`, is what "same seed, same run" is checked against.
//!
//! The digest is over a binary encoding ([`TraceEvent::encode`]), not over the text
//! `--trace` prints, so that rewording a message does not change every hash. The encoding
//! is stable as long as the types keep their variants in order (new ones go last) and
//! their fields; bincode's standard configuration (varints, little endian).

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

impl TraceEvent {
    /// Writes the event's stable binary encoding (see the module doc).
    pub fn encode(&self, out: &mut impl std::io::Write) {
        put(out, &self.t_ns);
        match &self.kind {
            TraceKind::Node { node, group, event } => {
                put(out, &(0u8, node, group));
                encode_node_event(event, out);
            }
            TraceKind::Fault(e) => put(out, &(1u8, e)),
            TraceKind::Phase(p) => put(out, &(2u8, p)),
        }
    }
}

/// Appends `value`'s encoding to `out`.
pub fn put(out: &mut impl std::io::Write, value: &impl Serialize) {
    bincode::serde::encode_into_std_write(value, out, bincode::config::standard()).expect("encodes into memory");
}

/// `NodeEvent` (in the product crate) implements no `Serialize`, so it is encoded here,
/// variant by variant with a fixed tag. Exhaustive on purpose: a new event does not
/// compile until it has a tag.
fn encode_node_event(event: &NodeEvent, out: &mut impl std::io::Write) {
    match event {
        NodeEvent::Recovered { term, snapshot_index, last_index, applied_index } => {
            put(out, &(0u8, term, snapshot_index, last_index, applied_index))
        }
        NodeEvent::Compacted { index } => put(out, &(1u8, index)),
        NodeEvent::SnapshotInstalled { index, term } => put(out, &(2u8, index, term)),
        NodeEvent::BecameLeader { term } => put(out, &(3u8, term)),
        NodeEvent::Appended { index, term, digest } => put(out, &(4u8, index, term, digest)),
        NodeEvent::ConfigAppended { index, term, voters, outgoing } => put(out, &(5u8, index, term, voters, outgoing)),
        NodeEvent::Truncated { from } => put(out, &(6u8, from)),
        NodeEvent::Committed { index } => put(out, &(7u8, index)),
        // Not the keys: the digest covers the entry they come from (and leaving them out
        // keeps every seed's hash as it was before the event carried them).
        NodeEvent::Applied { index, term, digest, .. } => put(out, &(8u8, index, term, digest)),
        NodeEvent::LeaseRead { commit_index } => put(out, &(9u8, commit_index)),
        NodeEvent::ClockDriftExceeded { peer, ratio_ppm } => put(out, &(10u8, peer, ratio_ppm)),
        NodeEvent::Poisoned { error } => put(out, &(11u8, error)),
        NodeEvent::DataDropped { base } => put(out, &(12u8, base)),
        NodeEvent::RangeSplit { index, left, right } => put(out, &(13u8, index, left, right)),
        NodeEvent::RangeInstalled { range } => put(out, &(14u8, range)),
        NodeEvent::RangeReplicas { index, range } => put(out, &(15u8, index, range)),
        NodeEvent::ReplicaCollected { range } => put(out, &(16u8, range)),
        NodeEvent::DirectoryTiled { index, ranges } => put(out, &(17u8, index, ranges)),
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

impl std::io::Write for Fnv {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Fnv::write(self, bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{network, FaultEvent};

    fn bytes(e: &TraceEvent) -> Vec<u8> {
        let mut out = Vec::new();
        e.encode(&mut out);
        out
    }

    #[test]
    fn the_encoding_is_pinned() {
        // A change here changes every trace hash: do it on purpose only.
        let leader = TraceEvent {
            t_ns: 300,
            kind: TraceKind::Node { node: 2, group: 1, event: NodeEvent::BecameLeader { term: 5 } },
        };
        assert_eq!(bytes(&leader), [251, 44, 1, 0, 2, 1, 3, 5]);
        let heal = TraceEvent { t_ns: 1, kind: TraceKind::Fault(FaultEvent::Network(network::Applied::Healed)) };
        assert_eq!(bytes(&heal), [1, 1, 0, 2]);
        let end = TraceEvent { t_ns: 0, kind: TraceKind::Phase(Phase::End) };
        assert_eq!(bytes(&end), [0, 2, 3]);
    }

    #[test]
    fn events_that_print_alike_encode_apart() {
        let a = TraceEvent {
            t_ns: 1,
            kind: TraceKind::Node { node: 1, group: 1, event: NodeEvent::Committed { index: 7 } },
        };
        let b = TraceEvent {
            t_ns: 1,
            kind: TraceKind::Node { node: 1, group: 1, event: NodeEvent::Compacted { index: 7 } },
        };
        assert_ne!(bytes(&a), bytes(&b));
    }
}
