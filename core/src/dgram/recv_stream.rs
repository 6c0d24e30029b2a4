//! The receiving half of the reliable byte stream: reassembly of out-of-order pieces and flow
//! control (`shared/research/udp.md` §4.7).
#![allow(dead_code)]

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::time::Duration;

use crate::time::Instant;

/// Most separate out-of-order pieces held. Pieces that extend the previous one are merged into
/// it, so an honest sender makes one piece per hole (lost packet) in the window; a peer that
/// fragments the window further (tiny frames with gaps, to inflate per-piece overhead) is
/// refused with [`StreamError::FlowControl`].
pub(crate) const MAX_PIECES: usize = 16 * 1024;

/// A new flow-control limit is advertised each time this fraction of the window was consumed.
const UPDATE_FRACTION: u64 = 8;

/// A peer that broke the stream rules (a connection error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// Data beyond the limit we advertised, or fragmented into more than [`MAX_PIECES`]
    /// out-of-order pieces.
    FlowControl,
    /// Data beyond a known final size, a FIN below data already received, or a second FIN at
    /// another size.
    FinalSize,
}

/// Capacity a new out-of-order piece starts with (while fewer than [`RESERVED_PIECES`] are
/// held): the data after a lost packet is appended to its piece for a round trip.
const PIECE_RESERVE: usize = 256 * 1024;
const RESERVED_PIECES: usize = 64;

/// Out-of-order pieces at least this long become a segment of their own when the hole before
/// them fills (moved, not copied); shorter ones are copied onto the contiguous bytes.
const MOVE_MIN: usize = crate::MAX_RECORD;

/// A run of contiguous bytes: `buf[head..]`. When the run before it was too short for a record,
/// [`RecvStream::readable`] appended a copy of this run's first bytes to that run (and moved
/// this `head` past them); `borrowed` counts such copied bytes at the end of a run.
#[derive(Debug, Clone, Default)]
struct Segment {
    buf: Vec<u8>,
    head: usize,
    borrowed: usize,
}

impl Segment {
    fn len(&self) -> usize {
        self.buf.len() - self.head
    }
}

/// Reassembles the stream and hands out its contiguous bytes; grants flow-control credit as
/// they are consumed.
///
/// The contiguous bytes are a queue of segments, usually one. On a lossy path everything sent
/// after a lost packet waits as an out-of-order piece until the repair arrives, often a round
/// trip of data: that piece then joins the queue as it is instead of being copied, and only
/// up to a record's worth of bytes is copied where two segments meet.
#[derive(Debug, Clone)]
pub(crate) struct RecvStream {
    /// The contiguous bytes from offset `consumed`, in stream order.
    ready: VecDeque<Segment>,
    /// Bytes in `ready`.
    ready_len: usize,
    /// Stream offset of the first byte of `ready`: everything below was consumed.
    consumed: u64,
    /// Out-of-order pieces by offset, all above the contiguous end, disjoint.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Highest end offset received.
    highest: u64,
    final_size: Option<u64>,
    window: u64,
    max_window: u64,
    /// The limit advertised: the peer may send bytes below it.
    max_data: u64,
    /// `consumed` when `max_data` was last raised.
    advertised_at: u64,
    /// Auto-tuning epoch: when it started and `consumed` then.
    epoch: Option<(Instant, u64)>,
}

impl RecvStream {
    /// A stream granting `initial_window` bytes of credit, growing up to `max_window`.
    pub(crate) fn new(initial_window: u64, max_window: u64) -> Self {
        RecvStream {
            ready: VecDeque::new(),
            ready_len: 0,
            consumed: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            highest: 0,
            final_size: None,
            window: initial_window,
            max_window: max_window.max(initial_window),
            max_data: initial_window,
            advertised_at: 0,
            epoch: None,
        }
    }

    /// End offset of the contiguous bytes received.
    fn contiguous_end(&self) -> u64 {
        self.consumed + self.ready_len as u64
    }

    /// Takes the bytes `[offset, offset + data.len())`, and the end of the stream after them if
    /// `fin`. Bytes already received or consumed are ignored.
    pub(crate) fn insert(
        &mut self,
        offset: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<(), StreamError> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(StreamError::FlowControl)?;
        if end > self.max_data {
            return Err(StreamError::FlowControl);
        }
        if let Some(size) = self.final_size {
            if end > size || (fin && end != size) {
                return Err(StreamError::FinalSize);
            }
        } else if fin {
            if end < self.highest {
                return Err(StreamError::FinalSize);
            }
            self.final_size = Some(end);
        }
        self.highest = self.highest.max(end);
        let recv_end = self.contiguous_end();
        if end <= recv_end {
            return Ok(());
        }
        let skip = recv_end.saturating_sub(offset) as usize;
        let (offset, data) = (offset.max(recv_end), &data[skip..]);
        if offset == recv_end {
            self.append(data);
            self.drain_pending();
            return Ok(());
        }
        self.insert_pending(offset, data)
    }

