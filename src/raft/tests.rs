//! Unit tests of the core: exact effects for the basic transitions, and ports of the cases
//! of etcd's `raft_paper_test.go` (election §5.2, replication §5.3, safety §5.4), each
//! named after its original.

use super::*;
use crate::testkit::raft_net::RaftNet;
use crate::NodeId;
use std::collections::BTreeSet;

const G: u64 = 1;

/// The paper's Raft: no pre-vote, no check-quorum (the etcd paper tests assume neither).
fn cfg(id: NodeId, n: u64) -> Config {
    let mut c = Config::new(id, G, (1..=n).collect());
    c.election_timeout_ms_min = 100;
    c.election_timeout_ms_max = 200;
    c.heartbeat_interval_ms = 10;
    c.pre_vote = false;
    c.check_quorum = false;
    c
}

fn entries(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry { term, index: i as Index + 1, payload: Payload::Command(vec![i as u8]) })
        .collect()
}

fn replica(id: NodeId, n: u64, term: Term, log_terms: &[Term]) -> Raft {
    Raft::new(cfg(id, n), id, 0, HardState { term, voted_for: None }, entries(log_terms)).unwrap()
}

fn env(from: NodeId, to: NodeId, message: Message) -> Input {
    Input::Receive(Envelope { group: G, from, to, message })
}

fn sends(effects: &[Effect]) -> Vec<(NodeId, Message)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { envelope, .. } => Some((envelope.to, envelope.message.clone())),
            _ => None,
        })
        .collect()
}

/// Times a replica out (far past any election deadline).
fn time_out(r: &mut Raft) {
    let t = r.next_deadline_ms();
    r.step(t, Input::Tick);
}

fn elect(r: &mut Raft, voters: &[NodeId]) {
    time_out(r);
    for &v in voters {
        let term = r.term();
        r.step(0, env(v, r.id(), Message::RequestVoteResponse { term, granted: true }));
    }
    assert!(r.is_leader());
    r.drain_effects();
}

fn append_ok(term: Term, match_index: Index) -> Message {
    Message::AppendEntriesResponse {
        term,
        result: AppendResult::Success { match_index },
        read_seq: 0,
        clock: ClockEcho::default(),
    }
}

// ----- exact effects -----------------------------------------------------------------

#[test]
fn follower_timeout_persists_its_vote_before_asking_for_votes() {
    let mut r = replica(1, 3, 0, &[]);
    time_out(&mut r);
    let rv = Message::RequestVote { term: 1, last_log_index: 0, last_log_term: 0, transfer: false };
    assert_eq!(
        r.drain_effects(),
        vec![
            Effect::PersistHardState(HardState { term: 1, voted_for: Some(1) }),
            Effect::Send {
                envelope: Envelope { group: G, from: 1, to: 2, message: rv.clone() },
                after: Durability::Synced
            },
            Effect::Send { envelope: Envelope { group: G, from: 1, to: 3, message: rv }, after: Durability::Synced },
        ]
    );
}

#[test]
fn a_granted_vote_is_persisted_and_answered_only_after_sync() {
    let mut r = replica(2, 3, 0, &[]);
    r.step(0, env(1, 2, Message::RequestVote { term: 1, last_log_index: 0, last_log_term: 0, transfer: false }));
    assert_eq!(
        r.drain_effects(),
        vec![
            Effect::PersistHardState(HardState { term: 1, voted_for: None }),
            Effect::PersistHardState(HardState { term: 1, voted_for: Some(1) }),
            Effect::Send {
                envelope: Envelope {
                    group: G,
                    from: 2,
                    to: 1,
                    message: Message::RequestVoteResponse { term: 1, granted: true }
                },
                after: Durability::Synced
            },
        ]
    );
}

#[test]
fn new_leader_appends_a_noop_and_replicates_it() {
    let mut r = replica(1, 3, 0, &[]);
    // The appends carry the leader's clock: the time it timed out.
    let t = r.next_deadline_ms();
    time_out(&mut r);
    r.drain_effects();
    r.step(0, env(2, 1, Message::RequestVoteResponse { term: 1, granted: true }));
    let noop = Entry { term: 1, index: 1, payload: Payload::Noop };
    let append = |to| Effect::Send {
        envelope: Envelope {
            group: G,
            from: 1,
            to,
            message: Message::AppendEntries {
                term: 1,
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![noop.clone()],
                leader_commit: 0,
                read_seq: 0,
                sent_ms: t,
            },
        },
        after: Durability::Synced,
    };
    assert_eq!(
        r.drain_effects(),
        vec![Effect::BecameLeader { term: 1 }, Effect::AppendLog(vec![noop.clone()]), append(2), append(3)]
    );
}

