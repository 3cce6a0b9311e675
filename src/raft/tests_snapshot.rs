//! Snapshots and log compaction (Raft §7): compaction, InstallSnapshot in chunks, the
//! follower's side of it, and recovery from a snapshot. Ports etcd's TestSlowNodeRestore
//! and TestRestoreFromSnapMsg in spirit.

use super::tests_prevote::Net;
use super::*;

fn propose_n(net: &mut Net, leader: u64, n: usize) {
    for i in 0..n {
        net.nodes.get_mut(&leader).unwrap().propose(vec![i as u8]).unwrap();
        net.deliver();
    }
}

/// Node 1, leader of term 1, appends no-ops at `indexes` after `prev` to node 2.
fn noop_append(prev: (Index, Term), indexes: std::ops::RangeInclusive<Index>, leader_commit: Index) -> Input {
    let entries = indexes.map(|index| Entry { term: 1, index, payload: Payload::Noop }).collect();
    let (prev_log_index, prev_log_term) = prev;
    let message = Message::AppendEntries {
        term: 1,
        prev_log_index,
        prev_log_term,
        entries,
        leader_commit,
        read_seq: 0,
        sent_ms: 0,
    };
    Input::Receive(Envelope { group: 1, from: 1, to: 2, message })
}

fn installed(net: &Net, node: u64) -> Vec<SnapshotMeta> {
    net.seen
        .iter()
        .filter_map(|(n, e)| match e {
            Effect::InstallSnapshot { meta, .. } if *n == node => Some(*meta),
            _ => None,
        })
        .collect()
}

/// etcd TestSlowNodeRestore: a follower that was away while the leader compacted gets
/// the leader's state machine as of its applied index (here in 3-byte chunks), then the
/// entries after it.
#[test]
fn a_lagging_follower_gets_the_snapshot_in_chunks_then_entries() {
    let mut net = Net::new(3, false, false);
    net.fire(1);
    net.isolate(3);
    propose_n(&mut net, 1, 10);
    let leader = net.nodes.get_mut(&1).unwrap();
    let commit = leader.commit_index();
    assert_eq!(commit, 11);
    leader.cfg.snapshot_chunk_bytes_max = 3;
    assert_eq!(leader.applied_index(), 11);
    leader.compact(8);
    assert_eq!(leader.snapshot_meta(), SnapshotMeta { index: 8, term: 1 });
    assert!(leader.entry(8).is_none() && leader.entry(9).is_some(), "entries up to 8 are gone");
    net.state.insert(1, b"state-at-11".to_vec());
    net.heal();
    net.advance(20);
    assert_eq!(installed(&net, 3), vec![SnapshotMeta { index: 11, term: 1 }], "the applied state, not the cut");
    let chunks = net.seen.iter().filter(|(n, e)| *n == 3 && matches!(e, Effect::SnapshotChunk { .. })).count();
    assert_eq!(chunks, 4, "11 bytes in chunks of 3");
    assert_eq!(net.state[&3], b"state-at-11", "every chunk arrived, in order");
    let f = net.get(3);
    assert_eq!(f.commit_index(), 11);
    assert_eq!(f.applied_index(), 11);
    assert_eq!(f.snapshot_meta().index, 11);
    net.nodes.get_mut(&1).unwrap().propose(b"after".to_vec()).unwrap();
    net.advance(20);
    assert_eq!(net.get(3).commit_index(), 12, "then it follows with entries");
}

