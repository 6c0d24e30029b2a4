#![allow(dead_code)]
//! Frames inside a decrypted packet payload: a one-byte type, then type-specific fields
//! (integers are QUIC varints, [`varint`]).
//!
//! | type | frame | fields |
//! |---|---|---|
//! | 0x00 | PADDING | none; a run of zero bytes is one frame |
//! | 0x01 | PING | none |
//! | 0x02 | ACK | largest, ack_delay, range_count, first_range, range_count × (gap, len) |
//! | 0x06 | CRYPTO | offset, len, len bytes |
//! | 0x08 / 0x09 | STREAM / STREAM+FIN | offset, len, len bytes |
//! | 0x10 | MAX_DATA | maximum |
//! | 0x14 | DATA_BLOCKED | limit |
//! | 0x1c | CLOSE | code, reason_len (≤ 64), reason bytes |
//! | 0x1e | HANDSHAKE_DONE | none |
//!
//! ACK ranges follow RFC 9000 §19.3.1. The decoder never panics: malformed input is a
//! [`FrameError`], after which [`Frames`] stops.

use core::ops::{Range, RangeInclusive};
use core::time::Duration;

use super::varint;

const PADDING: u8 = 0x00;
const PING: u8 = 0x01;
const ACK: u8 = 0x02;
const CRYPTO: u8 = 0x06;
const STREAM: u8 = 0x08;
const STREAM_FIN: u8 = 0x09;
const MAX_DATA: u8 = 0x10;
const DATA_BLOCKED: u8 = 0x14;
const CLOSE: u8 = 0x1c;
const HANDSHAKE_DONE: u8 = 0x1e;

/// ACK delays travel in units of 2^ACK_DELAY_EXPONENT microseconds.
pub(crate) const ACK_DELAY_EXPONENT: u32 = 3;
/// Longest CLOSE reason, in bytes.
pub(crate) const MAX_REASON_LEN: usize = 64;

/// One decoded frame, borrowing its data from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A run of zero bytes.
    Padding,
    /// Asks for an acknowledgement, nothing else.
    Ping,
    /// Acknowledged packet-number ranges.
    Ack(AckFrame<'a>),
    /// Handshake bytes at `offset` of the handshake stream.
    Crypto { offset: u64, data: &'a [u8] },
    /// Session bytes at `offset` of the one stream; `fin`: the stream ends after them.
    Stream {
        offset: u64,
        data: &'a [u8],
        fin: bool,
    },
    /// The peer may send stream bytes up to this offset.
    MaxData(u64),
    /// The sender is blocked at this flow-control limit.
    DataBlocked(u64),
    /// The connection is closed, with an error code and a short reason.
    Close { code: u64, reason: &'a [u8] },
    /// The server confirms the handshake.
    HandshakeDone,
}

impl Frame<'_> {
    /// Whether receiving this frame obliges the receiver to acknowledge the packet.
    pub(crate) fn is_ack_eliciting(&self) -> bool {
        !matches!(self, Frame::Padding | Frame::Ack(_) | Frame::Close { .. })
    }
}

/// A validated ACK frame: every range it yields is non-empty and within `0..=largest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckFrame<'a> {
    /// The largest acknowledged packet number.
    pub(crate) largest: u64,
    /// The raw ACK delay field, in units of 2^[`ACK_DELAY_EXPONENT`] microseconds.
    pub(crate) delay: u64,
    /// The first range covers `largest - first_range..=largest` (validated).
    first_range: u64,
    /// Exactly the (gap, len) pairs, already checked not to underflow.
    rest: &'a [u8],
}

impl<'a> AckFrame<'a> {
    /// The ACK delay (saturating at the largest representable duration).
    pub(crate) fn ack_delay(&self) -> Duration {
        Duration::from_micros(self.delay.saturating_mul(1 << ACK_DELAY_EXPONENT))
    }

    /// The acknowledged ranges, newest (largest packet numbers) first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = RangeInclusive<u64>> + 'a {
        let mut first = Some(self.largest.saturating_sub(self.first_range)..=self.largest);
        let mut prev_start = self.largest.saturating_sub(self.first_range);
        let mut rest = self.rest;
        core::iter::from_fn(move || {
            if let Some(r) = first.take() {
                return Some(r);
            }
            // Validated at decode time: none of these fail.
            let (end, start, n) = next_range(prev_start, rest)?;
            rest = rest.get(n..)?;
            prev_start = start;
            Some(start..=end)
        })
    }
}

