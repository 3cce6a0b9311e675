//! `--seeds A..B`: every seed in its own process (a crash or a hang of one seed cannot
//! take the others with it), as many at once as there are cores, with progress on stderr
//! and the failing and inconclusive seeds listed at the end, with the "sometimes" marks
//! the seeds reached (each child prints a `marks:` line). Exit code: 1 if any seed
//! failed or a mark the scenario requires (`require_marks`) was reached by no seed, else
//! 3 if any was inconclusive, else 0.
//!
//! ```text
//!   queue of seeds ─▶ spawn up to `jobs` children ─▶ one waiter thread per child
//!        ▲                                                  │ (seed, output)
//!        └──────────── main loop: recv, record, spawn next ◀┘
//! ```

use crate::cli::Args;
use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::mpsc;
use std::time::Instant;

pub fn run_many(args: &Args, first: u64, last: u64) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find this executable to run seeds: {e}");
            return ExitCode::from(2);
        }
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let total = last - first + 1;
    let mut queue: VecDeque<u64> = (first..=last).collect();
    let (tx, rx) = mpsc::channel::<(u64, std::io::Result<Output>)>();
    let mut running = 0usize;
    let mut failed: Vec<(u64, String)> = Vec::new();
    let mut inconclusive: Vec<(u64, String)> = Vec::new();
    let mut done = 0u64;
    // Mark -> seeds that reached it.
    let mut marks: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_report = 0u64;
    eprintln!("running {total} seeds of {} on {jobs} processes", args.scenario.display());
    loop {
        while running < jobs {
            let Some(seed) = queue.pop_front() else { break };
            let mut cmd = Command::new(&exe);
            cmd.arg("run").arg(&args.scenario).arg("--seed").arg(seed.to_string()).arg("--quiet");
            if args.check_determinism {
                cmd.arg("--check-determinism");
            }
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: cannot start a process for seed {seed}: {e}");
                    return ExitCode::from(2);
                }
            };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send((seed, child.wait_with_output()));
            });
            running += 1;
        }
        if running == 0 {
            break;
        }
        let (seed, out) = rx.recv().expect("a waiter thread reports");
        running -= 1;
        done += 1;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: waiting for seed {seed}: {e}");
                return ExitCode::from(2);
            }
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(reached) = line.strip_prefix("marks:") {
                for mark in reached.split_whitespace().filter_map(|m| m.split('=').next()) {
                    *marks.entry(mark.to_string()).or_default() += 1;
                }
            }
        }
        match out.status.code() {
            Some(0) => {}
            // Its first line is its verdict line, which names the undecided checks.
            Some(3) => inconclusive.push((seed, first_line(&out.stdout))),
            Some(2) => {
                eprintln!("\nerror: seed {seed} refused to run:\n{}", String::from_utf8_lossy(&out.stderr));
                return ExitCode::from(2);
            }
            code => {
                // A failing child's first line is its verdict line, which names the seed.
                let why = match code {
                    Some(1) => first_line(&out.stdout),
                    _ => format!("seed {seed} crashed ({}): {}", out.status, last_line(&out.stderr)),
                };
                failed.push((seed, why));
            }
        }
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        if tty {
            let eta = (total - done) as f64 / rate.max(1e-9);
            eprint!(
                "\r[{done:>5}/{total}] {} failed, {} inconclusive  {rate:.2} seeds/s  eta {eta:.0}s   ",
                failed.len(),
                inconclusive.len()
            );
            let _ = std::io::stderr().flush();
        } else if done * 10 / total > last_report || done == total {
            last_report = done * 10 / total;
            eprintln!(
                "[{done:>5}/{total}] {} failed, {} inconclusive  {rate:.2} seeds/s",
                failed.len(),
                inconclusive.len()
            );
        }
    }
    if tty {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} seeds in {secs:.1}s ({:.1} seeds/min): {} passed, {} inconclusive, {} failed",
        total as f64 * 60.0 / secs.max(1e-9),
        total - failed.len() as u64 - inconclusive.len() as u64,
        inconclusive.len(),
        failed.len()
    );
    for list in [&mut failed, &mut inconclusive] {
        list.sort();
        for (seed, why) in list.iter() {
            println!("  {why}");
            println!("  REPRODUCE: cargo sim run {} --seed {seed}", args.scenario.display());
        }
    }
    let known: Vec<&str> = phantomdb::sometimes::MARKS.iter().map(|&(m, _)| m).collect();
    let reached: Vec<String> =
        known.iter().filter_map(|m| marks.get(*m).map(|n| format!("{m} ({n} of {total})"))).collect();
    let never: Vec<&str> = known.iter().copied().filter(|m| !marks.contains_key(*m)).collect();
    println!("marks reached: {}", if reached.is_empty() { "none".into() } else { reached.join(", ") });
    if !never.is_empty() {
        println!("marks never reached: {}", never.join(", "));
    }
    // The scenario parsed in the parent before any seed ran.
    let required = crate::scenario::load(&args.scenario).map(|f| f.require_marks).unwrap_or_default();
    let missing: Vec<&String> = required.iter().filter(|m| !marks.contains_key(m.as_str())).collect();
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
        println!("FAIL: required marks reached by no seed: {}", missing.join(", "));
        return ExitCode::from(1);
    }
    if !failed.is_empty() {
        ExitCode::from(1)
    } else if !inconclusive.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().next().unwrap_or("").to_string()
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string()
}
