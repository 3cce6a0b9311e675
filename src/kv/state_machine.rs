//! Applies committed commands. Deterministic: the same log gives the same state and the
//! same outputs on every replica (the basis of Raft's state machine safety, §5.4.3).

use super::{Command, Output};
use crate::codec::{self, DecodeError};
use std::collections::BTreeMap;

/// The largest snapshot `restore` accepts.
pub const SNAPSHOT_BYTES_MAX: usize = 1 << 30;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStateMachine {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KvStateMachine {
    pub fn apply(&mut self, command: &Command) -> Output {
        match command {
            Command::Get { key } => Output::Value(self.data.get(key).cloned()),
            Command::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                Output::Done
            }
            Command::Append { key, value } => {
                self.data.entry(key.clone()).or_default().extend_from_slice(value);
                Output::Done
            }
            Command::Delete { key } => {
                self.data.remove(key);
                Output::Done
            }
            Command::Cas { key, expected, new } => {
                let current = self.data.get(key).cloned();
                let swapped = current == *expected;
                if swapped {
                    self.data.insert(key.clone(), new.clone());
                }
                Output::Cas { swapped, current }
            }
        }
    }

    /// The whole state as bytes (for Raft snapshots, issue 3).
    pub fn snapshot(&self) -> Vec<u8> {
        codec::encode(&self.data)
    }

    /// Rebuilds a state machine from [`KvStateMachine::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(KvStateMachine { data: codec::decode(bytes, SNAPSHOT_BYTES_MAX)? })
    }

    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.data.get(key)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn every_command_against_its_definition() {
        let mut sm = KvStateMachine::default();
        assert_eq!(sm.apply(&Command::Get { key: k("a") }), Output::Value(None));
        assert_eq!(sm.apply(&Command::Append { key: k("a"), value: k("x") }), Output::Done);
        assert_eq!(sm.apply(&Command::Append { key: k("a"), value: k("y") }), Output::Done);
        assert_eq!(sm.apply(&Command::Get { key: k("a") }), Output::Value(Some(k("xy"))));
        assert_eq!(
            sm.apply(&Command::Cas { key: k("a"), expected: Some(k("nope")), new: k("z") }),
            Output::Cas { swapped: false, current: Some(k("xy")) }
        );
        assert_eq!(
            sm.apply(&Command::Cas { key: k("a"), expected: Some(k("xy")), new: k("z") }),
            Output::Cas { swapped: true, current: Some(k("xy")) }
        );
        assert_eq!(sm.apply(&Command::Delete { key: k("a") }), Output::Done);
        assert_eq!(
            sm.apply(&Command::Cas { key: k("a"), expected: None, new: k("n") }),
            Output::Cas { swapped: true, current: None }
        );
        assert_eq!(sm.apply(&Command::Put { key: k("a"), value: k("p") }), Output::Done);
        assert_eq!(sm.get(b"a"), Some(&k("p")));
    }

    #[test]
    fn snapshot_and_restore_give_the_same_state() {
        let mut sm = KvStateMachine::default();
        sm.apply(&Command::Put { key: k("a"), value: k("1") });
        sm.apply(&Command::Put { key: k("b"), value: k("2") });
        let copy = KvStateMachine::restore(&sm.snapshot()).unwrap();
        assert_eq!(copy, sm);
        assert!(KvStateMachine::restore(&[1, 2, 3]).is_err());
    }

    #[test]
    fn commands_round_trip_and_garbage_is_refused() {
        let c = Command::Cas { key: k("k"), expected: None, new: k("v") };
        assert_eq!(Command::decode(&c.encode()).unwrap(), c);
        assert!(Command::decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
