//! The `sim_schedule` fuzz target's harness: the fuzzer writes a fault schedule (who is
//! partitioned, crashed, skewed, when, for how long), a short simulation runs it with every
//! checker on, and a failed check panics with the verdict, which libFuzzer records as a
//! crash. Coverage guidance then searches for schedules that reach new code.

use crate::checkers::Outcome;
use crate::faults::{clock, disk, link, network, process, Action, Target};
use crate::scenario::{MixSpec, Scenario, Scheduled};
use crate::{verdict, world};
use arbitrary::{Arbitrary, Unstructured};
use std::path::PathBuf;

/// Faults one input may schedule.
const FAULTS_MAX: usize = 24;
const FAULTY_MS: u64 = 3_000;

#[derive(Debug, Arbitrary)]
enum Fault {
    Partition { cut: u8, shuffle: u64 },
    Isolate { leader: bool, node: u8 },
    Heal,
    Crash { leader: bool, node: u8 },
    Restart { node: u8 },
    Clog { from: u8, to: u8 },
    Unclog { from: u8, to: u8 },
    Loss { per_mille: u16 },
    Latency { max_ms: u8 },
    ClockSkew { node: u8, offset_ms: i16, drift_ppm: i32 },
    DiskError { node: u8 },
}

fn action(f: Fault, nodes: u64) -> Action {
    let id = |n: u8| u64::from(n) % nodes + 1;
    let node = |n: u8| Target::Node(id(n));
    match f {
        Fault::Partition { cut, shuffle } => {
            let mut all: Vec<u64> = (1..=nodes).collect();
            all.rotate_left((shuffle % nodes) as usize);
            let cut = (usize::from(cut) % (nodes as usize - 1)) + 1;
            network::Action::Partition { sides: vec![all[..cut].to_vec(), all[cut..].to_vec()] }.into()
        }
        Fault::Isolate { leader: true, .. } => network::Action::Isolate { node: Target::Leader }.into(),
        Fault::Isolate { node: n, .. } => network::Action::Isolate { node: node(n) }.into(),
        Fault::Heal => network::Action::Heal.into(),
        Fault::Crash { leader: true, .. } => process::Action::Crash { node: Target::Leader }.into(),
        Fault::Crash { node: n, .. } => process::Action::Crash { node: node(n) }.into(),
        Fault::Restart { node: n } => process::Action::Restart { node: node(n) }.into(),
        Fault::Clog { from, to } => network::Action::Clog { from: id(from), to: id(to) }.into(),
        Fault::Unclog { from, to } => network::Action::Unclog { from: id(from), to: id(to) }.into(),
        Fault::Loss { per_mille } => link::Action::Loss { rate: Some(f64::from(per_mille % 1001) / 1000.0) }.into(),
        Fault::Latency { max_ms } => link::Action::Latency { ms: Some([0, u64::from(max_ms)]) }.into(),
        Fault::ClockSkew { node: n, offset_ms, drift_ppm } => clock::Action::ClockSkew {
            node: node(n),
            offset_ms: i64::from(offset_ms),
            drift_ppm: i64::from(drift_ppm) % 1_000_000,
        }
        .into(),
        Fault::DiskError { node: n } => disk::Action::DiskError { node: node(n) }.into(),
    }
}

/// The scenario an input describes.
pub fn scenario(data: &[u8]) -> Scenario {
    let mut u = Unstructured::new(data);
    let nodes = 3 + u64::from(u.int_in_range(0..=2u8).unwrap_or(0));
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let mut schedule = Vec::new();
    for _ in 0..FAULTS_MAX {
        if u.is_empty() {
            break;
        }
        let Ok(at) = u.arbitrary::<u16>() else { break };
        let Ok(fault) = Fault::arbitrary(&mut u) else { break };
        let at_ms = u64::from(at) % FAULTY_MS;
        let action = action(fault, nodes);
        // A link from a node to itself is not a link.
        if let Action::Network(network::Action::Clog { from, to } | network::Action::Unclog { from, to }) = action {
            if from == to {
                continue;
            }
        }
        schedule.push(Scheduled { at_ms, action, origin: "fuzzer".into() });
    }
    schedule.sort_by_key(|s| s.at_ms);
    Scenario {
        path: PathBuf::from("sim_schedule"),
        name: "sim_schedule".into(),
        seed,
        planted_bug: None,
        buggify: false,
        buggify_armed: Vec::new(),
        require_marks: Vec::new(),
        require_balance: false,
        nodes,
        election_timeout_ms: [150, 300],
        heartbeat_interval_ms: 30,
        append_entries_max: 8,
        pre_vote: true,
        check_quorum: true,
        groups: 1,
        // Leases assume bounded drift, which this fuzzer's clock faults do not keep.
        lease_reads: false,
        clock_drift_ppm_max: 10_000,
        snapshot_entries: 64,
        snapshot_chunk_bytes: 512,
        // Instant syncs keep saved inputs meaning what they did.
        disk_sync_ms: None,
        initial_voters: nodes,
        added_nodes: 0,
        // Leadership transfers of its own would blur what the fuzzed schedule did.
        placement: false,
        node_dead_ms: phantomdb::placement::NODE_DEAD_MS_DEFAULT,
        sharding: phantomdb::keyspace::Sharding::Hash,
        split_points: Vec::new(),
        replication_factor: nodes,
        range_bytes_max: 0,
        range_ops_per_s_max: 0,
        latency_ms: [1, 10],
        loss: 0.0,
        duplicate: 0.0,
        clients: 3,
        register_keys: 2,
        append_keys: 1,
        mix: MixSpec { get: 3, put: 3, append: 2, delete: 1, cas: 1 },
        think_time_ms: [0, 20],
        request_timeout_ms: 1_000,
        faulty_ms: FAULTY_MS,
        liveness_timeout_ms: 10_000,
        healed_ms: 500,
        schedule,
        triggers: Vec::new(),
    }
}

/// Runs the simulation an input describes; panics with the verdict if a check fails. (An
/// undecided check is no bug found: the fuzzer goes on.)
pub fn run(data: &[u8]) {
    let s = scenario(data);
    let v = verdict::evaluate(&s, &world::run(&s));
    if v.outcome() == Outcome::Failed {
        let failed: Vec<String> = v
            .checks
            .iter()
            .filter(|c| c.outcome() == Outcome::Failed)
            .map(|c| format!("{}: {}", c.name, c.violations.join("; ")))
            .collect();
        panic!("schedule {:?} (seed {}) fails: {}", s.schedule, s.seed, failed.join(" | "));
    }
}
