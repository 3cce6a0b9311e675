//! A scenario file as written: every field optional (the seed fills what is left open),
//! unknown fields refused.

use crate::faults::{FaultKind, TargetSpec};
use phantomdb::raft::PlantedBug;
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<String>,
    pub description: Option<String>,
    pub planted_bug: Option<PlantedBug>,
    /// Fault points inside the product (`phantomdb::buggify`): on or off; by seed when
    /// left out (on for half the seeds). Which sites a seed arms is the seed's.
    pub buggify: Option<bool>,
    /// With buggify on: exactly these sites armed (`phantomdb::buggify::SITES`), instead
    /// of the seed's draw; a shrunk scenario pins the few it needs.
    pub buggify_sites: Option<Vec<String>>,
    /// "Sometimes" marks (`phantomdb::sometimes::MARKS`) a `--seeds` sweep must reach in
    /// at least one seed, or it fails: coverage of rare states cannot silently decay.
    #[serde(default)]
    pub require_marks: Vec<String>,
    /// The `replica_balance` check must hold: by the end of the healed phase placement has
    /// brought every server's replica count within one of the mean (default false: the
    /// check only notes the counts).
    pub require_balance: Option<bool>,
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
    /// Ranges the key space is cut into, each one Raft group (default 1). With hash
    /// sharding, equal intervals of Redis Cluster's slots.
    pub groups: Option<u64>,
    /// How keys map to ranges: "hash" (by slot, the default) or "range" (keys in byte
    /// order, cut at `split_points`: k points make k + 1 ranges).
    pub sharding: Option<phantomdb::keyspace::Sharding>,
    pub split_points: Option<Vec<String>>,
    /// Replicas of each range, placed round-robin over the initial voters (default: every
    /// initial voter hosts every range).
    pub replication_factor: Option<u64>,
    /// A range's leader splits it past this many bytes of keys and values (default: the
    /// real build's 64 MiB, which no scenario reaches; 0: never), or past this many
    /// requests a second for two seconds (default 0: never).
    pub range_bytes_max: Option<u64>,
    pub range_ops_per_s_max: Option<u64>,
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
    /// The last `added_nodes` voters start empty and down: the ranges are placed over the
    /// others, and each joins when an `add_node` fault (or the heal) starts it, for
    /// placement to fill. Default 0.
    pub added_nodes: Option<u64>,
    /// Whether the meta range's leader balances replicas and leaders (`phantomdb::placement`;
    /// default true, as in the real build).
    pub placement: Option<bool>,
    /// A server silent this long is dead to placement, which moves its replicas away
    /// (default: the real build's 60 s, which no fault lasts).
    pub node_dead_ms: Option<u64>,
    /// Each disk sync takes a time drawn from this range, in ms, so that a crash can land
    /// between a write and its sync. Default: by seed, none for half the seeds, else
    /// [0, 2] or [1, 8]; `[0, 0]` for syncs that take no time.
    pub disk_sync_ms: Option<[u64; 2]>,
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

/// One explicit fault. Which fields a kind needs is checked by its family (`crate::faults`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When it fires; with `on`, from when its trigger is armed (default 0).
    pub at_ms: Option<u64>,
    pub kind: FaultKind,
    /// Fire on a node event instead of at a time (see `faults::trigger`).
    pub on: Option<crate::faults::trigger::Moment>,
    /// With `on`: how long after the event it fires (default [0, 0]), how many times the
    /// trigger may fire (default 1), and when its undo follows (default: never; the heal
    /// undoes everything).
    pub delay_ms: Option<[u64; 2]>,
    pub times: Option<u32>,
    pub undo_after_ms: Option<[u64; 2]>,
    pub node: Option<TargetSpec>,
    /// `partition`: the sides, each a list of nodes (unlisted nodes form one more side).
    /// Accepted under its old name, `groups`, too (a group is a Raft group now).
    #[serde(alias = "groups")]
    pub sides: Option<Vec<Vec<u64>>>,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub rate: Option<f64>,
    pub latency_ms: Option<[u64; 2]>,
    pub offset_ms: Option<i64>,
    pub drift_ppm: Option<i64>,
    pub voters: Option<Vec<u64>>,
    /// `split`: the user key the range is split before.
    pub key: Option<String>,
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
    /// How many faults at moments (triggers, `faults::trigger`) the nemesis draws per
    /// seed, among its kinds (crash, isolate): default [0, 3].
    pub triggers: Option<[u64; 2]>,
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
