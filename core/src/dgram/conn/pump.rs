//! Between the session and the packet layer: received bytes in, records out, and the
//! connection's end when the session's comes.

use super::params::{PARAMS_LEN, Params};
use super::phase_keys::DataKeys;
use super::{Connection, State, close_code_from_byte, code, session_close_code};
use crate::error::{HandshakeError, SessionError};
use crate::time::Instant;
use crate::wire::CloseCode;

impl Connection {
    /// Hand contiguous received bytes to the session (CRYPTO first, then the stream).
    pub(super) fn feed_session(&mut self, now: Instant) {
        if let Some(hs) = &mut self.hs {
            if !hs.params_read && hs.recv.readable().len() >= PARAMS_LEN {
                let mut b = [0u8; PARAMS_LEN];
                b.copy_from_slice(&hs.recv.readable()[..PARAMS_LEN]);
                hs.recv.consume(PARAMS_LEN);
                hs.params_read = true;
                match Params::decode(&b) {
                    Ok(p) => {
                        self.peer_params = Some(p);
                        self.peer_max_data = p.initial_max_data;
                    }
                    Err(_) => {
                        self.close_with(now, code::PROTOCOL_VIOLATION, 0);
                        return;
                    }
                }
            }
            while hs.params_read && !self.session.is_closed() {
                let buf = hs.recv.readable();
                if buf.is_empty() {
                    break;
                }
                match self.session.handle_input(now, buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => hs.recv.consume(n),
                }
            }
            if let Some((send, recv)) = self.session.take_packet_secrets() {
                let interval = self.cfg.key_update_interval();
                self.data_keys = Some(DataKeys::new(&send, &recv, interval));
            }
        }
        while self.session.wants_input() {
            let buf = self.stream_recv.readable();
            if buf.is_empty() {
                break;
            }
            match self.session.handle_input(now, buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.stream_recv.consume(n),
            }
        }
        if let Some(limit) = self
            .stream_recv
            .poll_max_data(now, self.recovery.rtt().smoothed())
        {
            let _ = limit;
            self.max_data_owed = true;
        }
    }

    /// Move the session's output into the streams: handshake bytes into CRYPTO, records into
    /// the session stream (bounded: see [`write_ahead`]).
    pub(super) fn pull_session(&mut self, now: Instant) {
        let hs_bytes = self.session.take_handshake_output();
        if !hs_bytes.is_empty()
            && let Some(hs) = &mut self.hs
        {
            hs.send.write(&hs_bytes);
        }
        let base = self.stream_send.written() - self.stream_send.unacked() as u64;
        let ahead = write_ahead(
            self.recovery.cwnd(),
            self.mtu.current(),
            base,
            self.peer_max_data,
        );
        if self.scratch.is_empty() && self.session.has_transmit() {
            self.scratch = alloc::vec![0; crate::MAX_RECORD];
        }
        while self.session.has_transmit()
            && self.stream_send.room() >= crate::MAX_RECORD
            && self.stream_send.unacked() < ahead
        {
            match self.session.poll_transmit(now, &mut self.scratch) {
                Ok(n) if n > 0 => {
                    let w = self.stream_send.write(&self.scratch[..n]);
                    debug_assert_eq!(w, n, "room was checked");
                }
                _ => break,
            }
        }
        if self.session.final_written() {
            self.stream_send.finish();
        }
    }

    /// End the connection when the session is over (or failed).
    pub(super) fn update_state(&mut self, now: Instant) {
        if self.state != State::Open || !self.session.is_closed() {
            return;
        }
        match self.session.error() {
            Some(SessionError::Handshake(HandshakeError::UnsupportedMode(_)))
                if self.data_keys.is_none() && !self.client =>
            {
                // The client asked for another mode: say which one this server requires.
                let mode = self.session.mode_byte();
                self.close_with(now, code::MODE, mode);
            }
            Some(e) => {
                if self.data_keys.is_none() && !self.client {
                    // A failed handshake is never explained.
                    self.state = State::Drained;
                } else {
                    let reason = session_close_code(e);
                    self.close_with(now, code::SESSION, reason);
                }
            }
            None => {
                if self.stream_send.is_acked_all() {
                    self.close_with(now, code::NO_ERROR, 0);
                }
            }
        }
    }

