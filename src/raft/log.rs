//! The replicated log held in memory by the core. The driver persists every change the
//! core announces as effects; on restart the core is rebuilt from what was persisted.
//! Entries covered by a snapshot are dropped ([`Log::compact_to`]).

use super::{Index, Term};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by every new leader so that it can commit entries of earlier terms
    /// (§5.4.2, §8).
    Noop,
    /// An encoded state-machine command; the core never looks inside.
    Command(Vec<u8>),
    /// A new configuration of the group (§6); it takes effect when appended.
    Membership(super::Membership),
    /// An encoded change of the range the group serves (a split), which the node applies
    /// in log order like a command; the core never looks inside.
    Range(Vec<u8>),
}

impl Entry {
    /// A stable 64-bit digest (FNV-1a over the encoding) that checkers compare across
    /// replicas: equal entries have equal digests on every platform and run.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in crate::codec::encode(self) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    /// Bytes this entry adds to a message, for batching limits.
    pub fn size_bytes(&self) -> usize {
        24 + match &self.payload {
            Payload::Noop => 0,
            Payload::Membership(m) => 8 * (m.voters.len() + m.outgoing.len() + m.learners.len()),
            Payload::Command(c) | Payload::Range(c) => c.len(),
        }
    }
}

/// A contiguous log starting at index 1.
/// What a snapshot replaces: the log up to `index`, whose last entry had `term`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
}

/// The entries after the last snapshot. Index `snapshot.index` is known only by its term;
/// indexes below it are gone (committed, and inside the snapshot).
#[derive(Debug, Default)]
pub(crate) struct Log {
    snapshot: SnapshotMeta,
    entries: Vec<Entry>,
}

impl Log {
    /// A log that follows `snapshot` with `entries` (contiguous from `snapshot.index + 1`).
    pub fn from_parts(snapshot: SnapshotMeta, entries: Vec<Entry>) -> Result<Self, String> {
        for (i, e) in entries.iter().enumerate() {
            if e.index != snapshot.index + i as Index + 1 {
                return Err(format!(
                    "log entry at position {i} after snapshot {} has index {}",
                    snapshot.index, e.index
                ));
            }
            let previous = if i == 0 { snapshot.term } else { entries[i - 1].term };
            if e.term < previous {
                return Err(format!("log entry {} has term {} below its predecessor's", e.index, e.term));
            }
        }
        Ok(Log { snapshot, entries })
    }

    pub fn snapshot(&self) -> SnapshotMeta {
        self.snapshot
    }

    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    /// The term at `index`: known for the snapshot's last index and the entries after it.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries.get((index - self.snapshot.index - 1) as usize)
    }

    /// Up to `count_max` entries from `from` (at least one if any), within `bytes_max`.
    pub fn slice(&self, from: Index, count_max: usize, bytes_max: usize) -> Vec<Entry> {
        assert!(from > self.snapshot.index, "slice from {from} reaches into snapshot {}", self.snapshot.index);
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in self.entries.iter().skip((from - self.snapshot.index - 1) as usize).take(count_max) {
            bytes += e.size_bytes();
            if !out.is_empty() && bytes > bytes_max {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    pub fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "log append must be contiguous");
        assert!(entry.term >= self.last_term(), "log terms must not decrease");
        self.entries.push(entry);
    }

    /// Removes the entries from `from` on.
    pub fn truncate_from(&mut self, from: Index) {
        assert!(from > self.snapshot.index, "cannot truncate into snapshot {}", self.snapshot.index);
        self.entries.truncate((from - self.snapshot.index - 1) as usize);
    }

    /// The first index of the run of entries that share `index`'s term (a conflict hint);
    /// never below the first entry after the snapshot.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term_at(index).expect("index within the log");
        let mut i = index;
        while i > self.snapshot.index + 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        match self.entries.iter().rev().find(|e| e.term == term) {
            Some(e) => Some(e.index),
            None => (self.snapshot.term == term && self.snapshot.index > 0).then_some(self.snapshot.index),
        }
    }

    /// Forgets the entries up to `index` (they are in a snapshot now).
    pub fn compact_to(&mut self, index: Index) {
        assert!(index > self.snapshot.index, "compaction only moves forward");
        let term = self.term_at(index).expect("compacting to an index in the log");
        self.entries.drain(..(index - self.snapshot.index) as usize);
        self.snapshot = SnapshotMeta { index, term };
    }

    /// Replaces the log by an installed snapshot. Entries after it survive only if the
    /// log agrees with the snapshot's last entry (§7: "if an existing entry has the same
    /// index and term as the snapshot's last included entry, retain log entries following
    /// it"). Returns the indexes removed.
    pub fn install(&mut self, meta: SnapshotMeta) -> Option<(Index, Index)> {
        if meta.index == self.snapshot.index {
            // The state at our own cut, for a replica that lost its state machine
            // (`Raft::lose_state_machine`): the log stays as it is.
            assert_eq!(meta.term, self.snapshot.term, "two snapshots at one index have one term (§5.3)");
            return None;
        }
        assert!(meta.index > self.snapshot.index, "an installed snapshot moves forward");
        let (first, last) = (self.snapshot.index + 1, self.last_index());
        if self.term_at(meta.index) == Some(meta.term) {
            self.compact_to(meta.index);
            return (first <= meta.index).then_some((first, meta.index));
        }
        self.entries.clear();
        self.snapshot = meta;
        (first <= last).then_some((first, last))
    }
}
