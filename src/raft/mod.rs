//! The Raft consensus core: a pure, synchronous state machine (no tokio, madsim, fjall or
//! `std::time`). Time comes in as `now_ms`, randomness as a seeded ChaCha generator.
//!
//! ```text
//!            Input::{Tick, Receive(Envelope)}, propose(data)
//!   node ───────────────────────────────────────────────────▶ Raft
//!        ◀─────────────────────────────────────────────────── drain_effects()
//!            Effect::{PersistHardState, TruncateLog, AppendLog,
//!                     Send { after: Durability }, Commit, BecameLeader}
//! ```
//!
//! Contract with the driver (the node layer):
//! - Apply effects **in order**. `Persist*`/`*Log` effects are writes; a
//!   `Send { after: Durability::Synced }` must not leave the node before every write
//!   emitted before it is durable (fsynced). This is how a vote or an append acknowledgement
//!   is never sent before the state it promises survives a crash (Raft §5.1, Fig. 2
//!   "persistent state … updated on stable storage before responding to RPCs").
//! - `Commit { index }`: entries up to `index` are committed and may be applied; read them
//!   with [`Raft::entry`].
//! - Call `step(now, Input::Tick)` no later than [`Raft::next_deadline_ms`].
//!
//! What is here: leader election with randomised timeouts (§5.2), log replication with the
//! consistency check and fast conflict backtracking (§5.3, the "accelerated log
//! backtracking" of the extended paper), the commit rule that only counts replicas of
//! current-term entries (§5.4.2), recovery from persisted state, snapshots (§7), membership
//! changes by joint consensus (thesis §4), pre-vote and check-quorum (§9.6, §6.2),
//! ReadIndex and lease reads (§6.4), and leadership transfer (§3.10). `core/` holds the
//! replica, one file per concern.

mod bugs;
mod config;
mod config_history;
mod core;
mod effect;
mod incoming_snapshot;
mod lease;
mod log;
mod membership;
mod message;
mod progress;
mod read_queue;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lease;
#[cfg(test)]
mod tests_membership;
#[cfg(test)]
mod tests_prevote;
#[cfg(test)]
mod tests_read_index;
#[cfg(test)]
mod tests_reorder;
#[cfg(test)]
mod tests_snapshot;
#[cfg(test)]
mod tests_transfer;

pub use bugs::PlantedBug;
pub use config::{Config, ConfigError};
pub use core::{Input, MembershipError, ProposeError, Raft, RecoverError, SnapshotChunk, TransferError};
pub use effect::{Durability, Effect, HardState};
pub use lease::DriftViolation;
pub use log::{Entry, Payload, SnapshotMeta};
pub use membership::Membership;
pub use message::{AppendResult, ClockEcho, Envelope, Message};

/// A Raft term (§5.1). Terms only grow.
pub type Term = u64;
/// A log index. The first entry has index 1; index 0 is "before the log".
pub type Index = u64;
