//! Scenario files: what a simulation run is, as data (ARCHITECTURE §7).
//!
//! A file ([`file`]) is parsed strictly, unknown fields being errors, and every error
//! names the file, the line and the field ([`validate`]). Whatever the file leaves open is
//! drawn from the seed ([`Scenario::resolve`]), so one file describes a whole family of runs
//! (swarm testing) and a seed picks one member of it; [`explicit`] writes one member back
//! as a file that pins it. What each fault kind takes, means
//! and draws lives with its family, in [`crate::faults`].

mod file;
mod resolve;
mod validate;
mod write;

pub use crate::faults::{Action, FaultKind, Target, TargetSpec};
pub use file::{ClusterSpec, FaultSpec, MixSpec, NemesisSpec, NetworkSpec, PhasesSpec, ScenarioFile, WorkloadSpec};
pub use validate::{check_any_input, load, parse, ScenarioError};
pub use write::explicit;

use phantomdb::raft::PlantedBug;
use serde::Serialize;
use std::path::PathBuf;

/// The most faults one run may schedule (explicit and nemesis together).
pub const SCHEDULE_FAULTS_MAX: usize = 100_000;
/// The longest any phase or timeout may be: one simulated hour.
pub const PHASE_MS_MAX: u64 = 3_600_000;
/// Workload bounds, so that a scenario cannot ask for unbounded memory.
pub const CLIENTS_MAX: u64 = 1_000;
pub const KEYS_MAX: u64 = 100_000;
/// The slowest disk sync a scenario may ask for (a sync past a second stalls elections).
pub const DISK_SYNC_MS_MAX: u64 = 1_000;

