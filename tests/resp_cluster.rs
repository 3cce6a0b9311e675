//! The deployable build end to end: `phantomdb node` processes on 127.0.0.1 driven by a
//! Redis client library (the `redis` crate), as a user would run them.
#![cfg(not(madsim))]

mod common;

use common::{connect, http_get, query_retrying, wait_for, write_secret, Cluster, Proc, WAIT};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn set(key: &str, value: &str) -> redis::Cmd {
    redis::cmd("SET").arg(key).arg(value).clone()
}

fn get(key: &str) -> redis::Cmd {
    redis::cmd("GET").arg(key).clone()
}

/// Writes unique keys through `ports` (round robin on reconnect) until `stop`; returns
/// the keys whose SET was acknowledged with OK. A `-TRYAGAIN` is retried; an `-UNCERTAIN`,
/// a timeout or a broken connection leaves the write's outcome unknown, so it is not
/// counted.
fn writer(name: String, ports: Vec<u16>, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<String>>>) {
    let mut target = 0;
    let mut conn = None;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            target = (target + 1) % ports.len();
            conn = common::try_connect(ports[target]);
            continue;
        };
        let key = format!("{name}-{seq}");
        match set(&key, &seq.to_string()).query::<String>(c) {
            Ok(ok) => {
                assert_eq!(ok, "OK");
                acked.lock().unwrap().push(key);
                seq += 1;
            }
            Err(e) if e.code() == Some("TRYAGAIN") => {}
            Err(e) if e.code() == Some("UNCERTAIN") => seq += 1,
            Err(_) => {
                seq += 1;
                conn = None;
            }
        }
    }
}

/// One `writer` thread per key prefix, writing through every node of a cluster.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    fn start(cluster: &Cluster, prefixes: &[&str]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let ports: Vec<u16> = cluster.ports.iter().map(|p| p.resp).collect();
        let threads = prefixes
            .iter()
            .map(|name| {
                let (name, stop, acked, ports) = (name.to_string(), stop.clone(), acked.clone(), ports.clone());
                std::thread::spawn(move || writer(name, ports, stop, acked))
            })
            .collect();
        Writers { stop, acked, threads }
    }

    /// The writes acknowledged so far.
    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the writers; the keys whose writes were acknowledged.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// Every key in `keys` reads back with its value (the key's last `-` part) through node
/// `id`: GETs pipelined 500 at a time (an MGET could span ranges).
fn assert_all_present(cluster: &Cluster, id: u64, keys: &[String]) {
    let mut c = cluster.client(id);
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.add_command(get(k));
        }
        let values: Vec<Option<String>> = pipelined(&mut c, &pipe);
        for (k, v) in chunk.iter().zip(values) {
            let want = k.rsplit('-').next().unwrap();
            assert_eq!(v.as_deref(), Some(want), "acknowledged write {k} read through node {id}");
        }
    }
}