/// Decode the (gap, len) pair at the start of `buf` against the previous range's smallest
/// packet number: the next range's largest and smallest, and the bytes taken. `None` if
/// truncated or the range would go below 0.
fn next_range(prev_start: u64, buf: &[u8]) -> Option<(u64, u64, usize)> {
    let (gap, a) = varint::read(buf)?;
    let (len, b) = varint::read(buf.get(a..)?)?;
    let end = prev_start.checked_sub(gap)?.checked_sub(2)?;
    let start = end.checked_sub(len)?;
    Some((end, start, a + b))
}

/// Why a payload failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A frame runs past the end of the payload.
    Truncated,
    /// A type byte this version does not know.
    UnknownType(u8),
    /// An ACK range that goes below packet number 0.
    BadAck,
    /// A STREAM or CRYPTO frame ending past 2^62 - 1, or a CLOSE reason over 64 bytes.
    TooLong,
}

/// The frames of one payload, in order. After the first error it yields `None`.
#[derive(Debug, Clone)]
pub(crate) struct Frames<'a> {
    buf: &'a [u8],
}

impl<'a> Frames<'a> {
    /// Iterate over the frames of a decrypted payload.
    pub(crate) fn new(payload: &'a [u8]) -> Self {
        Frames { buf: payload }
    }

    fn varint(&mut self) -> Result<u64, FrameError> {
        let (v, n) = varint::read(self.buf).ok_or(FrameError::Truncated)?;
        self.buf = self.buf.get(n..).ok_or(FrameError::Truncated)?;
        Ok(v)
    }

    fn bytes(&mut self, len: u64) -> Result<&'a [u8], FrameError> {
        let len = usize::try_from(len).map_err(|_| FrameError::Truncated)?;
        if len > self.buf.len() {
            return Err(FrameError::Truncated);
        }
        let (data, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(data)
    }

    /// `offset`, `len`, then `len` bytes, ending at most at [`varint::MAX`].
    fn offset_data(&mut self) -> Result<(u64, &'a [u8]), FrameError> {
        let offset = self.varint()?;
        let len = self.varint()?;
        if offset.checked_add(len).is_none_or(|end| end > varint::MAX) {
            return Err(FrameError::TooLong);
        }
        Ok((offset, self.bytes(len)?))
    }

    fn ack(&mut self) -> Result<AckFrame<'a>, FrameError> {
        let largest = self.varint()?;
        let delay = self.varint()?;
        let count = self.varint()?;
        let first_range = self.varint()?;
        let mut prev_start = largest.checked_sub(first_range).ok_or(FrameError::BadAck)?;
        let all = self.buf;
        let mut used = 0usize;
        // Each pair takes at least two bytes, so this loop is bounded by the payload length.
        for _ in 0..count {
            let rest = all.get(used..).ok_or(FrameError::Truncated)?;
            let (gap, a) = varint::read(rest).ok_or(FrameError::Truncated)?;
            let (len, b) = rest
                .get(a..)
                .and_then(varint::read)
                .ok_or(FrameError::Truncated)?;
            let end = prev_start
                .checked_sub(gap)
                .and_then(|e| e.checked_sub(2))
                .ok_or(FrameError::BadAck)?;
            prev_start = end.checked_sub(len).ok_or(FrameError::BadAck)?;
            used += a + b;
        }
        let (rest, tail) = all.split_at_checked(used).ok_or(FrameError::Truncated)?;
        self.buf = tail;
        Ok(AckFrame {
            largest,
            delay,
            first_range,
            rest,
        })
    }

    fn frame(&mut self) -> Result<Frame<'a>, FrameError> {
        let Some((&ty, rest)) = self.buf.split_first() else {
            return Err(FrameError::Truncated);
        };
        self.buf = rest;
        Ok(match ty {
            PADDING => {
                let run = self.buf.iter().take_while(|&&b| b == 0).count();
                self.buf = self.buf.get(run..).unwrap_or_default();
                Frame::Padding
            }
            PING => Frame::Ping,
            ACK => Frame::Ack(self.ack()?),
            CRYPTO => {
                let (offset, data) = self.offset_data()?;
                Frame::Crypto { offset, data }
            }
            STREAM | STREAM_FIN => {
                let (offset, data) = self.offset_data()?;
                Frame::Stream {
                    offset,
                    data,
                    fin: ty == STREAM_FIN,
                }
            }
            MAX_DATA => Frame::MaxData(self.varint()?),
            DATA_BLOCKED => Frame::DataBlocked(self.varint()?),
            CLOSE => {
                let code = self.varint()?;
                let len = self.varint()?;
                if len > MAX_REASON_LEN as u64 {
                    return Err(FrameError::TooLong);
                }
                Frame::Close {
                    code,
                    reason: self.bytes(len)?,
                }
            }
            HANDSHAKE_DONE => Frame::HandshakeDone,
            other => return Err(FrameError::UnknownType(other)),
        })
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let r = self.frame();
        if r.is_err() {
            self.buf = &[];
        }
        Some(r)
    }
}

