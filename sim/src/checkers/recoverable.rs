//! Recoverable state: a node never finds its own persisted state corrupt. The simulated
//! disk loses only what its contract allows (unsynced batches, as a suffix: ARCHITECTURE
//! §2, `Storage`), so every state a crash leaves must recover, and every committed entry
//! must decode. A node that stops on anything but an injected storage failure has broken
//! that: this is the crash-consistency property of Pillai et al., "All File Systems Are Not
//! Created Equal" (OSDI 2014), checked on the database's own recovery instead of an
//! application's.
//!
//! Storage failures (`NodeError::Storage`, what `disk_errors` injects) poison a node on
//! purpose and are not violations.

use super::Violations;
use crate::replay::GroupReplay;
use phantomdb::node::NodeEvent;

/// How a storage failure's error begins (`NodeError::Storage`'s message).
const STORAGE_FAILURE: &str = "storage failed";

pub fn check(group: &GroupReplay) -> Vec<String> {
    let mut v = Violations::default();
    for s in &group.steps {
        if let NodeEvent::Poisoned { error } = s.event {
            if !error.starts_with(STORAGE_FAILURE) {
                v.push(format!("n{} stopped on its own state: {error}", s.node));
            }
        }
    }
    v.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::Replay;
    use crate::trace::{TraceEvent, TraceKind};

    fn check_events(events: &[(u64, NodeEvent)]) -> Vec<String> {
        let trace: Vec<TraceEvent> = events
            .iter()
            .map(|(node, event)| TraceEvent {
                t_ns: 0,
                kind: TraceKind::Node { node: *node, group: 1, event: event.clone() },
            })
            .collect();
        super::check(&Replay::build(&trace, 1, &[1, 2, 3]).groups[&1])
    }

    #[test]
    fn an_injected_storage_failure_passes_and_corrupt_state_fails() {
        let injected = NodeEvent::Poisoned { error: "storage failed, node poisoned: I/O error: injected".into() };
        assert!(check_events(&[(1, injected)]).is_empty());
        let corrupt =
            NodeEvent::Poisoned { error: "persisted state is corrupt: applied 5 is behind the log cut at 9".into() };
        let v = check_events(&[(2, corrupt)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("n2 stopped on its own state"), "{v:?}");
    }
}
