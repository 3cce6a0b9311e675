//! How a Raft group's durable state is laid out in [`Storage`]: partition `raft-<group>`,
//! key `hs` for the hard state, key `applied` for the applied record (the index the
//! group's data in `group_data` is at), key `snap` for where the log was cut (the index,
//! its term and the configuration then), keys `log` + big-endian index for the entries
//! after it (so a prefix scan returns them in order), key `lost` while the group's data was
//! dropped as corrupt and no snapshot has replaced it yet (`scrub`), key `range` for the
//! group's range descriptor once a split changed it from the initial one (written with
//! the applied record of the entry or snapshot that changed it), key `founders` for the
//! voters a group made by a split or adopted started with (its configuration before any
//! entry: the range's replicas change since, with moves).
//!
//! The log is cut only behind the applied index, and the applied record is written in a
//! batch before the cut: storage keeps a prefix of batches, so after any crash the data
//! covers every entry the log lost. The cut is written together with the deletion of the
//! entries it removes, cut first: if a crash keeps only part of that batch, the entries
//! it covers are ignored on load.

use super::snapshot_install::Install;
use super::NodeError;
use crate::codec;
use crate::io::{Storage, WriteBatch};
use crate::keyspace::RangeDescriptor;
use crate::raft::{Effect, Entry, HardState, Index, Membership, SnapshotMeta};
use crate::GroupId;

const HARD_STATE_KEY: &[u8] = b"hs";
const LOG_PREFIX: &[u8] = b"log";
const SNAPSHOT_KEY: &[u8] = b"snap";
const APPLIED_KEY: &[u8] = b"applied";
const INSTALL_KEY: &[u8] = b"install";
const LOST_KEY: &[u8] = b"lost";
const RANGE_KEY: &[u8] = b"range";
const FOUNDERS_KEY: &[u8] = b"founders";

/// Where a group's data is: every entry up to `index` (of `term`) applied, `size` of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub index: Index,
    pub term: crate::raft::Term,
    pub size: super::group_data::DataSize,
}