/// Write the one-byte frame `ty`.
fn encode_type(ty: u8, out: &mut [u8]) -> Option<usize> {
    *out.first_mut()? = ty;
    Some(1)
}

/// Write `ty` then the varint `v`.
fn encode_type_varint(ty: u8, v: u64, out: &mut [u8]) -> Option<usize> {
    if out.len() < 1 + varint::size(v) {
        return None;
    }
    out[0] = ty;
    Some(1 + varint::write(v, &mut out[1..])?)
}

/// PING. `None` if `out` is empty.
pub(crate) fn encode_ping(out: &mut [u8]) -> Option<usize> {
    encode_type(PING, out)
}

/// HANDSHAKE_DONE. `None` if `out` is empty.
pub(crate) fn encode_handshake_done(out: &mut [u8]) -> Option<usize> {
    encode_type(HANDSHAKE_DONE, out)
}

/// MAX_DATA(v), `v` at most [`varint::MAX`].
pub(crate) fn encode_max_data(v: u64, out: &mut [u8]) -> Option<usize> {
    encode_type_varint(MAX_DATA, v, out)
}

/// DATA_BLOCKED(v), `v` at most [`varint::MAX`].
pub(crate) fn encode_data_blocked(v: u64, out: &mut [u8]) -> Option<usize> {
    encode_type_varint(DATA_BLOCKED, v, out)
}

/// CLOSE with `code` and the first 64 bytes of `reason` (a longer reason is cut).
pub(crate) fn encode_close(code: u64, reason: &[u8], out: &mut [u8]) -> Option<usize> {
    let reason = reason.get(..MAX_REASON_LEN).unwrap_or(reason);
    let len = reason.len() as u64;
    let total = 1 + varint::size(code) + varint::size(len) + reason.len();
    let out = out.get_mut(..total)?;
    out[0] = CLOSE;
    let mut pos = 1;
    pos += varint::write(code, &mut out[pos..])?;
    pos += varint::write(len, &mut out[pos..])?;
    out[pos..].copy_from_slice(reason);
    Some(total)
}

/// `n` bytes of PADDING (zeros). `None` if `out` is shorter than `n`.
pub(crate) fn encode_padding(out: &mut [u8], n: usize) -> Option<usize> {
    out.get_mut(..n)?.fill(0);
    Some(n)
}

/// Bytes of a STREAM or CRYPTO header (type, offset, length) for `len` data bytes at `offset`.
pub(crate) fn stream_header_size(offset: u64, len: usize) -> usize {
    1 + varint::size(offset) + varint::size(len as u64)
}

fn encode_data_header(ty: u8, offset: u64, len: usize, out: &mut [u8]) -> Option<usize> {
    let len = len as u64;
    debug_assert!(offset.checked_add(len).is_some_and(|e| e <= varint::MAX));
    let total = 1 + varint::size(offset) + varint::size(len);
    let out = out.get_mut(..total)?;
    out[0] = ty;
    let n = varint::write(offset, &mut out[1..])?;
    varint::write(len, &mut out[1 + n..])?;
    Some(total)
}

/// The header of a STREAM frame (STREAM+FIN if `fin`) of `len` bytes at `offset`; the caller
/// copies the `len` data bytes right after it. `None` if the header does not fit.
pub(crate) fn encode_stream_header(
    offset: u64,
    len: usize,
    fin: bool,
    out: &mut [u8],
) -> Option<usize> {
    let ty = if fin { STREAM_FIN } else { STREAM };
    encode_data_header(ty, offset, len, out)
}