    /// Copies contiguous bytes onto the last segment.
    fn append(&mut self, data: &[u8]) {
        if self.ready.is_empty() {
            self.ready.push_back(Segment::default());
        }
        if let Some(last) = self.ready.back_mut() {
            last.buf.extend_from_slice(data);
            self.ready_len += data.len();
        }
    }

    /// Moves the pieces that became contiguous into `ready`: a long one as a segment of its
    /// own, a short one copied.
    fn drain_pending(&mut self) {
        loop {
            let recv_end = self.contiguous_end();
            let Some(entry) = self.pending.first_entry() else {
                break;
            };
            let start = *entry.key();
            if start > recv_end {
                break;
            }
            let piece = entry.remove();
            self.pending_bytes -= piece.len();
            let skip = (recv_end - start) as usize;
            let rest = piece.len().saturating_sub(skip);
            if rest >= MOVE_MIN {
                self.ready_len += rest;
                self.ready.push_back(Segment {
                    buf: piece,
                    head: skip,
                    borrowed: 0,
                });
            } else if rest > 0 {
                self.append(&piece[skip..]);
            }
        }
    }

    /// Stores the parts of `[offset, offset + data.len())` not held yet (`offset` is above the
    /// contiguous end).
    fn insert_pending(&mut self, offset: u64, data: &[u8]) -> Result<(), StreamError> {
        let end = offset + data.len() as u64;
        let mut at = offset;
        while at < end {
            // The piece at or before `at`, if it covers `at`, skips us past it.
            let prev = self
                .pending
                .range(..=at)
                .next_back()
                .map(|(&s, p)| (s, s + p.len() as u64));
            if let Some((_, prev_end)) = prev.filter(|&(_, e)| e > at) {
                at = prev_end;
                continue;
            }
            // Up to the next piece (or the end).
            let next = self
                .pending
                .range(at..end)
                .next()
                .map(|(&s, _)| s)
                .unwrap_or(end);
            let part = &data[(at - offset) as usize..(next - offset) as usize];
            match prev {
                Some((s, e)) if e == at => {
                    if let Some(p) = self.pending.get_mut(&s) {
                        p.extend_from_slice(part);
                    }
                }
                _ => {
                    if self.pending.len() >= MAX_PIECES {
                        return Err(StreamError::FlowControl);
                    }
                    // Room to grow without moving while the data after a lost packet
                    // arrives (address space only until written), for the first few pieces.
                    let room = if self.pending.len() < RESERVED_PIECES {
                        part.len().max(PIECE_RESERVE)
                    } else {
                        part.len()
                    };
                    let mut piece = Vec::with_capacity(room);
                    piece.extend_from_slice(part);
                    self.pending.insert(at, piece);
                }
            }
            self.pending_bytes += part.len();
            at = next;
        }
        Ok(())
    }

    /// The contiguous bytes from the read offset, to parse in place: all of them, or a prefix
    /// of at least [`MAX_RECORD`](crate::MAX_RECORD) bytes (so a whole record is always there
    /// once it arrived). The reader may change the bytes it then consumes, not the others.
    pub(crate) fn readable(&mut self) -> &mut [u8] {
        self.stitch();
        match self.ready.front_mut() {
            Some(first) => &mut first.buf[first.head..],
            None => &mut [],
        }
    }

    /// While the first segment is shorter than a record and another follows: copy onto the
    /// first as many of the second's bytes as make it a record long (all of the second if
    /// shorter, which then goes away); they stay *borrowed* until [`consume`](Self::consume)
    /// hands what is left of them back to the second. An empty first segment simply goes.
    fn stitch(&mut self) {
        while self.ready.len() > 1
            && let Some(first) = self.ready.front()
            && first.len() < crate::MAX_RECORD
        {
            if first.len() == 0 {
                self.ready.pop_front();
                continue;
            }
            let mut segments = self.ready.iter_mut();
            let (Some(first), Some(second)) = (segments.next(), segments.next()) else {
                return;
            };
            let n = second.len().min(crate::MAX_RECORD - first.len());
            first
                .buf
                .extend_from_slice(&second.buf[second.head..second.head + n]);
            second.head += n;
            if n > 0 && second.len() > 0 {
                first.borrowed += n;
            } else {
                // All of it was copied: it goes, and the copies are borrowed no more.
                first.borrowed = 0;
                self.ready.remove(1);
            }
        }
    }

