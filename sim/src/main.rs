//! `phantomdb-sim`: run seeded fault-injection simulations of PhantomDB from scenario
//! files and check them. Run it as `cargo sim run [SCENARIO] [--seed N | --seeds A..B]`
//! (the alias builds with `--cfg madsim`); see `--help`.
//!
//! Exit codes: 0 every check passed; 1 a check failed (or nondeterminism was found);
//! 2 bad scenario or usage; 3 no check failed but one could not decide (inconclusive,
//! e.g. a linearizability search that hit its budget: never a pass). A `--seeds` sweep
//! exits 1 if any seed failed, else 3 if any was inconclusive.

use phantomdb_sim::checkers::Outcome;
use phantomdb_sim::{checkers, cli, history, runner, scenario};
use std::process::ExitCode;

fn main() -> ExitCode {
    let (args, bench) = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Parsed::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(a)) => (a, false),
        Ok(cli::Parsed::Bench(a)) => (a, true),
        Ok(cli::Parsed::CheckHistory { file, search_steps }) => return check_history(&file, search_steps),
        Ok(cli::Parsed::Hunt(h)) => return phantomdb_sim::hunt::run(&h),
        Ok(cli::Parsed::Shrink(s)) => return run_shrink(&s),
        Ok(cli::Parsed::Merge(dirs)) => return phantomdb_sim::merge::run(&dirs),
        Err(e) => {
            eprintln!("error: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if !cfg!(debug_assertions) {
        eprintln!("error: the simulator refuses to run without debug assertions: the invariants it checks are debug assertions. Build with `cargo sim` (profile `sim`).");
        return ExitCode::from(2);
    }
    if !cfg!(madsim) {
        eprintln!("error: this build has no simulator; run it through `cargo sim run ...` (builds with --cfg madsim)");
        return ExitCode::from(2);
    }
    if let Some(input) = &args.fuzz_input {
        return run_fuzz_input(&args, input);
    }
    let Some(file) = load(&args.scenario, args.planted_bug) else { return ExitCode::from(2) };
    let (first, last) = match args.seeds {
        cli::Seeds::One(seed) => (seed, seed),
        cli::Seeds::Range(a, b) => (a, b),
    };
    if bench {
        return run_bench(&args, &file, first, last);
    }
    match args.seeds {
        cli::Seeds::One(seed) => run_single(&args, &file, seed),
        cli::Seeds::Range(a, b) => runner::run_many(&args, a, b),
    }
}

#[cfg(madsim)]
fn run_single(args: &cli::Args, file: &scenario::ScenarioFile, seed: u64) -> ExitCode {
    phantomdb_sim::run::single(args, file, seed)
}

#[cfg(not(madsim))]
fn run_single(_: &cli::Args, _: &scenario::ScenarioFile, _: u64) -> ExitCode {
    unreachable!("checked in main")
}

#[cfg(madsim)]
fn run_fuzz_input(args: &cli::Args, input: &std::path::Path) -> ExitCode {
    phantomdb_sim::run::fuzz_input(args, input)
}

#[cfg(not(madsim))]
fn run_fuzz_input(_: &cli::Args, _: &std::path::Path) -> ExitCode {
    unreachable!("checked in main")
}

/// `shrink`: progress on stderr; the result, the file written and its replay line on
/// stdout. Exit 0 when written, 2 when the seed does not fail or the scenario is bad.
#[cfg(madsim)]
fn run_shrink(a: &cli::ShrinkArgs) -> ExitCode {
    if !cfg!(debug_assertions) {
        eprintln!(
            "error: the simulator refuses to run without debug assertions; build with `cargo sim` (profile `sim`)"
        );
        return ExitCode::from(2);
    }
    let Some(file) = load(&a.scenario, a.planted_bug) else { return ExitCode::from(2) };
    let original = scenario::Scenario::resolve(&a.scenario, &file, a.seed);
    let started = std::time::Instant::now();
    let shrunk = match phantomdb_sim::shrink::shrink(&a.scenario, &original, &mut |line| eprintln!("shrink: {line}")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(&a.output, &shrunk.text) {
        eprintln!("error: {}: {e}", a.output.display());
        return ExitCode::from(2);
    }
    println!(
        "shrunk {} seed {} (fails {}) in {} runs, {:.1}s",
        a.scenario.display(),
        a.seed,
        shrunk.check,
        shrunk.runs,
        started.elapsed().as_secs_f64()
    );
    println!("  before: {}", shrunk.before);
    println!("  after:  {}", shrunk.after);
    println!("wrote {}; replayed from it: trace-hash {} (the shrunk run's)", a.output.display(), shrunk.trace_hash);
    println!("REPRODUCE: cargo sim run {} --seed {}", a.output.display(), shrunk.scenario.seed);
    ExitCode::SUCCESS
}

#[cfg(not(madsim))]
fn run_shrink(_: &cli::ShrinkArgs) -> ExitCode {
    eprintln!("error: this build has no simulator; run it through `cargo sim shrink ...` (builds with --cfg madsim)");
    ExitCode::from(2)
}

#[cfg(madsim)]
fn run_bench(args: &cli::Args, file: &scenario::ScenarioFile, first: u64, last: u64) -> ExitCode {
    phantomdb_sim::bench::run(&args.scenario, file, first, last)
}

#[cfg(not(madsim))]
fn run_bench(_: &cli::Args, _: &scenario::ScenarioFile, _: u64, _: u64) -> ExitCode {
    unreachable!("checked in main")
}

/// The scenario file, with `bug` planted whatever it says; `None` after printing why
/// it cannot be read.
fn load(path: &std::path::Path, bug: Option<phantomdb::raft::PlantedBug>) -> Option<scenario::ScenarioFile> {
    match scenario::load(path) {
        Ok(mut f) => {
            if bug.is_some() {
                f.planted_bug = bug;
            }
            Some(f)
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

/// `check-history FILE`: the history checkers on a recorded history, no simulation.
fn check_history(path: &std::path::Path, search_steps: u64) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match history::parse_line(line) {
            Ok(op) => ops.push(op),
            Err(e) => {
                eprintln!("error: {}:{}: {e}", path.display(), i + 1);
                return ExitCode::from(2);
            }
        }
    }
    let lin = checkers::linearizability::check(&ops, search_steps);
    let checks = [
        checkers::CheckResult {
            name: "linearizability",
            violations: lin.violations,
            undecided: checkers::registry::undecided_keys(&lin.inconclusive, search_steps),
            note: None,
        },
        checkers::CheckResult {
            name: "no_lost_writes",
            violations: checkers::lost_writes::check(&ops),
            undecided: vec![],
            note: None,
        },
    ];
    println!("{} operations", ops.len());
    for c in &checks {
        let status = match c.outcome() {
            Outcome::Passed => "ok",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::Failed => "FAILED",
        };
        println!("  {:<16} {status}", c.name);
        for v in c.violations.iter().chain(&c.undecided) {
            for line in v.lines() {
                println!("      {line}");
            }
        }
    }
    let outcome = checks.iter().map(checkers::CheckResult::outcome).max().unwrap_or(Outcome::Passed);
    let named = |o: Outcome| checks.iter().filter(|c| c.outcome() == o).map(|c| c.name).collect::<Vec<_>>().join(", ");
    match outcome {
        Outcome::Passed => println!("PASS"),
        Outcome::Inconclusive => println!("INCONCLUSIVE: {}", named(Outcome::Inconclusive)),
        Outcome::Failed => println!("FAIL: {}", named(Outcome::Failed)),
    }
    ExitCode::from(outcome.exit_code())
}
