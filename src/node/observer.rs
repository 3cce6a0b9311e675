//! What a node reports about itself: the simulator records these events in its trace and
//! checks them (election safety, log matching, state machine safety); the real build logs
//! them.

use crate::keyspace::RangeDescriptor;
use crate::raft::{Index, Term};
use crate::{GroupId, NodeId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// The node restarted from storage with this state: its log cut at `snapshot_index`
    /// (0: never cut), log entries up to `last_index`, and its data holding every entry up
    /// to `applied_index` (at least the cut).
    Recovered {
        term: Term,
        snapshot_index: Index,
        last_index: Index,
        applied_index: Index,
    },
    /// The node cut its log at `index`: its data holds the entries up to there (applied).
    Compacted {
        index: Index,
    },
    /// The node replaced its state machine by the leader's snapshot up to `index`, whose
    /// last entry had `term`.
    SnapshotInstalled {
        index: Index,
        term: Term,
    },
    BecameLeader {
        term: Term,
    },
    /// An entry was written to this node's log (not yet necessarily synced); or, right
    /// after `Recovered`, is in the log the node recovered (every entry after the
    /// snapshot, in order), so that an observer's picture of the log is exact after a
    /// crash.
    Appended {
        index: Index,
        term: Term,
        digest: u64,
    },
    /// The entry just appended at `index` (see `Appended`) is a configuration: these
    /// voters, and while joint the outgoing ones too.
    ConfigAppended {
        index: Index,
        term: Term,
        voters: Vec<NodeId>,
        outgoing: Vec<NodeId>,
    },
    /// Entries from `from` on were removed from this node's log.
    Truncated {
        from: Index,
    },
    Committed {
        index: Index,
    },
    /// The entry at `index` was applied to the state machine; `keys`: the stored keys of
    /// the command it applied (empty: not a command, or one refused as outside the range).
    Applied {
        index: Index,
        term: Term,
        digest: u64,
        keys: Vec<Vec<u8>>,
    },
    /// A leader answered a read from its lease, with the commit index it had then.
    LeaseRead {
        commit_index: Index,
    },
    /// A leader saw follower `peer`'s clock run at `ratio_ppm` millionths of its own,
    /// beyond the configured drift bound: that follower backs no lease for a while.
    ClockDriftExceeded {
        peer: NodeId,
        ratio_ppm: u64,
    },
    /// Storage failed; the node stopped.
    Poisoned {
        error: String,
    },
    /// The group's data failed its checksum and was dropped at restart (before
    /// `Recovered`): it restarts from the log's cut at `base`, rebuilt by its own log
    /// (`base` 0) or a peer's state (`state_fetch`).
    DataDropped {
        base: Index,
    },
    /// The split at `index` (just applied, see `Applied`) cut the group's range: it keeps
    /// `left`, and the new group of `right` takes the rest.
    RangeSplit {
        index: Index,
        left: RangeDescriptor,
        right: RangeDescriptor,
    },
    /// A snapshot installed (see `SnapshotInstalled`) changed the group's range to `range`.
    RangeInstalled {
        range: RangeDescriptor,
    },
    /// The node dropped its replica of the group: a peer's descriptor `range`, newer than
    /// its own, no longer lists it (it was removed while down or cut off; `replicas.rs`).
    ReplicaCollected {
        range: RangeDescriptor,
    },
    /// The replica change at `index` (just applied, see `Applied`) gave the group's range
    /// these replicas (`replicas.rs`); on the node it removed, the replica is dropped.
    RangeReplicas {
        index: Index,
        range: RangeDescriptor,
    },
    /// The reports applied at `index` (the meta range's, see `Applied`) changed the
    /// directory's tiling to `ranges` (`crate::meta`).
    DirectoryTiled {
        index: Index,
        ranges: Vec<RangeDescriptor>,
    },
}

pub trait Observer: Send + Sync + 'static {
    /// `group`: the Raft group of the node the event is about.
    fn on_event(&self, node: NodeId, group: GroupId, event: NodeEvent);
}

/// The real build's observer: leadership, recovery and poisoning at `info`/`error`, the
/// per-entry events at `trace`.
#[derive(Debug, Default)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn on_event(&self, node: NodeId, group: GroupId, event: NodeEvent) {
        match event {
            NodeEvent::BecameLeader { term } => tracing::info!(node, group, term, "became leader"),
            NodeEvent::Recovered { term, snapshot_index, last_index, applied_index } => {
                tracing::info!(node, group, term, snapshot_index, last_index, applied_index, "recovered")
            }
            NodeEvent::SnapshotInstalled { index, term } => {
                tracing::info!(node, group, index, term, "installed the leader's snapshot")
            }
            NodeEvent::RangeSplit { index, left, right } => {
                tracing::info!(node, group, index, ?left, ?right, "range split")
            }
            NodeEvent::RangeReplicas { index, range } => {
                tracing::info!(node, group, index, ?range, "range replicas changed")
            }
            NodeEvent::ReplicaCollected { range } => {
                tracing::info!(node, group, ?range, "replica dropped: a newer descriptor no longer lists this node")
            }
            NodeEvent::Poisoned { error } => tracing::error!(node, group, %error, "poisoned"),
            NodeEvent::DataDropped { base } => {
                tracing::warn!(node, group, base, "corrupt data dropped; rebuilding from the log cut at base")
            }
            NodeEvent::ClockDriftExceeded { peer, ratio_ppm } => tracing::warn!(
                node,
                group,
                peer,
                ratio_ppm,
                "a follower's clock rate is beyond the drift bound; it backs no lease reads for now"
            ),
            other => tracing::trace!(node, group, event = ?other, "node event"),
        }
    }
}
