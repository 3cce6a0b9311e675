//! Leader leases (Raft thesis §6.4.1) and the clock-rate check that guards them.
//!
//! A follower that hears from its leader refuses to help elect anyone else for the
//! minimum election timeout, measured on its own clock (check-quorum's vote lease). So
//! once a quorum has acknowledged an AppendEntries the leader sent at `sent_ms` (its own
//! clock), no other leader can exist before that quorum's leases run out, and the leader
//! may answer reads from its state without a round of messages until
//!
//! ```text
//!   sent_ms + election_timeout_ms_min · (1 − ρ) / (1 + ρ) − granularity
//! ```
//!
//! where ρ (`clock_drift_ppm_max`) bounds how far any clock's rate strays from true time:
//! the follower's lease can run out early by a fast clock, the leader's last late by a
//! slow one, and the ratio covers both.
//!
//! That arithmetic holds only while the bound does, so the leader checks it. Each
//! AppendEntries carries the leader's clock; the response echoes it with the follower's
//! own reading, which the follower took between the leader's send and the leader's
//! receipt of the answer. Two such samples `a`, `b` bracket the follower's elapsed time
//! `Δf` against the leader's, `[b.sent − a.received, b.received − a.sent]`:
//!
//! ```text
//!    leader   a.sent ──── a.received ············ b.sent ──── b.received
//!    follower        a.clock                              b.clock
//!                    └────────────── Δf ─────────────────┘
//! ```
//!
//! When even the most favourable reading of the bracket puts the rate ratio outside
//! `[(1 − ρ)/(1 + ρ), (1 + ρ)/(1 − ρ)]`, the bound is certainly broken for that follower,
//! and its acknowledgements stop counting towards a lease for `DRIFT_SUSPEND_MS`. A
//! follower counts only once a comparison spanning `DRIFT_SPAN_MS_MIN` has passed. Reads
//! then fall back to ReadIndex, which needs no clock at all.
//!
//! What the check cannot see: a rate change after the last sample the leader got (for
//! instance at the moment a partition cuts it off), and a violation smaller than the
//! samples' round-trip uncertainty over the span. The first is why the bound must be a
//! property of the hardware, not a hope; the second costs at most that excess of the
//! lease.

use std::collections::VecDeque;

/// Clock samples kept per follower, at least `SAMPLE_SPACING_MS` apart.
const SAMPLES_MAX: usize = 16;
const SAMPLE_SPACING_MS: u64 = 100;
/// A follower counts towards a lease once a comparison over at least this span passed.
pub(crate) const DRIFT_SPAN_MS_MIN: u64 = 300;
/// A follower whose clock broke the bound stays out of leases this long.
pub(crate) const DRIFT_SUSPEND_MS: u64 = 10_000;
/// Clock readings are whole milliseconds, on both sides of the lease.
const GRANULARITY_MS: u64 = 2;
const PPM: u128 = 1_000_000;

/// How long a lease lasts after the send time of the round that confirmed it.
pub(crate) fn lease_ms(election_timeout_ms_min: u64, clock_drift_ppm_max: u64) -> u64 {
    let rho = u128::from(clock_drift_ppm_max);
    let scaled = u128::from(election_timeout_ms_min) * (PPM - rho) / (PPM + rho);
    (scaled as u64).saturating_sub(GRANULARITY_MS)
}

/// One answered AppendEntries: the leader's send time, the follower's clock when it got
/// the message, and the leader's time when the answer came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClockSample {
    pub sent_ms: u64,
    pub follower_ms: u64,
    pub received_ms: u64,
}

/// The leader's view of one follower's clock during its term.
#[derive(Clone, Debug, Default)]
pub(crate) struct FollowerClock {
    samples: VecDeque<ClockSample>,
    /// The latest send time the follower acknowledged (it holds a vote lease from then).
    acked_sent_ms: Option<u64>,
    verified: bool,
    suspended_until_ms: u64,
}

