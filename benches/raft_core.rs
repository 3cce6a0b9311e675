//! The Raft core alone, in memory (`testkit::raft_net`, the unit tests' driver): 3
//! replicas, messages handed over directly, storage a no-op, with 1, 64 and 256 proposals kept in flight (the shape of openraft's `bench`).
//! Measures what the protocol logic costs, without I/O. Not a test: run
//! `cargo bench --bench raft_core`.

use phantomdb::raft::{Config, HardState, Raft};
use phantomdb::testkit::raft_net::RaftNet;
use std::time::Instant;

const PROPOSALS: u64 = 300_000;

fn replicas() -> Vec<Raft> {
    (1..=3u64)
        .map(|id| {
            let mut c = Config::new(id, 1, vec![1, 2, 3]);
            // The bench drives time by hand; keep elections out of the way.
            c.election_timeout_ms_min = 1_000_000;
            c.election_timeout_ms_max = 2_000_000;
            c.uncommitted_entries_max = 1 << 20;
            Raft::new(c, id, 0, HardState::default(), vec![]).expect("valid config")
        })
        .collect()
}

fn run(in_flight: u64) {
    let mut net = RaftNet::from_replicas(replicas());
    net.record = false;
    // Node 1 campaigns (pre-vote, then the vote) and wins; nobody else's timer fires.
    net.fire(1);
    assert!(net.get(1).is_leader(), "node 1 leads");
    let base = net.get(1).commit_index();
    let payload = vec![0u8; 64];
    let started = Instant::now();
    let mut proposed = 0u64;
    let mut committed = 0u64;
    while committed < PROPOSALS {
        while proposed < PROPOSALS && proposed - committed < in_flight {
            net.get_mut(1).propose(payload.clone()).expect("leader accepts");
            proposed += 1;
        }
        net.deliver();
        committed = net.get(1).commit_index() - base;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "raft core, 3 replicas in memory, {in_flight:>3} in flight: {:>9.0} commits/s ({PROPOSALS} in {secs:.2}s)",
        PROPOSALS as f64 / secs
    );
}

fn main() {
    for in_flight in [1, 64, 256] {
        run(in_flight);
    }
}
