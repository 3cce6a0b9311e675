//! The replicated key-value state machine: typed commands, their encoding, and a
//! deterministic apply function (pure: no I/O, no time).

mod command;
mod placement;
mod state_machine;

pub use command::{ApplyError, Command, Output, Presence, COMMAND_BYTES_MAX};
pub use placement::group_of_key;
pub use state_machine::{parse_i64, KvStateMachine, SNAPSHOT_BYTES_MAX};
