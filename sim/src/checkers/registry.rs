//! The checks a run is judged by, in the order the summary prints them: a name and a
//! function over the run's inputs. Adding a property is adding a line here.
//!
//! The Raft properties hold per group (every group is a Raft of its own); with several
//! groups their violations name the group.

use super::{
    applied_in_range, caught_up_promotion, directory_tiling, lost_writes, range_tiling, recoverable, replica_balance,
    replication_restored, state_machine_safety,
};
use super::{config_safety, election_safety, leader_completeness, linearizability, liveness, log_matching};
use crate::replay::{GroupReplay, Replay};
use crate::scenario::Scenario;
use crate::verdict::{RunOutput, LINEARIZABILITY_STEPS_MAX};

/// What a check reads: the scenario, what the run left behind, and its replay.
pub struct Inputs<'a> {
    pub scenario: &'a Scenario,
    pub run: &'a RunOutput,
    pub replay: &'a Replay<'a>,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Findings {
    pub violations: Vec<String>,
    /// What could not be decided (see `CheckResult::undecided`).
    pub undecided: Vec<String>,
    pub note: Option<String>,
}

impl Findings {
    fn violations(violations: Vec<String>) -> Self {
        Findings { violations, ..Findings::default() }
    }
}

pub struct Check {
    pub name: &'static str,
    pub run: fn(&Inputs) -> Findings,
}

pub const CHECKS: &[Check] = &[
    Check { name: "node_invariants", run: node_invariants },
    Check { name: "election_safety", run: |i| per_group(i, election_safety::check) },
    Check { name: "log_matching", run: |i| per_group(i, log_matching::check) },
    Check { name: "leader_completeness", run: |i| per_group(i, leader_completeness::check) },
    Check { name: "config_safety", run: |i| per_group(i, config_safety::check) },
    Check { name: "state_machine_safety", run: |i| per_group(i, state_machine_safety::check) },
    Check { name: "recoverable_state", run: |i| per_group(i, recoverable::check) },
    Check {
        name: "range_tiling",
        run: |i| Findings::violations(range_tiling::check(&i.run.trace, &i.scenario.keyspace())),
    },
    Check {
        name: "applied_in_range",
        run: |i| Findings::violations(applied_in_range::check(&i.run.trace, &i.scenario.keyspace())),
    },
    Check {
        name: "directory_tiling",
        run: |i| Findings::violations(directory_tiling::check(&i.run.trace, &i.scenario.keyspace())),
    },
    Check {
        name: "caught_up_promotion",
        run: |i| Findings::violations(caught_up_promotion::check(&i.run.trace, &i.scenario.keyspace())),
    },
    Check { name: "linearizability", run: linearizability },
    Check { name: "no_lost_writes", run: |i| Findings::violations(lost_writes::check(&i.run.history)) },
    Check { name: "liveness_after_heal", run: liveness_after_heal },
    Check { name: "replica_balance", run: replica_balance },
    Check { name: "replication_restored", run: replication_restored },
];

/// A panic inside a node is a broken invariant assertion.
fn node_invariants(i: &Inputs) -> Findings {
    Findings::violations(i.run.panic.iter().map(|m| format!("the run stopped on a panic: {m}")).collect())
}

fn per_group(i: &Inputs, check: fn(&GroupReplay) -> Vec<String>) -> Findings {
    let groups = &i.replay.groups;
    let violations = if groups.len() == 1 {
        groups.values().flat_map(check).collect()
    } else {
        groups.iter().flat_map(|(g, r)| check(r).into_iter().map(move |v| format!("group {g}: {v}"))).collect()
    };
    Findings::violations(violations)
}

fn linearizability(i: &Inputs) -> Findings {
    let history = &i.run.history;
    let lin = linearizability::check(history, LINEARIZABILITY_STEPS_MAX);
    let keys = history.iter().map(|o| o.key.as_str()).collect::<std::collections::BTreeSet<_>>().len();
    Findings {
        violations: lin.violations,
        undecided: undecided_keys(&lin.inconclusive, LINEARIZABILITY_STEPS_MAX),
        note: Some(format!("{keys} keys")),
    }
}

/// The keys whose linearizability search hit its budget, as undecided findings.
pub fn undecided_keys(keys: &[String], steps_max: u64) -> Vec<String> {
    keys.iter().map(|k| format!("key {k}: the search hit its budget of {steps_max} steps")).collect()
}

/// Judged only where the scenario requires it (`require_balance`): elsewhere the counts
/// are a note, since faults and splits late in a run leave placement no time to finish.
fn replica_balance(i: &Inputs) -> Findings {
    if i.run.panic.is_some() {
        return Findings { note: Some("not reached: the run stopped early".into()), ..Findings::default() };
    }
    let s = i.scenario;
    let servers: Vec<phantomdb::NodeId> = (1..=s.initial_voters).collect();
    let balance = replica_balance::replay(&i.run.trace, &s.keyspace(), &servers);
    let shown = balance.counts.values().map(usize::to_string).collect::<Vec<_>>().join(",");
    let mut note = format!("replicas per server {shown}");
    if let (Some(since), Some(added)) = (balance.balanced_since_ns, balance.last_added_ns) {
        let after_s = since.saturating_sub(added) as f64 / 1e9;
        note.push_str(&format!("; balanced {after_s:.1}s after the last node was added"));
    }
    if !s.require_balance {
        return Findings { note: Some(format!("not required; {note}")), ..Findings::default() };
    }
    Findings { violations: replica_balance::check(&balance.counts), undecided: vec![], note: Some(note) }
}

/// Judged where the scenario requires balance, as `replica_balance` is.
fn replication_restored(i: &Inputs) -> Findings {
    if i.run.panic.is_some() {
        return Findings { note: Some("not reached: the run stopped early".into()), ..Findings::default() };
    }
    let s = i.scenario;
    if !s.require_balance {
        return Findings { note: Some("not required".into()), ..Findings::default() };
    }
    let servers: Vec<phantomdb::NodeId> = (1..=s.initial_voters).collect();
    let ranges = replica_balance::replay(&i.run.trace, &s.keyspace(), &servers).ranges;
    let violations = replication_restored::check(&ranges, s.replication_factor as usize, &servers);
    let user_ranges = ranges.iter().filter(|r| r.id != phantomdb::keyspace::META_RANGE).count();
    Findings { violations, undecided: vec![], note: Some(format!("{user_ranges} ranges of user keys")) }
}

fn liveness_after_heal(i: &Inputs) -> Findings {
    let run = i.run;
    if run.panic.is_some() {
        return Findings { note: Some("not reached: the run stopped early".into()), ..Findings::default() };
    }
    Findings {
        violations: liveness::check(run.heal_ns, run.first_write_ns, i.scenario.liveness_timeout_ms),
        undecided: vec![],
        note: run
            .first_write_ns
            .map(|t| format!("first write {:.3}s after heal", (t.saturating_sub(run.heal_ns)) as f64 / 1e9)),
    }
}
