//! A BBRv1-style controller: a model of the bottleneck bandwidth (windowed maximum of
//! delivery-rate samples) and the round-trip propagation time (windowed minimum RTT). Pacing
//! at `gain × bandwidth` is the primary control; the window caps in-flight data at twice the
//! bandwidth-delay product. Random loss does not shrink the model.

use alloc::collections::VecDeque;
use core::time::Duration;

use super::{Controller, DeliverySample, RttEstimator, initial_window, minimum_window};
use crate::time::Instant;

/// 2 / ln 2: the smallest gain that doubles the delivery rate each round in STARTUP.
const HIGH_GAIN: f64 = 2.885;
/// The window gain in STARTUP and DRAIN.
const STARTUP_CWND_GAIN: f64 = 2.0;
/// The window gain outside STARTUP and DRAIN.
const CWND_GAIN: f64 = 2.0;
/// PROBE_BW pacing gains, one phase per minimum RTT.
const CYCLE: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// The bandwidth filter's window, in round trips.
const BW_WINDOW_ROUNDS: u64 = 10;
/// The minimum RTT filter's window.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// How long PROBE_RTT holds the window at its minimum.
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// STARTUP ends when the bandwidth grew by less than this factor ...
const FULL_BW_GROWTH: f64 = 1.25;
/// ... for this many rounds.
const FULL_BW_ROUNDS: u32 = 3;
/// RTT samples that must all show a queue for STARTUP to end on it after one flat round (as
/// HyStart++ reads the least of a round's first eight).
const QUEUE_SAMPLES: usize = 8;
/// Extra datagrams of window beyond `CWND_GAIN × BDP` (ACK aggregation, delayed ACKs).
const CWND_QUANTA: u64 = 3;
/// The window during PROBE_RTT and the floor of the model's window, in datagrams.
const MIN_PIPE_CWND: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Startup,
    Drain,
    ProbeBw,
    ProbeRtt,
}

/// BBRv1-style congestion control.
#[derive(Debug, Clone)]
pub(crate) struct Bbr {
    mtu: u16,
    mode: Mode,
    window: u64,
    /// Per-round maxima of delivery-rate samples over the last [`BW_WINDOW_ROUNDS`] rounds.
    bw_samples: VecDeque<(u64, u64)>,
    /// The bottleneck bandwidth estimate, bytes per second (0: no sample yet).
    btl_bw: u64,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    round_count: u64,
    next_round_delivered: u64,
    round_start: bool,
    /// The last [`QUEUE_SAMPLES`] RTT samples (ring; zero: none yet): a standing queue raises
    /// all of them, a delayed ACK or a descheduled receiver only some.
    recent_rtts: [Duration; QUEUE_SAMPLES],
    recent_next: usize,
    full_bw: u64,
    full_bw_count: u32,
    filled_pipe: bool,
    pacing_gain: f64,
    cwnd_gain: f64,
    cycle_index: usize,
    cycle_stamp: Instant,
    probe_rtt_done: Option<Instant>,
    probe_rtt_round_done: bool,
    prior_cwnd: u64,
    /// Losses since the last PROBE_BW phase change (a probing phase ends early on loss).
    lost_in_phase: u64,
}

impl Bbr {
    /// In STARTUP with the initial window.
    pub(crate) fn new(mtu: u16, now: Instant) -> Self {
        Bbr {
            mtu,
            mode: Mode::Startup,
            window: initial_window(mtu),
            bw_samples: VecDeque::new(),
            btl_bw: 0,
            min_rtt: None,
            min_rtt_stamp: now,
            round_count: 0,
            next_round_delivered: 0,
            round_start: false,
            recent_rtts: [Duration::ZERO; QUEUE_SAMPLES],
            recent_next: 0,
            full_bw: 0,
            full_bw_count: 0,
            filled_pipe: false,
            pacing_gain: HIGH_GAIN,
            cwnd_gain: STARTUP_CWND_GAIN,
            cycle_index: 0,
            cycle_stamp: now,
            probe_rtt_done: None,
            probe_rtt_round_done: false,
            prior_cwnd: 0,
            lost_in_phase: 0,
        }
    }

    fn mss(&self) -> u64 {
        u64::from(self.mtu)
    }

