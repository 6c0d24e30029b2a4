//! CUBIC (RFC 9438): a cubic window growth function of the time since the last reduction,
//! with fast convergence and a Reno-friendly region.

use core::time::Duration;

use super::{Controller, DeliverySample, RttEstimator, initial_window, minimum_window};
use crate::time::Instant;

/// The cubic scaling constant, in datagrams per second cubed.
const C: f64 = 0.4;
/// The multiplicative decrease factor.
const BETA: f64 = 0.7;
/// The Reno-friendly additive increase that averages to Reno's rate under `BETA`.
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// HyStart (RFC 9406's delay trigger): RTT samples per round before the delay check ...
const HS_MIN_SAMPLES: u32 = 8;
/// ... and the bounds of the RTT increase that ends slow start.
const HS_MIN_ETA: Duration = Duration::from_millis(4);
const HS_MAX_ETA: Duration = Duration::from_millis(16);

/// HyStart state: leaves slow start for congestion avoidance when the minimum RTT of a round
/// rises by RFC 9406's threshold, before the queue overflows. Unlike RFC 9406 (HyStart++) it
/// goes straight to congestion avoidance, as Linux's CUBIC (HyStart) does: HyStart++'s
/// conservative slow start keeps growing by a quarter of a window per round for five more
/// rounds whatever the RTT does, which fills a deep queue to overflowing, and a flow that
/// starts later then gets a fraction of its share for tens of seconds (ferry-sim's
/// `a_late_flow_is_not_starved_through_a_deep_queue`: 14 % with it, 39 % without).
#[derive(Debug, Clone)]
struct HyStart {
    /// Start of the current round: it ends when a packet sent after it is acknowledged.
    round_start: Option<Instant>,
    last_round_min: Option<Duration>,
    round_min: Option<Duration>,
    samples: u32,
}

/// RFC 9438 CUBIC. The window is kept as `f64` bytes so per-ACK increases of less than a byte
/// accumulate.
#[derive(Debug, Clone)]
pub(crate) struct Cubic {
    mtu: u16,
    window: f64,
    ssthresh: f64,
    /// The window just before the last reduction (after fast convergence).
    w_max: f64,
    /// Seconds from the epoch start until the cubic curve reaches `w_max` again.
    k: f64,
    /// Start of the current congestion-avoidance epoch (`None`: the next ACK starts one).
    epoch_start: Option<Instant>,
    /// Reno-friendly estimate of the window, in bytes.
    w_est: f64,
    /// Start of the current recovery period.
    recovery_start: Option<Instant>,
    hystart: HyStart,
}

impl Cubic {
    /// In slow start with the initial window.
    pub(crate) fn new(mtu: u16) -> Self {
        Cubic {
            mtu,
            window: initial_window(mtu) as f64,
            ssthresh: f64::INFINITY,
            w_max: 0.0,
            k: 0.0,
            epoch_start: None,
            w_est: 0.0,
            recovery_start: None,
            hystart: HyStart {
                round_start: None,
                last_round_min: None,
                round_min: None,
                samples: 0,
            },
        }
    }

    /// Slow-start growth for `bytes` acknowledged, with HyStart.
    fn slow_start(&mut self, now: Instant, sent_time: Instant, bytes: f64, rtt: &RttEstimator) {
        let hs = &mut self.hystart;
        if hs.round_start.is_none_or(|start| sent_time >= start) {
            // A new round.
            hs.round_start = Some(now);
            hs.last_round_min = hs.round_min.or(hs.last_round_min);
            hs.round_min = None;
            hs.samples = 0;
        }
        if rtt.has_sample() {
            let sample = rtt.latest();
            hs.round_min = Some(hs.round_min.map_or(sample, |m| m.min(sample)));
            hs.samples += 1;
        }
        if let (Some(cur), Some(last)) = (hs.round_min, hs.last_round_min)
            && hs.samples >= HS_MIN_SAMPLES
            && cur >= last + (last / 8).clamp(HS_MIN_ETA, HS_MAX_ETA)
        {
            // The queue is building: congestion avoidance from here.
            self.ssthresh = self.window;
            return;
        }
        self.window += bytes;
    }

    fn in_recovery(&self, sent_time: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent_time <= start)
    }

    fn mss(&self) -> f64 {
        f64::from(self.mtu)
    }

    /// W_cubic(t) in bytes, `t` in seconds since the epoch start.
    fn w_cubic(&self, t: f64) -> f64 {
        let d = t - self.k;
        C * self.mss() * d * d * d + self.w_max
    }

    fn min_window(&self) -> f64 {
        minimum_window(self.mtu) as f64
    }
}

impl Controller for Cubic {
    fn on_sent(&mut self, _now: Instant, _bytes: u64, _in_flight: u64) {}

