//! A replica move, a sans-IO core run by the range's leader: the replica on `from` is
//! replaced by one on `to` without the range ever having fewer caught-up voters than it
//! had (Raft thesis §4.2.1: a new server joins as a non-voting member until it has caught
//! up; CockroachDB's learner snapshots before promotion). Each call of `step` looks at the
//! range as it is and says the next small operation, so a step lost to a crash or a
//! refused proposal is simply asked again:
//!
//! ```text
//!   AddReplica{to} through the log  ─▶ the descriptor lists `to` (replicas.rs)
//!   learners + to                    ─▶ `to` creates its replica, gets a snapshot
//!   wait: `to`'s match reaches the entry that made it a learner, and the commit index
//!         is within CATCH_UP_LAG_ENTRIES_MAX of it
//!   voters − from + to, from a learner (joint consensus; the core leaves the joint
//!         configuration by itself once it commits)
//!   RemoveReplica{from} through the log ─▶ `from` applies it as a learner: it drops
//!         its replica and data
//!   wait: `from` holds the removal, and a heartbeat told it the commit index
//!         (REMOVAL_COMMIT_GRACE_MS), or it did not answer for REMOVAL_ACK_WAIT_MS
//!   learners − from                  ─▶ done
//! ```
//!
//! The leader never moves itself away (`from` is a follower: leadership is transferred
//! first, by the operator or placement); a move that stops leading, or outlives
//! `MOVE_TIMEOUT_MS`, is abandoned where it stands, and a move asked again goes on from
//! there.

use super::range_change::RangeChange;
use crate::keyspace::RangeDescriptor;
use crate::raft::{Index, Membership, PlantedBug};
use crate::NodeId;
use std::collections::BTreeSet;

/// How far (in entries) a learner may trail the commit index and count as caught up.
pub const CATCH_UP_LAG_ENTRIES_MAX: u64 = 16;
/// How long a move may take before it is abandoned.
pub const MOVE_TIMEOUT_MS: u64 = 30_000;
/// After the old replica acknowledged its removal entry, how long it is kept a learner
/// so that a heartbeat tells it the entry committed (a learner out of the configuration
/// hears nothing more, and would never apply its removal).
pub const REMOVAL_COMMIT_GRACE_MS: u64 = 500;
/// How long the old replica may take to acknowledge its removal (it may be down): then
/// it leaves the configuration anyway, and keeps a stale replica that serves nothing.
pub const REMOVAL_ACK_WAIT_MS: u64 = 5_000;

/// What the leader sees of its range when a move steps.
pub struct View<'a> {
    /// The range as applied here.
    pub range: &'a RangeDescriptor,
    /// The newest configuration (appended, maybe not committed).
    pub membership: &'a Membership,
    /// Whether a configuration change is still in progress (not committed, or joint).
    pub changing: bool,
    pub applied: Index,
    pub commit: Index,
    /// `to`'s and `from`'s acknowledged match indexes, if the leader tracks them.
    pub to_match: Option<Index>,
    pub from_match: Option<Index>,
}

/// The next operation of a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do until the range changes.
    Wait,
    /// Propose this change through the range's log.
    Propose(RangeChange),
    /// Propose this configuration.
    Configure { voters: BTreeSet<NodeId>, learners: BTreeSet<NodeId> },
    /// The replica moved.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("the move of range {group}'s replica from n{from} to n{to} took over {MOVE_TIMEOUT_MS} ms")]
    TimedOut { group: crate::GroupId, from: NodeId, to: NodeId },
    #[error("range {group}'s configuration changed under the move from n{from} to n{to}")]
    Conflict { group: crate::GroupId, from: NodeId, to: NodeId },
}

#[derive(Debug, Clone)]
pub struct ReplicaMove {
    pub from: NodeId,
    pub to: NodeId,
    deadline_ms: u64,
    /// A range change proposed at this index: nothing more until it is applied.
    awaiting: Option<Index>,
    /// The index from which `to` counts as a learner here (it must hold it to be promoted).
    learner_at: Option<Index>,
    /// When the removal was first seen applied, and when `from` was first seen holding it.
    removal: Option<(u64, Option<u64>)>,
    /// The removal entry's index.
    removal_index: Option<Index>,
}

impl ReplicaMove {
    pub fn new(now_ms: u64, from: NodeId, to: NodeId) -> Self {
        assert_ne!(from, to, "a move goes somewhere else");
        ReplicaMove {
            from,
            to,
            deadline_ms: now_ms + MOVE_TIMEOUT_MS,
            awaiting: None,
            learner_at: None,
            removal: None,
            removal_index: None,
        }
    }

    /// The step `step` asked for was proposed at `index`.
    pub fn proposed(&mut self, step: &Step, index: Index) {
        match step {
            Step::Propose(change) => {
                self.awaiting = Some(index);
                if matches!(change, RangeChange::RemoveReplica { .. }) {
                    self.removal_index = Some(index);
                }
            }
            Step::Configure { learners, .. } if learners.contains(&self.to) => self.learner_at = Some(index),
            _ => {}
        }
    }

