//! What the datagram transport (`crate::dgram`) needs from a session beyond the stream API:
//! the handshake bytes apart from the records, the traffic secrets for its packet keys, and a
//! way to end the session when the transport fails under it.

use alloc::vec::Vec;

use super::{PacketSecrets, Session};
use crate::error::SessionError;
use crate::record::stream::RecordSealer;

impl Session {
    /// Datagram transport: take the handshake bytes to send (they travel in CRYPTO frames,
    /// apart from the records, which `poll_transmit` then yields alone).
    pub(crate) fn take_handshake_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.hs_out)
    }

    /// Datagram transport: the traffic secrets (send, recv) once the handshake is done.
    pub(crate) fn take_packet_secrets(&mut self) -> Option<PacketSecrets> {
        self.packet_secrets.take()
    }

    /// The preamble mode byte this session runs (a server: the one it requires).
    pub(crate) fn mode_byte(&self) -> u8 {
        self.config.mode.byte()
    }

    /// Whether this side's FINAL record has been written (nothing follows on the stream).
    pub(crate) fn final_written(&self) -> bool {
        self.sealer.as_ref().is_some_and(RecordSealer::is_finished)
    }

    /// The transport failed under the session (idle timeout, the peer's abrupt close): end
    /// it with `e` (sticky, one `Closed` event).
    pub(crate) fn transport_failed(&mut self, e: SessionError) {
        self.fail(e);
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::super::Transport;
    use crate::error::{HandshakeError, SessionError};
    use crate::{Config, Instant, MAX_RECORD, Psk, Session};

    /// The transport byte is checked and bound into the prologue: neither handshake can be
    /// completed over the other transport.
    #[test]
    fn a_handshake_never_crosses_transports() {
        let psk = Psk::from_key_bytes(&[1; 32]);
        let cfg = Config::default();
        for (client, server, byte) in [
            (Transport::Stream, Transport::Datagram, 0),
            (Transport::Datagram, Transport::Stream, 1),
        ] {
            let mut c = Session::client_over(client, &cfg, &psk, [1; 32], Instant::ZERO);
            let mut s = Session::server_over(server, &cfg, &psk, [2; 32], Instant::ZERO);
            let mut out = vec![0; MAX_RECORD];
            let n = match client {
                Transport::Stream => c.poll_transmit(Instant::ZERO, &mut out).unwrap(),
                Transport::Datagram => {
                    let hs = c.take_handshake_output();
                    out[..hs.len()].copy_from_slice(&hs);
                    hs.len()
                }
            };
            assert_eq!(
                s.handle_input(Instant::ZERO, &mut out[..n]),
                Err(SessionError::Handshake(HandshakeError::WrongTransport(
                    byte
                )))
            );
            // Rewriting the byte gets past the check but not the prologue: the message fails.
            out[6] = 1 - byte;
            let mut s = Session::server_over(server, &cfg, &psk, [2; 32], Instant::ZERO);
            assert_eq!(
                s.handle_input(Instant::ZERO, &mut out[..n]),
                Err(SessionError::Authentication)
            );
        }
    }
}