/// The header of a CRYPTO frame of `len` bytes at `offset` (data follows, as for STREAM).
pub(crate) fn encode_crypto_header(offset: u64, len: usize, out: &mut [u8]) -> Option<usize> {
    encode_data_header(CRYPTO, offset, len, out)
}

/// The most data bytes at `offset` that fit with their STREAM/CRYPTO header in `room` bytes
/// (0 if not even one does), never past [`varint::MAX`].
pub(crate) fn max_stream_data(offset: u64, room: usize) -> usize {
    let Some(avail) = room.checked_sub(1 + varint::size(offset)) else {
        return 0;
    };
    let limit = varint::MAX.saturating_sub(offset);
    // The length field takes 1, 2, 4 or 8 bytes: the best of each width, capped at the
    // largest length that width holds.
    [
        (1usize, (1u64 << 6) - 1),
        (2, (1 << 14) - 1),
        (4, (1 << 30) - 1),
        (8, varint::MAX),
    ]
    .into_iter()
    .filter_map(|(width, cap)| {
        let n = avail.checked_sub(width)? as u64;
        Some(n.min(cap).min(limit) as usize)
    })
    .max()
    .unwrap_or(0)
}

/// Coalesces adjacent ranges of a descending sequence, skips empty ones, and ends at the first
/// range that overlaps or is out of order (a caller bug, never peer input).
struct Descending<I> {
    inner: I,
    pending: Option<Range<u64>>,
}

impl<I: Iterator<Item = Range<u64>>> Iterator for Descending<I> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        let mut cur = self.pending.take()?;
        for r in self.inner.by_ref() {
            if r.start >= r.end {
                continue;
            }
            if r.end == cur.start {
                cur.start = r.start;
            } else {
                if r.end < cur.start {
                    self.pending = Some(r);
                }
                break;
            }
        }
        Some(cur)
    }
}

/// An ACK frame for `ranges` (non-empty, disjoint, descending: newest first; end exclusive),
/// with the delay in microseconds. Writes at most `max_ranges` ranges (at least one) and stops
/// early when the next range does not fit in `out`; `None` if not even the first range fits
/// (or there is none). Adjacent ranges are merged; an overlapping or ascending range ends the
/// list.
pub(crate) fn encode_ack(
    ranges: impl Iterator<Item = Range<u64>>,
    delay_micros: u64,
    max_ranges: usize,
    out: &mut [u8],
) -> Option<usize> {
    let mut inner = ranges;
    let first = inner.by_ref().find(|r| r.start < r.end)?;
    let mut ranges = Descending {
        inner,
        pending: Some(first),
    };
    let first = ranges.next()?;
    let largest = first.end - 1;
    if largest > varint::MAX {
        return None;
    }
    let delay = (delay_micros >> ACK_DELAY_EXPONENT).min(varint::MAX);
    let first_range = largest - first.start;

    // type, largest, delay | count (1 byte reserved) | first_range, pairs...
    let head = 1 + varint::size(largest) + varint::size(delay);
    let mut body = varint::size(first_range);
    if head + 1 + body > out.len() {
        return None;
    }
    out[0] = ACK;
    let mut pos = 1;
    pos += varint::write(largest, &mut out[pos..])?;
    varint::write(delay, &mut out[pos..])?;
    varint::write(first_range, &mut out[head + 1..])?;

    let mut count = 0u64;
    let mut prev_start = first.start;
    for r in ranges.take(max_ranges.saturating_sub(1)) {
        let gap = prev_start - r.end - 1;
        let len = r.end - 1 - r.start;
        let pair = varint::size(gap) + varint::size(len);
        // The count field may grow with this range: check the final layout fits.
        if head + varint::size(count + 1) + body + pair > out.len() {
            break;
        }
        let at = head + 1 + body;
        let n = varint::write(gap, &mut out[at..])?;
        varint::write(len, &mut out[at + n..])?;
        body += pair;
        count += 1;
        prev_start = r.start;
    }
    let count_size = varint::size(count);
    if count_size > 1 {
        out.copy_within(head + 1..head + 1 + body, head + count_size);
    }
    varint::write(count, &mut out[head..])?;
    Some(head + count_size + body)
}

#[cfg(test)]
mod tests;
