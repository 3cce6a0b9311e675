//! A node's settings, from flags, a TOML file, or both (flags win). Field names are an
//! interface: the TOML keys are the flag names without `--`.
//!
//! ```toml
//! id = 1
//! data-dir = "/var/lib/phantomdb/1"
//! peer-addr = "127.0.0.1:9001"
//! resp-addr = "127.0.0.1:7001"
//! admin-addr = "127.0.0.1:8001"
//! initial-cluster = "1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003"
//! cluster-secret-file = "/etc/phantomdb/secret"
//! ```

use crate::keyspace::{Keyspace, Sharding};
use crate::kv::COMMAND_BYTES_MAX;
use crate::node::{SplitPolicy, RANGE_BYTES_MAX_DEFAULT};
use crate::raft;
use crate::NodeId;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The largest value a client may set; leaves room in a log entry for the key and the
/// command's encoding.
pub const VALUE_BYTES_LIMIT: usize = COMMAND_BYTES_MAX - 64 * 1024;
/// The largest cluster secret file read.
const SECRET_FILE_BYTES_MAX: u64 = 64 * 1024;
/// A secret shorter than this is refused: it could be guessed.
pub const SECRET_BYTES_MIN: usize = 16;

/// Settings as given, before validation: every field optional. Deserialized from TOML
/// with unknown keys refused, and filled from flags by [`super::cli`].
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSettings {
    pub id: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub peer_addr: Option<String>,
    pub resp_addr: Option<String>,
    pub admin_addr: Option<String>,
    pub initial_cluster: Option<String>,
    pub cluster_secret_file: Option<PathBuf>,
    pub resp_password_file: Option<PathBuf>,
    pub max_value_bytes: Option<u64>,
    pub max_clients: Option<u64>,
    pub sync_writes: Option<bool>,
    pub request_timeout_ms: Option<u64>,
    pub snapshot_entries: Option<u64>,
    pub initial_voters: Option<String>,
    pub lease_reads: Option<bool>,
    pub clock_drift_ppm_max: Option<u64>,
    pub election_timeout_ms: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
    pub sharding: Option<Sharding>,
    pub ranges: Option<u64>,
    pub split_points: Option<String>,
    pub replication_factor: Option<u64>,
    pub range_bytes_max: Option<u64>,
    pub range_ops_per_s_max: Option<u64>,
    pub placement: Option<bool>,
    pub joining: Option<String>,
    pub node_dead_ms: Option<u64>,
}

impl RawSettings {
    /// Reads a TOML config file. Errors name the file and, for syntax, the line.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.to_string().trim_end()))
    }

    /// `self` with every field `over` sets replaced.
    pub fn overlay(self, over: RawSettings) -> RawSettings {
        RawSettings {
            id: over.id.or(self.id),
            data_dir: over.data_dir.or(self.data_dir),
            peer_addr: over.peer_addr.or(self.peer_addr),
            resp_addr: over.resp_addr.or(self.resp_addr),
            admin_addr: over.admin_addr.or(self.admin_addr),
            initial_cluster: over.initial_cluster.or(self.initial_cluster),
            cluster_secret_file: over.cluster_secret_file.or(self.cluster_secret_file),
            resp_password_file: over.resp_password_file.or(self.resp_password_file),
            max_value_bytes: over.max_value_bytes.or(self.max_value_bytes),
            max_clients: over.max_clients.or(self.max_clients),
            sync_writes: over.sync_writes.or(self.sync_writes),
            request_timeout_ms: over.request_timeout_ms.or(self.request_timeout_ms),
            snapshot_entries: over.snapshot_entries.or(self.snapshot_entries),
            initial_voters: over.initial_voters.or(self.initial_voters),
            lease_reads: over.lease_reads.or(self.lease_reads),
            clock_drift_ppm_max: over.clock_drift_ppm_max.or(self.clock_drift_ppm_max),
            election_timeout_ms: over.election_timeout_ms.or(self.election_timeout_ms),
            heartbeat_interval_ms: over.heartbeat_interval_ms.or(self.heartbeat_interval_ms),
            sharding: over.sharding.or(self.sharding),
            ranges: over.ranges.or(self.ranges),
            split_points: over.split_points.or(self.split_points),
            replication_factor: over.replication_factor.or(self.replication_factor),
            range_bytes_max: over.range_bytes_max.or(self.range_bytes_max),
            range_ops_per_s_max: over.range_ops_per_s_max.or(self.range_ops_per_s_max),
            placement: over.placement.or(self.placement),
            joining: over.joining.or(self.joining),
            node_dead_ms: over.node_dead_ms.or(self.node_dead_ms),
        }
    }
}

