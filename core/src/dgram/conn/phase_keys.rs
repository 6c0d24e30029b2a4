//! The packet keys of a connection: the handshake keys (from the PSK and the client's first
//! destination id) and the data keys (from the session's traffic secrets) with key updates,
//! the K bit of the short header (RFC 9001 §6, with ferry's labels).

use core::ops::Range;

use zeroize::Zeroizing;

use crate::dgram::keys::{self, PacketKey};
use crate::dgram::packet::Cid;
use crate::time::Instant;

/// Sealing and opening keys of the handshake space.
pub(crate) struct HandshakeKeys {
    pub(crate) send: PacketKey,
    pub(crate) recv: PacketKey,
}

impl HandshakeKeys {
    pub(crate) fn new(psk: &[u8; 32], client_dcid: &Cid, client: bool) -> Self {
        let (c2s, s2c) = keys::handshake_secrets(psk, client_dcid);
        let (send, recv) = if client { (c2s, s2c) } else { (s2c, c2s) };
        HandshakeKeys {
            send: PacketKey::from_secret(&send),
            recv: PacketKey::from_secret(&recv),
        }
    }
}

/// The data keys of one connection, both directions, across key phases.
pub(crate) struct DataKeys {
    send: PacketKey,
    send_secret: Zeroizing<[u8; 32]>,
    send_phase: bool,
    /// Packets sealed in the current send phase.
    send_count: u64,
    /// An acknowledgement for a packet of the current send phase arrived (a next update may
    /// start only then).
    send_confirmed: bool,
    recv: PacketKey,
    recv_secret: Zeroizing<[u8; 32]>,
    recv_phase: bool,
    /// First packet number opened with the current receive keys.
    recv_phase_start: u64,
    /// The previous receive keys, for packets reordered across an update, until a deadline.
    prev_recv: Option<(PacketKey, Instant)>,
    interval: u64,
    updates: u64,
}

/// What opening a short-header packet found.
pub(crate) enum Opened {
    /// The plaintext's place in the datagram.
    Ok(Range<usize>),
    /// The tag did not verify under any key that could apply.
    Failed,
}

impl DataKeys {
    pub(crate) fn new(send: &[u8; 32], recv: &[u8; 32], interval: u64) -> Self {
        DataKeys {
            send: PacketKey::from_secret(send),
            send_secret: Zeroizing::new(*send),
            send_phase: false,
            send_count: 0,
            send_confirmed: false,
            recv: PacketKey::from_secret(recv),
            recv_secret: Zeroizing::new(*recv),
            recv_phase: false,
            recv_phase_start: 0,
            prev_recv: None,
            interval,
            updates: 0,
        }
    }

    /// The key and K bit for the next packet, starting an update first when this phase has
    /// sealed its share and the last update was acknowledged.
    pub(crate) fn sealing(&mut self) -> (&PacketKey, bool) {
        if self.send_count >= self.interval && self.send_confirmed {
            self.update_send();
        }
        self.send_count += 1;
        (&self.send, self.send_phase)
    }

    fn update_send(&mut self) {
        self.send_secret = keys::next_secret(&self.send_secret);
        self.send = PacketKey::from_secret(&self.send_secret);
        self.send_phase = !self.send_phase;
        self.send_count = 0;
        self.send_confirmed = false;
        self.updates += 1;
    }

    /// A packet sealed in phase `phase` was acknowledged.
    pub(crate) fn on_acked(&mut self, phase: bool) {
        if phase == self.send_phase {
            self.send_confirmed = true;
        }
    }

    /// Open a short-header packet in place: `datagram[..header_len]` is the header (the AAD),
    /// `phase` its K bit and `pn` its full packet number. `grace` is how long old keys stay
    /// usable after an update (3 PTOs).
    pub(crate) fn open(
        &mut self,
        now: Instant,
        grace: core::time::Duration,
        datagram: &mut [u8],
        header_len: usize,
        phase: bool,
        pn: u64,
    ) -> Opened {
        if self
            .prev_recv
            .as_ref()
            .is_some_and(|(_, until)| now >= *until)
        {
            self.prev_recv = None;
        }
        if phase == self.recv_phase {
            return match keys::open_packet(&self.recv, pn, datagram, header_len) {
                Ok(r) => Opened::Ok(r),
                Err(_) => Opened::Failed,
            };
        }
        if pn < self.recv_phase_start {
            // Sent before the update we already followed: the previous keys, if still kept.
            return match &self.prev_recv {
                Some((key, _)) => match keys::open_packet(key, pn, datagram, header_len) {
                    Ok(r) => Opened::Ok(r),
                    Err(_) => Opened::Failed,
                },
                None => Opened::Failed,
            };
        }
        // The peer moved to the next phase: try its keys (a forged K bit fails here and
        // changes nothing).
        let next_secret = keys::next_secret(&self.recv_secret);
        let next = PacketKey::from_secret(&next_secret);
        let Ok(r) = keys::open_packet(&next, pn, datagram, header_len) else {
            return Opened::Failed;
        };
        let old = core::mem::replace(&mut self.recv, next);
        self.prev_recv = Some((old, now + grace));
        self.recv_secret = next_secret;
        self.recv_phase = phase;
        self.recv_phase_start = pn;
        if self.send_phase != phase {
            // Follow the peer's update.
            self.update_send();
        }
        Opened::Ok(r)
    }

    /// Key updates this side started or followed.
    pub(crate) fn updates(&self) -> u64 {
        self.updates
    }
}
