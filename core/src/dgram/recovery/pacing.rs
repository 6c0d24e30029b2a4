//! Pacing: a token bucket that spreads a window of packets over a round trip.

use core::time::Duration;

use crate::time::Instant;

/// The burst the bucket holds, in time at the pacing rate.
const BURST_TIME: Duration = Duration::from_millis(2);
/// Bounds of the burst, in datagrams.
const MIN_BURST: u64 = 10;
const MAX_BURST: u64 = 256;
/// Tokens are kept in byte-microseconds so that frequent refills lose nothing to rounding.
const SCALE: u128 = 1_000_000;
/// A sender told to wait that comes back late (its timer fired late, or other processes held
/// the CPU) keeps the tokens of up to this much lateness beyond the burst, to catch up.
const MAX_CATCH_UP: Duration = Duration::from_millis(16);

/// A token bucket refilled at the pacing rate (bytes per second); sending consumes tokens.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Tokens, in bytes × [`SCALE`].
    tokens: u128,
    /// When the tokens were last refilled.
    last: Instant,
    /// The rate used at the last refill, bytes per second.
    rate: u64,
    /// When the sender, told to wait, may send again; cleared once it caught up.
    due: Option<Instant>,
}

impl Pacer {
    /// A full bucket (the first burst leaves at once).
    pub(crate) fn new(now: Instant, rate: u64, mtu: u16) -> Self {
        Pacer {
            tokens: capacity(rate, mtu),
            last: now,
            rate,
            due: None,
        }
    }

    fn refill(&mut self, now: Instant, rate: u64, mtu: u16) {
        let cap = capacity(rate, mtu);
        let elapsed = (now - self.last).as_micros();
        // Tokens accrued at the previous rate up to now; the new rate applies from now on.
        let added = u128::from(self.rate.max(1)) * elapsed;
        // A sender that waited for the pacer lost none of the time it was late: a bucket
        // capped at the burst would drop those tokens, and a sender descheduled for longer
        // than the burst would send below its pacing rate, which is what BBR measures as
        // the path's bandwidth next (the estimate then spirals down; see the simulator's
        // stalls tests).
        let late = self.due.map_or(0, |due| {
            now.saturating_duration_since(due)
                .min(MAX_CATCH_UP)
                .as_micros()
        });
        let catch_up = u128::from(self.rate.max(1)) * late;
        self.tokens = self.tokens.saturating_add(added).min(cap + catch_up);
        if self.tokens <= cap {
            self.due = None;
        }
        self.last = now.max(self.last);
        self.rate = rate.max(1);
    }

    /// `None` when `bytes` may leave now, otherwise the instant at which they may.
    pub(crate) fn delay(
        &mut self,
        now: Instant,
        rate: u64,
        mtu: u16,
        bytes: usize,
    ) -> Option<Instant> {
        self.refill(now, rate, mtu);
        // A packet larger than the bucket leaves when the bucket is full.
        let need = (bytes as u128 * SCALE).min(capacity(rate, mtu));
        if self.tokens >= need {
            return None;
        }
        let missing = need - self.tokens;
        let micros = missing.div_ceil(u128::from(self.rate));
        let due = now + Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
        self.due = Some(due);
        Some(due)
    }

    /// The sender has nothing to send: tokens it does not use are not owed to it.
    pub(crate) fn on_app_limited(&mut self) {
        self.due = None;
    }

    /// Consumes the tokens of a packet that left.
    pub(crate) fn on_sent(&mut self, now: Instant, rate: u64, mtu: u16, bytes: usize) {
        self.refill(now, rate, mtu);
        self.tokens = self.tokens.saturating_sub(bytes as u128 * SCALE);
    }
}

/// 2 ms worth of the rate, clamped to 10 to 256 datagrams of `mtu` (in scaled tokens).
fn capacity(rate: u64, mtu: u16) -> u128 {
    let mtu = u128::from(mtu.max(1));
    let burst = u128::from(rate) * BURST_TIME.as_micros();
    burst.clamp(
        u128::from(MIN_BURST) * mtu * SCALE,
        u128::from(MAX_BURST) * mtu * SCALE,
    )
}

