//! One seed: run, check, print the summary, write the requested files.

use crate::checkers::Outcome;
use crate::cli::Args;
use crate::scenario::{Scenario, ScenarioFile};
use crate::verdict::{self, Verdict};
use crate::world;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

pub fn single(args: &Args, file: &ScenarioFile, seed: u64) -> ExitCode {
    scenario(args, Scenario::resolve(&args.scenario, file, seed))
}

/// Runs a `sim_schedule` fuzz input, with every output a scenario run has.
pub fn fuzz_input(args: &Args, path: &std::path::Path) -> ExitCode {
    match std::fs::read(path) {
        Ok(data) => scenario(args, crate::schedule_fuzz::scenario(&data)),
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

fn scenario(args: &Args, scenario: Scenario) -> ExitCode {
    let seed = scenario.seed;
    let wall = Instant::now();
    let out = world::run(&scenario);
    let wall_s = wall.elapsed().as_secs_f64();
    let verdict = verdict::evaluate(&scenario, &out);
    let mut deterministic = None;
    if args.check_determinism {
        let again = world::run(&scenario);
        let second = format!("{:016x}", verdict::trace_hash(&again));
        deterministic = Some(second);
    }
    let nondeterministic = deterministic.as_ref().filter(|h| **h != verdict.trace_hash);
    let outcome = if nondeterministic.is_some() { Outcome::Failed } else { verdict.outcome() };
    if let Err(e) = write_files(args, &scenario, &out, &verdict, outcome, deterministic.as_deref()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if args.quiet {
        print_quiet(&scenario, &verdict, outcome, nondeterministic);
    } else {
        print_summary(args, &scenario, &verdict, &out, wall_s, deterministic.as_deref());
    }
    // A sweep adds up every seed's marks from this line (`runner`).
    println!("{}", marks_line(&out.marks));
    if outcome == Outcome::Passed {
        println!("PASS");
        return ExitCode::SUCCESS;
    }
    if let Some(h) = nondeterministic {
        println!("NONDETERMINISM: the same seed gave trace-hash {} and then {h}", verdict.trace_hash);
    }
    let failed = verdict.named(Outcome::Failed);
    if !failed.is_empty() {
        println!("FAIL: {}", failed.join(", "));
    } else if outcome == Outcome::Inconclusive {
        println!("INCONCLUSIVE: {}", verdict.named(Outcome::Inconclusive).join(", "));
    }
    match &args.fuzz_input {
        Some(p) => println!("REPRODUCE: cargo sim run --fuzz-input {}", p.display()),
        None => println!("REPRODUCE: {}", reproduce(args, seed)),
    }
    ExitCode::from(outcome.exit_code())
}

/// One line per seed (`--quiet`, and what `--seeds` reports): the seed, then `ok`, the
/// failed checks, `nondeterministic`, or `inconclusive:` and the undecided checks.
fn print_quiet(s: &Scenario, v: &Verdict, outcome: Outcome, nondeterministic: Option<&String>) {
    let what = match outcome {
        Outcome::Passed => "ok".to_string(),
        _ if nondeterministic.is_some() => "nondeterministic".into(),
        Outcome::Failed => v.named(Outcome::Failed).join(","),
        Outcome::Inconclusive => format!("inconclusive:{}", v.named(Outcome::Inconclusive).join(",")),
    };
    println!(
        "seed {} {} ops={} unknown={} trace-hash: {}",
        s.seed, what, v.stats.ops, v.stats.ops_unknown, v.trace_hash
    );
}

fn print_summary(
    args: &Args,
    s: &Scenario,
    v: &Verdict,
    out: &verdict::RunOutput,
    wall_s: f64,
    second_hash: Option<&str>,
) {
    let st = &v.stats;
    println!("scenario  {} ({}), seed {}", args.scenario.display(), s.name, s.seed);
    if let Some(bug) = s.planted_bug {
        println!("planted   bug {:?} (on purpose)", bug.name());
    }
    println!(
        "cluster   {} nodes{}, {} clients, {} register + {} append keys, latency {}..{}ms, loss {:.3}, {} entries/append, pre-vote {}, check-quorum {}, lease reads {}, snapshot every {} entries in {}-byte chunks, disk syncs {}",
        s.nodes,
        if s.groups > 1 { format!(" × {} groups", s.groups) } else { String::new() },
        s.clients,
        s.register_keys,
        s.append_keys,
        s.latency_ms[0],
        s.latency_ms[1],
        s.loss,
        s.append_entries_max,
        on_off(s.pre_vote),
        on_off(s.check_quorum),
        if s.lease_reads { format!("on (drift bound {} ppm)", s.clock_drift_ppm_max) } else { "off".into() },
        s.snapshot_entries,
        s.snapshot_chunk_bytes,
        s.disk_sync_ms.map_or("instant".to_string(), |[lo, hi]| format!("{lo}..{hi}ms"))
    );
    println!("schedule  {} faults in {:.1}s, then heal", s.schedule.len(), s.faulty_ms as f64 / 1e3);
    for f in s.schedule.iter().take(40) {
        println!("  {:>8.3}s  {}  ({})", f.at_ms as f64 / 1e3, f.action, f.origin);
    }
    if s.schedule.len() > 40 {
        println!("  … {} more (see --report)", s.schedule.len() - 40);
    }
    if s.buggify {
        println!(
            "buggify   on; armed: {}",
            if s.buggify_armed.is_empty() { "none".into() } else { s.buggify_armed.join(", ") }
        );
    } else {
        println!("buggify   off");
    }
    if !s.triggers.is_empty() {
        let n = s.triggers.len();
        println!("triggers  {n} {}", if n == 1 { "fault at a moment" } else { "faults at moments" });
        for t in &s.triggers {
            println!("            {t}  ({})", t.origin);
        }
    }
    println!(
        "run       {:.1} simulated s in {:.2} wall s ({:.0}x); {} ops ({} ok, {} unknown); {} elections won; {} lease reads, {} drift violations seen",
        st.simulated_s,
        wall_s,
        st.simulated_s / wall_s.max(1e-9),
        st.ops,
        st.ops_ok,
        st.ops_unknown,
        st.elections_won,
        st.lease_reads,
        st.drift_violations
    );
    print_sites_and_marks(out);
    println!("checks");
    for c in &v.checks {
        let status = match c.outcome() {
            Outcome::Passed => "ok",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::Failed => "FAILED",
        };
        match &c.note {
            Some(n) => println!("  {:<22} {status} ({n})", c.name),
            None => println!("  {:<22} {status}", c.name),
        }
        for violation in c.violations.iter().chain(&c.undecided) {
            for line in violation.lines() {
                println!("      {line}");
            }
        }
    }
    if let Some(h) = second_hash {
        let same = if h == v.trace_hash { "same" } else { "DIFFERENT" };
        println!("determinism: second run trace-hash {h} ({same})");
    }
    println!("trace-hash: {}", v.trace_hash);
}

/// `outcome` is the run's (a nondeterministic one failed, whatever its checks said);
/// `second_hash` the second run's trace hash under `--check-determinism`.
fn write_files(
    args: &Args,
    s: &Scenario,
    out: &verdict::RunOutput,
    v: &Verdict,
    outcome: Outcome,
    second_hash: Option<&str>,
) -> Result<(), String> {
    let create = |p: &std::path::Path| {
        std::fs::File::create(p).map(std::io::BufWriter::new).map_err(|e| format!("{}: {e}", p.display()))
    };
    let werr = |p: &std::path::Path, e: std::io::Error| format!("{}: {e}", p.display());
    if let Some(p) = &args.history {
        let mut f = create(p)?;
        for op in &out.history {
            writeln!(f, "{}", serde_json::to_string(op).expect("ops serialize")).map_err(|e| werr(p, e))?;
        }
        f.flush().map_err(|e| werr(p, e))?;
    }
    if let Some(p) = &args.trace {
        let mut f = create(p)?;
        for e in &out.trace {
            writeln!(f, "{e}").map_err(|e| werr(p, e))?;
        }
        f.flush().map_err(|e| werr(p, e))?;
    }
    if let Some(p) = &args.timeline {
        std::fs::write(p, crate::timeline::render(s, out, v)).map_err(|e| werr(p, e))?;
    }
    if let Some(p) = &args.report {
        let report = serde_json::json!({
            "scenario": s,
            "passed": outcome == Outcome::Passed,
            "outcome": outcome,
            "trace_hash": v.trace_hash,
            "second_trace_hash": second_hash,
            "checks": v.checks,
            "stats": v.stats,
            "buggify": out.buggify,
            "marks": out.marks.iter().map(|&(m, n)| (m, n)).collect::<std::collections::BTreeMap<_, _>>(),
            "reproduce": reproduce(args, s.seed),
        });
        let mut f = create(p)?;
        serde_json::to_writer_pretty(&mut f, &report).map_err(|e| format!("{}: {e}", p.display()))?;
        f.flush().map_err(|e| werr(p, e))?;
    }
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// What the fault points did and which rare situations the run reached.
fn print_sites_and_marks(out: &verdict::RunOutput) {
    let fired: Vec<String> = out
        .buggify
        .iter()
        .filter(|s| s.fired > 0)
        .map(|s| format!("{} ×{} (of {})", s.site, s.fired, s.evaluated))
        .collect();
    if !out.buggify.is_empty() {
        println!("buggify   fired: {}", if fired.is_empty() { "nothing".into() } else { fired.join(", ") });
    }
    let (reached, not): (Vec<_>, Vec<_>) = out.marks.iter().partition(|(_, n)| *n > 0);
    let reached: Vec<String> = reached.iter().map(|(m, n)| format!("{m} ×{n}")).collect();
    let not: Vec<&str> = not.iter().map(|(m, _)| *m).collect();
    println!("marks     reached: {}", if reached.is_empty() { "none".into() } else { reached.join(", ") });
    if !not.is_empty() {
        println!("          not reached: {}", not.join(", "));
    }
}

/// `marks: a=3 b=1`: the marks the run reached, with their counts (the sweep's input).
pub fn marks_line(marks: &[(&str, u64)]) -> String {
    let reached: Vec<String> = marks.iter().filter(|(_, n)| *n > 0).map(|(m, n)| format!("{m}={n}")).collect();
    format!("marks: {}", reached.join(" "))
}

/// The one command that replays `seed` of this run.
fn reproduce(args: &Args, seed: u64) -> String {
    let bug = args.planted_bug.map_or(String::new(), |b| format!(" --planted-bug {}", b.name()));
    format!("cargo sim run {} --seed {seed}{bug}", args.scenario.display())
}
