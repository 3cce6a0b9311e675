//! Parsing and validating a scenario file. Parsing is strict (unknown fields are
//! errors) and every error names the file, the line and the field; a file that passes
//! resolves, for any seed, to a bounded schedule.

use super::file::{FaultSpec, NemesisSpec, ScenarioFile};
use super::SCHEDULE_FAULTS_MAX;
use super::{
    Scenario, CLIENTS_MAX, DISK_SYNC_MS_MAX, FAULTY_MS_DEFAULT, KEYS_MAX, NEMESIS_INTERVAL_MS_DEFAULT, PHASE_MS_MAX,
};
use crate::faults::clock::{CLOCK_DRIFT_PPM_MAX, CLOCK_OFFSET_MS_MAX};
use crate::faults::{FaultKind, SpecError};
use std::path::{Path, PathBuf};

/// A scenario error: where, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, column)
}

/// Reads and parses a scenario file.
pub fn load(path: &Path) -> Result<ScenarioFile, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the scenario: {e}"),
    })?;
    parse(path, &text)
}

/// Parses scenario text; `path` is only used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<ScenarioFile, ScenarioError> {
    let file: ScenarioFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        let message = e.message().to_string();
        // serde names the offending field in backquotes; lift it into its own slot.
        let field = message.split('`').nth(1).unwrap_or_default().to_string();
        ScenarioError { file: path.to_path_buf(), line, column, field, message }
    })?;
    let err = |span: std::ops::Range<usize>, field: &str, message: String| {
        let (line, column) = line_col(text, span.start);
        ScenarioError { file: path.to_path_buf(), line, column, field: field.to_string(), message }
    };
    let nodes = file.cluster.nodes.unwrap_or(5);
    if let Some(v) = file.cluster.voters {
        if v == 0 || v > nodes {
            return Err(err(find(text, "voters"), "cluster.voters", format!("{v}: expected 1 to nodes ({nodes})")));
        }
    }
    if file.cluster.append_entries_max == Some(0) {
        return Err(err(find(text, "append_entries_max"), "cluster.append_entries_max", "must be at least 1".into()));
    }
    if file.cluster.lease_reads == Some(true) && file.cluster.check_quorum == Some(false) {
        return Err(err(
            find(text, "lease_reads"),
            "cluster.lease_reads",
            "lease reads need check_quorum (a follower's vote lease backs the leader's)".into(),
        ));
    }
    if let Some(ppm) = file.cluster.clock_drift_ppm_max {
        if ppm > 500_000 {
            return Err(err(
                find(text, "clock_drift_ppm_max"),
                "cluster.clock_drift_ppm_max",
                format!("{ppm}: expected 0 to 500000"),
            ));
        }
    }
    if file.cluster.snapshot_entries == Some(0) {
        return Err(err(find(text, "snapshot_entries"), "cluster.snapshot_entries", "must be at least 1".into()));
    }
    if file.cluster.snapshot_chunk_bytes == Some(0) {
        return Err(err(
            find(text, "snapshot_chunk_bytes"),
            "cluster.snapshot_chunk_bytes",
            "must be at least 1".into(),
        ));
    }
    if let Some(g) = file.cluster.groups {
        if !(1..=phantomdb::keyspace::GROUPS_MAX).contains(&g) {
            return Err(err(
                find(text, "groups"),
                "cluster.groups",
                format!("{g} groups: expected 1 to {}", phantomdb::keyspace::GROUPS_MAX),
            ));
        }
    }
    validate_ranges(&file, nodes).map_err(|(key, field, message)| err(find(text, key), field, message))?;
    if !(1..=64).contains(&nodes) {
        return Err(err(find(text, "nodes"), "cluster.nodes", format!("{nodes} nodes: expected 1 to 64")));
    }
    let heartbeat = file.cluster.heartbeat_interval_ms.unwrap_or(30);
    let [election_lo, _] = file.cluster.election_timeout_ms.unwrap_or([150, 300]);
    if heartbeat == 0 || election_lo <= heartbeat {
        return Err(err(
            find(text, "election_timeout_ms"),
            "cluster.election_timeout_ms",
            format!("{election_lo} ms is not above the heartbeat interval of {heartbeat} ms (Raft needs heartbeat < election timeout)"),
        ));
    }
    let limits = [
        ("phases.faulty_ms", "faulty_ms", file.phases.faulty_ms, 1, PHASE_MS_MAX),
        ("phases.healed_ms", "healed_ms", file.phases.healed_ms, 0, PHASE_MS_MAX),
        ("phases.liveness_timeout_ms", "liveness_timeout_ms", file.phases.liveness_timeout_ms, 1, PHASE_MS_MAX),
        ("workload.request_timeout_ms", "request_timeout_ms", file.workload.request_timeout_ms, 1, PHASE_MS_MAX),
        ("workload.clients", "clients", file.workload.clients, 0, CLIENTS_MAX),
        ("workload.register_keys", "register_keys", file.workload.register_keys, 0, KEYS_MAX),
        ("workload.append_keys", "append_keys", file.workload.append_keys, 0, KEYS_MAX),
        ("cluster.heartbeat_interval_ms", "heartbeat_interval_ms", file.cluster.heartbeat_interval_ms, 1, PHASE_MS_MAX),
    ];
    for (field, key, value, lo, hi) in limits {
        if let Some(v) = value {
            if !(lo..=hi).contains(&v) {
                return Err(err(find(text, key), field, format!("{v}: expected {lo} to {hi}")));
            }
        }
    }
    for (field, key, range, max) in [
        ("cluster.election_timeout_ms", "election_timeout_ms", file.cluster.election_timeout_ms, PHASE_MS_MAX),
        ("network.latency_ms", "latency_ms", file.network.latency_ms, PHASE_MS_MAX),
        ("workload.think_time_ms", "think_time_ms", file.workload.think_time_ms, PHASE_MS_MAX),
        ("cluster.disk_sync_ms", "disk_sync_ms", file.cluster.disk_sync_ms, DISK_SYNC_MS_MAX),
    ] {
        if let Some([_, b]) = range {
            if b > max {
                return Err(err(find(text, key), field, format!("{b} ms: expected at most {max}")));
            }
        }
    }
    if let Some(sites) = &file.buggify_sites {
        if file.buggify == Some(false) {
            return Err(err(
                find(text, "buggify_sites"),
                "buggify_sites",
                "pins sites of a buggify that is off".into(),
            ));
        }
        for site in sites {
            if !phantomdb::buggify::SITES.iter().any(|&(s, _)| s == site) {
                let known: Vec<&str> = phantomdb::buggify::SITES.iter().map(|&(s, _)| s).collect();
                return Err(err(
                    find(text, "buggify_sites"),
                    "buggify_sites",
                    format!("{site:?} is no buggify site; the sites are {}", known.join(", ")),
                ));
            }
        }
    }
    for mark in &file.require_marks {
        if !phantomdb::sometimes::MARKS.iter().any(|&(m, _)| m == mark) {
            let known: Vec<&str> = phantomdb::sometimes::MARKS.iter().map(|&(m, _)| m).collect();
            return Err(err(
                find(text, "require_marks"),
                "require_marks",
                format!("{mark:?} is no mark; the marks are {}", known.join(", ")),
            ));
        }
    }
    if file.faults.len() > SCHEDULE_FAULTS_MAX {
        return Err(err(0..0, "faults", format!("{} faults: at most {SCHEDULE_FAULTS_MAX}", file.faults.len())));
    }
    for (i, f) in file.faults.iter().enumerate() {
        validate_fault(f.get_ref(), nodes)
            .map_err(|e| err(f.span(), &format!("faults[{i}].{}", e.field), e.message))?;
    }
    if let Some(n) = &file.nemesis {
        validate_nemesis(n.get_ref()).map_err(|e| err(n.span(), &format!("nemesis.{}", e.field), e.message))?;
        let faulty_ms = file.phases.faulty_ms.unwrap_or(FAULTY_MS_DEFAULT);
        let [interval_lo, _] = n.get_ref().interval_ms.unwrap_or(NEMESIS_INTERVAL_MS_DEFAULT);
        // Each nemesis fault comes with its undo.
        let at_most = 2 * (faulty_ms / interval_lo.max(1) + 1) as usize + file.faults.len();
        if at_most > SCHEDULE_FAULTS_MAX {
            return Err(err(
                n.span(),
                "nemesis.interval_ms",
                format!("up to {at_most} faults in {faulty_ms} ms: at most {SCHEDULE_FAULTS_MAX}; raise the interval"),
            ));
        }
    }
    for (name, range) in [
        ("cluster.election_timeout_ms", file.cluster.election_timeout_ms),
        ("network.latency_ms", file.network.latency_ms),
        ("workload.think_time_ms", file.workload.think_time_ms),
        ("cluster.disk_sync_ms", file.cluster.disk_sync_ms),
    ] {
        if let Some([a, b]) = range {
            if a > b {
                let key = name.rsplit('.').next().expect("dotted");
                return Err(err(find(text, key), name, format!("[{a}, {b}] is not a range (min > max)")));
            }
        }
    }
    if let Some(d) = file.network.duplicate {
        if !(0.0..=0.5).contains(&d) {
            return Err(err(find(text, "duplicate"), "network.duplicate", format!("{d}: expected 0.0 to 0.5")));
        }
    }
    if let Some(loss) = file.network.loss {
        if !(0.0..=0.5).contains(&loss) {
            return Err(err(find(text, "loss"), "network.loss", format!("{loss}: expected 0.0 to 0.5")));
        }
    }
    if let Some(m) = file.workload.mix {
        if m.get + m.put + m.append + m.delete + m.cas == 0 {
            return Err(err(find(text, "mix"), "workload.mix", "every weight is 0".into()));
        }
    }
    Ok(file)
}

