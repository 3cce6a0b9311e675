//! The transport frame decoder on raw bytes (see `phantomdb::testkit::frames`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phantomdb::testkit::frames::run(data));
