//! NewReno, exactly as RFC 9002 §7 and its Appendix B describe it.

use super::{Controller, DeliverySample, RttEstimator, initial_window, minimum_window};
use crate::time::Instant;

/// RFC 9002 §7: slow start, halving once per recovery period, additive increase of one
/// datagram per window acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    mtu: u16,
    window: u64,
    ssthresh: u64,
    /// Bytes acknowledged in congestion avoidance since the last one-datagram increase.
    acked_in_ca: u64,
    /// Start of the current recovery period: packets sent up to then do not grow the window
    /// and their losses do not reduce it again.
    recovery_start: Option<Instant>,
}

impl NewReno {
    /// In slow start with the initial window.
    pub(crate) fn new(mtu: u16) -> Self {
        NewReno {
            mtu,
            window: initial_window(mtu),
            ssthresh: u64::MAX,
            acked_in_ca: 0,
            recovery_start: None,
        }
    }

    fn in_recovery(&self, sent_time: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent_time <= start)
    }
}

impl Controller for NewReno {
    fn on_sent(&mut self, _now: Instant, _bytes: u64, _in_flight: u64) {}

    fn on_ack(
        &mut self,
        _now: Instant,
        sent_time: Instant,
        bytes: u64,
        app_limited: bool,
        _rtt: &RttEstimator,
        _sample: Option<&DeliverySample>,
    ) {
        if app_limited || self.in_recovery(sent_time) {
            return;
        }
        if self.window < self.ssthresh {
            self.window += bytes;
            return;
        }
        self.acked_in_ca += bytes;
        if self.acked_in_ca >= self.window {
            self.acked_in_ca -= self.window;
            self.window += u64::from(self.mtu);
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
            self.window = (self.window / 2).max(minimum_window(self.mtu));
            self.ssthresh = self.window;
            self.acked_in_ca = 0;
        }
        if persistent {
            self.window = minimum_window(self.mtu);
            self.recovery_start = None;
            self.acked_in_ca = 0;
        }
    }

    fn on_mtu_update(&mut self, mtu: u16) {
        self.mtu = mtu;
        self.window = self.window.max(minimum_window(mtu));
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn pacing_rate(&self, _rtt: &RttEstimator) -> Option<u64> {
        None
    }

    fn initial_window(&self) -> u64 {
        initial_window(self.mtu)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn slow_start_then_halving_once_per_recovery_period_then_additive_increase() {
        let rtt = RttEstimator::new(Duration::from_millis(100));
        let mut cc = NewReno::new(1200);
        assert_eq!(cc.window(), 12_000);
        // Slow start: the window grows by every acknowledged byte.
        for i in 0..10 {
            cc.on_ack(at(100), at(i), 1200, false, &rtt, None);
        }
        assert_eq!(cc.window(), 24_000);
        // Application-limited: no growth.
        cc.on_ack(at(100), at(10), 1200, true, &rtt, None);
        assert_eq!(cc.window(), 24_000);
        // Loss: halve, and enter recovery at 200 ms.
        cc.on_congestion_event(at(200), at(150), false, 1200);
        assert_eq!((cc.window(), cc.ssthresh), (12_000, 12_000));
        // A second loss of a packet sent before the recovery start: no second reduction.
        cc.on_congestion_event(at(210), at(199), false, 1200);
        assert_eq!(cc.window(), 12_000);
        // ACKs of packets sent before the recovery start do not grow the window.
        cc.on_ack(at(220), at(190), 1200, false, &rtt, None);
        assert_eq!(cc.window(), 12_000);
        // Congestion avoidance: one datagram per window acknowledged.
        for i in 0..9 {
            cc.on_ack(at(300), at(201 + i), 1200, false, &rtt, None);
        }
        assert_eq!(cc.window(), 12_000);
        cc.on_ack(at(300), at(210), 1200, false, &rtt, None);
        assert_eq!(cc.window(), 13_200);
        // A loss after the recovery period: halve again.
        cc.on_congestion_event(at(400), at(350), false, 1200);
        assert_eq!(cc.window(), 6600);
    }

    #[test]
    fn persistent_congestion_collapses_to_the_minimum_window_and_floors_hold() {
        let mut cc = NewReno::new(1200);
        cc.on_congestion_event(at(100), at(50), true, 10_000);
        assert_eq!(cc.window(), 2400);
        // Halving never goes below the minimum window.
        cc.on_congestion_event(at(200), at(150), false, 1200);
        assert_eq!(cc.window(), 2400);
        // After persistent congestion, slow start resumes (window below ssthresh).
        let mut cc = NewReno::new(1200);
        cc.on_congestion_event(at(100), at(50), false, 1200);
        cc.on_congestion_event(at(300), at(250), true, 1200);
        let rtt = RttEstimator::new(Duration::from_millis(100));
        cc.on_ack(at(400), at(350), 1200, false, &rtt, None);
        assert_eq!(cc.window(), 3600);
    }
}

#[cfg(test)]
mod model_tests {
    use core::time::Duration;

    use crate::dgram::CongestionControl;
    use crate::dgram::recovery::model::{link, run};

    #[test]
    fn newreno_fills_a_clean_100_mbit_20_ms_link() {
        let r = run(
            CongestionControl::NewReno,
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
}
