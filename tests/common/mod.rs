//! Real `phantomdb` processes on 127.0.0.1 for the tests in `tests/`: start, SIGKILL,
//! SIGTERM and restart nodes, follow their logs, talk to them with a Redis client and
//! over admin HTTP. Every wait is on a condition, with a bound.
#![allow(dead_code)] // each test file uses part of the harness

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(30);

/// A port nothing listens on, never the same twice in this process: the OS may hand a
/// port it just gave out (and we released) to the next bind, and two nodes of one test
/// were once given the same admin port.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Polls `f` until it returns `Some`, failing with `what` after `WAIT`.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        // A poll interval, not a wait for an outcome: the condition above decides.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The stderr lines of a process, collected by a reader thread.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<VecDeque<String>>>);

impl Log {
    pub fn contains(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().cloned().collect()
    }
}

pub struct Proc {
    pub child: Child,
    pub log: Log,
}

impl Proc {
    /// Starts `phantomdb` with `args`, logging at info.
    pub fn start(args: &[String]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_phantomdb"))
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("phantomdb starts");
        let log = Log::default();
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.0.lock().unwrap();
                // Bounded: the newest lines are the interesting ones.
                if l.len() >= 100_000 {
                    l.pop_front();
                }
                l.push_back(line);
            }
        });
        Proc { child, log }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_for("the process to exit", || self.child.try_wait().unwrap())
    }
}

/// Log lines a failing test shows of each process it ran.
const FAILURE_LOG_LINES: usize = 400;

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self.log.lines();
            eprintln!("--- the last {FAILURE_LOG_LINES} log lines of process {} ---", self.child.id());
            for line in &lines[lines.len().saturating_sub(FAILURE_LOG_LINES)..] {
                eprintln!("{line}");
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub peer: u16,
    pub resp: u16,
    pub admin: u16,
}

/// A cluster of `phantomdb node` processes sharing a secret.
pub struct Cluster {
    pub dir: PathBuf,
    pub ports: Vec<Ports>,
    pub procs: Vec<Option<Proc>>,
    /// Extra flags per node (index 0 is node 1).
    pub extra: Vec<Vec<String>>,
}

pub fn write_secret(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

impl Cluster {
    /// Configures `n` nodes (nothing runs yet); all share one secret.
    pub fn new(dir: &Path, n: usize) -> Cluster {
        let secret = write_secret(dir, "cluster.secret", "the cluster secret of the tests");
        let ports = (0..n).map(|_| Ports { peer: free_port(), resp: free_port(), admin: free_port() }).collect();
        let extra = (0..n).map(|_| vec!["--cluster-secret-file".to_string(), secret.display().to_string()]).collect();
        Cluster { dir: dir.to_path_buf(), ports, procs: (0..n).map(|_| None).collect(), extra }
    }

    pub fn args(&self, id: u64) -> Vec<String> {
        let p = self.ports[id as usize - 1];
        let cluster: Vec<String> =
            self.ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{}", i + 1, p.peer)).collect();
        let mut args: Vec<String> = [
            "node",
            "--id",
            &id.to_string(),
            "--data-dir",
            &self.dir.join(format!("n{id}")).display().to_string(),
            "--peer-addr",
            &format!("127.0.0.1:{}", p.peer),
            "--resp-addr",
            &format!("127.0.0.1:{}", p.resp),
            "--admin-addr",
            &format!("127.0.0.1:{}", p.admin),
            "--initial-cluster",
            &cluster.join(","),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.extra[id as usize - 1].iter().cloned());
        args
    }

    pub fn start(&mut self, id: u64) {
        let proc = Proc::start(&self.args(id));
        self.procs[id as usize - 1] = Some(proc);
        let port = self.ports[id as usize - 1].resp;
        wait_for(&format!("node {id} to listen"), || TcpStream::connect(("127.0.0.1", port)).ok());
    }

    pub fn start_all(&mut self) {
        for id in 1..=self.ports.len() as u64 {
            self.start(id);
        }
    }

    pub fn proc(&mut self, id: u64) -> &mut Proc {
        self.procs[id as usize - 1].as_mut().expect("node is running")
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self, id: u64) {
        self.procs[id as usize - 1] = None;
    }

    pub fn client(&self, id: u64) -> redis::Connection {
        connect(self.ports[id as usize - 1].resp)
    }

    /// An `INFO` field of node `id` (`None` if it cannot answer now).
    pub fn info(&self, id: u64, field: &str) -> Option<String> {
        let mut c = try_connect(self.ports[id as usize - 1].resp)?;
        let text: String = redis::cmd("INFO").query(&mut c).ok()?;
        let prefix = format!("{field}:");
        text.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }

    /// Waits until some running node reports itself leader and returns its id.
    pub fn leader(&self) -> u64 {
        wait_for("a leader", || {
            (1..=self.ports.len() as u64)
                .filter(|&id| self.procs[id as usize - 1].is_some())
                .find(|&id| self.info(id, "role").as_deref() == Some("leader"))
        })
    }

    /// GET on the admin endpoint of node `id`: (status code, body).
    pub fn admin_get(&self, id: u64, path: &str) -> (u16, String) {
        http_get(self.ports[id as usize - 1].admin, path)
    }
}

pub fn try_connect(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let c = client.get_connection_with_timeout(Duration::from_secs(5)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    c.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    Some(c)
}

pub fn connect(port: u16) -> redis::Connection {
    wait_for(&format!("a Redis connection to port {port}"), || try_connect(port))
}

/// Runs `cmd` until it succeeds, retrying `-TRYAGAIN` (no leader yet), within `WAIT`.
pub fn query_retrying<T: redis::FromRedisValue>(c: &mut redis::Connection, cmd: &redis::Cmd) -> T {
    wait_for("a command to succeed", || match cmd.query::<T>(c) {
        Ok(v) => Some(v),
        Err(e) if e.code() == Some("TRYAGAIN") => None,
        Err(e) => panic!("unexpected error: {e}"),
    })
}

pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http(port, "GET", path)
}

/// One HTTP request on the admin endpoint: (status code, body).
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("admin endpoint listens");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}
