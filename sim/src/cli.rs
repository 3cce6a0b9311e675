//! Command-line arguments.

use phantomdb::raft::PlantedBug;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: cargo sim run [SCENARIO] [--seed N | --seeds A..B] [options]
       cargo sim hunt [SCENARIO...] --time 10m [--keep-going] [--from N] [--jobs N]
                      [--planted-bug NAME] [--no-shrink]
       cargo sim shrink SCENARIO --seed N [-o FILE] [--planted-bug NAME]
       cargo sim merge DIR...
       cargo sim check-history FILE [--search-steps N]
       cargo sim bench [SCENARIO] [--seeds A..B]

  hunt                   fresh seeds of every scenario in scenarios/ (or those named),
                         round robin on every core, until --time is up (10m, 90s, 600)
                         or a seed fails (--keep-going: go on); 1 seed in 20 also checks
                         determinism; --from N starts at seed N (printed otherwise);
                         the first failure is shrunk to shrunk-<scenario>-<seed>.toml
                         and replayed from it (--no-shrink: not)

  shrink                 reduce a failing seed's schedule (timed faults, faults at
                         moments, buggify sites, clients, keys, the faulty phase) to a
                         small one that still fails the same check, and write it as a
                         scenario with only explicit faults (-o FILE; default
                         shrunk-<scenario>-<seed>.toml), checked to replay to the same
                         trace hash with the seed its REPRODUCE line prints (N, or
                         another one the failure moved to)

  merge DIR...           merge the seed reports of --report-dir sweeps (one directory
                         per machine, or one shared) into one verdict: seeds per
                         scenario, failures with REPRODUCE lines, marks, required marks,
                         and seeds that gave two trace hashes; exit codes as a sweep's

  bench                  measure simulator speed on one core (default seeds 1..50)
  check-history FILE     check a --history file (JSON lines) for linearizability and
                         lost writes; exit 0 if it passes, 1 if not, 3 if undecided
  --search-steps N       (check-history) linearizability search steps per key
                         (default 5000000; a key that needs more is undecided)

  SCENARIO               a scenario file (default: scenarios/default.toml)
  --seed N               run one seed (default: a random seed, printed)
  --seeds A..B           run seeds A to B (both included), one process each, in parallel
  --jobs N               processes at once for --seeds (default: the number of cores)
  --time-budget T        (--seeds) start no new seed after T (10m, 90s, 600); print
                         which seeds ran
  --shard K/N            (--seeds) run only the K-th of N slices (K from 1 to N): the
                         seeds A+K-1, A+K-1+N, ...; N machines with K = 1..N cover A..B
  --report-dir DIR       (--seeds) write DIR/<scenario>-seed-<N>.json per seed (the
                         --report of each; a crashed seed gets a record too), for merge
  --planted-bug NAME     (run, hunt) plant this bug (src/raft/bugs.rs) in the scenario,
                         whatever it says: a hunt over the standard suite for it
  --check-determinism    run each seed twice and compare the trace hashes
  --history FILE         write client operations as JSON lines (one seed only)
  --trace FILE           write the event log (one seed only)
  --timeline FILE        write the run as one self-contained HTML page: nodes, faults,
                         commits, client operations, the violation (one seed only)
  --report FILE          write the scenario, schedule and verdict as JSON (one seed only)
  --quiet                print only the verdict line
  --fuzz-input FILE      run a sim_schedule fuzz input (fuzz/artifacts/…) instead of SCENARIO

exit codes: 0 all checks passed, 1 a check failed (or a run was not deterministic),
            2 bad scenario or usage, 3 no check failed but one could not decide
            (inconclusive: never a pass); --seeds: 1 if any seed failed, else 3 if
            any was inconclusive";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeds {
    One(u64),
    /// `A..B`: A to B, both included (`1..200` is 200 seeds).
    Range(u64, u64),
}

#[derive(Debug, Clone)]
pub struct Args {
    pub scenario: PathBuf,
    pub seeds: Seeds,
    pub check_determinism: bool,
    pub history: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    pub timeline: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub quiet: bool,
    pub jobs: Option<usize>,
    /// `--seeds`: start no new seed after this many seconds.
    pub time_budget_s: Option<u64>,
    /// Plant this bug whatever the scenario says.
    pub planted_bug: Option<PlantedBug>,
    /// A `sim_schedule` fuzz input to run instead of a scenario file.
    pub fuzz_input: Option<PathBuf>,
    /// `--seeds`: only slice K of N (1-based K).
    pub shard: Option<(u64, u64)>,
    /// `--seeds`: one JSON report per seed in this directory.
    pub report_dir: Option<PathBuf>,
}

