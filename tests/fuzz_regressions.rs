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
use phantomdb::testkit::{frames, kv_model, raft_cluster};
use std::path::{Path, PathBuf};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

/// The files of `fuzz/regressions/<dir>` (none if the directory does not exist).
fn inputs(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(regressions().join(dir)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("readable dir").path()).collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("readable input"))).collect()
}

#[test]
fn frame_decode_regressions() {
    for (_, data) in inputs("frame_decode") {
        frames::run(&data);
    }
}

#[test]
fn kv_apply_regressions() {
    for (_, data) in inputs("kv_apply") {
        kv_model::run(&data);
    }
}

#[test]
fn raft_step_regressions() {
    for (_, data) in inputs("raft_step") {
        raft_cluster::run(&data, None);
    }
}

#[test]
fn raft_step_finds_every_planted_bug_again() {
    let mut seen = 0;
    for bug in PlantedBug::ALL {
        for (path, data) in inputs(&format!("raft_step-{}", bug.name())) {
            raft_cluster::run(&data, None);
            let caught = std::panic::catch_unwind(|| raft_cluster::run(&data, Some(bug)));
            assert!(caught.is_err(), "{} no longer finds {}", path.display(), bug.name());
            seen += 1;
        }
    }
    assert!(seen >= PlantedBug::ALL.len(), "one saved find per planted bug, found {seen}");
}
