//! `--timeline FILE`: one run as a self-contained HTML page: inline CSS, SVG and script,
//! nothing fetched (no network, no fonts), so the file can be mailed or attached to a bug.
//!
//! What it shows, on one simulated-time axis (x: milliseconds in the SVG's own units, so
//! zooming is one `viewBox` change; the script only rescales and draws the axis):
//! - a **faults** lane: a tick per fault the schedule fired (what it did, or why it was
//!   skipped), and bands while a link fault (loss, duplication, latency) is in force;
//! - a lane per **node**: up (follower), down after a crash, stopped on a storage failure
//!   (`Poisoned`), and one row per Raft group with a bar while it leads (`BecameLeader`;
//!   the term in the bar's tooltip, alternate terms shaded apart). The trace records no
//!   step-down and no candidacy, so a bar ends at the next election won in its group, the
//!   node's crash or failure, or the end of the run: a leader cut off by a partition may
//!   have gone on believing it leads, and candidates are not shown. Partitions are bands
//!   across the node lanes, one colour per side (an isolated node in its own colour),
//!   clogged links a strip at the bottom of the sending node's lane; restarts
//!   (`Recovered`), truncations, snapshot installs, configuration entries, clock skews and
//!   disk errors are ticks;
//! - a **commits** lane per group: a tick per advance of the group's commit index (the
//!   highest any node reported);
//! - a lane per **client** (`c1`…, then `probe` and `final`): a bar per operation from
//!   call to return, coloured by outcome: ok, failed (a compare-and-set that did not swap:
//!   it is known not to have taken effect) or unknown (timeout or crash);
//! - the phases (the healed phase shaded) and, when a check failed, a banner with
//!   `id="violation"` naming each failed check and its first violations. Linearizability
//!   failures are pointed at: every operation on a failing key is outlined, the one no
//!   order explains is drawn thick red, and a button zooms to it. A panic marks the time
//!   the run stopped. The Raft checks report text only (no structured events), so for
//!   them the banner shows their text. Without a failed check the page has no element
//!   with that id.
//!
//! Bounds, so that a long run gives a page of a few megabytes at most (about 200 bytes
//! per drawn element, most of it the tooltip): at most [`OPS_PER_CLIENT_MAX`] operation
//! bars per client lane (a busier lane is drawn as [`BUCKETS`] stacked bars of outcome
//! counts instead, the operations of failing keys still drawn one by one, at most
//! [`HIGHLIGHTED_MAX`] of them); at most [`COMMIT_TICKS_MAX`] commit ticks per group (else
//! [`BUCKETS`] bars of entries committed); at most [`LEADER_BARS_MAX`] leader bars,
//! [`BANDS_MAX`] bands, [`FAULT_TICKS_MAX`] fault ticks and [`NODE_TICKS_MAX`] ticks per
//! node; tooltip values cut at [`VALUE_CHARS_MAX`] characters; at most
//! [`VIOLATIONS_SHOWN`] violations per failed check, each cut at [`VIOLATION_CHARS_MAX`].
//! What a bound left out is counted in the page's footer, never silently dropped.
//!
//! Deterministic: the page is a function of the run (no wall-clock time, every map
//! ordered), so the same seed gives the same bytes.

mod draw;
mod nodes;

use crate::checkers::{self, CheckResult};
use crate::faults::{link, FaultEvent};
use crate::history::{Op, OpOutput};
use crate::scenario::Scenario;
use crate::trace::{Phase, TraceEvent, TraceKind};
use crate::verdict::{RunOutput, Verdict, LINEARIZABILITY_STEPS_MAX};
use draw::{esc, ms, secs, Cap, Plot};
use phantomdb::node::NodeEvent;
use phantomdb::GroupId;
use std::collections::{BTreeMap, BTreeSet};

pub const OPS_PER_CLIENT_MAX: usize = 1_500;
pub const BUCKETS: u64 = 600;
pub const HIGHLIGHTED_MAX: usize = 2_000;
pub const COMMIT_TICKS_MAX: usize = 2_000;
pub const LEADER_BARS_MAX: usize = 2_000;
pub const BANDS_MAX: usize = 2_000;
pub const FAULT_TICKS_MAX: usize = 2_000;
pub const NODE_TICKS_MAX: usize = 300;
pub const VALUE_CHARS_MAX: usize = 40;
pub const VIOLATIONS_SHOWN: usize = 3;
pub const VIOLATION_CHARS_MAX: usize = 3_000;

