//! The contract between the node runtime and what a Raft group replicates.
//!
//! The node runtime (`node/`) drives Raft and hands each committed entry to the group's
//! state machine; it knows nothing of keys, values or commands beyond this trait. The
//! key-value store (`kv::KvStateMachine`) is one implementation; the meta group's state
//! (range descriptors, nodes, policy) will be another.
//!
//! A state machine holds no state of its own: its state is the group's data in the node's
//! storage, which it reads and writes through [`Data`] and [`DataMut`]. The node applies
//! a run of committed entries into one write batch together with the applied index, so a
//! crash never applies an entry twice or skips one, and memory does not grow with data.
//!
//! ```text
//!   client ─ Command ─▶ node: route by `keys` ─▶ read-only? ─yes─▶ ReadIndex ─▶ `read`(Data)
//!                                                   └─no──▶ `encode` ─▶ log ─▶ commit
//!   committed entry bytes ─▶ `decode` (failure is fatal: the log is corrupt)
//!                         ─▶ `apply`(DataMut) ─▶ one batch: data + applied index
//! ```
//!
//! Contract:
//! - `apply` is deterministic: the same commands in the same order on the same data give
//!   the same data and the same outputs on every replica (Raft §5.4.3, state machine
//!   safety). No clock, no randomness, no I/O but through `DataMut`.
//! - `read` of a read-only command changes nothing and answers what `apply` would.
//! - A read sees every write made before it, in the same batch included.
//! - A storage error (`StorageError`) is passed up: it poisons the node.
//! - `encode`/`decode` round-trip, and `decode` refuses more than `COMMAND_BYTES_MAX`.

use crate::codec::{self, DecodeError};
use crate::io::StorageError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// A group's data as its state machine reads it: keys are the state machine's own (the
/// node places them in storage).
pub trait Data {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// The keys the group holds.
    fn key_count(&self) -> u64;
}

/// A group's data as its state machine changes it while applying.
pub trait DataMut: Data {
    fn put(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError>;
    /// Removes `key`; whether it was there.
    fn delete(&mut self, key: &[u8]) -> Result<bool, StorageError>;
}

pub trait StateMachine: Send + 'static {
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
    fn apply(command: &Self::Command, data: &mut impl DataMut) -> Result<Self::Output, StorageError>;

    /// Answers a read-only command.
    fn read(command: &Self::Command, data: &impl Data) -> Result<Self::Output, StorageError>;

    fn encode(command: &Self::Command) -> Vec<u8> {
        codec::encode(command)
    }

    fn decode(bytes: &[u8]) -> Result<Self::Command, DecodeError> {
        codec::decode(bytes, Self::COMMAND_BYTES_MAX)
    }
}

/// Data in memory, for the state machines' unit tests and the fuzz harnesses' models.
#[cfg(any(test, feature = "testkit"))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryData(pub std::collections::BTreeMap<Vec<u8>, Vec<u8>>);

#[cfg(any(test, feature = "testkit"))]
impl Data for MemoryData {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.0.get(key).cloned())
    }
    fn key_count(&self) -> u64 {
        self.0.len() as u64
    }
}

#[cfg(any(test, feature = "testkit"))]
impl DataMut for MemoryData {
    fn put(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        self.0.insert(key.to_vec(), value);
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<bool, StorageError> {
        Ok(self.0.remove(key).is_some())
    }
}