#[test]
fn three_nodes_serve_redis_clients_and_lose_no_acknowledged_write_to_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 3);
    // Compact often, so that the restarted node is behind every log and needs a snapshot.
    for extra in &mut cluster.extra {
        extra.extend(["--snapshot-entries".to_string(), "100".to_string()]);
    }
    cluster.start_all();

    // A client writes and reads through each node (followers forward to the leader).
    for id in 1..=3 {
        let mut c = cluster.client(id);
        let _: String = query_retrying(&mut c, &set(&format!("k{id}"), &format!("v{id}")));
        for reader in 1..=3 {
            let got: Option<String> = query_retrying(&mut cluster.client(reader), &get(&format!("k{id}")));
            assert_eq!(got.as_deref(), Some(format!("v{id}").as_str()), "k{id} through node {reader}");
        }
    }
    let leader = cluster.leader();
    let (code, body) = cluster.admin_get(leader, "/status");
    assert_eq!(code, 200);
    assert!(body.contains("\"role\": \"leader\""), "{body}");

    // Load through the followers, then SIGKILL the leader.
    let followers: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let ports = followers.iter().map(|&f| cluster.ports[f as usize - 1].resp).collect();
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || writer(format!("w{w}"), ports, stop, acked))
        })
        .collect();
    let acked_len = || acked.lock().unwrap().len();
    wait_for("writes before the kill", || (acked_len() >= 200).then_some(()));
    cluster.kill(leader);
    let at_kill = acked_len();
    // Past what the leader keeps for a slow follower (4 × 100 entries), so that the
    // killed node needs a snapshot.
    wait_for("writes to continue under a new leader", || (acked_len() >= at_kill + 600).then_some(()));
    let new_leader = cluster.leader();
    assert_ne!(new_leader, leader);

    // The killed node restarts from its data dir and catches up while writes go on.
    cluster.start(leader);
    let target: u64 = cluster.info(new_leader, "commit_index").unwrap().parse().unwrap();
    wait_for("the restarted node to catch up", || {
        let applied: u64 = cluster.info(leader, "applied_index")?.parse().ok()?;
        (applied >= target).then_some(())
    });
    let (_, metrics) = cluster.admin_get(leader, "/metrics");
    assert!(
        !metrics.contains("phantomdb_raft_snapshots_installed_total 0\n"),
        "the restarted node caught up from the leader's snapshot (over TCP):\n{metrics}"
    );

    // Under load again, SIGKILL a follower.
    let victim = *followers.iter().find(|&&f| f != new_leader).unwrap();
    let before = acked_len();
    wait_for("writes before the second kill", || (acked_len() >= before + 100).then_some(()));
    cluster.kill(victim);
    let at_kill = acked_len();
    wait_for("writes to continue after the second kill", || (acked_len() >= at_kill + 100).then_some(()));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    // Every acknowledged write is there, read through every running node.
    let keys = acked.lock().unwrap().clone();
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), keys.len(), "keys are unique");
    for id in (1..=3).filter(|&n| n != victim) {
        assert_all_present(&cluster, id, &keys);
    }
    let (code, metrics) = cluster.admin_get(new_leader, "/metrics");
    assert_eq!(code, 200);
    for family in ["phantomdb_raft_term", "phantomdb_request_duration_seconds_bucket", "phantomdb_peer_connected"] {
        assert!(metrics.contains(family), "{family} in /metrics");
    }
}

/// Durability on one node, where nothing can hide a lost write behind a replica: SIGKILL
/// the process in the middle of a stream of writes, restart it from its data dir, and
/// every write it acknowledged is there.
#[test]
fn sigkill_mid_write_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 1);
    // Snapshots and compaction happen many times during the run: recovery reads a
    // snapshot from fjall and the log after it.
    cluster.extra[0].extend(["--snapshot-entries".to_string(), "50".to_string()]);
    cluster.start_all();
    let port = cluster.ports[0].resp;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || writer(format!("s{w}"), vec![port], stop, acked))
        })
        .collect();
    wait_for("writes in flight", || (acked.lock().unwrap().len() >= 500).then_some(()));
    cluster.kill(1);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let keys = acked.lock().unwrap().clone();
    cluster.start(1);
    assert_all_present(&cluster, 1, &keys);
    let snapshot: u64 = cluster.info(1, "snapshot_index").unwrap().parse().unwrap();
    assert!(snapshot > 0, "recovered from a snapshot");
}

/// Sends `bytes` on a fresh connection; returns what the server answered before closing.
fn send_and_read_to_close(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // The server may close before taking everything; that is its right.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("the server closes the connection in time");
    String::from_utf8_lossy(&out).into_owned()
}