/// Operations on the failing key shown before the unexplained one when zooming to it.
const CONTEXT_OPS: usize = 8;

/// The page for one run.
pub fn render(scenario: &Scenario, out: &RunOutput, verdict: &Verdict) -> String {
    let end_ns = out
        .trace
        .iter()
        .map(|e| e.t_ns)
        .chain(out.history.iter().map(|o| o.ret))
        .chain([out.simulated_ns, 1])
        .max()
        .expect("not empty");
    let failures = Failures::of(verdict, out, end_ns);
    let mut plot = Plot::new(end_ns);
    phases(&mut plot, &out.trace);
    faults_lane(&mut plot, &out.trace);
    nodes::lanes(&mut plot, scenario, &out.trace);
    commit_lanes(&mut plot, scenario.groups, &out.trace);
    client_lanes(&mut plot, &out.history, &failures);
    if let Some(t) = failures.panic_at {
        plot.full_line(2, t, "stopped", &format!("the run stopped on a panic at {}", secs(t)));
    }
    draw::page(scenario, verdict, &banner(&failures), plot)
}

/// What the failed checks name, in a form the lanes can mark.
struct Failures<'a> {
    failed: Vec<&'a CheckResult>,
    /// Keys linearizability failed on, with the operation no order explains.
    unexplained: Vec<(String, Op)>,
    /// For each of those, the time range that shows it and the operations on its key
    /// just before it.
    zooms: Vec<(u64, u64)>,
    keys: BTreeSet<String>,
    panic_at: Option<u64>,
    end_ns: u64,
}

impl<'a> Failures<'a> {
    fn of(verdict: &'a Verdict, out: &RunOutput, end_ns: u64) -> Self {
        let failed: Vec<&CheckResult> = verdict.checks.iter().filter(|c| !c.violations.is_empty()).collect();
        // The verdict keeps only the checker's text; asking the checker again (only for a
        // page, only when it failed) gives the keys and operations as data.
        let unexplained = if failed.iter().any(|c| c.name == "linearizability") {
            checkers::linearizability::check(&out.history, LINEARIZABILITY_STEPS_MAX).unexplained
        } else {
            Vec::new()
        };
        let zooms = unexplained
            .iter()
            .map(|(key, op)| {
                let mut calls: Vec<u64> =
                    out.history.iter().filter(|o| o.key == *key && o.call <= op.call).map(|o| o.call).collect();
                calls.sort_unstable();
                let from = calls.get(calls.len().saturating_sub(CONTEXT_OPS + 1)).copied().unwrap_or(op.call);
                (from, op.ret)
            })
            .collect();
        let keys = unexplained.iter().map(|(k, _)| k.clone()).collect();
        let panic_at = out.panic.as_ref().map(|_| out.simulated_ns);
        Failures { failed, unexplained, zooms, keys, panic_at, end_ns }
    }

    fn is_unexplained(&self, op: &Op) -> bool {
        self.unexplained.iter().any(|(_, u)| u == op)
    }
}

