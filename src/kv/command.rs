//! Client commands as they travel through the Raft log.

use serde::{Deserialize, Serialize};

/// The largest encoded command accepted into the log. Keys and values are bounded by it.
pub const COMMAND_BYTES_MAX: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum Command {
    /// Reads are linearizable: the leader serves them after a ReadIndex confirmation.
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Appends `value` to the current value (an absent key counts as empty); answers the
    /// new length.
    Append {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Sets `new` if the current value equals `expected` (`None`: the key is absent).
    Cas {
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    },
    /// Sets `value` only if the key's presence is `when` (Redis `SET NX` / `SET XX`);
    /// answers whether it wrote.
    PutIf {
        key: Vec<u8>,
        value: Vec<u8>,
        when: Presence,
    },
    /// Adds `delta` to the value read as a decimal i64 (absent counts as 0); answers the
    /// sum, or fails without writing if the value is not an integer or the sum overflows.
    IncrBy {
        key: Vec<u8>,
        delta: i64,
    },
    /// Reads every key at one point of the log (one value per key, in order).
    GetMany {
        keys: Vec<Vec<u8>>,
    },
    /// Writes every pair atomically, in order (a later pair wins on a repeated key).
    PutMany {
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Deletes the keys; answers how many existed.
    DeleteMany {
        keys: Vec<Vec<u8>>,
    },
    /// Answers how many of the keys exist (a key listed twice counts twice, as in Redis).
    CountExisting {
        keys: Vec<Vec<u8>>,
    },
    /// Answers the number of keys.
    CountKeys,
}

/// The precondition of [`Command::PutIf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum Presence {
    Absent,
    Present,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// The value read (`Get`), or nothing for writes.
    Value(Option<Vec<u8>>),
    Done,
    /// Whether a `Cas` swapped, with the value it found.
    Cas {
        swapped: bool,
        current: Option<Vec<u8>>,
    },
    /// A conditional write's outcome.
    Written(bool),
    /// A count, a length or a counter's new value.
    Int(i64),
    /// `GetMany`'s values, in the order of its keys.
    Values(Vec<Option<Vec<u8>>>),
    /// The command was refused by the state machine and changed nothing. Deterministic:
    /// every replica refuses it the same way.
    Failed(ApplyError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    #[error("increment or decrement would overflow")]
    Overflow,
}

impl Command {
    /// Whether the command only reads: it can be served by ReadIndex instead of a log
    /// entry.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Command::Get { .. } | Command::GetMany { .. } | Command::CountExisting { .. } | Command::CountKeys
        )
    }

    /// The keys the command touches (none for `CountKeys`, which touches them all).
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            Command::Get { key }
            | Command::Put { key, .. }
            | Command::Append { key, .. }
            | Command::Delete { key }
            | Command::Cas { key, .. }
            | Command::PutIf { key, .. }
            | Command::IncrBy { key, .. } => vec![key],
            Command::GetMany { keys } | Command::DeleteMany { keys } | Command::CountExisting { keys } => {
                keys.iter().map(Vec::as_slice).collect()
            }
            Command::PutMany { pairs } => pairs.iter().map(|(k, _)| k.as_slice()).collect(),
            Command::CountKeys => Vec::new(),
        }
    }
}
