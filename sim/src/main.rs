//! `phantomdb-sim`: run seeded fault-injection simulations of PhantomDB from scenario
//! files and check them. Run it as `cargo sim run [SCENARIO] [--seed N | --seeds A..B]`
//! (the alias builds with `--cfg madsim`); see `--help`.
//!
//! Exit codes: 0 every check passed; 1 a check failed (or nondeterminism was found);
//! 2 bad scenario or usage.

use phantomdb_sim::{checkers, cli, history, runner, scenario, verdict};
use std::process::ExitCode;

fn main() -> ExitCode {
    let (args, bench) = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Parsed::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(a)) => (a, false),
        Ok(cli::Parsed::Bench(a)) => (a, true),
        Ok(cli::Parsed::CheckHistory(file)) => return check_history(&file),
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
    let file = match scenario::load(&args.scenario) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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

#[cfg(madsim)]
fn run_bench(args: &cli::Args, file: &scenario::ScenarioFile, first: u64, last: u64) -> ExitCode {
    phantomdb_sim::bench::run(&args.scenario, file, first, last)
}

#[cfg(not(madsim))]
fn run_bench(_: &cli::Args, _: &scenario::ScenarioFile, _: u64, _: u64) -> ExitCode {
    unreachable!("checked in main")
}

/// `check-history FILE`: the history checkers on a recorded history, no simulation.
fn check_history(path: &std::path::Path) -> ExitCode {
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
    let lin = checkers::linearizability::check(&ops, verdict::LINEARIZABILITY_STEPS_MAX);
    let lost = checkers::lost_writes::check(&ops);
    println!("{} operations", ops.len());
    for (name, violations) in [("linearizability", &lin.violations), ("no_lost_writes", &lost)] {
        println!("  {name:<16} {}", if violations.is_empty() { "ok" } else { "FAILED" });
        for v in violations.iter() {
            for line in v.lines() {
                println!("      {line}");
            }
        }
    }
    if !lin.inconclusive.is_empty() {
        println!("  search budget hit (not checked) on keys {:?}", lin.inconclusive);
    }
    if lin.violations.is_empty() && lost.is_empty() {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::from(1)
    }
}