/// The violation banner's HTML, empty when every check passed: a line per failed check
/// (its first violation; the first few in full when opened), and what the lanes mark.
fn banner(f: &Failures) -> String {
    if f.failed.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = f.failed.iter().map(|c| c.name).collect();
    let mut html = format!("<div id=\"violation\" class=\"violation\"><h2>FAIL: {}</h2>", esc(&names.join(", ")));
    for c in &f.failed {
        let first = c.violations[0].lines().next().unwrap_or_default();
        html += &format!(
            "<details><summary><b>{}</b> ({} violation{}): {}</summary>",
            esc(c.name),
            c.violations.len(),
            if c.violations.len() == 1 { "" } else { "s" },
            esc(&draw::cut(first, 300))
        );
        for v in c.violations.iter().take(VIOLATIONS_SHOWN) {
            html += &format!("<pre>{}</pre>", esc(&draw::cut(v, VIOLATION_CHARS_MAX)));
        }
        if c.violations.len() > VIOLATIONS_SHOWN {
            html += &format!("<p>… {} more in the run's output</p>", c.violations.len() - VIOLATIONS_SHOWN);
        }
        html += "</details>";
        if c.name == "linearizability" {
            for ((key, op), &(from, to)) in f.unexplained.iter().zip(&f.zooms) {
                html += &format!(
                    "<p class=\"points\">key <b>{}</b>: no order of its operations explains \
                     <b class=\"blocked-text\">{}</b> (thick red below; the key's other operations outlined) \
                     <button class=\"zoom\" data-from=\"{}\" data-to=\"{}\">zoom to it</button></p>",
                    esc(&format!("{key:?}")),
                    esc(&draw::describe(op)),
                    ms(from),
                    ms(to)
                );
            }
        }
        if let (Some(t), "node_invariants") = (f.panic_at, c.name) {
            html += &format!(
                "<p class=\"points\">the run stopped at {} (the red line) <button class=\"zoom\" data-from=\"{}\" \
                 data-to=\"{}\">zoom to its last second</button></p>",
                secs(t),
                ms(t.saturating_sub(1_000_000_000)),
                ms(f.end_ns)
            );
        }
    }
    html + "</div>"
}

fn phases(plot: &mut Plot, trace: &[TraceEvent]) {
    let mut healed = None;
    for e in trace {
        if let TraceKind::Phase(p) = &e.kind {
            plot.full_line(0, e.t_ns, "phase", &format!("phase {p} from {}", secs(e.t_ns)));
            match p {
                Phase::Healed => healed = Some(e.t_ns),
                Phase::FinalReads | Phase::End => {
                    if let Some(from) = healed.take() {
                        plot.full_rect(0, from, e.t_ns, "healed", "healed phase: every fault undone");
                    }
                }
                Phase::Faulty => {}
            }
        }
    }
}

fn faults_lane(plot: &mut Plot, trace: &[TraceEvent]) {
    let lane = plot.lane("faults", 16);
    let mut ticks = Cap::new("fault ticks", FAULT_TICKS_MAX);
    let mut bands = Cap::new("link fault bands", BANDS_MAX);
    // Link faults are cluster-wide: one band per kind from the fault to its restoring.
    let mut link_open: BTreeMap<&'static str, (u64, String)> = BTreeMap::new();
    for e in trace {
        let TraceKind::Fault(f) = &e.kind else { continue };
        if plot.allow(&mut ticks) {
            let class = match f {
                FaultEvent::Skipped { .. } => "fault skipped",
                _ => "fault",
            };
            plot.line(2, e.t_ns, lane, 16, class, &format!("{} {f}", secs(e.t_ns)));
        }
        if let FaultEvent::Link(a) = f {
            let (kind, restored) = match a {
                link::Applied::Loss { restored, .. } => ("loss", *restored),
                link::Applied::Duplicate { restored, .. } => ("duplicate", *restored),
                link::Applied::Latency { restored, .. } => ("latency", *restored),
            };
            if let Some((from, what)) = link_open.remove(kind) {
                if plot.allow(&mut bands) {
                    plot.rect(
                        0,
                        (from, e.t_ns),
                        (lane, 16),
                        "linkband",
                        &format!("{what}, {}–{}", secs(from), secs(e.t_ns)),
                    );
                }
            }
            if !restored {
                link_open.insert(kind, (e.t_ns, a.to_string()));
            }
        }
    }
    let end = plot.end_ns;
    for (from, what) in link_open.into_values() {
        if plot.allow(&mut bands) {
            plot.rect(0, (from, end), (lane, 16), "linkband", &format!("{what}, {}–end", secs(from)));
        }
    }
}

