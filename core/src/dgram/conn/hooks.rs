//! Unstable test hooks (feature `testing`).

use super::{Connection, State};

impl Connection {
    // ---- test hooks -----------------------------------------------------------------------

    /// Unstable test hook (feature `testing`): every armed timer, by name.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn _internal_timers(&self) -> alloc::string::String {
        alloc::format!(
            "state {:?} session {:?} recovery {:?} idle {:?} pacing {:?} mtu {:?} acks {:?}/{:?} probes {} inflight {} cwnd {} has_pending {} peer_max {} written {} recv_window {} recv_max {} srtt {:?}",
            self.state,
            self.session.pending_timer(),
            self.recovery.timer(),
            self.last_activity + self.idle_timeout(),
            self.pacing_until,
            self.mtu.next_probe(),
            self.spaces[0].acks.deadline(),
            self.spaces[1].acks.deadline(),
            self.recovery.probes_pending(),
            self.recovery.bytes_in_flight(),
            self.recovery.cwnd(),
            self.stream_send.has_pending(self.peer_max_data),
            self.peer_max_data,
            self.stream_send.written(),
            self.stream_recv.window(),
            self.stream_recv.max_data(),
            self.recovery.rtt().smoothed(),
        )
    }

    /// Unstable test hook (feature `testing`): check the transport's invariants (bytes in
    /// flight against the window, the amplification limit, flow control, timers).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn _internal_check_invariants(&self) -> Result<(), alloc::string::String> {
        use alloc::string::ToString;
        self.recovery
            .check_invariants()
            .map_err(|e| e.to_string())?;
        if !self.client && !self.validated && self.amp_sent > 3 * self.amp_received {
            return Err(alloc::format!(
                "amplification: sent {} > 3 x received {}",
                self.amp_sent,
                self.amp_received
            ));
        }
        if self.stream_sent_max
            > self
                .peer_max_data
                .max(self.stream_sent_max.min(self.peer_max_data))
        {
            return Err("stream data beyond the peer's MAX_DATA".to_string());
        }
        if self.stream_recv.buffered() as u64 > self.cfg.max_window {
            return Err("receive buffer beyond the window".to_string());
        }
        if self.state == State::Open
            && self.recovery.bytes_in_flight() > 0
            && self.poll_timeout().is_none()
        {
            return Err("packets in flight but no timer".to_string());
        }
        if let Some(t) = self.poll_timeout()
            && t < self.last_now
        {
            return Err("timer in the past".to_string());
        }
        Ok(())
    }
}