/// Defaults that bound the schedule's size (checked at parse time) and shape it.
const FAULTY_MS_DEFAULT: u64 = 20_000;
const NEMESIS_INTERVAL_MS_DEFAULT: [u64; 2] = [300, 3_000];

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
    /// Buggify on, and the sites this seed arms (empty when off).
    pub buggify: bool,
    pub buggify_armed: Vec<&'static str>,
    pub require_marks: Vec<String>,
    pub require_balance: bool,
    pub nodes: u64,
    pub groups: u64,
    pub sharding: phantomdb::keyspace::Sharding,
    /// Where range sharding cuts the keys (empty with hash sharding).
    pub split_points: Vec<String>,
    pub replication_factor: u64,
    pub range_bytes_max: u64,
    pub range_ops_per_s_max: u64,
    pub election_timeout_ms: [u64; 2],
    pub heartbeat_interval_ms: u64,
    pub append_entries_max: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub lease_reads: bool,
    pub clock_drift_ppm_max: u64,
    pub snapshot_entries: u64,
    pub snapshot_chunk_bytes: usize,
    /// What each disk sync takes, in ms (`None`: no time).
    pub disk_sync_ms: Option<[u64; 2]>,
    pub initial_voters: u64,
    /// The last `added_nodes` of the initial voters start empty and down (`add_node`).
    pub added_nodes: u64,
    pub placement: bool,
    pub node_dead_ms: u64,
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
    /// Faults at moments: explicit ones (file order), then the nemesis's.
    pub triggers: Vec<crate::faults::trigger::Trigger>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
    fn a_bad_cut_or_placement_names_its_line_and_field() {
        let cases = [
            ("[cluster]\nsplit_points = [\"m\"]\n", 2, "cluster.split_points", "needs sharding = \"range\""),
            (
                "[cluster]\nsharding = \"range\"\nsplit_points = [\"m\", \"c\"]\n",
                3,
                "cluster.split_points",
                "strictly increasing",
            ),
            (
                "[cluster]\nsharding = \"range\"\ngroups = 3\nsplit_points = [\"m\"]\n",
                3,
                "cluster.groups",
                "make 2 ranges",
            ),
            ("[cluster]\nsharding = \"range\"\ngroups = 3\n", 3, "cluster.groups", "split_points"),
            (
                "[cluster]\nvoters = 3\nreplication_factor = 4\n",
                3,
                "cluster.replication_factor",
                "1 to the 3 initial voters",
            ),
            (
                "[cluster]\nreplication_factor = 3\n[[faults]]\nat_ms = 1\nkind = \"add_voter\"\nnode = 2\n",
                2,
                "cluster.replication_factor",
                "add_voter",
            ),
            ("[cluster]\nrange_bytes_max = 100\n", 2, "cluster.range_bytes_max", "0 (never) or 256"),
            ("[cluster]\nadded_nodes = 2\n", 2, "cluster.added_nodes", "must hold replication_factor"),
            (
                "[cluster]\nnodes = 5\nadded_nodes = 3\nreplication_factor = 3\n",
                3,
                "cluster.added_nodes",
                "the other 2 voters",
            ),
            ("[[faults]]\nat_ms = 1\nkind = \"add_node\"\n", 1, "cluster.added_nodes", "there is none"),
        ];
        for (text, line, field, message) in cases {
            let e = parse_str(text).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (line, field), "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
        let e = parse_str("[cluster]\nsharding = \"ranges\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let ok =
            parse_str("[cluster]\nnodes = 7\nsharding = \"range\"\nsplit_points = [\"m\"]\nreplication_factor = 3\n");
        let file = ok.expect("a valid cut");
        let s = Scenario::resolve(Path::new("t.toml"), &file, 1);
        let keyspace = s.keyspace();
        assert_eq!(keyspace.user_ranges().len(), 2);
        assert_eq!(keyspace.user_ranges()[1].replicas, [4, 5, 6]);
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

    #[test]
    fn partition_sides_are_also_read_under_their_old_name() {
        let new = parse_str("[[faults]]\nat_ms = 1\nkind = \"partition\"\nsides = [[1, 2]]\n").unwrap();
        let old = parse_str("[[faults]]\nat_ms = 1\nkind = \"partition\"\ngroups = [[1, 2]]\n").unwrap();
        assert_eq!(new.faults[0].get_ref().sides, Some(vec![vec![1, 2]]));
        assert_eq!(old.faults[0].get_ref().sides, new.faults[0].get_ref().sides);
        let s = Scenario::resolve(Path::new("x.toml"), &old, 1);
        let json = serde_json::to_string(&s.schedule[0].action).unwrap();
        assert_eq!(json, r#"{"kind":"partition","sides":[[1,2],[3,4,5]]}"#);
    }

    #[test]
    fn a_node_on_two_sides_is_refused() {
        let e = parse_str("[[faults]]\nat_ms = 1\nkind = \"partition\"\nsides = [[1, 2], [2]]\n").unwrap_err();
        assert_eq!(e.field, "faults[0].sides", "{e}");
        assert!(e.message.contains("node 2 is on two sides"), "{e}");
    }

    #[test]
    fn a_fault_at_a_moment_resolves_to_a_trigger_and_its_fields_are_checked() {
        let text = "[[faults]]\non = \"leader_elected\"\nkind = \"crash\"\nnode = \"that\"\ndelay_ms = [0, 5]\nundo_after_ms = [100, 200]\n";
        let s = Scenario::resolve(Path::new("t.toml"), &parse_str(text).unwrap(), 1);
        assert!(s.schedule.is_empty());
        assert_eq!(s.triggers.len(), 1);
        assert_eq!(
            s.triggers[0].to_string(),
            "on leader_elected from 0.000s: crash that node within 0..5ms, undone after 100..200ms"
        );
        let refused = [
            ("[[faults]]\nkind = \"crash\"\nnode = 1\n", "faults[0].at_ms"),
            ("[[faults]]\nat_ms = 1\nkind = \"crash\"\nnode = \"that\"\n", "faults[0].node"),
            ("[[faults]]\nat_ms = 1\nkind = \"crash\"\nnode = 1\ntimes = 2\n", "faults[0].times"),
            ("[[faults]]\non = \"leader_elected\"\nkind = \"restart\"\nnode = \"that\"\n", "faults[0].kind"),
            (
                "[[faults]]\non = \"leader_elected\"\nkind = \"crash\"\nnode = 1\ndelay_ms = [5, 1]\n",
                "faults[0].delay_ms",
            ),
            ("[nemesis]\ntriggers = [3, 1]\n", "nemesis.triggers"),
        ];
        for (text, field) in refused {
            assert_eq!(parse_str(text).unwrap_err().field, field, "{text}");
        }
        let e = parse_str("[[faults]]\non = \"meteor_strike\"\nkind = \"crash\"\nnode = 1\n").unwrap_err();
        assert!(e.message.contains("meteor_strike"), "{e}");
    }
}
