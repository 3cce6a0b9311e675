//! Applies committed commands to a group's data. Deterministic: the same log gives the
//! same data and the same outputs on every replica (the basis of Raft's state machine
//! safety, §5.4.3). The state lives in storage (`state_machine::DataMut`), not here.

use super::{ApplyError, Command, Output, Presence, COMMAND_BYTES_MAX};
use crate::io::StorageError;
use crate::state_machine::{Data, DataMut, StateMachine};

/// The key-value store: a type, never a value (its state is the group's data).
#[derive(Debug)]
pub enum KvStateMachine {}

impl StateMachine for KvStateMachine {
    type Command = Command;
    type Output = Output;
    const COMMAND_BYTES_MAX: usize = COMMAND_BYTES_MAX;

    fn is_read_only(command: &Command) -> bool {
        command.is_read_only()
    }

    fn keys(command: &Command) -> Vec<&[u8]> {
        command.keys()
    }

    fn apply(command: &Command, data: &mut impl DataMut) -> Result<Output, StorageError> {
        Ok(match command {
            Command::Get { .. } | Command::GetMany { .. } | Command::CountExisting { .. } | Command::CountKeys => {
                Self::read(command, data)?
            }
            Command::Put { key, value } => {
                data.put(key, value.clone())?;
                Output::Done
            }
            Command::Append { key, value } => {
                let mut current = data.get(key)?.unwrap_or_default();
                current.extend_from_slice(value);
                let len = len_i64(current.len());
                data.put(key, current)?;
                Output::Int(len)
            }
            Command::Delete { key } => {
                data.delete(key)?;
                Output::Done
            }
            Command::Cas { key, expected, new } => {
                let current = data.get(key)?;
                let swapped = current == *expected;
                if swapped {
                    data.put(key, new.clone())?;
                }
                Output::Cas { swapped, current }
            }
            Command::PutIf { key, value, when } => {
                let present = data.get(key)?.is_some();
                let write = match when {
                    Presence::Absent => !present,
                    Presence::Present => present,
                };
                if write {
                    data.put(key, value.clone())?;
                }
                Output::Written(write)
            }
            Command::IncrBy { key, delta } => {
                let current = match data.get(key)? {
                    None => 0,
                    Some(bytes) => match parse_i64(&bytes) {
                        Some(n) => n,
                        None => return Ok(Output::Failed(ApplyError::NotAnInteger)),
                    },
                };
                let Some(sum) = current.checked_add(*delta) else {
                    return Ok(Output::Failed(ApplyError::Overflow));
                };
                data.put(key, sum.to_string().into_bytes())?;
                Output::Int(sum)
            }
            Command::PutMany { pairs } => {
                for (k, v) in pairs {
                    data.put(k, v.clone())?;
                }
                Output::Done
            }
            Command::DeleteMany { keys } => {
                let mut removed = 0;
                for k in keys {
                    removed += usize::from(data.delete(k)?);
                }
                Output::Int(len_i64(removed))
            }
        })
    }

    fn read(command: &Command, data: &impl Data) -> Result<Output, StorageError> {
        Ok(match command {
            Command::Get { key } => Output::Value(data.get(key)?),
            Command::GetMany { keys } => Output::Values(keys.iter().map(|k| data.get(k)).collect::<Result<_, _>>()?),
            Command::CountExisting { keys } => {
                let mut present = 0;
                for k in keys {
                    present += usize::from(data.get(k)?.is_some());
                }
                Output::Int(len_i64(present))
            }
            Command::CountKeys => Output::Int(i64::try_from(data.key_count()).expect("a count fits in i64")),
            write => panic!("read() of a command that writes: {write:?}"),
        })
    }
}

/// Counts and lengths are bounded by memory, far below `i64::MAX`.
fn len_i64(n: usize) -> i64 {
    i64::try_from(n).expect("a length fits in i64")
}

/// A value as Redis reads an integer: optional `-`, decimal digits, no spaces or `+`, no
/// leading zeros (so that every integer has one spelling), within i64.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    if text == "-0" {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::state_machine::MemoryData;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    /// The store on data in memory.
    #[derive(Default)]
    struct Sm(MemoryData);

    impl Sm {
        fn apply(&mut self, command: &Command) -> Output {
            KvStateMachine::apply(command, &mut self.0).expect("memory does not fail")
        }
        fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
            self.0 .0.get(key)
        }
    }

    #[test]
    fn every_command_against_its_definition() {
        let mut sm = Sm::default();
        assert_eq!(sm.apply(&Command::Get { key: k("a") }), Output::Value(None));
        assert_eq!(sm.apply(&Command::Append { key: k("a"), value: k("x") }), Output::Int(1));
        assert_eq!(sm.apply(&Command::Append { key: k("a"), value: k("y") }), Output::Int(2));
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
    fn redis_shaped_commands_against_their_definition() {
        let mut sm = Sm::default();
        let put_if = |key: &str, when| Command::PutIf { key: k(key), value: k("v"), when };
        assert_eq!(sm.apply(&put_if("a", Presence::Present)), Output::Written(false));
        assert_eq!(sm.apply(&put_if("a", Presence::Absent)), Output::Written(true));
        assert_eq!(sm.apply(&put_if("a", Presence::Absent)), Output::Written(false));
        assert_eq!(sm.apply(&put_if("a", Presence::Present)), Output::Written(true));
        let incr = |delta| Command::IncrBy { key: k("n"), delta };
        assert_eq!(sm.apply(&incr(5)), Output::Int(5));
        assert_eq!(sm.apply(&incr(-7)), Output::Int(-2));
        assert_eq!(sm.apply(&incr(i64::MIN)), Output::Failed(ApplyError::Overflow));
        assert_eq!(sm.get(b"n"), Some(&k("-2")), "a refused increment changes nothing");
        assert_eq!(sm.apply(&Command::IncrBy { key: k("a"), delta: 1 }), Output::Failed(ApplyError::NotAnInteger));
        sm.apply(&Command::PutMany { pairs: vec![(k("x"), k("1")), (k("y"), k("2")), (k("x"), k("3"))] });
        assert_eq!(
            sm.apply(&Command::GetMany { keys: vec![k("x"), k("nope"), k("y")] }),
            Output::Values(vec![Some(k("3")), None, Some(k("2"))])
        );
        assert_eq!(sm.apply(&Command::CountExisting { keys: vec![k("x"), k("x"), k("nope")] }), Output::Int(2));
        assert_eq!(sm.apply(&Command::CountKeys), Output::Int(4));
        assert_eq!(sm.apply(&Command::DeleteMany { keys: vec![k("x"), k("nope"), k("x")] }), Output::Int(1));
        assert_eq!(sm.apply(&Command::CountKeys), Output::Int(3));
    }

    #[test]
    fn integers_have_one_spelling() {
        for good in ["0", "-1", "42", "9223372036854775807", "-9223372036854775808"] {
            assert_eq!(parse_i64(good.as_bytes()), Some(good.parse().unwrap()), "{good}");
        }
        for bad in ["", "-", "+1", " 1", "1 ", "01", "-0", "1.0", "9223372036854775808", "x"] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn commands_round_trip_and_garbage_is_refused() {
        let c = Command::Cas { key: k("k"), expected: None, new: k("v") };
        assert_eq!(KvStateMachine::decode(&KvStateMachine::encode(&c)).unwrap(), c);
        assert!(KvStateMachine::decode(&[0xff, 0xff, 0xff]).is_err());
    }
}
