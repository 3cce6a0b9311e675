//! The narrow I/O boundary: the only code that differs between the real world and the
//! simulated one (ARCHITECTURE §2).
//!
//! | trait       | real                         | simulated                               |
//! |-------------|------------------------------|-----------------------------------------|
//! | `Transport` | TCP, framed + checksummed    | madsim's network, same frames           |
//! | `Clock`     | the OS monotonic clock       | madsim time + per-node offset and drift |
//! | `Storage`   | fjall, `PersistMode::SyncAll`| in-memory disk owned by the world       |

pub mod clock;
pub mod storage;
pub mod transport;

pub use clock::{Clock, ClockSkew, SkewedClock, SystemClock};
pub use storage::{Op, Storage, StorageError, WriteBatch};
pub use transport::{Inbound, Transport};
