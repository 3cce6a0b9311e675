//! The node's own range changes: replica moves it runs as a range's leader
//! (`replica_move.rs` decides each step) and the splits its ranges' triggers ask for
//! (`split_trigger.rs`), taken a step each turn of the event loop.

use super::{Node, MOVES_MAX};
use crate::io::{Storage, Transport};
use crate::node::replica_move::{tidy_step, ReplicaMove, Step, View};
use crate::node::split_trigger::{SplitReason, Want};
use crate::node::{ControlError, NodeError};
use crate::state_machine::StateMachine;
use crate::{GroupId, NodeId};
use std::collections::BTreeSet;

impl<T: Transport, S: Storage, M: StateMachine> Node<T, S, M> {
    /// Checks a move of `group`'s replica from `from` to `to` and starts it (see
    /// `replica_move.rs`); returns the node it moves from.
    pub(super) fn start_move(
        &mut self,
        now_ms: u64,
        group: GroupId,
        from: Option<NodeId>,
        to: NodeId,
    ) -> Result<NodeId, ControlError> {
        let me = self.cfg.id();
        let g = self.groups.get(&group).ok_or(ControlError::NoSuchGroup(group))?;
        if !g.raft.is_leader() {
            return Err(ControlError::NotLeader { group, leader_hint: g.raft.leader_id() });
        }
        if self.moves.contains_key(&group) || g.raft.membership_changing() {
            return Err(ControlError::MoveInProgress { group });
        }
        if self.moves.len() >= MOVES_MAX {
            return Err(ControlError::TooManyMoves { running: self.moves.len() });
        }
        let membership = g.raft.membership();
        let from = match from {
            Some(n) => n,
            None => membership
                .voters
                .iter()
                .copied()
                .find(|&n| n != me)
                .ok_or(ControlError::MoveFromLeader { group, node: me })?,
        };
        if from == me {
            return Err(ControlError::MoveFromLeader { group, node: me });
        }
        if !membership.voters.contains(&from) {
            return Err(ControlError::MoveFromNonVoter { group, node: from });
        }
        if !self.is_server(to) {
            return Err(ControlError::MoveToNonServer { node: to });
        }
        if g.range().replicas.contains(&to) || membership.is_member(to) {
            return Err(ControlError::MoveToReplica { group, node: to });
        }
        self.moves.insert(group, ReplicaMove::new(now_ms, from, to));
        Ok(from)
    }

    /// Takes every move one step (as far as its range allows now): a move whose range
    /// this node no longer leads, or that fails, is abandoned where it stands.
    pub(super) fn drive_moves(&mut self, now_ms: u64) {
        let node = self.cfg.id();
        let mut ended = Vec::new();
        for (&group, mv) in self.moves.iter_mut() {
            let Some(g) = self.groups.get_mut(&group).filter(|g| g.raft.is_leader()) else {
                tracing::warn!(node, group, from = mv.from, to = mv.to, "replica move abandoned: no longer leading");
                ended.push(group);
                continue;
            };
            let matches = g.raft.follower_match();
            let match_of = |node: NodeId| matches.iter().find(|&&(n, _)| n == node).map(|&(_, m)| m);
            let membership = g.raft.membership().clone();
            let view = View {
                range: g.range(),
                membership: &membership,
                changing: g.raft.membership_changing(),
                applied: g.applied_index(),
                commit: g.raft.commit_index(),
                to_match: match_of(mv.to),
                from_match: match_of(mv.from),
            };
            let bug = g.raft.config().planted_bug;
            let step = match mv.step(now_ms, &view, bug) {
                Ok(step) => step,
                Err(e) => {
                    tracing::warn!(node, group, error = %e, "replica move abandoned");
                    ended.push(group);
                    continue;
                }
            };
            let proposed = match &step {
                Step::Wait => continue,
                Step::Done => {
                    crate::sometimes!("replica_moved");
                    tracing::info!(node, group, from = mv.from, to = mv.to, "replica moved");
                    ended.push(group);
                    continue;
                }
                Step::Propose(change) => {
                    g.raft.propose_range(change.encode()).map(|(i, _)| i).map_err(ControlError::from)
                }
                Step::Configure { voters, learners } => {
                    g.raft.propose_membership(voters.clone(), learners.clone()).map_err(ControlError::from)
                }
            };
            match proposed {
                Ok(index) => mv.proposed(&step, index),
                // Refused for now (a transfer, back-pressure): asked again next turn.
                Err(e) => tracing::debug!(node, group, error = %e, "replica move step refused"),
            }
        }
        for group in ended {
            self.moves.remove(&group);
        }
    }

