//! etcd TestLogReplicationWithReorderedMessage and friends: appends and their answers
//! arrive out of order, duplicated or late, and the leader's view of a follower only
//! ever moves forward.

use super::tests_prevote::Net;
use super::*;
use crate::NodeId;

/// Takes node `from`'s sends to `to`, in order, leaving everything else undelivered.
fn sends_to(net: &mut Net, from: NodeId, to: NodeId) -> Vec<Envelope> {
    net.nodes
        .get_mut(&from)
        .unwrap()
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { envelope, .. } if envelope.to == to => Some(envelope),
            _ => None,
        })
        .collect()
}

#[test]
fn log_replication_with_reordered_messages() {
    let mut net = Net::new(2, false, false);
    net.fire(1);
    // Two proposals, two appends in flight to node 2.
    net.nodes.get_mut(&1).unwrap().propose(b"a".to_vec()).unwrap();
    let first = sends_to(&mut net, 1, 2);
    net.nodes.get_mut(&1).unwrap().propose(b"b".to_vec()).unwrap();
    let second = sends_to(&mut net, 1, 2);
    assert_eq!((first.len(), second.len()), (1, 1));
    // The second arrives first: node 2 cannot place it yet and says so.
    let now = net.now_ms;
    let follower = net.nodes.get_mut(&2).unwrap();
    follower.step(now, Input::Receive(second[0].clone()));
    let refusal = sends_to(&mut net, 2, 1);
    // Then the first, and the second again (a duplicate).
    let follower = net.nodes.get_mut(&2).unwrap();
    follower.step(now, Input::Receive(first[0].clone()));
    follower.step(now, Input::Receive(second[0].clone()));
    let answers = sends_to(&mut net, 2, 1);
    // The leader hears the answers in the worst order: the successes, then the stale refusal.
    let leader = net.nodes.get_mut(&1).unwrap();
    for env in answers.into_iter().chain(refusal) {
        leader.step(now, Input::Receive(env));
    }
    net.deliver();
    assert_eq!(net.get(1).commit_index(), 3, "the no-op and both proposals committed");
    assert_eq!(net.get(2).last_index(), 3);
    net.advance(30);
    assert_eq!(net.get(2).commit_index(), 3, "the next heartbeat carries the commit");
    assert_eq!(net.leaders(), vec![1]);
}
