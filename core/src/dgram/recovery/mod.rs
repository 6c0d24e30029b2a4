#![allow(dead_code)]
//! Loss detection, RTT estimation, congestion control and pacing (RFC 9002 shapes;
//! `shared/research/udp.md` §4.5, §4.6).
//!
//! [`Recovery`] keeps the sent packets of both packet-number spaces, reads ACK frames, declares
//! packets lost by packet or time threshold, runs the probe timeout (PTO), feeds a congestion
//! [`Controller`](cc::Controller) and a token-bucket pacer. It never reads a clock: every input
//! carries `now`. The connection gets back, per acknowledged or lost packet, the `T` it stored
//! when sending it (the frames to retransmit).

mod cc;
mod loss;
#[cfg(test)]
mod model;
mod pacing;
mod rtt;
#[cfg(test)]
mod tests;
mod timers;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::ops::RangeInclusive;
use core::time::Duration;

pub(crate) use self::cc::{Controller, DeliverySample, new_controller};
use self::pacing::Pacer;
pub(crate) use self::rtt::RttEstimator;
use super::{CongestionControl, MIN_MTU, Space};
use crate::time::Instant;

/// A packet is lost when a packet sent this many numbers later is acknowledged.
const PACKET_THRESHOLD: u64 = 3;
/// Persistent congestion: every packet lost over this many PTOs (RFC 9002 §7.6).
const PERSISTENT_CONGESTION_THRESHOLD: u32 = 3;
/// Lost packet numbers remembered to recognise spurious losses ...
const LOST_MEMORY: usize = 1024;
/// ... for at most this many PTOs.
const LOST_MEMORY_PTOS: u32 = 3;
/// Skipped packet numbers remembered to reject optimistic ACKs.
const SKIPPED_MEMORY: usize = 64;
/// Non-ack-eliciting packets (ACK-only) unacknowledged for this many PTOs are forgotten: a
/// peer that only receives them never acknowledges them.
const NON_ELICITING_PTOS: u32 = 3;
/// Largest exponent of the PTO backoff.
const MAX_PTO_BACKOFF: u32 = 16;

/// Parameters of [`Recovery`].
#[derive(Debug, Clone)]
pub(crate) struct RecoveryConfig {
    /// RTT assumed before the first sample.
    pub(crate) initial_rtt: Duration,
    /// The peer's maximum ACK delay.
    pub(crate) max_ack_delay: Duration,
    /// The congestion controller.
    pub(crate) cc: CongestionControl,
    /// The current maximum datagram size.
    pub(crate) mtu: u16,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            initial_rtt: Duration::from_millis(333),
            max_ack_delay: Duration::from_millis(25),
            cc: CongestionControl::default(),
            mtu: MIN_MTU,
        }
    }
}

/// What became of a sent packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Acknowledged: its frames were delivered.
    Acked,
    /// Declared lost: its frames must be sent again (in new packets).
    Lost,
}

/// An ACK frame the sender cannot accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckError {
    /// It acknowledges a packet number never sent in that space (an optimistic ACK).
    UnsentPacket,
}

/// Counters of a connection's loss recovery.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecoveryStats {
    /// Packets sent (all of them).
    pub(crate) packets_sent: u64,
    /// Bytes sent (all packets).
    pub(crate) bytes_sent: u64,
    /// In-flight packets declared lost.
    pub(crate) packets_lost: u64,
    /// Their bytes.
    pub(crate) bytes_lost: u64,
    /// Packets declared lost and acknowledged later.
    pub(crate) spurious_losses: u64,
    /// Their bytes.
    pub(crate) spurious_bytes: u64,
    /// Congestion events (at most one per recovery period).
    pub(crate) congestion_events: u64,
    /// Persistent congestion events (window reset to the minimum).
    pub(crate) persistent_congestion: u64,
    /// Probe timeouts that fired.
    pub(crate) pto_count_total: u64,
}

/// A sent packet not yet acknowledged or declared lost.
#[derive(Debug)]
struct SentPacket<T> {
    time: Instant,
    size: u64,
    /// Ack-eliciting packets are the in-flight ones.
    ack_eliciting: bool,
    mtu_probe: bool,
    /// Delivery-rate state when it was sent (draft-cheng-iccrg-delivery-rate-estimation).
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
    info: T,
}