/// A leader's snapshot comes from the driver, chunk by chunk; a chunk the follower no
/// longer waits for is dropped, and a transfer the driver starts afresh (chunk 0 of a later
/// state) replaces the one in flight.
#[test]
fn the_leader_sends_the_chunks_its_driver_reads() {
    let mut c = Config::new(1, 1, vec![1, 2]);
    c.pre_vote = false;
    let meta = SnapshotMeta { index: 3, term: 1 };
    let log = (4..=5).map(|index| Entry { term: 1, index, payload: Payload::Noop }).collect();
    let hard = HardState { term: 1, voted_for: Some(1) };
    let members = Membership::with_voters([1, 2]);
    let mut r = Raft::with_snapshot(c, 1, 0, hard, Some((meta, members.clone())), log, 5).unwrap();
    r.step(10_000, Input::Tick);
    r.drain_effects();
    r.step(
        10_000,
        Input::Receive(Envelope {
            group: 1,
            from: 2,
            to: 1,
            message: Message::RequestVoteResponse { term: 2, granted: true },
        }),
    );
    assert!(r.is_leader());
    // Node 2 has nothing: its log is behind the cut at 3.
    let refuse = Message::AppendEntriesResponse {
        term: 2,
        result: AppendResult::Conflict { rejected_prev_index: 5, hint_index: 1, hint_term: None },
        read_seq: 0,
        clock: ClockEcho::default(),
    };
    r.drain_effects();
    r.step(10_001, Input::Receive(Envelope { group: 1, from: 2, to: 1, message: refuse }));
    let asked: Vec<Effect> =
        r.drain_effects().into_iter().filter(|e| matches!(e, Effect::ReadSnapshotChunk { .. })).collect();
    let applied = SnapshotMeta { index: 5, term: 1 };
    assert_eq!(asked, vec![Effect::ReadSnapshotChunk { to: 2, meta: applied, chunk: 0 }], "as of the applied index");
    let chunk = |meta, chunk, done| SnapshotChunk {
        to: 2,
        meta,
        membership: members.clone(),
        chunk,
        data: vec![chunk as u8],
        done,
    };
    r.step(10_002, Input::SnapshotChunk(chunk(applied, 1, false)));
    assert!(r.drain_effects().is_empty(), "not the chunk in flight: dropped");
    r.step(10_002, Input::SnapshotChunk(chunk(applied, 0, false)));
    let sent: Vec<Message> = r
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { envelope, .. } => Some(envelope.message),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        vec![Message::InstallSnapshot {
            term: 2,
            meta: applied,
            membership: members.clone(),
            chunk: 0,
            data: vec![0],
            done: false
        }]
    );
    let wants = |received| Message::InstallSnapshotResponse { term: 2, meta: applied, received, done: false };
    r.step(10_003, Input::Receive(Envelope { group: 1, from: 2, to: 1, message: wants(1) }));
    let asked: Vec<Effect> =
        r.drain_effects().into_iter().filter(|e| matches!(e, Effect::ReadSnapshotChunk { .. })).collect();
    assert_eq!(asked, vec![Effect::ReadSnapshotChunk { to: 2, meta: applied, chunk: 1 }]);
    r.step(10_003, Input::Receive(Envelope { group: 1, from: 2, to: 1, message: wants(1) }));
    assert!(
        r.drain_effects().iter().all(|e| !matches!(e, Effect::ReadSnapshotChunk { .. })),
        "a repeat asks nothing new"
    );
}

/// §7: a follower whose log agrees with the snapshot's last entry keeps what follows;
/// otherwise it drops its whole log.
#[test]
fn install_keeps_an_agreeing_suffix_and_drops_a_conflicting_log() {
    let mk = |terms: &[Term]| {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry { term, index: i as Index + 1, payload: Payload::Noop })
            .collect();
        log::Log::from_parts(SnapshotMeta::default(), entries).unwrap()
    };
    let mut agree = mk(&[1, 1, 2, 2, 3]);
    assert_eq!(agree.install(SnapshotMeta { index: 3, term: 2 }), Some((1, 3)));
    assert_eq!((agree.last_index(), agree.term_at(3), agree.term_at(5)), (5, Some(2), Some(3)));
    let mut conflict = mk(&[1, 1, 1]);
    assert_eq!(conflict.install(SnapshotMeta { index: 3, term: 2 }), Some((1, 3)));
    assert_eq!((conflict.last_index(), conflict.last_term()), (3, 2));
    let mut short = mk(&[1]);
    assert_eq!(short.install(SnapshotMeta { index: 5, term: 4 }), Some((1, 1)));
    assert_eq!(short.last_index(), 5);
    assert!(short.entry(5).is_none());
}

