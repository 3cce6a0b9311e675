//! The KV state machine against a BTreeMap model (see `phantomdb::testkit::kv_model`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phantomdb::testkit::kv_model::run(data));
