//! Fuzzer finds for the simulator crate's targets, kept as permanent tests (the root
//! crate's `tests/fuzz_regressions.rs` explains the mechanism).

use std::path::Path;

/// Runs `check` on every file of `fuzz/regressions/<target>/`, which must not be empty.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the regression directory exists") {
        check(&std::fs::read(entry.expect("readable dir").path()).expect("readable input"));
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}

#[test]
fn scenario_parse_regressions() {
    replay("scenario_parse", phantomdb_sim::scenario::check_any_input);
}

/// Each input is a whole fault schedule, replayed as a simulation with every checker on
/// (simulated build: `cargo sim-test`).
#[cfg(madsim)]
#[test]
fn sim_schedule_regressions() {
    replay("sim_schedule", phantomdb_sim::schedule_fuzz::run);
}
