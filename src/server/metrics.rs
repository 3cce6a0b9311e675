//! The node's metrics, rendered in the Prometheus text exposition format (version 0.0.4)
//! for the admin endpoint's `/metrics`.
//!
//! Counters and histograms are lock-free atomics updated on the request path; gauges that
//! describe Raft come from the node's published [`NodeStatus`] at render time.

use super::resp::COMMANDS;
use crate::node::NodeStatus;
use crate::NodeId;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds (a latency above the last counts in `+Inf`).
const BUCKETS_S: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKETS_S.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let slot = BUCKETS_S.iter().position(|&b| s <= b).unwrap_or(BUCKETS_S.len());
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_S.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[BUCKETS_S.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// How a request ended, for `phantomdb_requests_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused before running (arity, syntax, unknown command, auth).
    Refused,
    /// `-TRYAGAIN`: definitely not applied.
    TryAgain,
    /// `-UNCERTAIN`: may or may not have been applied.
    Uncertain,
}

const OUTCOMES: [(Outcome, &str); 4] = [
    (Outcome::Ok, "ok"),
    (Outcome::Refused, "refused"),
    (Outcome::TryAgain, "tryagain"),
    (Outcome::Uncertain, "uncertain"),
];

/// The transport's view of its peers: each peer with whether our outbound connection is
/// up, and the count of inbound connections refused for failing authentication.
pub type PeerReport = (Vec<(NodeId, bool)>, u64);

#[derive(Debug, Default)]
pub struct Metrics {
    /// Per command of [`COMMANDS`] (same order), then one slot for unknown commands.
    requests: Vec<[AtomicU64; 4]>,
    latency: Vec<Histogram>,
    pub storage_sync: Histogram,
    pub resp_connections_open: AtomicU64,
    pub resp_connections_total: AtomicU64,
    /// Connections refused at the connection limit.
    pub resp_connections_rejected: AtomicU64,
    /// Connections closed for malformed or oversized input.
    pub resp_protocol_errors: AtomicU64,
}

impl Metrics {
    pub fn new() -> Self {
        let n = COMMANDS.len() + 1;
        Metrics {
            requests: (0..n).map(|_| Default::default()).collect(),
            latency: (0..n).map(|_| Histogram::default()).collect(),
            ..Default::default()
        }
    }

    /// The slot of a command name (lowercase), `None` for an unknown one.
    pub fn slot(name: &str) -> usize {
        COMMANDS.iter().position(|c| c.name == name).unwrap_or(COMMANDS.len())
    }

    pub fn record(&self, slot: usize, outcome: Outcome, took: Duration) {
        let o = OUTCOMES.iter().position(|(x, _)| *x == outcome).expect("every outcome is listed");
        self.requests[slot][o].fetch_add(1, Relaxed);
        self.latency[slot].observe(took);
    }

