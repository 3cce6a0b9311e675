//! Scenario files: what a simulation run is, as data (ARCHITECTURE §7).
//!
//! A file is parsed strictly (unknown fields are errors) and every error names the file,
//! the line and the field. Whatever the file leaves open is drawn from the seed
//! ([`Scenario::resolve`]), so one file describes a whole family of runs (swarm testing)
//! and a seed picks one member of it.

use phantomdb::raft::PlantedBug;
use phantomdb::NodeId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::Spanned;

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

// ----- the file, as written -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<String>,
    pub description: Option<String>,
    pub planted_bug: Option<PlantedBug>,
    #[serde(default)]
    pub cluster: ClusterSpec,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub faults: Vec<Spanned<FaultSpec>>,
    pub nemesis: Option<Spanned<NemesisSpec>>,
    #[serde(default)]
    pub phases: PhasesSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub nodes: Option<u64>,
    /// Raft groups every node hosts, each owning a fixed share of the keys (default 1).
    pub groups: Option<u64>,
    pub election_timeout_ms: Option<[u64; 2]>,
    pub heartbeat_interval_ms: Option<u64>,
    /// Entries per AppendEntries message (small values stress backtracking and flow control).
    pub append_entries_max: Option<usize>,
    /// Raft pre-vote and check-quorum; each drawn from the seed when left out.
    pub pre_vote: Option<bool>,
    pub check_quorum: Option<bool>,
    /// Lease reads (default: drawn from the seed where check-quorum is on; they need it)
    /// and the clock drift bound leases assume, in ppm (default 10000).
    pub lease_reads: Option<bool>,
    pub clock_drift_ppm_max: Option<u64>,
    /// Log compaction: a snapshot every this many applied entries (default: 16, 64, 256
    /// or 100000 by seed), sent to lagging followers in chunks of `snapshot_chunk_bytes`
    /// (default: 64, 512 or 65536 by seed).
    pub snapshot_entries: Option<u64>,
    pub snapshot_chunk_bytes: Option<usize>,
    /// Nodes `1..=voters` form the group at the start; the others run outside it until a
    /// membership change adds them. Default: all nodes.
    pub voters: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    pub latency_ms: Option<[u64; 2]>,
    pub loss: Option<f64>,
    /// Share of messages delivered twice (the copy may arrive out of order), 0.0 to 0.5.
    pub duplicate: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub clients: Option<u64>,
    pub register_keys: Option<u64>,
    pub append_keys: Option<u64>,
    pub mix: Option<MixSpec>,
    pub think_time_ms: Option<[u64; 2]>,
    pub request_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MixSpec {
    #[serde(default)]
    pub get: u32,
    #[serde(default)]
    pub put: u32,
    #[serde(default)]
    pub append: u32,
    #[serde(default)]
    pub delete: u32,
    #[serde(default)]
    pub cas: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Partition,
    Isolate,
    Heal,
    Crash,
    Restart,
    Clog,
    Unclog,
    Loss,
    /// Some messages arrive twice (`rate`).
    Duplicate,
    Latency,
    ClockSkew,
    DiskError,
    /// The leader hands leadership to `node` (Raft's TimeoutNow), as an operator would.
    TransferLeader,
    /// Membership changes, through the leader: `node` becomes a voter (from outside or as
    /// a learner: a promotion), leaves the group, or joins as a learner.
    AddVoter,
    RemoveVoter,
    AddLearner,
    /// The voters become exactly `voters` in one change (a replacement by joint
    /// consensus); the nemesis draws a random set.
    SetVoters,
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Heal => "heal",
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Clog => "clog",
            FaultKind::Unclog => "unclog",
            FaultKind::Loss => "loss",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Latency => "latency",
            FaultKind::ClockSkew => "clock_skew",
            FaultKind::DiskError => "disk_error",
            FaultKind::TransferLeader => "transfer_leader",
            FaultKind::AddVoter => "add_voter",
            FaultKind::RemoveVoter => "remove_voter",
            FaultKind::AddLearner => "add_learner",
            FaultKind::SetVoters => "set_voters",
        }
    }
}

/// A node named in a fault: an id, or one chosen when the fault fires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TargetSpec {
    Id(u64),
    Name(String),
}

