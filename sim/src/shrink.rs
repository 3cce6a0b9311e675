//! Shrinking: a failing seed's expanded schedule reduced to a small one that still fails
//! the same check, written as a scenario file with only explicit faults (no nemesis),
//! which replays with the seed it names to the same trace hash.
//!
//! ```text
//!   scenario + seed ─▶ resolve ─▶ run: fails check C? ─▶ explicit form (scenario::explicit)
//!     ─▶ delta debugging (Zeller's ddmin) over the units: timed faults, faults at
//!        moments, armed buggify sites; a candidate is kept if it still fails C
//!     ─▶ scalar passes: fewer clients, a shorter faulty phase, fewer keys
//!     ─▶ the file: written, parsed again, resolved and run: same trace hash, or an error
//! ```
//!
//! A candidate runs in this process (a run is a pure function of its scenario and seed).
//! madsim's draws (latencies, election timeouts) come from the seed, and they shift as
//! faults go, which is why a candidate is judged by running it, never by reasoning, and
//! why it may also run with other seeds (`Search::fails`): the result replays with the
//! seed its last accepted candidate failed with.
//! Bounded by `RUNS_MAX` runs; past it the smallest failing candidate so far is the result.

use crate::checkers::Outcome;
use crate::scenario::{self, Scenario};
use crate::verdict::{self, Verdict};
use crate::world;
use std::collections::BTreeMap;
use std::path::Path;

/// The most candidate runs one shrink makes.
pub const RUNS_MAX: u64 = 2_000;

/// The size of a scenario, as the shrinker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub faults: usize,
    pub triggers: usize,
    pub sites: usize,
    pub clients: u64,
    pub keys: u64,
    pub faulty_ms: u64,
}

impl Size {
    pub fn of(s: &Scenario) -> Size {
        Size {
            faults: s.schedule.len(),
            triggers: s.triggers.len(),
            sites: s.buggify_armed.len(),
            clients: s.clients,
            keys: s.register_keys + s.append_keys,
            faulty_ms: s.faulty_ms,
        }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |count: u64, one: &str, many: &str| format!("{count} {}", if count == 1 { one } else { many });
        write!(
            f,
            "{}, {}, {}, {}, {}, {:.1}s faulty phase",
            n(self.faults as u64, "timed fault", "timed faults"),
            n(self.triggers as u64, "fault at a moment", "faults at moments"),
            n(self.sites as u64, "buggify site", "buggify sites"),
            n(self.clients, "client", "clients"),
            n(self.keys, "key", "keys"),
            self.faulty_ms as f64 / 1e3
        )
    }
}

/// What a shrink found.
pub struct Shrunk {
    /// The smallest failing scenario, as its file resolves it.
    pub scenario: Scenario,
    /// The file's text (replay it with `--seed scenario.seed`).
    pub text: String,
    /// The check every kept candidate failed (the original's first failed check).
    pub check: &'static str,
    pub before: Size,
    pub after: Size,
    pub runs: u64,
    /// The trace hash of the shrunk run, and of its replay from `text` (the same).
    pub trace_hash: String,
}

/// One part of a schedule ddmin may drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Timed(usize),
    Trigger(usize),
    Site(usize),
}

struct Search<'a> {
    check: &'static str,
    /// The seed candidates run with first: the original's, until a candidate fails only
    /// with another.
    seed: u64,
    /// How many seeds a candidate may fail with (the current one first).
    seeds_per_candidate: u64,
    runs: u64,
    /// Runs already made (by seed and explicit text) and whether they failed `check`.
    seen: BTreeMap<(u64, String), bool>,
    progress: &'a mut dyn FnMut(&str),
}

impl Search<'_> {
    /// Does `s` fail the check, with the current seed or one of `seeds_per_candidate - 1`
    /// others? A fault removed shifts every later random draw, so a timing-sensitive
    /// failure often moves to another seed rather than going away; the seed it fails
    /// with becomes the current one (the result replays with it).
    fn fails(&mut self, s: &Scenario) -> bool {
        let text = scenario::explicit(s, "");
        let seeds: Vec<u64> =
            std::iter::once(self.seed).chain((1..self.seeds_per_candidate).map(|i| other_seed(self.seed, i))).collect();
        for seed in seeds {
            let key = (seed, text.clone());
            let fails = match self.seen.get(&key) {
                Some(&known) => known,
                None if self.runs >= RUNS_MAX => return false,
                None => {
                    self.runs += 1;
                    let mut c = s.clone();
                    c.seed = seed;
                    let fails = run(&c).named(Outcome::Failed).contains(&self.check);
                    self.seen.insert(key, fails);
                    fails
                }
            };
            if fails {
                if seed != self.seed {
                    (self.progress)(&format!("run {:>4}: fails {} only with seed {seed} now", self.runs, self.check));
                }
                self.seed = seed;
                (self.progress)(&format!("run {:>4}: still fails {} with {}", self.runs, self.check, Size::of(s)));
                return true;
            }
        }
        false
    }
}