    pub fn step(&mut self, now_ms: u64, v: &View, bug: Option<PlantedBug>) -> Result<Step, MoveError> {
        let (from, to, group) = (self.from, self.to, v.range.id);
        if now_ms >= self.deadline_ms {
            return Err(MoveError::TimedOut { group, from, to });
        }
        if self.awaiting.is_some_and(|i| v.applied < i) || v.changing {
            return Ok(Step::Wait);
        }
        self.awaiting = None;
        let m = v.membership;
        let listed = |n: NodeId| v.range.replicas.contains(&n);
        let step = if m.voters.contains(&from) && !m.is_member(to) {
            if listed(to) {
                Step::Configure { voters: m.voters.clone(), learners: with(&m.learners, to) }
            } else {
                Step::Propose(RangeChange::AddReplica { node: to })
            }
        } else if m.voters.contains(&from) && m.learners.contains(&to) {
            let since = *self.learner_at.get_or_insert(v.commit);
            let caught_up = v.to_match.is_some_and(|m| m >= since && m + CATCH_UP_LAG_ENTRIES_MAX >= v.commit);
            if !caught_up && !PlantedBug::RemovedBeforeCaughtUp.is_active(bug) {
                return Ok(Step::Wait);
            }
            let voters = with(&m.voters, to).into_iter().filter(|&n| n != from).collect();
            let learners = with(&m.learners, from).into_iter().filter(|&n| n != to).collect();
            Step::Configure { voters, learners }
        } else if m.voters.contains(&to) && !m.is_voter(from) {
            if listed(from) {
                Step::Propose(RangeChange::RemoveReplica { node: from })
            } else if m.learners.contains(&from) {
                let since_ms = self.removal.get_or_insert((now_ms, None)).0;
                let held = self.removal_index.is_some_and(|r| v.from_match.is_some_and(|m| m >= r));
                let acked_ms = self.removal.as_mut().map(|(_, acked)| acked).and_then(|acked| {
                    if held && acked.is_none() {
                        *acked = Some(now_ms);
                    }
                    *acked
                });
                let told = acked_ms.is_some_and(|a| now_ms >= a + REMOVAL_COMMIT_GRACE_MS);
                if !told && now_ms < since_ms + REMOVAL_ACK_WAIT_MS {
                    return Ok(Step::Wait);
                }
                Step::Configure {
                    voters: m.voters.clone(),
                    learners: m.learners.iter().copied().filter(|&n| n != from).collect(),
                }
            } else {
                Step::Done
            }
        } else {
            return Err(MoveError::Conflict { group, from, to });
        };
        Ok(step)
    }
}

fn with(set: &BTreeSet<NodeId>, n: NodeId) -> BTreeSet<NodeId> {
    let mut s = set.clone();
    s.insert(n);
    s
}

