//! The simulator's command line, end to end (simulated build: `cargo sim-test`): the
//! interfaces the README and scripts rely on.
#![cfg(madsim)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn sim(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phantomdb-sim")).args(args).current_dir(root()).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn trace_hash(stdout: &str) -> String {
    stdout.lines().find_map(|l| l.strip_prefix("trace-hash: ")).expect("a trace-hash line").to_string()
}

#[test]
fn the_same_seed_gives_the_same_trace_hash() {
    let (code, a, _) = sim(&["run", "--seed", "7"]);
    assert_eq!(code, Some(0), "{a}");
    let (_, b, _) = sim(&["run", "--seed", "7"]);
    assert_eq!(trace_hash(&a), trace_hash(&b));
    let (code, c, _) = sim(&["run", "--seed", "7", "--check-determinism"]);
    assert_eq!(code, Some(0), "{c}");
    assert!(c.contains("(same)"), "{c}");
    let (_, d, _) = sim(&["run", "--seed", "8"]);
    assert_ne!(trace_hash(&a), trace_hash(&d), "different seeds, different runs");
}

#[test]
fn a_typo_in_a_scenario_exits_2_naming_file_line_and_field() {
    let dir = tempdir();
    let path = dir.join("typo.toml");
    std::fs::write(&path, "name = \"typo\"\n\n[cluster]\nnodse = 5\n").unwrap();
    let (code, _, err) = sim(&["run", path.to_str().unwrap(), "--seed", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("{}:4:1: field `nodse`", path.display())), "{err}");
}

