//! Membership changes by joint consensus (Raft §6, thesis §4.3): ports of etcd's
//! TestNewLeaderPendingConfig, TestCommitAfterRemoveNode, TestLearnerReceiveSnapshot and
//! the add / remove / replace / remove-the-leader cases, on the clocked test network.

use super::tests_prevote::Net;
use super::*;
use crate::NodeId;
use std::collections::BTreeSet;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

/// A network of `n` nodes whose group starts as voters `voters` (the others wait outside).
fn net_with_voters(n: u64, voters: &[NodeId]) -> Net {
    net_with(n, voters, false)
}

fn net_with(n: u64, voters: &[NodeId], check_quorum: bool) -> Net {
    let mut net = Net::new(n, false, check_quorum);
    for r in net.nodes.values_mut() {
        let mut cfg = r.cfg.clone();
        cfg.voters = voters.to_vec();
        let id = cfg.id;
        *r = Raft::new(cfg, id, 0, HardState::default(), vec![]).unwrap();
    }
    net
}

fn change(net: &mut Net, leader: NodeId, voters: &[NodeId], learners: &[NodeId]) -> Result<Index, MembershipError> {
    let r = net.nodes.get_mut(&leader).unwrap();
    let result = r.propose_membership(set(voters), set(learners));
    net.deliver();
    result
}

#[test]
fn adding_a_voter_goes_through_the_joint_configuration() {
    let mut net = net_with_voters(4, &[1, 2, 3]);
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    let index = change(&mut net, 1, &[1, 2, 3, 4], &[]).unwrap();
    let leader = net.get(1);
    let joint = match &leader.entry(index).unwrap().payload {
        Payload::Membership(m) => m.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(joint.outgoing, set(&[1, 2, 3]), "C_old,new first");
    assert_eq!(leader.membership(), &Membership::with_voters([1, 2, 3, 4]), "then C_new, once the joint one committed");
    assert_eq!(leader.commit_index(), index + 1);
    assert_eq!(net.get(4).membership(), leader.membership(), "the new voter has the log");
    // The new voter counts: with 1 and 4 cut off, 2 and 3 are no majority of four.
    net.isolate(4);
    net.nodes.get_mut(&1).unwrap().propose(b"x".to_vec()).unwrap();
    net.isolate(1);
    net.deliver();
    let before = net.get(1).commit_index();
    net.advance(5);
    assert_eq!(net.get(1).commit_index(), before, "1, 2, 3 of {{1, 2, 3, 4}} without 4's ack: 2 and 3 never answered");
}

/// etcd TestNewLeaderPendingConfig: a leader that has not committed an entry of its term
/// refuses to start a change (the bug in the original single-server algorithm).
#[test]
fn new_leader_pending_config() {
    let mut net = net_with_voters(3, &[1, 2, 3]);
    net.cut.insert((2, 1));
    net.cut.insert((3, 1));
    let r = net.nodes.get_mut(&1).unwrap();
    let t = r.next_deadline_ms();
    r.step(t, Input::Tick);
    for v in [2, 3] {
        let message = Message::RequestVoteResponse { term: 1, granted: true };
        r.step(t, Input::Receive(Envelope { group: 1, from: v, to: 1, message }));
    }
    assert!(r.is_leader());
    assert_eq!(r.propose_membership(set(&[1, 2]), set(&[])), Err(MembershipError::NotCommittedInTerm));
    net.now_ms = t;
    net.cut.clear();
    net.advance(20);
    assert_eq!(change(&mut net, 1, &[1, 2], &[]).map(|_| ()), Ok(()), "after the no-op commits");
    // One change at a time: while one is uncommitted, another is refused.
    net.isolate(2);
    change(&mut net, 1, &[1, 2, 3], &[]).unwrap();
    assert_eq!(change(&mut net, 1, &[1], &[]), Err(MembershipError::ChangeInProgress));
}

/// etcd TestCommitAfterRemoveNode: once a node is removed, entries commit without it.
/// The removed node never hears of its removal (the leader stops replicating to it when
/// C_new is appended), so it campaigns; check-quorum's lease keeps it from disrupting
/// (thesis §4.2.3).
#[test]
fn commit_after_remove_node() {
    let mut net = net_with(3, &[1, 2, 3], true);
    net.fire(1);
    change(&mut net, 1, &[1, 2], &[]).unwrap();
    assert_eq!(net.get(1).membership(), &Membership::with_voters([1, 2]));
    net.isolate(3);
    let (index, _) = net.nodes.get_mut(&1).unwrap().propose(b"after".to_vec()).unwrap();
    net.deliver();
    assert_eq!(net.get(1).commit_index(), index, "1 and 2 are the whole majority now");
    net.heal();
    net.advance(500);
    assert_eq!(net.leaders(), vec![1], "the removed node does not disrupt");
    assert_eq!(net.get(1).term(), 1);
}

#[test]
fn removing_the_leader_hands_over_after_the_change_commits() {
    let mut net = net_with_voters(3, &[1, 2, 3]);
    net.fire(1);
    change(&mut net, 1, &[2, 3], &[]).unwrap();
    assert!(!net.get(1).is_leader(), "stepped down once C_new committed");
    assert_eq!(net.get(2).membership(), &Membership::with_voters([2, 3]));
    net.advance(1000);
    let leaders = net.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1, "the removed node never campaigns");
}