/// The smallest `--range-bytes-max`: smaller, ranges would split on every few writes.
const RANGE_BYTES_MIN: u64 = 1024;

/// Validated settings of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    pub id: NodeId,
    pub data_dir: PathBuf,
    pub peer_addr: SocketAddr,
    /// `None`: no client port (the node still replicates and forwards).
    pub resp_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    pub initial_cluster: BTreeMap<NodeId, SocketAddr>,
    pub cluster_secret_file: Option<PathBuf>,
    pub resp_password_file: Option<PathBuf>,
    pub max_value_bytes: usize,
    pub max_clients: usize,
    pub sync_writes: bool,
    pub request_timeout_ms: u64,
    pub snapshot_entries: u64,
    /// The nodes of `initial_cluster` that form the group at its creation; the others
    /// run outside it until a membership change adds them. Default: all.
    pub initial_voters: Vec<NodeId>,
    pub lease_reads: bool,
    pub clock_drift_ppm_max: u64,
    /// When a range's leader splits it on its own (`node::SplitPolicy`).
    pub split: SplitPolicy,
    /// Whether this node, leading the meta range, balances replicas and leaders.
    pub placement: bool,
    /// How long a node may be silent before placement moves its replicas away.
    pub node_dead_ms: u64,
    /// Raft timing (`None`: `raft::Config`'s defaults): elections start after a silence
    /// drawn from `[election_timeout_ms, 2 × election_timeout_ms)` (Raft §5.2), and a
    /// leader sends a heartbeat every `heartbeat_interval_ms`.
    pub election_timeout_ms: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
    /// How the key space is cut into ranges and where their replicas are, fixed when
    /// the cluster is created (a node refuses to start on data written with another
    /// sharding mode): from `--sharding`, `--ranges` or `--split-points`, and
    /// `--replication-factor` (default 3, or every voter if fewer), placed over the
    /// initial voters not `--joining`.
    pub keyspace: Keyspace,
}

/// The cut and the placement the flags ask for.
fn keyspace(
    sharding: Sharding,
    ranges: Option<u64>,
    split_points: Option<&str>,
    replication_factor: Option<u64>,
    voters: &[NodeId],
) -> Result<Keyspace, String> {
    let cut = match (sharding, split_points) {
        (Sharding::Hash, Some(_)) => return Err("--split-points cut keys in byte order: needs --sharding range".into()),
        (Sharding::Range, Some(_)) if ranges.is_some() => {
            return Err("--ranges and --split-points: give one (k split points make k + 1 ranges)".into())
        }
        (Sharding::Hash, None) => Keyspace::hashed(ranges.unwrap_or(1)).map_err(|e| format!("--ranges: {e}"))?,
        (Sharding::Range, None) if ranges.is_some_and(|n| n > 1) => {
            return Err("--ranges with --sharding range: give --split-points instead".into())
        }
        (Sharding::Range, points) => {
            let points = points.map(|p| p.split(',').map(|k| k.as_bytes().to_vec()).collect());
            Keyspace::ranged(points.unwrap_or_default()).map_err(|e| format!("--split-points: {e}"))?
        }
    };
    let factor = replication_factor.map_or(voters.len().min(3), |f| f as usize);
    cut.place(voters, factor).map_err(|e| format!("--replication-factor: {e}"))
}

fn addr(field: &str, v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| format!("{field} {v:?}: expected HOST:PORT, e.g. 127.0.0.1:9001"))
}

