//! What a node reports about itself: the simulator records these events in its trace and
//! checks them (election safety, log matching, state machine safety); the real build logs
//! them.

use crate::raft::{Index, Term};
use crate::NodeId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// The node restarted from storage with this state.
    Recovered {
        term: Term,
        last_index: Index,
    },
    BecameLeader {
        term: Term,
    },
    /// An entry was written to this node's log (not yet necessarily synced).
    Appended {
        index: Index,
        term: Term,
        digest: u64,
    },
    /// Entries from `from` on were removed from this node's log.
    Truncated {
        from: Index,
    },
    Committed {
        index: Index,
    },
    /// The entry at `index` was applied to the state machine.
    Applied {
        index: Index,
        term: Term,
        digest: u64,
    },
    /// Storage failed; the node stopped.
    Poisoned {
        error: String,
    },
}

pub trait Observer: Send + Sync + 'static {
    fn on_event(&self, node: NodeId, event: NodeEvent);
}

/// Logs events at debug level and otherwise ignores them.
#[derive(Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn on_event(&self, node: NodeId, event: NodeEvent) {
        tracing::debug!(node, ?event, "node event");
    }
}