/// `HELLO 3` switches a connection to RESP3 (a map for HELLO, `_` for nil) and `HELLO 2`
/// back; other connections stay RESP2. A client library asking for RESP3 on connect (as
/// current ones do) works.
#[test]
fn a_client_that_asks_for_resp3_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 1);
    cluster.start_all();
    let port = cluster.ports[0].resp;
    let mut resp2 = connect(port);
    let _: String = query_retrying(&mut resp2, &set("k", "v"));

    let hello = |v: &str| format!("*2\r\n$5\r\nHELLO\r\n$1\r\n{v}\r\n");
    let get_raw = |k: &str| format!("*2\r\n$3\r\nGET\r\n${}\r\n{k}\r\n", k.len());
    let quit = "*1\r\n$4\r\nQUIT\r\n".to_string();
    let script = [hello("3"), get_raw("none"), get_raw("k"), hello("2"), get_raw("none"), quit].concat();
    let answer = send_and_read_to_close(port, script.as_bytes());
    assert!(answer.starts_with("%7\r\n$6\r\nserver\r\n$9\r\nphantomdb\r\n"), "HELLO 3 answers a map: {answer:?}");
    assert!(answer.contains("$5\r\nproto\r\n:3\r\n"), "{answer:?}");
    assert!(
        answer.contains("$7\r\nmodules\r\n*0\r\n_\r\n$1\r\nv\r\n*14\r\n"),
        "then a null, a value, a flat array: {answer:?}"
    );
    let (_, after) = answer.split_once("*14\r\n").expect("HELLO 2 answers a flat array");
    assert!(after.contains("$5\r\nproto\r\n:2\r\n"), "{after:?}");
    assert!(after.ends_with("$7\r\nmodules\r\n*0\r\n$-1\r\n+OK\r\n"), "back to RESP2's nil: {after:?}");

    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/?protocol=resp3")).unwrap();
    let mut resp3 = client.get_connection_with_timeout(Duration::from_secs(5)).unwrap();
    let _: () = redis::cmd("SET").arg("r3").arg("yes").query(&mut resp3).unwrap();
    let got: Vec<Option<String>> = redis::cmd("MGET").arg("r3").arg("none").query(&mut resp3).unwrap();
    assert_eq!(got, vec![Some("yes".to_string()), None]);
    let got: Option<String> = query_retrying(&mut resp2, &get("r3"));
    assert_eq!(got.as_deref(), Some("yes"), "a RESP2 connection alongside");
}

#[test]
fn bad_input_gets_an_error_and_closes_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 1);
    cluster.extra[0].extend(["--max-value-bytes".to_string(), "1024".to_string()]);
    cluster.start_all();
    let port = cluster.ports[0].resp;
    let mut bystander = connect(port);
    let _: String = query_retrying(&mut bystander, &set("before", "x"));

    let huge = send_and_read_to_close(port, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1099511627776\r\n");
    assert!(huge.starts_with("-ERR Protocol error") && huge.contains("exceeds"), "{huge}");
    let over = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n{}\r\n", "x".repeat(1025));
    let answer = send_and_read_to_close(port, over.as_bytes());
    assert!(answer.starts_with("-ERR Protocol error") && answer.contains("1025"), "{answer}");
    let garbage = send_and_read_to_close(port, b"\x00\xff\xfe garbage \x01\r\n");
    assert!(garbage.starts_with("-ERR Protocol error"), "{garbage}");
    // Answers already due are sent before the error.
    let mixed = send_and_read_to_close(port, b"*1\r\n$4\r\nPING\r\n*1\r\n+oops\r\n*1\r\n$4\r\nPING\r\n");
    assert!(mixed.starts_with("+PONG\r\n-ERR Protocol error"), "{mixed}");
    assert!(!mixed.contains("PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n+PONG"), "nothing after the error");

    // A value of exactly the maximum is fine; wrong arity and unknown commands get an
    // error and the connection stays usable.
    let _: String = query_retrying(&mut bystander, &set("max", &"y".repeat(1024)));
    let e = redis::cmd("GET").query::<String>(&mut bystander).unwrap_err();
    assert!(e.to_string().contains("wrong number of arguments"), "{e}");
    let e = redis::cmd("NOSUCH").arg("a").query::<String>(&mut bystander).unwrap_err();
    assert!(e.to_string().contains("unknown command"), "{e}");
    let got: Option<String> = query_retrying(&mut bystander, &get("before"));
    assert_eq!(got.as_deref(), Some("x"), "the bystander's connection was never disturbed");
    let (_, metrics) = cluster.admin_get(1, "/metrics");
    assert!(metrics.contains("phantomdb_resp_protocol_errors_total 4"), "{metrics}");
}

