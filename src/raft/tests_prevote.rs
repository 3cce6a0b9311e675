//! Elections with pre-vote and check-quorum: exact effects, and ports of etcd's cases (named after their
//! originals in `raft_test.go`) on a small network with a clock.

use super::*;
use crate::testkit::raft_net::RaftNet;
use crate::NodeId;

fn cfg(id: NodeId, n: u64, pre_vote: bool, check_quorum: bool) -> Config {
    let mut c = Config::new(id, 1, (1..=n).collect());
    c.election_timeout_ms_min = 100;
    c.election_timeout_ms_max = 200;
    c.heartbeat_interval_ms = 10;
    c.pre_vote = pre_vote;
    c.check_quorum = check_quorum;
    c
}

/// This file's network: the shared in-memory driver, with constructors for these timeouts.
pub(super) type Net = RaftNet;

impl RaftNet {
    pub(super) fn new(n: u64, pre_vote: bool, check_quorum: bool) -> Self {
        Self::with_bug(n, pre_vote, check_quorum, None)
    }

    pub(super) fn with_bug(n: u64, pre_vote: bool, check_quorum: bool, bug: Option<PlantedBug>) -> Self {
        Self::build(n, |c| {
            c.pre_vote = pre_vote;
            c.check_quorum = check_quorum;
            c.planted_bug = bug;
        })
    }

    /// `n` replicas with this file's timeouts, then `tune`d.
    pub(super) fn build(n: u64, tune: impl Fn(&mut Config)) -> Self {
        RaftNet::from_replicas((1..=n).map(|id| {
            let mut c = cfg(id, n, true, true);
            tune(&mut c);
            Raft::new(c, id, 0, HardState::default(), vec![]).unwrap()
        }))
    }
}

#[test]
fn a_pre_vote_round_raises_no_term_and_persists_nothing() {
    let mut r = Raft::new(cfg(1, 3, true, true), 1, 0, HardState { term: 4, voted_for: None }, vec![]).unwrap();
    let t = r.next_deadline_ms();
    r.step(t, Input::Tick);
    assert_eq!(r.role_name(), "pre-candidate");
    assert_eq!(r.term(), 4);
    let effects = r.drain_effects();
    let ask = Message::PreVote { term: 5, last_log_index: 0, last_log_term: 0 };
    let expected: Vec<Effect> = [2, 3]
        .map(|to| Effect::Send {
            envelope: Envelope { group: 1, from: 1, to, message: ask.clone() },
            after: Durability::Immediately,
        })
        .to_vec();
    assert_eq!(effects, expected);
    // A quorum of grants starts the real election: now the term rises, durably.
    r.step(
        t,
        Input::Receive(Envelope {
            group: 1,
            from: 2,
            to: 1,
            message: Message::PreVoteResponse { term: 5, granted: true },
        }),
    );
    assert_eq!(r.role_name(), "candidate");
    assert_eq!(r.term(), 5);
    let effects = r.drain_effects();
    assert_eq!(effects[0], Effect::PersistHardState(HardState { term: 5, voted_for: Some(1) }));
}

#[test]
fn granting_a_pre_vote_changes_nothing_on_the_granter() {
    let mut r = Raft::new(cfg(2, 3, true, true), 2, 0, HardState { term: 4, voted_for: Some(3) }, vec![]).unwrap();
    let ask = Message::PreVote { term: 5, last_log_index: 0, last_log_term: 0 };
    r.step(0, Input::Receive(Envelope { group: 1, from: 1, to: 2, message: ask }));
    assert_eq!(r.hard_state(), HardState { term: 4, voted_for: Some(3) }, "term and vote untouched");
    let effects = r.drain_effects();
    let reply = Message::PreVoteResponse { term: 5, granted: true };
    assert_eq!(
        effects,
        vec![Effect::Send {
            envelope: Envelope { group: 1, from: 2, to: 1, message: reply },
            after: Durability::Immediately
        }]
    );
}

/// etcd TestDuelingPreCandidates: a pre-candidate whose log is behind gets no pre-votes,
/// so it raises no term, before or after the partition heals.
#[test]
fn dueling_pre_candidates() {
    let mut net = Net::new(3, true, false);
    net.cut.insert((1, 3));
    net.cut.insert((3, 1));
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    net.fire(3);
    assert_eq!(net.get(3).term(), 1, "learned the term from the refusal, no higher");
    assert!(!net.get(3).is_leader());
    net.heal();
    net.fire(3);
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.terms(), vec![1, 1, 1], "no disruption");
}

