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

    /// The driver's state machine is gone: its data failed a checksum and was dropped,
    /// while the log and the hard state are intact (they carry this replica's votes and
    /// acknowledgements, so they are never dropped: a replica that forgot entries it
    /// acknowledged could elect a leader without them). The entries after the log's cut
    /// cannot rebuild the state without the state at the cut, so until a snapshot is
    /// installed (a leader's, or one the driver fetched from any replica:
    /// `restore_state`) the replica votes and appends as before, but commits nothing (the
    /// driver has nothing to apply to) and never campaigns (a leader without its state
    /// could neither apply, nor serve, nor send snapshots). Called on a replica just
    /// recovered.
    pub fn lose_state_machine(&mut self) {
        assert!(!self.is_leader(), "a replica loses its state machine only while it recovers");
        assert_eq!(self.commit_index, self.applied, "a recovered replica has committed what it applied");
        self.awaiting_snapshot = true;
    }

    /// Whether the state machine is lost and no snapshot has replaced it yet.
    pub fn awaiting_snapshot(&self) -> bool {
        self.awaiting_snapshot
    }

    /// The driver fetched, from some replica, its state machine as of `meta` (applied
    /// there, so committed: every replica's state at a committed index is the same, Raft
    /// §5.4.3) with the configuration then, and holds it aside: the core takes it as an
    /// installed snapshot (§7: the log after it is kept if it agrees at `meta`) and emits
    /// `Effect::InstallSnapshot` for the driver to install it. Refused (false) unless the
    /// state machine is lost, and the state reaches the log's cut (older state cannot
    /// be completed from this log).
    pub fn restore_state(&mut self, now_ms: u64, meta: SnapshotMeta, membership: Membership) -> bool {
        if !self.awaiting_snapshot || meta.index < self.log.snapshot().index {
            return false;
        }
        if meta.term > self.hard.term {
            // A term we learn of, as from any message: our log must never run ahead of
            // our term (found by `corrupt_disks` seed 286, fetching from a newer peer).
            self.become_follower(now_ms, meta.term, None);
        }
        self.incoming_snapshot.abandon();
        self.install(meta, membership);
        crate::sometimes!("state_fetched");
        true
    }

    /// Installs a snapshot the core has accepted whole: the log, the configurations, the
    /// commit and applied indexes follow it.
    fn install(&mut self, meta: SnapshotMeta, membership: Membership) {
        let kept_suffix = self.log.term_at(meta.index) == Some(meta.term);
        let discard = self.log.install(meta);
        let stale = self.membership().clone();
        let base =
            if PlantedBug::SnapshotStaleConfig.is_active(self.cfg.planted_bug) { stale } else { membership.clone() };
        self.configs.install(meta.index, base, kept_suffix);
        debug_assert!(meta.index >= self.commit_index, "an install never takes the commit index back");
        self.commit_index = meta.index;
        self.applied = meta.index;
        self.awaiting_snapshot = false;
        self.effects.push(Effect::InstallSnapshot { meta, membership, discard });
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
        if self.awaiting_snapshot {
            // The driver is fetching the state itself (`restore_state`), and one transfer
            // at a time is put aside: the leader's waits, and stops once we follow again.
            return;
        }
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
        self.install(meta, membership);
        crate::sometimes!("snapshot_installed");
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
