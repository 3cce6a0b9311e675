//! Faults, one file per family: each family holds, for its kinds, the fields a file's
//! `[[faults]]` entry takes and their validation, the resolution of an explicit fault to
//! a concrete [`Action`], the nemesis's random draw, and (simulated build) the
//! application to the world, which reports a [`FaultEvent`] for the trace.
//!
//! | family       | kinds                                                            |
//! |--------------|------------------------------------------------------------------|
//! | [`network`]  | partition, isolate, heal, clog, unclog                           |
//! | [`link`]     | loss, duplicate, latency                                         |
//! | [`process`]  | crash, restart, add_node                                         |
//! | [`clock`]    | clock_skew                                                       |
//! | [`disk`]     | disk_error, read_error, slow_disk, corrupt                       |
//! | [`operator`] | transfer_leader, add_voter, remove_voter, add_learner, set_voters, split, move |
//!
//! Contract: resolution and draws take their random values from the scenario's stream in
//! a fixed order (a seed's schedule depends on it); a new kind draws nothing for the
//! others.

pub mod clock;
pub mod disk;
pub mod link;
pub mod network;
pub mod operator;
pub mod process;
mod target;
pub mod trigger;

pub use target::{Target, TargetSpec};

use crate::scenario::FaultSpec;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The `kind` of a fault, as files and `nemesis.kinds` name it.
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
    /// The node's next storage read (a get, a scan) fails: the node poisons itself, as
    /// after a write error; the nemesis's undo restarts it.
    ReadError,
    /// A node's disk syncs take `latency_ms` (the nemesis draws spikes); its undo returns
    /// to the scenario's `cluster.disk_sync_ms`.
    SlowDisk,
    /// One record of the node's data is damaged on its disk: the read that meets it
    /// fails its checksum, the node poisons itself, and once restarted (the nemesis's
    /// undo) drops the data and rebuilds it from its log or a peer's state.
    Corrupt,
    /// The leader of the range holding `key` (a workload key drawn at random if none)
    /// splits it before that key, through the range's log.
    Split,
    /// The leader of the range holding `key` (a workload key drawn at random if none)
    /// moves the replica on `from` (a follower; default: the leader chooses) to `to` (a
    /// node that hosts none; default: drawn at random): learner, catch-up, promotion,
    /// removal (`phantomdb::node` `replica_move.rs`).
    Move,
    /// A node of `[cluster] added_nodes` (`node`; default: the lowest still waiting)
    /// starts for the first time and joins the cluster, empty, for placement to fill.
    AddNode,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
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
            FaultKind::ReadError => "read_error",
            FaultKind::TransferLeader => "transfer_leader",
            FaultKind::AddVoter => "add_voter",
            FaultKind::RemoveVoter => "remove_voter",
            FaultKind::AddLearner => "add_learner",
            FaultKind::SetVoters => "set_voters",
            FaultKind::SlowDisk => "slow_disk",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Split => "split",
            FaultKind::Move => "move",
            FaultKind::AddNode => "add_node",
        }
    }

    /// The operator's membership changes (of group 1).
    pub fn changes_membership(self) -> bool {
        matches!(self, FaultKind::AddVoter | FaultKind::RemoveVoter | FaultKind::AddLearner | FaultKind::SetVoters)
    }

    /// The undos: the nemesis undoes its own faults, so it never draws these.
    pub fn is_undo(self) -> bool {
        matches!(self, FaultKind::Heal | FaultKind::Restart | FaultKind::Unclog)
    }

    /// The family that knows this kind.
    pub fn family(self) -> &'static dyn Family {
        match self {
            FaultKind::Partition | FaultKind::Isolate | FaultKind::Heal | FaultKind::Clog | FaultKind::Unclog => {
                &network::Network
            }
            FaultKind::Loss | FaultKind::Duplicate | FaultKind::Latency => &link::Link,
            FaultKind::Crash | FaultKind::Restart | FaultKind::AddNode => &process::Process,
            FaultKind::ClockSkew => &clock::Clock,
            FaultKind::DiskError | FaultKind::ReadError | FaultKind::SlowDisk | FaultKind::Corrupt => &disk::Disk,
            FaultKind::TransferLeader
            | FaultKind::AddVoter
            | FaultKind::RemoveVoter
            | FaultKind::AddLearner
            | FaultKind::SetVoters
            | FaultKind::Split
            | FaultKind::Move => &operator::Operator,
        }
    }
}

/// What is wrong with one field of a fault (or nemesis) spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

impl SpecError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        SpecError { field, message: message.into() }
    }
}

/// What the nemesis's draws may use: the cluster's size and the nemesis's bounds.
#[derive(Debug, Clone, Copy)]
pub struct NemesisBounds {
    pub nodes: u64,
    pub loss_max: f64,
    pub clock_offset_ms_max: i64,
    pub clock_drift_ppm_max: i64,
}

/// One nemesis fault and, if it has one, the action that undoes it when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    pub now: Action,
    pub undo: Option<Action>,
}

