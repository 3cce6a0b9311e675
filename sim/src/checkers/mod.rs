//! Checkers: each property in its own file, each citing where it comes from, each with a
//! test that shows it failing on a violating trace or history. They read only the run's
//! trace (through its replay, `crate::replay`) and history, never the system's internals.
//! [`registry::CHECKS`] lists the checks a run is judged by.

pub mod applied_in_range;
pub mod brute_force;
pub mod caught_up_promotion;
pub mod config_safety;
pub mod directory_tiling;
pub mod election_safety;
pub mod leader_completeness;
pub mod linearizability;
pub mod liveness;
pub mod log_matching;
pub mod lost_writes;
pub mod range_tiling;
pub mod recoverable;
pub mod registry;
pub mod replica_balance;
pub mod replication_restored;
pub mod state_machine_safety;

/// The most violations a checker reports (the first ones are the interesting ones).
pub const VIOLATIONS_MAX: usize = 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub violations: Vec<String>,
    /// What the check could not decide (e.g. a key whose search hit its budget): neither
    /// a pass nor a failure.
    pub undecided: Vec<String>,
    /// A remark that changes nothing (what was checked, how long something took).
    pub note: Option<String>,
}

/// A check's outcome, and a run's: the worst of its checks'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    /// Nothing failed, but something could not be decided: never a pass.
    Inconclusive,
    Failed,
}

impl Outcome {
    /// The process exit code of a run with this outcome (see `cli::USAGE`).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Failed => 1,
            Outcome::Inconclusive => 3,
        }
    }
}

impl CheckResult {
    pub fn outcome(&self) -> Outcome {
        if !self.violations.is_empty() {
            Outcome::Failed
        } else if !self.undecided.is_empty() {
            Outcome::Inconclusive
        } else {
            Outcome::Passed
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn result(violations: &[&str], undecided: &[&str]) -> CheckResult {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CheckResult { name: "t", violations: strings(violations), undecided: strings(undecided), note: None }
    }

    #[test]
    fn an_undecided_check_is_inconclusive_and_a_violation_fails_it() {
        assert_eq!(result(&[], &[]).outcome(), Outcome::Passed);
        assert_eq!(result(&[], &["key r1"]).outcome(), Outcome::Inconclusive);
        assert_eq!(result(&["bad"], &["key r1"]).outcome(), Outcome::Failed);
    }
}
