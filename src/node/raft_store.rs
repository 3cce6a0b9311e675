//! How a Raft group's durable state is laid out in [`Storage`]: partition `raft-<group>`,
//! key `hs` for the hard state, key `snap` for the latest snapshot (its meta and the state
//! machine's bytes), keys `log` + big-endian index for the entries after it (so a prefix
//! scan returns them in order).
//!
//! A snapshot is written together with the deletion of the entries it replaces, snapshot
//! first: if a crash keeps only part of that batch, the entries it covers are ignored on
//! load.

use super::NodeError;
use crate::codec;
use crate::io::{Storage, WriteBatch};
use crate::kv::SNAPSHOT_BYTES_MAX;
use crate::raft::{Effect, Entry, HardState, Index, Membership, SnapshotMeta};
use crate::GroupId;

const HARD_STATE_KEY: &[u8] = b"hs";
const LOG_PREFIX: &[u8] = b"log";
const SNAPSHOT_KEY: &[u8] = b"snap";

/// What recovery finds.
pub struct Recovered {
    pub hard: HardState,
    /// The snapshot with the configuration in force at its index.
    pub snapshot: Option<(SnapshotMeta, Membership, Vec<u8>)>,
    /// The entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}
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

    pub fn load(&self, storage: &impl Storage) -> Result<Recovered, NodeError> {
        let hard = match storage.get(&self.partition, HARD_STATE_KEY)? {
            None => HardState::default(),
            Some(bytes) => {
                codec::decode(&bytes, RECORD_BYTES_MAX).map_err(|e| NodeError::Corrupt(format!("hard state: {e}")))?
            }
        };
        let snapshot: Option<(SnapshotMeta, Membership, Vec<u8>)> = match storage.get(&self.partition, SNAPSHOT_KEY)? {
            None => None,
            Some(bytes) => Some(
                codec::decode(&bytes, SNAPSHOT_BYTES_MAX + 1024)
                    .map_err(|e| NodeError::Corrupt(format!("snapshot: {e}")))?,
            ),
        };
        let after = snapshot.as_ref().map_or(0, |(m, _, _)| m.index);
        let mut entries = Vec::new();
        for (key, bytes) in storage.scan_prefix(&self.partition, LOG_PREFIX)? {
            let entry: Entry = codec::decode(&bytes, RECORD_BYTES_MAX)
                .map_err(|e| NodeError::Corrupt(format!("log entry under key {key:?}: {e}")))?;
            if key != Self::log_key(entry.index) {
                return Err(NodeError::Corrupt(format!("entry {} stored under key {key:?}", entry.index)));
            }
            // Covered by the snapshot, left over by a crash during compaction.
            if entry.index > after {
                entries.push(entry);
            }
        }
        Ok(Recovered { hard, snapshot, entries })
    }

    /// Stages a snapshot and the deletion of the log entries `discard` (inclusive).
    pub fn stage_snapshot(
        &self,
        meta: SnapshotMeta,
        membership: &Membership,
        data: &[u8],
        discard: Option<(Index, Index)>,
        batch: &mut WriteBatch,
    ) {
        batch.put(&self.partition, SNAPSHOT_KEY.to_vec(), codec::encode(&(meta, membership, data)));
        if let Some((from, to)) = discard {
            for i in from..=to {
                batch.delete(&self.partition, Self::log_key(i));
            }
        }
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
            Effect::InstallSnapshot { meta, membership, data, discard } => {
                self.stage_snapshot(*meta, membership, data, *discard, batch)
            }
            Effect::Send { .. }
            | Effect::Commit { .. }
            | Effect::BecameLeader { .. }
            | Effect::ReadReady { .. }
            | Effect::ReadFailed { .. } => {}
        }
    }
}
