//! The KV state machine against a model (`BTreeMap`), on an arbitrary command sequence
//! with snapshot/restore in between: every output and the final state must agree.

use crate::kv::{Command, KvStateMachine, Output};
use arbitrary::{Arbitrary, Unstructured};
use std::collections::BTreeMap;

#[derive(Debug, Arbitrary)]
pub enum Step {
    Apply(Command),
    /// Replace the state machine by a restore of its own snapshot.
    SnapshotRestore,
    /// Feed arbitrary bytes to `restore`: an error or a state, never a panic.
    RestoreGarbage(Vec<u8>),
}

/// The model's answer to `command`.
fn model(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, command: &Command) -> Output {
    match command {
        Command::Get { key } => Output::Value(map.get(key).cloned()),
        Command::Put { key, value } => {
            map.insert(key.clone(), value.clone());
            Output::Done
        }
        Command::Append { key, value } => {
            map.entry(key.clone()).or_default().extend_from_slice(value);
            Output::Done
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
    }
}

/// Steps one run may take.
pub const STEPS_MAX: usize = 1_000;

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut sm = KvStateMachine::default();
    let mut map = BTreeMap::new();
    for _ in 0..STEPS_MAX {
        // `arbitrary` goes on producing defaults from an exhausted input: stop there.
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else { break };
        match step {
            Step::Apply(command) => {
                let encoded = command.encode();
                let decoded = Command::decode(&encoded).expect("an encoded command decodes");
                assert_eq!(decoded, command, "commands round-trip through their encoding");
                assert_eq!(sm.apply(&decoded), model(&mut map, &command), "output of {command:?}");
            }
            Step::SnapshotRestore => {
                sm = KvStateMachine::restore(&sm.snapshot()).expect("a snapshot restores");
            }
            Step::RestoreGarbage(bytes) => {
                let _ = KvStateMachine::restore(&bytes);
            }
        }
        assert_eq!(sm.len(), map.len(), "state size");
    }
    for (k, v) in &map {
        assert_eq!(sm.get(k), Some(v), "final state at {k:?}");
    }
}