/// The state of one packet-number space.
#[derive(Debug)]
struct SpaceState<T> {
    sent: BTreeMap<u64, SentPacket<T>>,
    largest_sent: Option<u64>,
    largest_acked: Option<u64>,
    /// When the earliest outstanding packet below the largest acknowledged one crosses the
    /// time threshold.
    loss_time: Option<Instant>,
    /// When the last ack-eliciting packet was sent.
    last_ack_eliciting: Option<Instant>,
    ack_eliciting_in_flight: usize,
    /// Recently lost packet numbers: size and when they were declared lost.
    lost: BTreeMap<u64, (u64, Instant)>,
    /// Packet numbers the sender skipped.
    skipped: VecDeque<u64>,
}

impl<T> SpaceState<T> {
    fn new() -> Self {
        SpaceState {
            sent: BTreeMap::new(),
            largest_sent: None,
            largest_acked: None,
            loss_time: None,
            last_ack_eliciting: None,
            ack_eliciting_in_flight: 0,
            lost: BTreeMap::new(),
            skipped: VecDeque::new(),
        }
    }
}

/// Loss recovery and congestion control of one connection (both packet-number spaces).
#[derive(Debug)]
pub(crate) struct Recovery<T> {
    max_ack_delay: Duration,
    mtu: u16,
    spaces: [SpaceState<T>; 2],
    rtt: RttEstimator,
    cc: Box<dyn Controller>,
    pacer: Pacer,
    bytes_in_flight: u64,
    pto_count: u32,
    probes: usize,
    /// Start of the current recovery period (losses of packets sent before do not count).
    recovery_start: Option<Instant>,
    first_rtt_sample: Option<Instant>,
    handshake_confirmed: bool,
    app_limited: bool,
    /// Delivery-rate estimation: bytes delivered, when the last was, the send time of the
    /// last sampled packet, and the `delivered` mark up to which samples are app-limited
    /// (0: none).
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited_until: u64,
    /// The latest `now` seen.
    last_now: Instant,
    /// Ack-eliciting packets sent without a probe credit that did not fit the window (see
    /// `check_invariants`).
    over_window_sends: u64,
    /// `stats.packets_sent` at the last full recount of `check_invariants`.
    #[cfg(any(test, feature = "testing"))]
    recounted_at: core::cell::Cell<u64>,
    stats: RecoveryStats,
}

impl<T> Recovery<T> {
    /// Fresh state: no packets, the initial RTT and window.
    pub(crate) fn new(cfg: &RecoveryConfig, now: Instant) -> Self {
        let cc = new_controller(cfg.cc, cfg.mtu, now);
        let rtt = RttEstimator::new(cfg.initial_rtt);
        let rate = cc
            .pacing_rate(&rtt)
            .unwrap_or_else(|| pacing::default_rate(cc.window(), rtt.smoothed()));
        Recovery {
            max_ack_delay: cfg.max_ack_delay,
            mtu: cfg.mtu,
            spaces: [SpaceState::new(), SpaceState::new()],
            rtt,
            pacer: Pacer::new(now, rate, cfg.mtu),
            cc,
            bytes_in_flight: 0,
            pto_count: 0,
            probes: 0,
            recovery_start: None,
            first_rtt_sample: None,
            handshake_confirmed: false,
            app_limited: false,
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            app_limited_until: 0,
            last_now: now,
            over_window_sends: 0,
            #[cfg(any(test, feature = "testing"))]
            recounted_at: core::cell::Cell::new(0),
            stats: RecoveryStats::default(),
        }
    }