fn commit_lanes(plot: &mut Plot, groups: u64, trace: &[TraceEvent]) {
    // (time, from, to) of each advance of a group's commit index.
    let mut advances: BTreeMap<GroupId, Vec<(u64, u64, u64)>> = (1..=groups).map(|g| (g, Vec::new())).collect();
    let mut high: BTreeMap<GroupId, u64> = BTreeMap::new();
    for e in trace {
        if let TraceKind::Node { group, event: NodeEvent::Committed { index }, .. } = &e.kind {
            let h = high.entry(*group).or_default();
            if *index > *h {
                advances.entry(*group).or_default().push((e.t_ns, *h, *index));
                *h = *index;
            }
        }
    }
    for (g, adv) in advances {
        let label = if groups == 1 { "commits".to_string() } else { format!("commits g{g}") };
        let y = plot.lane(&label, 14);
        if adv.len() <= COMMIT_TICKS_MAX {
            for (t, from, to) in adv {
                plot.line(1, t, y, 14, "commit", &format!("{} group {g} commit index {from} → {to}", secs(t)));
            }
            continue;
        }
        // Too many to draw one by one: entries committed per bucket, as bar heights.
        let mut per: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new(); // bucket -> (advances, from, to)
        for (t, from, to) in adv {
            let b = per.entry(plot.bucket(t)).or_insert((0, from, to));
            b.0 += 1;
            b.2 = to;
        }
        let most = per.values().map(|&(_, f, t)| t - f).max().unwrap_or(1).max(1);
        for (b, (n, from, to)) in per {
            let h = (((to - from) * 14).div_ceil(most) as u32).clamp(1, 14);
            let (t0, t1) = plot.bucket_span(b);
            let title = format!("group {g}: commit index {from} → {to} in {n} advances, {}–{}", secs(t0), secs(t1));
            plot.rect(1, (t0, t1), (y + 14 - h, h), "commit", &title);
        }
    }
}

/// `c1, c2, …, c10` in numeric order, then the others (`probe`, `final`) by name.
fn client_order(name: &str) -> (u8, u64, String) {
    match name.strip_prefix('c').and_then(|n| n.parse().ok()) {
        Some(n) => (0, n, String::new()),
        None => (1, 0, name.to_string()),
    }
}

fn outcome_class(op: &Op) -> &'static str {
    if op.unknown {
        "unk"
    } else if matches!(op.output, Some(OpOutput::Cas { swapped: false, .. })) {
        "fail"
    } else {
        "ok"
    }
}