#[test]
fn follower_truncates_a_conflicting_suffix_then_acknowledges_after_sync() {
    let mut r = replica(2, 3, 2, &[1, 1, 2]);
    let new = Entry { term: 3, index: 3, payload: Payload::Noop };
    r.step(
        0,
        env(
            1,
            2,
            Message::AppendEntries {
                term: 3,
                prev_log_index: 2,
                prev_log_term: 1,
                entries: vec![new.clone()],
                leader_commit: 2,
                read_seq: 0,
                sent_ms: 0,
            },
        ),
    );
    assert_eq!(
        r.drain_effects(),
        vec![
            Effect::PersistHardState(HardState { term: 3, voted_for: None }),
            Effect::TruncateLog { from: 3, to: 3 },
            Effect::AppendLog(vec![new]),
            Effect::Commit { index: 2 },
            Effect::Send {
                envelope: Envelope { group: G, from: 2, to: 1, message: append_ok(3, 3) },
                after: Durability::Synced
            },
        ]
    );
}

#[test]
fn fast_backtracking_skips_a_whole_conflicting_term() {
    // Follower has [1,1,2,2,2]; leader (term 3) has [1,1,3,3,3,3].
    let mut f = replica(2, 3, 2, &[1, 1, 2, 2, 2]);
    f.step(
        0,
        env(
            1,
            2,
            Message::AppendEntries {
                term: 3,
                prev_log_index: 5,
                prev_log_term: 3,
                entries: vec![],
                leader_commit: 0,
                read_seq: 0,
                sent_ms: 0,
            },
        ),
    );
    let out = sends(&f.drain_effects());
    assert_eq!(
        out,
        vec![(
            1,
            Message::AppendEntriesResponse {
                term: 3,
                result: AppendResult::Conflict { rejected_prev_index: 5, hint_index: 3, hint_term: Some(2) },
                read_seq: 0,
                clock: ClockEcho::default()
            }
        )]
    );
}

#[test]
fn proposal_is_refused_with_a_leader_hint_on_a_follower() {
    let mut r = replica(2, 3, 1, &[]);
    r.step(
        0,
        env(
            1,
            2,
            Message::AppendEntries {
                term: 1,
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![],
                leader_commit: 0,
                read_seq: 0,
                sent_ms: 0,
            },
        ),
    );
    assert_eq!(r.propose(vec![1]), Err(ProposeError::NotLeader { leader_hint: Some(1) }));
}

#[test]
fn backpressure_bounds_the_uncommitted_log() {
    let mut c = cfg(1, 3);
    c.uncommitted_entries_max = 3;
    let mut r = Raft::new(c, 1, 0, HardState::default(), vec![]).unwrap();
    elect(&mut r, &[2]);
    // The no-op counts: two more fit.
    assert!(r.propose(vec![1]).is_ok());
    assert!(r.propose(vec![2]).is_ok());
    assert_eq!(r.propose(vec![3]), Err(ProposeError::Backpressure));
}

#[test]
fn backpressure_bounds_the_uncommitted_bytes_too() {
    let mut c = cfg(1, 3);
    c.uncommitted_bytes_max = 1_000;
    let mut r = Raft::new(c, 1, 0, HardState::default(), vec![]).unwrap();
    elect(&mut r, &[2]);
    assert!(r.propose(vec![0; 600]).is_ok());
    assert_eq!(r.propose(vec![0; 600]), Err(ProposeError::Backpressure));
    assert!(r.propose(vec![0; 100]).is_ok(), "what fits still goes in");
    // Once a quorum holds them, the room is back.
    let last = r.last_index();
    r.step(0, env(2, 1, append_ok(1, last)));
    assert_eq!(r.commit_index(), last);
    assert!(r.propose(vec![0; 900]).is_ok());
}

// ----- §5.1 / §5.2: terms and elections (raft_paper_test.go) -------------------------