/// The contract the `scenario_parse` fuzz target checks on any bytes: text that is not
/// UTF-8 or not a valid scenario is refused with an error; a scenario that parses resolves,
/// for any seed, to a schedule within [`SCHEDULE_FAULTS_MAX`]. Never a panic.
pub fn check_any_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.toml");
    if let Ok(file) = parse(path, text) {
        let scenario = Scenario::resolve(path, &file, data.len() as u64);
        assert!(scenario.schedule.len() <= SCHEDULE_FAULTS_MAX, "{} faults scheduled", scenario.schedule.len());
    }
}

/// The span of the first line that sets `key`, for semantic errors on plain fields.
fn find(text: &str, key: &str) -> std::ops::Range<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            return offset..offset + line.len();
        }
        offset += line.len();
    }
    0..0
}

/// The checks every fault shares (no field its kind does not take; the node a target
/// names exists), around its family's own.
fn validate_fault(f: &FaultSpec, nodes: u64) -> Result<(), SpecError> {
    use crate::faults::trigger::{DELAY_MS_MAX, TIMES_MAX};
    match f.on {
        None => {
            if f.at_ms.is_none() {
                return Err(SpecError::new("at_ms", "a fault needs `at_ms` (or `on`, to fire at a node event)"));
            }
            for (field, present) in [
                ("delay_ms", f.delay_ms.is_some()),
                ("times", f.times.is_some()),
                ("undo_after_ms", f.undo_after_ms.is_some()),
            ] {
                if present {
                    return Err(SpecError::new(field, format!("`{field}` is for a fault with `on`")));
                }
            }
            if f.node.as_ref().is_some_and(|t| t.is_relative()) {
                return Err(SpecError::new("node", "\"that\" and \"other\" name nodes of a fault with `on`"));
            }
        }
        Some(_) => {
            if f.kind.is_undo() {
                return Err(SpecError::new("kind", format!("\"{}\" is an undo; give `undo_after_ms`", f.kind.name())));
            }
            for (field, range) in [("delay_ms", f.delay_ms), ("undo_after_ms", f.undo_after_ms)] {
                if let Some([a, b]) = range {
                    if a > b || b > DELAY_MS_MAX {
                        return Err(SpecError::new(
                            field,
                            format!("[{a}, {b}]: expected min <= max <= {DELAY_MS_MAX}"),
                        ));
                    }
                }
            }
            if let Some(n) = f.times {
                if !(1..=TIMES_MAX).contains(&n) {
                    return Err(SpecError::new("times", format!("{n}: expected 1 to {TIMES_MAX}")));
                }
            }
        }
    }
    let family = f.kind.family();
    let allowed = family.fields(f.kind);
    let present = [
        ("node", f.node.is_some()),
        ("sides", f.sides.is_some()),
        ("from", f.from.is_some()),
        ("to", f.to.is_some()),
        ("rate", f.rate.is_some()),
        ("latency_ms", f.latency_ms.is_some()),
        ("offset_ms", f.offset_ms.is_some()),
        ("drift_ppm", f.drift_ppm.is_some()),
        ("voters", f.voters.is_some()),
        ("key", f.key.is_some()),
    ];
    for (field, is_present) in present {
        if is_present && !allowed.contains(&field) {
            return Err(SpecError::new(field, format!("kind = \"{}\" takes no `{field}`", f.kind.name())));
        }
    }
    family.validate(f.kind, f, nodes)?;
    if let Some(t) = &f.node {
        t.validate(nodes)?;
    }
    Ok(())
}

