//! `bench`: how fast the simulator runs a scenario, as figures (a benchmark, not a test).
//! Runs the seeds one after another in this process, so the figures are per core:
//! simulated seconds per wall second, seeds per minute, and where the wall time goes
//! (simulation or checking). `--seeds` runs use every core; multiply accordingly.
//!
//! It also measures the floor under the simulation's cost: the scenario's traffic (frames
//! per simulated second) and how many frames per wall second madsim moves between two
//! nodes that do nothing else, through its bare datagrams and through the project's
//! transport (`SimTransport`: frame encoding, checksum, a send queue and worker per
//! peer). Traffic over that rate bounds the speed a run can reach whatever the nodes do.

use crate::checkers::Outcome;
use crate::scenario::{Scenario, ScenarioFile};
use crate::{verdict, world};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(path: &Path, file: &ScenarioFile, first: u64, last: u64) -> ExitCode {
    let (mut sim_s, mut run_wall_s, mut check_wall_s, mut ops, mut failed) = (0.0, 0.0, 0.0, 0usize, 0u64);
    let mut latency_ms = [1, 10];
    let frames_before = phantomdb::io::transport::frames_sent();
    let started = Instant::now();
    for seed in first..=last {
        let s = Scenario::resolve(path, file, seed);
        latency_ms = s.latency_ms;
        let t = Instant::now();
        let out = world::run(&s);
        run_wall_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let v = verdict::evaluate(&s, &out);
        check_wall_s += t.elapsed().as_secs_f64();
        sim_s += v.stats.simulated_s;
        ops += v.stats.ops;
        if v.outcome() != Outcome::Passed {
            failed += 1;
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let frames = phantomdb::io::transport::frames_sent() - frames_before;
    let seeds = last - first + 1;
    println!("bench     {} seeds {first}..{last} of {}, one core", seeds, path.display());
    println!("simulated {sim_s:.1} s in {wall_s:.2} wall s: {:.0} simulated s per wall s", sim_s / wall_s);
    println!("seeds     {:.0} per minute per core", seeds as f64 * 60.0 / wall_s);
    println!("ops       {} client operations, {:.0} per wall s", ops, ops as f64 / wall_s);
    println!(
        "wall time {:.0}% simulation, {:.0}% checking",
        100.0 * run_wall_s / wall_s,
        100.0 * check_wall_s / wall_s
    );
    let per_sim_s = frames as f64 / sim_s.max(1e-9);
    println!("traffic   {frames} frames, {per_sim_s:.0} per simulated s");
    let bare = ping_pong(latency_ms, PING_PONG_FRAMES, false);
    let ours = ping_pong(latency_ms, PING_PONG_FRAMES, true);
    println!(
        "floor     two idle nodes move {bare:.0} bare madsim datagrams per wall s, {ours:.0} frames through SimTransport: this traffic alone caps a run at {:.0}x real time ({:.0}% of this run's wall time)",
        ours / per_sim_s.max(1e-9),
        100.0 * frames as f64 / ours / run_wall_s.max(1e-9)
    );
    if failed > 0 {
        println!("({failed} seeds failed or were inconclusive; run them with --seeds to see which)");
    }
    ExitCode::SUCCESS
}

/// Frames each way in the calibration.
const PING_PONG_FRAMES: u64 = 100_000;
/// Frames in flight at once in the calibration (a busy node has many).
const PING_PONG_WINDOW: u64 = 64;

/// Frames per wall second between two simulated nodes that only echo: `transport`
/// through `SimTransport`, else as bare madsim datagrams. Latency as the scenario's.
fn ping_pong(latency_ms: [u64; 2], frames: u64, transport: bool) -> f64 {
    use madsim::runtime::{Handle, Runtime};
    use phantomdb::io::transport::{sim_addr, SimTransport, Transport};
    // The last seed's duplicate rate is process-wide: no copies here.
    phantomdb::io::transport::set_duplicate_rate(0.0);
    let mut config = madsim::Config::default();
    config.net.send_latency = world::latency(latency_ms);
    let rt = Runtime::with_seed_and_config(1, config);
    let started = Instant::now();
    rt.block_on(async move {
        let h = Handle::current();
        let a = h.create_node().name("a").ip(sim_addr(1).ip()).build();
        let b = h.create_node().name("b").ip(sim_addr(2).ip()).build();
        const TAG: u64 = 1;
        if transport {
            b.spawn(async move {
                let (t, mut rx) = SimTransport::bind(2).await.expect("bind");
                while let Some(m) = rx.recv().await {
                    t.send(m.from, m.payload);
                }
            });
        } else {
            b.spawn(async move {
                let ep = madsim::net::Endpoint::bind(sim_addr(2)).await.expect("bind");
                loop {
                    let Ok((data, from)) = ep.recv_from_raw(TAG).await else { return };
                    let _ = ep.send_to_raw(from, TAG, data).await;
                }
            });
        }
        a.spawn(async move {
            // Let b bind first: a datagram to an unbound address is lost.
            madsim::time::sleep(std::time::Duration::from_millis(10)).await;
            if transport {
                let (t, mut rx) = SimTransport::bind(1).await.expect("bind");
                for _ in 0..PING_PONG_WINDOW {
                    t.send(2, vec![0; 100]);
                }
                for _ in 0..frames {
                    let _ = rx.recv().await;
                    t.send(2, vec![0; 100]);
                }
            } else {
                let ep = madsim::net::Endpoint::bind(sim_addr(1)).await.expect("bind");
                for _ in 0..PING_PONG_WINDOW {
                    ep.send_to_raw(sim_addr(2), TAG, Box::new(vec![0u8; 100])).await.expect("send");
                }
                for _ in 0..frames {
                    let (data, _) = ep.recv_from_raw(TAG).await.expect("recv");
                    ep.send_to_raw(sim_addr(2), TAG, data).await.expect("send");
                }
            }
        })
        .await
        .expect("the pinging task");
    });
    (2 * frames) as f64 / started.elapsed().as_secs_f64()
}
