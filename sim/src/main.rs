//! `phantomdb-sim`: run seeded fault-injection simulations of PhantomDB from scenario
//! files and check them. Run it as `cargo sim run [SCENARIO] [--seed N | --seeds A..B]`
//! (the alias builds with `--cfg madsim`); see `--help`.
//!
//! Exit codes: 0 every check passed; 1 a check failed (or nondeterminism was found);
//! 2 bad scenario or usage.

use phantomdb_sim::{cli, runner, scenario};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Parsed::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(a)) => a,
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
    let file = match scenario::load(&args.scenario) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