#[test]
fn update_term_from_message() {
    // TestFollowerUpdateTermFromMessage / Candidate / Leader
    for role in ["follower", "candidate", "leader"] {
        let mut r = replica(1, 3, 1, &[]);
        match role {
            "candidate" => time_out(&mut r),
            "leader" => elect(&mut r, &[2]),
            _ => {}
        }
        r.step(
            0,
            env(
                2,
                1,
                Message::AppendEntries {
                    term: 9,
                    prev_log_index: 0,
                    prev_log_term: 0,
                    entries: vec![],
                    leader_commit: 0,
                    read_seq: 0,
                    sent_ms: 0,
                },
            ),
        );
        assert_eq!(r.term(), 9, "{role}");
        assert_eq!(r.role_name(), "follower", "{role}");
        assert_eq!(r.leader_id(), Some(2), "{role}");
    }
}

#[test]
fn reject_stale_term_message() {
    // TestRejectStaleTermMessage: a lower-term append changes nothing but draws our term.
    let mut r = replica(1, 3, 2, &[]);
    r.step(
        0,
        env(
            2,
            1,
            Message::AppendEntries {
                term: 1,
                prev_log_index: 0,
                prev_log_term: 0,
                entries: vec![],
                leader_commit: 0,
                read_seq: 0,
                sent_ms: 0,
            },
        ),
    );
    assert_eq!(r.term(), 2);
    assert_eq!(r.leader_id(), None);
    let out = sends(&r.drain_effects());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.term(), 2);
}

#[test]
fn start_as_follower() {
    let r = replica(1, 3, 0, &[]);
    assert_eq!(r.role_name(), "follower");
}

/// Node 1, leader of term 1 in a group of 3, whose no-op node 2 has acknowledged.
fn leader_acked_by_2() -> Raft {
    let mut r = replica(1, 3, 0, &[]);
    elect(&mut r, &[2]);
    r.step(0, env(2, 1, append_ok(1, 1)));
    r.drain_effects();
    r
}

#[test]
fn leader_bcast_beat() {
    // TestLeaderBcastBeat: after the heartbeat interval the leader sends a heartbeat to
    // every follower at once, and the no-op again to those that have not acknowledged it.
    let mut r = leader_acked_by_2();
    let t = r.next_deadline_ms();
    r.step(t, Input::Tick);
    let out: Vec<(NodeId, &'static str, Durability)> = r
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { envelope: Envelope { to, message, .. }, after } => {
                let kind = match message {
                    Message::Heartbeat { term: 1, commit, read_seq: 0, .. } => {
                        assert_eq!(commit, if to == 2 { 1 } else { 0 }, "commit capped at the follower's match");
                        "heartbeat"
                    }
                    Message::AppendEntries { prev_log_index: 0, .. } => "append",
                    other => panic!("{other:?}"),
                };
                Some((to, kind, after))
            }
            _ => None,
        })
        .collect();
    let (now, synced) = (Durability::Immediately, Durability::Synced);
    assert_eq!(out, vec![(2, "heartbeat", now), (3, "heartbeat", now), (3, "append", synced)]);
}

#[test]
fn a_heartbeat_is_answered_at_once_and_commits_what_the_follower_holds() {
    let mut r = replica(2, 3, 1, &[1, 1]);
    let beat = |commit| Message::Heartbeat { term: 1, commit, read_seq: 4, sent_ms: 7 };
    r.step(10, env(1, 2, beat(2)));
    assert_eq!(r.leader_id(), Some(1));
    assert_eq!(r.commit_index(), 2);
    let reply = Message::HeartbeatResponse { term: 1, read_seq: 4, clock: ClockEcho { sent_ms: 7, follower_ms: 10 } };
    let effects = r.drain_effects();
    assert_eq!(
        effects,
        vec![
            Effect::Commit { index: 2 },
            Effect::Send {
                envelope: Envelope { group: G, from: 2, to: 1, message: reply },
                after: Durability::Immediately
            }
        ]
    );
    // A stale leader hears the newer term, also at once.
    r.step(11, env(3, 2, Message::Heartbeat { term: 0, commit: 0, read_seq: 0, sent_ms: 0 }));
    let stale = Message::HeartbeatResponse { term: 1, read_seq: 0, clock: ClockEcho::default() };
    assert_eq!(sends(&r.drain_effects()), vec![(3, stale)]);
}

