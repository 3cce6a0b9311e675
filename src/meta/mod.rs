//! The meta range's state (ARCHITECTURE §3): the cluster's directory of ranges, kept by
//! one Raft group, the meta range, whose span is the system span (`keyspace::SYSTEM_START`
//! to the end), on the first nodes of the cluster (`Keyspace::place`). Being a range like
//! any other, it is recovered, snapshotted and moved like one; it is never split.
//!
//! ```text
//!   every node, each report interval: the descriptors of the ranges it leads
//!        ─▶ Wire::RangeReport to the meta range's replicas
//!        ─▶ its leader: news for the directory? ─yes─▶ RangeChange::Report through its log
//!        ─▶ applied by every replica: Directory::learn each, stored under `DIRECTORY_KEY`
//! ```
//!
//! The directory is what placement (the rebalancing core) will read, and what a node that
//! knows nothing of a range will ask. Reports are best-effort and repeated, so losing one
//! costs an interval, never the directory's consistency: it tiles the key space at every
//! index (`directory.rs`).

mod directory;

pub use directory::{Directory, Learned};

/// The stored key of the directory, in the system span.
pub const DIRECTORY_KEY: &[u8] = b"\xffmeta/directory";

/// The largest encoded directory decoded: a thousand tiled and a thousand pending
/// descriptors of a few hundred bytes each.
pub const DIRECTORY_BYTES_MAX: usize = 4 << 20;

/// Most descriptors one report carries (a node leading more sends several).
pub const REPORT_RANGES_MAX: usize = 256;

const _: () = assert!(DIRECTORY_KEY[0] == crate::keyspace::SYSTEM_START[0], "the directory is in the system span");
