//! The KV state machine against a model (`BTreeMap`), on an arbitrary command sequence:
//! every output and the final data must agree.

use crate::kv::{ApplyError, Command, KvStateMachine, Output, Presence};
use crate::state_machine::{Data, MemoryData, StateMachine};
use arbitrary::{Arbitrary, Unstructured};
use std::collections::BTreeMap;

/// The model's answer to `command`.
fn model(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, command: &Command) -> Output {
    match command {
        Command::Get { key } => Output::Value(map.get(key).cloned()),
        Command::Put { key, value } => {
            map.insert(key.clone(), value.clone());
            Output::Done
        }
        Command::Append { key, value } => {
            let v = map.entry(key.clone()).or_default();
            v.extend_from_slice(value);
            Output::Int(v.len() as i64)
        }
        Command::Delete { key } => {
            map.remove(key);
            Output::Done
        }
        Command::Cas { key, expected, new } => {
            let current = map.get(key).cloned();
            let swapped = current == *expected;
            if swapped {
                map.insert(key.clone(), new.clone());
            }
            Output::Cas { swapped, current }
        }
        Command::PutIf { key, value, when } => {
            let ok = map.contains_key(key) == (*when == Presence::Present);
            if ok {
                map.insert(key.clone(), value.clone());
            }
            Output::Written(ok)
        }
        Command::IncrBy { key, delta } => {
            // The model reads integers the lenient way and then demands the canonical
            // spelling back, which is the same rule said differently.
            let current = match map.get(key) {
                None => 0i128,
                Some(b) => match std::str::from_utf8(b).ok().and_then(|t| t.parse::<i64>().ok()) {
                    Some(n) if n.to_string().as_bytes() == b.as_slice() => n as i128,
                    _ => return Output::Failed(ApplyError::NotAnInteger),
                },
            };
            let sum = current + *delta as i128;
            if sum > i64::MAX as i128 || sum < i64::MIN as i128 {
                return Output::Failed(ApplyError::Overflow);
            }
            map.insert(key.clone(), sum.to_string().into_bytes());
            Output::Int(sum as i64)
        }
        Command::GetMany { keys } => Output::Values(keys.iter().map(|k| map.get(k).cloned()).collect()),
        Command::PutMany { pairs } => {
            for (k, v) in pairs {
                map.insert(k.clone(), v.clone());
            }
            Output::Done
        }
        Command::DeleteMany { keys } => {
            let mut n = 0;
            for k in keys {
                n += map.remove(k).is_some() as i64;
            }
            Output::Int(n)
        }
        Command::CountExisting { keys } => Output::Int(keys.iter().filter(|k| map.contains_key(*k)).count() as i64),
        Command::CountKeys => Output::Int(map.len() as i64),
    }
}

/// Steps one run may take.
pub const STEPS_MAX: usize = 1_000;

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut data = MemoryData::default();
    let mut map = BTreeMap::new();
    for _ in 0..STEPS_MAX {
        // `arbitrary` goes on producing defaults from an exhausted input: stop there.
        if u.is_empty() {
            break;
        }
        let Ok(command) = Command::arbitrary(&mut u) else { break };
        let encoded = KvStateMachine::encode(&command);
        let decoded = KvStateMachine::decode(&encoded).expect("an encoded command decodes");
        assert_eq!(decoded, command, "commands round-trip through their encoding");
        let output = KvStateMachine::apply(&decoded, &mut data).expect("memory does not fail");
        assert_eq!(output, model(&mut map, &command), "output of {command:?}");
        assert_eq!(data.key_count(), map.len() as u64, "state size");
    }
    assert_eq!(data.0, map, "final state");
}