    /// `gain × btl_bw × min_rtt`, or the initial window without a model yet.
    fn inflight(&self, gain: f64) -> u64 {
        match self.min_rtt {
            Some(rtt) if self.btl_bw > 0 => (gain * self.btl_bw as f64 * rtt.as_secs_f64()) as u64,
            _ => initial_window(self.mtu),
        }
    }

    fn update_round(&mut self, sample: &DeliverySample) {
        self.round_start = false;
        if sample.rtt > Duration::ZERO {
            self.recent_rtts[self.recent_next] = sample.rtt;
            self.recent_next = (self.recent_next + 1) % QUEUE_SAMPLES;
        }
        if sample.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = sample.delivered;
            self.round_count += 1;
            self.round_start = true;
        }
    }

    fn update_bw(&mut self, sample: &DeliverySample) {
        let rate = sample.delivery_rate;
        if rate == 0 || (sample.is_app_limited && rate < self.btl_bw) {
            return;
        }
        match self.bw_samples.back_mut() {
            Some((round, max)) if *round == self.round_count => *max = (*max).max(rate),
            _ => self.bw_samples.push_back((self.round_count, rate)),
        }
        while self
            .bw_samples
            .front()
            .is_some_and(|(round, _)| round + BW_WINDOW_ROUNDS <= self.round_count)
        {
            self.bw_samples.pop_front();
        }
        self.btl_bw = self.bw_samples.iter().map(|&(_, bw)| bw).max().unwrap_or(0);
    }

    fn set_cycle_phase(&mut self, now: Instant, index: usize) {
        self.cycle_index = index % CYCLE.len();
        self.cycle_stamp = now;
        self.pacing_gain = CYCLE[self.cycle_index];
        self.lost_in_phase = 0;
    }

    fn update_cycle_phase(&mut self, now: Instant, in_flight: u64) {
        if self.mode != Mode::ProbeBw {
            return;
        }
        let full_length = now - self.cycle_stamp > self.min_rtt.unwrap_or(Duration::ZERO);
        let next = if self.pacing_gain > 1.0 {
            full_length && (self.lost_in_phase > 0 || in_flight >= self.inflight(self.pacing_gain))
        } else if self.pacing_gain < 1.0 {
            full_length || in_flight <= self.inflight(1.0)
        } else {
            full_length
        };
        if next {
            self.set_cycle_phase(now, self.cycle_index + 1);
        }
    }

    fn check_full_pipe(&mut self, sample: &DeliverySample) {
        if self.filled_pipe || !self.round_start || sample.is_app_limited {
            return;
        }
        if self.btl_bw as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
            self.full_bw = self.btl_bw;
            self.full_bw_count = 0;
            return;
        }
        self.full_bw_count += 1;
        // A round without growth whose recent RTT samples all show a standing queue of half
        // the pipe or more: the pipe is full now. Waiting the usual rounds more at STARTUP's
        // gain would only grow the queue (by almost two pipes per round) and overflow a
        // bottleneck buffer of one bandwidth-delay product, each round trip longer for the
        // queue. All of the last few samples, not one: on a busy host one late ACK is
        // scheduling jitter, and leaving STARTUP on it strands the model far below the path.
        let recent = self.recent_rtts.iter().min().copied().unwrap_or_default();
        let queued = self
            .min_rtt
            .is_some_and(|min| recent >= min.saturating_add(min / 2));
        if self.full_bw_count >= FULL_BW_ROUNDS || queued {
            self.filled_pipe = true;
        }
    }

    fn check_drain(&mut self, now: Instant, in_flight: u64) {
        if self.mode == Mode::Startup && self.filled_pipe {
            self.mode = Mode::Drain;
            self.pacing_gain = 1.0 / HIGH_GAIN;
            self.cwnd_gain = STARTUP_CWND_GAIN;
        }
        if self.mode == Mode::Drain && in_flight <= self.inflight(1.0) {
            self.enter_probe_bw(now);
        }
    }

    fn enter_probe_bw(&mut self, now: Instant) {
        self.mode = Mode::ProbeBw;
        self.cwnd_gain = CWND_GAIN;
        // Start in a cruising phase (deterministic stand-in for BBR's random phase), so the
        // probe comes after the queue drained.
        self.set_cycle_phase(now, 2 + (self.round_count % 6) as usize);
    }

    fn update_min_rtt(&mut self, now: Instant, sample: &DeliverySample, in_flight: u64) {
        let expired = now > self.min_rtt_stamp + MIN_RTT_WINDOW;
        if sample.rtt > Duration::ZERO
            && (self.min_rtt.is_none_or(|min| sample.rtt <= min) || expired)
        {
            self.min_rtt = Some(sample.rtt);
            self.min_rtt_stamp = now;
        }
        if expired && self.mode != Mode::ProbeRtt {
            self.mode = Mode::ProbeRtt;
            self.pacing_gain = 1.0;
            self.cwnd_gain = 1.0;
            self.prior_cwnd = self.window;
            self.probe_rtt_done = None;
        }
        if self.mode == Mode::ProbeRtt {
            self.handle_probe_rtt(now, sample, in_flight);
        }
    }

    fn handle_probe_rtt(&mut self, now: Instant, sample: &DeliverySample, in_flight: u64) {
        match self.probe_rtt_done {
            None if in_flight <= MIN_PIPE_CWND * self.mss() => {
                self.probe_rtt_done = Some(now + PROBE_RTT_TIME);
                self.probe_rtt_round_done = false;
                self.next_round_delivered = sample.delivered;
            }
            None => {}
            Some(done) => {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done && now >= done {
                    self.min_rtt_stamp = now;
                    self.window = self.window.max(self.prior_cwnd);
                    if self.filled_pipe {
                        self.enter_probe_bw(now);
                    } else {
                        self.mode = Mode::Startup;
                        self.pacing_gain = HIGH_GAIN;
                        self.cwnd_gain = STARTUP_CWND_GAIN;
                    }
                }
            }
        }
    }

    fn update_window(&mut self, sample: &DeliverySample) {
        let target = self.inflight(self.cwnd_gain) + CWND_QUANTA * self.mss();
        if self.filled_pipe {
            self.window = (self.window + sample.newly_acked).min(target);
        } else if self.window < target || sample.delivered < initial_window(self.mtu) {
            self.window += sample.newly_acked;
        }
        self.window = self.window.max(MIN_PIPE_CWND * self.mss());
        if self.mode == Mode::ProbeRtt {
            self.window = self.window.min(MIN_PIPE_CWND * self.mss());
        }
    }
}