/// How many seeds a candidate may fail with in the rounds after the first (which keeps
/// the original seed: a failure that holds there shrinks furthest).
const SEEDS_PER_CANDIDATE: u64 = 3;
/// Rounds of ddmin: the first with the seed alone, then with other seeds too, until a
/// round removes nothing.
const ROUNDS_MAX: usize = 4;

/// The `i`-th other seed to try after `seed`: far from it, and a function of it alone.
fn other_seed(seed: u64, i: u64) -> u64 {
    seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 1_000_000_000_000
}

fn run(s: &Scenario) -> Verdict {
    // Candidates often fail on a node's assertion: the world catches the panic and the
    // verdict names it, so its message and backtrace need not reach stderr (a panic of
    // the shrinker itself still does).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = world::run(s);
    std::panic::set_hook(hook);
    verdict::evaluate(s, &out)
}

/// `base` with only the units in `keep`.
fn with_units(base: &Scenario, keep: &[Unit]) -> Scenario {
    let mut s = base.clone();
    s.schedule = keep
        .iter()
        .filter_map(|u| if let Unit::Timed(i) = u { Some(base.schedule[*i].clone()) } else { None })
        .collect();
    s.triggers = keep
        .iter()
        .filter_map(|u| if let Unit::Trigger(i) = u { Some(base.triggers[*i].clone()) } else { None })
        .collect();
    s.buggify_armed =
        keep.iter().filter_map(|u| if let Unit::Site(i) = u { Some(base.buggify_armed[*i]) } else { None }).collect();
    s
}

