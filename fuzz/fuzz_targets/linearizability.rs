//! Bytes into a small single-key history (a valid run, then edits that may break it):
//! the linearizability search and the brute-force oracle must agree on it
//! (see `phantomdb_sim::checkers::brute_force`).
#![no_main]
use phantomdb_sim::checkers::brute_force::{cross_check, generate, Bytes};

libfuzzer_sys::fuzz_target!(|data: &[u8]| cross_check(&generate(&mut Bytes(data))));