/// The cut of the key space and the replicas: (key, field, message) of the first error.
fn validate_ranges(file: &ScenarioFile, nodes: u64) -> Result<(), (&'static str, &'static str, String)> {
    use phantomdb::keyspace::{Keyspace, Sharding};
    let c = &file.cluster;
    let sharding = c.sharding.unwrap_or_default();
    if let Some(points) = &c.split_points {
        if sharding != Sharding::Range {
            return Err((
                "split_points",
                "cluster.split_points",
                "cut keys in byte order: needs sharding = \"range\"".into(),
            ));
        }
        if let Some(g) = c.groups.filter(|&g| g != points.len() as u64 + 1) {
            let message = format!("{g} groups, but {} split points make {} ranges", points.len(), points.len() + 1);
            return Err(("groups", "cluster.groups", message));
        }
        if let Err(e) = Keyspace::ranged(points.iter().map(|p| p.clone().into_bytes()).collect()) {
            return Err(("split_points", "cluster.split_points", e.to_string()));
        }
    } else if sharding == Sharding::Range && c.groups.is_some_and(|g| g > 1) {
        let message = "range sharding cuts the keys at `split_points`; give them instead of `groups`".into();
        return Err(("groups", "cluster.groups", message));
    }
    // Smaller, a range would split on every write or two, up to the node's range limit.
    const RANGE_BYTES_MIN: u64 = 256;
    if let Some(b) = c.range_bytes_max.filter(|&b| (1..RANGE_BYTES_MIN).contains(&b)) {
        let message = format!("{b}: expected 0 (never) or {RANGE_BYTES_MIN} and more");
        return Err(("range_bytes_max", "cluster.range_bytes_max", message));
    }
    let voters = c.voters.unwrap_or(nodes);
    let added = c.added_nodes.unwrap_or(0);
    let rf_min = c.replication_factor.unwrap_or(1);
    if added > 0 && (c.replication_factor.is_none() || voters < added + rf_min) {
        let message = format!(
            "{added}: the ranges are placed over the other {} voters, which must hold replication_factor ({}) replicas",
            voters.saturating_sub(added),
            c.replication_factor.map_or("not given: every voter".into(), |rf| rf.to_string()),
        );
        return Err(("added_nodes", "cluster.added_nodes", message));
    }
    let silent_ms = phantomdb::placement::NODE_SILENT_MS;
    if let Some(ms) = c.node_dead_ms.filter(|&ms| ms < silent_ms) {
        let message = format!("{ms}: expected {silent_ms} or more (a node is not dead before it is silent)");
        return Err(("node_dead_ms", "cluster.node_dead_ms", message));
    }
    let nemesis_kinds = file.nemesis.as_ref().and_then(|n| n.get_ref().kinds.clone()).unwrap_or_default();
    let adds = file.faults.iter().map(|f| f.get_ref().kind).chain(nemesis_kinds).any(|k| k == FaultKind::AddNode);
    if adds && added == 0 {
        let message = "kind = \"add_node\" starts a node of `added_nodes`, and there is none (set added_nodes)".into();
        return Err(("added_nodes", "cluster.added_nodes", message));
    }
    if let Some(rf) = c.replication_factor {
        if rf == 0 || rf > voters {
            return Err((
                "replication_factor",
                "cluster.replication_factor",
                format!("{rf}: expected 1 to the {voters} initial voters"),
            ));
        }
        // Operators change group 1's membership among nodes that host it; with ranges on
        // some voters only, a node asked to join may host no replica of it.
        let nemesis_kinds = file.nemesis.as_ref().and_then(|n| n.get_ref().kinds.clone()).unwrap_or_default();
        let kinds = file.faults.iter().map(|f| f.get_ref().kind).chain(nemesis_kinds);
        if rf < voters {
            if let Some(kind) = kinds.into_iter().find(|k| k.changes_membership()) {
                let message = format!(
                    "kind = \"{}\" changes group 1's membership, which needs every voter to host every range (replication_factor = {voters}); replicas move with placement",
                    kind.name()
                );
                return Err(("replication_factor", "cluster.replication_factor", message));
            }
        }
    }
    Ok(())
}

