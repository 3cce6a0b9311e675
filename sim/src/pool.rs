//! Seeds run in child processes, at most `jobs` at once: each child is this executable
//! running `run SCENARIO --seed N --quiet`, so a crash or a hang of one seed cannot take
//! the others with it. Shared by `--seeds` sweeps (`runner`) and `hunt`.
//!
//! ```text
//!   start(job) ─▶ spawn child ─▶ one waiter thread per child ─▶ channel ─▶ wait_one(): Finished
//! ```
//!
//! What a child prints is its contract with the pool: the first line is its verdict
//! line (`seed N ok|<checks> ... trace-hash: H`), a `marks: a=1 b=2` line lists the marks
//! it reached, and the exit code is the run's outcome (0 pass, 1 fail, 2 refused, 3
//! inconclusive).

use phantomdb::raft::PlantedBug;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

/// One seed of one scenario to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub scenario: PathBuf,
    pub seed: u64,
    pub check_determinism: bool,
    /// Planted whatever the scenario says (`--planted-bug`).
    pub planted_bug: Option<PlantedBug>,
    /// Where the child writes its JSON report (`--report`), if anywhere.
    pub report: Option<PathBuf>,
}

impl Job {
    pub fn reproduce(&self) -> String {
        let bug = self.planted_bug.map_or(String::new(), |b| format!(" --planted-bug {}", b.name()));
        format!("cargo sim run {} --seed {}{bug}", self.scenario.display(), self.seed)
    }
}

/// What a finished child said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Its verdict line, naming the undecided checks.
    Inconclusive(String),
    /// Its verdict line, or how it crashed.
    Failed(String),
    /// The scenario or the usage was refused (exit 2): the sweep cannot go on.
    Refused(String),
}

pub struct Finished {
    pub job: Job,
    pub verdict: Verdict,
    /// The marks the run reached.
    pub marks: Vec<String>,
}

pub struct Pool {
    exe: PathBuf,
    jobs: usize,
    running: usize,
    tx: mpsc::Sender<(Job, std::io::Result<Output>)>,
    rx: mpsc::Receiver<(Job, std::io::Result<Output>)>,
}

impl Pool {
    /// A pool of `jobs` children at most (default: one per core).
    pub fn new(jobs: Option<usize>) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable to run seeds: {e}"))?;
        let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let (tx, rx) = mpsc::channel();
        Ok(Pool { exe, jobs, running: 0, tx, rx })
    }

    pub fn jobs(&self) -> usize {
        self.jobs
    }

    pub fn has_room(&self) -> bool {
        self.running < self.jobs
    }

    pub fn running(&self) -> usize {
        self.running
    }

    pub fn start(&mut self, job: Job) -> Result<(), String> {
        assert!(self.has_room(), "at most `jobs` children at once");
        let mut cmd = Command::new(&self.exe);
        cmd.arg("run").arg(&job.scenario).arg("--seed").arg(job.seed.to_string()).arg("--quiet");
        if job.check_determinism {
            cmd.arg("--check-determinism");
        }
        if let Some(bug) = job.planted_bug {
            cmd.arg("--planted-bug").arg(bug.name());
        }
        if let Some(report) = &job.report {
            cmd.arg("--report").arg(report);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|e| format!("cannot start a process for seed {}: {e}", job.seed))?;
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((job, child.wait_with_output()));
        });
        self.running += 1;
        Ok(())
    }

    /// Waits for a child to finish.
    pub fn wait_one(&mut self) -> Finished {
        assert!(self.running > 0, "no child is running");
        let (job, out) = self.rx.recv().expect("a waiter thread reports");
        self.running -= 1;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let verdict = Verdict::Failed(format!("seed {}: waiting for its process failed: {e}", job.seed));
                return Finished { job, verdict, marks: Vec::new() };
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let first_line = stdout.lines().next().unwrap_or("").to_string();
        let marks = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("marks:"))
            .flat_map(|reached| reached.split_whitespace().filter_map(|m| m.split('=').next()).map(str::to_string))
            .collect();
        let verdict = match out.status.code() {
            Some(0) => Verdict::Passed,
            Some(3) => Verdict::Inconclusive(first_line),
            Some(2) => Verdict::Refused(String::from_utf8_lossy(&out.stderr).into_owned()),
            Some(1) => Verdict::Failed(first_line),
            _ => Verdict::Failed(format!("seed {} crashed ({}): {}", job.seed, out.status, last_line(&out.stderr))),
        };
        Finished { job, verdict, marks }
    }
}

/// A sweep's exit code: 1 if a seed failed, else 3 if one was inconclusive, else 0.
pub fn exit_code(failed: usize, inconclusive: usize) -> std::process::ExitCode {
    match (failed, inconclusive) {
        (0, 0) => std::process::ExitCode::SUCCESS,
        (0, _) => std::process::ExitCode::from(3),
        _ => std::process::ExitCode::from(1),
    }
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string()
}
