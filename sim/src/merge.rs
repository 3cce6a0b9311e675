//! Sweeps beyond one machine: `--seeds A..B --shard K/N --report-dir DIR` on each of N
//! machines, then `merge DIR...` on one. Each seed's report is the JSON of `--report`
//! (a child that crashed before writing one gets a record from its parent), so merging
//! needs nothing but the files.
//!
//! ```text
//!   machine K: run --seeds A..B --shard K/N --report-dir out-K ─▶ out-K/<scenario>-seed-<N>.json
//!   merge out-1 ... out-N ─▶ per scenario: seeds, outcomes, marks (required ones too)
//!                         ─▶ a seed reported twice with two trace hashes: nondeterminism
//! ```
//!
//! Exit code, as a sweep's: 1 if a seed failed, a seed was not deterministic or a
//! required mark was reached by no seed; else 3 if a seed was inconclusive; else 0; 2 if a
//! report cannot be read.

use crate::pool::{Finished, Verdict};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where a sweep writes the report of `seed` of `scenario`.
pub fn report_path(dir: &Path, scenario: &Path, seed: u64) -> PathBuf {
    let stem = scenario.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    dir.join(format!("{stem}-seed-{seed}.json"))
}

/// A finished child that was to write a report and did not (it crashed, or hung and was
/// killed): a record of what the parent saw, so that merging counts the seed as failed.
pub fn record_crash(f: &Finished) -> Result<(), String> {
    let Some(path) = &f.job.report else { return Ok(()) };
    if path.exists() {
        return Ok(());
    }
    let line = match &f.verdict {
        Verdict::Failed(l) | Verdict::Inconclusive(l) | Verdict::Refused(l) => l.clone(),
        Verdict::Passed => "passed but wrote no report".into(),
    };
    // Keyed as the child's own report would be: the scenario's bug unless one was planted.
    let bug = f.job.planted_bug.or_else(|| crate::scenario::load(&f.job.scenario).ok().and_then(|s| s.planted_bug));
    let record = serde_json::json!({
        "scenario": {
            "path": f.job.scenario,
            "seed": f.job.seed,
            "planted_bug": bug,
            "require_marks": [],
        },
        "outcome": "failed",
        "crashed": line,
        "reproduce": f.job.reproduce(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&record).expect("json"))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// One seed's report, as far as merging needs it.
#[derive(Debug, Clone, PartialEq)]
struct SeedReport {
    seed: u64,
    outcome: String,
    trace_hash: Option<String>,
    /// The failed checks' names, or why the seed crashed.
    what: String,
    reproduce: String,
    marks: BTreeSet<String>,
    file: PathBuf,
}

/// The reports of one scenario (and planted bug).
#[derive(Default)]
struct ScenarioReports {
    require_marks: BTreeSet<String>,
    seeds: BTreeMap<u64, SeedReport>,
    /// Seeds reported twice with different trace hashes.
    nondeterministic: Vec<(SeedReport, SeedReport)>,
}

fn parse(path: &Path, text: &str) -> Result<(String, Vec<String>, SeedReport), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("{}: not a seed report: {e}", path.display()))?;
    let field = |name: &str| format!("{}: field `{name}` missing or of the wrong type", path.display());
    let scenario = v.get("scenario").ok_or_else(|| field("scenario"))?;
    let name = scenario.get("path").and_then(Value::as_str).ok_or_else(|| field("scenario.path"))?;
    let bug = scenario.get("planted_bug").and_then(Value::as_str);
    let key = match bug {
        Some(b) => format!("{name} (planted bug {b})"),
        None => name.to_string(),
    };
    let seed = scenario.get("seed").and_then(Value::as_u64).ok_or_else(|| field("scenario.seed"))?;
    let require: Vec<String> = scenario
        .get("require_marks")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let outcome = v.get("outcome").and_then(Value::as_str).ok_or_else(|| field("outcome"))?.to_string();
    let second = v.get("second_trace_hash").and_then(Value::as_str);
    let first = v.get("trace_hash").and_then(Value::as_str);
    let what = match v.get("crashed").and_then(Value::as_str) {
        Some(c) => c.to_string(),
        None if second.is_some() && second != first => {
            format!("nondeterministic: trace-hash {} then {}", first.unwrap_or("none"), second.unwrap_or("none"))
        }
        None => {
            let checks = v.get("checks").and_then(Value::as_array).ok_or_else(|| field("checks"))?;
            let named = |list: &str| -> Vec<&str> {
                checks
                    .iter()
                    .filter(|c| c.get(list).and_then(Value::as_array).is_some_and(|l| !l.is_empty()))
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .collect()
            };
            let failed = named("violations");
            if failed.is_empty() {
                named("undecided").join(",")
            } else {
                failed.join(",")
            }
        }
    };
    let marks = v
        .get("marks")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter(|(_, n)| n.as_u64().unwrap_or(0) > 0).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let report = SeedReport {
        seed,
        outcome,
        trace_hash: v.get("trace_hash").and_then(Value::as_str).map(str::to_string),
        what,
        reproduce: v.get("reproduce").and_then(Value::as_str).unwrap_or_default().to_string(),
        marks,
        file: path.to_path_buf(),
    };
    Ok((key, require, report))
}

