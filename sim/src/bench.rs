//! `bench`: how fast the simulator runs a scenario, as figures (a benchmark, not a test).
//! Runs the seeds one after another in this process, so the figures are per core:
//! simulated seconds per wall second, seeds per minute, and where the wall time goes
//! (simulation or checking). `--seeds` runs use every core; multiply accordingly.

use crate::checkers::Outcome;
use crate::scenario::{Scenario, ScenarioFile};
use crate::{verdict, world};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(path: &Path, file: &ScenarioFile, first: u64, last: u64) -> ExitCode {
    let (mut sim_s, mut run_wall_s, mut check_wall_s, mut ops, mut failed) = (0.0, 0.0, 0.0, 0usize, 0u64);
    let started = Instant::now();
    for seed in first..=last {
        let s = Scenario::resolve(path, file, seed);
        let t = Instant::now();
        let out = world::run(&s);
        run_wall_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let v = verdict::evaluate(&s, &out);
        check_wall_s += t.elapsed().as_secs_f64();
        sim_s += v.stats.simulated_s;
        ops += v.stats.ops;
        if v.outcome() != Outcome::Passed {
            failed += 1;
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let seeds = last - first + 1;
    println!("bench     {} seeds {first}..{last} of {}, one core", seeds, path.display());
    println!("simulated {sim_s:.1} s in {wall_s:.2} wall s: {:.0} simulated s per wall s", sim_s / wall_s);
    println!("seeds     {:.0} per minute per core", seeds as f64 * 60.0 / wall_s);
    println!("ops       {} client operations, {:.0} per wall s", ops, ops as f64 / wall_s);
    println!(
        "wall time {:.0}% simulation, {:.0}% checking",
        100.0 * run_wall_s / wall_s,
        100.0 * check_wall_s / wall_s
    );
    if failed > 0 {
        println!("({failed} seeds failed or were inconclusive; run them with --seeds to see which)");
    }
    ExitCode::SUCCESS
}
