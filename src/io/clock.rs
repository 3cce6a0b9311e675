//! Clocks. A node reads two clocks, as a real server does:
//! - `monotonic_ms()` for timers (elections, heartbeats, request deadlines): never goes
//!   back and never jumps, but may run fast or slow (drift). Like `CLOCK_MONOTONIC`, an
//!   NTP step does not move it.
//! - `wall_ms()`, milliseconds since the Unix epoch as this node believes them: may be off
//!   by an offset and jump in either direction. For timestamps (HLC, with transactions),
//!   never for timers.
//!
//! Neither is comparable between nodes; the cores must not assume they are.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

pub trait Clock: Send + Sync + 'static {
    fn monotonic_ms(&self) -> u64;
    fn wall_ms(&self) -> u64;
    /// How long to sleep (in the host's time) for `monotonic_ms` to advance by `ms`:
    /// a timer set on a fast clock fires early in true time, as an OS timer on a fast
    /// oscillator does. At most [`SLEEP_MS_MAX`] (a clock that stands still never
    /// advances); callers re-read the clock when they wake.
    fn sleep_for(&self, ms: u64) -> Duration {
        Duration::from_millis(ms)
    }
}

/// The longest a node sleeps before it reads its clock again.
pub const SLEEP_MS_MAX: u64 = 1_000;

/// The host's clocks: tokio's `Instant` (madsim time in simulation) and the system time.
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
    fn monotonic_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
    fn wall_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// The wall time every simulated node starts from (2026-01-01T00:00:00Z).
pub const SIM_WALL_EPOCH_MS: u64 = 1_767_225_600_000;
/// Drift is bounded so the monotonic clock never runs backwards (-100% stands still).
pub const DRIFT_PPM_MAX: i64 = 1_000_000;

/// A simulated node's clocks: simulated time run through an oscillator whose rate (drift)
/// and wall offset the scenario changes while the run goes on. One is shared by the world
/// (which skews it) and every incarnation of the node (which reads it).
#[derive(Debug)]
pub struct SkewedClock {
    state: Mutex<Oscillator>,
}

#[derive(Debug)]
struct Oscillator {
    /// Simulated time and clock reading at the last change of drift; the reading moves on
    /// from there at (1 + drift) the simulated rate, so a change never makes it jump.
    base_real: Instant,
    base_us: u64,
    drift_ppm: i64,
    offset_ms: i64,
}

impl Oscillator {
    fn reading_us(&self, now: Instant) -> u64 {
        let real_us = now.saturating_duration_since(self.base_real).as_micros() as i128;
        let run_us = real_us * i128::from(1_000_000 + self.drift_ppm) / 1_000_000;
        self.base_us + run_us.max(0) as u64
    }
}

impl SkewedClock {
    /// A true clock (no drift, no offset) starting now.
    pub fn new() -> Arc<Self> {
        let state = Oscillator { base_real: Instant::now(), base_us: 0, drift_ppm: 0, offset_ms: 0 };
        Arc::new(SkewedClock { state: Mutex::new(state) })
    }

    /// From now on the clock runs `drift_ppm` fast (negative: slow) and its wall reading
    /// is off by `offset_ms`. Drift is clamped to ±[`DRIFT_PPM_MAX`].
    pub fn set_skew(&self, offset_ms: i64, drift_ppm: i64) {
        let mut s = self.state.lock().expect("clock lock");
        let now = Instant::now();
        s.base_us = s.reading_us(now);
        s.base_real = now;
        s.drift_ppm = drift_ppm.clamp(-DRIFT_PPM_MAX, DRIFT_PPM_MAX);
        s.offset_ms = offset_ms;
    }
}

impl Clock for SkewedClock {
    fn monotonic_ms(&self) -> u64 {
        let s = self.state.lock().expect("clock lock");
        s.reading_us(Instant::now()) / 1_000
    }
    fn wall_ms(&self) -> u64 {
        let s = self.state.lock().expect("clock lock");
        let wall = SIM_WALL_EPOCH_MS as i64 + (s.reading_us(Instant::now()) / 1_000) as i64 + s.offset_ms;
        wall.max(0) as u64
    }
    fn sleep_for(&self, ms: u64) -> Duration {
        let rate_ppm = 1_000_000 + self.state.lock().expect("clock lock").drift_ppm;
        if rate_ppm <= 0 {
            return Duration::from_millis(SLEEP_MS_MAX);
        }
        // Rounded up, so that the clock has advanced `ms` when the sleep ends.
        let us = (u128::from(ms) * 1_000 * 1_000_000).div_ceil(rate_ppm as u128);
        Duration::from_micros(us.min(u128::from(SLEEP_MS_MAX) * 1_000) as u64)
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;

    #[test]
    fn drift_changes_the_rate_never_the_reading_and_offsets_move_only_the_wall() {
        madsim::runtime::Runtime::new().block_on(async {
            let clock = SkewedClock::new();
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            assert_eq!(clock.monotonic_ms(), 1_000);
            assert_eq!(clock.wall_ms(), SIM_WALL_EPOCH_MS + 1_000);
            // 10% fast from now on: the reading does not jump, it runs faster.
            clock.set_skew(0, 100_000);
            assert_eq!(clock.monotonic_ms(), 1_000);
            // Its timers fire early in true time: 110 ms of it pass in 100 ms.
            assert_eq!(clock.sleep_for(110), Duration::from_millis(100));
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            assert_eq!(clock.monotonic_ms(), 2_100);
            // A wall step of -30 s: the wall clock jumps back, timers do not notice.
            clock.set_skew(-30_000, 100_000);
            assert_eq!(clock.monotonic_ms(), 2_100);
            assert_eq!(clock.wall_ms(), SIM_WALL_EPOCH_MS + 2_100 - 30_000);
            // -100%: a clock that stands still, never one that goes back.
            clock.set_skew(0, -5_000_000);
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            assert_eq!(clock.monotonic_ms(), 2_100);
            assert_eq!(clock.sleep_for(5), Duration::from_millis(SLEEP_MS_MAX), "it never gets there");
            // Back to true: it goes on from where it was.
            clock.set_skew(0, 0);
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(clock.monotonic_ms(), 2_600);
        });
    }
}
