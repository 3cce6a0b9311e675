//! Harnesses shared by the fuzz targets (`fuzz/`) and their regression tests (`tests/`):
//! a crash found by a fuzzer becomes a permanent test by saving its input under
//! `fuzz/regressions/<target>/`; and the in-memory Raft driver of the core's unit tests
//! and the bench (`raft_net`). Built only with the `testkit` feature.

pub mod frames;
pub mod kv_model;
pub mod raft_cluster;
pub mod raft_net;
pub mod resp;
