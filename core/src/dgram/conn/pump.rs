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
    /// the session stream (bounded: see [`WriteAhead`]).
    pub(super) fn pull_session(&mut self, now: Instant) {
        let hs_bytes = self.session.take_handshake_output();
        if !hs_bytes.is_empty()
            && let Some(hs) = &mut self.hs
        {
            hs.send.write(&hs_bytes);
        }
        let written = self.stream_send.written();
        let unacked = self.stream_send.unacked() as u64;
        let bound = WriteAhead {
            windows: self.recovery.cwnd().max(self.mtu.current().into()) * 2,
            credit: self.peer_max_data.saturating_sub(written - unacked),
        };
        while self.session.has_transmit()
            && self.stream_send.room() >= crate::MAX_RECORD
            && bound.allows(
                self.stream_send.unacked() as u64,
                self.stream_send.written() - self.stream_sent_max.min(self.stream_send.written()),
            )
        {
            // The session seals the record straight into the stream's buffer.
            let session = &mut self.session;
            let n = self.stream_send.write_with(crate::MAX_RECORD, |out| {
                session.poll_transmit(now, out).unwrap_or(0)
            });
            if n == 0 {
                break;
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

    /// Nothing to send: give back the memory a quiet connection does not need (empty stream
    /// buffers).
    pub(super) fn release_idle_buffers(&mut self) {
        self.stream_send.release_if_empty();
        self.stream_recv.release_if_empty();
    }
}

/// How far the session may write into the stream ahead of the network. Bytes never sent
/// stay within two congestion windows (a request or a close written later never waits behind
/// more than that). Bytes held beyond the acknowledged prefix may reach the peer's
/// flow-control limit if that is further than two windows: on a lossy path a hole pins the
/// prefix for a round trip or more (several when a retransmission is lost too), and a bound
/// of two windows on them starves the sender although the peer grants credit (an
/// application-limited flight, which also kept BBR from ever seeing the pipe full). The
/// peer's limit is bounded by its receive window, so memory stays bounded (and by
/// `send_buffer`).
struct WriteAhead {
    /// Two congestion windows.
    windows: u64,
    /// The peer's limit beyond the acknowledged prefix.
    credit: u64,
}

impl WriteAhead {
    /// Whether another record may be written with `unacked` bytes held, `unsent` of them
    /// never sent.
    fn allows(&self, unacked: u64, unsent: u64) -> bool {
        let record = crate::MAX_RECORD as u64;
        unsent < self.windows + record && unacked < self.windows.max(self.credit) + record
    }
}

#[cfg(test)]
mod tests {
    use super::WriteAhead;

    #[test]
    fn the_session_writes_up_to_the_peers_credit_but_queues_at_most_two_windows_unsent() {
        let record = crate::MAX_RECORD as u64;
        // A hole pins the acknowledged prefix while the peer grants 64 MiB beyond it (its
        // window grew to cover the repairs): the session may fill that credit ...
        let bbr = WriteAhead {
            windows: 50_000_000,
            credit: 64 << 20,
        };
        assert!(bbr.allows(60_000_000, 10_000_000));
        assert!(!bbr.allows((64 << 20) + record, 10_000_000));
        // ... but never queues more than two windows of bytes not sent yet.
        assert!(!bbr.allows(60_000_000, 50_000_000 + record));
        // A small window (CUBIC on a lossy path) with a large credit: two windows unsent.
        let cubic = WriteAhead {
            windows: 2 * 14_520,
            credit: 16 << 20,
        };
        assert!(cubic.allows(1_000_000, 2 * 14_520));
        assert!(!cubic.allows(1_000_000, 2 * 14_520 + record));
        // No credit beyond the windows: two windows held.
        let none = WriteAhead {
            windows: 2_000_000,
            credit: 0,
        };
        assert!(none.allows(2_000_000, 0));
        assert!(!none.allows(2_000_000 + record, 0));
    }
}