impl NodeSettings {
    /// Checks everything that can be checked without touching the disk or the network.
    pub fn validate(raw: RawSettings) -> Result<Self, String> {
        let id = raw.id.ok_or("--id is required")?;
        if id == 0 {
            return Err("--id 0: node ids start at 1".into());
        }
        let cluster = parse_cluster(&raw.initial_cluster.ok_or("--initial-cluster is required")?)?;
        if !cluster.contains_key(&id) {
            return Err(format!("--initial-cluster does not list this node (--id {id})"));
        }
        let peer_addr = addr("--peer-addr", &raw.peer_addr.ok_or("--peer-addr is required")?)?;
        let resp_addr = raw.resp_addr.as_deref().map(|v| addr("--resp-addr", v)).transpose()?;
        let admin_addr = raw.admin_addr.as_deref().map(|v| addr("--admin-addr", v)).transpose()?;
        let max_value_bytes = raw.max_value_bytes.unwrap_or(512 * 1024);
        if max_value_bytes == 0 || max_value_bytes > VALUE_BYTES_LIMIT as u64 {
            return Err(format!("--max-value-bytes {max_value_bytes}: expected 1 to {VALUE_BYTES_LIMIT}"));
        }
        let max_clients = raw.max_clients.unwrap_or(1024);
        if !(1..=100_000).contains(&max_clients) {
            return Err(format!("--max-clients {max_clients}: expected 1 to 100000"));
        }
        let request_timeout_ms = raw.request_timeout_ms.unwrap_or(2_000);
        if !(100..=600_000).contains(&request_timeout_ms) {
            return Err(format!("--request-timeout-ms {request_timeout_ms}: expected 100 to 600000"));
        }
        let snapshot_entries = raw.snapshot_entries.unwrap_or(10_000);
        if !(1..=100_000_000).contains(&snapshot_entries) {
            return Err(format!("--snapshot-entries {snapshot_entries}: expected 1 to 100000000"));
        }
        let clock_drift_ppm_max = raw.clock_drift_ppm_max.unwrap_or(10_000);
        if clock_drift_ppm_max > 500_000 {
            return Err(format!("--clock-drift-ppm-max {clock_drift_ppm_max}: expected 0 to 500000"));
        }
        let initial_voters: Vec<NodeId> = match &raw.initial_voters {
            None => cluster.keys().copied().collect(),
            Some(list) => parse_ids("--initial-voters", list, &cluster)?,
        };
        // Joining nodes are servers from the start, but the ranges are placed over the
        // others: placement fills them once they run.
        let joining = match &raw.joining {
            None => Vec::new(),
            Some(list) => parse_ids("--joining", list, &cluster)?,
        };
        if let Some(n) = joining.iter().find(|n| !initial_voters.contains(n)) {
            return Err(format!("--joining: node {n} is not one of the initial voters"));
        }
        let placed: Vec<NodeId> = initial_voters.iter().copied().filter(|n| !joining.contains(n)).collect();
        if placed.is_empty() {
            return Err("--joining lists every initial voter: the ranges need one to start on".into());
        }
        let keyspace = keyspace(
            raw.sharding.unwrap_or_default(),
            raw.ranges,
            raw.split_points.as_deref(),
            raw.replication_factor,
            &placed,
        )?;
        for (flag, value) in
            [("--election-timeout-ms", raw.election_timeout_ms), ("--heartbeat-interval-ms", raw.heartbeat_interval_ms)]
        {
            if let Some(v) = value {
                if !(1..=600_000).contains(&v) {
                    return Err(format!("{flag} {v}: expected 1 to 600000"));
                }
            }
        }
        let range_bytes_max = raw.range_bytes_max.unwrap_or(RANGE_BYTES_MAX_DEFAULT);
        if (1..RANGE_BYTES_MIN).contains(&range_bytes_max) {
            return Err(format!(
                "--range-bytes-max {range_bytes_max}: expected 0 (never) or {RANGE_BYTES_MIN} and more"
            ));
        }
        let node_dead_ms = raw.node_dead_ms.unwrap_or(crate::placement::NODE_DEAD_MS_DEFAULT);
        let silent_ms = crate::placement::NODE_SILENT_MS;
        if !(silent_ms..=86_400_000).contains(&node_dead_ms) {
            return Err(format!("--node-dead-ms {node_dead_ms}: expected {silent_ms} to 86400000"));
        }
        let settings = NodeSettings {
            id,
            data_dir: raw.data_dir.ok_or("--data-dir is required")?,
            peer_addr,
            resp_addr,
            admin_addr,
            initial_cluster: cluster,
            cluster_secret_file: raw.cluster_secret_file,
            resp_password_file: raw.resp_password_file,
            max_value_bytes: max_value_bytes as usize,
            max_clients: max_clients as usize,
            sync_writes: raw.sync_writes.unwrap_or(true),
            request_timeout_ms,
            snapshot_entries,
            initial_voters,
            lease_reads: raw.lease_reads.unwrap_or(false),
            clock_drift_ppm_max,
            split: SplitPolicy { range_bytes_max, range_ops_per_s_max: raw.range_ops_per_s_max.unwrap_or(0) },
            placement: raw.placement.unwrap_or(true),
            node_dead_ms,
            election_timeout_ms: raw.election_timeout_ms,
            heartbeat_interval_ms: raw.heartbeat_interval_ms,
            keyspace,
        };
        // The Raft settings must hold together (heartbeats inside the election timeout, a
        // lease left after the drift bound): ask the one place that knows.
        settings.raft_config().validate().map_err(|e| {
            format!("--election-timeout-ms, --heartbeat-interval-ms, --lease-reads, --clock-drift-ppm-max: {e}")
        })?;
        Ok(settings)
    }

