//! A replica whose data was dropped as corrupt (`scrub.rs`) fetches a peer's state
//! machine: any replica of the group whose applied state reaches the log's cut (`base`)
//! can give it, not only the leader. That matters when most of a group lost its data at
//! once: the replicas with the freshest logs cannot campaign without their state (Raft
//! `lose_state_machine`), so no leader could be elected to send them one, while a
//! follower with an older log still holds a good state.
//!
//! ```text
//!   poll (every sweep) ─▶ nothing asked, or no answer for ASK_TIMEOUT_MS
//!                           ─▶ StateWanted{base, None, 0} to the next peer, in turn
//!   StateChunk from the peer asked ─▶ chunk 0: a transfer of `meta` (index ≥ base) starts
//!                                     the next chunk of it: put aside, ask for the next
//!                                     the last: Raft `restore_state`, then installed
//!                                     (`snapshot_install`) like a leader's snapshot
//! ```
//!
//! Pull-based: the replica asks for every chunk, so a lost message costs one timeout, a
//! peer that went away costs one timeout and a turn to the next, and the peer keeps
//! nothing but the transfer's view (`outgoing_snapshots.rs`, dropped when idle).

use super::Wire;
use crate::raft::{Index, Membership, SnapshotMeta};
use crate::{GroupId, NodeId};

/// How long an ask waits for its chunk before the next peer is asked.
const ASK_TIMEOUT_MS: u64 = 300;

pub struct StateFetch {
    group: GroupId,
    base: Index,
    /// The group's other replicas, asked in turn.
    peers: Vec<NodeId>,
    turn: usize,
    /// The transfer under way: what chunk 0 said, and the chunk asked for next.
    transfer: Option<SnapshotMeta>,
    next_chunk: u64,
    /// When the last ask went out (`None`: none yet).
    asked_ms: Option<u64>,
}

/// What to do with a chunk that arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not the chunk asked for (late, duplicated, another peer's): drop it.
    Ignore,
    /// Put it aside (chunk 0 starts afresh) and send the ask.
    Keep { ask: (NodeId, Wire) },
    /// Put it aside: it was the last; restore the state of `meta`.
    Last { meta: SnapshotMeta, membership: Membership },
}

impl StateFetch {
    pub fn new(group: GroupId, base: Index, peers: Vec<NodeId>) -> Self {
        StateFetch { group, base, peers, turn: 0, transfer: None, next_chunk: 0, asked_ms: None }
    }

    fn ask(&mut self, now_ms: u64) -> (NodeId, Wire) {
        self.asked_ms = Some(now_ms);
        let wire =
            Wire::StateWanted { group: self.group, base: self.base, meta: self.transfer, chunk: self.next_chunk };
        (self.peers[self.turn], wire)
    }

    /// The ask to send now, if any: the first, or after a timeout one to the next peer,
    /// from the start. A group with no other replica has no one to ask.
    pub fn poll(&mut self, now_ms: u64) -> Option<(NodeId, Wire)> {
        if self.peers.is_empty() {
            return None;
        }
        match self.asked_ms {
            None => Some(self.ask(now_ms)),
            Some(at) if now_ms >= at + ASK_TIMEOUT_MS => {
                self.turn = (self.turn + 1) % self.peers.len();
                self.transfer = None;
                self.next_chunk = 0;
                Some(self.ask(now_ms))
            }
            Some(_) => None,
        }
    }

    /// Chunk `chunk` of `meta`'s state arrived from `from`.
    pub fn on_chunk(
        &mut self,
        now_ms: u64,
        from: NodeId,
        meta: SnapshotMeta,
        membership: Membership,
        chunk: u64,
        done: bool,
    ) -> Verdict {
        if self.asked_ms.is_none() || self.peers.get(self.turn) != Some(&from) {
            return Verdict::Ignore;
        }
        // The peer may start over at chunk 0 (it dropped the transfer): so do we.
        let expected = chunk == 0 || (self.transfer == Some(meta) && chunk == self.next_chunk);
        if !expected || meta.index < self.base {
            return Verdict::Ignore;
        }
        if done {
            return Verdict::Last { meta, membership };
        }
        self.transfer = Some(meta);
        self.next_chunk = chunk + 1;
        Verdict::Keep { ask: self.ask(now_ms) }
    }

    /// The state restored was refused (the core moved on meanwhile): start over with the
    /// next peer at the next poll.
    pub fn restart(&mut self) {
        self.asked_ms = Some(0);
        self.transfer = None;
        self.next_chunk = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: Index) -> SnapshotMeta {
        SnapshotMeta { index, term: 1 }
    }

    fn wanted(to: NodeId, meta: Option<SnapshotMeta>, chunk: u64) -> (NodeId, Wire) {
        (to, Wire::StateWanted { group: 7, base: 10, meta, chunk })
    }

    #[test]
    fn chunks_are_asked_one_by_one_and_a_silent_peer_is_passed_over() {
        let m = Membership::with_voters([1, 2, 3]);
        let mut f = StateFetch::new(7, 10, vec![2, 3]);
        assert_eq!(f.poll(0), Some(wanted(2, None, 0)));
        assert_eq!(f.poll(ASK_TIMEOUT_MS - 1), None, "waits for the answer");
        assert_eq!(f.poll(ASK_TIMEOUT_MS), Some(wanted(3, None, 0)), "then asks the next peer, from the start");
        assert_eq!(f.on_chunk(400, 2, meta(12), m.clone(), 0, false), Verdict::Ignore, "the old peer's late answer");
        assert_eq!(f.on_chunk(400, 3, meta(9), m.clone(), 0, false), Verdict::Ignore, "state short of the base");
        assert_eq!(
            f.on_chunk(400, 3, meta(12), m.clone(), 0, false),
            Verdict::Keep { ask: wanted(3, Some(meta(12)), 1) }
        );
        assert_eq!(
            f.on_chunk(401, 3, meta(12), m.clone(), 0, false),
            Verdict::Keep { ask: wanted(3, Some(meta(12)), 1) },
            "a repeated chunk 0 starts over"
        );
        assert_eq!(f.on_chunk(402, 3, meta(12), m.clone(), 2, false), Verdict::Ignore, "not the chunk asked for");
        assert_eq!(
            f.on_chunk(403, 3, meta(12), m.clone(), 1, false),
            Verdict::Keep { ask: wanted(3, Some(meta(12)), 2) }
        );
        assert_eq!(f.on_chunk(404, 3, meta(13), m.clone(), 2, false), Verdict::Ignore, "another transfer's chunk");
        assert_eq!(f.on_chunk(405, 3, meta(12), m.clone(), 2, true), Verdict::Last { meta: meta(12), membership: m });
        f.restart();
        assert_eq!(f.poll(406), Some(wanted(2, None, 0)), "a refused state: the next peer, from the start");
        assert_eq!(StateFetch::new(7, 10, Vec::new()).poll(0), None, "no one to ask");
    }
}