/// A replica rebuilt from a snapshot starts with the snapshot committed and can send it.
#[test]
fn recovery_from_a_snapshot() {
    let mut c = Config::new(1, 1, vec![1, 2, 3]);
    c.pre_vote = false;
    let meta = SnapshotMeta { index: 7, term: 2 };
    let after = vec![Entry { term: 3, index: 8, payload: Payload::Noop }];
    let r = Raft::with_snapshot(
        c.clone(),
        1,
        0,
        HardState { term: 3, voted_for: None },
        Some((meta, Membership::with_voters([1, 2, 3]))),
        after,
        7,
    )
    .unwrap();
    assert_eq!((r.commit_index(), r.last_index(), r.snapshot_meta()), (7, 8, meta));
    // A snapshot newer than the hard state, or entries that do not follow it, are refused.
    let bad = Raft::with_snapshot(
        c.clone(),
        1,
        0,
        HardState { term: 1, voted_for: None },
        Some((meta, Membership::with_voters([1, 2, 3]))),
        vec![],
        7,
    );
    assert!(bad.is_err());
    // Applied outside the log is refused.
    let beyond = Raft::with_snapshot(
        c.clone(),
        1,
        0,
        HardState { term: 3, voted_for: None },
        Some((meta, Membership::with_voters([1, 2, 3]))),
        vec![],
        8,
    );
    assert!(beyond.is_err());
    let gap = vec![Entry { term: 3, index: 9, payload: Payload::Noop }];
    assert!(Raft::with_snapshot(
        c,
        1,
        0,
        HardState { term: 3, voted_for: None },
        Some((meta, Membership::with_voters([1, 2, 3]))),
        gap,
        7
    )
    .is_err());
}

/// An append that reaches back into the follower's snapshot is checked from the
/// snapshot's last entry on (what the snapshot covers is committed and so agrees).
#[test]
fn an_append_reaching_into_the_snapshot_succeeds() {
    let mut c = Config::new(2, 1, vec![1, 2, 3]);
    c.pre_vote = false;
    let meta = SnapshotMeta { index: 5, term: 1 };
    let mut r = Raft::with_snapshot(
        c,
        2,
        0,
        HardState { term: 1, voted_for: None },
        Some((meta, Membership::with_voters([1, 2, 3]))),
        vec![],
        5,
    )
    .unwrap();
    r.step(0, noop_append((3, 1), 4..=7, 6));
    assert_eq!((r.last_index(), r.commit_index()), (7, 6));
    let reply = r.drain_effects().into_iter().find_map(|e| match e {
        Effect::Send { envelope, .. } => Some(envelope.message),
        _ => None,
    });
    assert_eq!(
        reply,
        Some(Message::AppendEntriesResponse {
            term: 1,
            result: AppendResult::Success { match_index: 7 },
            read_seq: 0,
            clock: ClockEcho::default()
        })
    );
}

/// A chunk that is not the one the follower wants makes it say which it wants; the
/// chunks it accepts go to the driver in order, and the last installs the snapshot.
#[test]
fn an_out_of_order_chunk_asks_for_the_right_one() {
    let mut c = Config::new(2, 1, vec![1, 2, 3]);
    c.pre_vote = false;
    let mut r = Raft::new(c, 2, 0, HardState { term: 1, voted_for: None }, vec![]).unwrap();
    let meta = SnapshotMeta { index: 9, term: 1 };
    let chunk = |chunk: u64, data: &[u8], done: bool| {
        Input::Receive(Envelope {
            group: 1,
            from: 1,
            to: 2,
            message: Message::InstallSnapshot {
                term: 1,
                meta,
                membership: Membership::with_voters([1, 2, 3]),
                chunk,
                data: data.to_vec(),
                done,
            },
        })
    };
    let mut kept = Vec::new();
    let mut step = |r: &mut Raft, input| {
        r.step(0, input);
        let mut reply = None;
        for e in r.drain_effects() {
            match e {
                Effect::Send { envelope, .. } => reply = Some(envelope.message),
                Effect::SnapshotChunk { data, .. } => kept.extend(data),
                _ => {}
            }
        }
        reply
    };
    step(&mut r, chunk(0, b"abc", false));
    let reply = step(&mut r, chunk(2, b"ghi", true));
    assert_eq!(reply, Some(Message::InstallSnapshotResponse { term: 1, meta, received: 1, done: false }));
    step(&mut r, chunk(1, b"def", false));
    let reply = step(&mut r, chunk(2, b"ghi", true));
    assert_eq!(reply, Some(Message::InstallSnapshotResponse { term: 1, meta, received: 3, done: true }));
    assert_eq!(kept, b"abcdefghi");
    assert_eq!((r.commit_index(), r.applied_index()), (9, 9));
}

