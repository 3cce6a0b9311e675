//! Lease reads (thesis §6.4.1) and the clock-drift check that guards them (`lease.rs`).
//! The harness's election timeouts are 100..200 ms with 10 ms heartbeats, so with the
//! default 1% drift bound a lease lasts `lease::lease_ms(100, 10_000)` = 96 ms.

use super::lease::{lease_ms, DRIFT_SPAN_MS_MIN};
use super::tests_prevote::Net;
use super::*;
use crate::NodeId;

const LEASE_MS: u64 = 96;

fn lease_net(n: u64) -> Net {
    Net::build(n, |c| c.lease_reads = true)
}

/// Node 1 leads, committed in its term, and every clock has been checked.
fn settled(net: &mut Net) {
    // Every node refuses votes for an election timeout after it starts.
    net.advance(100);
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    net.advance(DRIFT_SPAN_MS_MIN + 100);
}

fn read(net: &mut Net, at: NodeId, id: u64) -> Vec<Effect> {
    let now = net.local(at);
    net.nodes.get_mut(&at).unwrap().read_index(now, id).unwrap();
    net.nodes.get_mut(&at).unwrap().drain_effects()
}

#[test]
fn the_harness_lease_is_what_lease_rs_computes() {
    assert_eq!(lease_ms(100, 10_000), LEASE_MS);
}

#[test]
fn a_read_inside_the_lease_is_answered_at_once_without_messages() {
    let mut net = lease_net(3);
    settled(&mut net);
    let commit = net.get(1).commit_index();
    assert_eq!(read(&mut net, 1, 7), vec![Effect::ReadReady { id: 7, index: commit }]);
    assert_eq!(net.get(1).lease_reads_served(), 1);
}

#[test]
fn without_lease_reads_every_read_takes_a_round() {
    let mut net = Net::new(3, true, true);
    net.fire(1);
    net.advance(500);
    let effects = read(&mut net, 1, 7);
    assert!(effects.iter().all(|e| matches!(e, Effect::Send { .. })), "{effects:?}");
    assert_eq!(effects.len(), 2, "one append per follower");
}

#[test]
fn the_lease_ends_a_lease_after_the_last_acknowledged_append() {
    let mut net = lease_net(3);
    settled(&mut net);
    // A heartbeat round, acknowledged at once; then the leader is cut off.
    net.fire(1);
    let sent = net.now_ms;
    net.isolate(1);
    let r = net.get(1);
    assert!(r.lease_valid(sent + LEASE_MS - 1));
    assert!(!r.lease_valid(sent + LEASE_MS));
    // Past it, a read needs a round of messages (which go nowhere now).
    net.now_ms = sent + LEASE_MS;
    let effects = read(&mut net, 1, 9);
    assert!(!effects.iter().any(|e| matches!(e, Effect::ReadReady { .. })), "{effects:?}");
}

/// The property leases rest on: while the old leader's lease holds, no other leader.
fn assert_no_leader_inside_the_lease(net: &mut Net, old: NodeId, ms: u64) -> bool {
    let mut other_leader = false;
    for _ in 0..ms {
        net.advance(1);
        let now = net.local(old);
        let others: Vec<NodeId> = net.leaders().into_iter().filter(|&l| l != old).collect();
        if !others.is_empty() {
            other_leader = true;
            assert!(!net.get(old).lease_valid(now), "node {others:?} leads while {old} holds a lease at {now}");
        }
    }
    other_leader
}

#[test]
fn no_other_leader_is_elected_while_an_isolated_leaders_lease_holds() {
    let mut net = lease_net(5);
    settled(&mut net);
    net.fire(1);
    net.isolate(1);
    assert!(assert_no_leader_inside_the_lease(&mut net, 1, 400), "the others elect a leader in the end");
}

