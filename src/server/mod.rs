//! The real deployment's front: command line and configuration today; the RESP server and
//! the admin HTTP endpoint arrive with the real-I/O issue.

pub mod cli;
