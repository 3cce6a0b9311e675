//! The replicated log held in memory by the core. The driver persists every change the
//! core announces as effects; on restart the core is rebuilt from what was persisted.
//! (The whole log stays in memory until snapshots and compaction arrive with issue 3.)

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
            Payload::Command(c) => c.len(),
        }
    }
}

/// A contiguous log starting at index 1.
#[derive(Debug, Default)]
pub(crate) struct Log {
    entries: Vec<Entry>,
}

impl Log {
    /// Rebuilds a log from persisted entries, which must be contiguous from index 1 with
    /// non-decreasing terms.
    pub fn from_entries(entries: Vec<Entry>) -> Result<Self, String> {
        for (i, e) in entries.iter().enumerate() {
            if e.index != i as Index + 1 {
                return Err(format!("log entry at position {i} has index {}", e.index));
            }
            if i > 0 && e.term < entries[i - 1].term {
                return Err(format!("log entry {} has term {} below its predecessor's", e.index, e.term));
            }
        }
        Ok(Log { entries })
    }

    pub fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(0, |e| e.term)
    }

    /// The term at `index`; 0 for index 0; None past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        self.entries.get(index as usize - 1).map(|e| e.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }

    /// Entries from `from` on, at most `count_max` of them and at most `bytes_max` bytes
    /// (but always at least one if any exist, so a large entry cannot block replication).
    pub fn slice(&self, from: Index, count_max: usize, bytes_max: usize) -> Vec<Entry> {
        debug_assert!(from >= 1);
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in self.entries.iter().skip(from as usize - 1).take(count_max) {
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

    /// Removes every entry from `from` on.
    pub fn truncate_from(&mut self, from: Index) {
        assert!(from >= 1);
        self.entries.truncate(from as usize - 1);
    }

    /// The first index of the run of entries with the same term as `index`.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term_at(index).expect("index within the log");
        let mut i = index;
        while i > 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index holding `term`, if any entry has it.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        self.entries.iter().rev().find(|e| e.term == term).map(|e| e.index)
    }
}