    /// Send CLOSE and enter the closing period (3 PTOs).
    pub(super) fn close_with(&mut self, now: Instant, code: u64, reason: u8) {
        if self.state != State::Open {
            return;
        }
        if code != code::NO_ERROR && !self.session.is_closed() {
            self.session.transport_failed(match code {
                code::FLOW_CONTROL | code::PROTOCOL_VIOLATION => {
                    SessionError::Protocol(crate::error::Violation::BadRecordContents)
                }
                _ => SessionError::TimedOut,
            });
        }
        self.close_reason = [reason];
        self.close_code = code;
        self.close_owed = true;
        self.state = State::Closing {
            until: now + 3 * self.pto(),
        };
    }

    /// The peer's CLOSE: end the session if it still runs, then drain.
    pub(super) fn on_peer_close(&mut self, now: Instant, code: u64, reason: &[u8]) {
        if !self.session.is_closed() {
            let e = match code {
                code::NO_ERROR => SessionError::Truncated,
                code::BUSY => SessionError::Handshake(HandshakeError::Busy),
                code::MODE => match reason.first() {
                    Some(&m) => SessionError::Handshake(HandshakeError::ModeRequired(m)),
                    None => SessionError::ClosedByPeer(CloseCode::ProtocolError),
                },
                code::SESSION => SessionError::ClosedByPeer(
                    reason
                        .first()
                        .map_or(CloseCode::ProtocolError, |b| close_code_from_byte(*b)),
                ),
                _ => SessionError::ClosedByPeer(CloseCode::ProtocolError),
            };
            self.session.transport_failed(e);
        }
        self.state = State::Draining {
            until: now + 3 * self.pto(),
        };
    }

    /// Nothing to send: give back the memory a quiet connection does not need (the record
    /// scratch buffer, empty stream buffers).
    pub(super) fn release_idle_buffers(&mut self) {
        if !self.session.has_transmit() {
            self.scratch = alloc::vec::Vec::new();
        }
        self.stream_send.release_if_empty();
        self.stream_recv.release_if_empty();
    }
}

/// How many session bytes the stream may hold beyond its acknowledged prefix `base`: two
/// congestion windows, or up to the peer's flow-control limit if that is further, plus a
/// record. On a lossy path a hole pins the prefix for a round trip or more (several when a
/// retransmission is lost too); a bound of two windows alone then starves the sender although
/// the peer grants credit (an application-limited flight, which also keeps BBR from ever
/// seeing the pipe full). The peer's limit is bounded by its receive window, so memory stays
/// bounded (and by `send_buffer`).
fn write_ahead(cwnd: u64, mtu: u16, base: u64, peer_max_data: u64) -> usize {
    let windows = cwnd.max(u64::from(mtu)).saturating_mul(2);
    let credit = peer_max_data.saturating_sub(base);
    usize::try_from(windows.max(credit))
        .unwrap_or(usize::MAX)
        .saturating_add(crate::MAX_RECORD)
}

#[cfg(test)]
mod tests {
    use super::write_ahead;

    #[test]
    fn the_session_writes_up_to_the_peers_credit_beyond_two_windows() {
        let record = crate::MAX_RECORD;
        // No credit beyond the windows: two windows.
        assert_eq!(write_ahead(1_000_000, 1452, 0, 0), 2_000_000 + record);
        assert_eq!(write_ahead(0, 1452, 0, 0), 2 * 1452 + record);
        // A hole pins the acknowledged prefix at 10 MB while the peer grants 64 MiB beyond it
        // (its window grew to cover the repairs): the session may fill that credit.
        let base = 10_000_000;
        assert_eq!(
            write_ahead(25_000_000, 1452, base, base + (64 << 20)),
            (64 << 20) + record
        );
        // Credit below the prefix (a stale limit) counts as none.
        assert_eq!(write_ahead(1000, 1452, base, 5), 2 * 1452 + record);
    }
}
