//! An arbitrary fault schedule (partitions, crashes, clock skew, disk errors, loss,
//! latency, timings) run as a short simulation with every checker on: coverage-guided
//! search for fault schedules (see `phantomdb_sim::schedule_fuzz`).
//!
//! The simulator exists only in the `--cfg madsim` build:
//!     RUSTFLAGS="--cfg madsim" cargo fuzz run -s none sim_schedule
#![no_main]

#[cfg(madsim)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phantomdb_sim::schedule_fuzz::run(data));

#[cfg(not(madsim))]
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {
    panic!("sim_schedule runs the simulator: build it with RUSTFLAGS=\"--cfg madsim\"");
});
