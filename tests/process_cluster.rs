//! The `phantomdb` binary as real processes on 127.0.0.1: three nodes elect a leader;
//! after the leader is SIGKILLed, the other two elect a new one in a later term; the
//! killed node restarts from its data dir. Every wait is on a log line, with a bound.
#![cfg(not(madsim))]

mod common;

use common::{wait_for, Cluster};

/// The term of the newest "became leader" line of node `id` for range 1 (not the meta
/// range) at or above `min_term`.
fn leader_term(cluster: &mut Cluster, id: u64, min_term: u64) -> Option<u64> {
    let proc = cluster.procs[id as usize - 1].as_ref()?;
    proc.log
        .lines()
        .iter()
        .filter(|l| l.contains("became leader") && l.contains(" group=1 "))
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
    let recovered = wait_for("the node to recover", || {
        log.lines().into_iter().find(|l| l.contains("recovered") && l.contains(" group=1 "))
    });
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

/// An operator grows the group from three voters to four, then removes the leader: by
/// joint consensus, with writes going on through the new node.
#[test]
fn membership_changes_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 4);
    for extra in &mut cluster.extra {
        extra.extend(["--initial-voters".to_string(), "1,2,3".to_string()]);
    }
    cluster.start_all();
    let leader = cluster.leader();
    let admin = |c: &Cluster, id: u64| c.ports[id as usize - 1].admin;
    // A leader refuses a change until it has committed an entry of its term (409): the
    // status says leader as soon as it won, a fsync or two before that.
    wait_for("the leader to take the change", || {
        let (code, body) = common::http(admin(&cluster, leader), "POST", "/membership?voters=1,2,3,4");
        let not_yet = code == 409 && body.contains("commits an entry of its own term");
        assert!(code == 200 || not_yet, "{code}: {body}");
        (code == 200).then_some(())
    });
    wait_for("node 4 to be a voter everywhere", || {
        let (_, status) = common::http_get(admin(&cluster, 4), "/status");
        (status.contains("\"voters\": [\n    1,\n    2,\n    3,\n    4\n  ]")
            && status.contains("\"outgoing_voters\": []"))
        .then_some(())
    });
    let mut c = cluster.client(4);
    let _: String = common::query_retrying(&mut c, redis::cmd("SET").arg("grown").arg("yes"));
    let remaining: Vec<String> = (1..=4).filter(|&n| n != leader).map(|n| n.to_string()).collect();
    let path = format!("/membership?voters={}", remaining.join(","));
    let (code, body) = common::http(admin(&cluster, leader), "POST", &path);
    assert_eq!(code, 200, "{body}");
    let new_leader = wait_for("a leader among the remaining voters", || {
        let l = cluster.leader();
        (l != leader).then_some(l)
    });
    let got: Option<String> = common::query_retrying(&mut cluster.client(new_leader), redis::cmd("GET").arg("grown"));
    assert_eq!(got.as_deref(), Some("yes"));
    let (code, body) = common::http(admin(&cluster, new_leader), "POST", "/membership?voters=9");
    assert_eq!(code, 400, "an unknown node is refused: {body}");
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_phantomdb")).args(["node", "--id", "zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--id \"zero\""));
}

/// `--lease-reads true`: once its lease holds, the leader answers reads without a round
/// of messages (counted in `/metrics`), and they see the writes before them.
#[test]
fn a_leader_serves_reads_from_its_lease_when_asked_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 3);
    for extra in &mut cluster.extra {
        extra.extend(["--lease-reads".to_string(), "true".to_string()]);
    }
    cluster.start_all();
    let leader = cluster.leader();
    let mut c = cluster.client(leader);
    let admin = cluster.ports[leader as usize - 1].admin;
    let lease_reads = || {
        let (_, metrics) = common::http_get(admin, "/metrics");
        metrics.lines().find_map(|l| l.strip_prefix("phantomdb_raft_lease_reads_total ")?.trim().parse::<u64>().ok())
    };
    let mut n = 0u64;
    wait_for("a read served from the lease", || {
        n += 1;
        let _: () = common::query_retrying(&mut c, redis::cmd("SET").arg("k").arg(n));
        let got: String = common::query_retrying(&mut c, redis::cmd("GET").arg("k"));
        assert_eq!(got, n.to_string(), "a read sees the write before it");
        lease_reads().filter(|&served| served > 0)
    });
    // One host, one clock: no follower may ever look beyond the drift bound. (At first,
    // millisecond readings over sub-millisecond round trips did, and the leader served
    // 4% of a benchmark's reads from its lease instead of all of them.)
    for _ in 0..200 {
        let _: String = common::query_retrying(&mut c, redis::cmd("GET").arg("k"));
    }
    let (_, metrics) = common::http_get(admin, "/metrics");
    assert!(metrics.contains("phantomdb_raft_clock_drift_violations_total 0"), "{metrics}");
}
