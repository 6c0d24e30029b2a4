//! Building packets: which space, which frames, under which limits (congestion window,
//! pacing, anti-amplification, flow control), sealed into the caller's buffer.

use super::{Connection, Sent, State};
use crate::dgram::frame;
use crate::dgram::keys;
use crate::dgram::packet::{self, Header, LONG_HEADER_LEN, SHORT_HEADER_LEN, TAG_LEN};
use crate::dgram::{MIN_MTU, Space, Transmit};
use crate::time::Instant;
use core::time::Duration;

/// Most ACK ranges in one frame.
const MAX_ACK_RANGES: usize = 32;
/// Smallest payload room worth a packet (header and tag aside).
const MIN_PAYLOAD: usize = 32;
/// The pacer releases a batch once it holds tokens for this long at the pacing rate (within
/// [`MIN_PACED`] datagrams and the batch): one packet per token at 1 Gbit/s is one every
/// 11 µs, far below what a timer wake-up costs or resolves, so a sender woken per packet
/// spends its time in wake-ups and sends batches of whatever the late timer allowed.
const PACING_QUANTUM: Duration = Duration::from_millis(1);
/// Fewest datagrams the pacer waits for before a batch leaves (slow rates).
const MIN_PACED: usize = 2;

impl Connection {
    /// Write the next datagram (or a GSO batch of equal-size datagrams, up to
    /// `TransportConfig::max_batch`) into `buf` and say where it goes; `None` when there is
    /// nothing to send now. Call until `None` after every input, timeout or request. A
    /// buffer of [`MAX_MTU`](crate::dgram::MAX_MTU) × `max_batch` bytes always suffices.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.observe(now);
        self.pacing_until = None;
        if matches!(self.state, State::Drained | State::Draining { .. }) {
            return None;
        }
        self.feed_session(now);
        self.pull_session(now);
        self.update_state(now);
        let mut size = 0;
        let mut segment = 0;
        let mut count = 0;
        while count < self.cfg.max_batch {
            // Room for a path MTU probe too (a packet is never larger than the MTU otherwise);
            // after the first, no larger than it: GSO cuts the batch at the first's size.
            let room = if count == 0 {
                usize::from(self.cfg.max_mtu)
            } else {
                segment
            };
            let end = buf.len().min(size + room);
            if end - size < MIN_MTU.into() && count > 0 {
                break;
            }
            let Some(n) = self.build_packet(now, &mut buf[size..end], count == 0) else {
                break;
            };
            if count == 0 {
                segment = n;
            }
            size += n;
            count += 1;
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += n as u64;
            if n != segment {
                // A shorter datagram ends a GSO batch.
                break;
            }
        }
        // Sending stopped for want of data, not of window or pacing: the controller must not
        // grow the window on acknowledgements of an application-limited flight.
        let window_limited =
            self.pacing_until.is_some() || !self.recovery.can_send(self.mtu.current().into());
        let receiver_limited = self.stream_send.has_pending(u64::MAX);
        self.recovery.set_app_limited(
            !window_limited && !self.stream_send.has_pending(self.peer_max_data),
            receiver_limited,
        );
        if count == 0 {
            self.release_idle_buffers();
            return None;
        }
        Some(Transmit {
            destination: self.peer,
            size,
            segment_size: (count > 1).then_some(segment),
        })
    }

    /// The space the next packet belongs to, if anything is owed.
    fn next_space(&self, now: Instant) -> Option<Space> {
        if let State::Closing { .. } = self.state {
            if !self.close_owed {
                return None;
            }
            return Some(if self.data_keys.is_some() {
                Space::Data
            } else {
                Space::Handshake
            });
        }
        if let Some(hs) = &self.hs {
            let acks = &self.spaces[0].acks;
            let probe = self.recovery.probes_pending() > 0
                && self.recovery.in_flight_packets(Space::Handshake) > 0;
            if hs.send.has_pending(u64::MAX) || acks.ack_due(now) || probe {
                return Some(Space::Handshake);
            }
        }
        self.data_keys.as_ref()?;
        let acks = &self.spaces[1].acks;
        let owed = self.handshake_done_owed
            || self.max_data_owed
            || self.recovery.probes_pending() > 0
            || self.stream_send.has_pending(self.peer_max_data)
            || self.mtu.probe_due(now).is_some()
            || acks.ack_due(now);
        owed.then_some(Space::Data)
    }

    /// Bytes of pacing tokens the first packet of a batch waits for: [`PACING_QUANTUM`] at the
    /// pacing rate, within [`MIN_PACED`] datagrams and the batch (`max_batch`) of `room`.
    fn pacing_quantum(&self, room: usize) -> usize {
        let rate = self.recovery.pacing_rate();
        let quantum = u128::from(rate) * PACING_QUANTUM.as_micros() / 1_000_000;
        let quantum = usize::try_from(quantum).unwrap_or(usize::MAX);
        let most = room * self.cfg.max_batch.max(MIN_PACED);
        quantum.clamp(room * MIN_PACED, most).max(room)
    }

    /// Build one packet into `out` (at most one path MTU); its length, or `None`. The first
    /// packet of a batch (`first`) leaves only when the pacer holds tokens for a whole
    /// quantum ([`Connection::pacing_quantum`]): the sender wakes once per batch, not per
    /// packet.
    fn build_packet(&mut self, now: Instant, out: &mut [u8], first: bool) -> Option<usize> {
        let space = self.next_space(now)?;
        let closing = matches!(self.state, State::Closing { .. });
        let mut room = out.len().min(self.mtu.current().into());
        // A client pads every handshake datagram to the minimum size.
        let pad_to = if self.client && space == Space::Handshake {
            usize::from(MIN_MTU)
        } else {
            0
        };
        if out.len() < pad_to.max(MIN_PAYLOAD + LONG_HEADER_LEN + TAG_LEN) {
            return None;
        }
        if !self.validated {
            let budget = (3 * self.amp_received).saturating_sub(self.amp_sent) as usize;
            room = room.min(budget);
            if room < MIN_PAYLOAD + LONG_HEADER_LEN + TAG_LEN {
                return None;
            }
        }
        // May this packet carry anything that elicits an acknowledgement?
        let probe = self.recovery.probes_pending() > 0;
        if probe && space == Space::Data {
            // A PTO probe fits the minimum MTU: if full-size packets vanish in an MTU black
            // hole, the probe still arrives and its ACK declares them lost, which is how the
            // black hole is detected (nothing else would ever be acknowledged).
            room = room.min(MIN_MTU.into());
        }
        let mut eliciting_ok = !closing && (probe || self.recovery.can_send(room));
        if eliciting_ok
            && !probe
            && space == Space::Data
            && let Some(t) = self.recovery.pacing_delay(
                now,
                if first {
                    self.pacing_quantum(room)
                } else {
                    room
                },
            )
        {
            self.pacing_until = Some(t);
            eliciting_ok = false;
        }
        let s = space.index();
        let acks_due = self.spaces[s].acks.ack_due(now);
        if !eliciting_ok && !acks_due && !closing {
            return None;
        }
        let mtu_probe = match (space, eliciting_ok && !probe) {
            (Space::Data, true) => self
                .mtu
                .probe_due(now)
                .filter(|&p| usize::from(p) <= out.len()),
            _ => None,
        };
        if let Some(p) = mtu_probe {
            room = p.into();
        }
        let header_len = match space {
            Space::Handshake => LONG_HEADER_LEN,
            Space::Data => SHORT_HEADER_LEN,
        };
        let end = room - TAG_LEN;
        let mut pos = header_len;
        let mut sent = Sent {
            handshake: space == Space::Handshake,
            ..Sent::default()
        };
        let mut eliciting = false;

        // ACK first: it is what keeps the peer's window moving.
        let acks = &self.spaces[s].acks;
        let want_ack = acks.has_ranges() && (acks_due || acks.deadline().is_some() || closing);
        if want_ack {
            let delay = acks
                .largest()
                .map_or(0, |(_, at)| (now - at).as_micros() as u64);
            if let Some(n) =
                frame::encode_ack(acks.ranges(), delay, MAX_ACK_RANGES, &mut out[pos..end])
            {
                pos += n;
                sent.ack = acks.largest().map(|(pn, _)| pn);
                self.spaces[s].acks.on_ack_sent(now);
                self.stats.acks_sent += 1;
            }
        }
        if closing {
            let n = frame::encode_close(self.close_code, &self.close_reason, &mut out[pos..end])?;
            pos += n;
            self.close_owed = false;
            self.close_answers = self.close_answers.saturating_add(1);
        } else if let Some(size) = mtu_probe {
            pos += frame::encode_ping(&mut out[pos..end])?;
            let pad = usize::from(size) - TAG_LEN - pos;
            pos += frame::encode_padding(&mut out[pos..end], pad)?;
            sent.mtu_probe = Some(size);
            self.mtu.on_probe_sent(size);
            eliciting = true;
        } else if eliciting_ok {
            eliciting |= self.write_control(space, out, &mut pos, end, &mut sent);
            eliciting |= self.write_data(space, out, &mut pos, end, &mut sent);
            if probe && !eliciting {
                pos += frame::encode_ping(&mut out[pos..end])?;
                eliciting = true;
            }
        }
        if pos == header_len {
            return None;
        }
        if pad_to > 0 && pos + TAG_LEN < pad_to {
            let pad = pad_to - TAG_LEN - pos;
            pos += frame::encode_padding(&mut out[pos..], pad)?;
        }
        // Header, then seal.
        let pn = self.spaces[s].next_pn;
        let truncated = packet::truncate_pn(pn);
        let total = match space {
            Space::Handshake => {
                let hs = self.hs.as_ref()?;
                Header::Long {
                    dcid: self.remote_cid,
                    scid: self.local_cid,
                    pn: truncated,
                }
                .write(out)?;
                keys::seal_packet(&hs.keys.send, pn, out, header_len, pos - header_len)
            }
            Space::Data => {
                let dk = self.data_keys.as_mut()?;
                let (key, phase) = dk.sealing();
                sent.phase = phase;
                Header::Short {
                    key_phase: phase,
                    dcid: self.remote_cid,
                    pn: truncated,
                }
                .write(out)?;
                keys::seal_packet(key, pn, out, header_len, pos - header_len)
            }
        };
        self.spaces[s].next_pn += 1;
        sent.size = total as u16;
        self.recovery.on_packet_sent(
            now,
            space,
            pn,
            total,
            eliciting,
            sent.mtu_probe.is_some(),
            sent,
        );
        if !self.validated {
            self.amp_sent += total as u64;
        }
        if eliciting && !self.sent_eliciting_since_recv {
            self.sent_eliciting_since_recv = true;
            self.last_activity = self.last_activity.max(now);
        }
        Some(total)
    }

    /// HANDSHAKE_DONE, MAX_DATA, DATA_BLOCKED: small frames that ride first.
    fn write_control(
        &mut self,
        space: Space,
        out: &mut [u8],
        pos: &mut usize,
        end: usize,
        sent: &mut Sent,
    ) -> bool {
        if space != Space::Data {
            return false;
        }
        let mut eliciting = false;
        if self.handshake_done_owed
            && let Some(n) = frame::encode_handshake_done(&mut out[*pos..end])
        {
            *pos += n;
            self.handshake_done_owed = false;
            sent.handshake_done = true;
            eliciting = true;
        }
        if self.max_data_owed
            && let Some(n) =
                frame::encode_max_data(self.stream_recv.max_data(), &mut out[*pos..end])
        {
            *pos += n;
            self.max_data_owed = false;
            sent.max_data = true;
            eliciting = true;
        }
        let blocked = self.stream_send.written() > self.peer_max_data
            && !self.stream_send.has_pending(self.peer_max_data);
        if blocked
            && self.blocked_sent != Some(self.peer_max_data)
            && let Some(n) = frame::encode_data_blocked(self.peer_max_data, &mut out[*pos..end])
        {
            *pos += n;
            self.blocked_sent = Some(self.peer_max_data);
            eliciting = true;
        }
        eliciting
    }

    /// CRYPTO or session-stream bytes: retransmissions first, then new bytes.
    fn write_data(
        &mut self,
        space: Space,
        out: &mut [u8],
        pos: &mut usize,
        end: usize,
        sent: &mut Sent,
    ) -> bool {
        let room = end.saturating_sub(*pos);
        match space {
            Space::Handshake => {
                let Some(hs) = &mut self.hs else { return false };
                let max = frame::max_stream_data(hs.send.written(), room);
                if max == 0 {
                    return false;
                }
                let Some(chunk) = hs.send.poll(max, u64::MAX) else {
                    return false;
                };
                let Some(h) =
                    frame::encode_crypto_header(chunk.offset, chunk.len, &mut out[*pos..end])
                else {
                    hs.send.on_lost(chunk.offset, chunk.len, false);
                    return false;
                };
                *pos += h;
                hs.send
                    .copy_out(chunk.offset, &mut out[*pos..*pos + chunk.len]);
                *pos += chunk.len;
                sent.crypto = Some((chunk.offset, chunk.len as u32));
                true
            }
            Space::Data => {
                let max = frame::max_stream_data(self.stream_send.written(), room);
                if max == 0 {
                    return false;
                }
                let Some(chunk) = self.stream_send.poll(max, self.peer_max_data) else {
                    return false;
                };
                let Some(h) = frame::encode_stream_header(
                    chunk.offset,
                    chunk.len,
                    chunk.fin,
                    &mut out[*pos..end],
                ) else {
                    self.stream_send.on_lost(chunk.offset, chunk.len, chunk.fin);
                    return false;
                };
                *pos += h;
                self.stream_send
                    .copy_out(chunk.offset, &mut out[*pos..*pos + chunk.len]);
                *pos += chunk.len;
                sent.stream = Some((chunk.offset, chunk.len as u32, chunk.fin));
                let chunk_end = chunk.offset + chunk.len as u64;
                if chunk_end > self.stream_sent_max {
                    let fresh = chunk_end - self.stream_sent_max.max(chunk.offset);
                    self.stats.stream_bytes_sent += fresh;
                    self.stats.stream_bytes_retransmitted += chunk.len as u64 - fresh;
                    self.stream_sent_max = chunk_end;
                } else {
                    self.stats.stream_bytes_retransmitted += chunk.len as u64;
                }
                true
            }
        }
    }
}