    pub fn render(&self, status: &NodeStatus, peers: Option<PeerReport>) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let name_of = |slot: usize| COMMANDS.get(slot).map_or("unknown", |c| c.name);
        header(&mut out, "phantomdb_requests_total", "counter", "RESP requests by command and outcome.");
        for (slot, counts) in self.requests.iter().enumerate() {
            for (i, (_, outcome)) in OUTCOMES.iter().enumerate() {
                let v = counts[i].load(Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "phantomdb_requests_total{{command=\"{}\",outcome=\"{outcome}\"}} {v}",
                        name_of(slot)
                    );
                }
            }
        }
        header(&mut out, "phantomdb_request_duration_seconds", "histogram", "RESP request latency by command.");
        for (slot, h) in self.latency.iter().enumerate() {
            if h.buckets.iter().any(|b| b.load(Relaxed) > 0) {
                h.render(&mut out, "phantomdb_request_duration_seconds", &format!("command=\"{}\"", name_of(slot)));
            }
        }
        header(&mut out, "phantomdb_storage_sync_duration_seconds", "histogram", "Latency of storage syncs (fsync).");
        self.storage_sync.render(&mut out, "phantomdb_storage_sync_duration_seconds", "");
        let gauges: [(&str, &str, &str, u64); 16] = [
            ("phantomdb_raft_term", "gauge", "Current Raft term.", status.term),
            (
                "phantomdb_raft_is_leader",
                "gauge",
                "1 if this node leads its group.",
                u64::from(status.role == "leader"),
            ),
            ("phantomdb_raft_leader_id", "gauge", "The known leader's id (0: none).", status.leader.unwrap_or(0)),
            ("phantomdb_raft_last_index", "gauge", "Index of the last log entry.", status.last_index),
            ("phantomdb_raft_commit_index", "gauge", "Highest index known committed.", status.commit_index),
            (
                "phantomdb_raft_applied_index",
                "gauge",
                "Highest index applied to the state machine.",
                status.applied_index,
            ),
            ("phantomdb_raft_elections_total", "counter", "Elections this process started.", status.elections_started),
            ("phantomdb_keys", "gauge", "Keys in the state machine.", status.keys),
            ("phantomdb_raft_snapshot_index", "gauge", "Last index of the latest snapshot.", status.snapshot_index),
            (
                "phantomdb_raft_snapshots_taken_total",
                "counter",
                "Snapshots taken (log compactions).",
                status.snapshots_taken,
            ),
            (
                "phantomdb_raft_snapshots_installed_total",
                "counter",
                "Snapshots installed from a leader.",
                status.snapshots_installed,
            ),
            (
                "phantomdb_raft_lease_reads_total",
                "counter",
                "Reads answered from the leader lease.",
                status.lease_reads,
            ),
            (
                "phantomdb_raft_clock_drift_violations_total",
                "counter",
                "Followers' clocks seen beyond the drift bound (they back no lease for a while).",
                status.drift_violations,
            ),
            ("phantomdb_pending_requests", "gauge", "Requests waiting for an answer.", status.pending_requests),
            ("phantomdb_resp_connections", "gauge", "Open RESP connections.", self.resp_connections_open.load(Relaxed)),
            (
                "phantomdb_resp_protocol_errors_total",
                "counter",
                "RESP connections closed for malformed or oversized input.",
                self.resp_protocol_errors.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(&mut out, "phantomdb_resp_connections_total", "counter", "RESP connections accepted.");
        let _ = writeln!(out, "phantomdb_resp_connections_total {}", self.resp_connections_total.load(Relaxed));
        header(
            &mut out,
            "phantomdb_resp_connections_rejected_total",
            "counter",
            "RESP connections refused at the limit.",
        );
        let _ =
            writeln!(out, "phantomdb_resp_connections_rejected_total {}", self.resp_connections_rejected.load(Relaxed));
        header(&mut out, "phantomdb_raft_follower_lag_entries", "gauge", "On the leader: entries each follower lacks.");
        for f in &status.followers {
            let _ = writeln!(out, "phantomdb_raft_follower_lag_entries{{peer=\"{}\"}} {}", f.id, f.lag);
        }
        if let Some((connected, auth_failures)) = peers {
            header(&mut out, "phantomdb_peer_connected", "gauge", "1 if the outbound connection to the peer is up.");
            for (id, up) in connected {
                let _ = writeln!(out, "phantomdb_peer_connected{{peer=\"{id}\"}} {}", u8::from(up));
            }
            header(
                &mut out,
                "phantomdb_peer_auth_failures_total",
                "counter",
                "Inbound peers refused: bad cluster secret.",
            );
            let _ = writeln!(out, "phantomdb_peer_auth_failures_total {auth_failures}");
        }
        out
    }
}

