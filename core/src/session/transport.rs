//! What the datagram transport (`crate::dgram`) needs from a session beyond the stream API:
//! the handshake bytes apart from the records, the traffic secrets for its packet keys, and a
//! way to end the session when the transport fails under it.

use alloc::vec::Vec;

use zeroize::Zeroizing;

use super::Session;
use crate::error::SessionError;
use crate::record::stream::RecordSealer;

impl Session {
    /// Datagram transport: take the handshake bytes to send (they travel in CRYPTO frames,
    /// apart from the records, which `poll_transmit` then yields alone).
    pub(crate) fn take_handshake_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.hs_out)
    }

    /// Datagram transport: the traffic secrets (send, recv) once the handshake is done.
    pub(crate) fn take_packet_secrets(
        &mut self,
    ) -> Option<(Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>)> {
        self.packet_secrets.take()
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
