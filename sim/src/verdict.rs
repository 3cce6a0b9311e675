//! From a finished run to its verdict: every checker, the trace hash, and the figures of
//! the summary.

use crate::checkers::{self, CheckResult};
use crate::history::{Op, OpKind};
use crate::scenario::Scenario;
use crate::trace::{put, Fnv, TraceEvent, TraceKind};
use phantomdb::node::NodeEvent;
use phantomdb::NodeId;
use serde::Serialize;

/// What a run leaves behind for the checkers.
pub struct RunOutput {
    pub trace: Vec<TraceEvent>,
    pub history: Vec<Op>,
    pub heal_ns: u64,
    pub first_write_ns: Option<u64>,
    pub simulated_ns: u64,
    /// The message of a panic that ended the run early (a broken invariant).
    pub panic: Option<String>,
}

/// Search steps the linearizability checker may take per key.
pub const LINEARIZABILITY_STEPS_MAX: u64 = 5_000_000;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub simulated_s: f64,
    pub ops: usize,
    pub ops_ok: usize,
    pub ops_unknown: usize,
    pub reads: usize,
    /// Reads leaders answered from their lease, and followers' clocks they caught beyond
    /// the drift bound.
    pub lease_reads: usize,
    pub drift_violations: usize,
    pub elections_won: usize,
    pub faults: usize,
    pub trace_events: usize,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub checks: Vec<CheckResult>,
    pub trace_hash: String,
    pub stats: Stats,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(CheckResult::passed)
    }
}

/// The digest of a run: the binary encoding of every trace event and every client
/// operation, in order, and of the panic that ended it, if one did.
pub fn trace_hash(out: &RunOutput) -> u64 {
    let mut h = Fnv::default();
    for e in &out.trace {
        e.encode(&mut h);
    }
    for op in &out.history {
        put(&mut h, op);
    }
    put(&mut h, &out.panic);
    h.finish()
}

/// Runs a check of one Raft group's history on each group's own events (every group is a
/// Raft of its own); violations name their group when there are several.
fn per_group(scenario: &Scenario, trace: &[TraceEvent], check: impl Fn(&[TraceEvent]) -> Vec<String>) -> Vec<String> {
    if scenario.groups == 1 {
        return check(trace);
    }
    let mut out = Vec::new();
    for g in 1..=scenario.groups {
        let own: Vec<TraceEvent> =
            trace.iter().filter(|e| !matches!(e.kind, TraceKind::Node { group, .. } if group != g)).cloned().collect();
        out.extend(check(&own).into_iter().map(|v| format!("group {g}: {v}")));
    }
    out
}

pub fn evaluate(scenario: &Scenario, out: &RunOutput) -> Verdict {
    let lin = checkers::linearizability::check(&out.history, LINEARIZABILITY_STEPS_MAX);
    let completed = out.panic.is_none();
    let keys = out.history.iter().map(|o| o.key.as_str()).collect::<std::collections::BTreeSet<_>>().len();
    let lin_note = if lin.inconclusive.is_empty() {
        Some(format!("{keys} keys"))
    } else {
        Some(format!("{keys} keys; search budget hit (not checked) on {:?}", lin.inconclusive))
    };
    let first_write = out
        .first_write_ns
        .map(|t| format!("first write {:.3}s after heal", (t.saturating_sub(out.heal_ns)) as f64 / 1e9));
    let checks = vec![
        CheckResult {
            name: "node_invariants",
            violations: out.panic.iter().map(|m| format!("the run stopped on a panic: {m}")).collect(),
            note: None,
        },
        CheckResult {
            name: "election_safety",
            violations: per_group(scenario, &out.trace, checkers::election_safety::check),
            note: None,
        },
        CheckResult {
            name: "log_matching",
            violations: per_group(scenario, &out.trace, checkers::log_matching::check),
            note: None,
        },
        CheckResult {
            name: "leader_completeness",
            violations: per_group(scenario, &out.trace, checkers::leader_completeness::check),
            note: None,
        },
        CheckResult {
            name: "config_safety",
            violations: per_group(scenario, &out.trace, |t| {
                checkers::config_safety::check(t, &(1..=scenario.initial_voters).collect::<Vec<NodeId>>())
            }),
            note: None,
        },
        CheckResult {
            name: "state_machine_safety",
            violations: per_group(scenario, &out.trace, checkers::state_machine_safety::check),
            note: None,
        },
        CheckResult { name: "linearizability", violations: lin.violations, note: lin_note },
        CheckResult { name: "no_lost_writes", violations: checkers::lost_writes::check(&out.history), note: None },
        CheckResult {
            name: "liveness_after_heal",
            violations: if completed {
                checkers::liveness::check(out.heal_ns, out.first_write_ns, scenario.liveness_timeout_ms)
            } else {
                vec![]
            },
            note: if completed { first_write } else { Some("not reached: the run stopped early".into()) },
        },
    ];
    let stats = Stats {
        simulated_s: out.simulated_ns as f64 / 1e9,
        ops: out.history.len(),
        ops_ok: out.history.iter().filter(|o| !o.unknown).count(),
        ops_unknown: out.history.iter().filter(|o| o.unknown).count(),
        reads: out.history.iter().filter(|o| o.op == OpKind::Get).count(),
        lease_reads: out
            .trace
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::Node { event: NodeEvent::LeaseRead { .. }, .. }))
            .count(),
        drift_violations: out
            .trace
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::Node { event: NodeEvent::ClockDriftExceeded { .. }, .. }))
            .count(),
        elections_won: out
            .trace
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::Node { event: NodeEvent::BecameLeader { .. }, .. }))
            .count(),
        faults: out.trace.iter().filter(|e| matches!(e.kind, TraceKind::Fault(_))).count(),
        trace_events: out.trace.len(),
    };
    Verdict { checks, trace_hash: format!("{:016x}", trace_hash(out)), stats }
}
