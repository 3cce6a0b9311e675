//! ReadIndex (Raft thesis §6.4): exact effects, etcd's TestReadOnlyForNewLeader, and the
//! property that matters most: a deposed leader never serves a read.

use super::tests_prevote::Net;
use super::*;
use crate::NodeId;

fn ready(net: &Net, node: NodeId) -> Vec<(u64, Index)> {
    net.seen
        .iter()
        .filter_map(|(n, e)| match e {
            Effect::ReadReady { id, index } if *n == node => Some((*id, *index)),
            _ => None,
        })
        .collect()
}

fn failed(net: &Net, node: NodeId) -> Vec<u64> {
    net.seen
        .iter()
        .filter_map(|(n, e)| match e {
            Effect::ReadFailed { id } if *n == node => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_read_waits_for_one_round_confirmed_by_a_quorum() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    let commit = net.get(1).commit_index();
    assert_eq!(commit, 1, "the leader's no-op is committed");
    let leader = net.nodes.get_mut(&1).unwrap();
    leader.read_index(0, 7).unwrap();
    leader.read_index(0, 8).unwrap();
    let effects = leader.drain_effects();
    // One round for both reads: a heartbeat with read_seq 1 to each follower, at once, and
    // no answer yet.
    let rounds: Vec<(NodeId, u64)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send {
                envelope: Envelope { to, message: Message::Heartbeat { read_seq, .. }, .. },
                after: Durability::Immediately,
            } => Some((*to, *read_seq)),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, vec![(2, 1), (3, 1)]);
    assert!(!effects.iter().any(|e| matches!(e, Effect::ReadReady { .. })));
    // One follower's echo makes a quorum with the leader.
    let echo = Message::HeartbeatResponse { term: 1, read_seq: 1, clock: ClockEcho::default() };
    leader.step(0, Input::Receive(Envelope { group: 1, from: 2, to: 1, message: echo }));
    let effects = leader.drain_effects();
    let answered: Vec<&Effect> = effects.iter().filter(|e| matches!(e, Effect::ReadReady { .. })).collect();
    assert_eq!(answered, vec![&Effect::ReadReady { id: 7, index: 1 }, &Effect::ReadReady { id: 8, index: 1 }]);
}

/// etcd TestReadOnlyForNewLeader: a leader that has not committed an entry of its own
/// term does not know the commit index yet, so its reads wait for that commit.
#[test]
fn read_only_for_new_leader() {
    let mut net = Net::new(3, false, false);
    // Node 1 wins, but its no-op's acknowledgements are lost: nothing committed this term.
    net.cut.insert((2, 1));
    net.cut.insert((3, 1));
    let r = net.nodes.get_mut(&1).unwrap();
    let t = r.next_deadline_ms();
    r.step(t, Input::Tick);
    net.now_ms = t;
    let votes = [2, 3].map(|v| Envelope {
        group: 1,
        from: v,
        to: 1,
        message: Message::RequestVoteResponse { term: 1, granted: true },
    });
    for v in votes {
        r.step(t, Input::Receive(v));
    }
    assert!(r.is_leader());
    r.read_index(0, 1).unwrap();
    net.deliver();
    assert_eq!(net.get(1).commit_index(), 0);
    assert!(ready(&net, 1).is_empty(), "no read before the first commit of the term");
    // The acks get through at the next heartbeat: the no-op commits, then a round confirms.
    net.cut.clear();
    net.advance(20);
    assert_eq!(net.get(1).commit_index(), 1);
    assert_eq!(ready(&net, 1), vec![(1, 1)]);
}

/// A leader cut off from the others keeps believing it leads (no check-quorum here), but
/// its reads never get a quorum's confirmation; when it learns of the new term it fails
/// them. Meanwhile the new leader commits writes the old one never saw.
#[test]
fn a_deposed_leader_never_serves_a_read() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    net.isolate(1);
    net.fire(2);
    assert!(net.get(2).is_leader());
    net.nodes.get_mut(&2).unwrap().propose(b"new".to_vec()).unwrap();
    net.deliver();
    assert!(net.get(1).is_leader(), "the old leader does not know yet");
    net.nodes.get_mut(&1).unwrap().read_index(0, 5).unwrap();
    net.advance(50);
    assert!(ready(&net, 1).is_empty(), "no quorum confirms the old leader");
    net.heal();
    net.advance(50);
    assert!(!net.get(1).is_leader());
    assert!(ready(&net, 1).is_empty());
    assert_eq!(failed(&net, 1), vec![5]);
}

#[test]
fn a_follower_refuses_reads_with_a_hint() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    let e = net.nodes.get_mut(&2).unwrap().read_index(0, 1).unwrap_err();
    assert_eq!(e, ProposeError::NotLeader { leader_hint: Some(1) });
}

#[cfg(feature = "planted-bugs")]
#[test]
fn the_planted_bug_serves_a_read_without_the_quorum() {
    let mut net = Net::with_bug(3, false, false, Some(PlantedBug::ReadIndexWithoutQuorum));
    net.fire(1);
    net.isolate(1);
    net.nodes.get_mut(&1).unwrap().read_index(0, 9).unwrap();
    net.deliver();
    assert_eq!(ready(&net, 1), vec![(9, 1)], "served by a leader that cannot know it still leads");
}