#[test]
fn bad_usage_exits_2() {
    let (code, _, err) = sim(&["run", "--seeds", "9..3"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, _) = sim(&["run", "scenarios/does-not-exist.toml", "--seed", "1"]);
    assert_eq!(code, Some(2));
}

#[test]
fn a_history_passes_the_checker_and_a_tampered_one_fails() {
    let dir = tempdir();
    let history = dir.join("h.jsonl");
    let (code, out, _) = sim(&["run", "--seed", "3", "--history", history.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = sim(&["check-history", history.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    // Make one acknowledged read return a value nobody wrote.
    let text = std::fs::read_to_string(&history).unwrap();
    let mut done = false;
    let tampered: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.contains("\"op\":\"get\"") && l.contains("\"unknown\":false") && l.contains("\"key\":\"r") {
                done = true;
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let mut v = v.as_object().unwrap().clone();
                v.insert("output".into(), serde_json::Value::String("never-written".into()));
                serde_json::to_string(&v).unwrap()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(done, "the history has a read to tamper with");
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, tampered.join("\n")).unwrap();
    let (code, out, _) = sim(&["check-history", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("never-written"), "{out}");
}

#[test]
fn a_search_that_hits_its_budget_is_inconclusive_exit_3_not_a_pass() {
    let dir = tempdir();
    let history = dir.join("budget.jsonl");
    let (code, out, _) = sim(&["run", "--seed", "5", "--history", history.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = sim(&["check-history", history.to_str().unwrap(), "--search-steps", "1"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("linearizability  INCONCLUSIVE"), "{out}");
    assert!(out.contains("the search hit its budget of 1 steps"), "{out}");
    assert_eq!(out.lines().last(), Some("INCONCLUSIVE: linearizability"), "{out}");
    assert!(!out.contains("PASS"), "{out}");
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "phantomdb-sim-cli-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_sweep_that_never_reaches_a_required_mark_fails() {
    let dir = tempdir();
    // One node: no membership change ever commits a joint configuration.
    let path = dir.join("unreached.toml");
    std::fs::write(
        &path,
        "require_marks = [\"joint_config_committed\"]\n[cluster]\nnodes = 1\n[phases]\nfaulty_ms = 2000\nhealed_ms = 500\n",
    )
    .unwrap();
    let (code, out, _) = sim(&["run", path.to_str().unwrap(), "--seeds", "1..3"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL: required marks reached by no seed: joint_config_committed"), "{out}");
    assert!(out.contains("3 passed"), "every seed passed its checks: {out}");
    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "require_marks = [\"joint_config_comitted\"]\n").unwrap();
    let (code, _, err) = sim(&["run", typo.to_str().unwrap(), "--seed", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("require_marks") && err.contains("is no mark"), "{err}");
}

#[test]
fn a_hunt_finds_a_planted_bug_with_a_replayable_seed_and_a_clean_hunt_passes() {
    let bug = "scenarios/bugs/quorum_off_by_one.toml";
    let (code, out, err) = sim(&["hunt", bug, "--time", "60s", "--from", "1", "--jobs", "2", "--no-shrink"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let line = out.lines().find_map(|l| l.trim().strip_prefix("REPRODUCE: ")).expect("a REPRODUCE line");
    assert!(line.starts_with("cargo sim run scenarios/bugs/quorum_off_by_one.toml --seed "), "{line}");
    let seed = line.rsplit(' ').next().unwrap();
    let (code, again, _) = sim(&["run", bug, "--seed", seed]);
    assert_eq!(code, Some(1), "the seed the hunt found fails again:\n{again}");
    let (code, out, err) = sim(&["hunt", "scenarios/single_node.toml", "--time", "3s", "--from", "1"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("0 failed"), "{out}");
    let (code, _, err) = sim(&["hunt", "--from", "1"]);
    assert_eq!(code, Some(2), "a hunt needs --time: {err}");
}

#[test]
fn a_shrunk_failure_has_few_faults_and_replays_from_its_file_to_the_same_trace_hash() {
    let dir = tempdir();
    let min = dir.join("min.toml");
    let bug = "scenarios/bugs/heartbeat_commit_unmatched.toml";
    let (code, out, err) = sim(&["shrink", bug, "--seed", "1", "-o", min.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("before: 23 timed faults"), "{out}");
    let after = out.lines().find_map(|l| l.trim().strip_prefix("after:  ")).expect("an after line");
    let faults: usize = after.split(' ').next().unwrap().parse().unwrap();
    assert!(faults <= 5, "a handful: {after}");
    let text = std::fs::read_to_string(&min).unwrap();
    assert!(!text.contains("[nemesis]"), "only explicit faults:\n{text}");
    let line = out.lines().find_map(|l| l.strip_prefix("REPRODUCE: cargo sim run ")).expect("a REPRODUCE line");
    let seed = line.rsplit(' ').next().unwrap();
    let hash = out.split("trace-hash ").nth(1).unwrap().split_whitespace().next().unwrap();
    let (code, replay, _) = sim(&["run", min.to_str().unwrap(), "--seed", seed]);
    assert_eq!(code, Some(1), "the shrunk scenario still fails:\n{replay}");
    assert_eq!(trace_hash(&replay), hash);
    let (code, _, err) = sim(&["shrink", "scenarios/single_node.toml", "--seed", "1"]);
    assert_eq!(code, Some(2), "a passing seed has nothing to shrink: {err}");
    assert!(err.contains("does not fail"), "{err}");
}

#[test]
fn two_shards_with_report_dirs_merge_into_the_whole_sweep() {
    let dir = tempdir();
    let (a, b) = (dir.join("shard-1"), dir.join("shard-2"));
    for (k, d) in [("1/2", &a), ("2/2", &b)] {
        let args =
            ["run", "scenarios/single_node.toml", "--seeds", "1..6", "--shard", k, "--report-dir", d.to_str().unwrap()];
        let (code, out, err) = sim(&args);
        assert_eq!(code, Some(0), "{out}\n{err}");
        assert!(out.contains("3 seeds in"), "{out}");
    }
    assert!(a.join("single_node-seed-1.json").exists() && b.join("single_node-seed-2.json").exists());
    let (code, out, err) = sim(&["merge", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("scenarios/single_node.toml: 6 seeds (1..6): 6 passed"), "{out}");
    assert_eq!(out.lines().last(), Some("PASS"), "{out}");
}
