//! `--seeds A..B`: every seed in its own process (a crash or a hang of one seed cannot
//! take the others with it), as many at once as there are cores, with progress on stderr
//! and the failing seeds listed at the end.

use crate::cli::Args;
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How often the runner looks at its children (this is the parent process, outside any
/// simulation; the runs themselves are deterministic).
const POLL_MS: u64 = 20;

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
    let mut running: Vec<(u64, Child)> = Vec::new();
    let mut failed: Vec<(u64, String)> = Vec::new();
    let mut done = 0u64;
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last_report = 0u64;
    eprintln!("running {total} seeds of {} on {jobs} processes", args.scenario.display());
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < jobs {
            let Some(seed) = queue.pop_front() else { break };
            let mut cmd = Command::new(&exe);
            cmd.arg("run").arg(&args.scenario).arg("--seed").arg(seed.to_string()).arg("--quiet");
            if args.check_determinism {
                cmd.arg("--check-determinism");
            }
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            match cmd.spawn() {
                Ok(child) => running.push((seed, child)),
                Err(e) => {
                    eprintln!("error: cannot start a process for seed {seed}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait() {
                Ok(Some(_)) => {
                    let (seed, child) = running.swap_remove(i);
                    let out = child.wait_with_output().expect("finished child");
                    done += 1;
                    match out.status.code() {
                        Some(0) => {}
                        Some(2) => {
                            eprintln!("\nerror: seed {seed} refused to run:\n{}", String::from_utf8_lossy(&out.stderr));
                            return ExitCode::from(2);
                        }
                        code => {
                            let stdout = String::from_utf8_lossy(&out.stdout);
                            let line = stdout.lines().next().unwrap_or("").to_string();
                            let why = match code {
                                Some(1) => line,
                                _ => format!("crashed ({:?}): {}", out.status, last_line(&out.stderr)),
                            };
                            failed.push((seed, why));
                        }
                    }
                }
                Ok(None) => i += 1,
                Err(e) => {
                    eprintln!("error: waiting for a seed: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        if tty {
            let eta = (total - done) as f64 / rate.max(1e-9);
            eprint!("\r[{done:>5}/{total}] {} failed  {rate:.2} seeds/s  eta {eta:.0}s   ", failed.len());
            let _ = std::io::stderr().flush();
        } else if done * 10 / total > last_report || done == total {
            last_report = done * 10 / total;
            eprintln!("[{done:>5}/{total}] {} failed  {rate:.2} seeds/s", failed.len());
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
    if tty {
        eprintln!();
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "{} seeds in {:.1}s ({:.1} seeds/min): {} passed, {} failed",
        total,
        started.elapsed().as_secs_f64(),
        total as f64 / minutes.max(1e-9),
        total - failed.len() as u64,
        failed.len()
    );
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    failed.sort();
    for (seed, why) in &failed {
        println!("  seed {seed}: {why}");
        println!("  REPRODUCE: cargo sim run {} --seed {seed}", args.scenario.display());
    }
    ExitCode::from(1)
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string()
}