/// One explicit fault. Which fields a kind needs is checked by [`validate_fault`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at_ms: u64,
    pub kind: FaultKind,
    pub node: Option<TargetSpec>,
    pub groups: Option<Vec<Vec<u64>>>,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub rate: Option<f64>,
    pub latency_ms: Option<[u64; 2]>,
    pub offset_ms: Option<i64>,
    pub drift_ppm: Option<i64>,
    pub voters: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    /// Which faults the nemesis draws from (default: all it knows).
    pub kinds: Option<Vec<FaultKind>>,
    /// Time between two faults.
    pub interval_ms: Option<[u64; 2]>,
    /// How long a fault lasts before the nemesis undoes it.
    pub duration_ms: Option<[u64; 2]>,
    pub loss_max: Option<f64>,
    pub clock_offset_ms_max: Option<i64>,
    pub clock_drift_ppm_max: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhasesSpec {
    /// Length of the faulty phase; then every fault is healed.
    pub faulty_ms: Option<u64>,
    /// After the heal, a write must commit within this bound (liveness).
    pub liveness_timeout_ms: Option<u64>,
    /// How long the workload keeps running after the heal.
    pub healed_ms: Option<u64>,
}

// ----- the resolved scenario -------------------------------------------------------------

/// A node chosen when the fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node(NodeId),
    Leader,
    Follower,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Node(n) => write!(f, "n{n}"),
            Target::Leader => write!(f, "leader"),
            Target::Follower => write!(f, "follower"),
        }
    }
}

/// A concrete fault, ready to fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Partition {
        groups: Vec<Vec<NodeId>>,
    },
    Isolate {
        node: Target,
    },
    Heal,
    Crash {
        node: Target,
    },
    Restart {
        node: Target,
    },
    Clog {
        from: NodeId,
        to: NodeId,
    },
    Unclog {
        from: NodeId,
        to: NodeId,
    },
    /// `None`: back to the scenario's `network.duplicate`.
    Duplicate {
        rate: Option<f64>,
    },
    /// `None`: back to the scenario's `network.loss`.
    Loss {
        rate: Option<f64>,
    },
    /// `None`: back to the scenario's `network.latency_ms`.
    Latency {
        ms: Option<[u64; 2]>,
    },
    ClockSkew {
        node: Target,
        offset_ms: i64,
        drift_ppm: i64,
    },
    DiskError {
        node: Target,
    },
    TransferLeader {
        to: Target,
    },
    AddVoter {
        node: Target,
    },
    RemoveVoter {
        node: Target,
    },
    AddLearner {
        node: Target,
    },
    SetVoters {
        voters: Vec<NodeId>,
    },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Partition { groups } => write!(f, "partition {groups:?}"),
            Action::Isolate { node } => write!(f, "isolate {node}"),
            Action::Heal => write!(f, "heal"),
            Action::Crash { node } => write!(f, "crash {node}"),
            Action::Restart { node } => write!(f, "restart {node}"),
            Action::Clog { from, to } => write!(f, "clog n{from}->n{to}"),
            Action::Unclog { from, to } => write!(f, "unclog n{from}->n{to}"),
            Action::Loss { rate: Some(rate) } => write!(f, "loss {rate:.3}"),
            Action::Loss { rate: None } => write!(f, "loss back to the scenario's"),
            Action::Duplicate { rate: Some(rate) } => write!(f, "duplicate {rate:.3}"),
            Action::Duplicate { rate: None } => write!(f, "duplicate back to the scenario's"),
            Action::Latency { ms: Some([lo, hi]) } => write!(f, "latency {lo}..{hi}ms"),
            Action::Latency { ms: None } => write!(f, "latency back to the scenario's"),
            Action::ClockSkew { node, offset_ms, drift_ppm } => {
                write!(f, "clock_skew {node} offset {offset_ms}ms drift {drift_ppm}ppm")
            }
            Action::DiskError { node } => write!(f, "disk_error {node}"),
            Action::TransferLeader { to } => write!(f, "transfer_leader to {to}"),
            Action::AddVoter { node } => write!(f, "add_voter {node}"),
            Action::RemoveVoter { node } => write!(f, "remove_voter {node}"),
            Action::AddLearner { node } => write!(f, "add_learner {node}"),
            Action::SetVoters { voters } => write!(f, "set_voters {voters:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scheduled {
    pub at_ms: u64,
    pub action: Action,
    /// Where it came from: "file" (line N) or "nemesis".
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub seed: u64,
    pub planted_bug: Option<PlantedBug>,
    pub nodes: u64,
    pub groups: u64,
    pub election_timeout_ms: [u64; 2],
    pub heartbeat_interval_ms: u64,
    pub append_entries_max: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub lease_reads: bool,
    pub clock_drift_ppm_max: u64,
    pub snapshot_entries: u64,
    pub snapshot_chunk_bytes: usize,
    pub initial_voters: u64,
    pub latency_ms: [u64; 2],
    pub loss: f64,
    pub duplicate: f64,
    pub clients: u64,
    pub register_keys: u64,
    pub append_keys: u64,
    pub mix: MixSpec,
    pub think_time_ms: [u64; 2],
    pub request_timeout_ms: u64,
    pub faulty_ms: u64,
    pub liveness_timeout_ms: u64,
    pub healed_ms: u64,
    /// Explicit and nemesis faults, sorted by time (stable: file order first).
    pub schedule: Vec<Scheduled>,
}

