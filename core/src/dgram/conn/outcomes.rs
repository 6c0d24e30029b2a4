//! What an acknowledged or lost packet means for the streams, the keys and the MTU.

use alloc::vec::Vec;

use super::{Connection, Sent};
use crate::dgram::recovery::Outcome;
use crate::time::Instant;

impl Connection {
    /// Apply what recovery decided about sent packets.
    pub(super) fn apply_outcomes(&mut self, now: Instant, out: &mut Vec<(Sent, Outcome)>) {
        for (sent, outcome) in out.drain(..) {
            match outcome {
                Outcome::Acked => self.on_acked(now, sent),
                Outcome::Lost => self.on_lost(now, sent),
            }
        }
    }

    pub(super) fn on_acked(&mut self, now: Instant, sent: Sent) {
        if let Some(largest) = sent.ack {
            let space = if sent.handshake { 0 } else { 1 };
            self.spaces[space].acks.on_ack_acked(largest);
        }
        if let (Some((off, len)), Some(hs)) = (sent.crypto, &mut self.hs) {
            hs.send.on_acked(off, len as usize, false);
        }
        if let Some((off, len, fin)) = sent.stream {
            self.stream_send.on_acked(off, len as usize, fin);
        }
        if let Some(keys) = &mut self.data_keys {
            keys.on_acked(sent.phase);
        }
        if let Some(size) = sent.mtu_probe {
            if self.mtu.on_probe_acked(now, size) {
                self.recovery.on_mtu_update(self.mtu.current());
            }
        } else {
            self.mtu.on_packet_acked(now, sent.size);
        }
        if self.client && sent.stream.is_some() {
            // The server opened a data packet of ours: it has everything of the handshake.
            self.confirm();
        }
    }

    pub(super) fn on_lost(&mut self, now: Instant, sent: Sent) {
        if let (Some((off, len)), Some(hs)) = (sent.crypto, &mut self.hs) {
            hs.send.on_lost(off, len as usize, false);
        }
        if let Some((off, len, fin)) = sent.stream {
            self.stream_send.on_lost(off, len as usize, fin);
        }
        if sent.max_data {
            self.max_data_owed = true;
        }
        if sent.handshake_done {
            self.handshake_done_owed = true;
        }
        if let Some(size) = sent.mtu_probe {
            self.mtu.on_probe_lost(now, size);
        } else if self.mtu.on_packet_lost(now, sent.size, 3 * self.pto()) {
            // A black hole: back to the size every path carries.
            self.recovery.on_mtu_update(self.mtu.current());
        }
    }
}
