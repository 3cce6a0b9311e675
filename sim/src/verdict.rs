//! From a finished run to its verdict: every check of the registry
//! (`checkers::registry`) over the run and its replay, the trace hash, and the figures of
//! the summary.

use crate::checkers::registry::{Inputs, CHECKS};
use crate::checkers::{CheckResult, Outcome};
use crate::history::{Op, OpKind};
use crate::replay::Replay;
use crate::scenario::Scenario;
use crate::trace::{put, Fnv, TraceEvent, TraceKind};
use phantomdb::node::NodeEvent;
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
    /// What each buggify site did (empty when buggify was off), and how often each
    /// "sometimes" mark was reached.
    pub buggify: Vec<phantomdb::buggify::SiteReport>,
    pub marks: Vec<(&'static str, u64)>,
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
    /// The worst outcome of any check.
    pub fn outcome(&self) -> Outcome {
        self.checks.iter().map(CheckResult::outcome).max().unwrap_or(Outcome::Passed)
    }

    /// The names of the checks with this outcome.
    pub fn named(&self, outcome: Outcome) -> Vec<&'static str> {
        self.checks.iter().filter(|c| c.outcome() == outcome).map(|c| c.name).collect()
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

pub fn evaluate(scenario: &Scenario, out: &RunOutput) -> Verdict {
    let replay = Replay::of_run(&out.trace, &scenario.keyspace());
    let inputs = Inputs { scenario, run: out, replay: &replay };
    let checks = CHECKS
        .iter()
        .map(|c| {
            let found = (c.run)(&inputs);
            CheckResult { name: c.name, violations: found.violations, undecided: found.undecided, note: found.note }
        })
        .collect();
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
