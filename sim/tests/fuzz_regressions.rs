//! `scenario_parse` fuzz inputs kept as permanent tests (see the root crate's
//! `tests/fuzz_regressions.rs` for the mechanism).

use std::path::Path;

#[test]
fn scenario_parse_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/scenario_parse");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the regression directory exists") {
        let data = std::fs::read(entry.expect("readable dir").path()).expect("readable input");
        phantomdb_sim::scenario::check_any_input(&data);
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}

/// `sim_schedule` finds: each input is a whole fault schedule; replaying it runs the
/// simulation with every checker on (simulated build: `cargo sim-test`).
#[cfg(madsim)]
#[test]
fn sim_schedule_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/sim_schedule");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the regression directory exists") {
        let data = std::fs::read(entry.expect("readable dir").path()).expect("readable input");
        phantomdb_sim::schedule_fuzz::run(&data);
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}
