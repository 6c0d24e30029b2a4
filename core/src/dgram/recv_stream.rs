//! The receiving half of the reliable byte stream: reassembly of out-of-order pieces and flow
//! control (`shared/research/udp.md` §4.7).
#![allow(dead_code)]

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::time::Duration;

use crate::time::Instant;

/// Most separate out-of-order pieces held. Pieces that extend the previous one are merged into
/// it, so an honest sender makes one piece per hole (lost packet) in the window; a peer that
/// fragments the window further (tiny frames with gaps, to inflate per-piece overhead) is
/// refused with [`StreamError::FlowControl`].
pub(crate) const MAX_PIECES: usize = 16 * 1024;

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

/// Reassembles the stream and hands out its contiguous bytes; grants flow-control credit as
/// they are consumed.
#[derive(Debug, Clone)]
pub(crate) struct RecvStream {
    /// `ready[head..]` are the contiguous bytes from offset `consumed`.
    ready: Vec<u8>,
    head: usize,
    /// Stream offset of `ready[head]`: everything below was consumed.
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
            ready: Vec::new(),
            head: 0,
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
        self.consumed + (self.ready.len() - self.head) as u64
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
            self.ready.extend_from_slice(data);
            self.drain_pending();
            return Ok(());
        }
        self.insert_pending(offset, data)
    }

    /// Moves the pieces that became contiguous into `ready`.
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
            if let Some(tail) = piece.get(skip..) {
                self.ready.extend_from_slice(tail);
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
                    self.pending.insert(at, part.to_vec());
                }
            }
            self.pending_bytes += part.len();
            at = next;
        }
        Ok(())
    }

    /// The contiguous bytes from the read offset, to parse (and decrypt) in place.
    pub(crate) fn readable(&mut self) -> &mut [u8] {
        &mut self.ready[self.head..]
    }

    /// The reader took `n` bytes from the front of [`readable`](Self::readable) (at most what
    /// it holds): frees them and opens flow-control credit.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.ready.len() - self.head);
        self.head += n;
        self.consumed += n as u64;
        let left = self.ready.len() - self.head;
        if left == 0 {
            self.ready.clear();
            self.head = 0;
        } else if self.head >= left && self.head >= 4096 {
            // Amortised: each byte moves at most once per time the buffer halves.
            self.ready.copy_within(self.head.., 0);
            self.ready.truncate(left);
            self.head = 0;
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

    /// A new limit to advertise, once half the window was consumed since the last one. The
    /// window doubles (up to the maximum) when a whole window was consumed within 2 × `srtt`:
    /// the window, not the reader, was the bottleneck.
    pub(crate) fn poll_max_data(&mut self, now: Instant, srtt: Duration) -> Option<u64> {
        let (start, at) = *self.epoch.get_or_insert((now, self.consumed));
        if self.final_size.is_some() {
            return None;
        }
        let since = self.consumed - self.advertised_at;
        if since == 0 || since < self.window / 2 {
            return None;
        }
        if self.consumed - at >= self.window {
            if now.saturating_duration_since(start) < srtt.saturating_mul(2) {
                self.window = self.window.saturating_mul(2).min(self.max_window);
            }
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
        self.ready.len() - self.head + self.pending_bytes
    }
}