#[test]
fn a_peer_with_the_wrong_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 3);
    let wrong = write_secret(dir.path(), "wrong.secret", "not the secret the others share");
    cluster.extra[2] = vec!["--cluster-secret-file".into(), wrong.display().to_string()];
    cluster.start_all();
    // Nodes 1 and 2 form a quorum and serve; node 3 is never heard, and hears no one.
    let mut c = cluster.client(1);
    let _: String = query_retrying(&mut c, &set("k", "v"));
    let leader = cluster.leader();
    assert_ne!(leader, 3);
    wait_for("node 1 to log the refusal", || cluster.proc(1).log.contains("peer refused").then_some(()));
    let refusal = cluster.proc(1).log.lines().into_iter().find(|l| l.contains("peer refused")).unwrap();
    assert!(refusal.contains("claimed_id=Some(3)") && refusal.contains("wrong cluster secret"), "{refusal}");
    let (_, metrics) = cluster.admin_get(1, "/metrics");
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("phantomdb_peer_auth_failures_total "))
        .and_then(|v| v.parse().ok())
        .expect("the counter is exported");
    assert!(failures >= 1);
    let e = get("k").query::<Option<String>>(&mut cluster.client(3)).unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "node 3 knows no leader: {e}");
    assert_ne!(cluster.info(3, "leader").as_deref(), Some(leader.to_string().as_str()));
}

#[test]
fn sigterm_stops_cleanly_and_a_locked_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 1);
    cluster.start_all();
    let mut c = cluster.client(1);
    let _: String = query_retrying(&mut c, &set("kept", "yes"));

    // A second process on the same data dir is refused, naming the holder.
    let mut args = cluster.args(1);
    for flag in ["--peer-addr", "--resp-addr", "--admin-addr"] {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = format!("127.0.0.1:{}", common::free_port());
    }
    let mut second = Proc::start(&args);
    let status = second.wait_exit();
    assert!(!status.success());
    wait_for("the lock error", || second.log.contains("is in use by another phantomdb process").then_some(()));

    cluster.proc(1).signal(libc::SIGTERM);
    let status = cluster.proc(1).wait_exit();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    let log = cluster.proc(1).log.clone();
    wait_for("the clean-stop line", || log.contains("stopped cleanly").then_some(()));

    // Released: a new process takes the directory and finds the data.
    cluster.start(1);
    let got: Option<String> = query_retrying(&mut cluster.client(1), &get("kept"));
    assert_eq!(got.as_deref(), Some("yes"));
}

#[test]
fn a_node_refuses_a_sharding_mode_its_data_was_not_written_with() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 1);
    let secret_flags = cluster.extra[0].clone();
    cluster.extra[0].extend(["--sharding".into(), "range".into()]);
    let ranged = cluster.extra[0].clone();
    cluster.start_all();
    let _: String = query_retrying(&mut cluster.client(1), &set("kept", "yes"));
    cluster.proc(1).signal(libc::SIGTERM);
    assert!(cluster.proc(1).wait_exit().success());

    // The default, hash, would look "kept" up under its slot, where it is not.
    cluster.extra[0] = secret_flags;
    let mut hashed = Proc::start(&cluster.args(1));
    assert!(!hashed.wait_exit().success(), "refused");
    wait_for("the sharding error", || hashed.log.contains("written with range sharding").then_some(()));

    cluster.extra[0] = ranged;
    cluster.start(1);
    let got: Option<String> = query_retrying(&mut cluster.client(1), &get("kept"));
    assert_eq!(got.as_deref(), Some("yes"));
}

#[test]
fn ranges_on_some_nodes_serve_every_key_through_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 5);
    for extra in &mut cluster.extra {
        extra.extend(["--ranges", "6", "--replication-factor", "3"].map(String::from));
    }
    cluster.start_all();
    let keys: Vec<String> = (0..120).map(|i| format!("key-{i}")).collect();
    let mut c = cluster.client(1);
    for k in &keys {
        let _: String = query_retrying(&mut c, &set(k, k));
    }
    // Every node answers for every key: from its own replica, or by forwarding.
    for id in 1..=5 {
        let mut c = cluster.client(id);
        for k in keys.iter().step_by(7) {
            let got: Option<String> = query_retrying(&mut c, &get(k));
            assert_eq!(got.as_deref(), Some(k.as_str()), "node {id}, {k}");
        }
    }
    let (code, body) = cluster.admin_get(1, "/ranges");
    assert_eq!(code, 200, "{body}");
    let ranges: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (meta, ranges): (Vec<_>, Vec<_>) =
        ranges.as_array().expect("a list").iter().partition(|r| r["meta"] == serde_json::json!(true));
    assert_eq!(ranges.len(), 6, "{body}");
    assert_eq!(meta.len(), 1, "and the meta range: {body}");
    assert_eq!(meta[0]["replicas"], serde_json::json!([1, 2, 3, 4, 5]), "on the first five nodes: {body}");
    let mut hosted = [0; 6];
    for r in &ranges {
        let replicas = r["replicas"].as_array().expect("replicas");
        assert_eq!(replicas.len(), 3, "{r}");
        for n in replicas {
            hosted[n.as_u64().unwrap() as usize] += 1;
        }
        assert_eq!(r["generation"], 1, "{r}");
        assert_eq!(r["hosted_here"], replicas.contains(&serde_json::json!(1)), "{r}");
    }
    assert!(hosted[1..].iter().all(|&n| (3..=4).contains(&n)), "replicas per node: {hosted:?}");
    assert_eq!(ranges[0]["slots"], "0-2729", "{body}");
    // Range 1 lives on nodes 1, 2 and 3: node 4 cannot join its membership.
    let (code, body) = common::http(cluster.ports[0].admin, "POST", "/membership?voters=1,2,4");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("node 4 hosts no replica of group 1"), "{body}");
    let (_, metrics) = cluster.admin_get(1, "/metrics");
    assert!(metrics.contains("phantomdb_ranges 7\n"), "6 and the meta range: {metrics}");
    let with_meta = hosted[1] + 1;
    assert!(metrics.contains(&format!("phantomdb_replicas {with_meta}\n")), "and the meta range's: {metrics}");
}