    fn on_ack(
        &mut self,
        now: Instant,
        sent_time: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
        _sample: Option<&DeliverySample>,
    ) {
        if app_limited {
            // RFC 9438 §5.8: no growth while the window is not used; the epoch restarts from
            // the current window when it is used again.
            self.epoch_start = None;
            return;
        }
        if self.in_recovery(sent_time) {
            return;
        }
        let bytes = bytes as f64;
        if self.window < self.ssthresh {
            self.slow_start(now, sent_time, bytes, rtt);
            return;
        }
        let epoch_start = match self.epoch_start {
            Some(start) => start,
            None => {
                // A new epoch: the curve starts at the current window and plateaus at `w_max`.
                if self.window < self.w_max {
                    self.k = cbrt((self.w_max - self.window) / (C * self.mss()));
                } else {
                    self.w_max = self.window;
                    self.k = 0.0;
                }
                self.w_est = self.window;
                self.epoch_start = Some(now);
                now
            }
        };
        let t = (now - epoch_start).as_secs_f64();
        let srtt = rtt.smoothed().as_secs_f64();
        // Reno-friendly estimate (RFC 9438 §4.3): ALPHA until it passes the old maximum, then
        // Reno's one datagram per window.
        let alpha = if self.w_est < self.w_max { ALPHA } else { 1.0 };
        self.w_est += alpha * self.mss() * bytes / self.window;
        if self.w_cubic(t) < self.w_est {
            self.window = self.window.max(self.w_est);
        } else {
            let target = self.w_cubic(t + srtt).clamp(self.window, 1.5 * self.window);
            self.window += (target - self.window) * bytes / self.window;
        }
    }

    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent_time: Instant,
        persistent: bool,
        _lost_bytes: u64,
    ) {
        if !self.in_recovery(sent_time) {
            self.recovery_start = Some(now);
            self.epoch_start = None;
            // Fast convergence: a flow whose maximum shrinks releases bandwidth sooner.
            self.w_max = if self.window < self.w_max {
                self.window * (1.0 + BETA) / 2.0
            } else {
                self.window
            };
            self.window = (self.window * BETA).max(self.min_window());
            self.ssthresh = self.window;
        }
        if persistent {
            self.window = self.min_window();
            self.recovery_start = None;
            self.epoch_start = None;
        }
    }

    fn on_mtu_update(&mut self, mtu: u16) {
        self.mtu = mtu;
        self.window = self.window.max(self.min_window());
    }

    fn window(&self) -> u64 {
        self.window as u64
    }

    fn pacing_rate(&self, _rtt: &RttEstimator) -> Option<u64> {
        None
    }

    fn initial_window(&self) -> u64 {
        initial_window(self.mtu)
    }
}