impl Controller for Bbr {
    fn on_sent(&mut self, _now: Instant, _bytes: u64, _in_flight: u64) {}

    fn on_ack(
        &mut self,
        now: Instant,
        _sent_time: Instant,
        _bytes: u64,
        _app_limited: bool,
        _rtt: &RttEstimator,
        sample: Option<&DeliverySample>,
    ) {
        let Some(sample) = sample else { return };
        let in_flight = sample.bytes_in_flight;
        self.update_round(sample);
        self.update_bw(sample);
        self.update_cycle_phase(now, in_flight);
        self.check_full_pipe(sample);
        self.check_drain(now, in_flight);
        self.update_min_rtt(now, sample, in_flight);
        self.update_window(sample);
    }

    fn on_loss(&mut self, _now: Instant, lost_bytes: u64) {
        self.lost_in_phase += lost_bytes;
    }

    fn on_congestion_event(
        &mut self,
        _now: Instant,
        _sent_time: Instant,
        persistent: bool,
        _lost_bytes: u64,
    ) {
        // Random loss is not congestion for this model; only a collapse of the path is.
        if persistent {
            self.prior_cwnd = self.window;
            self.window = minimum_window(self.mtu);
        }
    }

    fn on_mtu_update(&mut self, mtu: u16) {
        self.mtu = mtu;
        self.window = self.window.max(minimum_window(mtu));
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn pacing_rate(&self, rtt: &RttEstimator) -> Option<u64> {
        let bw = if self.btl_bw > 0 {
            self.btl_bw as f64
        } else {
            // No sample yet: the initial window per smoothed RTT.
            initial_window(self.mtu) as f64 / rtt.smoothed().as_secs_f64().max(1e-6)
        };
        Some(((self.pacing_gain * bw) as u64).max(1))
    }

    fn initial_window(&self) -> u64 {
        initial_window(self.mtu)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::{Bbr, Controller, DeliverySample, Mode, RttEstimator};
    use crate::dgram::CongestionControl;
    use crate::dgram::recovery::model::{link, run};
    use crate::time::Instant;

    /// One round trip at `rate` bytes per second acknowledged by one ACK per entry of `rtts`
    /// (the first starts the round), each with that RTT sample; returns the time after it.
    fn round_acks(bbr: &mut Bbr, now: Instant, rate: u64, rtts: &[Duration]) -> Instant {
        let min = *rtts.iter().min().expect("at least one ACK");
        let est = RttEstimator::new(min);
        let start = bbr.next_round_delivered;
        let bytes = (rate as f64 * min.as_secs_f64()) as u64;
        let part = bytes / rtts.len() as u64;
        let mut delivered = start;
        for &rtt in rtts {
            // Every ACK acknowledges a packet sent after the last round began; the first of
            // them starts this round.
            let prior = start;
            delivered += part;
            let sample = DeliverySample {
                delivered,
                prior_delivered: prior,
                delivered_in_interval: bytes,
                interval: min,
                delivery_rate: rate,
                is_app_limited: false,
                rtt,
                newly_acked: part,
                bytes_in_flight: bytes,
            };
            bbr.on_ack(now + rtt, now, part, false, &est, Some(&sample));
        }
        now + min
    }

    /// A round whose every ACK is late shows a queue (STARTUP ends at the next round's start,
    /// when all of the last eight samples are late); one late ACK per round is jitter (the
    /// usual three flat rounds).
    #[test]
    fn one_late_ack_per_round_does_not_end_startup_early() {
        let min = Duration::from_millis(20);
        let late = Duration::from_millis(32);
        for (acks, flat_rounds) in [
            ([late, min, min, min, min, min, min, min], 3),
            ([late; 8], 2),
        ] {
            let mut now = Instant::from_micros(1_000_000);
            let mut bbr = Bbr::new(1452, now);
            for i in 0..6 {
                now = round_acks(&mut bbr, now, 1_000_000 << i, &[min; 8]);
            }
            assert_eq!(bbr.mode, Mode::Startup);
            let mut rounds = 0;
            while bbr.mode == Mode::Startup && rounds < 10 {
                now = round_acks(&mut bbr, now, 1_000_000 << 5, &acks);
                rounds += 1;
            }
            assert_eq!(rounds, flat_rounds, "ACK RTTs {acks:?}");
        }
    }

    /// A flat round whose ACKs all show a queue of half the pipe or more ends STARTUP as soon
    /// as it is over (the first ACK of the next round), not after the usual three.
    #[test]
    fn startup_ends_after_one_flat_round_when_the_rtt_shows_a_queue() {
        let min = Duration::from_millis(200);
        for (rtt_ms, flat_rounds) in [(200, 3), (260, 3), (300, 2), (400, 2)] {
            let mut now = Instant::from_micros(1_000_000);
            let mut bbr = Bbr::new(1452, now);
            // Doubling rounds on an empty path.
            for i in 0..6 {
                now = round_acks(&mut bbr, now, 1_000_000 << i, &[min; 8]);
            }
            let rate = 1_000_000 << 5;
            assert_eq!(bbr.mode, Mode::Startup);
            // The pipe is full: the rate is flat and a queue builds (or not).
            let mut rounds = 0;
            while bbr.mode == Mode::Startup && rounds < 10 {
                now = round_acks(&mut bbr, now, rate, &[Duration::from_millis(rtt_ms); 8]);
                rounds += 1;
            }
            assert_eq!(rounds, flat_rounds, "RTT {rtt_ms} ms");
            assert!(bbr.filled_pipe);
        }
    }

    #[test]
    fn bbr_keeps_most_of_a_100_mbit_link_under_random_loss() {
        for (loss_ppm, floor) in [(20_000, 80_000_000), (10_000, 80_000_000), (0, 90_000_000)] {
            let r = run(
                CongestionControl::Bbr,
                link(100, 20, loss_ppm),
                Duration::from_secs(8),
                Duration::from_secs(2),
                3,
            );
            assert!(
                r.goodput >= floor,
                "loss {loss_ppm} ppm: {} bit/s",
                r.goodput
            );
            assert_eq!(r.stats.persistent_congestion, 0);
        }
    }

    #[test]
    fn bbr_fills_a_long_fat_lossy_path() {
        // 500 Mbit/s, 200 ms, 2 % random loss (12.5 MB bandwidth-delay product).
        let r = run(
            CongestionControl::Bbr,
            link(500, 200, 20_000),
            Duration::from_secs(12),
            Duration::from_secs(4),
            5,
        );
        assert!(r.goodput >= 400_000_000, "{} bit/s", r.goodput);
        assert_eq!(
            (r.stats.spurious_losses, r.stats.persistent_congestion),
            (0, 0)
        );
    }
}
