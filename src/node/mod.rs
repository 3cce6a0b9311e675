//! The node runtime: async Rust (tokio API, madsim in simulation) that drives the pure
//! cores, one Raft per group the node hosts (`group.rs`), each replicating a
//! [`StateMachine`](crate::state_machine::StateMachine); requests reach the group that
//! owns their keys by `keyspace`, here or, for a range placed on other nodes, forwarded
//! to one of its replicas (`forwarding.rs`). It owns no protocol logic and no knowledge
//! of keys or values beyond those two.
//!
//! ```text
//!   inbox (Transport) ──┐                         ┌─▶ Storage.write / Storage.sync
//!   client calls ───────┼─▶ Node::run ─▶ Raft ──▶ effects ─┼─▶ Transport.send (after sync)
//!   timer (Clock) ──────┘        ▲                         └─▶ apply ─▶ StateMachine ─▶ replies
//!                                └──── group commit: one sync serves every input of a batch,
//!                                      of every group; one frame per peer carries them all
//! ```
//!
//! Contracts it enforces:
//! - durable before send: a `Send { after: Synced }` leaves only after every earlier write
//!   is synced; a client hears "done" only after its entry is committed and applied;
//! - a storage error poisons the node: `run` returns the error and the node stops;
//! - every queue and table is bounded (`NodeConfig`).

mod created_with;
mod dedup;
mod directory_reports;
mod disk;
mod errors;
mod forwarding;
mod group;
mod group_data;
mod observer;
mod outgoing_snapshots;
mod peer_frames;
mod pending;
mod raft_store;
mod range_change;
#[cfg(test)]
mod recorded_sends;
mod replica_move;
mod replicas;
mod runtime;
mod scrub;
mod snapshot_install;
mod split;
mod split_trigger;
mod state_fetch;
mod status;
mod topology;
mod wire;

pub use errors::{ClientError, ControlError, NodeError};
pub use group_data::DATA_PARTITION;
pub use observer::{LogObserver, NodeEvent, Observer};
pub use pending::CallResult;
pub use runtime::{Node, NodeConfig, NodeHandle, Submitted, RANGE_BYTES_MAX_DEFAULT};
pub use split_trigger::SplitPolicy;
pub use status::{FollowerStatus, NodeStatus};
pub use wire::{Wire, WIRE_BYTES_MAX};
