//! The loss-detection timer (loss time, PTO and probes), pacing, space discarding, accessors
//! and invariant checks of [`Recovery`].

use alloc::vec::Vec;
use core::time::Duration;

use super::{MAX_PTO_BACKOFF, Outcome, Recovery, RecoveryStats, RttEstimator, Space};
use crate::time::Instant;

impl<T> Recovery<T> {
    /// The earliest `loss_time` and its space.
    fn earliest_loss_time(&self) -> Option<(Instant, Space)> {
        Space::ALL
            .iter()
            .filter_map(|&s| self.spaces[s.index()].loss_time.map(|t| (t, s)))
            .min_by_key(|&(t, _)| t)
    }

    /// The PTO deadline (with backoff) and its space: the earliest over the spaces with
    /// ack-eliciting packets in flight.
    fn pto_deadline(&self) -> Option<(Instant, Space)> {
        let backoff = 1u32 << self.pto_count.min(MAX_PTO_BACKOFF);
        Space::ALL
            .iter()
            .filter(|&&s| self.spaces[s.index()].ack_eliciting_in_flight > 0)
            .filter_map(|&s| {
                let last = self.spaces[s.index()].last_ack_eliciting?;
                Some((last + self.pto_duration(s) * backoff, s))
            })
            .min_by_key(|&(t, _)| t)
    }

