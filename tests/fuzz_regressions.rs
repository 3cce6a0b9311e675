//! Fuzzer finds, kept as permanent tests. Every file under `fuzz/regressions/<target>/`
//! is an input that once broke `<target>`; it runs here through the same harness the fuzz
//! target uses, in the normal test suite. Files under `fuzz/regressions/raft_step-<bug>/`
//! are inputs with which `raft_step` found a planted bug: they must fail with the bug
//! planted and pass without it.
//!
//! To turn a crash into a test: minimise it (`cargo fuzz tmin -s none TARGET
//! artifacts/TARGET/crash-…`), copy the result here, fix the bug, run `cargo test`.
#![cfg(not(madsim))]

use phantomdb::raft::PlantedBug;
use phantomdb::testkit::{frames, kv_model, raft_cluster, resp};
use std::path::{Path, PathBuf};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

/// Every regression input of this crate's targets: `fuzz/regressions/<dir>/<file>`.
/// Directories of the simulator crate's targets are replayed in `sim/tests/`.
#[test]
fn every_saved_fuzz_find_is_replayed() {
    let mut replayed = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(regressions())
        .expect("fuzz/regressions exists")
        .map(|e| e.expect("readable").path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().expect("a name").to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).expect("readable dir").map(|e| e.expect("readable").path()).collect();
        files.sort();
        for path in files {
            let data = std::fs::read(&path).expect("readable input");
            match name.as_str() {
                "frame_decode" => frames::run(&data),
                "kv_apply" => kv_model::run(&data),
                "raft_step" => raft_cluster::run(&data, None),
                "resp_parse" => resp::run(&data),
                "scenario_parse" | "sim_schedule" => continue, // sim/tests/fuzz_regressions.rs
                other => {
                    // raft_step-<bug>: a planted bug the target found; it must still be found,
                    // and the same input must pass without the bug.
                    let bug = other
                        .strip_prefix("raft_step-")
                        .and_then(PlantedBug::from_name)
                        .unwrap_or_else(|| panic!("fuzz/regressions/{other}: no target of that name"));
                    raft_cluster::run(&data, None);
                    let caught = std::panic::catch_unwind(|| raft_cluster::run(&data, Some(bug)));
                    assert!(caught.is_err(), "{} no longer finds {}", path.display(), bug.name());
                }
            }
            replayed += 1;
        }
    }
    for bug in raft_cluster::REACHABLE {
        let dir = regressions().join(format!("raft_step-{}", bug.name()));
        let saved = std::fs::read_dir(&dir).map_or(0, |d| d.count());
        assert!(saved > 0, "no saved raft_step find for the planted bug {}", bug.name());
    }
    assert!(replayed > 0);
}
