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
use crate::pool::{Job, Pool, Verdict};
use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn run_many(args: &Args, first: u64, last: u64) -> ExitCode {
    let mut pool = match Pool::new(args.jobs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (k, n) = args.shard.unwrap_or((1, 1));
    let mut queue: VecDeque<u64> = (first..=last).filter(|s| (s - first) % n == k - 1).collect();
    let total = queue.len() as u64;
    if total == 0 {
        eprintln!("error: slice {k} of {n} of seeds {first}..{last} holds no seed (use fewer slices)");
        return ExitCode::from(2);
    }
    if let Some(dir) = &args.report_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
        // Reports an earlier sweep left for this slice's seeds must not stand for this
        // one's, whether or not the time budget lets a seed start.
        for &seed in &queue {
            let path = crate::merge::report_path(dir, &args.scenario, seed);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("error: {}: cannot replace an earlier report: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
    }
    let mut failed: Vec<(u64, String)> = Vec::new();
    let mut inconclusive: Vec<(u64, String)> = Vec::new();
    let mut done = 0u64;
    // Mark -> seeds that reached it.
    let mut marks: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    let deadline = args.time_budget_s.map(|s| started + Duration::from_secs(s));
    let tty = std::io::stderr().is_terminal();
    let mut last_report = 0u64;
    let slice_first = first + k - 1;
    let mut last_started = slice_first;
    let slice = args.shard.map_or(String::new(), |(k, n)| format!(" (slice {k} of {n} of {first}..{last})"));
    eprintln!("running {total} seeds{slice} of {} on {} processes", args.scenario.display(), pool.jobs());
    loop {
        // Past the budget no new seed starts; the running ones finish.
        while pool.has_room() && deadline.is_none_or(|d| Instant::now() < d) {
            let Some(seed) = queue.pop_front() else { break };
            last_started = seed;
            let job = Job {
                scenario: args.scenario.clone(),
                seed,
                check_determinism: args.check_determinism,
                planted_bug: args.planted_bug,
                report: args.report_dir.as_ref().map(|d| crate::merge::report_path(d, &args.scenario, seed)),
            };
            if let Err(e) = pool.start(job) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        if pool.running() == 0 {
            break;
        }
        let f = pool.wait_one();
        done += 1;
        if let Err(e) = crate::merge::record_crash(&f) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        for m in f.marks {
            *marks.entry(m).or_default() += 1;
        }
        match f.verdict {
            Verdict::Passed => {}
            Verdict::Inconclusive(line) => inconclusive.push((f.job.seed, line)),
            Verdict::Failed(line) => failed.push((f.job.seed, line)),
            Verdict::Refused(stderr) => {
                eprintln!("\nerror: seed {} refused to run:\n{stderr}", f.job.seed);
                return ExitCode::from(2);
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
        "{done} seeds in {secs:.1}s ({:.1} seeds/min): {} passed, {} inconclusive, {} failed",
        done as f64 * 60.0 / secs.max(1e-9),
        done - failed.len() as u64 - inconclusive.len() as u64,
        inconclusive.len(),
        failed.len()
    );
    if done < total {
        let which = if n > 1 { format!("slice {k} of {n} of ") } else { String::new() };
        println!(
            "time budget of {}s spent: seeds {which}{slice_first}..{last_started} ran, {} of {total} not",
            args.time_budget_s.unwrap_or(0),
            total - done
        );
    }
    for list in [&mut failed, &mut inconclusive] {
        list.sort();
        for (seed, why) in list.iter() {
            println!("  {why}");
            let job = Job {
                scenario: args.scenario.clone(),
                seed: *seed,
                check_determinism: false,
                planted_bug: args.planted_bug,
                report: None,
            };
            println!("  REPRODUCE: {}", job.reproduce());
        }
    }
    print_marks(&marks, done);
    // The scenario parsed in the parent before any seed ran.
    let required = crate::scenario::load(&args.scenario).map(|f| f.require_marks).unwrap_or_default();
    let missing: Vec<&str> = required.iter().filter(|m| !marks.contains_key(m.as_str())).map(String::as_str).collect();
    if !missing.is_empty() && args.shard.is_some_and(|(_, n)| n > 1) {
        // Another slice may reach them: `merge` judges the whole sweep.
        println!("required marks this slice reached in no seed: {} (merge judges the sweep)", missing.join(", "));
    } else if !missing.is_empty() {
        println!("FAIL: required marks reached by no seed: {}", missing.join(", "));
        return ExitCode::from(1);
    }
    crate::pool::exit_code(failed.len(), inconclusive.len())
}

/// Which marks the sweep's seeds reached, in how many, and which never.
pub fn print_marks(marks: &BTreeMap<String, u64>, seeds: u64) {
    let known: Vec<&str> = phantomdb::sometimes::MARKS.iter().map(|&(m, _)| m).collect();
    let reached: Vec<String> =
        known.iter().filter_map(|m| marks.get(*m).map(|n| format!("{m} ({n} of {seeds})"))).collect();
    let never: Vec<&str> = known.iter().copied().filter(|m| !marks.contains_key(*m)).collect();
    println!("marks reached: {}", if reached.is_empty() { "none".into() } else { reached.join(", ") });
    if !never.is_empty() {
        println!("marks never reached: {}", never.join(", "));
    }
}
