//! 3 to 5 real Raft cores under an arbitrary schedule of messages, ticks, crashes and
//! restarts, with Raft's safety properties checked after every event
//! (see `phantomdb::testkit::raft_cluster`).
//!
//! `PHANTOMDB_PLANTED_BUG=<name>` plants a bug of `src/raft/bugs.rs` (to prove the target
//! finds it).
#![no_main]

use phantomdb::raft::PlantedBug;
use std::sync::OnceLock;

fn planted() -> Option<PlantedBug> {
    static BUG: OnceLock<Option<PlantedBug>> = OnceLock::new();
    *BUG.get_or_init(|| {
        let name = std::env::var("PHANTOMDB_PLANTED_BUG").ok()?;
        let bug = PlantedBug::from_name(&name);
        assert!(bug.is_some(), "PHANTOMDB_PLANTED_BUG={name:?} names no planted bug");
        bug
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| phantomdb::testkit::raft_cluster::run(data, planted()));