#[test]
fn a_heartbeat_answer_keeps_the_leader_in_office_and_confirms_reads() {
    let mut r = leader_acked_by_2();
    r.read_index(0, 9).expect("leader");
    r.drain_effects();
    let answer = Message::HeartbeatResponse { term: 1, read_seq: 1, clock: ClockEcho::default() };
    r.step(0, env(3, 1, answer));
    assert_eq!(r.drain_effects(), vec![Effect::ReadReady { id: 9, index: 1 }]);
    // Heard from 3 only by heartbeats: still a quorum at the check.
    let deadline = r.next_deadline_ms();
    for t in (0..=deadline + 200).step_by(10) {
        r.step(t, env(3, 1, Message::HeartbeatResponse { term: 1, read_seq: 1, clock: ClockEcho::default() }));
        r.step(t, Input::Tick);
    }
    assert!(r.is_leader());
}

#[test]
fn nonleader_start_election() {
    // TestFollowerStartElection / TestCandidateStartNewElection
    for candidate_first in [false, true] {
        let mut r = replica(1, 3, 1, &[]);
        if candidate_first {
            time_out(&mut r);
            r.drain_effects();
        }
        let before = r.term();
        time_out(&mut r);
        assert_eq!(r.term(), before + 1);
        assert_eq!(r.role_name(), "candidate");
        assert_eq!(r.hard_state().voted_for, Some(1));
        let to: Vec<NodeId> = sends(&r.drain_effects()).into_iter().map(|(to, _)| to).collect();
        assert_eq!(to, vec![2, 3]);
    }
}

#[test]
fn leader_election_in_one_round_rpc() {
    // TestLeaderElectionInOneRoundRPC: (size, votes granted by others, expected role)
    type Case<'a> = (u64, &'a [(NodeId, bool)], &'a str);
    let cases: &[Case] = &[
        (1, &[], "leader"),
        (3, &[(2, true), (3, true)], "leader"),
        (3, &[(2, true)], "leader"),
        (5, &[(2, true), (3, true), (4, true), (5, true)], "leader"),
        (5, &[(2, true), (3, true), (4, true)], "leader"),
        (5, &[(2, true), (3, true)], "leader"),
        (3, &[(2, false), (3, false)], "candidate"),
        (5, &[(2, true)], "candidate"),
        (5, &[(2, false), (3, false)], "candidate"),
        (5, &[], "candidate"),
    ];
    for (i, &(size, votes, want)) in cases.iter().enumerate() {
        let mut r = replica(1, size, 0, &[]);
        time_out(&mut r);
        for &(from, granted) in votes {
            r.step(0, env(from, 1, Message::RequestVoteResponse { term: 1, granted }));
        }
        assert_eq!(r.role_name(), want, "case {i}");
    }
}

#[test]
fn follower_vote() {
    // TestFollowerVote: one vote per term, first come first served.
    let cases: &[(Option<NodeId>, NodeId, bool)] = &[
        (None, 2, true),
        (None, 3, true),
        (Some(2), 2, true),
        (Some(3), 3, true),
        (Some(2), 3, false),
        (Some(3), 2, false),
    ];
    for &(voted_for, candidate, granted) in cases {
        let mut r = Raft::new(cfg(1, 3), 1, 0, HardState { term: 1, voted_for }, vec![]).unwrap();
        r.step(
            0,
            env(candidate, 1, Message::RequestVote { term: 1, last_log_index: 0, last_log_term: 0, transfer: false }),
        );
        let out = sends(&r.drain_effects());
        assert_eq!(out, vec![(candidate, Message::RequestVoteResponse { term: 1, granted })]);
    }
}

#[test]
fn candidate_fallback() {
    // TestCandidateFallback: an append of the same or a higher term makes it a follower.
    for term in [1, 2] {
        let mut r = replica(1, 3, 0, &[]);
        time_out(&mut r);
        r.step(
            0,
            env(
                2,
                1,
                Message::AppendEntries {
                    term,
                    prev_log_index: 0,
                    prev_log_term: 0,
                    entries: vec![],
                    leader_commit: 0,
                    read_seq: 0,
                    sent_ms: 0,
                },
            ),
        );
        assert_eq!(r.role_name(), "follower");
        assert_eq!(r.term(), term);
    }
}

