//! The narrow I/O boundary: the only code that differs between the real world and the
//! simulated one (ARCHITECTURE §2).
//!
//! | trait       | real                         | simulated                               |
//! |-------------|------------------------------|-----------------------------------------|
//! | `Transport` | TCP, framed + checksummed    | madsim's network, same frames           |
//! | `Clock`     | OS monotonic + system time   | madsim time + per-node drift and offset |
//! | `Storage`   | fjall, `PersistMode::SyncAll`| in-memory disk owned by the world       |

pub mod clock;
pub mod storage;
pub mod transport;

pub use clock::{Clock, SkewedClock, SystemClock};
pub use storage::{Op, Pairs, Storage, StorageError, StorageView, SyncJob, WriteBatch};
pub use transport::{Inbound, Transport};
