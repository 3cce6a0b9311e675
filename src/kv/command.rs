//! Client commands as they travel through the Raft log.

use crate::codec::{self, DecodeError};
use serde::{Deserialize, Serialize};

/// The largest encoded command accepted into the log. Keys and values are bounded by it.
pub const COMMAND_BYTES_MAX: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum Command {
    /// Reads go through the log too, which makes them linearizable without leases or
    /// ReadIndex (those come with issue 3).
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Appends `value` to the current value (an absent key counts as empty).
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
}

impl Command {
    pub fn key(&self) -> &[u8] {
        match self {
            Command::Get { key }
            | Command::Put { key, .. }
            | Command::Append { key, .. }
            | Command::Delete { key }
            | Command::Cas { key, .. } => key,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, Command::Get { .. })
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, COMMAND_BYTES_MAX)
    }
}
