//! The RESP front (parser, command typing, session, replies) on raw client bytes (see
//! `phantomdb::testkit::resp`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phantomdb::testkit::resp::run(data));
