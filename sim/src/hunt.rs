//! `hunt [SCENARIO…] --time 10m`: fresh seeds of every scenario (or the ones named),
//! round robin, on every core, until the time is up or a seed fails (`--keep-going`:
//! until the time is up). One seed in 20 runs twice and compares trace hashes (5%, as
//! FoundationDB's simulation does). A progress line on stderr; at the end, per scenario,
//! the seeds run and the marks reached, the failures with their `REPRODUCE` lines, and
//! seeds per minute. The first failure is then shrunk (`cargo sim shrink`, in a child)
//! and the shrunk file replayed in another child, which must give the trace hash the
//! shrinker reported (`--no-shrink`: skip both).
//!
//! ```text
//!   base seed (printed; --from N) ─▶ seed base+i for scenario i mod k ─▶ pool ─▶ verdicts
//!   first failure ─▶ child: shrink -o shrunk-<scenario>-<seed>.toml ─▶ child: run it ─▶ same hash?
//! ```
//!
//! Exit code: 1 if a seed failed, 3 if one was inconclusive and none failed, else 0.

use crate::cli::HuntArgs;
use crate::pool::{Job, Pool, Verdict};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// One seed in this many also checks determinism.
const DETERMINISM_SAMPLE_EVERY: u64 = 20;

/// What the hunt saw of one scenario.
#[derive(Default)]
struct Tally {
    seeds: u64,
    marks: BTreeMap<String, u64>,
}

/// The scenarios a hunt sweeps when none is named: every file in `scenarios/`, in name
/// order (planted bugs, in `scenarios/bugs/`, are not the product's).
fn standard_suite() -> Result<Vec<PathBuf>, String> {
    let dir = std::path::Path::new("scenarios");
    let out = crate::dir::files_with_extension(dir, "toml")
        .map_err(|e| format!("{}: {e} (run from the project root, or name the scenarios)", dir.display()))?;
    if out.is_empty() {
        return Err(format!("{}: no scenario files", dir.display()));
    }
    Ok(out)
}