    fn touch(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    pub(crate) fn pacing_rate(&self) -> u64 {
        self.cc
            .pacing_rate(&self.rtt)
            .unwrap_or_else(|| pacing::default_rate(self.cc.window(), self.rtt.smoothed()))
    }

    /// Records a sent packet. Packet numbers strictly increase per space; a gap records the
    /// skipped numbers (an ACK of one is an optimistic ACK). Ack-eliciting packets are in
    /// flight, consume pacing tokens and a pending probe credit. Non-ack-eliciting packets at
    /// the head of the space older than 3 PTOs are dropped from the record (their `T` is
    /// dropped, not returned): a receive-only peer never acknowledges ACK-only packets.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_packet_sent(
        &mut self,
        now: Instant,
        space: Space,
        pn: u64,
        size: usize,
        ack_eliciting: bool,
        mtu_probe: bool,
        info: T,
    ) {
        self.touch(now);
        let size = size as u64;
        let st = &mut self.spaces[space.index()];
        debug_assert!(
            st.largest_sent.is_none_or(|l| pn > l),
            "packet numbers must increase"
        );
        let next = st.largest_sent.map_or(0, |l| l + 1);
        if pn > next && pn - next <= SKIPPED_MEMORY as u64 {
            st.skipped.extend(next..pn);
            while st.skipped.len() > SKIPPED_MEMORY {
                st.skipped.pop_front();
            }
        }
        st.largest_sent = Some(st.largest_sent.map_or(pn, |l| l.max(pn)));
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += size;
        if ack_eliciting {
            if self.probes > 0 {
                self.probes -= 1;
            } else {
                let cwnd = self.cc.window();
                let fits = self.bytes_in_flight + size <= cwnd
                    || (mtu_probe && self.bytes_in_flight <= cwnd);
                self.over_window_sends += u64::from(!fits);
            }
            if self.bytes_in_flight == 0 {
                // Nothing in flight: the delivery-rate interval starts afresh.
                self.first_sent_time = now;
                self.delivered_time = now;
            }
            self.bytes_in_flight += size;
            st.ack_eliciting_in_flight += 1;
            st.last_ack_eliciting = Some(now);
            self.cc.on_sent(now, size, self.bytes_in_flight);
            let rate = self.pacing_rate();
            self.pacer.on_sent(now, rate, self.mtu, size as usize);
        }
        let keep = self.pto_duration(space) * NON_ELICITING_PTOS;
        let st = &mut self.spaces[space.index()];
        while st
            .sent
            .first_key_value()
            .is_some_and(|(_, p)| !p.ack_eliciting && now - p.time > keep)
        {
            st.sent.pop_first();
            // The loss timer may have waited for it (a closing connection sends but no longer
            // runs the timer): disarmed when nothing below the largest acknowledged is left.
            if st
                .largest_acked
                .is_none_or(|l| st.sent.range(..l).next().is_none())
            {
                st.loss_time = None;
            }
        }
        st.sent.insert(
            pn,
            SentPacket {
                time: now,
                size,
                ack_eliciting,
                mtu_probe,
                delivered: self.delivered,
                delivered_time: self.delivered_time,
                first_sent_time: self.first_sent_time,
                app_limited: self.app_limited_until != 0,
                info,
            },
        );
    }