pub enum Parsed {
    Run(Args),
    Bench(Args),
    CheckHistory {
        file: PathBuf,
        /// Linearizability search steps per key.
        search_steps: u64,
    },
    Hunt(HuntArgs),
    Shrink(ShrinkArgs),
    Merge(Vec<PathBuf>),
    Help,
}

/// `shrink`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkArgs {
    pub scenario: PathBuf,
    pub seed: u64,
    pub output: PathBuf,
    pub planted_bug: Option<PlantedBug>,
}

/// `hunt`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuntArgs {
    /// Empty: every scenario in `scenarios/`.
    pub scenarios: Vec<PathBuf>,
    pub time_s: u64,
    pub keep_going: bool,
    /// The first seed (default: drawn, and printed).
    pub from: Option<u64>,
    pub jobs: Option<usize>,
    pub planted_bug: Option<PlantedBug>,
    /// Leave the first failure as found (no shrink, no replay).
    pub no_shrink: bool,
}

fn planted_bug(v: &str) -> Result<PlantedBug, String> {
    PlantedBug::from_name(v).ok_or_else(|| {
        let names: Vec<&str> = PlantedBug::ALL.iter().map(|b| b.name()).collect();
        format!("--planted-bug {v:?}: expected one of {}", names.join(", "))
    })
}

/// `--shard K/N`: slice K (1 to N) of N.
fn shard(v: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {v:?}: expected K/N with 1 <= K <= N (e.g. 2/8)");
    let (k, n) = v.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// `--jobs N`: processes at once, at least 1.
fn jobs(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(0) => Err("--jobs must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("--jobs {v:?}: expected a number")),
    }
}

/// A duration as `10m`, `90s` or a number of seconds.
fn seconds(flag: &str, v: &str) -> Result<u64, String> {
    let (digits, unit) = match v.strip_suffix('m') {
        Some(d) => (d, 60),
        None => (v.strip_suffix('s').unwrap_or(v), 1),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{flag} {v:?}: expected a duration like 10m, 90s or 600"))?;
    match n.checked_mul(unit) {
        Some(s) if s > 0 => Ok(s),
        _ => Err(format!("{flag} {v:?}: expected a duration above zero")),
    }
}

fn parse_shrink(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let (mut scenario, mut seed, mut output, mut bug) = (None, None, None, None);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--seed" => {
                let v = value("--seed")?;
                seed = Some(v.parse::<u64>().map_err(|_| format!("--seed {v:?}: expected a number"))?);
            }
            "-o" | "--output" => output = Some(PathBuf::from(value("-o")?)),
            "--planted-bug" => bug = Some(planted_bug(&value("--planted-bug")?)?),
            s if s.starts_with('-') => return Err(format!("unknown option {s:?} for shrink")),
            s if scenario.is_some() => return Err(format!("shrink takes one SCENARIO, not also {s:?}")),
            s => scenario = Some(PathBuf::from(s)),
        }
    }
    let scenario: PathBuf = scenario.ok_or("shrink needs a SCENARIO")?;
    let seed = seed.ok_or("shrink needs --seed N (the failing seed)")?;
    let stem = scenario.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let output = output.unwrap_or_else(|| PathBuf::from(format!("shrunk-{stem}-{seed}.toml")));
    Ok(Parsed::Shrink(ShrinkArgs { scenario, seed, output, planted_bug: bug }))
}

fn parse_hunt(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut h = HuntArgs {
        scenarios: Vec::new(),
        time_s: 0,
        keep_going: false,
        from: None,
        jobs: None,
        planted_bug: None,
        no_shrink: false,
    };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--time" => h.time_s = seconds("--time", &value("--time")?)?,
            "--keep-going" => h.keep_going = true,
            "--no-shrink" => h.no_shrink = true,
            "--planted-bug" => h.planted_bug = Some(planted_bug(&value("--planted-bug")?)?),
            "--from" => {
                let v = value("--from")?;
                h.from = Some(v.parse().map_err(|_| format!("--from {v:?}: expected a number"))?);
            }
            "--jobs" => h.jobs = Some(jobs(&value("--jobs")?)?),
            s if s.starts_with('-') => return Err(format!("unknown option {s:?} for hunt")),
            s => h.scenarios.push(PathBuf::from(s)),
        }
    }
    if h.time_s == 0 {
        return Err("hunt needs --time (10m, 90s or a number of seconds)".into());
    }
    Ok(Parsed::Hunt(h))
}

pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let bench = match it.next().as_deref() {
        Some("run") => false,
        Some("bench") => true,
        Some("hunt") => return parse_hunt(it),
        Some("shrink") => return parse_shrink(it),
        Some("merge") => {
            let dirs: Vec<PathBuf> = it.map(PathBuf::from).collect();
            if let Some(flag) = dirs.iter().find(|d| d.to_string_lossy().starts_with('-')) {
                return Err(format!("unknown option {:?} for merge", flag.display()));
            }
            if dirs.is_empty() {
                return Err("merge needs at least one DIR of seed reports (--report-dir)".into());
            }
            return Ok(Parsed::Merge(dirs));
        }
        Some("check-history") => return parse_check_history(it),
        Some("-h" | "--help" | "help") | None => return Ok(Parsed::Help),
        Some(other) => {
            return Err(format!(
                "unknown command {other:?} (expected `run`, `hunt`, `shrink`, `merge`, `bench` or `check-history`)"
            ))
        }
    };
    let mut scenario = None;
    let mut seeds = None;
    let mut args = Args {
        scenario: PathBuf::new(),
        seeds: Seeds::One(0),
        check_determinism: false,
        history: None,
        trace: None,
        timeline: None,
        report: None,
        quiet: false,
        jobs: None,
        time_budget_s: None,
        planted_bug: None,
        fuzz_input: None,
        shard: None,
        report_dir: None,
    };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--seed" => {
                let v = value("--seed")?;
                seeds = Some(Seeds::One(v.parse().map_err(|_| format!("--seed {v:?}: expected a number"))?));
            }
            "--seeds" => {
                let v = value("--seeds")?;
                let (a, b) = v.split_once("..").ok_or_else(|| format!("--seeds {v:?}: expected A..B"))?;
                let a: u64 = a.parse().map_err(|_| format!("--seeds {v:?}: {a:?} is not a number"))?;
                let b: u64 = b.parse().map_err(|_| format!("--seeds {v:?}: {b:?} is not a number"))?;
                if a > b {
                    return Err(format!("--seeds {v:?}: the range is empty (A > B)"));
                }
                seeds = Some(Seeds::Range(a, b));
            }
            "--jobs" => args.jobs = Some(jobs(&value("--jobs")?)?),
            "--planted-bug" => args.planted_bug = Some(planted_bug(&value("--planted-bug")?)?),
            "--time-budget" => args.time_budget_s = Some(seconds("--time-budget", &value("--time-budget")?)?),
            "--check-determinism" => args.check_determinism = true,
            "--history" => args.history = Some(value("--history")?.into()),
            "--trace" => args.trace = Some(value("--trace")?.into()),
            "--timeline" => args.timeline = Some(value("--timeline")?.into()),
            "--report" => args.report = Some(value("--report")?.into()),
            "--quiet" => args.quiet = true,
            "--fuzz-input" => args.fuzz_input = Some(value("--fuzz-input")?.into()),
            "--shard" => args.shard = Some(shard(&value("--shard")?)?),
            "--report-dir" => args.report_dir = Some(value("--report-dir")?.into()),
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s => {
                if scenario.is_some() {
                    return Err(format!("a second scenario {s:?}: give one"));
                }
                scenario = Some(PathBuf::from(s));
            }
        }
    }
    args.scenario = scenario.unwrap_or_else(|| PathBuf::from("scenarios/default.toml"));
    if bench {
        args.seeds = seeds.unwrap_or(Seeds::Range(1, 50));
        return Ok(Parsed::Bench(args));
    }
    args.seeds = seeds.unwrap_or_else(|| Seeds::One(random_seed()));
    if matches!(args.seeds, Seeds::Range(..))
        && (args.history.is_some() || args.trace.is_some() || args.timeline.is_some() || args.report.is_some())
    {
        return Err("--history, --trace, --timeline and --report take one --seed".into());
    }
    if matches!(args.seeds, Seeds::One(_)) && (args.shard.is_some() || args.report_dir.is_some()) {
        return Err("--shard and --report-dir are for a sweep (--seeds A..B); one seed takes --report FILE".into());
    }
    Ok(Parsed::Run(args))
}

fn parse_check_history(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut file = None;
    let mut search_steps = crate::verdict::LINEARIZABILITY_STEPS_MAX;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--search-steps" => {
                let v = it.next().ok_or("--search-steps needs a value")?;
                search_steps = v.parse().map_err(|_| format!("--search-steps {v:?}: expected a number"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s:?} for check-history")),
            s if file.is_some() => return Err(format!("check-history takes one FILE, not also {s:?}")),
            s => file = Some(PathBuf::from(s)),
        }
    }
    Ok(Parsed::CheckHistory { file: file.ok_or("check-history needs a FILE")?, search_steps })
}

