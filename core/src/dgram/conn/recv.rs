//! Input: one datagram parsed, opened, deduplicated and processed.

use core::net::SocketAddr;
use core::time::Duration;

use super::{Connection, State, code, frames, phase_keys};
use crate::dgram::Space;
use crate::dgram::ack_tracker::Received;
use crate::dgram::keys;
use crate::dgram::packet::{self, Header};
use crate::time::Instant;

impl Connection {
    // ---- input ------------------------------------------------------------------------

    /// A datagram arrived from `from`. It is opened in place (hence `&mut`). Garbage,
    /// forgeries, replays and duplicates are dropped and counted, never fatal.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        self.observe(now);
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += data.len() as u64;
        match self.state {
            State::Drained | State::Draining { .. } => return,
            State::Closing { .. } => {
                if self.close_answers < 8 {
                    self.close_owed = true;
                }
                return;
            }
            State::Open => {}
        }
        if !self.open_and_process(now, from, data) {
            self.stats.dropped += 1;
        }
        self.after_input(now);
    }

    /// Parse, open and process one datagram; false if it was dropped.
    pub(super) fn open_and_process(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
    ) -> bool {
        let Ok(header) = packet::parse_header(data) else {
            return false;
        };
        let (space, range) = match header {
            Header::Long { dcid, scid, pn } => {
                let ours = dcid == self.local_cid || (!self.client && dcid == self.initial_dcid);
                let Some(hs) = &self.hs else { return false };
                if !ours {
                    return false;
                }
                let largest = self.spaces[0].acks.largest().map(|(pn, _)| pn);
                let pn = packet::expand_pn(largest, pn);
                // Before validation the bytes a client sends buy the server's answers.
                if !self.validated {
                    self.amp_received += data.len() as u64;
                }
                let Ok(range) = keys::open_packet(&hs.keys.recv, pn, data, packet::LONG_HEADER_LEN)
                else {
                    self.stats.auth_failures += 1;
                    return false;
                };
                if self.client && !self.confirmed && self.spaces[0].acks.largest().is_none() {
                    // The server's first packet names the id it wants.
                    self.remote_cid = scid;
                }
                if !self.client && dcid == self.local_cid {
                    // Only a client that received our reply knows this id.
                    self.validated = true;
                }
                ((Space::Handshake, pn), range)
            }
            Header::Short {
                key_phase,
                dcid,
                pn,
            } => {
                if dcid != self.local_cid {
                    return false;
                }
                let grace = 3 * self.pto();
                let largest = self.spaces[1].acks.largest().map(|(pn, _)| pn);
                let pn = packet::expand_pn(largest, pn);
                let Some(keys) = &mut self.data_keys else {
                    return false;
                };
                match keys.open(now, grace, data, packet::SHORT_HEADER_LEN, key_phase, pn) {
                    phase_keys::Opened::Ok(range) => ((Space::Data, pn), range),
                    phase_keys::Opened::Failed => {
                        self.stats.auth_failures += 1;
                        return false;
                    }
                }
            }
        };
        let (space, pn) = space;
        let payload = &data[range];
        let Ok(ack_eliciting) = frames::scan(payload) else {
            self.close_with(now, code::PROTOCOL_VIOLATION, 0);
            return true;
        };
        if self.spaces[space.index()]
            .acks
            .on_packet(pn, ack_eliciting, now)
            == Received::Duplicate
        {
            self.stats.duplicates += 1;
            return false;
        }
        self.peer = from;
        self.last_activity = now;
        self.sent_eliciting_since_recv = false;
        if space == Space::Data && !self.client {
            self.validated = true;
            if !self.confirmed {
                // The client has our message 2: the handshake is over for both.
                self.confirm();
                self.handshake_done_owed = true;
            }
        }
        if space == Space::Data {
            // A delayed ACK must not outlast the path's round trip: with a small window the
            // last packets of a flight would otherwise wait for the timer (25 ms) while the
            // sender waits for them. A quarter of the RTT, within [1 ms, max_ack_delay].
            let quarter = self.recovery.rtt().smoothed() / 4;
            let delay = quarter.clamp(Duration::from_millis(1), self.cfg.max_ack_delay);
            self.spaces[1].acks.set_max_delay(delay);
        }
        self.process_frames(now, space, payload);
        true
    }

    /// After any input: move received bytes into the session, the session's output into
    /// the streams, and see whether the connection ends.
    pub(super) fn after_input(&mut self, now: Instant) {
        self.feed_session(now);
        self.pull_session(now);
        self.update_state(now);
    }

    /// The handshake is confirmed: drop the handshake keys and space.
    pub(super) fn confirm(&mut self) {
        if self.confirmed {
            return;
        }
        self.confirmed = true;
        self.hs = None;
        // Nothing more is acknowledged in the handshake space.
        self.spaces[0].acks.on_ack_sent(self.last_now);
        self.recovery.discard_space(Space::Handshake);
        self.mtu.start(self.last_now);
    }
}
