//! Membership changes by joint consensus (thesis §4.3): one change at a time, only after
//! the leader committed an entry of its term; the configuration in force is the newest in
//! the log (`config_history.rs`).

use super::{MembershipError, Raft, Role};
use crate::raft::progress::{Progress, ProgressState};
use crate::raft::{Index, Membership, Payload, PlantedBug};
use crate::NodeId;
use std::collections::BTreeSet;

impl Raft {
    /// The configuration in force: the newest in the log.
    pub fn membership(&self) -> &Membership {
        self.configs.in_force()
    }

    /// The configuration in force at `index` (what a snapshot there must carry).
    pub fn membership_at(&self, index: Index) -> Membership {
        self.configs.at(index)
    }

    /// Starts a change to `voters` and `learners` (§6): if the voters change, through the
    /// joint configuration, which the leader replaces by the new one once committed. One
    /// change at a time, and only after this leader committed an entry of its term.
    /// Returns where the first entry of the change landed.
    pub fn propose_membership(
        &mut self,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<Index, MembershipError> {
        if !self.is_leader() {
            return Err(MembershipError::NotLeader { leader_hint: self.leader_id });
        }
        if voters.is_empty() || !voters.is_disjoint(&learners) {
            return Err(MembershipError::Invalid);
        }
        if self.transfer.is_some() {
            return Err(MembershipError::Transferring);
        }
        let bug = PlantedBug::ConfigChangeBeforeCommitInTerm.is_active(self.cfg.planted_bug);
        if !self.committed_in_term() && !bug {
            return Err(MembershipError::NotCommittedInTerm);
        }
        let current = self.membership().clone();
        let last_config = self.configs.newest().map(|(i, _)| i);
        // The planted bug takes a predecessor's configuration as settled.
        let settled = |i: Index| bug && self.log.term_at(i).is_some_and(|t| t < self.hard.term);
        let pending = last_config.is_some_and(|i| i > self.commit_index && !settled(i));
        if (current.is_joint() && !last_config.is_some_and(settled)) || pending {
            return Err(MembershipError::ChangeInProgress);
        }
        if let Role::Leader { progress } = &self.role {
            let streaming =
                |id: &NodeId| progress.get(id).is_some_and(|p| matches!(p.state, ProgressState::Snapshot { .. }));
            if voters.iter().any(|id| current.learners.contains(id) && streaming(id)) {
                crate::sometimes!("learner_promoted_while_snapshot_streams");
            }
        }
        let next = if voters == current.voters {
            Membership { voters, outgoing: BTreeSet::new(), learners }
        } else {
            Membership { voters, outgoing: current.voters, learners }
        };
        let index = self.append_own(Payload::Membership(next));
        self.broadcast_due = true;
        self.maybe_commit();
        Ok(index)
    }

    /// Whether the newest configuration in the log came after `index` and lists `id`.
    pub fn member_after(&self, index: Index, id: NodeId) -> bool {
        self.configs.newest().is_some_and(|(i, m)| i > index && m.is_member(id))
    }

    /// Whether a configuration change is in progress: the newest configuration is joint,
    /// or not committed yet (a leader proposes no other meanwhile).
    pub fn membership_changing(&self) -> bool {
        self.membership().is_joint() || self.configs.newest().is_some_and(|(i, _)| i > self.commit_index)
    }

    /// The configuration changed (appended, truncated, compacted or installed): a leader
    /// replicates to exactly the members.
    pub(super) fn membership_changed(&mut self) {
        let members = self.membership().members();
        let next = self.log.last_index() + 1;
        let me = self.cfg.id;
        let Role::Leader { progress } = &mut self.role else { return };
        progress.retain(|id, _| members.contains(id));
        for id in members {
            if id != me {
                progress.entry(id).or_insert_with(|| Progress::new(next));
            }
        }
    }

    /// After a commit: a committed joint configuration is followed by the new one; a
    /// leader no longer among the voters of a committed configuration steps down (§6).
    pub(super) fn advance_membership(&mut self, now_ms: u64) {
        if !self.is_leader() {
            return;
        }
        let Some((index, m)) = self.configs.newest() else {
            if !self.configs.base().is_voter(self.cfg.id) {
                let term = self.hard.term;
                self.become_follower(now_ms, term, None);
            }
            return;
        };
        if index > self.commit_index {
            return;
        }
        if m.is_joint() {
            crate::sometimes!("joint_config_committed");
            let next = Membership { voters: m.voters.clone(), outgoing: BTreeSet::new(), learners: m.learners.clone() };
            self.append_own(Payload::Membership(next));
            self.broadcast_due = true;
            self.maybe_commit();
        } else if !m.is_voter(self.cfg.id) {
            let term = self.hard.term;
            self.become_follower(now_ms, term, None);
        }
    }
}