    /// The Raft settings of this node's groups: `raft::Config`'s defaults, with what the
    /// flags set.
    pub fn raft_config(&self) -> raft::Config {
        let mut r = raft::Config::new(self.id, 1, self.initial_voters.clone());
        if let Some(ms) = self.election_timeout_ms {
            r.election_timeout_ms_min = ms;
            r.election_timeout_ms_max = 2 * ms;
        }
        if let Some(ms) = self.heartbeat_interval_ms {
            r.heartbeat_interval_ms = ms;
        }
        r.lease_reads = self.lease_reads;
        r.clock_drift_ppm_max = self.clock_drift_ppm_max;
        r
    }
}

/// A comma-separated list of node ids, each of which must be in `cluster`.
pub fn parse_ids(flag: &str, list: &str, cluster: &BTreeMap<NodeId, SocketAddr>) -> Result<Vec<NodeId>, String> {
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let id: NodeId = part.trim().parse().map_err(|_| format!("{flag}: {part:?} is not a node id"))?;
        if !cluster.contains_key(&id) {
            return Err(format!("{flag}: node {id} is not in --initial-cluster"));
        }
        out.push(id);
    }
    if out.is_empty() {
        return Err(format!("{flag} is empty"));
    }
    Ok(out)
}

pub fn parse_cluster(v: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut out = BTreeMap::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (id, a) = part.split_once('=').ok_or_else(|| format!("--initial-cluster: {part:?} is not ID=HOST:PORT"))?;
        let id: NodeId = id.parse().map_err(|_| format!("--initial-cluster: {id:?} is not a node id"))?;
        let a: SocketAddr = a.parse().map_err(|_| format!("--initial-cluster: {a:?} is not HOST:PORT"))?;
        if id == 0 || out.insert(id, a).is_some() {
            return Err(format!("--initial-cluster: node id {id} is 0 or listed twice"));
        }
    }
    if out.is_empty() {
        return Err("--initial-cluster is empty".into());
    }
    Ok(out)
}