    /// The reader took `n` bytes from the front of [`readable`](Self::readable) (at most what
    /// it holds): frees them and opens flow-control credit.
    pub(crate) fn consume(&mut self, n: usize) {
        let more = self.ready.len() > 1;
        let Some(first) = self.ready.front_mut() else {
            return;
        };
        let n = n.min(first.len());
        first.head += n;
        self.consumed += n as u64;
        self.ready_len -= n;
        let left = first.len();
        if left <= first.borrowed && more {
            // What is left of the first segment is a copy of the second's bytes just before
            // its head: read them there instead.
            self.ready.pop_front();
            if let Some(second) = self.ready.front_mut() {
                second.head -= left;
            }
        } else if left == 0 {
            first.buf.clear();
            first.head = 0;
        } else if first.head >= left && first.head >= 4096 {
            // Amortised: each byte moves at most once per time the buffer halves.
            let head = first.head;
            first.buf.copy_within(head.., 0);
            first.buf.truncate(left);
            first.head = 0;
        }
    }

    /// Give the buffers' memory back when nothing is held (a quiet connection keeps none).
    pub(crate) fn release_if_empty(&mut self) {
        if self.ready_len == 0 && self.pending.is_empty() {
            self.ready = VecDeque::new();
        }
    }

    /// Whether the FIN arrived and every byte up to it was consumed.
    pub(crate) fn is_finished(&self) -> bool {
        self.final_size == Some(self.consumed)
    }

    /// Whether the FIN arrived (the final size is known).
    pub(crate) fn fin_received(&self) -> bool {
        self.final_size.is_some()
    }

    /// The limit advertised to the peer: it may send bytes below this offset.
    pub(crate) fn max_data(&self) -> u64 {
        self.max_data
    }

    /// The current window (credit granted ahead of the read offset).
    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    /// A new limit to advertise, once an eighth of the window was consumed since the last
    /// one (so the sender's credit never drops much below a whole window: with updates at
    /// half a window, a window of twice the path's bandwidth-delay product was needed to keep
    /// it full). The window doubles (up to the maximum) when a quarter of it was consumed
    /// within one `srtt` of the start of the auto-tuning epoch (the rate of Chromium's QUIC
    /// rule, half a window within 2 × `srtt`): the window, not the reader, was the
    /// bottleneck; or when the reader took everything readable while bytes wait beyond a hole
    /// (a lossy path). Requiring a *whole* window within 2 × `srtt` never fires on a lossy
    /// path, where holes hold back in-order delivery by a round trip or more.
    pub(crate) fn poll_max_data(&mut self, now: Instant, srtt: Duration) -> Option<u64> {
        let (start, at) = *self.epoch.get_or_insert((now, self.consumed));
        if self.final_size.is_some() {
            return None;
        }
        let since = self.consumed - self.advertised_at;
        let left = self.ready_len as u64;
        let held_by_holes = left <= crate::MAX_RECORD as u64 && self.pending_bytes > 0;
        // The sender came within half a window of the limit while the reader waits on
        // holes: the window, not the reader, holds the transfer back (a sender in STARTUP
        // doubles its flight each round trip, faster than consumption stalled by repairs
        // triggers updates). Grown and advertised now; at most once per round trip, as the
        // sender needs one to use the new credit.
        let pressed = held_by_holes
            && self.window < self.max_window
            && self.max_data.saturating_sub(self.highest) < self.window / 2;
        if !pressed && (since == 0 || since < self.window / UPDATE_FRACTION) {
            return None;
        }
        // The reader is not the bottleneck when it took everything readable while bytes wait
        // beyond a hole: on a lossy path every window holds holes, whose repair (a round trip
        // or more, several when a retransmission is lost too) stalls in-order delivery, so
        // the consumption rate alone would read as a slow reader and the window would never
        // grow to cover the repair time; checked at every update, as a sender in slow start
        // doubles its flight each round trip. (What is left readable is at most a partial
        // record the session cannot take yet.)
        let fast_reader =
            self.consumed - at >= self.window / 4 && now.saturating_duration_since(start) < srtt;
        if held_by_holes || fast_reader {
            self.window = self.window.saturating_mul(2).min(self.max_window);
        }
        if held_by_holes || fast_reader || self.consumed - at >= self.window / 4 {
            self.epoch = Some((now, self.consumed));
        }
        let limit = self.consumed.saturating_add(self.window);
        if limit <= self.max_data {
            return None;
        }
        self.max_data = limit;
        self.advertised_at = self.consumed;
        Some(limit)
    }

    /// Bytes held (contiguous and out of order): never more than the window.
    pub(crate) fn buffered(&self) -> usize {
        self.ready_len + self.pending_bytes
    }
}

#[cfg(test)]
mod tests;
