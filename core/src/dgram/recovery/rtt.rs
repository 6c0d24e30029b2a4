//! Round-trip time estimation (RFC 9002 §5).

use core::time::Duration;

/// Timer granularity: the smallest loss delay and the floor of the variance term of the PTO.
pub(crate) const GRANULARITY: Duration = Duration::from_millis(1);

/// Smoothed RTT, its variation and the minimum, from acknowledgement samples (RFC 9002 §5).
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    initial: Duration,
    latest: Duration,
    smoothed: Option<Duration>,
    var: Duration,
    min: Duration,
}

impl RttEstimator {
    /// An estimator that reports `initial` until the first sample.
    pub(crate) fn new(initial: Duration) -> Self {
        RttEstimator {
            initial,
            latest: initial,
            smoothed: None,
            var: initial / 2,
            min: initial,
        }
    }

    /// Takes one sample: `sample` is the time from sending the largest newly acknowledged
    /// packet to receiving its ACK, `ack_delay` the delay the peer reports, already capped by
    /// the caller (at `max_ack_delay` once the handshake is confirmed, zero for handshake
    /// packets).
    pub(crate) fn update(&mut self, ack_delay: Duration, sample: Duration) {
        self.latest = sample;
        let Some(smoothed) = self.smoothed else {
            self.min = sample;
            self.smoothed = Some(sample);
            self.var = sample / 2;
            return;
        };
        self.min = self.min.min(sample);
        // Subtract the ACK delay only when the result stays at or above the minimum RTT.
        let adjusted = if sample >= self.min + ack_delay {
            sample - ack_delay
        } else {
            sample
        };
        let diff = smoothed.abs_diff(adjusted);
        self.var = (self.var * 3 + diff) / 4;
        self.smoothed = Some((smoothed * 7 + adjusted) / 8);
    }

    /// Whether a sample has been taken.
    pub(crate) fn has_sample(&self) -> bool {
        self.smoothed.is_some()
    }

    /// The smoothed RTT (the initial RTT before any sample).
    pub(crate) fn smoothed(&self) -> Duration {
        self.smoothed.unwrap_or(self.initial)
    }

    /// The latest sample (the initial RTT before any sample).
    pub(crate) fn latest(&self) -> Duration {
        self.latest
    }

    /// The smallest sample (the initial RTT before any sample).
    pub(crate) fn min(&self) -> Duration {
        self.min
    }

    /// The RTT variation.
    pub(crate) fn var(&self) -> Duration {
        self.var
    }

    /// `srtt + max(4 × rttvar, granularity)`: the PTO without `max_ack_delay` or backoff.
    pub(crate) fn pto_base(&self) -> Duration {
        self.smoothed() + (self.var * 4).max(GRANULARITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn initial_values_before_any_sample() {
        let rtt = RttEstimator::new(MS(333));
        assert!(!rtt.has_sample());
        assert_eq!(rtt.smoothed(), MS(333));
        assert_eq!(rtt.var(), Duration::from_micros(166_500));
        // RFC 9002 §6.2.2: the initial PTO is 3 × initial RTT (333 + 4 × 166.5 = 999 ms).
        assert_eq!(rtt.pto_base(), MS(999));
    }

    #[test]
    fn first_sample_sets_smoothed_and_half_variance_ignoring_ack_delay() {
        let mut rtt = RttEstimator::new(MS(333));
        rtt.update(MS(10), MS(100));
        assert!(rtt.has_sample());
        assert_eq!(
            (rtt.smoothed(), rtt.var(), rtt.min(), rtt.latest()),
            (MS(100), MS(50), MS(100), MS(100))
        );
        assert_eq!(rtt.pto_base(), MS(300));
    }

    #[test]
    fn later_samples_follow_the_rfc_ewma_and_subtract_ack_delay_above_min() {
        let mut rtt = RttEstimator::new(MS(333));
        rtt.update(Duration::ZERO, MS(100));
        // 120 ms with 10 ms ACK delay: adjusted 110 (>= min 100).
        rtt.update(MS(10), MS(120));
        // rttvar = 3/4 × 50 + 1/4 × |100 - 110| = 40; srtt = 7/8 × 100 + 1/8 × 110 = 101.25.
        assert_eq!(rtt.var(), MS(40));
        assert_eq!(rtt.smoothed(), Duration::from_micros(101_250));
        assert_eq!(rtt.latest(), MS(120));
        // 105 ms with 10 ms delay: 105 < 100 + 10, the delay is not subtracted.
        rtt.update(MS(10), MS(105));
        // rttvar = 3/4 × 40 + 1/4 × |101.25 - 105| = 30.9375; srtt = 7/8 × 101.25 + 105/8.
        assert_eq!(rtt.var(), Duration::from_nanos(30_937_500));
        assert_eq!(rtt.smoothed(), Duration::from_nanos(101_718_750));
        // The minimum ignores the ACK delay.
        rtt.update(MS(50), MS(60));
        assert_eq!(rtt.min(), MS(60));
    }

    #[test]
    fn pto_base_has_a_granularity_floor() {
        let mut rtt = RttEstimator::new(MS(333));
        for _ in 0..200 {
            rtt.update(Duration::ZERO, MS(10));
        }
        assert_eq!(rtt.smoothed(), MS(10));
        assert!(rtt.var() < Duration::from_micros(250));
        assert_eq!(rtt.pto_base(), MS(11));
    }
}
