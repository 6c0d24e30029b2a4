//! The sending half of the reliable byte stream: what the session writes, the transport sends,
//! resends when lost and frees once acknowledged.
#![allow(dead_code)]

use alloc::collections::VecDeque;

use super::ranges::RangeSet;

/// A piece of the stream to put in a DATA frame: the bytes `[offset, offset + len)` (copy them
/// with [`SendStream::copy_out`]), then the end of the stream if `fin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) fin: bool,
}

/// Where the end-of-stream marker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fin {
    /// Not finished: more bytes may be written.
    Open,
    /// Finished; the FIN is to be sent (first time, or again after a loss).
    Pending,
    /// Sent, not yet acknowledged.
    InFlight,
    /// Acknowledged.
    Acked,
}

/// An ordered byte stream from offset 0. Holds the bytes from the end of the acknowledged
/// prefix to the end of what was written: at most `capacity` bytes.
#[derive(Debug, Clone)]
pub(crate) struct SendStream {
    /// Bytes `[base, written)`.
    buf: VecDeque<u8>,
    capacity: usize,
    /// End of the acknowledged prefix: offset of `buf[0]`.
    base: u64,
    /// Every byte below it was sent at least once.
    send_offset: u64,
    /// Sent, declared lost, not acknowledged since: to resend (all below `send_offset`).
    lost: RangeSet,
    /// Acknowledged ranges above `base`.
    acked: RangeSet,
    fin: Fin,
}

impl SendStream {
    /// An empty stream buffering at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        SendStream {
            buf: VecDeque::new(),
            capacity,
            base: 0,
            send_offset: 0,
            lost: RangeSet::new(),
            acked: RangeSet::new(),
            fin: Fin::Open,
        }
    }

    /// Appends as much of `data` as fits; returns how much. Nothing after [`finish`](Self::finish).
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        self.buf.extend(&data[..n]);
        n
    }

    /// How many bytes [`write`](Self::write) takes now.
    pub(crate) fn room(&self) -> usize {
        if self.fin != Fin::Open {
            return 0;
        }
        self.capacity.saturating_sub(self.buf.len())
    }

    /// Ends the stream after the bytes written so far.
    pub(crate) fn finish(&mut self) {
        if self.fin == Fin::Open {
            self.fin = Fin::Pending;
        }
    }

    /// End offset of everything written.
    pub(crate) fn written(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Bytes held: written and not yet part of the acknowledged prefix.
    pub(crate) fn unacked(&self) -> usize {
        self.buf.len()
    }

    /// Whether [`poll`](Self::poll) has something: lost bytes, new bytes below the peer's
    /// limit `max_data` (an absolute offset), or a FIN to send.
    pub(crate) fn has_pending(&self, max_data: u64) -> bool {
        !self.lost.is_empty()
            || self.send_offset < self.written().min(max_data)
            || (self.fin == Fin::Pending && self.send_offset == self.written())
    }

    /// The next piece to send, at most `max_len` bytes: lost bytes first (lowest offset
    /// first), then new bytes below `max_data`. Marks it in flight. A zero-length chunk only
    /// carries a lone FIN.
    pub(crate) fn poll(&mut self, max_len: usize, max_data: u64) -> Option<Chunk> {
        let written = self.written();
        let first_lost = self.lost.iter().next().filter(|_| max_len > 0);
        let (offset, len) = if let Some(r) = first_lost {
            let len = (r.end - r.start).min(max_len as u64);
            self.lost.remove(r.start..r.start + len);
            (r.start, len)
        } else if self.send_offset < written.min(max_data) && max_len > 0 {
            let offset = self.send_offset;
            let len = (written.min(max_data) - offset).min(max_len as u64);
            self.send_offset += len;
            (offset, len)
        } else if self.fin == Fin::Pending && self.send_offset == written && self.lost.is_empty() {
            (written, 0)
        } else {
            return None;
        };
        let fin = self.fin == Fin::Pending && offset + len == written;
        if fin {
            self.fin = Fin::InFlight;
        }
        Some(Chunk {
            offset,
            len: len as usize,
            fin,
        })
    }

    /// Copies the stream bytes `[offset, offset + out.len())` into `out`. They must still be
    /// held (written, not in the acknowledged prefix); bytes outside that are left untouched.
    pub(crate) fn copy_out(&self, offset: u64, out: &mut [u8]) {
        debug_assert!(offset >= self.base && offset + out.len() as u64 <= self.written());
        let Some(skip) = offset.checked_sub(self.base) else {
            return;
        };
        let Ok(skip) = usize::try_from(skip) else {
            return;
        };
        let (a, b) = self.buf.as_slices();
        let mut out = &mut out[..];
        // The ring buffer is two slices: copy the part of each that falls inside the request.
        let mut at = skip;
        for part in [a, b] {
            if at >= part.len() {
                at -= part.len();
                continue;
            }
            let n = (part.len() - at).min(out.len());
            out[..n].copy_from_slice(&part[at..at + n]);
            out = &mut out[n..];
            at = 0;
            if out.is_empty() {
                break;
            }
        }
    }

    /// The chunk `[offset, offset + len)` (and the FIN if `fin`) was acknowledged: frees the
    /// acknowledged prefix; out-of-order acknowledgements are remembered.
    pub(crate) fn on_acked(&mut self, offset: u64, len: usize, fin: bool) {
        let end = offset.saturating_add(len as u64).min(self.send_offset);
        if fin && matches!(self.fin, Fin::InFlight | Fin::Pending) {
            self.fin = Fin::Acked;
        }
        let start = offset.max(self.base);
        if start >= end {
            return;
        }
        self.lost.remove(start..end);
        self.acked.insert(start..end);
        if self.acked.min() == Some(self.base)
            && let Some(r) = self.acked.pop_min()
        {
            let n = usize::try_from(r.end - self.base).unwrap_or(usize::MAX);
            self.buf.drain(..n.min(self.buf.len()));
            self.base = r.end;
        }
    }

    /// The chunk `[offset, offset + len)` (and the FIN if `fin`) was declared lost: its parts
    /// not acknowledged since are queued to be sent again.
    pub(crate) fn on_lost(&mut self, offset: u64, len: usize, fin: bool) {
        let end = offset.saturating_add(len as u64).min(self.send_offset);
        let start = offset.max(self.base);
        if start < end {
            for gap in self.acked.subtract_from(start..end) {
                self.lost.insert(gap);
            }
        }
        if fin && self.fin == Fin::InFlight {
            self.fin = Fin::Pending;
        }
    }

    /// Whether the stream is finished and every byte and the FIN were acknowledged.
    pub(crate) fn is_acked_all(&self) -> bool {
        self.fin == Fin::Acked && self.buf.is_empty()
    }
}