#[test]
fn election_timeout_randomized_and_nonconflicting() {
    // TestFollowerElectionTimeoutRandomized / …Nonconflict: timeouts spread over [min, max).
    let mut seen = BTreeSet::new();
    for seed in 0..200 {
        let r = Raft::new(cfg(1, 3), seed, 0, HardState::default(), vec![]).unwrap();
        let d = r.next_deadline_ms();
        assert!((100..200).contains(&d), "{d}");
        seen.insert(d);
    }
    assert!(seen.len() > 50, "timeouts must be spread, got {} distinct", seen.len());
}

#[test]
fn vote_request_carries_last_log_position() {
    // TestVoteRequest
    let mut r = replica(1, 3, 3, &[1, 2, 3]);
    time_out(&mut r);
    for (_, m) in sends(&r.drain_effects()) {
        assert_eq!(m, Message::RequestVote { term: 4, last_log_index: 3, last_log_term: 3, transfer: false });
    }
}

#[test]
fn voter_checks_the_candidate_log_is_up_to_date() {
    // TestVoter: (voter log, candidate last term, candidate last index, granted)
    let cases: &[(&[Term], Term, Index, bool)] = &[
        (&[1], 1, 1, true),
        (&[1], 1, 2, true),
        (&[1, 1], 1, 1, false),
        (&[1], 2, 1, true),
        (&[1], 2, 2, true),
        (&[1, 1], 2, 1, true),
        (&[2], 1, 1, false),
        (&[2], 1, 2, false),
        (&[1, 2], 1, 2, false),
    ];
    for (i, &(log, lt, li, granted)) in cases.iter().enumerate() {
        let mut r = replica(1, 3, 2, log);
        r.step(0, env(2, 1, Message::RequestVote { term: 3, last_log_index: li, last_log_term: lt, transfer: false }));
        let out = sends(&r.drain_effects());
        assert_eq!(out, vec![(2, Message::RequestVoteResponse { term: 3, granted })], "case {i}");
    }
}

// ----- §5.3: log replication ---------------------------------------------------------

#[test]
fn leader_start_replication() {
    // TestLeaderStartReplication: a proposal is appended and sent to every follower.
    let mut r = replica(1, 3, 0, &[]);
    let t = r.next_deadline_ms();
    elect(&mut r, &[2]);
    for f in [2, 3] {
        r.step(0, env(f, 1, append_ok(1, 1)));
    }
    r.drain_effects();
    let (index, term) = r.propose(b"x".to_vec()).unwrap();
    assert_eq!((index, term), (2, 1));
    let e = Entry { term: 1, index: 2, payload: Payload::Command(b"x".to_vec()) };
    let effects = r.drain_effects();
    assert_eq!(effects[0], Effect::AppendLog(vec![e.clone()]));
    for (_, m) in sends(&effects) {
        assert_eq!(
            m,
            Message::AppendEntries {
                term: 1,
                prev_log_index: 1,
                prev_log_term: 1,
                entries: vec![e.clone()],
                leader_commit: 1,
                read_seq: 0,
                sent_ms: t
            }
        );
    }
}

#[test]
fn leader_commit_entry_and_acknowledge_commit() {
    // TestLeaderCommitEntry / TestLeaderAcknowledgeCommit: (size, acks, committed)
    let cases: &[(u64, &[NodeId], bool)] = &[
        (1, &[], true),
        (3, &[], false),
        (3, &[2], true),
        (3, &[2, 3], true),
        (5, &[], false),
        (5, &[2], false),
        (5, &[2, 3], true),
        (5, &[2, 3, 4, 5], true),
    ];
    for (i, &(size, acks, committed)) in cases.iter().enumerate() {
        let mut r = replica(1, size, 0, &[]);
        time_out(&mut r);
        for v in 2..=size / 2 + 1 {
            r.step(0, env(v, 1, Message::RequestVoteResponse { term: 1, granted: true }));
        }
        assert!(r.is_leader());
        r.drain_effects();
        for &a in acks {
            r.step(0, env(a, 1, append_ok(1, 1)));
        }
        assert_eq!(r.commit_index() == 1, committed, "case {i}");
    }
}

