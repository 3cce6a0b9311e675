//! Clocks. Contract: `now_ms()` never goes backwards on one node, and counts milliseconds
//! from an arbitrary per-node origin. It is *not* comparable between nodes: that is what
//! skew means, and the cores must not depend on it (HLC arrives with transactions).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The host's monotonic clock (tokio's `Instant`, which is madsim time in simulation).
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
}

/// The offset and drift a scenario gives one node's clock; shared between the world
/// (which changes it) and the node's [`SkewedClock`] (which reads it), and kept across
/// restarts of the node.
#[derive(Debug, Default)]
pub struct ClockSkew {
    offset_ms: AtomicI64,
    drift_ppm: AtomicI64,
}

impl ClockSkew {
    pub fn set(&self, offset_ms: i64, drift_ppm: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
        self.drift_ppm.store(drift_ppm, Ordering::Relaxed);
    }
}

/// A clock that runs `drift_ppm` fast (or slow) and jumps by `offset_ms` when the skew is
/// changed. A backward jump is absorbed: the clock stands still until it catches up, which
/// keeps the monotonic contract.
#[derive(Debug)]
pub struct SkewedClock {
    origin: Instant,
    skew: Arc<ClockSkew>,
    last_ms: AtomicU64,
}

impl SkewedClock {
    pub fn new(skew: Arc<ClockSkew>) -> Self {
        SkewedClock { origin: Instant::now(), skew, last_ms: AtomicU64::new(0) }
    }
}

impl Clock for SkewedClock {
    fn now_ms(&self) -> u64 {
        let elapsed_ms = self.origin.elapsed().as_millis() as i64;
        let drift_ppm = self.skew.drift_ppm.load(Ordering::Relaxed);
        let offset_ms = self.skew.offset_ms.load(Ordering::Relaxed);
        let skewed = elapsed_ms + elapsed_ms * drift_ppm / 1_000_000 + offset_ms;
        let candidate = skewed.max(0) as u64;
        self.last_ms.fetch_max(candidate, Ordering::Relaxed).max(candidate)
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn skew_drift_and_backward_jumps_keep_the_contract() {
        madsim::runtime::Runtime::new().block_on(async {
            let skew = Arc::new(ClockSkew::default());
            let clock = SkewedClock::new(skew.clone());
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            assert_eq!(clock.now_ms(), 1_000);
            // 10% fast: 2 s of real time read as 2.2 s.
            skew.set(0, 100_000);
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            assert_eq!(clock.now_ms(), 2_200);
            // A jump forward shows at once.
            skew.set(3_000, 100_000);
            assert_eq!(clock.now_ms(), 5_200);
            // A jump back is absorbed: the clock stands still, never goes back.
            skew.set(-1_000, 0);
            assert_eq!(clock.now_ms(), 5_200);
            tokio::time::sleep(Duration::from_millis(5_000)).await;
            assert_eq!(clock.now_ms(), 6_000);
        });
    }
}
