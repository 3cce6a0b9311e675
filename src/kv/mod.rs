//! The replicated key-value state machine: typed commands and a deterministic apply
//! function (no I/O but the group's data, no time), behind `state_machine::StateMachine`.

mod command;
mod state_machine;

pub use command::{ApplyError, Command, Output, Presence, COMMAND_BYTES_MAX};
pub use state_machine::{parse_i64, KvStateMachine};