/// Reads every `*.json` of `dirs` (in name order).
fn read(dirs: &[PathBuf]) -> Result<BTreeMap<String, ScenarioReports>, String> {
    let mut out: BTreeMap<String, ScenarioReports> = BTreeMap::new();
    for dir in dirs {
        let files = crate::dir::files_with_extension(dir, "json").map_err(|e| format!("{}: {e}", dir.display()))?;
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let (key, require, report) = parse(&path, &text)?;
            let entry = out.entry(key).or_default();
            entry.require_marks.extend(require);
            match entry.seeds.get(&report.seed) {
                Some(earlier) if earlier.trace_hash != report.trace_hash => {
                    entry.nondeterministic.push((earlier.clone(), report));
                }
                Some(_) => {}
                None => {
                    entry.seeds.insert(report.seed, report);
                }
            }
        }
    }
    Ok(out)
}

/// `1..250, 252..500`: the seeds as runs of consecutive numbers.
fn ranges(seeds: impl Iterator<Item = u64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    let flush = |r: (u64, u64), out: &mut Vec<String>| {
        out.push(if r.0 == r.1 { r.0.to_string() } else { format!("{}..{}", r.0, r.1) })
    };
    for s in seeds {
        run = match run {
            Some((a, b)) if s == b + 1 => Some((a, s)),
            Some(r) => {
                flush(r, &mut out);
                Some((s, s))
            }
            None => Some((s, s)),
        };
    }
    if let Some(r) = run {
        flush(r, &mut out);
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

pub fn run(dirs: &[PathBuf]) -> ExitCode {
    let merged = match read(dirs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let total: usize = merged.values().map(|r| r.seeds.len()).sum();
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "merged {} of {} from {}",
        plural(total, "seed report", "seed reports"),
        plural(merged.len(), "scenario", "scenarios"),
        plural(dirs.len(), "directory", "directories")
    );
    let (mut failed, mut inconclusive, mut broken) = (0usize, 0usize, false);
    let mut marks_seen: BTreeMap<String, u64> = BTreeMap::new();
    for (name, r) in &merged {
        let count = |o: &str| r.seeds.values().filter(|s| s.outcome == o).count();
        let (f, i) = (count("failed"), count("inconclusive"));
        println!(
            "  {name}: {} seeds ({}): {} passed, {i} inconclusive, {f} failed",
            r.seeds.len(),
            ranges(r.seeds.keys().copied()),
            r.seeds.len() - f - i
        );
        for s in r.seeds.values().filter(|s| s.outcome != "passed") {
            println!("    seed {} {}: {}", s.seed, s.outcome, s.what);
            println!("    REPRODUCE: {}", s.reproduce);
        }
        for (a, b) in &r.nondeterministic {
            println!(
                "    NONDETERMINISM: seed {} gave trace-hash {} ({}) and {} ({})",
                a.seed,
                a.trace_hash.as_deref().unwrap_or("none"),
                a.file.display(),
                b.trace_hash.as_deref().unwrap_or("none"),
                b.file.display()
            );
        }
        let reached: BTreeSet<&String> = r.seeds.values().flat_map(|s| &s.marks).collect();
        for m in &reached {
            *marks_seen.entry((*m).clone()).or_default() +=
                r.seeds.values().filter(|s| s.marks.contains(*m)).count() as u64;
        }
        let missing: Vec<&String> = r.require_marks.iter().filter(|m| !reached.contains(m)).collect();
        if !missing.is_empty() {
            println!(
                "    required marks reached by no seed: {}",
                missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
            );
            broken = true;
        }
        broken |= !r.nondeterministic.is_empty();
        failed += f;
        inconclusive += i;
    }
    crate::runner::print_marks(&marks_seen, total as u64);
    if broken || failed > 0 {
        println!("FAIL: {failed} seeds failed{}", if broken { "; see above (marks or nondeterminism)" } else { "" });
        return ExitCode::from(1);
    }
    if inconclusive > 0 {
        println!("INCONCLUSIVE: {inconclusive} seeds");
        return ExitCode::from(3);
    }
    println!("PASS");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seed: u64, outcome: &str, hash: &str, marks: &str) -> String {
        format!(
            r#"{{"scenario": {{"path": "scenarios/x.toml", "seed": {seed}, "planted_bug": null, "require_marks": ["m1"]}},
               "outcome": "{outcome}", "trace_hash": "{hash}", "reproduce": "cargo sim run scenarios/x.toml --seed {seed}",
               "checks": [{{"name": "linearizability", "violations": {v}, "undecided": []}}], "marks": {{{marks}}}}}"#,
            v = if outcome == "failed" { r#"["bad"]"# } else { "[]" }
        )
    }

    fn dir(name: &str, files: &[(&str, String)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("phantomdb-merge-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (f, text) in files {
            std::fs::write(d.join(f), text).unwrap();
        }
        d
    }

    #[test]
    fn two_shards_merge_into_one_scenario_with_its_failures_and_marks() {
        let a = dir(
            "a",
            &[("x-1.json", report(1, "passed", "h1", r#""m1": 2"#)), ("x-3.json", report(3, "passed", "h3", ""))],
        );
        let b = dir("b", &[("x-2.json", report(2, "failed", "h2", ""))]);
        let merged = read(&[a.clone(), b.clone()]).unwrap();
        let r = &merged["scenarios/x.toml"];
        assert_eq!(r.seeds.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(r.seeds[&2].what, "linearizability");
        assert!(r.seeds[&1].marks.contains("m1"));
        assert!(r.nondeterministic.is_empty());
        assert_eq!(ranges(r.seeds.keys().copied()), "1..3");
        assert_eq!(ranges([1, 2, 5, 7, 8].into_iter()), "1..2, 5, 7..8");
        assert_eq!(run(&[a, b]), ExitCode::from(1));
    }

    #[test]
    fn a_seed_with_two_trace_hashes_is_nondeterminism_and_a_missing_required_mark_fails() {
        let a = dir("c", &[("x-1.json", report(1, "passed", "h1", ""))]);
        let b = dir("d", &[("x-1.json", report(1, "passed", "OTHER", ""))]);
        let merged = read(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(merged["scenarios/x.toml"].nondeterministic.len(), 1);
        assert_eq!(run(std::slice::from_ref(&a)), ExitCode::from(1), "m1 is required and no seed reached it");
        let ok = dir("e", &[("x-1.json", report(1, "passed", "h1", r#""m1": 1"#))]);
        assert_eq!(run(&[ok]), ExitCode::SUCCESS);
        let twice = report(1, "failed", "h1", r#""m1": 1"#)
            .replace(r#""reproduce""#, r#""second_trace_hash": "h2", "reproduce""#);
        let merged = read(&[dir("g", &[("x-1.json", twice)])]).unwrap();
        assert!(merged["scenarios/x.toml"].seeds[&1].what.starts_with("nondeterministic: trace-hash h1 then h2"));
        let bad = dir("f", &[("x-1.json", "{\"scenario\": 3}".to_string())]);
        assert_eq!(run(&[bad]), ExitCode::from(2));
    }
}