/// The follower's clock rate left the bound: `ratio_ppm` is the rate ratio (follower
/// over leader, in millionths) that the samples prove it at least (fast) or at most (slow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriftViolation {
    pub ratio_ppm: u64,
}

impl FollowerClock {
    /// Records an acknowledgement. Returns the violation if this sample proves one and
    /// the follower was backing leases until now (one report per episode).
    pub fn observe(&mut self, sample: ClockSample, clock_drift_ppm_max: u64) -> Option<DriftViolation> {
        debug_assert!(sample.sent_ms <= sample.received_ms, "an answer comes after its question");
        self.acked_sent_ms = Some(self.acked_sent_ms.map_or(sample.sent_ms, |a| a.max(sample.sent_ms)));
        let rho = u128::from(clock_drift_ppm_max);
        let mut violation = None;
        for a in &self.samples {
            if a.received_ms >= sample.sent_ms {
                continue; // the two brackets overlap: nothing to measure
            }
            // Readings are whole milliseconds: each difference may be off by one either
            // way, so the bracket widens by one on each side before anything is proven.
            let elapsed_min = u128::from(sample.sent_ms - a.received_ms).saturating_sub(1);
            let elapsed_max = u128::from(sample.received_ms - a.sent_ms) + 1;
            let Some(follower) = sample.follower_ms.checked_sub(a.follower_ms).map(u128::from) else {
                // The follower's clock went back: a restart, or no monotonic clock at all.
                violation = Some(DriftViolation { ratio_ppm: 0 });
                break;
            };
            let (follower_min, follower_max) = (follower.saturating_sub(1), follower + 1);
            if follower_min * (PPM - rho) > elapsed_max * (PPM + rho) {
                violation = Some(DriftViolation { ratio_ppm: (follower_min * PPM / elapsed_max) as u64 });
                break;
            }
            if elapsed_min > 0 && follower_max * (PPM + rho) < elapsed_min * (PPM - rho) {
                violation = Some(DriftViolation { ratio_ppm: (follower_max * PPM / elapsed_min) as u64 });
                break;
            }
            if elapsed_min >= u128::from(DRIFT_SPAN_MS_MIN) {
                self.verified = true;
            }
        }
        if violation.is_some() {
            // Start measuring afresh: what came before no longer describes this clock.
            self.samples.clear();
            self.verified = false;
            let ongoing = sample.received_ms < self.suspended_until_ms;
            self.suspended_until_ms = sample.received_ms + DRIFT_SUSPEND_MS;
            if ongoing {
                violation = None;
            }
        }
        let spaced = self.samples.back().is_none_or(|last| sample.received_ms >= last.received_ms + SAMPLE_SPACING_MS);
        if spaced {
            if self.samples.len() == SAMPLES_MAX {
                self.samples.pop_front();
            }
            self.samples.push_back(sample);
        }
        violation
    }