/// Cube root of a non-negative number (`core` has no `f64::cbrt`): a bit-level first guess
/// refined by Newton's method.
fn cbrt(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 0.0;
    }
    // Dividing the exponent by three gives a guess within a factor of two.
    let mut y = f64::from_bits(x.to_bits() / 3 + (682u64 << 52));
    for _ in 0..8 {
        y = (2.0 * y + x / (y * y)) / 3.0;
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn cube_root() {
        for x in [1e-9, 0.001, 1.0, 8.0, 27.0, 1000.0, 12345.678, 1e12] {
            let y = cbrt(x);
            assert!((y * y * y - x).abs() <= x * 1e-12, "{x}: {y}");
        }
        assert_eq!(cbrt(0.0), 0.0);
    }

    #[test]
    fn slow_start_reduction_by_beta_and_fast_convergence() {
        let rtt = RttEstimator::new(Duration::from_millis(100));
        let mut cc = Cubic::new(1000);
        assert_eq!(cc.window(), 10_000);
        for i in 0..90 {
            cc.on_ack(at(100), at(i), 1000, false, &rtt, None);
        }
        assert_eq!(cc.window(), 100_000);
        cc.on_ack(at(100), at(91), 1000, true, &rtt, None);
        assert_eq!(cc.window(), 100_000, "no growth when application-limited");
        cc.on_congestion_event(at(200), at(150), false, 1000);
        assert_eq!(cc.window(), 70_000);
        assert_eq!(cc.w_max, 100_000.0);
        // One event per recovery period.
        cc.on_congestion_event(at(210), at(190), false, 1000);
        assert_eq!(cc.window(), 70_000);
        // A second reduction below the previous maximum: fast convergence lowers w_max.
        cc.on_congestion_event(at(300), at(250), false, 1000);
        assert_eq!(cc.window(), 49_000);
        assert_eq!(cc.w_max, 70_000.0 * 0.85);
    }

    #[test]
    fn congestion_avoidance_follows_the_cubic_curve_back_to_w_max() {
        let rtt_est = {
            let mut r = RttEstimator::new(Duration::from_millis(100));
            r.update(Duration::ZERO, Duration::from_millis(100));
            r
        };
        let mut cc = Cubic::new(1000);
        cc.window = 100_000.0;
        cc.on_congestion_event(at(0), at(0), false, 1000);
        assert_eq!(cc.window(), 70_000);
        // K = cbrt(30 000 / (0.4 × 1000)) = cbrt(75) ≈ 4.217 s.
        let mut now = 10u64;
        let mut sent = 1u64;
        let mut k_seen = 0.0;
        // Acknowledge a full window every 100 ms for 6 s.
        while now <= 6000 {
            let acks = cc.window() / 1000;
            for _ in 0..acks {
                cc.on_ack(at(now), at(sent), 1000, false, &rtt_est, None);
                sent += 1;
            }
            if k_seen == 0.0 {
                k_seen = cc.k;
            }
            if now == 2010 {
                // Concave region: well between the reduced window and w_max.
                assert!(
                    cc.window() > 85_000 && cc.window() < 100_000,
                    "{}",
                    cc.window()
                );
            }
            now += 100;
        }
        assert!((k_seen - 4.217).abs() < 0.01, "{k_seen}");
        // Past K the window probes beyond w_max (convex region).
        assert!(cc.window() > 100_000, "{}", cc.window());
    }

    #[test]
    fn persistent_congestion_resets_to_the_minimum_window() {
        let mut cc = Cubic::new(1200);
        cc.on_congestion_event(at(100), at(50), true, 12_000);
        assert_eq!(cc.window(), 2400);
    }

    #[test]
    fn hystart_leaves_slow_start_when_the_round_trip_time_rises() {
        let mut rtt = RttEstimator::new(Duration::from_millis(20));
        let mut cc = Cubic::new(1000);
        let mut grown = alloc::vec::Vec::new();
        // One round per 100 ms of ten 1000-byte ACKs; the RTT rises from 20 to 40 ms in round 3.
        for round in 0..10u64 {
            let now = 100 * (round + 1);
            let sample = if round < 3 { 20 } else { 40 };
            let before = cc.window;
            for _ in 0..10 {
                rtt.update(Duration::ZERO, Duration::from_millis(sample));
                cc.on_ack(at(now), at(now - 50), 1000, false, &rtt, None);
            }
            grown.push((cc.window - before) as u64);
        }
        // Slow start (10 kB per round) until the rise is seen at the 8th sample of round 3, then
        // congestion avoidance at once (no conservative slow start, as Linux's HyStart): the
        // window stays below what five rounds of RFC 9406's CSS (a quarter per round) add.
        assert_eq!(&grown[..3], [10_000, 10_000, 10_000]);
        assert!((7000..7100).contains(&grown[3]), "{grown:?}");
        assert_eq!(
            cc.ssthresh, 47_000.0,
            "congestion avoidance from the trigger"
        );
        let after: u64 = grown[4..9].iter().sum();
        assert!(after < 5 * 1000, "{grown:?}");
    }
}

#[cfg(test)]
mod model_tests {
    use core::time::Duration;

    use crate::dgram::CongestionControl;
    use crate::dgram::recovery::model::{link, mathis, run};

    #[test]
    fn cubic_fills_a_clean_100_mbit_20_ms_link() {
        let r = run(
            CongestionControl::Cubic,
            link(100, 20, 0),
            Duration::from_secs(8),
            Duration::from_secs(2),
            1,
        );
        assert!(r.goodput >= 90_000_000, "{} bit/s", r.goodput);
        assert_eq!(
            (
                r.stats.spurious_losses,
                r.stats.persistent_congestion,
                r.stats.pto_count_total
            ),
            (0, 0, 0)
        );
    }

    #[test]
    fn cubic_at_one_percent_loss_reaches_mathis_with_few_retransmissions_and_no_spurious_loss() {
        let rtt = Duration::from_millis(20);
        for seed in 1..=3 {
            let r = run(
                CongestionControl::Cubic,
                link(100, 20, 10_000),
                Duration::from_secs(30),
                Duration::from_secs(2),
                seed,
            );
            let lost = r.stats.bytes_lost as f64 / r.stats.bytes_sent as f64;
            let spurious = r.stats.spurious_bytes as f64 / r.stats.bytes_sent as f64;
            assert!(
                r.goodput as f64 >= mathis(rtt, 10_000),
                "seed {seed}: {} bit/s",
                r.goodput
            );
            assert!(
                lost <= 0.02 && spurious <= 0.005,
                "seed {seed}: lost {lost}, spurious {spurious}"
            );
        }
    }
}