/// Zeller's ddmin: a 1-minimal subset of `units` for which `fails` holds (it holds for
/// all of them). Tries each of n chunks, then each complement, then doubles n.
fn ddmin(mut units: Vec<Unit>, fails: &mut dyn FnMut(&[Unit]) -> bool) -> Vec<Unit> {
    if fails(&[]) {
        return Vec::new();
    }
    let mut n = 2usize;
    while units.len() >= 2 {
        let chunk = units.len().div_ceil(n);
        let chunks: Vec<Vec<Unit>> = units.chunks(chunk).map(<[Unit]>::to_vec).collect();
        let mut reduced = false;
        for c in &chunks {
            if fails(c) {
                units = c.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && chunks.len() > 2 {
            for i in 0..chunks.len() {
                let rest: Vec<Unit> =
                    chunks.iter().enumerate().filter(|&(j, _)| j != i).flat_map(|(_, c)| c.clone()).collect();
                if fails(&rest) {
                    units = rest;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= units.len() {
                break;
            }
            n = (2 * n).min(units.len());
        }
    }
    units
}

/// Shrinks `original` (resolved from the file at `path`, with its seed), which must fail
/// a check. `progress` gets a line per candidate that still fails.
pub fn shrink(path: &Path, original: &Scenario, progress: &mut dyn FnMut(&str)) -> Result<Shrunk, String> {
    let v = run(original);
    let failed = v.named(Outcome::Failed);
    let Some(&check) = failed.first() else {
        return Err(format!(
            "{} seed {} does not fail (outcome {:?}): nothing to shrink",
            path.display(),
            original.seed,
            v.outcome()
        ));
    };
    let before = Size::of(original);
    progress(&format!("seed {} fails {}; shrinking {before}", original.seed, failed.join(", ")));
    // The explicit form first: every candidate is a file's resolution, so the result replays.
    let base = reparse(original)?;
    let mut search =
        Search { check, seed: original.seed, seeds_per_candidate: 1, runs: 1, seen: BTreeMap::new(), progress };
    if !search.fails(&base) {
        return Err(format!("the explicit form of seed {} no longer fails {check} (a bug of the shrinker)", base.seed));
    }
    let mut best = base.clone();
    for round in 0..ROUNDS_MAX {
        search.seeds_per_candidate = if round == 0 { 1 } else { SEEDS_PER_CANDIDATE };
        let units: Vec<Unit> = (0..best.schedule.len())
            .map(Unit::Timed)
            .chain((0..best.triggers.len()).map(Unit::Trigger))
            .chain((0..best.buggify_armed.len()).map(Unit::Site))
            .collect();
        let count = units.len();
        let kept = ddmin(units, &mut |keep| search.fails(&with_units(&best, keep)));
        if kept.len() == count && round > 0 {
            break;
        }
        best = Scenario { seed: search.seed, ..with_units(&best, &kept) };
        debug_assert!(search.fails(&best), "ddmin returns a failing subset");
    }
    // Scalars, smallest first: the first value that still fails is kept.
    for clients in 1..best.clients {
        let mut c = best.clone();
        c.clients = clients;
        if search.fails(&c) {
            best = Scenario { seed: search.seed, ..c };
            break;
        }
    }
    let last_fault_ms = best.schedule.iter().map(|f| f.at_ms).chain(best.triggers.iter().map(|t| t.from_ms)).max();
    let floor = last_fault_ms.map_or(0, |t| t + 1);
    let mut lengths: Vec<u64> =
        [floor, floor + 500, floor + 2_000, best.faulty_ms / 4, best.faulty_ms / 2].into_iter().collect();
    lengths.sort_unstable();
    lengths.dedup();
    for faulty_ms in lengths.into_iter().filter(|&l| l >= floor.max(1) && l < best.faulty_ms) {
        let mut c = best.clone();
        c.faulty_ms = faulty_ms;
        if search.fails(&c) {
            best = Scenario { seed: search.seed, ..c };
            break;
        }
    }
    for (register_keys, append_keys) in [(1, 0), (0, 1), (1, 1)] {
        if register_keys + append_keys >= best.register_keys + best.append_keys {
            continue;
        }
        let mut c = best.clone();
        (c.register_keys, c.append_keys) = (register_keys, append_keys);
        if search.fails(&c) {
            best = Scenario { seed: search.seed, ..c };
            break;
        }
    }
    // The file, and its replay from the text alone.
    let after = Size::of(&best);
    let header = format!(
        "Shrunk by `cargo sim shrink` from {} seed {}{}: it fails {check}.\nBefore: {before}.\nAfter:  {after}.\nReplay: cargo sim run THIS_FILE --seed {}",
        path.display(),
        original.seed,
        original.planted_bug.map_or(String::new(), |b| format!(" (planted bug {})", b.name())),
        best.seed,
    );
    let text = scenario::explicit(&best, &header);
    let shrunk_hash = run(&best).trace_hash;
    let replayed = resolve_text(&text, best.seed)?;
    let replay = run(&replayed);
    if replay.trace_hash != shrunk_hash || !replay.named(Outcome::Failed).contains(&check) {
        return Err(format!(
            "the written scenario replays to trace-hash {} ({:?}), not {shrunk_hash} (a bug of the shrinker)",
            replay.trace_hash,
            replay.named(Outcome::Failed)
        ));
    }
    Ok(Shrunk { scenario: replayed, text, check, before, after, runs: search.runs + 2, trace_hash: shrunk_hash })
}

/// `s` as its explicit file resolves it.
fn reparse(s: &Scenario) -> Result<Scenario, String> {
    let mut r = resolve_text(&scenario::explicit(s, ""), s.seed)?;
    r.path = s.path.clone();
    r.name = s.name.clone();
    Ok(r)
}

fn resolve_text(text: &str, seed: u64) -> Result<Scenario, String> {
    let path = Path::new("shrunk.toml");
    let file = scenario::parse(path, text).map_err(|e| format!("the shrinker wrote a scenario it cannot read: {e}"))?;
    Ok(Scenario::resolve(path, &file, seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ddmin on a predicate whose failure needs units 3 and 7 together finds exactly them.
    #[test]
    fn ddmin_finds_the_two_units_that_fail_together() {
        let units: Vec<Unit> = (0..20).map(Unit::Timed).collect();
        let mut tests = 0;
        let kept = ddmin(units, &mut |keep| {
            tests += 1;
            keep.contains(&Unit::Timed(3)) && keep.contains(&Unit::Timed(7))
        });
        assert_eq!(kept, [Unit::Timed(3), Unit::Timed(7)]);
        assert!(tests < 60, "{tests} tests");
    }

    #[test]
    fn ddmin_returns_nothing_when_nothing_is_needed() {
        let kept = ddmin((0..5).map(Unit::Site).collect(), &mut |_| true);
        assert!(kept.is_empty());
    }
}