    /// The send time from which this follower's acknowledgement backs a lease, if its
    /// clock has been checked and is within the bound.
    pub fn lease_from_ms(&self, now_ms: u64) -> Option<u64> {
        if !self.verified || now_ms < self.suspended_until_ms {
            return None;
        }
        self.acked_sent_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RHO: u64 = 10_000; // 1%

    /// A follower whose clock runs at `rate_ppm` of the leader's, answering every
    /// `every_ms` with a round trip of `rtt_ms`; returns the first violation and when.
    fn run(rate_ppm: u64, every_ms: u64, rtt_ms: u64, until_ms: u64) -> (FollowerClock, Option<(u64, DriftViolation)>) {
        let mut f = FollowerClock::default();
        let mut t = 1_000;
        while t < until_ms {
            let follower_ms = 5_000 + (t + rtt_ms / 2) * rate_ppm / 1_000_000;
            let sample = ClockSample { sent_ms: t, follower_ms, received_ms: t + rtt_ms };
            if let Some(v) = f.observe(sample, RHO) {
                return (f, Some((t, v)));
            }
            t += every_ms;
        }
        (f, None)
    }

    #[test]
    fn the_lease_shrinks_by_the_drift_bound_and_the_clock_granularity() {
        assert_eq!(lease_ms(150, 0), 148);
        assert_eq!(lease_ms(150, 10_000), 145); // 150 · 0.99 / 1.01 = 147.03
        assert_eq!(lease_ms(150, 500_000), 48); // 150 / 3
        assert_eq!(lease_ms(1, 10_000), 0, "never negative");
    }

    #[test]
    fn a_clock_within_the_bound_is_verified_after_the_minimum_span() {
        let (f, violation) = run(1_005_000, 30, 20, 1_000 + DRIFT_SPAN_MS_MIN + 200);
        assert_eq!(violation, None);
        assert!(f.lease_from_ms(2_000).is_some());
        let (f, _) = run(1_000_000, 30, 20, 1_000 + DRIFT_SPAN_MS_MIN - 100);
        assert_eq!(f.lease_from_ms(2_000), None, "not checked over a long enough span yet");
    }

    #[test]
    fn round_trip_noise_alone_never_reads_as_a_violation() {
        // 1% true drift, 80 ms round trips, samples every 10 ms: wide brackets, no proof.
        let (f, violation) = run(1_010_000, 10, 80, 5_000);
        assert_eq!(violation, None);
        assert!(f.lease_from_ms(5_000).is_some());
    }

    #[test]
    fn millisecond_readings_alone_never_read_as_a_violation() {
        // A true clock, answers within the same millisecond, samples 1 ms apart: every
        // floor may fall the wrong way, and nothing may be proven from that.
        let mut f = FollowerClock::default();
        let mut violations = 0;
        for t in 0..2_000u64 {
            // The follower's reading lags or leads by a fraction of a millisecond.
            let follower_ms = 10_000 + t + (t % 3 == 0) as u64;
            let sample = ClockSample { sent_ms: t, follower_ms, received_ms: t + (t % 2) };
            violations += f.observe(sample, RHO).is_some() as u32;
        }
        assert_eq!(violations, 0);
    }

    #[test]
    fn a_fast_follower_is_caught_and_suspended() {
        let (f, violation) = run(1_500_000, 30, 10, 5_000);
        let (at, v) = violation.expect("caught");
        assert!(at < 1_000 + 200, "a 50% drift shows within 200 ms, got {at}");
        assert!(v.ratio_ppm > 1_020_000, "{v:?}");
        assert_eq!(f.lease_from_ms(at + 10), None);
        assert_eq!(f.lease_from_ms(at + 10 + DRIFT_SUSPEND_MS), None, "and must be verified afresh");
    }

    #[test]
    fn a_slow_follower_and_a_clock_that_goes_back_are_violations_too() {
        let (_, slow) = run(800_000, 30, 10, 5_000);
        assert!(slow.expect("caught").1.ratio_ppm < 980_000);
        let mut f = FollowerClock::default();
        assert_eq!(f.observe(ClockSample { sent_ms: 100, follower_ms: 900, received_ms: 110 }, RHO), None);
        let back = f.observe(ClockSample { sent_ms: 500, follower_ms: 10, received_ms: 510 }, RHO);
        assert_eq!(back, Some(DriftViolation { ratio_ppm: 0 }));
    }

    #[test]
    fn the_lease_runs_from_the_latest_acknowledged_send() {
        let (mut f, _) = run(1_000_000, 100, 10, 1_500);
        let latest = f.lease_from_ms(1_500).expect("verified");
        assert_eq!(latest, 1_400);
        // A late answer to an older message does not move the lease back.
        f.observe(ClockSample { sent_ms: 1_300, follower_ms: 5_000 + 1_305, received_ms: 1_520 }, RHO);
        assert_eq!(f.lease_from_ms(1_520), Some(1_400));
    }
}