/// The ranges: how many the key space is cut into, the replicas this node hosts and the
/// ranges it leads, and each hosted range's keys and leader.
pub fn render_ranges(ranges: usize, hosted: &[NodeStatus]) -> String {
    let mut out = String::new();
    let leading = hosted.iter().filter(|s| s.role == "leader").count();
    let rebuilding = hosted.iter().filter(|s| s.rebuilding).count();
    for (name, help, value) in [
        ("phantomdb_ranges", "Ranges the key space is cut into, the meta range among them.", ranges),
        ("phantomdb_replicas", "Range replicas this node hosts.", hosted.len()),
        ("phantomdb_leaders", "Ranges this node leads.", leading),
        (
            "phantomdb_replicas_rebuilding",
            "Replicas whose data was dropped as corrupt, waiting for a peer's state.",
            rebuilding,
        ),
    ] {
        header(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let splits: u64 = hosted.iter().map(|s| s.splits).sum();
    let help = "Splits the ranges hosted here applied since the process started.";
    header(&mut out, "phantomdb_range_splits_total", "counter", help);
    let _ = writeln!(out, "phantomdb_range_splits_total {splits}");
    let ops: u64 = hosted.iter().map(|s| s.placement_ops).sum();
    let help = "Replica moves and leadership transfers placement ordered that this node started as the ranges' leader.";
    header(&mut out, "phantomdb_placement_operations_total", "counter", help);
    let _ = writeln!(out, "phantomdb_placement_operations_total {ops}");
    header(&mut out, "phantomdb_range_keys", "gauge", "Keys of each range hosted here, as applied here.");
    for s in hosted {
        let _ = writeln!(out, "phantomdb_range_keys{{range=\"{}\"}} {}", s.group, s.keys);
    }
    header(&mut out, "phantomdb_range_bytes", "gauge", "Bytes of keys and values of each range hosted here.");
    for s in hosted {
        let _ = writeln!(out, "phantomdb_range_bytes{{range=\"{}\"}} {}", s.group, s.bytes);
    }
    header(&mut out, "phantomdb_range_ops_per_second", "gauge", "Requests a second each range led here took.");
    for s in hosted.iter().filter(|s| s.role == "leader") {
        let _ = writeln!(out, "phantomdb_range_ops_per_second{{range=\"{}\"}} {}", s.group, s.ops_per_s);
    }
    header(&mut out, "phantomdb_range_leader_id", "gauge", "Each hosted range's known leader (0: none).");
    for s in hosted {
        let _ = writeln!(out, "phantomdb_range_leader_id{{range=\"{}\"}} {}", s.group, s.leader.unwrap_or(0));
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counted() {
        let m = Metrics::new();
        let get = Metrics::slot("get");
        m.record(get, Outcome::Ok, Duration::from_micros(80));
        m.record(get, Outcome::Ok, Duration::from_millis(3));
        m.record(get, Outcome::TryAgain, Duration::from_secs(20));
        m.record(Metrics::slot("nope"), Outcome::Refused, Duration::ZERO);
        let text = m.render(&NodeStatus { term: 7, ..Default::default() }, None);
        assert!(text.contains("phantomdb_requests_total{command=\"get\",outcome=\"ok\"} 2\n"), "{text}");
        assert!(text.contains("phantomdb_requests_total{command=\"unknown\",outcome=\"refused\"} 1\n"));
        assert!(text.contains("phantomdb_request_duration_seconds_bucket{command=\"get\",le=\"0.0001\"} 1\n"));
        assert!(text.contains("phantomdb_request_duration_seconds_bucket{command=\"get\",le=\"0.005\"} 2\n"));
        assert!(text.contains("phantomdb_request_duration_seconds_bucket{command=\"get\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("phantomdb_request_duration_seconds_count{command=\"get\"} 3\n"));
        assert!(text.contains("phantomdb_raft_term 7\n"));
        let hosted = [
            NodeStatus {
                group: 1,
                role: "leader",
                leader: Some(1),
                keys: 5,
                bytes: 70,
                ops_per_s: 12,
                splits: 2,
                placement_ops: 4,
                ..Default::default()
            },
            NodeStatus { group: 3, role: "follower", rebuilding: true, ops_per_s: 9, splits: 1, ..Default::default() },
        ];
        let ranges = render_ranges(4, &hosted);
        for line in [
            "phantomdb_ranges 4\n",
            "phantomdb_replicas 2\n",
            "phantomdb_leaders 1\n",
            "phantomdb_replicas_rebuilding 1\n",
            "phantomdb_range_splits_total 3\n",
            "phantomdb_placement_operations_total 4\n",
            "phantomdb_range_bytes{range=\"1\"} 70\n",
            "phantomdb_range_ops_per_second{range=\"1\"} 12\n",
        ] {
            assert!(ranges.contains(line), "{line}: {ranges}");
        }
        assert!(ranges.contains("phantomdb_range_keys{range=\"1\"} 5\n"), "{ranges}");
        assert!(ranges.contains("phantomdb_range_leader_id{range=\"3\"} 0\n"), "{ranges}");
        assert!(
            !ranges.contains("phantomdb_range_ops_per_second{range=\"3\"}"),
            "a follower takes no requests: {ranges}"
        );
        let text = text + &ranges;
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let family = line.split(['{', ' ']).next().unwrap();
            let base = family.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")) || text.contains(&format!("# TYPE {family} ")), "{line}");
        }
    }
}
