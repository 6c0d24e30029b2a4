//! What an opened packet's frames do to the connection.

use super::{Connection, code};
use crate::dgram::Space;
use crate::dgram::frame::{Frame, FrameError, Frames};
use crate::dgram::recovery::AckError;
use crate::time::Instant;

/// Check every frame of a payload before acting on any: `Ok(ack_eliciting)`, or the first
/// malformed frame (a violation: the packet was authenticated).
pub(super) fn scan(payload: &[u8]) -> Result<bool, FrameError> {
    let mut eliciting = false;
    for f in Frames::new(payload) {
        eliciting |= f?.is_ack_eliciting();
    }
    Ok(eliciting)
}

impl Connection {
    /// Act on the frames of an authenticated, new (not replayed) packet of `space`.
    pub(super) fn process_frames(&mut self, now: Instant, space: Space, payload: &[u8]) {
        for frame in Frames::new(payload) {
            let Ok(frame) = frame else {
                // `scan` saw them all already.
                return;
            };
            if self.state != super::State::Open {
                return;
            }
            match frame {
                Frame::Padding | Frame::Ping => {}
                Frame::Ack(ack) => {
                    let mut out = core::mem::take(&mut self.outcomes);
                    let r = self.recovery.on_ack_received(
                        now,
                        space,
                        ack.iter(),
                        ack.ack_delay(),
                        self.confirmed,
                        &mut out,
                    );
                    self.apply_outcomes(now, &mut out);
                    self.outcomes = out;
                    if let Err(AckError::UnsentPacket) = r {
                        self.close_with(now, code::PROTOCOL_VIOLATION, 0);
                        return;
                    }
                }
                Frame::Crypto { offset, data } => {
                    if space != Space::Handshake {
                        self.close_with(now, code::PROTOCOL_VIOLATION, 0);
                        return;
                    }
                    if let Some(hs) = &mut self.hs {
                        if hs.recv.insert(offset, data, false).is_err() {
                            self.close_with(now, code::PROTOCOL_VIOLATION, 0);
                            return;
                        }
                        // A repeated first flight: our answer was lost, send it again now
                        // rather than waiting for our own timer.
                        if offset == 0 && hs.params_read && !self.client {
                            hs.send.on_lost(0, hs.send.written() as usize, false);
                        }
                    }
                }
                Frame::Stream { offset, data, fin } => {
                    if space != Space::Data {
                        self.close_with(now, code::PROTOCOL_VIOLATION, 0);
                        return;
                    }
                    if self.stream_recv.insert(offset, data, fin).is_err() {
                        self.close_with(now, code::FLOW_CONTROL, 0);
                        return;
                    }
                }
                Frame::MaxData(limit) => {
                    self.peer_max_data = self.peer_max_data.max(limit);
                }
                Frame::DataBlocked(_) => {
                    // The peer waits for credit: announce ours again.
                    self.max_data_owed = true;
                }
                Frame::Close { code, reason } => {
                    self.on_peer_close(now, code, reason);
                    return;
                }
                Frame::HandshakeDone => {
                    if !self.client {
                        self.close_with(now, code::PROTOCOL_VIOLATION, 0);
                        return;
                    }
                    self.confirm();
                }
            }
        }
    }
}