pub fn run(args: &HuntArgs) -> ExitCode {
    let scenarios = if args.scenarios.is_empty() { standard_suite() } else { Ok(args.scenarios.clone()) };
    let scenarios = match scenarios {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for s in &scenarios {
        if let Err(e) = crate::scenario::load(s) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let mut pool = match Pool::new(args.jobs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let base = args.from.unwrap_or_else(crate::cli::random_seed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.time_s);
    eprintln!(
        "hunting over {} scenarios for {}s on {} processes, seeds from {base} (--from {base} repeats this hunt)",
        scenarios.len(),
        args.time_s,
        pool.jobs()
    );
    let mut tallies: Vec<Tally> = scenarios.iter().map(|_| Tally::default()).collect();
    let mut failed: Vec<(Job, String)> = Vec::new();
    let mut inconclusive: Vec<(Job, String)> = Vec::new();
    let (mut next, mut done, mut checked_twice) = (0u64, 0u64, 0u64);
    let tty = std::io::stderr().is_terminal();
    let mut last_report = Instant::now();
    loop {
        let stop = Instant::now() >= deadline || (!args.keep_going && !failed.is_empty());
        while !stop && pool.has_room() {
            let k = (next % scenarios.len() as u64) as usize;
            let seed = base + next / scenarios.len() as u64;
            let check_determinism = next % DETERMINISM_SAMPLE_EVERY == DETERMINISM_SAMPLE_EVERY - 1;
            checked_twice += u64::from(check_determinism);
            let job = Job {
                scenario: scenarios[k].clone(),
                seed,
                check_determinism,
                planted_bug: args.planted_bug,
                report: None,
            };
            if let Err(e) = pool.start(job) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            next += 1;
        }
        if pool.running() == 0 {
            break;
        }
        let f = pool.wait_one();
        done += 1;
        let k = scenarios.iter().position(|s| *s == f.job.scenario).expect("a scenario of the hunt");
        tallies[k].seeds += 1;
        for m in f.marks {
            *tallies[k].marks.entry(m).or_default() += 1;
        }
        match f.verdict {
            Verdict::Passed => {}
            Verdict::Inconclusive(line) => inconclusive.push((f.job, line)),
            Verdict::Failed(line) => {
                eprintln!("\n{}: {line}\n  REPRODUCE: {}", f.job.scenario.display(), f.job.reproduce());
                failed.push((f.job, line));
            }
            Verdict::Refused(stderr) => {
                eprintln!("\nerror: {} seed {} refused to run:\n{stderr}", f.job.scenario.display(), f.job.seed);
                return ExitCode::from(2);
            }
        }
        if tty || last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let line = format!(
                "[{:>4.0}s/{}s] {done} seeds ({:.0}/min), {} failed, {} inconclusive",
                secs,
                args.time_s,
                done as f64 * 60.0 / secs.max(1e-3),
                failed.len(),
                inconclusive.len()
            );
            if tty {
                eprint!("\r{line}   ");
                let _ = std::io::stderr().flush();
            } else {
                eprintln!("{line}");
            }
        }
    }
    if tty {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "hunt: {done} seeds in {secs:.0}s ({:.0} seeds/min), {checked_twice} run twice for determinism: {} failed, {} inconclusive",
        done as f64 * 60.0 / secs.max(1e-3),
        failed.len(),
        inconclusive.len()
    );
    for (s, t) in scenarios.iter().zip(&tallies) {
        let marks: Vec<String> = t.marks.iter().map(|(m, n)| format!("{m} {n}")).collect();
        println!(
            "  {:<40} {:>6} seeds; marks: {}",
            s.display(),
            t.seeds,
            if marks.is_empty() { "none".into() } else { marks.join(", ") }
        );
    }
    for (job, line) in failed.iter().chain(&inconclusive) {
        println!("  {}: {line}", job.scenario.display());
        println!("  REPRODUCE: {}", job.reproduce());
    }
    if let (Some((job, _)), false) = (failed.first(), args.no_shrink) {
        if let Err(e) = shrink_and_replay(job) {
            println!("  shrinking failed: {e}");
        }
    }
    crate::pool::exit_code(failed.len(), inconclusive.len())
}

/// Shrinks a failing job in a child process, then replays the file it wrote in another
/// and compares the trace hashes.
fn shrink_and_replay(job: &Job) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let stem = job.scenario.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let output = PathBuf::from(format!("shrunk-{stem}-{}.toml", job.seed));
    println!("shrinking {} seed {} into {} ...", job.scenario.display(), job.seed, output.display());
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("shrink").arg(&job.scenario).arg("--seed").arg(job.seed.to_string()).arg("-o").arg(&output);
    if let Some(bug) = job.planted_bug {
        cmd.arg("--planted-bug").arg(bug.name());
    }
    let started = Instant::now();
    let out = cmd.output().map_err(|e| format!("cannot start the shrinker: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(stderr.lines().rev().find(|l| l.starts_with("error")).unwrap_or("no error line").to_string());
    }
    for line in stdout.lines().filter(|l| l.trim_start().starts_with("before:") || l.trim_start().starts_with("after:"))
    {
        println!("  {}", line.trim_start());
    }
    let field =
        |prefix: &str| stdout.split(prefix).nth(1).and_then(|rest| rest.split_whitespace().next()).map(str::to_string);
    let hash = field("trace-hash ").ok_or("the shrinker printed no trace hash")?;
    let seed = field(" --seed ").ok_or("the shrinker printed no REPRODUCE line")?;
    let replay = std::process::Command::new(&exe)
        .arg("run")
        .arg(&output)
        .arg("--seed")
        .arg(&seed)
        .arg("--quiet")
        .output()
        .map_err(|e| format!("cannot start the replay: {e}"))?;
    let first = String::from_utf8_lossy(&replay.stdout).lines().next().unwrap_or("").to_string();
    let replayed = first.split("trace-hash: ").nth(1).unwrap_or("").trim().to_string();
    if replayed != hash || replay.status.code() != Some(1) {
        return Err(format!("the replay of {} gave `{first}`, not a failure with trace-hash {hash}", output.display()));
    }
    println!("  replayed: `{first}`, the shrunk run's trace hash ({:.0}s for both)", started.elapsed().as_secs_f64());
    println!("  REPRODUCE: cargo sim run {} --seed {seed}", output.display());
    Ok(())
}