/// The default pacing rate: 1.25 × cwnd / srtt, in bytes per second.
pub(crate) fn default_rate(cwnd: u64, srtt: Duration) -> u64 {
    let micros = srtt.as_micros().max(1);
    let rate = u128::from(cwnd) * 1_250_000 / micros;
    u64::try_from(rate).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn default_rate_is_five_quarters_of_the_window_per_rtt() {
        // 100 kB per 100 ms → 1.25 MB/s.
        assert_eq!(default_rate(100_000, Duration::from_millis(100)), 1_250_000);
    }

    #[test]
    fn a_full_burst_leaves_then_packets_wait_for_tokens() {
        // 1.25 MB/s: 2 ms is 2500 bytes, below the 10-datagram floor (12 000 bytes).
        let rate = 1_250_000;
        let mut p = Pacer::new(at(0), rate, 1200);
        for _ in 0..10 {
            assert_eq!(p.delay(at(0), rate, 1200, 1200), None);
            p.on_sent(at(0), rate, 1200, 1200);
        }
        // 1200 bytes at 1.25 MB/s take 960 µs.
        assert_eq!(
            p.delay(at(0), rate, 1200, 1200),
            Some(Instant::from_micros(960))
        );
        assert_eq!(
            p.delay(Instant::from_micros(959), rate, 1200, 1200),
            Some(Instant::from_micros(960))
        );
        assert_eq!(p.delay(Instant::from_micros(960), rate, 1200, 1200), None);
    }

    #[test]
    fn the_bucket_never_holds_more_than_its_capacity() {
        let rate = 1_250_000;
        let mut p = Pacer::new(at(0), rate, 1200);
        for _ in 0..10 {
            p.on_sent(at(0), rate, 1200, 1200);
        }
        // A long idle period refills at most 10 datagrams.
        let later = at(10_000);
        for _ in 0..10 {
            assert_eq!(p.delay(later, rate, 1200, 1200), None);
            p.on_sent(later, rate, 1200, 1200);
        }
        assert!(p.delay(later, rate, 1200, 1200).is_some());
    }

    /// A sender told to wait that wakes late keeps the tokens of its lateness (up to
    /// [`MAX_CATCH_UP`]) beyond the 2 ms burst; one that had nothing to send does not.
    #[test]
    fn a_late_sender_catches_up_on_the_time_it_lost() {
        // 100 MB/s: 2 ms is 200 000 bytes; 12 ms late is 1.2 MB more.
        let rate = 100_000_000;
        let drain = |p: &mut Pacer, now: Instant| {
            let mut sent = 0u64;
            while p.delay(now, rate, 1200, 1200).is_none() {
                p.on_sent(now, rate, 1200, 1200);
                sent += 1200;
                assert!(sent < 10_000_000);
            }
            sent
        };
        for (late_ms, app_limited, expect) in [
            // On time: the one packet it waited for.
            (0, false, 1200),
            // 12 ms late: the 12 ms of tokens, not only the 2 ms burst.
            (12, false, 1_201_200),
            // It had nothing to send meanwhile: the burst only.
            (12, true, 200_000),
            // At most 16 ms of lateness beyond the burst.
            (40, false, 1_800_000),
        ] {
            let mut p = Pacer::new(at(0), rate, 1200);
            drain(&mut p, at(0));
            let due = p.delay(at(0), rate, 1200, 1200).expect("empty bucket");
            if app_limited {
                p.on_app_limited();
            }
            // Back `late_ms` after the instant it was told: what leaves at once.
            let sent = drain(&mut p, due + Duration::from_millis(late_ms));
            assert!(
                sent.abs_diff(expect) <= 1200,
                "{late_ms} ms late, app-limited {app_limited}: {sent} bytes"
            );
            // Caught up: the next packet waits its own 12 µs (or less), no more.
            let now = due + Duration::from_millis(late_ms);
            let next = p.delay(now, rate, 1200, 1200).expect("bucket drained");
            assert!(next <= now + Duration::from_micros(12), "{next:?}");
        }
    }

    #[test]
    fn capacity_is_two_ms_worth_within_bounds() {
        // 1 GB/s: 2 ms is 2 MB, above 256 × 1452.
        assert_eq!(capacity(1_000_000_000, 1452), 256 * 1452 * SCALE);
        // 100 MB/s: 2 ms is 200 kB.
        assert_eq!(capacity(100_000_000, 1452), 200_000 * SCALE);
    }
}
