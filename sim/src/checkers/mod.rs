//! Checkers: each property in its own file, each citing where it comes from, each with a
//! test that shows it failing on a violating trace or history. They read only the run's
//! trace (through its replay, `crate::replay`) and history, never the system's internals.
//! [`registry::CHECKS`] lists the checks a run is judged by.

pub mod config_safety;
pub mod election_safety;
pub mod leader_completeness;
pub mod linearizability;
pub mod liveness;
pub mod log_matching;
pub mod lost_writes;
pub mod registry;
pub mod state_machine_safety;

/// The most violations a checker reports (the first ones are the interesting ones).
pub const VIOLATIONS_MAX: usize = 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub violations: Vec<String>,
    /// A caveat that does not fail the run (e.g. a search budget was hit).
    pub note: Option<String>,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Collects at most [`VIOLATIONS_MAX`] violations and counts the rest.
#[derive(Debug, Default)]
pub struct Violations {
    list: Vec<String>,
    more: usize,
}

impl Violations {
    pub fn push(&mut self, v: String) {
        if self.list.len() < VIOLATIONS_MAX {
            self.list.push(v);
        } else {
            self.more += 1;
        }
    }
    pub fn into_vec(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list.push(format!("… and {} more", self.more));
        }
        self.list
    }
}
