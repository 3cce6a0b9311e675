//! Leadership transfer (thesis §3.10): proposals are refused meanwhile; `TimeoutNow` goes
//! to the target once its log matches; the attempt is abandoned after an election timeout.

use super::{Raft, Role, TransferError};
use crate::raft::{Durability, Message};
use crate::NodeId;

/// A leadership transfer in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transfer {
    pub to: NodeId,
    /// `TimeoutNow` went out (once the target's log matched).
    pub timeout_now_sent: bool,
    /// When the attempt is abandoned: an election timeout after it began.
    pub deadline_ms: u64,
}

impl Raft {
    /// Hands leadership to voter `to` (thesis §3.10): proposals are refused meanwhile;
    /// once `to`'s log matches ours it is told to start an election at once, which it
    /// wins unless something fails; after an election timeout the attempt is abandoned.
    /// Asking for a transfer to ourselves, or again to the same target, changes nothing.
    pub fn transfer_leadership(&mut self, now_ms: u64, to: NodeId) -> Result<(), TransferError> {
        if !self.is_leader() {
            return Err(TransferError::NotLeader { leader_hint: self.leader_id });
        }
        if !self.membership().is_voter(to) {
            return Err(TransferError::NotAVoter(to));
        }
        if to == self.cfg.id || self.transfer.is_some_and(|t| t.to == to) {
            return Ok(());
        }
        self.transfer =
            Some(Transfer { to, timeout_now_sent: false, deadline_ms: now_ms + self.cfg.election_timeout_ms_min });
        self.maybe_send_timeout_now(to);
        // Catch the target up if it is behind: a heartbeat goes even where the pipeline
        // is paused, and a rejection sets the leader probing from the right place.
        self.send_append(to, true);
        Ok(())
    }

    /// The leadership transfer in progress, if any: its target.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.to)
    }

    pub(super) fn maybe_send_timeout_now(&mut self, from: NodeId) {
        let Some(t) = self.transfer else { return };
        let Role::Leader { progress } = &self.role else { return };
        let caught_up = progress.get(&from).is_some_and(|p| p.match_index == self.log.last_index());
        if t.to != from || t.timeout_now_sent || !caught_up {
            return;
        }
        self.transfer = Some(Transfer { timeout_now_sent: true, ..t });
        self.lease_forfeited = true;
        crate::sometimes!("transfer_timeout_now_sent");
        self.send(from, Message::TimeoutNow { term: self.hard.term }, Durability::Immediately);
    }
}