    /// Handles the loss-detection timer: time-threshold losses go to `out` if a loss time
    /// expired, else an expired PTO backs off and grants probe credits (2, or 1 in the
    /// handshake space). Calls before the timer are no-ops.
    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Vec<(T, Outcome)>) {
        self.touch(now);
        if let Some((t, space)) = self.earliest_loss_time() {
            if t <= now {
                self.detect_lost(now, space, out);
                self.prune_lost(now);
            }
            return;
        }
        let Some((deadline, space)) = self.pto_deadline() else {
            return;
        };
        if deadline > now {
            return;
        }
        self.pto_count = (self.pto_count + 1).min(MAX_PTO_BACKOFF);
        self.stats.pto_count_total += 1;
        self.probes = match space {
            Space::Handshake => 1,
            Space::Data => 2,
        };
    }

    /// When [`on_timeout`](Self::on_timeout) must be called: the earliest loss time, else the
    /// PTO deadline; `None` when nothing ack-eliciting is in flight. Never earlier than the
    /// latest `now` passed in (an overdue deadline reads as "now").
    pub(crate) fn timer(&self) -> Option<Instant> {
        let t = match self.earliest_loss_time() {
            Some((t, _)) => t,
            None => self.pto_deadline()?.0,
        };
        Some(t.max(self.last_now))
    }

    /// The PTO of `space` without backoff: `srtt + max(4 × rttvar, 1 ms)`, plus the peer's
    /// `max_ack_delay` in the data space once the handshake is confirmed. Idle and close
    /// timers use 3 × this.
    pub(crate) fn pto_duration(&self, space: Space) -> Duration {
        let base = self.rtt.pto_base();
        match space {
            Space::Data if self.handshake_confirmed => base + self.max_ack_delay,
            _ => base,
        }
    }

    /// Probe packets owed after a PTO: the connection sends that many ack-eliciting packets
    /// even past the window (new data, else the oldest unacknowledged data, else a PING).
    pub(crate) fn probes_pending(&self) -> usize {
        self.probes
    }

    /// Whether an ack-eliciting packet of `bytes` may leave: a probe is owed, or it fits the
    /// congestion window.
    pub(crate) fn can_send(&self, bytes: usize) -> bool {
        self.probes > 0 || self.bytes_in_flight + bytes as u64 <= self.cc.window()
    }

    /// `None`: a packet of `bytes` may leave now (its tokens are taken by `on_packet_sent`);
    /// `Some(t)`: wait until `t`.
    pub(crate) fn pacing_delay(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        self.touch(now);
        let rate = self.pacing_rate();
        self.pacer.delay(now, rate, self.mtu, bytes)
    }

    /// The keys of `space` were dropped: its packets are forgotten (no congestion signal) and
    /// leave the bytes in flight; the PTO backoff restarts.
    pub(crate) fn discard_space(&mut self, space: Space) {
        let st = &mut self.spaces[space.index()];
        let in_flight: u64 = st
            .sent
            .values()
            .filter(|p| p.ack_eliciting)
            .map(|p| p.size)
            .sum();
        st.sent.clear();
        st.lost.clear();
        st.loss_time = None;
        st.last_ack_eliciting = None;
        st.ack_eliciting_in_flight = 0;
        self.bytes_in_flight -= in_flight;
        self.pto_count = 0;
    }

    /// The maximum datagram size changed (a probe succeeded).
    pub(crate) fn on_mtu_update(&mut self, mtu: u16) {
        self.mtu = mtu;
        self.cc.on_mtu_update(mtu);
    }

    /// The connection had nothing to send while the window had room (`true`), or filled it
    /// again (`false`). Window-based controllers do not grow while application-limited;
    /// delivery-rate samples of packets sent meanwhile are marked, unless the sender had
    /// data and only the receiver's flow-control credit held it (`receiver_limited`; as
    /// Linux TCP does for the receive window): marking those would hide every round of a
    /// long lossy path from BBR's full-pipe check, which then never left STARTUP.
    pub(crate) fn set_app_limited(&mut self, app_limited: bool, receiver_limited: bool) {
        self.app_limited = app_limited;
        if app_limited {
            self.pacer.on_app_limited();
        }
        if app_limited && !receiver_limited {
            self.app_limited_until = (self.delivered + self.bytes_in_flight).max(1);
        }
    }

    /// The congestion window, in bytes.
    pub(crate) fn cwnd(&self) -> u64 {
        self.cc.window()
    }

    /// Bytes of ack-eliciting packets neither acknowledged nor declared lost.
    pub(crate) fn bytes_in_flight(&self) -> u64 {
        self.bytes_in_flight
    }

    /// The RTT estimator.
    pub(crate) fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// The counters.
    pub(crate) fn stats(&self) -> &RecoveryStats {
        &self.stats
    }

    /// Ack-eliciting packets of `space` in flight.
    pub(crate) fn in_flight_packets(&self, space: Space) -> usize {
        self.spaces[space.index()].ack_eliciting_in_flight
    }

    /// The oldest ack-eliciting packet of `space` in flight (what a PTO probe resends when
    /// there is no new data).
    pub(crate) fn oldest_unacked(&self, space: Space) -> Option<&T> {
        self.spaces[space.index()]
            .sent
            .values()
            .find(|p| p.ack_eliciting)
            .map(|p| &p.info)
    }

    /// Checks the bookkeeping:
    /// - `bytes_in_flight` is the sum of the sizes of the ack-eliciting packets held, and the
    ///   per-space counts match;
    /// - window rule: every ack-eliciting packet sent without a probe credit fitted the window
    ///   when it left (`bytes_in_flight + size <= cwnd`), except an MTU probe, which may pass
    ///   it when `bytes_in_flight <= cwnd` before it. (The window may shrink below
    ///   `bytes_in_flight` afterwards, on a congestion event.) Probe credits are at most 2;
    /// - the timer is never before the latest `now` seen, and is set whenever an
    ///   ack-eliciting packet is in flight;
    /// - a loss time is armed only with packets below the largest acknowledged one.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn check_invariants(&self) -> Result<(), &'static str> {
        // Recounting the packets in flight costs O(packets): a simulated 12.5 MB window holds
        // ten thousand of them and the check runs after every step. The counters are kept
        // incrementally, so a drift persists: recounting once every eighth of the packets
        // held have been sent since the last recount still catches it, at an amortised cost
        // of 8 packets visited per packet sent.
        let held = self.spaces.iter().map(|st| st.sent.len()).sum::<usize>() as u64;
        let recount = held <= 64 || self.stats.packets_sent >= self.recounted_at.get() + held / 8;
        if recount {
            self.recounted_at.set(self.stats.packets_sent);
        }
        let mut sum = 0;
        for st in &self.spaces {
            if recount {
                let eliciting = st.sent.values().filter(|p| p.ack_eliciting);
                if eliciting.clone().count() != st.ack_eliciting_in_flight {
                    return Err("ack-eliciting count differs from the packets held");
                }
                sum += eliciting.map(|p| p.size).sum::<u64>();
            }
            if st.loss_time.is_some()
                && st
                    .largest_acked
                    .is_none_or(|l| st.sent.range(..l).next().is_none())
            {
                return Err("loss time armed without a packet below the largest acknowledged");
            }
        }
        if recount && sum != self.bytes_in_flight {
            return Err("bytes_in_flight differs from the sum over in-flight packets");
        }
        if self.over_window_sends != 0 {
            return Err("an ack-eliciting packet left beyond the window without a probe credit");
        }
        if self.probes > 2 {
            return Err("more than 2 probe credits");
        }
        match self.timer() {
            Some(t) if t < self.last_now => return Err("timer before the latest now"),
            None if self.bytes_in_flight > 0 => return Err("no timer with packets in flight"),
            _ => {}
        }
        Ok(())
    }
}
