//! Log compaction and InstallSnapshot (§7): the leader streams its snapshot in chunks to
//! followers whose entries it dropped; the follower assembles it (`incoming_snapshot.rs`)
//! and installs it.

use super::{Raft, Role};
use crate::raft::incoming_snapshot::Received;
use crate::raft::progress::ProgressState;
use crate::raft::{Durability, Effect, Index, Membership, Message, PlantedBug, SnapshotMeta};
use crate::NodeId;
use std::sync::Arc;

impl Raft {
    /// What the latest snapshot replaced (index 0: no snapshot).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.snapshot()
    }

    /// The driver took a snapshot of the state machine at `index` (applied, so committed)
    /// and made it durable: forget the entries it covers and send it to followers that
    /// need them.
    pub fn compact(&mut self, index: Index, data: Arc<Vec<u8>>) {
        assert!(index <= self.commit_index, "snapshot at {index} beyond commit {}", self.commit_index);
        assert!(index > self.log.snapshot().index, "snapshots move forward");
        self.configs.compact(index);
        self.log.compact_to(index);
        self.snapshot_data = Some(data);
    }

    /// `prev` is the (index, term) the entries follow.
    pub(super) fn send_snapshot_chunk(&mut self, to: NodeId, offset: u64) {
        if offset == 0 {
            crate::sometimes!("snapshot_sent");
        }
        let meta = self.log.snapshot();
        let data = self.snapshot_data.as_ref().expect("a compacted log has its snapshot");
        let start = (offset as usize).min(data.len());
        let end = (start + self.cfg.snapshot_chunk_bytes_max).min(data.len());
        let message = Message::InstallSnapshot {
            term: self.hard.term,
            meta,
            membership: self.configs.base().clone(),
            offset: start as u64,
            data: data[start..end].to_vec(),
            done: end == data.len(),
        };
        self.send(to, message, Durability::Immediately);
    }

    #[allow(clippy::too_many_arguments)] // the fields of one message
    pub(super) fn handle_install_snapshot(
        &mut self,
        now_ms: u64,
        from: NodeId,
        meta: SnapshotMeta,
        membership: Membership,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) {
        self.become_follower(now_ms, self.hard.term, Some(from));
        self.lease_until_ms = now_ms + self.cfg.election_timeout_ms_min;
        let term = self.hard.term;
        if meta.index <= self.commit_index {
            // We hold all of it already (committed entries match the leader's, §5.4).
            self.incoming_snapshot.abandon();
            let reply = Message::InstallSnapshotResponse { term, meta, received: 0, done: true };
            self.send(from, reply, Durability::Immediately);
            return;
        }
        let bytes = match self.incoming_snapshot.accept(meta, offset, &data, done) {
            Received::Partial { received } => {
                let reply = Message::InstallSnapshotResponse { term, meta, received, done: false };
                self.send(from, reply, Durability::Immediately);
                return;
            }
            Received::Complete(bytes) => bytes,
        };
        let received = bytes.len() as u64;
        let data = Arc::new(bytes);
        let kept_suffix = self.log.term_at(meta.index) == Some(meta.term);
        let discard = self.log.install(meta);
        let stale = self.membership().clone();
        let base =
            if PlantedBug::SnapshotStaleConfig.is_active(self.cfg.planted_bug) { stale } else { membership.clone() };
        self.configs.install(meta.index, base, kept_suffix);
        self.commit_index = meta.index;
        self.snapshot_data = Some(data.clone());
        crate::sometimes!("snapshot_installed");
        self.effects.push(Effect::InstallSnapshot { meta, membership, data, discard });
        let reply = Message::InstallSnapshotResponse { term, meta, received, done: true };
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
        let ProgressState::Snapshot { index, .. } = p.state else { return };
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
        } else {
            p.state = ProgressState::Snapshot { index, offset: received };
            self.send_snapshot_chunk(from, received);
        }
    }
}