/// What recovery finds.
pub struct Recovered {
    pub hard: HardState,
    /// Where the log was cut, with the configuration in force there.
    pub cut: Option<(SnapshotMeta, Membership)>,
    pub applied: Applied,
    /// The entries after the cut, contiguous.
    pub entries: Vec<Entry>,
    /// The data was dropped as corrupt: the group waits for a peer's state (`state_fetch`).
    pub lost: bool,
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
        let cut = self.load_cut(storage)?;
        let applied = self.load_applied(storage)?;
        let after = cut.as_ref().map_or(0, |(m, _)| m.index);
        if applied.index < after {
            return Err(NodeError::Corrupt(format!("applied {} is behind the log cut at {after}", applied.index)));
        }
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
        // Applied entries were committed, so synced before they were applied.
        let last = entries.last().map_or(after, |e| e.index);
        if last < applied.index {
            return Err(NodeError::Corrupt(format!("the log ends at {last} but applied is {}", applied.index)));
        }
        let lost = storage.get(&self.partition, LOST_KEY)?.is_some();
        Ok(Recovered { hard, cut, applied, entries, lost })
    }

    /// The applied record (the default: nothing applied).
    pub fn load_applied(&self, storage: &impl Storage) -> Result<Applied, NodeError> {
        match storage.get(&self.partition, APPLIED_KEY)? {
            None => Ok(Applied::default()),
            Some(bytes) => {
                codec::decode(&bytes, RECORD_BYTES_MAX).map_err(|e| NodeError::Corrupt(format!("applied: {e}")))
            }
        }
    }

    /// Where the log was cut, with the configuration then (`None`: never cut).
    pub fn load_cut(&self, storage: &impl Storage) -> Result<Option<(SnapshotMeta, Membership)>, NodeError> {
        match storage.get(&self.partition, SNAPSHOT_KEY)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(
                codec::decode(&bytes, RECORD_BYTES_MAX).map_err(|e| NodeError::Corrupt(format!("log cut: {e}")))?,
            )),
        }
    }

    /// Stages the mark that the group's data is lost (or, `false`, its deletion).
    pub fn stage_lost(&self, lost: bool, batch: &mut WriteBatch) {
        if lost {
            batch.put(&self.partition, LOST_KEY.to_vec(), Vec::new());
        } else {
            batch.delete(&self.partition, LOST_KEY.to_vec());
        }
    }

    /// An install of a leader's snapshot that a crash interrupted (`snapshot_install`).
    pub fn load_install(&self, storage: &impl Storage) -> Result<Option<Install>, NodeError> {
        match storage.get(&self.partition, INSTALL_KEY)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes, RECORD_BYTES_MAX)
                .map(Some)
                .map_err(|e| NodeError::Corrupt(format!("install record: {e}"))),
        }
    }

    /// Stages the install record, or (`None`) its deletion.
    pub fn stage_install(&self, install: Option<&Install>, batch: &mut WriteBatch) {
        match install {
            Some(i) => batch.put(&self.partition, INSTALL_KEY.to_vec(), codec::encode(i)),
            None => batch.delete(&self.partition, INSTALL_KEY.to_vec()),
        }
    }

    /// The group's range as its last split or installed snapshot left it (`None`: as the
    /// cluster was created).
    pub fn load_range(&self, storage: &impl Storage) -> Result<Option<RangeDescriptor>, NodeError> {
        match storage.get(&self.partition, RANGE_KEY)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes, RECORD_BYTES_MAX)
                .map(Some)
                .map_err(|e| NodeError::Corrupt(format!("range descriptor: {e}"))),
        }
    }

    /// The voters the group started with, if it was made after the cluster was created.
    pub fn load_founders(&self, storage: &impl Storage) -> Result<Option<Vec<crate::NodeId>>, NodeError> {
        match storage.get(&self.partition, FOUNDERS_KEY)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes, RECORD_BYTES_MAX)
                .map(Some)
                .map_err(|e| NodeError::Corrupt(format!("founding voters: {e}"))),
        }
    }

    /// Stages the voters a new group starts with (written once, when it is made).
    pub fn stage_founders(&self, voters: &[crate::NodeId], batch: &mut WriteBatch) {
        batch.put(&self.partition, FOUNDERS_KEY.to_vec(), codec::encode(&voters.to_vec()));
    }

    /// Stages the group's range descriptor (with the applied record, in the same batch).
    pub fn stage_range(&self, range: &RangeDescriptor, batch: &mut WriteBatch) {
        batch.put(&self.partition, RANGE_KEY.to_vec(), codec::encode(range));
    }

    /// Stages the deletion of every record of the group (its replica left the node).
    pub fn stage_drop(&self, batch: &mut WriteBatch) {
        batch.delete_range(&self.partition, Vec::new(), None);
    }

    /// Stages the applied record (with the data it describes, in the same batch).
    pub fn stage_applied(&self, applied: Applied, batch: &mut WriteBatch) {
        batch.put(&self.partition, APPLIED_KEY.to_vec(), codec::encode(&applied));
    }

    /// Stages a cut of the log at `meta` and the deletion of the log entries `discard`
    /// (inclusive).
    pub fn stage_cut(
        &self,
        meta: SnapshotMeta,
        membership: &Membership,
        discard: Option<(Index, Index)>,
        batch: &mut WriteBatch,
    ) {
        batch.put(&self.partition, SNAPSHOT_KEY.to_vec(), codec::encode(&(meta, membership)));
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
            // The data comes with it (`group_data`), then the applied record.
            Effect::InstallSnapshot { meta, membership, discard, .. } => {
                self.stage_cut(*meta, membership, *discard, batch)
            }
            Effect::Send { .. }
            | Effect::ReadSnapshotChunk { .. }
            | Effect::SnapshotChunk { .. }
            | Effect::Commit { .. }
            | Effect::BecameLeader { .. }
            | Effect::ReadReady { .. }
            | Effect::ReadFailed { .. } => {}
        }
    }
}
