//! How a Raft group's durable state is laid out in [`Storage`]: partition `raft-<group>`,
//! key `hs` for the hard state, keys `log` + big-endian index for entries (so a prefix scan
//! returns them in order).

use super::NodeError;
use crate::codec;
use crate::io::{Storage, WriteBatch};
use crate::raft::{Effect, Entry, HardState, Index};
use crate::GroupId;

const HARD_STATE_KEY: &[u8] = b"hs";
const LOG_PREFIX: &[u8] = b"log";
const RECORD_BYTES_MAX: usize = crate::kv::COMMAND_BYTES_MAX + 1024;

pub struct RaftStore {
    partition: String,
}

impl RaftStore {
    pub fn new(group: GroupId) -> Self {
        RaftStore { partition: format!("raft-{group}") }
    }

    fn log_key(index: Index) -> Vec<u8> {
        let mut k = LOG_PREFIX.to_vec();
        k.extend_from_slice(&index.to_be_bytes());
        k
    }

    pub fn load(&self, storage: &impl Storage) -> Result<(HardState, Vec<Entry>), NodeError> {
        let hard = match storage.get(&self.partition, HARD_STATE_KEY)? {
            None => HardState::default(),
            Some(bytes) => {
                codec::decode(&bytes, RECORD_BYTES_MAX).map_err(|e| NodeError::Corrupt(format!("hard state: {e}")))?
            }
        };
        let mut entries = Vec::new();
        for (key, bytes) in storage.scan_prefix(&self.partition, LOG_PREFIX)? {
            let entry: Entry = codec::decode(&bytes, RECORD_BYTES_MAX)
                .map_err(|e| NodeError::Corrupt(format!("log entry under key {key:?}: {e}")))?;
            if key != Self::log_key(entry.index) {
                return Err(NodeError::Corrupt(format!("entry {} stored under key {key:?}", entry.index)));
            }
            entries.push(entry);
        }
        Ok((hard, entries))
    }

    /// Adds the writes a persistence effect asks for to `batch`; other effects add nothing.
    pub fn stage(&self, effect: &Effect, batch: &mut WriteBatch) {
        match effect {
            Effect::PersistHardState(hs) => batch.put(&self.partition, HARD_STATE_KEY.to_vec(), codec::encode(hs)),
            Effect::TruncateLog { from, to } => {
                for i in *from..=*to {
                    batch.delete(&self.partition, Self::log_key(i));
                }
            }
            Effect::AppendLog(entries) => {
                for e in entries {
                    batch.put(&self.partition, Self::log_key(e.index), codec::encode(e));
                }
            }
            Effect::Send { .. }
            | Effect::Commit { .. }
            | Effect::BecameLeader { .. }
            | Effect::ReadReady { .. }
            | Effect::ReadFailed { .. } => {}
        }
    }
}
