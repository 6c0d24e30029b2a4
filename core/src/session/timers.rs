//! The session's timers: which one is armed, when it fires, and what firing does.

use super::{Phase, Session, Timer};
use crate::error::SessionError;
use crate::time::Instant;

impl Session {
    /// Let timers fire. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        if self.is_closed() {
            return;
        }
        let Some((timer, at)) = self.pending_timer() else {
            return;
        };
        if now < at {
            return;
        }
        match timer {
            Timer::KeepAlive => self.ping_pending = true,
            Timer::Handshake | Timer::Idle | Timer::Close => {
                self.fail(SessionError::TimedOut);
            }
        }
    }

    /// When to call `handle_timeout` next (absolute, never earlier than the last `now` seen).
    /// `None` once the session is closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending_timer().map(|(_, at)| at.max(self.last_now))
    }

    /// The earliest armed timer and its deadline (for diagnostics).
    pub fn pending_timer(&self) -> Option<(Timer, Instant)> {
        match self.phase {
            Phase::Closed => return None,
            Phase::Handshake(_) | Phase::AwaitStart => {
                return Some((
                    Timer::Handshake,
                    self.created + self.config.handshake_timeout,
                ));
            }
            Phase::Open => {}
        }
        let mut best: Option<(Timer, Instant)> = None;
        let mut consider = |t: Timer, at: Instant| {
            if best.is_none_or(|(_, b)| at < b) {
                best = Some((t, at));
            }
        };
        // While this side's own application holds input back, the peer's silence is ours.
        if !self.input_blocked() {
            consider(Timer::Idle, self.last_recv + self.config.idle_timeout);
        }
        if let Some(t) = self.final_sent_at {
            // The peer may still be finishing (commits, acks): count from its last record.
            consider(
                Timer::Close,
                t.max(self.last_recv) + self.config.close_timeout,
            );
        }
        // Keep-alives go on until our FINAL record is out (a side answering the peer's close may
        // wait long for its application's commits; the peer's close timer counts from our last
        // record).
        if !self.ping_pending && self.final_sent_at.is_none() {
            consider(
                Timer::KeepAlive,
                self.last_send + self.config.keepalive_interval,
            );
        }
        best
    }
}