#[test]
fn followers_with_fast_clocks_stop_backing_the_lease() {
    // Nodes 2 and 3 run 50% fast: their vote leases end after 67 ms of true time, well
    // inside a lease computed for a 1% bound. The leader sees it and stops counting them.
    let mut net = lease_net(5);
    net.rate_ppm.extend([(2, 1_500_000), (3, 1_500_000)]);
    settled(&mut net);
    let (violations, latest) = net.get(1).drift_violations();
    assert!(violations >= 2, "{violations}");
    assert!(matches!(latest, Some((2 | 3, v)) if v.ratio_ppm > 1_100_000), "{latest:?}");
    // Leader, 4 and 5 still make a quorum of checked clocks: the lease holds.
    assert!(net.get(1).lease_valid(net.local(1)));
    net.rate_ppm.insert(4, 1_500_000);
    // (Rates apply from time 0: node 4's clock jumps ahead, which the check sees as well.)
    net.advance(200);
    let now = net.local(1);
    assert!(!net.get(1).lease_valid(now), "only 5 is left within the bound");
    // The read falls back to ReadIndex: a round of messages confirms it.
    net.nodes.get_mut(&1).unwrap().read_index(now, 3).unwrap();
    net.deliver();
    assert!(net.seen.iter().any(|(id, e)| *id == 1 && matches!(e, Effect::ReadReady { id: 3, .. })));
    assert_eq!(net.get(1).lease_reads_served(), 0);
}

#[test]
fn fast_followers_and_an_isolated_leader_still_give_no_overlapping_leader() {
    let mut net = lease_net(3);
    net.rate_ppm.extend([(2, 1_900_000), (3, 1_900_000)]);
    settled(&mut net);
    net.fire(1);
    net.isolate(1);
    assert!(assert_no_leader_inside_the_lease(&mut net, 1, 400));
}

#[test]
fn a_leader_that_sent_timeout_now_holds_no_lease_for_the_rest_of_its_term() {
    let mut net = lease_net(3);
    settled(&mut net);
    let now = net.local(1);
    net.cut.insert((2, 1)); // the target's answers are lost: no transfer happens
    net.nodes.get_mut(&1).unwrap().transfer_leadership(now, 2).unwrap();
    net.deliver();
    assert_eq!(net.get(1).transfer_target(), Some(2));
    assert!(!net.get(1).lease_valid(now), "TimeoutNow may still be in flight");
    net.cut.clear();
    net.advance(300);
    assert!(net.get(2).is_leader(), "2 got the TimeoutNow");
}

#[test]
fn a_restarted_node_refuses_votes_for_an_election_timeout() {
    let ask = |lease_reads: bool, at: u64| {
        let mut c = Config::new(2, 1, vec![1, 2, 3]);
        c.lease_reads = lease_reads;
        let mut r = Raft::new(c, 2, 1_000, HardState { term: 3, voted_for: None }, vec![]).unwrap();
        let vote = Message::RequestVote { term: 4, last_log_index: 0, last_log_term: 0, transfer: false };
        r.step(at, Input::Receive(Envelope { group: 1, from: 3, to: 2, message: vote }));
        r.drain_effects().into_iter().any(|e| {
            matches!(
                e,
                Effect::Send {
                    envelope: Envelope { message: Message::RequestVoteResponse { granted: true, .. }, .. },
                    ..
                }
            )
        })
    };
    assert!(!ask(true, 1_149), "it may have promised a leader before the restart");
    assert!(ask(true, 1_150));
    assert!(ask(false, 1_001), "without lease reads nothing depends on it");
}

#[test]
fn lease_reads_need_check_quorum_and_a_drift_bound_that_leaves_a_lease() {
    let mut c = Config::new(1, 1, vec![1, 2, 3]);
    c.lease_reads = true;
    c.check_quorum = false;
    assert_eq!(c.validate(), Err(ConfigError::LeaseWithoutCheckQuorum));
    c.check_quorum = true;
    c.clock_drift_ppm_max = 1_000_000;
    assert!(matches!(c.validate(), Err(ConfigError::DriftBoundTooLarge { .. })));
    c.clock_drift_ppm_max = 10_000;
    assert_eq!(c.validate(), Ok(()));
}

/// The planted bug: 3 cannot hear the leader, times out and asks for votes; 2, which
/// still hears the leader, grants them. 3 wins while 1's lease (on 2's promise) holds.
#[cfg(feature = "planted-bugs")]
#[test]
fn a_vote_granted_inside_the_lease_lets_two_leaders_overlap() {
    let run = |bug: Option<PlantedBug>| {
        let mut net = Net::build(3, |c| {
            c.lease_reads = true;
            c.planted_bug = bug;
        });
        settled(&mut net);
        net.cut.extend([(1, 3), (3, 1)]);
        let mut overlap = false;
        for _ in 0..600 {
            net.advance(1);
            let now = net.local(1);
            overlap |= net.get(3).is_leader() && net.get(1).lease_valid(now);
        }
        overlap
    };
    assert!(!run(None), "2's vote lease keeps 3 out");
    assert!(run(Some(PlantedBug::VoteDuringLease)));
}