/// A follower that already holds the snapshot's entries (its commit index is past it)
/// says so, and the leader takes that as its match: the answer waits for the sync, like
/// an append's (`slow_disks` seed 152 crashed a follower that had said so before its
/// entries were on disk).
#[test]
fn a_snapshot_the_follower_already_holds_is_answered_after_the_sync() {
    let mut c = Config::new(2, 1, vec![1, 2, 3]);
    c.pre_vote = false;
    let mut r = Raft::new(c, 2, 0, HardState { term: 1, voted_for: None }, vec![]).unwrap();
    r.step(0, noop_append((0, 0), 1..=6, 6));
    r.drain_effects();
    let meta = SnapshotMeta { index: 5, term: 1 };
    let snapshot = Message::InstallSnapshot {
        term: 1,
        meta,
        membership: Membership::with_voters([1, 2, 3]),
        chunk: 0,
        data: vec![],
        done: true,
    };
    r.step(0, Input::Receive(Envelope { group: 1, from: 1, to: 2, message: snapshot }));
    let reply = Message::InstallSnapshotResponse { term: 1, meta, received: 0, done: true };
    assert_eq!(
        r.drain_effects(),
        vec![Effect::Send {
            envelope: Envelope { group: 1, from: 2, to: 1, message: reply },
            after: Durability::Synced
        }]
    );
}

/// Node 2 of {1, 2, 3}, recovered with its log cut at 5 (term 2), entries 6 to 8 of term
/// 2, and its state machine lost.
fn lost_follower() -> Raft {
    let mut c = Config::new(2, 1, vec![1, 2, 3]);
    c.pre_vote = false;
    let hard = HardState { term: 2, voted_for: None };
    let cut = (SnapshotMeta { index: 5, term: 2 }, Membership::with_voters([1, 2, 3]));
    let entries = (6..=8).map(|index| Entry { term: 2, index, payload: Payload::Noop }).collect();
    let mut r = Raft::with_snapshot(c, 7, 0, hard, Some(cut), entries, 5).unwrap();
    r.lose_state_machine();
    r
}

fn heartbeat(commit: Index) -> Input {
    let message = Message::Heartbeat { term: 2, commit, read_seq: 0, sent_ms: 0 };
    Input::Receive(Envelope { group: 1, from: 1, to: 2, message })
}

