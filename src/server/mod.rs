//! The real deployment's front: the command line and configuration, the RESP server for
//! clients, the admin HTTP endpoint and the metrics it serves.

#[cfg(not(madsim))]
pub mod admin;
pub mod cli;
pub mod config;
#[cfg(not(madsim))]
pub mod data_dir;
#[cfg(not(madsim))]
pub mod launch;
pub mod metrics;
pub mod resp;
pub mod timed_storage;