/// A family of faults: the part of each fault's life that comes before the run.
/// (Application is on each family's action type, in the simulated build only.)
pub trait Family: Sync {
    /// The spec fields `kind` takes; any other field given is refused before [`validate`].
    ///
    /// [`validate`]: Family::validate
    fn fields(&self, kind: FaultKind) -> &'static [&'static str];

    /// Checks that the fields `kind` needs are there and in range.
    fn validate(&self, kind: FaultKind, spec: &FaultSpec, nodes: u64) -> Result<(), SpecError>;

    /// The concrete action of a validated explicit fault (draws only for a "random" node).
    fn resolve(&self, kind: FaultKind, spec: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> Action;

    /// One random fault of `kind` (never an undo kind: validated), with its undo; `None`
    /// when the draw names nothing to do (a link from a node to itself).
    fn draw(&self, kind: FaultKind, bounds: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn>;
}

/// Node `n` of a spec field exists.
pub fn check_node(n: u64, nodes: u64, field: &'static str) -> Result<(), SpecError> {
    if n == 0 || n > nodes {
        return Err(SpecError::new(field, format!("node {n} does not exist (nodes are 1..={nodes})")));
    }
    Ok(())
}

/// `kind` needs `field`.
pub fn need(present: bool, kind: FaultKind, field: &'static str) -> Result<(), SpecError> {
    if present {
        Ok(())
    } else {
        Err(SpecError::new(field, format!("kind = \"{}\" needs `{field}`", kind.name())))
    }
}

/// A node of the cluster, drawn uniformly.
pub fn random_node(rng: &mut ChaCha8Rng, nodes: u64) -> u64 {
    use rand::Rng;
    rng.gen_range(1..=nodes)
}

/// A concrete fault, ready to fire. Serialized flat (`{"kind": "partition", ...}`), as
/// the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Action {
    Network(network::Action),
    Link(link::Action),
    Process(process::Action),
    Clock(clock::Action),
    Disk(disk::Action),
    Operator(operator::Action),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Network(a) => a.fmt(f),
            Action::Link(a) => a.fmt(f),
            Action::Process(a) => a.fmt(f),
            Action::Clock(a) => a.fmt(f),
            Action::Disk(a) => a.fmt(f),
            Action::Operator(a) => a.fmt(f),
        }
    }
}

#[cfg(madsim)]
impl Action {
    /// Applies the fault to the world now; what it did goes to the trace.
    pub(crate) fn apply(&self, world: &mut crate::world::World) -> FaultEvent {
        match self {
            Action::Network(a) => a.apply(world),
            Action::Link(a) => a.apply(world),
            Action::Process(a) => a.apply(world),
            Action::Clock(a) => a.apply(world),
            Action::Disk(a) => a.apply(world),
            Action::Operator(a) => a.apply(world),
        }
    }
}

/// Why a scheduled fault did nothing when it fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Skip {
    /// The target names no node that is up (a leader or follower, when none is).
    NoNodeUp,
    /// No node leads group 1, so no operator request can be made.
    NoLeader,
    /// A transfer to the node that leads already.
    AlreadyLeads(u64),
    /// Adding as a learner a node that is a voter.
    IsVoter(u64),
    /// Removing the last voter.
    LastVoter(u64),
    /// Damaging a disk while another node's damage is not yet repaired: a majority of
    /// replicas dropping their data at once can lose every copy of some state.
    DamageUnrepaired(u64),
    /// A move when every node hosts the range already.
    NowhereToMove,
    /// Adding a node that is not one waiting to be added (`[cluster] added_nodes`).
    NotAdded(u64),
    /// Adding a node when none is left waiting.
    NoneToAdd,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::NoNodeUp => write!(f, "no such node up"),
            Skip::NoLeader => write!(f, "no leader"),
            Skip::AlreadyLeads(n) => write!(f, "n{n} leads already"),
            Skip::IsVoter(n) => write!(f, "n{n} is a voter"),
            Skip::LastVoter(n) => write!(f, "n{n} is the last voter"),
            Skip::DamageUnrepaired(n) => write!(f, "n{n}'s damaged data is not yet rebuilt"),
            Skip::NowhereToMove => write!(f, "every node hosts the range"),
            Skip::NotAdded(n) => write!(f, "n{n} is not waiting to be added"),
            Skip::NoneToAdd => write!(f, "no node is left to add"),
        }
    }
}

/// What a fault did, as the trace records it: the action with every target resolved to a
/// node, or why it was skipped. The variants' order is part of the trace hash's encoding:
/// add new ones at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FaultEvent {
    Network(network::Applied),
    Link(link::Applied),
    Process(process::Applied),
    Clock(clock::Applied),
    Disk(disk::Applied),
    Operator(operator::Applied),
    Skipped { action: Action, reason: Skip },
}

impl std::fmt::Display for FaultEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultEvent::Network(e) => e.fmt(f),
            FaultEvent::Link(e) => e.fmt(f),
            FaultEvent::Process(e) => e.fmt(f),
            FaultEvent::Clock(e) => e.fmt(f),
            FaultEvent::Disk(e) => e.fmt(f),
            FaultEvent::Operator(e) => e.fmt(f),
            FaultEvent::Skipped { action, reason } => write!(f, "{action}: {reason}, skipped"),
        }
    }
}
