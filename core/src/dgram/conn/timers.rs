//! Timers: the idle timeout, loss detection and PTO, delayed ACKs, pacing, MTU probes, the
//! closing and draining periods, and the session's own.

use super::{Connection, Sent, State};
use crate::dgram::Space;
use crate::error::SessionError;
use crate::time::Instant;

impl Connection {
    // ---- timers -----------------------------------------------------------------------

    /// Let timers fire. Early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        match self.state {
            State::Drained => return,
            State::Closing { until } | State::Draining { until } => {
                if now >= until {
                    self.state = State::Drained;
                }
                return;
            }
            State::Open => {}
        }
        if now >= self.last_activity + self.idle_timeout() {
            if !self.session.is_closed() {
                self.session.transport_failed(SessionError::TimedOut);
            }
            self.state = State::Drained;
            return;
        }
        self.session.handle_timeout(now);
        if self.recovery.timer().is_some_and(|t| now >= t) {
            let mut out = core::mem::take(&mut self.outcomes);
            self.recovery.on_timeout(now, &mut out);
            self.apply_outcomes(now, &mut out);
            self.outcomes = out;
            if self.recovery.probes_pending() > 0 {
                self.queue_probe_data();
            }
        }
        self.pull_session(now);
        self.update_state(now);
    }

    /// When to call `handle_timeout` next (absolute, never before the last `now` seen);
    /// `None` once drained.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let at = match self.state {
            State::Drained => return None,
            State::Closing { until } | State::Draining { until } => Some(until),
            State::Open => {
                let mut t = [
                    self.session.poll_timeout(),
                    self.recovery.timer(),
                    Some(self.last_activity + self.idle_timeout()),
                    self.pacing_until,
                    // An overdue MTU probe that the congestion window or the pacer holds back
                    // waits for them (an ACK, the loss timer, `pacing_until`): as a timer it
                    // would fire at `now` again and again without sending.
                    self.mtu
                        .next_probe()
                        .filter(|&t| t > self.last_now || self.mtu_probe_may_leave()),
                ]
                .into_iter()
                .flatten()
                .min();
                let spaces = if self.hs.is_some() {
                    &self.spaces[..]
                } else {
                    &self.spaces[1..]
                };
                for s in spaces {
                    if let Some(d) = s.acks.deadline() {
                        t = Some(t.map_or(d, |t| t.min(d)));
                    }
                }
                t
            }
        };
        at.map(|t| t.max(self.last_now))
    }

    /// Whether a due MTU probe could leave now (window and pacer permitting).
    fn mtu_probe_may_leave(&self) -> bool {
        let size = self.mtu.probe_due(self.last_now).map_or(0, usize::from);
        self.recovery.can_send(size) && self.pacing_until.is_none_or(|t| t <= self.last_now)
    }

    /// A PTO fired: probes carry new data if there is any, else the oldest unacknowledged
    /// data again (RFC 9002 §6.2.4), so a lost tail is repaired by the probe itself.
    pub(super) fn queue_probe_data(&mut self) {
        if let Some(hs) = &mut self.hs
            && self.recovery.in_flight_packets(Space::Handshake) > 0
        {
            hs.send.on_lost(0, hs.send.written() as usize, false);
            return;
        }
        if self.stream_send.has_pending(self.peer_max_data) {
            return;
        }
        if let Some(Sent {
            stream: Some((off, len, fin)),
            ..
        }) = self.recovery.oldest_unacked(Space::Data).copied()
        {
            self.stream_send.on_lost(off, len as usize, fin);
        }
    }
}