// ----- parsing -------------------------------------------------------------------------

/// The most faults one run may schedule (explicit and nemesis together).
pub const SCHEDULE_FAULTS_MAX: usize = 100_000;
/// The longest any phase or timeout may be: one simulated hour.
pub const PHASE_MS_MAX: u64 = 3_600_000;
/// Workload bounds, so that a scenario cannot ask for unbounded memory.
pub const CLIENTS_MAX: u64 = 1_000;
pub const KEYS_MAX: u64 = 100_000;
/// Clock skew bounds: a day of offset; a drift of -100% is a clock that stands still
/// (`phantomdb::io::clock::DRIFT_PPM_MAX`).
pub const CLOCK_OFFSET_MS_MAX: i64 = 86_400_000;
pub const CLOCK_DRIFT_PPM_MAX: i64 = 1_000_000;

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
    for (field, key, range) in [
        ("cluster.election_timeout_ms", "election_timeout_ms", file.cluster.election_timeout_ms),
        ("network.latency_ms", "latency_ms", file.network.latency_ms),
        ("workload.think_time_ms", "think_time_ms", file.workload.think_time_ms),
    ] {
        if let Some([_, b]) = range {
            if b > PHASE_MS_MAX {
                return Err(err(find(text, key), field, format!("{b} ms: expected at most {PHASE_MS_MAX}")));
            }
        }
    }
    if file.faults.len() > SCHEDULE_FAULTS_MAX {
        return Err(err(0..0, "faults", format!("{} faults: at most {SCHEDULE_FAULTS_MAX}", file.faults.len())));
    }
    for (i, f) in file.faults.iter().enumerate() {
        validate_fault(f.get_ref(), nodes).map_err(|(field, m)| err(f.span(), &format!("faults[{i}].{field}"), m))?;
    }
    if let Some(n) = &file.nemesis {
        validate_nemesis(n.get_ref()).map_err(|(field, m)| err(n.span(), &format!("nemesis.{field}"), m))?;
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

fn check_node(n: u64, nodes: u64, field: &str) -> Result<(), (String, String)> {
    if n == 0 || n > nodes {
        return Err((field.into(), format!("node {n} does not exist (nodes are 1..={nodes})")));
    }
    Ok(())
}

fn validate_fault(f: &FaultSpec, nodes: u64) -> Result<(), (String, String)> {
    let kind = f.kind.name();
    let need = |present: bool, field: &str| {
        if present {
            Ok(())
        } else {
            Err((field.to_string(), format!("kind = \"{kind}\" needs `{field}`")))
        }
    };
    let allowed: &[&str] = match f.kind {
        FaultKind::Partition => &["groups"],
        FaultKind::Isolate
        | FaultKind::Crash
        | FaultKind::Restart
        | FaultKind::DiskError
        | FaultKind::TransferLeader
        | FaultKind::AddVoter
        | FaultKind::RemoveVoter
        | FaultKind::AddLearner => &["node"],
        FaultKind::Heal => &[],
        FaultKind::Clog | FaultKind::Unclog => &["from", "to"],
        FaultKind::Loss | FaultKind::Duplicate => &["rate"],
        FaultKind::Latency => &["latency_ms"],
        FaultKind::ClockSkew => &["node", "offset_ms", "drift_ppm"],
        FaultKind::SetVoters => &["voters"],
    };
    let present = [
        ("node", f.node.is_some()),
        ("groups", f.groups.is_some()),
        ("from", f.from.is_some()),
        ("to", f.to.is_some()),
        ("rate", f.rate.is_some()),
        ("latency_ms", f.latency_ms.is_some()),
        ("offset_ms", f.offset_ms.is_some()),
        ("drift_ppm", f.drift_ppm.is_some()),
        ("voters", f.voters.is_some()),
    ];
    for (field, is_present) in present {
        if is_present && !allowed.contains(&field) {
            return Err((field.into(), format!("kind = \"{kind}\" takes no `{field}`")));
        }
    }
    match f.kind {
        FaultKind::Partition => {
            need(f.groups.is_some(), "groups")?;
            let groups = f.groups.as_ref().expect("checked");
            let mut seen = std::collections::BTreeSet::new();
            for n in groups.iter().flatten() {
                check_node(*n, nodes, "groups")?;
                if !seen.insert(*n) {
                    return Err(("groups".into(), format!("node {n} is in two groups")));
                }
            }
        }
        FaultKind::Isolate
        | FaultKind::Crash
        | FaultKind::Restart
        | FaultKind::DiskError
        | FaultKind::TransferLeader
        | FaultKind::AddVoter
        | FaultKind::RemoveVoter
        | FaultKind::AddLearner => {
            need(f.node.is_some(), "node")?;
        }
        FaultKind::ClockSkew => {
            need(f.node.is_some(), "node")?;
            need(f.offset_ms.is_some() || f.drift_ppm.is_some(), "offset_ms")?;
            if let Some(o) = f.offset_ms {
                if o.abs() > CLOCK_OFFSET_MS_MAX {
                    return Err(("offset_ms".into(), format!("{o}: expected at most ±{CLOCK_OFFSET_MS_MAX}")));
                }
            }
            if let Some(d) = f.drift_ppm {
                if d.abs() > CLOCK_DRIFT_PPM_MAX {
                    return Err((
                        "drift_ppm".into(),
                        format!("{d}: expected at most ±{CLOCK_DRIFT_PPM_MAX} (a clock that stands still)"),
                    ));
                }
            }
        }
        FaultKind::Heal => {}
        FaultKind::SetVoters => {
            need(f.voters.is_some(), "voters")?;
            let voters = f.voters.as_ref().expect("checked");
            if voters.is_empty() {
                return Err(("voters".into(), "a group needs at least one voter".into()));
            }
            for n in voters {
                check_node(*n, nodes, "voters")?;
            }
        }
        FaultKind::Clog | FaultKind::Unclog => {
            need(f.from.is_some(), "from")?;
            need(f.to.is_some(), "to")?;
            check_node(f.from.expect("checked"), nodes, "from")?;
            check_node(f.to.expect("checked"), nodes, "to")?;
        }
        FaultKind::Loss | FaultKind::Duplicate => {
            need(f.rate.is_some(), "rate")?;
            let r = f.rate.expect("checked");
            if !(0.0..=1.0).contains(&r) {
                return Err(("rate".into(), format!("{r}: expected 0.0 to 1.0")));
            }
        }
        FaultKind::Latency => {
            need(f.latency_ms.is_some(), "latency_ms")?;
            let [a, b] = f.latency_ms.expect("checked");
            if a > b {
                return Err(("latency_ms".into(), format!("[{a}, {b}] is not a range")));
            }
        }
    }
    if let Some(t) = &f.node {
        match t {
            TargetSpec::Id(n) => check_node(*n, nodes, "node")?,
            TargetSpec::Name(s) if ["leader", "follower", "random"].contains(&s.as_str()) => {}
            TargetSpec::Name(s) => {
                return Err((
                    "node".into(),
                    format!("{s:?}: expected a node id, \"leader\", \"follower\" or \"random\""),
                ))
            }
        }
    }
    Ok(())
}

fn validate_nemesis(n: &NemesisSpec) -> Result<(), (String, String)> {
    for (field, range) in [("interval_ms", n.interval_ms), ("duration_ms", n.duration_ms)] {
        if let Some([a, b]) = range {
            if a > b || a == 0 || b > PHASE_MS_MAX {
                return Err((field.into(), format!("[{a}, {b}]: expected 1 <= min <= max <= {PHASE_MS_MAX}")));
            }
        }
    }
    for (field, v, max) in [
        ("clock_offset_ms_max", n.clock_offset_ms_max, CLOCK_OFFSET_MS_MAX),
        ("clock_drift_ppm_max", n.clock_drift_ppm_max, CLOCK_DRIFT_PPM_MAX),
    ] {
        if let Some(v) = v {
            if !(0..=max).contains(&v) {
                return Err((field.into(), format!("{v}: expected 0 to {max}")));
            }
        }
    }
    if let Some(kinds) = &n.kinds {
        if kinds.is_empty() {
            return Err(("kinds".into(), "is empty; leave `nemesis` out for no random faults".into()));
        }
        for k in kinds {
            if matches!(k, FaultKind::Heal | FaultKind::Restart | FaultKind::Unclog) {
                return Err((
                    "kinds".into(),
                    format!("\"{}\" is an undo; the nemesis undoes its own faults", k.name()),
                ));
            }
        }
    }
    if let Some(l) = n.loss_max {
        if !(0.0..=1.0).contains(&l) {
            return Err(("loss_max".into(), format!("{l}: expected 0.0 to 1.0")));
        }
    }
    Ok(())
}

// ----- resolution: the seed fills what the file leaves open ------------------------------

const FAULTY_MS_DEFAULT: u64 = 20_000;
const NEMESIS_INTERVAL_MS_DEFAULT: [u64; 2] = [300, 3_000];

const NEMESIS_KINDS: [FaultKind; 9] = [
    FaultKind::Partition,
    FaultKind::Isolate,
    FaultKind::Crash,
    FaultKind::Clog,
    FaultKind::Loss,
    FaultKind::Latency,
    FaultKind::ClockSkew,
    FaultKind::DiskError,
    FaultKind::TransferLeader,
];

impl Scenario {
    pub fn resolve(path: &Path, file: &ScenarioFile, seed: u64) -> Scenario {
        // A separate stream from madsim's, so that the schedule does not shift when the
        // system under test draws a different number of random values.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5343_454e_4152_494f);
        let nodes = file.cluster.nodes.unwrap_or(5);
        let draw_range = |rng: &mut ChaCha8Rng, r: Option<[u64; 2]>, lo: [u64; 2], hi: [u64; 2]| {
            r.unwrap_or_else(|| {
                let a = rng.gen_range(lo[0]..=lo[1]);
                let b = rng.gen_range(hi[0]..=hi[1]).max(a);
                [a, b]
            })
        };
        let election_timeout_ms = file.cluster.election_timeout_ms.unwrap_or([150, 300]);
        let heartbeat_interval_ms = file.cluster.heartbeat_interval_ms.unwrap_or(30);
        // Swarm: small batches make followers catch up entry by entry, which exercises
        // backtracking and pipelining far more than the default does.
        let append_entries_max =
            file.cluster.append_entries_max.unwrap_or_else(|| *[1, 2, 8, 64].choose(&mut rng).expect("non-empty"));
        // Drawn from a stream of their own, so that adding them left every seed's other
        // draws (and so its schedule) as it was.
        let mut raft_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5052_4556_4f54_4551);
        let pre_vote = file.cluster.pre_vote.unwrap_or_else(|| raft_rng.gen_bool(0.5));
        let check_quorum = file
            .cluster
            .check_quorum
            .unwrap_or_else(|| file.cluster.lease_reads == Some(true) || raft_rng.gen_bool(0.5));
        let mut lease_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4c45_4153_4552_4541);
        let lease_reads = file.cluster.lease_reads.unwrap_or_else(|| check_quorum && lease_rng.gen_bool(0.5));
        let clock_drift_ppm_max = file.cluster.clock_drift_ppm_max.unwrap_or(10_000);
        let snapshot_entries = file
            .cluster
            .snapshot_entries
            .unwrap_or_else(|| *[16, 64, 256, 100_000].choose(&mut raft_rng).expect("non-empty"));
        let snapshot_chunk_bytes = file
            .cluster
            .snapshot_chunk_bytes
            .unwrap_or_else(|| *[64, 512, 65_536].choose(&mut raft_rng).expect("non-empty"));
        let latency_ms = draw_range(&mut rng, file.network.latency_ms, [0, 2], [3, 15]);
        let loss = file.network.loss.unwrap_or(0.0);
        let duplicate = file.network.duplicate.unwrap_or(0.0);
        let w = &file.workload;
        let clients = w.clients.unwrap_or_else(|| rng.gen_range(3..=10));
        let register_keys = w.register_keys.unwrap_or_else(|| rng.gen_range(2..=8));
        let append_keys = w.append_keys.unwrap_or_else(|| rng.gen_range(1..=4));
        let mix = w.mix.unwrap_or_else(|| MixSpec {
            get: rng.gen_range(1..=5),
            put: rng.gen_range(1..=5),
            append: rng.gen_range(0..=3),
            delete: rng.gen_range(0..=1),
            cas: rng.gen_range(0..=2),
        });
        let think_time_ms = draw_range(&mut rng, w.think_time_ms, [0, 5], [10, 50]);
        let request_timeout_ms = w.request_timeout_ms.unwrap_or(1_000);
        let faulty_ms = file.phases.faulty_ms.unwrap_or(FAULTY_MS_DEFAULT);
        let liveness_timeout_ms = file.phases.liveness_timeout_ms.unwrap_or(10_000);
        let healed_ms = file.phases.healed_ms.unwrap_or(3_000);

        let mut schedule = Vec::new();
        for f in &file.faults {
            let spec = f.get_ref();
            schedule.push(Scheduled {
                at_ms: spec.at_ms,
                action: explicit_action(spec, nodes, &mut rng),
                origin: "file".into(),
            });
        }
        if let Some(n) = &file.nemesis {
            schedule.extend(nemesis_schedule(n.get_ref(), nodes, faulty_ms, &mut rng));
        }
        schedule.sort_by_key(|s| s.at_ms);
        schedule.retain(|s| s.at_ms < faulty_ms);
        Scenario {
            path: path.to_path_buf(),
            name: file
                .name
                .clone()
                .unwrap_or_else(|| path.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().into_owned())),
            seed,
            planted_bug: file.planted_bug,
            nodes,
            groups: file.cluster.groups.unwrap_or(1),
            election_timeout_ms,
            heartbeat_interval_ms,
            append_entries_max,
            pre_vote,
            check_quorum,
            lease_reads,
            clock_drift_ppm_max,
            snapshot_entries,
            snapshot_chunk_bytes,
            initial_voters: file.cluster.voters.unwrap_or(nodes),
            latency_ms,
            loss,
            duplicate,
            clients,
            register_keys,
            append_keys,
            mix,
            think_time_ms,
            request_timeout_ms,
            faulty_ms,
            liveness_timeout_ms,
            healed_ms,
            schedule,
        }
    }
}