#[test]
fn a_range_splits_under_writes_and_every_acknowledged_key_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 3);
    for extra in &mut cluster.extra {
        extra.extend(["--sharding", "range"].map(String::from));
    }
    cluster.start_all();
    // Keys "a-…" stay left of the split at "m", keys "w-…" go to the new range.
    let writers = Writers::start(&cluster, &["a", "w"]);
    let acked_count = || writers.count();
    wait_for("writes before the split", || (acked_count() >= 200).then_some(()));
    // Only the range's leader takes it; the others say so.
    let body = wait_for("the leader to take the split", || {
        cluster.ports.iter().find_map(|p| {
            let (code, body) = common::http(p.admin, "POST", "/ranges/split?key=m");
            (code == 200).then_some(body)
        })
    });
    assert!(body.contains("\"splitting\":1"), "{body}");
    let split_seen = |id: u64| {
        let ranges = ranges_of(&cluster, id);
        let halves = ranges.len() == 2 && ranges.iter().all(|r| r["generation"] == 2);
        (halves && ranges[1]["start"] == "m" && ranges[0]["end"] == "m").then_some(())
    };
    for id in 1..=3 {
        wait_for(&format!("node {id} to apply the split"), || split_seen(id));
    }
    // The ranges report to the meta range: its directory follows the split (a report a
    // second), on every node that hosts the meta range (here all three).
    for id in 1..=3 {
        wait_for(&format!("node {id}'s directory to hold both halves"), || {
            let (code, body) = cluster.admin_get(id, "/directory");
            assert_eq!(code, 200, "{body}");
            let directory: serde_json::Value = serde_json::from_str(&body).unwrap();
            let ranges = directory["ranges"].as_array().expect("a list").clone();
            let starts: Vec<&serde_json::Value> = ranges.iter().map(|r| &r["start"]).collect();
            let halves = ranges.iter().filter(|r| r["meta"].is_null()).all(|r| r["generation"] == 2);
            (starts == ["", "m", "\\xff"] && halves).then_some(())
        });
    }
    let after_split = acked_count();
    wait_for("writes to both halves after the split", || (acked_count() >= after_split + 200).then_some(()));
    let acked = writers.stop();
    assert!(acked.iter().any(|k| k.starts_with("w-")) && acked.iter().any(|k| k.starts_with("a-")));
    // An MGET across both halves is refused (CROSSSLOT): each half is read on its own.
    for id in 1..=3 {
        for prefix in ["a-", "w-"] {
            let half: Vec<String> = acked.iter().filter(|k| k.starts_with(prefix)).cloned().collect();
            assert_all_present(&cluster, id, &half);
        }
    }
    let (_, metrics) = cluster.admin_get(1, "/metrics");
    assert!(metrics.contains("phantomdb_ranges 3\n"), "the halves and the meta range: {metrics}");
    assert!(metrics.contains("phantomdb_replicas 3\n"), "every node hosts them all: {metrics}");
    let (code, body) = common::http(cluster.ports[0].admin, "POST", "/ranges/split?key=");
    assert_eq!(code, 400, "{body}");
}