/// A replica made anew (an empty log, its state lost: a node that was removed from the
/// range and added back) grants no vote, not even a pre-vote, until it holds a state.
#[test]
fn a_replica_made_anew_votes_for_no_one() {
    let mut c = Config::new(2, 1, vec![1, 2, 3]);
    c.pre_vote = false;
    let mut r = Raft::with_snapshot(c, 7, 0, HardState::default(), None, Vec::new(), 0).unwrap();
    r.lose_state_machine();
    for message in [
        Message::RequestVote { term: 5, last_log_index: 3, last_log_term: 1, transfer: false },
        Message::PreVote { term: 6, last_log_index: 3, last_log_term: 1 },
    ] {
        r.step(0, Input::Receive(Envelope { group: 1, from: 3, to: 2, message }));
    }
    let granted: Vec<bool> = r
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send { envelope, .. } => match envelope.message {
                Message::RequestVoteResponse { granted, .. } | Message::PreVoteResponse { granted, .. } => {
                    Some(granted)
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(granted, [false, false]);
}

/// A replica whose state machine was dropped as corrupt keeps its log and votes, but
/// neither campaigns nor commits until a fetched state of at least its cut is restored;
/// then it is a follower like any other.
#[test]
fn a_replica_without_its_state_waits_for_one_and_then_follows() {
    let mut r = lost_follower();
    assert!(r.awaiting_snapshot());
    r.step(10_000, Input::Tick);
    let effects = r.drain_effects();
    assert!(effects.is_empty(), "no campaign without a state to lead with: {effects:?}");
    r.step(10_001, heartbeat(8));
    let effects = r.drain_effects();
    assert_eq!(r.commit_index(), 5, "nothing to apply to: the commit index waits");
    assert!(!effects.iter().any(|e| matches!(e, Effect::Commit { .. })), "{effects:?}");
    let snapshot = Message::InstallSnapshot {
        term: 2,
        meta: SnapshotMeta { index: 7, term: 2 },
        membership: Membership::with_voters([1, 2, 3]),
        chunk: 0,
        data: b"s".to_vec(),
        done: true,
    };
    r.step(10_002, Input::Receive(Envelope { group: 1, from: 1, to: 2, message: snapshot }));
    assert_eq!(r.drain_effects(), Vec::new(), "a leader's snapshot waits: the driver fetches its own");
    let m = Membership::with_voters([1, 2, 3]);
    assert!(!r.restore_state(10_003, SnapshotMeta { index: 4, term: 2 }, m.clone()), "older than the cut");
    assert!(r.restore_state(10_004, SnapshotMeta { index: 7, term: 2 }, m.clone()));
    assert_eq!(
        r.drain_effects(),
        vec![Effect::InstallSnapshot {
            meta: SnapshotMeta { index: 7, term: 2 },
            membership: m.clone(),
            discard: Some((6, 7))
        }],
        "the log after the state is kept"
    );
    assert!(!r.awaiting_snapshot());
    assert_eq!((r.commit_index(), r.applied_index(), r.last_index()), (7, 7, 8));
    assert!(!r.restore_state(10_005, SnapshotMeta { index: 8, term: 2 }, m), "only while the state is lost");
    r.step(10_006, heartbeat(8));
    assert!(r.drain_effects().contains(&Effect::Commit { index: 8 }), "commits again");
}

/// A state fetched from a peer of a newer term raises ours (the log never runs ahead of
/// the term), and a log that disagrees at the state's index is dropped, as by §7.
#[test]
fn a_restored_state_of_a_newer_term_raises_the_term() {
    let mut r = lost_follower();
    let m = Membership::with_voters([1, 2, 3]);
    assert!(r.restore_state(10_000, SnapshotMeta { index: 7, term: 3 }, m.clone()));
    assert_eq!(
        r.drain_effects(),
        vec![
            Effect::PersistHardState(HardState { term: 3, voted_for: None }),
            Effect::InstallSnapshot { meta: SnapshotMeta { index: 7, term: 3 }, membership: m, discard: Some((6, 8)) },
        ]
    );
    assert_eq!((r.term(), r.last_index(), r.commit_index()), (3, 7, 7));
}

/// The state at exactly the log's cut is enough: the log stays whole.
#[test]
fn a_restored_state_at_the_cut_keeps_the_whole_log() {
    let mut r = lost_follower();
    let m = Membership::with_voters([1, 2, 3]);
    assert!(r.restore_state(10_000, SnapshotMeta { index: 5, term: 2 }, m.clone()));
    let meta = SnapshotMeta { index: 5, term: 2 };
    assert_eq!(r.drain_effects(), vec![Effect::InstallSnapshot { meta, membership: m, discard: None }]);
    assert_eq!((r.snapshot_meta(), r.last_index(), r.commit_index()), (meta, 8, 5));
}