fn client_lanes(plot: &mut Plot, history: &[Op], failures: &Failures) {
    let mut by_client: BTreeMap<(u8, u64, String), (&str, Vec<&Op>)> = BTreeMap::new();
    for op in history {
        by_client.entry(client_order(&op.client)).or_insert((op.client.as_str(), Vec::new())).1.push(op);
    }
    let mut highlighted = Cap::new("highlighted operations", HIGHLIGHTED_MAX);
    const H: u32 = 12;
    for (name, ops) in by_client.into_values() {
        let y = plot.lane(name, H);
        let one_by_one = ops.len() <= OPS_PER_CLIENT_MAX;
        if !one_by_one {
            // Outcome counts per bucket, stacked: ok at the bottom, then failed, unknown.
            let mut per: BTreeMap<u64, [u32; 3]> = BTreeMap::new();
            for op in &ops {
                let i = match outcome_class(op) {
                    "ok" => 0,
                    "fail" => 1,
                    _ => 2,
                };
                per.entry(plot.bucket(op.call)).or_default()[i] += 1;
            }
            for (b, counts) in per {
                let (t0, t1) = plot.bucket_span(b);
                let total: u32 = counts.iter().sum();
                let title = format!(
                    "{name}: {total} operations ({} ok, {} failed, {} unknown) called {}–{}",
                    counts[0],
                    counts[1],
                    counts[2],
                    secs(t0),
                    secs(t1)
                );
                // Band edges at the rounded cumulative shares, so the bands fill the lane.
                let edge = |k: u32| (k * H + total / 2) / total;
                let mut below = 0;
                for (count, class) in counts.iter().zip(["ok agg", "fail agg", "unk agg"]) {
                    if *count > 0 {
                        let (lo, hi) = (edge(below), edge(below + count));
                        let h = (hi - lo).max(1);
                        plot.rect(1, (t0, t1), (y + H - (lo + h).min(H), h), class, &title);
                        below += count;
                    }
                }
            }
        }
        for op in ops {
            // The unexplained operations always; the rest of their keys' within a bound.
            let mark = if failures.is_unexplained(op) {
                Some(" blocked")
            } else if failures.keys.contains(&op.key) && plot.allow(&mut highlighted) {
                Some(" onkey")
            } else {
                None
            };
            match mark {
                Some(mark) => {
                    let class = format!("{}{mark}", outcome_class(op));
                    plot.rect(2, (op.call, op.ret), (y, H), &class, &draw::describe(op))
                }
                None if one_by_one => plot.rect(1, (op.call, op.ret), (y, H), outcome_class(op), &draw::describe(op)),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::linearizability::tests::{get, put};
    use crate::scenario;
    use crate::verdict::Stats;
    use phantomdb::NodeId;
    use std::path::Path;

    fn scenario() -> Scenario {
        let path = Path::new("t.toml");
        let file = scenario::parse(path, "name = \"t\"\n[cluster]\nnodes = 3\n").expect("parses");
        Scenario::resolve(path, &file, 1)
    }

    fn run(history: Vec<Op>, trace: Vec<TraceEvent>) -> RunOutput {
        RunOutput {
            trace,
            history,
            heal_ns: 0,
            first_write_ns: None,
            simulated_ns: 1_000_000_000,
            panic: None,
            buggify: Vec::new(),
            marks: Vec::new(),
        }
    }

    fn verdict(checks: Vec<CheckResult>) -> Verdict {
        let stats = Stats {
            simulated_s: 1.0,
            ops: 0,
            ops_ok: 0,
            ops_unknown: 0,
            reads: 0,
            lease_reads: 0,
            drift_violations: 0,
            elections_won: 0,
            faults: 0,
            trace_events: 0,
        };
        Verdict { checks, trace_hash: "0".into(), stats }
    }

    fn check(name: &'static str, violations: Vec<String>) -> CheckResult {
        CheckResult { name, violations, undecided: Vec::new(), note: None }
    }

    fn leader(t_ns: u64, node: NodeId, term: u64) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group: 1, event: NodeEvent::BecameLeader { term } } }
    }

    #[test]
    fn a_passing_run_has_no_violation_marker() {
        let page = render(&scenario(), &run(vec![put("c1", "1", 0, 10)], vec![leader(5, 2, 1)]), &verdict(vec![]));
        assert!(!page.contains("id=\"violation\""));
        assert!(page.contains("n2 leads group 1 in term 1"), "the leader bar");
    }

    #[test]
    fn a_stale_read_outlines_its_key_and_marks_the_unexplained_read() {
        let history = vec![put("c1", "1", 0, 10), put("c1", "2", 20, 30), get("c2", Some("1"), 40, 50)];
        let lin = checkers::linearizability::check(&history, 1_000);
        let page = render(&scenario(), &run(history, vec![]), &verdict(vec![check("linearizability", lin.violations)]));
        assert!(page.contains("id=\"violation\""));
        assert_eq!(page.matches("class=\"ok blocked\"").count(), 1, "the stale read");
        assert_eq!(page.matches("class=\"ok onkey\"").count(), 2, "the writes");
        assert!(page.contains("zoom to it"));
    }

    #[test]
    fn a_busy_client_is_drawn_in_buckets_within_the_bound() {
        let history: Vec<Op> = (0..10 * OPS_PER_CLIENT_MAX as u64)
            .map(|i| put("c1", &i.to_string(), i * 50_000, i * 50_000 + 40_000))
            .collect();
        let page = render(&scenario(), &run(history, vec![]), &verdict(vec![]));
        let bars = page.matches("<rect").count();
        assert!(bars <= BUCKETS as usize + 50, "{bars} rects");
        assert!(page.contains("ok agg"));
    }

    #[test]
    fn what_a_bound_leaves_out_is_counted() {
        let trace = (0..LEADER_BARS_MAX as u64 + 10).map(|i| leader(i * 1000, 1 + i % 3, i + 1)).collect();
        let page = render(&scenario(), &run(vec![], trace), &verdict(vec![]));
        assert!(page.contains("10 leader bars"), "footer counts what was not drawn");
    }
}