/// The ranges of user keys node `id` lists at `GET /ranges` (not the meta range).
fn ranges_of(cluster: &Cluster, id: u64) -> Vec<serde_json::Value> {
    let (_, body) = cluster.admin_get(id, "/ranges");
    let ranges: serde_json::Value = serde_json::from_str(&body).unwrap();
    ranges.as_array().expect("a list").iter().filter(|r| r["meta"].is_null()).cloned().collect()
}

#[test]
fn ranges_split_as_they_grow_and_a_replica_moves_to_a_new_node_under_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 4);
    for extra in &mut cluster.extra {
        // Placement off: the operator moves a replica here, and placement would move them too.
        let flags =
            ["--sharding", "range", "--replication-factor", "3", "--range-bytes-max", "4096", "--placement", "false"];
        extra.extend(flags.map(String::from));
    }
    cluster.start_all();
    let writers = Writers::start(&cluster, &["a", "w"]);
    let acked_count = || writers.count();
    // About 12 bytes a key: past 4 KiB the range's leader splits it, and the halves again.
    wait_for("ranges split by size", || (ranges_of(&cluster, 1).len() >= 3).then_some(()));
    // One range, on nodes 1 to 3: its replica moves to node 4, which hosts none.
    let body = wait_for("the range's leader to take the move", || {
        cluster.ports.iter().find_map(|p| {
            let (code, body) = common::http(p.admin, "POST", "/ranges/move?range=1&to=4");
            (code == 200).then_some(body)
        })
    });
    let moved: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((&moved["moving"], &moved["to"]), (&serde_json::json!(1), &serde_json::json!(4)), "{body}");
    let from = moved["from"].as_u64().expect("the node moved from");
    let range_one = |id: u64| ranges_of(&cluster, id).into_iter().find(|r| r["id"] == 1).expect("range 1");
    wait_for("node 4 to hold range 1's replica", || {
        let r = range_one(4);
        let replicas = r["replicas"].as_array().unwrap().clone();
        let moved = replicas.len() == 3 && replicas.contains(&serde_json::json!(4));
        (moved && !replicas.contains(&serde_json::json!(from)) && r["hosted_here"] == true).then_some(())
    });
    wait_for(&format!("node {from} to drop its replica"), || (range_one(from)["hosted_here"] == false).then_some(()));
    let after_move = acked_count();
    wait_for("writes after the move", || (acked_count() >= after_move + 200).then_some(()));
    // Every acknowledged key reads back through the node the replica left and the one it
    // moved to, whichever range holds it now (one key a request: they span ranges).
    let acked = writers.stop();
    for id in [from, 4] {
        for key in acked.chunks(1) {
            assert_all_present(&cluster, id, key);
        }
    }
    let (_, metrics) = cluster.admin_get(4, "/metrics");
    assert!(metrics.contains("phantomdb_range_bytes{range=\"1\"}"), "{metrics}");
    let stayed = (1..=3).find(|&n| n != from).unwrap();
    let (_, metrics) = cluster.admin_get(stayed, "/metrics");
    assert!(!metrics.contains("phantomdb_range_splits_total 0\n"), "{metrics}");
    for (query, needle) in [("range=1", "expected ?range="), ("range=1&to=9", "node 9 is not in --initial-cluster")] {
        let (code, body) = common::http(cluster.ports[0].admin, "POST", &format!("/ranges/move?{query}"));
        assert_eq!(code, 400, "{body}");
        assert!(body.contains(needle), "{body}");
    }
}

/// Runs `pipe` until every command in it succeeds, retrying it whole on `-TRYAGAIN`
/// (its commands are idempotent), within `WAIT`.
fn pipelined<T: redis::FromRedisValue>(c: &mut redis::Connection, pipe: &redis::Pipeline) -> T {
    wait_for("a pipeline to succeed", || match pipe.query::<T>(c) {
        Ok(v) => Some(v),
        Err(e) if e.code() == Some("TRYAGAIN") => None,
        Err(e) => panic!("unexpected error: {e}"),
    })
}