/// etcd TestLeaderStepdownWhenQuorumLost: a leader that hears from no quorum for an
/// election timeout steps down.
#[test]
fn leader_stepdown_when_quorum_lost() {
    let mut net = Net::new(3, false, true);
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    net.isolate(1);
    net.isolate(2);
    net.isolate(3);
    net.advance(250);
    assert!(!net.get(1).is_leader(), "deposed itself");
    assert_eq!(net.get(1).term(), 1, "stepping down raises no term");
}

/// etcd TestLeaderSupersedingWithCheckQuorum / TestPreVoteWithCheckQuorum: the leader is
/// cut off; the others' leases expire and they elect a new leader.
#[test]
fn pre_vote_with_check_quorum() {
    let mut net = Net::new(3, true, true);
    net.fire(1);
    net.isolate(1);
    net.advance(400);
    let leaders: Vec<NodeId> = net.leaders().into_iter().filter(|&l| l != 1).collect();
    assert_eq!(leaders.len(), 1, "one of 2 and 3 leads: {:?}", net.leaders());
    assert!(!net.get(1).is_leader(), "the old leader stepped down on its own");
}

/// etcd TestFreeStuckCandidateWithCheckQuorum: without pre-vote, an isolated node's term
/// runs ahead; once healed, the leader learns the higher term and a new election settles
/// everyone on one term.
#[test]
fn free_stuck_candidate_with_check_quorum() {
    let mut net = Net::new(3, false, true);
    net.fire(1);
    net.isolate(3);
    net.advance(1000);
    let stuck = net.get(3).term();
    assert!(stuck > 2, "node 3 kept campaigning alone (term {stuck})");
    net.heal();
    net.advance(2000);
    assert_eq!(net.leaders().len(), 1);
    let terms = net.terms();
    assert!(terms.iter().all(|&t| t == terms[0] && t >= stuck), "one term again: {terms:?}");
}

/// etcd TestDisruptiveFollowerPreVote: with pre-vote, a follower cut off for a long time
/// comes back without raising its term, and the leader stays.
#[test]
fn disruptive_follower_pre_vote() {
    let mut net = Net::new(3, true, true);
    net.fire(1);
    net.isolate(3);
    net.advance(1000);
    assert_eq!(net.get(3).term(), 1, "pre-votes failed; the term never rose");
    net.heal();
    net.advance(1000);
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.terms(), vec![1, 1, 1]);
}

/// etcd TestPreVoteWithSplitVote: two pre-candidates both win their pre-votes, split the
/// real vote, and the next round elects one.
#[test]
fn pre_vote_with_split_vote() {
    let mut net = Net::new(3, true, false);
    net.fire(1);
    net.isolate(1);
    // Both time out before either hears the other.
    for id in [2, 3] {
        let r = net.nodes.get_mut(&id).unwrap();
        let t = r.next_deadline_ms().max(net.now_ms);
        r.step(t, Input::Tick);
    }
    net.deliver();
    assert_eq!(net.get(2).term(), 2);
    assert_eq!(net.get(3).term(), 2);
    assert_eq!(net.leaders(), vec![1], "split: neither won term 2 (1 is cut off, still leading term 1)");
    net.fire(2);
    assert!(net.get(2).is_leader());
    assert_eq!(net.get(2).term(), 3);
}

/// A follower whose leader went silent grants pre-votes once its lease expires, but not
/// before (etcd's `inLease`).
#[test]
fn a_follower_grants_pre_votes_only_after_its_lease() {
    let mut net = Net::new(3, true, true);
    net.fire(1);
    net.isolate(1);
    // Within the lease: node 2 asks, node 3 stays silent.
    let r = net.nodes.get_mut(&2).unwrap();
    r.step(net.now_ms + 1, Input::Tick); // not due: nothing happens
    let now = net.now_ms + 5;
    let ask = Message::PreVote { term: 2, last_log_index: 1, last_log_term: 1 };
    let r3 = net.nodes.get_mut(&3).unwrap();
    r3.step(now, Input::Receive(Envelope { group: 1, from: 2, to: 3, message: ask.clone() }));
    assert!(r3.drain_effects().is_empty(), "in lease: no answer");
    let later = now + 200;
    r3.step(later, Input::Receive(Envelope { group: 1, from: 2, to: 3, message: ask }));
    let granted = r3.drain_effects().into_iter().any(|e| {
        matches!(
            e,
            Effect::Send { envelope: Envelope { message: Message::PreVoteResponse { granted: true, .. }, .. }, .. }
        )
    });
    assert!(granted, "lease expired: granted");
}

