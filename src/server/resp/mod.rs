//! The client protocol: RESP2, so that `redis-cli`, `redis-benchmark` and every Redis
//! client library talk to PhantomDB, and RESP3 per connection for clients that ask for it
//! (`HELLO 3`, what current client libraries send first).
//!
//! ```text
//!   bytes ─▶ parser (limits) ─▶ command (typed Request) ─▶ session (auth, INFO, ...)
//!                                                            └─▶ KvRequest ─▶ node ─▶ reply
//! ```
//! Everything but `server` is pure and unit-tested; `server` is the tokio loop.

mod command;
pub mod parser;
mod reply;
#[cfg(not(madsim))]
mod server;
mod session;

pub use command::{KvRequest, Refusal, Request, COMMANDS};
pub use parser::{ParseError, ParseLimits, RequestParser};
pub use reply::{Protocol, Reply};
#[cfg(not(madsim))]
pub use server::{serve, RespConfig};
pub use session::{Session, Step};
