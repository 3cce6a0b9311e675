//! PhantomDB: a distributed, transactional key-value database built simulation-first.
//!
//! The layering (see `../shared/ARCHITECTURE.md` §2):
//!
//! ```text
//!   node      async runtime: drives the cores, persists before it sends, applies commands
//!     |
//!   raft, kv, meta, placement
//!             pure, synchronous state machines (no tokio, madsim, fjall or std::time)
//!     |
//!   io        Transport, Clock, Storage: the only code that differs between the real
//!             world (TCP, OS clock, fjall) and the simulated one (madsim)
//! ```

pub mod buggify;
pub mod codec;
pub mod ids;
pub mod io;
pub mod keyspace;
pub mod kv;
pub mod meta;
pub mod node;
pub mod placement;
pub mod raft;
pub mod server;
pub mod sometimes;
pub mod state_machine;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use ids::{GroupId, NodeId};
