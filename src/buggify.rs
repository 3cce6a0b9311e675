//! Fault points inside product code (FoundationDB's `BUGGIFY`): `buggify!("site")` is a
//! condition that is always `false` in the real build and, in the simulated build, true
//! now and then at sites the simulator armed for this run.
//!
//! ```text
//!   simulator: armed_sites(seed) ─▶ each site of SITES armed with ARM_PROBABILITY, by a
//!                                   hash of (seed, site), or a scenario pins the set
//!              enable(seed, armed) ─▶ the armed set is known before the run starts
//!   product:   buggify!("site") ─▶ armed? ─▶ fires with FIRE_PROBABILITY (the run's seeded
//!                                            stream, drawn in evaluation order)
//!   simulator: disable() ─▶ per site: armed, evaluated, fired (for the report)
//! ```
//!
//! Contract for a site: firing is always *allowed* behaviour (a slow disk, a message
//! split or dropped, work done early or late), never a broken promise; the code under it
//! must stay correct whichever way it goes. Every site is listed in [`SITES`] with what it
//! does, so a report can name sites that never fired.
//!
//! Determinism: arming is a function of the seed alone; firing draws from a ChaCha stream
//! seeded by the seed, in the order sites are evaluated, which madsim makes the same on
//! every run of the seed.

/// Every fault point in the product, with what firing does there.
pub const SITES: &[(&str, &str)] = &[
    ("split_frames", "a node sends each Raft message of a batch in a frame of its own instead of one per peer"),
    ("delay_frame", "a peer's send queue holds a frame back for 10 ms (later frames wait behind it)"),
    ("snapshot_early", "a replica compacts its log after a few applied entries instead of snapshot_entries_min"),
    ("pause_apply", "a replica leaves committed entries unapplied until a later batch"),
    ("small_windows", "a replica starts with one entry per append and one append in flight per follower"),
];

/// FoundationDB's reference: a quarter of the sites armed per run, each firing a quarter
/// of the times it is reached.
pub const ARM_PROBABILITY: f64 = 0.25;
pub const FIRE_PROBABILITY: f64 = 0.25;

/// What one site did in a run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SiteReport {
    pub site: &'static str,
    pub armed: bool,
    pub evaluated: u64,
    pub fired: u64,
}

/// `buggify!("site")`: whether to take the fault path here, now. `false` in the real build
/// (the condition compiles to a constant).
#[macro_export]
macro_rules! buggify {
    ($site:literal) => {{
        #[cfg(madsim)]
        let fire = $crate::buggify::fires($site);
        #[cfg(not(madsim))]
        let fire = false;
        fire
    }};
}

/// The sites a seed arms when its scenario does not pin them.
pub fn armed_sites(seed: u64) -> Vec<&'static str> {
    SITES.iter().map(|&(s, _)| s).filter(|s| armed(seed, s)).collect()
}

/// A uniform draw in [0, 1) from (seed, site): FNV-1a over both, then MurmurHash3's
/// finaliser, so that neighbouring seeds arm unrelated sets.
fn armed(seed: u64, site: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(site.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    ((h >> 11) as f64 / (1u64 << 53) as f64) < ARM_PROBABILITY
}

#[cfg(madsim)]
pub use sim::{disable, enable, fires};

#[cfg(madsim)]
mod sim {
    use super::{SiteReport, FIRE_PROBABILITY, SITES};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::cell::RefCell;

    struct Run {
        sites: Vec<SiteReport>,
        rng: ChaCha8Rng,
    }

    thread_local! {
        /// The run in progress on this thread (`None`: buggify is off, every site is
        /// `false`). Per thread: madsim runs a whole world on the thread that started it,
        /// and worlds on other threads (parallel tests) must not share draws.
        static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
    }

    /// Arms `armed` (sites of `SITES`: most often `armed_sites(seed)`) for a run of
    /// `seed`; until `disable`, armed sites fire.
    pub fn enable(seed: u64, armed: &[&str]) {
        for a in armed {
            assert!(SITES.iter().any(|&(s, _)| s == *a), "buggify site {a:?} is not listed in buggify::SITES");
        }
        let sites = SITES
            .iter()
            .map(|&(site, _)| SiteReport { site, armed: armed.contains(&site), evaluated: 0, fired: 0 })
            .collect();
        // A stream of its own: buggify draws leave every other seeded draw as it was.
        let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4255_4747_4946_5921);
        RUN.with(|r| *r.borrow_mut() = Some(Run { sites, rng }));
    }

    /// Ends the run: every site with what it did (empty if buggify was off).
    pub fn disable() -> Vec<SiteReport> {
        RUN.with(|r| r.borrow_mut().take()).map_or_else(Vec::new, |r| r.sites)
    }

    pub fn fires(site: &'static str) -> bool {
        RUN.with(|r| {
            let mut guard = r.borrow_mut();
            let Some(run) = guard.as_mut() else { return false };
            let Some(s) = run.sites.iter_mut().find(|s| s.site == site) else {
                panic!("buggify site {site:?} is not listed in buggify::SITES");
            };
            s.evaluated += 1;
            if !s.armed {
                return false;
            }
            let fire = run.rng.gen_bool(FIRE_PROBABILITY);
            if fire {
                s.fired += 1;
            }
            fire
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_a_quarter_of_the_sites_are_armed_and_the_set_depends_on_the_seed_only() {
        let runs = 2_000u64;
        let armed: usize = (0..runs).map(|seed| armed_sites(seed).len()).sum();
        let share = armed as f64 / (runs as f64 * SITES.len() as f64);
        assert!((0.2..0.3).contains(&share), "{share}");
        assert_eq!(armed_sites(7), armed_sites(7));
        assert!((0..50).any(|s| armed_sites(s) != armed_sites(7)), "seeds arm different sets");
    }

    #[test]
    fn site_names_are_unique() {
        let mut names: Vec<&str> = SITES.iter().map(|&(s, _)| s).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SITES.len());
    }

    #[cfg(not(madsim))]
    #[test]
    fn the_real_build_never_fires() {
        assert!(!crate::buggify!("split_frames"));
    }
}