/// Reads a secret (cluster secret, RESP password) from a file: its bytes without one
/// trailing newline. `flag` names the setting in errors.
pub fn read_secret_file(flag: &str, path: &Path, bytes_min: usize) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if meta.len() > SECRET_FILE_BYTES_MAX {
        return Err(format!("{flag} {}: larger than {SECRET_FILE_BYTES_MAX} bytes", path.display()));
    }
    let mut bytes = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.len() < bytes_min {
        return Err(format!("{flag} {}: {} bytes; at least {bytes_min} are needed", path.display(), bytes.len()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RawSettings {
        RawSettings {
            id: Some(1),
            data_dir: Some("/d".into()),
            peer_addr: Some("127.0.0.1:9001".into()),
            initial_cluster: Some("1=127.0.0.1:9001,2=127.0.0.1:9002".into()),
            ..Default::default()
        }
    }

    #[test]
    fn toml_uses_the_flag_names() {
        let raw: RawSettings = toml::from_str(
            "id = 2\ndata-dir = \"/d\"\npeer-addr = \"127.0.0.1:9002\"\nresp-addr = \"127.0.0.1:7002\"\n\
             initial-cluster = \"1=127.0.0.1:9001,2=127.0.0.1:9002\"\nsync-writes = false\n",
        )
        .unwrap();
        let s = NodeSettings::validate(raw).unwrap();
        assert_eq!(s.id, 2);
        assert_eq!(s.resp_addr, Some("127.0.0.1:7002".parse().unwrap()));
        assert!(!s.sync_writes);
        assert_eq!(s.max_value_bytes, 512 * 1024);
    }

    #[test]
    fn unknown_or_mistyped_keys_name_the_line() {
        let e = toml::from_str::<RawSettings>("id = 1\nresp_addr = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("resp_addr"), "{e}");
        let e = toml::from_str::<RawSettings>("id = \"one\"\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn flags_overlay_the_file() {
        let file = RawSettings { id: Some(1), max_clients: Some(5), ..full() };
        let flags = RawSettings { max_clients: Some(9), ..Default::default() };
        let s = NodeSettings::validate(file.overlay(flags)).unwrap();
        assert_eq!((s.id, s.max_clients), (1, 9));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let check = |raw: RawSettings, needle: &str| {
            let e = NodeSettings::validate(raw).unwrap_err();
            assert!(e.contains(needle), "{e} should mention {needle}");
        };
        check(RawSettings { id: None, ..full() }, "--id is required");
        check(RawSettings { id: Some(3), ..full() }, "does not list");
        check(RawSettings { resp_addr: Some("nope".into()), ..full() }, "--resp-addr");
        check(RawSettings { max_value_bytes: Some(u64::MAX), ..full() }, "--max-value-bytes");
        check(RawSettings { initial_cluster: Some("1=127.0.0.1:1,1=127.0.0.1:2".into()), ..full() }, "twice");
        check(RawSettings { heartbeat_interval_ms: Some(0), ..full() }, "--heartbeat-interval-ms 0");
        let slow_heartbeat = RawSettings { election_timeout_ms: Some(100), heartbeat_interval_ms: Some(100), ..full() };
        check(slow_heartbeat, "not above the heartbeat interval");
        check(RawSettings { election_timeout_ms: Some(3), lease_reads: Some(true), ..full() }, "--lease-reads");
        check(RawSettings { range_bytes_max: Some(10), ..full() }, "--range-bytes-max 10: expected 0 (never) or 1024");
    }

    #[test]
    fn split_thresholds_default_to_64_mib_and_no_load_splits() {
        let s = NodeSettings::validate(full()).unwrap();
        assert_eq!(s.split, SplitPolicy { range_bytes_max: 64 << 20, range_ops_per_s_max: 0 });
        let s =
            NodeSettings::validate(RawSettings { range_bytes_max: Some(0), range_ops_per_s_max: Some(500), ..full() })
                .unwrap();
        assert_eq!(s.split, SplitPolicy { range_bytes_max: 0, range_ops_per_s_max: 500 });
    }

    #[test]
    fn timing_flags_reach_the_raft_settings_and_defaults_stay_raft_s() {
        let s = NodeSettings::validate(full()).unwrap();
        let defaults = raft::Config::new(1, 1, vec![1, 2]);
        let r = s.raft_config();
        assert_eq!(
            (r.election_timeout_ms_min, r.election_timeout_ms_max),
            (defaults.election_timeout_ms_min, defaults.election_timeout_ms_max)
        );
        assert_eq!(r.heartbeat_interval_ms, defaults.heartbeat_interval_ms);
        let raw = RawSettings { election_timeout_ms: Some(1_000), heartbeat_interval_ms: Some(100), ..full() };
        let r = NodeSettings::validate(raw).unwrap().raft_config();
        assert_eq!(
            (r.election_timeout_ms_min, r.election_timeout_ms_max, r.heartbeat_interval_ms),
            (1_000, 2_000, 100)
        );
    }

    #[test]
    fn secrets_are_read_without_their_newline_and_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "0123456789abcdef\n").unwrap();
        assert_eq!(read_secret_file("--x", &p, 16).unwrap(), b"0123456789abcdef");
        std::fs::write(&p, "short\n").unwrap();
        assert!(read_secret_file("--x", &p, 16).unwrap_err().contains("at least 16"));
        assert!(read_secret_file("--x", &dir.path().join("none"), 1).unwrap_err().starts_with("--x "));
    }

    #[test]
    fn joining_nodes_are_voters_that_start_with_no_replica() {
        let five = "1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003,4=127.0.0.1:9004,5=127.0.0.1:9005";
        let raw = |joining: &str| RawSettings {
            initial_cluster: Some(five.into()),
            ranges: Some(4),
            joining: Some(joining.into()),
            ..full()
        };
        let s = NodeSettings::validate(raw("4,5")).unwrap();
        assert_eq!(s.initial_voters, [1, 2, 3, 4, 5], "servers from the start");
        for r in s.keyspace.ranges() {
            assert_eq!(r.replicas, [1, 2, 3], "range {} is placed over 1..=3", r.id);
        }
        assert!(s.placement, "placement is on by default");
        let e = NodeSettings::validate(RawSettings { initial_voters: Some("1,2,3".into()), ..raw("4") }).unwrap_err();
        assert_eq!(e, "--joining: node 4 is not one of the initial voters");
        let e = NodeSettings::validate(raw("1,2,3,4,5")).unwrap_err();
        assert!(e.contains("every initial voter"), "{e}");
        assert!(NodeSettings::validate(raw("6")).unwrap_err().contains("node 6 is not in --initial-cluster"));
    }
}
