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

/// A token bucket refilled at the pacing rate (bytes per second); sending consumes tokens.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Tokens, in bytes × [`SCALE`].
    tokens: u128,
    /// When the tokens were last refilled.
    last: Instant,
    /// The rate used at the last refill, bytes per second.
    rate: u64,
}

impl Pacer {
    /// A full bucket (the first burst leaves at once).
    pub(crate) fn new(now: Instant, rate: u64, mtu: u16) -> Self {
        Pacer {
            tokens: capacity(rate, mtu),
            last: now,
            rate,
        }
    }

    fn refill(&mut self, now: Instant, rate: u64, mtu: u16) {
        let cap = capacity(rate, mtu);
        let elapsed = (now - self.last).as_micros();
        // Tokens accrued at the previous rate up to now; the new rate applies from now on.
        let added = u128::from(self.rate.max(1)) * elapsed;
        self.tokens = self.tokens.saturating_add(added).min(cap);
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
        Some(now + Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX)))
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

    #[test]
    fn capacity_is_two_ms_worth_within_bounds() {
        // 1 GB/s: 2 ms is 2 MB, above 256 × 1452.
        assert_eq!(capacity(1_000_000_000, 1452), 256 * 1452 * SCALE);
        // 100 MB/s: 2 ms is 200 kB.
        assert_eq!(capacity(100_000_000, 1452), 200_000 * SCALE);
    }
}
