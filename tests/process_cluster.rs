//! The `phantomdb` binary as real processes on 127.0.0.1: three nodes elect a leader;
//! after the leader is SIGKILLed, the other two elect a new one in a later term; the
//! killed node restarts from its data dir. Every wait is on a log line, with a bound.
#![cfg(not(madsim))]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log line of node `id`.
struct Line {
    id: u64,
    text: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(id: u64, dir: &std::path::Path, ports: &[u16], tx: mpsc::Sender<Line>) -> Proc {
    let cluster: Vec<String> = ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1)).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_phantomdb"))
        .args(["node", "--id", &id.to_string(), "--data-dir"])
        .arg(dir.join(format!("n{id}")))
        .args(["--peer-addr", &format!("127.0.0.1:{}", ports[id as usize - 1])])
        .args(["--initial-cluster", &cluster.join(",")])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("phantomdb starts");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(Line { id, text: line }).is_err() {
                return;
            }
        }
    });
    Proc { child }
}

/// Waits for a "became leader" line from one of `from`; returns (node, term).
fn wait_leader(rx: &mpsc::Receiver<Line>, from: &[u64], min_term: u64) -> (u64, u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("a leader is elected in time");
        if !from.contains(&line.id) || !line.text.contains("became leader") {
            continue;
        }
        let term: u64 = line
            .text
            .split("term=")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|t| t.parse().ok())
            .expect("the leader line names its term");
        if term >= min_term {
            return (line.id, term);
        }
    }
}

#[test]
fn nodes_elect_a_leader_and_replace_it_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let (tx, rx) = mpsc::channel();
    let mut procs: Vec<Option<Proc>> = (1..=3).map(|id| Some(spawn(id, dir.path(), &ports, tx.clone()))).collect();
    let (leader, term) = wait_leader(&rx, &[1, 2, 3], 1);
    // SIGKILL: no shutdown path runs.
    procs[leader as usize - 1] = None;
    let others: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
    let (_, new_term) = wait_leader(&rx, &others, term + 1);
    assert!(new_term > term);
    // The killed node comes back from its data dir and finds its term again.
    procs[leader as usize - 1] = Some(spawn(leader, dir.path(), &ports, tx.clone()));
    let deadline = Instant::now() + WAIT;
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("the node recovers");
        if line.id == leader && line.text.contains("recovered") {
            assert!(!line.text.contains("term=0"), "{}", line.text);
            break;
        }
    }
}

#[test]
fn bad_flags_are_refused_with_the_flag_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_phantomdb")).args(["node", "--id", "zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--id \"zero\""));
}
