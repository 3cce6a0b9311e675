//! Log compaction and InstallSnapshot (§7). The core holds no snapshot bytes: a snapshot
//! is the driver's state machine as of its applied index, read and kept by the driver.
//!
//! ```text
//!   leader:   follower needs compacted entries ─▶ ReadSnapshotChunk{to, meta, chunk}
//!             driver reads it ─▶ Input::SnapshotChunk{..} ─▶ InstallSnapshot message
//!             response{received} ─▶ next chunk, or (done) back to appends
//!   follower: InstallSnapshot ─▶ incoming_snapshot.rs ─▶ SnapshotChunk{..} per chunk
//!             last chunk ─▶ InstallSnapshot{meta, membership, discard} ─▶ reply after sync
//! ```

use super::{Raft, Role};
use crate::raft::incoming_snapshot::Received;
use crate::raft::progress::ProgressState;
use crate::raft::{Durability, Effect, Index, Membership, Message, PlantedBug, SnapshotMeta};
use crate::NodeId;

/// A chunk of the leader's state machine, read by the driver (`Effect::ReadSnapshotChunk`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    pub to: NodeId,
    /// The snapshot it belongs to: the one asked for, or for chunk 0 the state machine's
    /// applied index now.
    pub meta: SnapshotMeta,
    /// The configuration in force at `meta.index` (`Raft::membership_at`).
    pub membership: Membership,
    pub chunk: u64,
    pub data: Vec<u8>,
    /// The last chunk.
    pub done: bool,
}

impl Raft {
    /// What the log was last compacted to (index 0: never).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.snapshot()
    }

    /// The driver's state machine has applied every entry up to `index` (committed ones
    /// only): a snapshot sent from now on is of that state. An index behind what the core
    /// knows is ignored: an installed snapshot moved it on, and the driver reports a
    /// `Commit` it drained with the install.
    pub fn advance_applied(&mut self, index: Index) {
        assert!(index <= self.commit_index, "applied {index} beyond commit {}", self.commit_index);
        self.applied = self.applied.max(index);
    }

    pub fn applied_index(&self) -> Index {
        self.applied
    }

    /// The driver's state machine holds every entry up to `index` (applied): forget them.
    /// A follower that needs them gets the state machine instead.
    pub fn compact(&mut self, index: Index) {
        assert!(index <= self.applied, "compaction to {index} beyond applied {}", self.applied);
        assert!(index > self.log.snapshot().index, "compaction moves forward");
        self.configs.compact(index);
        self.log.compact_to(index);
    }

    /// Asks the driver for chunk `chunk` of the snapshot follower `to` is receiving.
    pub(super) fn read_snapshot_chunk(&mut self, to: NodeId, index: Index, chunk: u64) {
        if chunk == 0 {
            crate::sometimes!("snapshot_sent");
        }
        let term = self.log.term_at(index).unwrap_or(0);
        self.effects.push(Effect::ReadSnapshotChunk { to, meta: SnapshotMeta { index, term }, chunk });
    }

    /// The driver read a chunk: it goes to the follower if that follower still waits for it.
    pub(super) fn on_snapshot_chunk(&mut self, c: SnapshotChunk) {
        let term = self.hard.term;
        let Role::Leader { progress } = &mut self.role else { return };
        let Some(p) = progress.get_mut(&c.to) else { return };
        let ProgressState::Snapshot { index, chunk } = &mut p.state else { return };
        // A transfer the driver started afresh (chunk 0, of whatever state) replaces the
        // one asked for; the follower starts over on chunk 0 too.
        let restarted = c.chunk == 0;
        if !restarted && (c.meta.index != *index || c.chunk != *chunk) {
            return; // about a chunk the follower no longer waits for
        }
        // It may be older than the log's start (the leader compacted since the driver took
        // it): the follower then needs another, which starts at the applied index.
        assert!(c.meta.index <= self.commit_index, "a snapshot of uncommitted state");
        *index = c.meta.index;
        *chunk = c.chunk;
        let message = Message::InstallSnapshot {
            term,
            meta: c.meta,
            membership: c.membership,
            chunk: c.chunk,
            data: c.data,
            done: c.done,
        };
        self.send(c.to, message, Durability::Immediately);
    }

    #[allow(clippy::too_many_arguments)] // the fields of one message
    pub(super) fn handle_install_snapshot(
        &mut self,
        now_ms: u64,
        from: NodeId,
        meta: SnapshotMeta,
        membership: Membership,
        chunk: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        self.become_follower(now_ms, self.hard.term, Some(from));
        self.lease_until_ms = now_ms + self.cfg.election_timeout_ms_min;
        let term = self.hard.term;
        if meta.index <= self.commit_index {
            // We hold all of it already (committed entries match the leader's, §5.4). The
            // leader takes this as our match: only once those entries are on our disk
            // (found by `slow_disks` seed 152 once messages no longer waited for the
            // sync of their batch: the follower crashed, lost them, and a heartbeat
            // committed beyond its log).
            self.incoming_snapshot.abandon();
            let reply = Message::InstallSnapshotResponse { term, meta, received: 0, done: true };
            self.send(from, reply, Durability::Synced);
            return;
        }
        match self.incoming_snapshot.accept(meta, chunk, data.len() as u64, done) {
            Received::Ignored { wanted } => {
                let reply = Message::InstallSnapshotResponse { term, meta, received: wanted, done: false };
                self.send(from, reply, Durability::Immediately);
                return;
            }
            Received::Accepted { wanted } => {
                self.effects.push(Effect::SnapshotChunk { meta, chunk, data });
                let reply = Message::InstallSnapshotResponse { term, meta, received: wanted, done: false };
                self.send(from, reply, Durability::Immediately);
                return;
            }
            Received::Complete => self.effects.push(Effect::SnapshotChunk { meta, chunk, data }),
        }
        let kept_suffix = self.log.term_at(meta.index) == Some(meta.term);
        let discard = self.log.install(meta);
        let stale = self.membership().clone();
        let base =
            if PlantedBug::SnapshotStaleConfig.is_active(self.cfg.planted_bug) { stale } else { membership.clone() };
        self.configs.install(meta.index, base, kept_suffix);
        self.commit_index = meta.index;
        self.applied = meta.index;
        crate::sometimes!("snapshot_installed");
        self.effects.push(Effect::InstallSnapshot { meta, membership, discard });
        let reply = Message::InstallSnapshotResponse { term, meta, received: chunk + 1, done: true };
        self.send(from, reply, Durability::Synced);
    }

    pub(super) fn handle_install_snapshot_response(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        received: u64,
        done: bool,
    ) {
        let Role::Leader { progress } = &mut self.role else { return };
        let Some(p) = progress.get_mut(&from) else { return };
        p.recent_active = true;
        let ProgressState::Snapshot { index, chunk } = p.state else { return };
        if index != meta.index {
            return; // about an older snapshot
        }
        if done {
            p.match_index = p.match_index.max(meta.index);
            p.next_index = meta.index + 1;
            p.state = ProgressState::Probe { paused: false };
            self.maybe_commit();
            self.send_append(from, false);
            self.maybe_send_timeout_now(from);
        } else if received != chunk {
            // The next chunk, or the one the follower wants (it started over, or this
            // answers an older chunk: the driver then starts over if it must). The leader
            // follows the follower, so the two never wait on each other.
            p.state = ProgressState::Snapshot { index, chunk: received };
            self.read_snapshot_chunk(from, index, received);
        }
    }
}