    /// Reads an ACK frame of `space` (`ranges` newest first). Newly acknowledged packets go to
    /// `out` as [`Outcome::Acked`], then packets found lost as [`Outcome::Lost`]. Nothing
    /// changes when the frame acknowledges a packet number never sent.
    pub(crate) fn on_ack_received(
        &mut self,
        now: Instant,
        space: Space,
        ranges: impl Iterator<Item = RangeInclusive<u64>>,
        ack_delay: Duration,
        handshake_confirmed: bool,
        out: &mut Vec<(T, Outcome)>,
    ) -> Result<(), AckError> {
        let ranges: Vec<RangeInclusive<u64>> = ranges.filter(|r| !r.is_empty()).collect();
        let st = &self.spaces[space.index()];
        for r in &ranges {
            if st.largest_sent.is_none_or(|l| *r.end() > l)
                || st.skipped.iter().any(|pn| r.contains(pn))
            {
                return Err(AckError::UnsentPacket);
            }
        }
        self.touch(now);
        self.handshake_confirmed |= handshake_confirmed;
        let Some(largest) = ranges.iter().map(|r| *r.end()).max() else {
            return Ok(());
        };
        let st = &mut self.spaces[space.index()];
        st.largest_acked = Some(st.largest_acked.map_or(largest, |l| l.max(largest)));

        let mut acked: Vec<u64> = Vec::new();
        for r in &ranges {
            acked.extend(st.sent.range(r.clone()).map(|(&pn, _)| pn));
            let spurious: Vec<u64> = st.lost.range(r.clone()).map(|(&pn, _)| pn).collect();
            for pn in spurious {
                if let Some((size, _)) = st.lost.remove(&pn) {
                    self.stats.spurious_losses += 1;
                    self.stats.spurious_bytes += size;
                }
            }
        }
        if acked.is_empty() {
            return Ok(());
        }
        acked.sort_unstable();

        // RTT sample: the largest acknowledged packet is newly acknowledged and the frame
        // newly acknowledges an ack-eliciting packet (RFC 9002 §5.1).
        let any_eliciting = acked.iter().any(|pn| st.sent[pn].ack_eliciting);
        if acked.last() == Some(&largest) && any_eliciting {
            let sample = now - st.sent[&largest].time;
            let delay = match space {
                Space::Handshake => Duration::ZERO,
                Space::Data if self.handshake_confirmed => ack_delay.min(self.max_ack_delay),
                Space::Data => ack_delay,
            };
            self.rtt.update(delay, sample);
            self.first_rtt_sample.get_or_insert(now);
        }

        // Remove the acknowledged packets (in order of sending) and take the delivery sample
        // from the newest in-flight one.
        let mut eliciting: Vec<(Instant, u64)> = Vec::new();
        let mut newest: Option<(u64, Instant, Instant, Instant, bool)> = None;
        for pn in &acked {
            let Some(p) = self.spaces[space.index()].sent.remove(pn) else {
                continue;
            };
            if p.ack_eliciting {
                self.spaces[space.index()].ack_eliciting_in_flight -= 1;
                self.bytes_in_flight -= p.size;
                self.delivered += p.size;
                self.delivered_time = now;
                eliciting.push((p.time, p.size));
                newest = Some((
                    p.delivered,
                    p.delivered_time,
                    p.first_sent_time,
                    p.time,
                    p.app_limited,
                ));
            }
            out.push((p.info, Outcome::Acked));
        }
        if let Some((prior_delivered, prior_time, first_sent, sent, app_limited)) = newest {
            self.first_sent_time = sent;
            let interval = (sent - first_sent).max(now - prior_time);
            let in_interval = self.delivered - prior_delivered;
            let rate = if interval.is_zero() || (self.rtt.has_sample() && interval < self.rtt.min())
            {
                0
            } else {
                u64::try_from(u128::from(in_interval) * 1_000_000 / interval.as_micros())
                    .unwrap_or(u64::MAX)
            };
            if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
                self.app_limited_until = 0;
            }
            let sample = DeliverySample {
                delivered: self.delivered,
                prior_delivered,
                delivered_in_interval: in_interval,
                interval,
                delivery_rate: rate,
                is_app_limited: app_limited,
                rtt: now - sent,
                newly_acked: eliciting.iter().map(|&(_, size)| size).sum(),
                bytes_in_flight: self.bytes_in_flight,
            };
            let last = eliciting.len() - 1;
            for (i, &(time, size)) in eliciting.iter().enumerate() {
                let s = (i == last).then_some(&sample);
                self.cc
                    .on_ack(now, time, size, self.app_limited, &self.rtt, s);
            }
        }

        self.detect_lost(now, space, out);
        self.pto_count = 0;
        self.prune_lost(now);
        Ok(())
    }
}

#[cfg(test)]
mod loss_time_rounding {
    use alloc::vec::Vec;
    use core::time::Duration;

    use super::{Recovery, RecoveryConfig};
    use crate::dgram::Space;
    use crate::time::Instant;

    /// The loss time is armed in whole microseconds while the threshold (9/8 of the RTT) has
    /// a remainder: when the timer fires, the packet it was armed for is lost, so the timer
    /// moves on instead of staying at `now` (found by the `dgram_session` fuzz target).
    #[test]
    fn the_timer_never_fires_twice_at_the_same_instant() {
        let t0 = Instant::from_micros(1_000_000);
        let at = |us: u64| t0 + Duration::from_micros(us);
        let mut r: Recovery<u64> = Recovery::new(&RecoveryConfig::default(), t0);
        let mut out = Vec::new();
        r.on_packet_sent(t0, Space::Data, 0, 1200, true, false, 0);
        r.on_ack_received(
            at(60_001),
            Space::Data,
            [0..=0].into_iter(),
            Duration::ZERO,
            true,
            &mut out,
        )
        .unwrap();
        r.on_packet_sent(at(100_000), Space::Data, 1, 1200, true, false, 1);
        r.on_packet_sent(at(100_001), Space::Data, 2, 1200, true, false, 2);
        r.on_ack_received(
            at(160_000),
            Space::Data,
            [2..=2].into_iter(),
            Duration::ZERO,
            true,
            &mut out,
        )
        .unwrap();
        let t = r.timer().expect("packet 1 waits for its loss time");
        r.on_timeout(t, &mut out);
        assert!(
            r.timer().is_none_or(|next| next > t),
            "{t:?} then {:?}",
            r.timer()
        );
        assert_eq!(r.stats.packets_lost, 1);
    }
}