/// etcd TestNodeWithSmallerTermCanCompleteElection: a node that fell behind (cut off,
/// stuck pre-campaigning in an old term) rejoins just as the leader is cut off; the
/// cluster must still elect a leader (with pre-vote it used to stand still).
#[test]
fn node_with_smaller_term_can_complete_election() {
    let mut net = Net::new(3, true, false);
    net.cut.extend([(1, 3), (3, 1), (2, 3), (3, 2)]);
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    net.fire(3);
    assert_eq!(net.get(3).role_name(), "pre-candidate");
    // 2 times out and wins (1 grants: without check-quorum a leader has no lease).
    net.fire(2);
    assert_eq!(net.leaders(), vec![2]);
    assert_eq!(net.terms(), vec![2, 2, 0]);
    assert_eq!(net.get(3).role_name(), "pre-candidate");
    // 3 comes back as 2 goes (as if it crashed); 3 and 1 campaign.
    net.heal();
    net.cut.extend([(2, 1), (1, 2), (2, 3), (3, 2)]);
    net.fire(3);
    net.fire(1);
    let leaders: Vec<NodeId> = net.leaders().into_iter().filter(|&l| l != 2).collect();
    assert_eq!(leaders.len(), 1, "1 or 3 leads: {leaders:?}");
}

/// A network of replicas built from given persisted state (no pre-vote, no check-quorum).
fn net_from(states: Vec<(HardState, Vec<Term>)>) -> Net {
    let n = states.len() as u64;
    RaftNet::from_replicas(states.into_iter().enumerate().map(|(i, (hard, terms))| {
        let id = i as NodeId + 1;
        let entries = terms
            .iter()
            .enumerate()
            .map(|(j, &term)| Entry { term, index: j as Index + 1, payload: Payload::Noop })
            .collect();
        Raft::new(cfg(id, n, false, false), id, 0, hard, entries).unwrap()
    }))
}

fn log_terms(net: &Net, id: NodeId) -> Vec<Term> {
    let r = net.get(id);
    (1..=r.last_index()).map(|i| r.entry(i).unwrap().term).collect()
}

/// etcd TestLeaderElectionOverwriteNewerLogs (Raft Figure 8's shape): node 1, whose log
/// ends in term 1, loses the election of term 2 (its voters voted for 3), wins term 3
/// without node 3, and its log overwrites node 3's uncommitted entry of term 2.
#[test]
fn leader_election_overwrite_newer_logs() {
    let voted3 = |term| HardState { term, voted_for: Some(3) };
    let mut net = net_from(vec![
        (HardState { term: 1, voted_for: None }, vec![1]),
        (HardState { term: 1, voted_for: None }, vec![1]),
        (voted3(2), vec![2]),
        (voted3(2), vec![]),
        (voted3(2), vec![]),
    ]);
    net.fire(1);
    assert!(!net.get(1).is_leader(), "term 2's voters already voted");
    assert_eq!(net.get(1).term(), 2);
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.get(1).term(), 3);
    for id in 1..=5 {
        assert_eq!(log_terms(&net, id), vec![1, 3], "node {id}");
    }
}

/// etcd TestDuelingCandidates: node 3, cut off, campaigns alone; healed, its higher term
/// deposes the leader, but its shorter log cannot win, and a node with the leader's
/// log is elected in a later term.
#[test]
fn dueling_candidates() {
    let mut net = Net::new(3, false, false);
    net.cut.insert((1, 3));
    net.cut.insert((3, 1));
    net.fire(1);
    assert_eq!(net.leaders(), vec![1]);
    net.fire(3);
    assert_eq!(net.get(3).role_name(), "candidate", "node 2 knows a leader and refuses");
    assert_eq!(net.get(3).term(), 1);
    net.cut.clear();
    net.fire(3);
    assert_eq!(net.get(3).term(), 2);
    assert!(net.leaders().is_empty(), "the leader stepped down for term 2; 3 lost it (log behind)");
    net.advance(1000);
    let leaders = net.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 3);
    assert_eq!(log_terms(&net, 3)[0], 1, "node 3 has the old leader's entry now");
}