#[test]
fn a_single_voter_group_commits_every_proposal_at_once() {
    let mut r = replica(1, 1, 0, &[]);
    time_out(&mut r);
    assert!(r.is_leader());
    assert_eq!(r.commit_index(), 1, "its no-op");
    r.drain_effects();
    let (index, _) = r.propose(b"x".to_vec()).unwrap();
    assert_eq!(r.commit_index(), index);
    let e = Entry { term: 1, index: 2, payload: Payload::Command(b"x".to_vec()) };
    assert_eq!(r.drain_effects(), vec![Effect::AppendLog(vec![e]), Effect::Commit { index: 2 }]);
}

#[test]
fn leader_commit_preceding_entries() {
    // TestLeaderCommitPrecedingEntries: entries of earlier terms commit with the new no-op.
    for log in [&[][..], &[2], &[1, 1], &[1]] {
        let mut r = replica(1, 3, 2, log);
        elect(&mut r, &[2]);
        let last = r.last_index();
        r.step(0, env(2, 1, append_ok(3, last)));
        assert_eq!(r.commit_index(), last);
    }
}

#[test]
fn follower_commit_entry() {
    // TestFollowerCommitEntry: commit min(leader_commit, last new entry).
    let cases: &[(usize, Index, Index)] = &[(1, 1, 1), (2, 2, 2), (2, 1, 1), (2, 5, 2)];
    for &(n, leader_commit, want) in cases {
        let mut r = replica(2, 3, 1, &[]);
        r.step(
            0,
            env(
                1,
                2,
                Message::AppendEntries {
                    term: 1,
                    prev_log_index: 0,
                    prev_log_term: 0,
                    entries: entries(&vec![1; n]),
                    leader_commit,
                    read_seq: 0,
                    sent_ms: 0,
                },
            ),
        );
        assert_eq!(r.commit_index(), want);
    }
}

#[test]
fn follower_check_msg_app() {
    // TestFollowerCheckMsgApp: the consistency check on prev index/term.
    let cases: &[(Term, Index, bool)] = &[(0, 0, true), (1, 1, true), (2, 2, true), (1, 2, false), (3, 3, false)];
    for &(prev_term, prev_index, ok) in cases {
        let mut r = replica(2, 3, 2, &[1, 2]);
        r.step(
            0,
            env(
                1,
                2,
                Message::AppendEntries {
                    term: 2,
                    prev_log_index: prev_index,
                    prev_log_term: prev_term,
                    entries: vec![],
                    leader_commit: 0,
                    read_seq: 0,
                    sent_ms: 0,
                },
            ),
        );
        let out = sends(&r.drain_effects());
        let success = matches!(out[0].1, Message::AppendEntriesResponse { result: AppendResult::Success { .. }, .. });
        assert_eq!(success, ok, "prev ({prev_term}, {prev_index})");
    }
}

#[test]
fn follower_append_entries() {
    // TestFollowerAppendEntries: (prev index, prev term, new entry terms, resulting log)
    let cases: &[(Index, Term, &[Term], &[Term])] =
        &[(2, 2, &[3], &[1, 2, 3]), (1, 1, &[3, 4], &[1, 3, 4]), (0, 0, &[1], &[1, 2]), (0, 0, &[3], &[3])];
    for (i, &(prev_index, prev_term, new, want)) in cases.iter().enumerate() {
        let mut r = replica(2, 3, 2, &[1, 2]);
        let new: Vec<Entry> = new
            .iter()
            .enumerate()
            .map(|(k, &term)| Entry { term, index: prev_index + 1 + k as Index, payload: Payload::Noop })
            .collect();
        r.step(
            0,
            env(
                1,
                2,
                Message::AppendEntries {
                    term: 4,
                    prev_log_index: prev_index,
                    prev_log_term: prev_term,
                    entries: new,
                    leader_commit: 0,
                    read_seq: 0,
                    sent_ms: 0,
                },
            ),
        );
        let got: Vec<Term> = (1..=r.last_index()).map(|i| r.entry(i).unwrap().term).collect();
        assert_eq!(got, want, "case {i}");
    }
}