    /// Tidies the ranges this node leads that a move left half-done (`tidy_step`), one
    /// step at a time: the next waits until the last one proposed is applied here.
    pub(super) fn tidy_half_moves(&mut self) {
        let node = self.cfg.id();
        let voters = self.cfg.raft.voters.len();
        if !self.cfg.keyspace.ranges().iter().any(|r| r.replicas.len() < voters) {
            return;
        }
        let (moves, tidying) = (&self.moves, &mut self.tidying);
        tidying.retain(|g, index| self.groups.get(g).is_some_and(|r| r.raft.is_leader() && r.applied_index() < *index));
        for (&group, g) in self.groups.iter_mut() {
            if !g.raft.is_leader() || g.raft.membership_changing() || moves.contains_key(&group) {
                continue;
            }
            if tidying.contains_key(&group) || g.is_removed() {
                continue;
            }
            let Some(step) = tidy_step(g.range(), g.raft.membership()) else { continue };
            let proposed = match &step {
                Step::Propose(change) => {
                    g.raft.propose_range(change.encode()).map(|(i, _)| i).map_err(ControlError::from)
                }
                Step::Configure { voters, learners } => {
                    g.raft.propose_membership(voters.clone(), learners.clone()).map_err(ControlError::from)
                }
                Step::Wait | Step::Done => unreachable!("tidying proposes"),
            };
            match proposed {
                Ok(index) => {
                    crate::sometimes!("half_move_tidied");
                    tracing::info!(node, group, ?step, "tidying a move left half-done");
                    tidying.insert(group, index);
                }
                Err(e) => tracing::debug!(node, group, error = %e, "tidying step refused"),
            }
        }
    }

    /// Asks every range this node leads whether it wants to split (`split_trigger.rs`),
    /// and proposes the splits wanted. A range is eligible unless a move or membership
    /// change of it runs, or the node hosts as many ranges as it may.
    pub(super) fn drive_splits(&mut self, now_ms: u64) -> Result<(), NodeError> {
        let node = self.cfg.id();
        let room = self.topology.hosted.len() < crate::keyspace::GROUPS_MAX as usize;
        for (&group, g) in self.groups.iter_mut() {
            let membership = g.raft.membership();
            let listed: BTreeSet<NodeId> = g.range().replicas.iter().copied().collect();
            let settled =
                !g.raft.membership_changing() && membership.learners.is_empty() && listed == membership.voters;
            let eligible = room && g.raft.is_leader() && settled && !self.moves.contains_key(&group) && !g.is_removed();
            let Some(mut want) = g.poll_split(now_ms, eligible) else { continue };
            if let Want::Read { from } = &want {
                // One page a turn: the search spreads over turns, the loop never stalls.
                g.read_for_split(now_ms, &self.disk.storage, from)?;
                match g.poll_split(now_ms, eligible) {
                    Some(split @ Want::Split { .. }) => want = split,
                    _ => continue,
                }
            }
            let Want::Split { key, reason } = want else { continue };
            let (bytes, ops_per_s) = (g.size().bytes, g.ops_per_s());
            match g.propose_split(&key) {
                Ok(index) => {
                    match reason {
                        SplitReason::Size => crate::sometimes!("range_split_by_size"),
                        SplitReason::Load => crate::sometimes!("range_split_by_load"),
                    }
                    tracing::info!(node, group, index, ?reason, bytes, ops_per_s, key = ?key, "range split proposed");
                }
                Err(e) => tracing::debug!(node, group, error = %e, "range split not proposed"),
            }
        }
        Ok(())
    }

    /// Proposes a split before `key` in the range holding it, which this node must lead.
    pub(super) fn split(&mut self, key: &[u8]) -> Result<GroupId, ControlError> {
        let group =
            self.route_keys(&[key]).map_err(|_| ControlError::SplitOutsideRange { group: 0, key: key.to_vec() })?;
        let hosted = self.topology.hosted.len();
        if hosted >= crate::keyspace::GROUPS_MAX as usize {
            return Err(ControlError::TooManyGroups { hosted });
        }
        let replica = self.groups.get_mut(&group).ok_or(ControlError::NoSuchGroup(group))?;
        replica.propose_split(key)?;
        Ok(group)
    }
}