fn validate_nemesis(n: &NemesisSpec) -> Result<(), SpecError> {
    if let Some([a, b]) = n.triggers {
        const TRIGGERS_MAX: u64 = 100;
        if a > b || b > TRIGGERS_MAX {
            return Err(SpecError::new("triggers", format!("[{a}, {b}]: expected min <= max <= {TRIGGERS_MAX}")));
        }
    }
    for (field, range) in [("interval_ms", n.interval_ms), ("duration_ms", n.duration_ms)] {
        if let Some([a, b]) = range {
            if a > b || a == 0 || b > PHASE_MS_MAX {
                return Err(SpecError::new(field, format!("[{a}, {b}]: expected 1 <= min <= max <= {PHASE_MS_MAX}")));
            }
        }
    }
    for (field, v, max) in [
        ("clock_offset_ms_max", n.clock_offset_ms_max, CLOCK_OFFSET_MS_MAX),
        ("clock_drift_ppm_max", n.clock_drift_ppm_max, CLOCK_DRIFT_PPM_MAX),
    ] {
        if let Some(v) = v {
            if !(0..=max).contains(&v) {
                return Err(SpecError::new(field, format!("{v}: expected 0 to {max}")));
            }
        }
    }
    if let Some(kinds) = &n.kinds {
        if kinds.is_empty() {
            return Err(SpecError::new("kinds", "is empty; leave `nemesis` out for no random faults"));
        }
        for k in kinds {
            if k.is_undo() {
                return Err(SpecError::new(
                    "kinds",
                    format!("\"{}\" is an undo; the nemesis undoes its own faults", k.name()),
                ));
            }
        }
    }
    if let Some(l) = n.loss_max {
        if !(0.0..=1.0).contains(&l) {
            return Err(SpecError::new("loss_max", format!("{l}: expected 0.0 to 1.0")));
        }
    }
    Ok(())
}
