//! Arbitrary bytes into the scenario parser: an error or a scenario, never a panic; a
//! scenario it accepts resolves to a bounded schedule
//! (see `phantomdb_sim::scenario::check_any_input`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phantomdb_sim::scenario::check_any_input(data));