fn target(spec: &TargetSpec, nodes: u64, rng: &mut ChaCha8Rng) -> Target {
    match spec {
        TargetSpec::Id(n) => Target::Node(*n),
        TargetSpec::Name(s) => match s.as_str() {
            "leader" => Target::Leader,
            "follower" => Target::Follower,
            _ => Target::Node(rng.gen_range(1..=nodes)),
        },
    }
}

fn explicit_action(f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> Action {
    let node = || f.node.as_ref().expect("validated");
    match f.kind {
        FaultKind::Partition => {
            let mut groups = f.groups.clone().expect("validated");
            let listed: Vec<u64> = groups.iter().flatten().copied().collect();
            let rest: Vec<u64> = (1..=nodes).filter(|n| !listed.contains(n)).collect();
            if !rest.is_empty() {
                groups.push(rest);
            }
            Action::Partition { groups }
        }
        FaultKind::Isolate => Action::Isolate { node: target(node(), nodes, rng) },
        FaultKind::Heal => Action::Heal,
        FaultKind::Crash => Action::Crash { node: target(node(), nodes, rng) },
        FaultKind::Restart => Action::Restart { node: target(node(), nodes, rng) },
        FaultKind::Clog => Action::Clog { from: f.from.expect("validated"), to: f.to.expect("validated") },
        FaultKind::Unclog => Action::Unclog { from: f.from.expect("validated"), to: f.to.expect("validated") },
        FaultKind::Loss => Action::Loss { rate: Some(f.rate.expect("validated")) },
        FaultKind::Duplicate => Action::Duplicate { rate: Some(f.rate.expect("validated")) },
        FaultKind::Latency => Action::Latency { ms: Some(f.latency_ms.expect("validated")) },
        FaultKind::ClockSkew => Action::ClockSkew {
            node: target(node(), nodes, rng),
            offset_ms: f.offset_ms.unwrap_or(0),
            drift_ppm: f.drift_ppm.unwrap_or(0),
        },
        FaultKind::DiskError => Action::DiskError { node: target(node(), nodes, rng) },
        FaultKind::TransferLeader => Action::TransferLeader { to: target(node(), nodes, rng) },
        FaultKind::AddVoter => Action::AddVoter { node: target(node(), nodes, rng) },
        FaultKind::RemoveVoter => Action::RemoveVoter { node: target(node(), nodes, rng) },
        FaultKind::AddLearner => Action::AddLearner { node: target(node(), nodes, rng) },
        FaultKind::SetVoters => Action::SetVoters {
            voters: f
                .voters
                .clone()
                .expect("validated")
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        },
    }
}

/// Draws the nemesis's faults for the whole faulty phase, each with its undo.
fn nemesis_schedule(n: &NemesisSpec, nodes: u64, faulty_ms: u64, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let kinds: Vec<FaultKind> = n.kinds.clone().unwrap_or_else(|| {
        // Swarm testing: each seed enables a random non-empty subset of fault kinds.
        let mut all = NEMESIS_KINDS.to_vec();
        all.shuffle(rng);
        let keep = rng.gen_range(1..=all.len());
        all.truncate(keep);
        all
    });
    let [int_lo, int_hi] = n.interval_ms.unwrap_or(NEMESIS_INTERVAL_MS_DEFAULT);
    let [dur_lo, dur_hi] = n.duration_ms.unwrap_or([200, 4_000]);
    let loss_max = n.loss_max.unwrap_or(0.3);
    let offset_max = n.clock_offset_ms_max.unwrap_or(5_000);
    let drift_max = n.clock_drift_ppm_max.unwrap_or(100_000);
    let mut out = Vec::new();
    let mut t = rng.gen_range(int_lo..=int_hi);
    let random_node = |rng: &mut ChaCha8Rng| rng.gen_range(1..=nodes);
    while t < faulty_ms {
        let kind = *kinds.choose(rng).expect("non-empty");
        let end = t + rng.gen_range(dur_lo..=dur_hi);
        let mut push = |at_ms: u64, action: Action| out.push(Scheduled { at_ms, action, origin: "nemesis".into() });
        match kind {
            FaultKind::Partition => {
                let mut all: Vec<u64> = (1..=nodes).collect();
                all.shuffle(rng);
                let cut = rng.gen_range(1..nodes.max(2)) as usize;
                let (a, b) = all.split_at(cut.min(all.len()));
                let mut groups = vec![a.to_vec(), b.to_vec()];
                groups.retain(|g| !g.is_empty());
                push(t, Action::Partition { groups });
                push(end, Action::Heal);
            }
            FaultKind::Isolate => {
                let node = if rng.gen_bool(0.7) { Target::Leader } else { Target::Node(random_node(rng)) };
                push(t, Action::Isolate { node });
                push(end, Action::Heal);
            }
            FaultKind::Crash => {
                let node = if rng.gen_bool(0.3) { Target::Leader } else { Target::Node(random_node(rng)) };
                push(t, Action::Crash { node });
                push(end, Action::Restart { node });
            }
            FaultKind::Clog => {
                let from = random_node(rng);
                let to = random_node(rng);
                if from != to {
                    push(t, Action::Clog { from, to });
                    push(end, Action::Unclog { from, to });
                }
            }
            FaultKind::Loss => {
                push(t, Action::Loss { rate: Some(rng.gen_range(0.0..=loss_max)) });
                push(end, Action::Loss { rate: None });
            }
            FaultKind::Duplicate => {
                push(t, Action::Duplicate { rate: Some(rng.gen_range(0.0..=0.5)) });
                push(end, Action::Duplicate { rate: None });
            }
            FaultKind::Latency => {
                let max_ms = rng.gen_range(10..=200);
                push(t, Action::Latency { ms: Some([max_ms / 4, max_ms]) });
                push(end, Action::Latency { ms: None });
            }
            FaultKind::ClockSkew => {
                let node = Target::Node(random_node(rng));
                let offset_ms = rng.gen_range(-offset_max..=offset_max);
                let drift_ppm = rng.gen_range(-drift_max..=drift_max);
                push(t, Action::ClockSkew { node, offset_ms, drift_ppm });
                push(end, Action::ClockSkew { node, offset_ms: 0, drift_ppm: 0 });
            }
            FaultKind::DiskError => {
                let node = Target::Node(random_node(rng));
                push(t, Action::DiskError { node });
                push(end, Action::Restart { node });
            }
            FaultKind::AddVoter | FaultKind::RemoveVoter | FaultKind::AddLearner => {
                // Membership churn: one change now, and its opposite later.
                let node = Target::Node(random_node(rng));
                let (now, later) = match kind {
                    FaultKind::AddVoter => (Action::AddVoter { node }, Action::RemoveVoter { node }),
                    FaultKind::RemoveVoter => (Action::RemoveVoter { node }, Action::AddVoter { node }),
                    _ => (Action::AddLearner { node }, Action::AddVoter { node }),
                };
                push(t, now);
                push(end, later);
            }
            FaultKind::SetVoters => {
                // A random majority-sized set; the next draw replaces it.
                let mut all: Vec<NodeId> = (1..=nodes).collect();
                all.shuffle(rng);
                all.truncate((nodes / 2 + 1) as usize);
                all.sort_unstable();
                push(t, Action::SetVoters { voters: all });
            }
            FaultKind::TransferLeader => {
                // Nothing to undo: leadership simply moved.
                let to = if rng.gen_bool(0.7) { Target::Follower } else { Target::Node(random_node(rng)) };
                push(t, Action::TransferLeader { to });
            }
            FaultKind::Heal | FaultKind::Restart | FaultKind::Unclog => unreachable!("validated"),
        }
        t += rng.gen_range(int_lo..=int_hi);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<ScenarioFile, ScenarioError> {
        parse(Path::new("scenarios/t.toml"), text)
    }

    #[test]
    fn a_typo_in_a_field_name_names_file_line_and_field() {
        let e = parse_str("name = \"x\"\n[cluster]\nnodse = 5\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert_eq!(e.field, "nodse", "{e}");
        assert!(e.to_string().starts_with("scenarios/t.toml:3:1: field `nodse`"), "{e}");
    }

    #[test]
    fn a_fault_on_a_missing_node_names_the_fault() {
        let text = "[cluster]\nnodes = 3\n\n[[faults]]\nat_ms = 10\nkind = \"crash\"\nnode = 7\n";
        let e = parse_str(text).unwrap_err();
        assert_eq!(e.field, "faults[0].node", "{e}");
        assert_eq!(e.line, 4, "{e}");
    }

    #[test]
    fn a_fault_field_the_kind_does_not_take_is_refused() {
        let e = parse_str("[[faults]]\nat_ms = 1\nkind = \"heal\"\nnode = 1\n").unwrap_err();
        assert_eq!(e.field, "faults[0].node", "{e}");
    }

    #[test]
    fn an_unknown_fault_kind_is_refused() {
        let e = parse_str("[[faults]]\nat_ms = 1\nkind = \"meteor\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("meteor"), "{e}");
    }

    #[test]
    fn values_that_would_overflow_or_explode_are_refused() {
        let drift = "[[faults]]\nat_ms = 1\nkind = \"clock_skew\"\nnode = 1\ndrift_ppm = 9223372036854775807\n";
        assert_eq!(parse_str(drift).unwrap_err().field, "faults[0].drift_ppm");
        let flood = "[nemesis]\ninterval_ms = [1, 1]\n[phases]\nfaulty_ms = 3600000\n";
        assert_eq!(parse_str(flood).unwrap_err().field, "nemesis.interval_ms");
        let timing = "[cluster]\nelection_timeout_ms = [20, 40]\nheartbeat_interval_ms = 30\n";
        assert_eq!(parse_str(timing).unwrap_err().field, "cluster.election_timeout_ms");
    }

    #[test]
    fn resolution_is_a_function_of_the_seed() {
        let f = parse_str("[nemesis]\n").unwrap();
        let a = Scenario::resolve(Path::new("x.toml"), &f, 7);
        let b = Scenario::resolve(Path::new("x.toml"), &f, 7);
        let c = Scenario::resolve(Path::new("x.toml"), &f, 8);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        assert_ne!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&c).unwrap());
        assert!(a.schedule.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }
}