#[test]
fn replacing_a_voter() {
    let mut net = net_with_voters(4, &[1, 2, 3]);
    net.fire(1);
    change(&mut net, 1, &[1, 2, 4], &[]).unwrap();
    assert_eq!(net.get(1).membership(), &Membership::with_voters([1, 2, 4]));
    net.isolate(3);
    let (index, _) = net.nodes.get_mut(&1).unwrap().propose(b"x".to_vec()).unwrap();
    net.deliver();
    assert_eq!(net.get(1).commit_index(), index);
}

/// Learners receive the log (etcd TestLearnerReceiveSnapshot: a snapshot too), never
/// count and never campaign; promotion makes them voters.
#[test]
fn learners_receive_the_log_and_snapshots_then_are_promoted() {
    let mut net = net_with_voters(4, &[1, 2, 3]);
    net.fire(1);
    for i in 0..5u8 {
        net.nodes.get_mut(&1).unwrap().propose(vec![i]).unwrap();
        net.deliver();
    }
    let leader = net.nodes.get_mut(&1).unwrap();
    let commit = leader.commit_index();
    leader.compact(commit);
    change(&mut net, 1, &[1, 2, 3], &[4]).unwrap();
    net.advance(30);
    let learner = net.get(4);
    assert!(learner.snapshot_meta().index >= commit, "caught up from the snapshot");
    assert_eq!(learner.commit_index(), net.get(1).commit_index());
    assert!(learner.membership().learners.contains(&4));
    // A learner does not count: with 2 and 3 cut off, nothing commits.
    net.isolate(2);
    net.isolate(3);
    let (index, _) = net.nodes.get_mut(&1).unwrap().propose(b"y".to_vec()).unwrap();
    net.deliver();
    assert!(net.get(1).commit_index() < index);
    // Nor does it campaign, however long it waits.
    net.isolate(1);
    net.advance(2000);
    assert_eq!(net.get(4).role_name(), "follower");
    net.heal();
    net.advance(2000);
    let leader = net.leaders()[0];
    change(&mut net, leader, &[1, 2, 3, 4], &[]).unwrap();
    assert!(net.get(leader).membership().is_voter(4), "promoted");
}

/// The snapshot carries the configuration at its index, and a node rebuilt from it (or
/// a follower that installs it) uses it.
#[test]
fn the_snapshot_carries_the_configuration() {
    let mut net = net_with_voters(4, &[1, 2, 3]);
    net.fire(1);
    change(&mut net, 1, &[1, 2, 4], &[]).unwrap();
    let leader = net.nodes.get_mut(&1).unwrap();
    let commit = leader.commit_index();
    assert_eq!(leader.membership_at(commit), Membership::with_voters([1, 2, 4]));
    leader.compact(commit);
    assert_eq!(leader.membership(), &Membership::with_voters([1, 2, 4]), "kept across compaction");
}

/// Found by the simulator (membership_changes, seed 6): the leader of {4, 5} removed
/// itself, C_new = {5} reached no one before 5 was cut off, and the leader stepped down
/// (check-quorum). 5 could not win the joint election without 4's vote, which 4 refused
/// (its log is longer), and 4, outside C_new, never campaigned: no leader, ever. A node
/// outside its newest, uncommitted configuration may now campaign; C_new's quorum decides.
#[test]
fn a_leader_that_removed_itself_and_lost_its_quorum_does_not_leave_the_group_stuck() {
    let mut net = net_with(2, &[1, 2], true);
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    // By hand: the joint entry goes to 2 and its acknowledgement back, so the joint
    // configuration commits; C_new's append to 2 is lost, and then the link goes.
    let now = net.now_ms;
    let sends = |effects: Vec<Effect>| -> Vec<Envelope> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Send { envelope, .. } => Some(envelope),
                _ => None,
            })
            .collect()
    };
    net.nodes.get_mut(&1).unwrap().propose_membership(set(&[2]), set(&[])).unwrap();
    for env in sends(net.nodes.get_mut(&1).unwrap().drain_effects()) {
        net.nodes.get_mut(&2).unwrap().step(now, Input::Receive(env));
    }
    for env in sends(net.nodes.get_mut(&2).unwrap().drain_effects()) {
        net.nodes.get_mut(&1).unwrap().step(now, Input::Receive(env));
    }
    let lost = net.nodes.get_mut(&1).unwrap().drain_effects();
    assert!(lost.iter().any(|e| matches!(e, Effect::AppendLog(_))), "C_new appended: {lost:?}");
    net.isolate(1);
    assert_eq!(net.get(1).membership().voters, set(&[2]), "C_new appended");
    assert_eq!(net.get(2).membership().outgoing, set(&[1, 2]), "2 is still joint: C_new never reached it");
    net.advance(1_000);
    assert!(net.leaders().is_empty(), "1 stepped down: no quorum of C_new = {{2}} answers");
    net.heal();
    net.advance(2_000);
    assert_eq!(net.leaders(), vec![2], "1 campaigned with C_new, then handed over to 2");
    assert_eq!(net.get(2).membership().voters, set(&[2]));
    assert!(!net.get(2).membership().is_joint());
}
