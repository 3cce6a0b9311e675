//! Leadership transfer (Raft thesis §3.10): ports of etcd's `TestLeaderTransfer*` cases.

use super::tests_prevote::Net;
use super::*;

fn transfer(net: &mut Net, from: NodeId, to: NodeId) -> Result<(), TransferError> {
    let now = net.now_ms;
    let r = net.nodes.get_mut(&from).unwrap();
    let result = r.transfer_leadership(now, to);
    net.deliver();
    result
}

fn propose(net: &mut Net, at: NodeId) -> Result<(Index, Term), ProposeError> {
    let result = net.nodes.get_mut(&at).unwrap().propose(b"x".to_vec());
    net.deliver();
    result
}

use crate::NodeId;

/// etcd TestLeaderTransferToUpToDateNode (and back again).
#[test]
fn leader_transfer_to_up_to_date_node() {
    for (pre_vote, check_quorum) in [(false, false), (true, true)] {
        let mut net = Net::new(3, pre_vote, check_quorum);
        net.fire(1);
        transfer(&mut net, 1, 2).unwrap();
        assert_eq!(net.leaders(), vec![2], "pre_vote {pre_vote}, check_quorum {check_quorum}");
        assert_eq!(net.get(2).term(), 2);
        propose(&mut net, 2).unwrap();
        transfer(&mut net, 2, 1).unwrap();
        assert_eq!(net.leaders(), vec![1]);
        assert_eq!(net.get(1).term(), 3);
    }
}

/// etcd TestLeaderTransferWithCheckQuorum: voters still in the old leader's lease vote
/// for the target, because the election is the leader's own request.
#[test]
fn leader_transfer_with_check_quorum() {
    let mut net = Net::new(3, true, true);
    net.fire(1);
    net.advance(20);
    transfer(&mut net, 1, 3).unwrap();
    assert_eq!(net.leaders(), vec![3]);
}

/// etcd TestLeaderTransferToSlowFollower: the target is caught up first.
#[test]
fn leader_transfer_to_slow_follower() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    net.isolate(3);
    for _ in 0..5 {
        propose(&mut net, 1).unwrap();
    }
    net.heal();
    assert!(net.get(3).last_index() < net.get(1).last_index());
    transfer(&mut net, 1, 3).unwrap();
    assert_eq!(net.leaders(), vec![3]);
    assert_eq!(net.get(3).last_index(), 7, "the five entries, the old no-op and its own no-op");
}

/// etcd TestLeaderTransferIgnoreProposal and TestLeaderTransferTimeout: proposals are
/// refused while the transfer runs; a target that never answers is given up on after an
/// election timeout, and the leader takes proposals again.
#[test]
fn leader_transfer_refuses_proposals_then_times_out() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    net.isolate(3);
    transfer(&mut net, 1, 3).unwrap();
    assert_eq!(net.get(1).transfer_target(), Some(3));
    assert_eq!(propose(&mut net, 1), Err(ProposeError::Transferring { to: 3 }));
    net.advance(99);
    assert_eq!(net.get(1).transfer_target(), Some(3), "still within the election timeout");
    net.advance(2);
    assert_eq!(net.get(1).transfer_target(), None, "abandoned");
    assert_eq!(net.leaders(), vec![1]);
    assert!(propose(&mut net, 1).is_ok());
}

/// etcd TestLeaderTransferToSelf, TestLeaderTransferToNonExistingNode and
/// TestLeaderTransferReceiveHigherTermVote's precondition: nothing happens.
#[test]
fn leader_transfer_to_self_or_a_stranger_or_from_a_follower() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    assert_eq!(transfer(&mut net, 1, 1), Ok(()));
    assert_eq!(net.get(1).transfer_target(), None);
    assert_eq!(transfer(&mut net, 1, 9), Err(TransferError::NotAVoter(9)));
    assert_eq!(transfer(&mut net, 2, 3), Err(TransferError::NotLeader { leader_hint: Some(1) }));
    assert_eq!(net.leaders(), vec![1]);
}

/// etcd TestLeaderTransferSecondTransferToAnotherNode: a second request redirects the
/// transfer; TestLeaderTransferSecondTransferToSameNode: a repeat does not extend it.
#[test]
fn leader_transfer_second_transfer() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    net.isolate(3);
    transfer(&mut net, 1, 3).unwrap();
    net.advance(50);
    transfer(&mut net, 1, 3).unwrap();
    net.advance(51);
    assert_eq!(net.get(1).transfer_target(), None, "the repeat did not restart the clock");
    // Redirected before 3 answers: 2 is up to date, so it gets TimeoutNow at once.
    transfer(&mut net, 1, 3).unwrap();
    transfer(&mut net, 1, 2).unwrap();
    assert_eq!(net.leaders(), vec![2]);
    net.heal();
    net.advance(50);
    assert_eq!(net.leaders(), vec![2], "3 never got its TimeoutNow");
}

/// A follower ignores TimeoutNow from anyone but its leader (a stale or forged one).
#[test]
fn timeout_now_from_a_non_leader_is_ignored() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    let r = net.nodes.get_mut(&2).unwrap();
    r.step(0, Input::Receive(Envelope { group: 1, from: 3, to: 2, message: Message::TimeoutNow { term: 1 } }));
    assert_eq!(r.role_name(), "follower");
    assert_eq!(r.term(), 1);
}
