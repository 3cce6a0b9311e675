//! Snapshots and log compaction (Raft §7): compaction, InstallSnapshot in chunks, the
//! follower's side of it, and recovery from a snapshot. Ports etcd's TestSlowNodeRestore
//! and TestRestoreFromSnapMsg in spirit.

use super::tests_prevote::Net;
use super::*;
use std::sync::Arc;

fn propose_n(net: &mut Net, leader: u64, n: usize) {
    for i in 0..n {
        net.nodes.get_mut(&leader).unwrap().propose(vec![i as u8]).unwrap();
        net.deliver();
    }
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
/// the snapshot (here in 3-byte chunks), then the entries after it.
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
    leader.compact(8, Arc::new(b"state-at-8".to_vec()));
    assert_eq!(leader.snapshot_meta(), SnapshotMeta { index: 8, term: 1 });
    assert!(leader.entry(8).is_none() && leader.entry(9).is_some(), "entries up to 8 are gone");
    net.heal();
    net.advance(20);
    assert_eq!(installed(&net, 3), vec![SnapshotMeta { index: 8, term: 1 }]);
    let data = net.seen.iter().find_map(|(n, e)| match e {
        Effect::InstallSnapshot { data, .. } if *n == 3 => Some(data.clone()),
        _ => None,
    });
    assert_eq!(data.unwrap().as_slice(), b"state-at-8", "every chunk arrived, in order");
    let f = net.get(3);
    assert_eq!(f.commit_index(), 11, "then caught up with entries");
    assert_eq!(f.last_index(), 11);
    assert_eq!(f.snapshot_meta().index, 8);
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
        Some((meta, Membership::with_voters([1, 2, 3]), Arc::new(vec![1]))),
        after,
    )
    .unwrap();
    assert_eq!((r.commit_index(), r.last_index(), r.snapshot_meta()), (7, 8, meta));
    // A snapshot newer than the hard state, or entries that do not follow it, are refused.
    let bad = Raft::with_snapshot(
        c.clone(),
        1,
        0,
        HardState { term: 1, voted_for: None },
        Some((meta, Membership::with_voters([1, 2, 3]), Arc::new(vec![]))),
        vec![],
    );
    assert!(bad.is_err());
    let gap = vec![Entry { term: 3, index: 9, payload: Payload::Noop }];
    assert!(Raft::with_snapshot(
        c,
        1,
        0,
        HardState { term: 3, voted_for: None },
        Some((meta, Membership::with_voters([1, 2, 3]), Arc::new(vec![]))),
        gap
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
        Some((meta, Membership::with_voters([1, 2, 3]), Arc::new(vec![]))),
        vec![],
    )
    .unwrap();
    let entries: Vec<Entry> = (4..=7).map(|index| Entry { term: 1, index, payload: Payload::Noop }).collect();
    let append = Message::AppendEntries {
        term: 1,
        prev_log_index: 3,
        prev_log_term: 1,
        entries,
        leader_commit: 6,
        read_seq: 0,
        sent_ms: 0,
    };
    r.step(0, Input::Receive(Envelope { group: 1, from: 1, to: 2, message: append }));
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

/// A chunk that does not follow what the follower holds makes it say where to resume.
#[test]
fn an_out_of_order_chunk_asks_for_the_right_offset() {
    let mut c = Config::new(2, 1, vec![1, 2, 3]);
    c.pre_vote = false;
    let mut r = Raft::new(c, 2, 0, HardState { term: 1, voted_for: None }, vec![]).unwrap();
    let meta = SnapshotMeta { index: 9, term: 1 };
    let chunk = |offset: u64, data: &[u8], done: bool| {
        Input::Receive(Envelope {
            group: 1,
            from: 1,
            to: 2,
            message: Message::InstallSnapshot {
                term: 1,
                meta,
                membership: Membership::with_voters([1, 2, 3]),
                offset,
                data: data.to_vec(),
                done,
            },
        })
    };
    r.step(0, chunk(0, b"abc", false));
    r.drain_effects();
    r.step(0, chunk(6, b"ghi", true));
    let reply = r.drain_effects().into_iter().find_map(|e| match e {
        Effect::Send { envelope, .. } => Some(envelope.message),
        _ => None,
    });
    assert_eq!(reply, Some(Message::InstallSnapshotResponse { term: 1, meta, received: 3, done: false }));
    r.step(0, chunk(3, b"def", false));
    r.step(0, chunk(6, b"ghi", true));
    let effects = r.drain_effects();
    let data = effects.iter().find_map(|e| match e {
        Effect::InstallSnapshot { data, .. } => Some(data.clone()),
        _ => None,
    });
    assert_eq!(data.unwrap().as_slice(), b"abcdefghi");
    assert_eq!(r.commit_index(), 9);
}
