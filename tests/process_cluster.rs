//! The `phantomdb` binary as real processes on 127.0.0.1: three nodes elect a leader;
//! after the leader is SIGKILLed, the other two elect a new one in a later term; the
//! killed node restarts from its data dir. Every wait is on a log line, with a bound.
#![cfg(not(madsim))]

mod common;

use common::{wait_for, Cluster};

/// The term of the newest "became leader" line of node `id` at or above `min_term`.
fn leader_term(cluster: &mut Cluster, id: u64, min_term: u64) -> Option<u64> {
    let proc = cluster.procs[id as usize - 1].as_ref()?;
    proc.log
        .lines()
        .iter()
        .filter(|l| l.contains("became leader"))
        .filter_map(|l| l.split("term=").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .filter(|&t| t >= min_term)
        .max()
}

/// Waits for one of `from` to log "became leader" in a term of at least `min_term`.
fn wait_leader(cluster: &mut Cluster, from: &[u64], min_term: u64) -> (u64, u64) {
    wait_for("a leader", || from.iter().find_map(|&id| Some((id, leader_term(cluster, id, min_term)?))))
}

#[test]
fn nodes_elect_a_leader_and_replace_it_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 3);
    cluster.start_all();
    let (leader, term) = wait_leader(&mut cluster, &[1, 2, 3], 1);
    cluster.kill(leader);
    let others: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
    let (_, new_term) = wait_leader(&mut cluster, &others, term + 1);
    assert!(new_term > term);
    // The killed node comes back from its data dir and finds its term again.
    cluster.start(leader);
    let log = cluster.proc(leader).log.clone();
    let recovered = wait_for("the node to recover", || log.lines().into_iter().find(|l| l.contains("recovered")));
    assert!(!recovered.contains("term=0"), "{recovered}");
}

/// An operator hands leadership over with the admin endpoint (Raft's TimeoutNow).
#[test]
fn leadership_moves_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 3);
    cluster.start_all();
    let leader = cluster.leader();
    let target = (1..=3).find(|&n| n != leader).unwrap();
    let admin = |id: u64| cluster.ports[id as usize - 1].admin;
    let (code, body) = common::http(admin(target), "POST", &format!("/transfer-leader?to={leader}"));
    assert_eq!(code, 409, "a follower cannot hand over: {body}");
    assert!(body.contains("not the leader"), "{body}");
    assert_eq!(common::http(admin(leader), "POST", "/transfer-leader?to=x").0, 400);
    let (code, body) = common::http(admin(leader), "POST", &format!("/transfer-leader?to={target}"));
    assert_eq!(code, 200, "{body}");
    wait_for("the target to lead", || (cluster.info(target, "role").as_deref() == Some("leader")).then_some(()));
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_phantomdb")).args(["node", "--id", "zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--id \"zero\""));
}
