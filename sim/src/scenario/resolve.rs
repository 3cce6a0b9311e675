//! Resolution: the seed fills what the file leaves open, and the nemesis draws its faults.
//! Every draw comes from the scenario's own stream, in a fixed order, so a seed's schedule
//! is a function of the file and the seed alone.

use super::file::{MixSpec, NemesisSpec, ScenarioFile};
use super::{Scenario, Scheduled, FAULTY_MS_DEFAULT, NEMESIS_INTERVAL_MS_DEFAULT};
use crate::faults::trigger::{self, Trigger};
use crate::faults::{FaultKind, NemesisBounds};
use phantomdb::keyspace::{Keyspace, Sharding};
use phantomdb::NodeId;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// What the nemesis draws from when the file names no kinds (in this order: a seed's
/// subset is a shuffle of it).
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
    /// The key space the cluster is created with: its ranges and their replicas.
    pub fn keyspace(&self) -> Keyspace {
        let cut = match self.sharding {
            Sharding::Hash => Keyspace::hashed(self.groups),
            Sharding::Range => Keyspace::ranged(self.split_points.iter().map(|p| p.clone().into_bytes()).collect()),
        };
        // Added nodes are servers from the start, but hold nothing until placement fills them.
        let voters: Vec<NodeId> = (1..=self.initial_voters - self.added_nodes).collect();
        let placed = cut.and_then(|k| k.place(&voters, self.replication_factor as usize));
        // The clients' routing shares the nodes' code, and so its bugs.
        placed.expect("validated with the scenario").with_planted_bug(self.planted_bug)
    }

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

        // A stream of its own, like the Raft options: every seed keeps its other draws.
        let mut disk_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4449_534b_5359_4e43);
        let disk_sync_ms = match file.cluster.disk_sync_ms {
            Some([0, 0]) => None,
            Some(range) => Some(range),
            None => *[None, None, Some([0, 2]), Some([1, 8])].choose(&mut disk_rng).expect("non-empty"),
        };
        let mut buggify_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4255_4747_4946_5953);
        // Pinned sites mean buggify on (the draw is still made: the stream stays as it was).
        let buggify = file.buggify.unwrap_or_else(|| buggify_rng.gen_bool(0.5) || file.buggify_sites.is_some());
        let buggify_armed = match (&file.buggify_sites, buggify) {
            (_, false) => Vec::new(),
            (None, true) => phantomdb::buggify::armed_sites(seed),
            (Some(pinned), true) => {
                phantomdb::buggify::SITES.iter().map(|&(s, _)| s).filter(|s| pinned.iter().any(|p| p == s)).collect()
            }
        };
        let mut schedule = Vec::new();
        let mut triggers = Vec::new();
        for f in &file.faults {
            let spec = f.get_ref();
            let action = spec.kind.family().resolve(spec.kind, spec, nodes, &mut rng);
            match spec.on {
                None => {
                    schedule.push(Scheduled { at_ms: spec.at_ms.expect("validated"), action, origin: "file".into() })
                }
                Some(on) => triggers.push(Trigger {
                    on,
                    from_ms: spec.at_ms.unwrap_or(0),
                    delay_ms: spec.delay_ms.unwrap_or([0, 0]),
                    times: spec.times.unwrap_or(1),
                    undo_after_ms: spec.undo_after_ms,
                    action,
                    origin: "file".into(),
                }),
            }
        }
        if let Some(n) = &file.nemesis {
            let n = n.get_ref();
            let (drawn, kinds) = nemesis_schedule(n, nodes, faulty_ms, &mut rng);
            schedule.extend(drawn);
            // A stream of its own, so that every seed's timed schedule stays as it was.
            let mut count_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x434f_554e_5454_5247);
            let [lo, hi] = n.triggers.unwrap_or([0, 3]);
            triggers.extend(trigger::draw(count_rng.gen_range(lo..=hi), &kinds, faulty_ms, seed));
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
            buggify,
            buggify_armed,
            require_marks: file.require_marks.clone(),
            require_balance: file.require_balance.unwrap_or(false),
            nodes,
            groups: match &file.cluster.split_points {
                Some(points) => points.len() as u64 + 1,
                None => file.cluster.groups.unwrap_or(1),
            },
            sharding: file.cluster.sharding.unwrap_or_default(),
            split_points: file.cluster.split_points.clone().unwrap_or_default(),
            replication_factor: file.cluster.replication_factor.unwrap_or(file.cluster.voters.unwrap_or(nodes)),
            range_bytes_max: file.cluster.range_bytes_max.unwrap_or(phantomdb::node::RANGE_BYTES_MAX_DEFAULT),
            range_ops_per_s_max: file.cluster.range_ops_per_s_max.unwrap_or(0),
            election_timeout_ms,
            heartbeat_interval_ms,
            append_entries_max,
            pre_vote,
            check_quorum,
            lease_reads,
            clock_drift_ppm_max,
            snapshot_entries,
            snapshot_chunk_bytes,
            disk_sync_ms,
            initial_voters: file.cluster.voters.unwrap_or(nodes),
            added_nodes: file.cluster.added_nodes.unwrap_or(0),
            placement: file.cluster.placement.unwrap_or(true),
            node_dead_ms: file.cluster.node_dead_ms.unwrap_or(phantomdb::placement::NODE_DEAD_MS_DEFAULT),
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
            triggers,
        }
    }
}

/// Draws the nemesis's faults for the whole faulty phase, each with its undo; and the
/// kinds it drew from.
fn nemesis_schedule(
    n: &NemesisSpec,
    nodes: u64,
    faulty_ms: u64,
    rng: &mut ChaCha8Rng,
) -> (Vec<Scheduled>, Vec<FaultKind>) {
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
    let bounds = NemesisBounds {
        nodes,
        loss_max: n.loss_max.unwrap_or(0.3),
        clock_offset_ms_max: n.clock_offset_ms_max.unwrap_or(5_000),
        clock_drift_ppm_max: n.clock_drift_ppm_max.unwrap_or(100_000),
    };
    let mut out = Vec::new();
    let mut t = rng.gen_range(int_lo..=int_hi);
    while t < faulty_ms {
        let kind = *kinds.choose(rng).expect("non-empty");
        let end = t + rng.gen_range(dur_lo..=dur_hi);
        if let Some(drawn) = kind.family().draw(kind, &bounds, rng) {
            out.push(Scheduled { at_ms: t, action: drawn.now, origin: "nemesis".into() });
            if let Some(undo) = drawn.undo {
                out.push(Scheduled { at_ms: end, action: undo, origin: "nemesis".into() });
            }
        }
        t += rng.gen_range(int_lo..=int_hi);
    }
    (out, kinds)
}