/// Replicas per node in node `id`'s directory of ranges (the meta range's included), once
/// every range in it has settled on three.
fn settled_replicas(cluster: &Cluster, id: u64, nodes: u64) -> Option<Vec<usize>> {
    let (code, body) = cluster.admin_get(id, "/directory");
    assert_eq!(code, 200, "{body}");
    let directory: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut counts = vec![0; nodes as usize];
    for r in directory["ranges"].as_array().expect("a list") {
        let replicas = r["replicas"].as_array().expect("replicas");
        if replicas.len() != 3 {
            return None;
        }
        for n in replicas {
            counts[n.as_u64().unwrap() as usize - 1] += 1;
        }
    }
    Some(counts)
}

#[test]
fn ranges_spread_onto_joining_nodes_and_a_sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 5);
    for extra in &mut cluster.extra {
        extra.extend(["--ranges", "8", "--replication-factor", "3", "--joining", "4,5"].map(String::from));
    }
    for id in 1..=3 {
        cluster.start(id);
    }
    let loaded: Vec<String> = (0..20_000).map(|i| format!("load-{i}")).collect();
    let mut c = cluster.client(1);
    for chunk in loaded.chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.add_command(set(k, k.rsplit('-').next().unwrap()));
        }
        let _: Vec<String> = pipelined(&mut c, &pipe);
    }
    // Every range and the meta range start on nodes 1 to 3; nodes 4 and 5 join empty.
    assert_eq!(settled_replicas(&cluster, 1, 5), Some(vec![9, 9, 9, 0, 0]));
    cluster.start(4);
    cluster.start(5);
    // 27 replicas over 5 nodes: 5 or 6 each once placement is done (the meta range's
    // three stay on nodes 1 to 3).
    let started = Instant::now();
    let counts = wait_for("the replicas to spread within one of the mean", || {
        settled_replicas(&cluster, 1, 5).filter(|c| c.iter().all(|&n| (5..=6).contains(&n)))
    });
    eprintln!("balanced in {:.1} s: {counts:?}", started.elapsed().as_secs_f64());
    for id in [4, 5] {
        let want = format!("phantomdb_replicas {}\n", counts[id as usize - 1]);
        wait_for(&format!("node {id} to host its replicas"), || {
            cluster.admin_get(id, "/metrics").1.contains(&want).then_some(())
        });
    }
    let writers = Writers::start(&cluster, &["a", "w"]);
    wait_for("writes before the kill", || (writers.count() >= 200).then_some(()));
    cluster.kill(2);
    let before = writers.count();
    wait_for("writes after the kill", || (writers.count() >= before + 200).then_some(()));
    let acked = writers.stop();
    for id in [1, 4] {
        assert_all_present(&cluster, id, &acked);
        assert_all_present(&cluster, id, &loaded);
    }
    let (_, metrics) = cluster.admin_get(1, "/metrics");
    assert!(metrics.contains("phantomdb_placement_operations_total"), "{metrics}");
}

#[test]
fn the_demo_serves_every_node_and_stops_on_ctrl_c() {
    // Nine ports per base, below the ephemeral range that free_port() draws from; take a
    // base whose ports are free right now.
    let base = (0..100)
        .map(|i| 20_000 + i * 97)
        .find(|&b| {
            (1..=3)
                .all(|i| [0, 1000, 2000].iter().all(|o| std::net::TcpListener::bind(("127.0.0.1", b + o + i)).is_ok()))
        })
        .expect("a free port range");
    let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_phantomdb"))
        .args(["demo", "--port-base", &base.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = demo.stdout.take().unwrap();
    let started = Instant::now();
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    while !text.contains("Ctrl-C") {
        assert!(started.elapsed() < WAIT, "the demo starts in time: {text}");
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the demo exited early: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    for i in 1..=3u16 {
        assert!(text.contains(&format!("node {i}: RESP 127.0.0.1:{}", base + i)), "{text}");
        assert!(text.contains(&format!("admin http://127.0.0.1:{}", base + 1000 + i)), "{text}");
    }
    let _: String = query_retrying(&mut connect(base + 1), &set("k", "v"));
    for i in 1..=3 {
        let got: Option<String> = query_retrying(&mut connect(base + i), &get("k"));
        assert_eq!(got.as_deref(), Some("v"), "through node {i}");
    }
    assert_eq!(http_get(base + 1001, "/health").0, 200);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(demo.id() as i32, libc::SIGINT) }, 0);
    let status = wait_for("the demo to stop", || demo.try_wait().unwrap());
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    assert!(rest.contains("stopped."), "{rest}");
}