#[test]
fn leader_sync_follower_log() {
    // TestLeaderSyncFollowerLog: the leader of term 8 brings every follower of Figure 7
    // to its own log.
    let leader_log: &[Term] = &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: &[&[Term]] = &[
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for (i, &flog) in followers.iter().enumerate() {
        let mut net =
            RaftNet::from_replicas([replica(1, 3, 7, leader_log), replica(2, 3, 7, flog), replica(3, 3, 7, &[])]);
        net.isolate(3);
        time_out(net.get_mut(1));
        // Node 3's vote arrives by hand (as etcd's nopStepper does).
        net.get_mut(1).step(0, env(3, 1, Message::RequestVoteResponse { term: 8, granted: true }));
        net.deliver();
        assert!(net.get_mut(1).is_leader(), "case {i}");
        let mut want = leader_log.to_vec();
        want.push(8);
        assert_eq!(net.log_terms(2), want, "case {i}");
        assert_eq!(net.get_mut(1).commit_index(), want.len() as Index, "case {i}");
    }
}

// ----- §5.4: safety ------------------------------------------------------------------

#[test]
fn leader_only_commits_log_from_current_term() {
    // TestLeaderOnlyCommitsLogFromCurrentTerm (Figure 8): a majority holding an old-term
    // entry does not commit it; a majority holding the new term's entry commits both.
    let mut r = replica(1, 3, 2, &[1, 2]);
    elect(&mut r, &[2]); // term 3, no-op at index 3
    r.step(0, env(2, 1, append_ok(3, 2)));
    assert_eq!(r.commit_index(), 0, "index 2 (term 2) must not commit by counting");
    r.step(0, env(2, 1, append_ok(3, 3)));
    assert_eq!(r.commit_index(), 3);
}

#[test]
fn election_restriction_keeps_committed_entries() {
    // §5.4.1: a node missing a committed entry cannot be elected.
    let mut net = RaftNet::from_replicas([replica(1, 3, 0, &[]), replica(2, 3, 0, &[]), replica(3, 3, 0, &[])]);
    time_out(net.get_mut(1));
    net.deliver();
    net.get_mut(1).propose(b"a".to_vec()).unwrap();
    net.isolate(3);
    net.deliver();
    assert_eq!(net.get_mut(1).commit_index(), 2);
    net.heal();
    net.isolate(1);
    // Node 3 missed index 2; node 2 has it and must refuse node 3.
    time_out(net.get_mut(3));
    net.deliver();
    assert!(!net.get_mut(3).is_leader());
    time_out(net.get_mut(2));
    net.deliver();
    assert!(net.get_mut(2).is_leader());
}

#[test]
fn stale_append_responses_are_ignored() {
    let mut r = leader_acked_by_2();
    // A late conflict for an index we already matched must not move next_index back.
    r.step(
        0,
        env(
            2,
            1,
            Message::AppendEntriesResponse {
                term: 1,
                result: AppendResult::Conflict { rejected_prev_index: 0, hint_index: 1, hint_term: None },
                read_seq: 0,
                clock: ClockEcho::default(),
            },
        ),
    );
    assert!(sends(&r.drain_effects()).is_empty());
}

#[test]
fn recovery_refuses_an_inconsistent_log() {
    let bad = vec![Entry { term: 1, index: 2, payload: Payload::Noop }];
    assert!(Raft::new(cfg(1, 3), 1, 0, HardState { term: 1, voted_for: None }, bad).is_err());
    let ahead = entries(&[3]);
    assert!(Raft::new(cfg(1, 3), 1, 0, HardState { term: 2, voted_for: None }, ahead).is_err());
}

/// Heartbeats fall on multiples of the interval, whenever the leader was elected, so that
/// the groups a node leads send theirs in the same batch (coalesced per peer).
#[test]
fn heartbeats_fall_on_the_nodes_interval_grid() {
    for elected_at in [300, 307, 331, 345] {
        let mut c = Config::new(1, G, vec![1]);
        c.check_quorum = false; // its own deadline would come first
        let mut r = Raft::new(c, 1, 0, HardState::default(), vec![]).unwrap();
        r.step(elected_at, Input::Tick);
        assert!(r.is_leader());
        let first = r.next_deadline_ms();
        assert_eq!(first, (elected_at / 30 + 1) * 30, "elected at {elected_at}");
        r.step(first, Input::Tick);
        assert_eq!(r.next_deadline_ms(), first + 30);
    }
}
