//! The contract between the node runtime and what a Raft group replicates.
//!
//! The node runtime (`node/`) drives Raft and hands each committed entry to the group's
//! state machine; it knows nothing of keys, values or commands beyond this trait. The
//! key-value store (`kv::KvStateMachine`) is one implementation; the meta group's state
//! (range descriptors, nodes, policy) will be another.
//!
//! ```text
//!   client ─ Command ─▶ node: route by `keys` ─▶ read-only? ─yes─▶ ReadIndex ─▶ `read`
//!                                                   └─no──▶ `encode` ─▶ log ─▶ commit
//!   committed entry bytes ─▶ `decode` (failure is fatal: the log is corrupt) ─▶ `apply`
//!   log compaction ─▶ `snapshot`;   InstallSnapshot / recovery ─▶ `restore`
//! ```
//!
//! Contract:
//! - `apply` is deterministic: the same commands in the same order give the same state and
//!   the same outputs on every replica (Raft §5.4.3, state machine safety). No clock, no
//!   randomness, no I/O.
//! - `read` of a read-only command changes nothing and answers what `apply` would.
//! - `restore(snapshot())` gives a state equal to the original; `restore` refuses bytes
//!   it did not produce with an error (never a panic).
//! - `encode`/`decode` round-trip, and `decode` refuses more than `COMMAND_BYTES_MAX`.

use crate::codec::{self, DecodeError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

pub trait StateMachine: Default + Send + 'static {
    /// What clients ask of it; travels in the log and between nodes.
    type Command: Clone + Debug + Send + Serialize + DeserializeOwned + 'static;
    /// What a command answers.
    type Output: Clone + Debug + PartialEq + Send + Serialize + DeserializeOwned + 'static;

    /// The largest encoded command accepted into the log.
    const COMMAND_BYTES_MAX: usize;

    /// Whether `command` only reads: it is served by ReadIndex (or a lease), not the log.
    fn is_read_only(command: &Self::Command) -> bool;

    /// The keys `command` touches, for routing it to the group that owns them. Empty: it
    /// concerns the whole state of a group (a count, say).
    fn keys(command: &Self::Command) -> Vec<&[u8]>;

    /// Applies a committed command.
    fn apply(&mut self, command: &Self::Command) -> Self::Output;

    /// Answers a read-only command.
    fn read(&self, command: &Self::Command) -> Self::Output;

    /// The whole state, for log compaction and for followers that are too far behind.
    fn snapshot(&self) -> Vec<u8>;

    /// Rebuilds a state from [`StateMachine::snapshot`] bytes.
    fn restore(bytes: &[u8]) -> Result<Self, DecodeError>;

    /// The number of keys held, for status and metrics.
    fn key_count(&self) -> u64;

    fn encode(command: &Self::Command) -> Vec<u8> {
        codec::encode(command)
    }

    fn decode(bytes: &[u8]) -> Result<Self::Command, DecodeError> {
        codec::decode(bytes, Self::COMMAND_BYTES_MAX)
    }
}