/// A seed for a run that names none. Taken outside the simulation, from the OS.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish() % 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Parsed::Run(a) => Ok(a),
            _ => Err("not a run".into()),
        }
    }

    #[test]
    fn hunt_takes_scenarios_a_time_and_a_bug() {
        let parse_hunt = |words: &[&str]| parse(words.iter().map(|s| s.to_string()));
        let Ok(Parsed::Hunt(h)) =
            parse_hunt(&["hunt", "a.toml", "b.toml", "--time", "2m", "--planted-bug", "commit_old_term"])
        else {
            panic!("a hunt")
        };
        assert_eq!(h.scenarios, [PathBuf::from("a.toml"), PathBuf::from("b.toml")]);
        assert_eq!((h.time_s, h.keep_going, h.planted_bug), (120, false, Some(PlantedBug::CommitOldTerm)));
        let refused = |words: &[&str], needle: &str| match parse_hunt(words) {
            Err(e) => assert!(e.contains(needle), "{e}"),
            Ok(_) => panic!("{words:?} parsed"),
        };
        refused(&["hunt"], "--time");
        refused(&["hunt", "--time", "0"], "above zero");
        refused(&["hunt", "--time", "1m", "--planted-bug", "nope"], "expected one of");
        assert_eq!(p(&["run", "--seeds", "1..9", "--time-budget", "90s"]).unwrap().time_budget_s, Some(90));
    }

    #[test]
    fn shrink_takes_a_scenario_a_seed_and_an_output() {
        let parse_words = |words: &[&str]| parse(words.iter().map(|s| s.to_string()));
        let Ok(Parsed::Shrink(s)) = parse_words(&["shrink", "scenarios/x.toml", "--seed", "12"]) else {
            panic!("a shrink")
        };
        assert_eq!((s.seed, s.output), (12, PathBuf::from("shrunk-x-12.toml")));
        let Ok(Parsed::Shrink(s)) = parse_words(&["shrink", "a.toml", "--seed", "1", "-o", "min.toml"]) else {
            panic!("a shrink")
        };
        assert_eq!(s.output, PathBuf::from("min.toml"));
        assert!(parse_words(&["shrink", "a.toml"]).err().unwrap().contains("--seed"));
        assert!(parse_words(&["shrink", "--seed", "3"]).err().unwrap().contains("SCENARIO"));
    }

    #[test]
    fn shards_and_report_dirs_are_for_sweeps() {
        let a = p(&["run", "--seeds", "1..100", "--shard", "2/8", "--report-dir", "out"]).unwrap();
        assert_eq!((a.shard, a.report_dir), (Some((2, 8)), Some(PathBuf::from("out"))));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(p(&["run", "--seeds", "1..9", "--shard", bad]).unwrap_err().contains("K/N"), "{bad}");
        }
        assert!(p(&["run", "--seed", "3", "--report-dir", "out"]).unwrap_err().contains("--seeds"));
        let merge = parse(["merge", "a", "b"].iter().map(|s| s.to_string()));
        assert!(matches!(merge, Ok(Parsed::Merge(d)) if d == [PathBuf::from("a"), PathBuf::from("b")]));
        assert!(parse(["merge"].iter().map(|s| s.to_string())).is_err());
    }

    #[test]
    fn defaults_and_ranges() {
        let a = p(&["run", "--seed", "7"]).unwrap();
        assert_eq!(a.scenario, PathBuf::from("scenarios/default.toml"));
        assert_eq!(a.seeds, Seeds::One(7));
        assert_eq!(p(&["run", "x.toml", "--seeds", "1..200"]).unwrap().seeds, Seeds::Range(1, 200));
    }

    #[test]
    fn bad_usage_is_explained() {
        assert!(p(&["run", "--seeds", "5..4"]).unwrap_err().contains("empty"));
        assert!(p(&["run", "--seed"]).unwrap_err().contains("needs a value"));
        assert!(p(&["run", "--seeds", "1..3", "--history", "h"]).unwrap_err().contains("one --seed"));
        assert!(p(&["run", "--seeds", "1..3", "--timeline", "t.html"]).unwrap_err().contains("one --seed"));
        assert_eq!(p(&["run", "--seed", "1", "--timeline", "t.html"]).unwrap().timeline, Some("t.html".into()));
        assert!(p(&["walk"]).is_err());
    }
}