/// The step that tidies a move abandoned half-way (its leader lost leadership, it timed
/// out), for a range no move runs on and whose configuration is settled: a node the
/// descriptor lists that is no voter leaves the descriptor (`RemoveReplica`: a learner
/// never promoted, or an old replica demoted and not removed yet), then a learner the
/// descriptor no longer lists leaves the configuration. `None`: nothing to tidy. Until it
/// is tidy, the range cannot split (its halves would disagree on their replicas). Only
/// for ranges placed on some nodes: where every node hosts every range, learners are the
/// operators' own, outside any move.
pub fn tidy_step(range: &RangeDescriptor, membership: &Membership) -> Option<Step> {
    if let Some(&node) = range.replicas.iter().find(|&&n| !membership.is_voter(n)) {
        return Some(Step::Propose(RangeChange::RemoveReplica { node }));
    }
    let learner = membership.learners.iter().find(|&&n| !range.replicas.contains(&n))?;
    let learners = membership.learners.iter().copied().filter(|n| n != learner).collect();
    Some(Step::Configure { voters: membership.voters.clone(), learners })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Keyspace;

    #[test]
    fn a_half_done_move_is_tidied_back_to_the_voters() {
        // Abandoned with n4 listed and a learner: n4 leaves the descriptor, then the
        // configuration.
        let step = tidy_step(&range(&[1, 2, 3, 4]), &config(&[1, 2, 3], &[4]));
        assert_eq!(step, Some(Step::Propose(RangeChange::RemoveReplica { node: 4 })));
        let step = tidy_step(&range(&[1, 2, 3]), &config(&[1, 2, 3], &[4]));
        assert_eq!(step, Some(Step::Configure { voters: set(&[1, 2, 3]), learners: set(&[]) }));
        // Abandoned after the promotion: the old replica n3, a learner, is removed.
        let step = tidy_step(&range(&[1, 2, 3, 4]), &config(&[1, 2, 4], &[3]));
        assert_eq!(step, Some(Step::Propose(RangeChange::RemoveReplica { node: 3 })));
        // Listed but never configured (AddReplica applied, the learner never proposed).
        let step = tidy_step(&range(&[1, 2, 3, 4]), &config(&[1, 2, 3], &[]));
        assert_eq!(step, Some(Step::Propose(RangeChange::RemoveReplica { node: 4 })));
        assert_eq!(tidy_step(&range(&[1, 2, 3]), &config(&[1, 2, 3], &[])), None, "tidy");
    }

    fn range(replicas: &[NodeId]) -> RangeDescriptor {
        let mut r = Keyspace::ranged(vec![]).unwrap().place(&[1, 2, 3], 3).unwrap().descriptor(1).clone();
        r.replicas = replicas.to_vec();
        r
    }

    fn config(voters: &[NodeId], learners: &[NodeId]) -> Membership {
        Membership {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            ..Default::default()
        }
    }

    fn set(nodes: &[NodeId]) -> BTreeSet<NodeId> {
        nodes.iter().copied().collect()
    }

    /// Steps the move of n3 to n4 through every stage, as the range would go.
    #[test]
    fn a_move_adds_a_learner_waits_for_it_promotes_it_and_removes_the_old_replica() {
        let mut mv = ReplicaMove::new(0, 3, 4);
        let (r3, r34, r4) = (range(&[1, 2, 3]), range(&[1, 2, 3, 4]), range(&[1, 2, 4]));
        let (c, cl, cp, cf) =
            (config(&[1, 2, 3], &[]), config(&[1, 2, 3], &[4]), config(&[1, 2, 4], &[3]), config(&[1, 2, 4], &[]));
        let view = |range, membership, applied, to_match| View {
            range,
            membership,
            changing: false,
            applied,
            commit: applied,
            to_match,
            from_match: to_match,
        };

        let s = mv.step(1, &view(&r3, &c, 10, None), None).unwrap();
        assert_eq!(s, Step::Propose(RangeChange::AddReplica { node: 4 }));
        mv.proposed(&s, 11);
        assert_eq!(mv.step(2, &view(&r3, &c, 10, None), None).unwrap(), Step::Wait, "until it is applied");

        let s = mv.step(3, &view(&r34, &c, 11, None), None).unwrap();
        assert_eq!(s, Step::Configure { voters: set(&[1, 2, 3]), learners: set(&[4]) });
        mv.proposed(&s, 12);
        let changing = View { changing: true, ..view(&r34, &cl, 11, None) };
        assert_eq!(mv.step(4, &changing, None).unwrap(), Step::Wait, "until the configuration commits");

        assert_eq!(mv.step(5, &view(&r34, &cl, 13, Some(0)), None).unwrap(), Step::Wait, "n4 holds nothing yet");
        assert_eq!(
            mv.step(6, &view(&r34, &cl, 13, Some(11)), None).unwrap(),
            Step::Wait,
            "nor the entry that added it"
        );
        let far = View { commit: 12 + CATCH_UP_LAG_ENTRIES_MAX + 1, ..view(&r34, &cl, 13, Some(12)) };
        assert_eq!(mv.step(7, &far, None).unwrap(), Step::Wait, "too far behind the commit index");
        let s = mv.step(8, &view(&r34, &cl, 13, Some(12)), None).unwrap();
        assert_eq!(s, Step::Configure { voters: set(&[1, 2, 4]), learners: set(&[3]) }, "n3 stays a learner");

        let s = mv.step(9, &view(&r34, &cp, 15, Some(15)), None).unwrap();
        assert_eq!(s, Step::Propose(RangeChange::RemoveReplica { node: 3 }));
        mv.proposed(&s, 16);
        let behind = View { from_match: Some(15), ..view(&r4, &cp, 16, Some(16)) };
        assert_eq!(mv.step(10, &behind, None).unwrap(), Step::Wait, "n3 has not got its removal");
        assert_eq!(
            mv.step(11, &view(&r4, &cp, 16, Some(16)), None).unwrap(),
            Step::Wait,
            "a heartbeat tells n3 it is committed"
        );
        let s = mv.step(11 + REMOVAL_COMMIT_GRACE_MS, &view(&r4, &cp, 16, Some(16)), None).unwrap();
        assert_eq!(s, Step::Configure { voters: set(&[1, 2, 4]), learners: set(&[]) });
        assert_eq!(mv.step(12 + REMOVAL_COMMIT_GRACE_MS, &view(&r4, &cf, 17, Some(17)), None).unwrap(), Step::Done);
    }

    #[test]
    fn a_move_that_lasts_too_long_or_meets_another_change_stops() {
        let mut mv = ReplicaMove::new(0, 3, 4);
        let (r3, c) = (range(&[1, 2, 3]), config(&[1, 2, 3], &[]));
        let view = View {
            range: &r3,
            membership: &c,
            changing: false,
            applied: 1,
            commit: 1,
            to_match: None,
            from_match: None,
        };
        assert!(matches!(mv.step(MOVE_TIMEOUT_MS, &view, None), Err(MoveError::TimedOut { .. })));
        let mut mv = ReplicaMove::new(0, 3, 4);
        let other = config(&[1, 2], &[]);
        let view = View { membership: &other, ..view };
        assert!(matches!(mv.step(1, &view, None), Err(MoveError::Conflict { .. })), "n3 is no longer a voter");
    }
}
