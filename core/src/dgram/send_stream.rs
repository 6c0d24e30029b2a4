//! The sending half of the reliable byte stream: what the session writes, the transport sends,
//! resends when lost and frees once acknowledged.
#![allow(dead_code)]

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

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

/// Bytes of a piece allocated for a stream that already holds at least this much: a bulk
/// flow's records go into pieces of this size, a small flow's into pieces of one record.
const PIECE_LEN: usize = 1 << 20;

/// A run of the stream's bytes in one buffer: `[start, start + used)` is `data[..used]`;
/// `data[used..]` is initialized room for the next bytes.
#[derive(Debug, Clone)]
struct Piece {
    start: u64,
    data: Vec<u8>,
    used: usize,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.used as u64
    }
}

/// An ordered byte stream from offset 0. Holds the bytes from the end of the acknowledged
/// prefix to the end of what was written: at most `capacity` bytes (counted; the memory is
/// that plus the acknowledged head of the first piece and the room of the last one).
///
/// The bytes sit in a queue of pieces, written in place by [`write_with`](Self::write_with)
/// (the session seals a record straight into the stream, no copy) and recycled once
/// acknowledged, so a bulk flow allocates and zero-fills no memory in its steady state.
#[derive(Debug, Clone)]
pub(crate) struct SendStream {
    /// Pieces in stream order, contiguous: the first holds `base`, the last ends at
    /// `written()`.
    pieces: VecDeque<Piece>,
    /// An acknowledged piece's buffer, kept for the next piece.
    spare: Option<Vec<u8>>,
    capacity: usize,
    /// End of the acknowledged prefix.
    base: u64,
    /// End of everything written.
    end: u64,
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
            pieces: VecDeque::new(),
            spare: None,
            capacity,
            base: 0,
            end: 0,
            send_offset: 0,
            lost: RangeSet::new(),
            acked: RangeSet::new(),
            fin: Fin::Open,
        }
    }

    /// Appends as much of `data` as fits; returns how much. Nothing after [`finish`](Self::finish).
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        self.write_with(data.len(), |room| {
            room.copy_from_slice(&data[..room.len()]);
            room.len()
        })
    }

    /// Appends up to `max` bytes (within [`room`](Self::room)) that `fill` writes into the
    /// slice it gets, returning how many it wrote (more than the slice counts as all of it).
    pub(crate) fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> usize {
        let max = max.min(self.room());
        if max == 0 {
            return 0;
        }
        let fits = self
            .pieces
            .back()
            .is_some_and(|p| p.data.len() - p.used >= max);
        if !fits {
            let len = if self.unacked() >= PIECE_LEN {
                PIECE_LEN.max(max)
            } else {
                max
            };
            let data = match self.spare.take() {
                Some(d) if d.len() >= len => d,
                _ => vec![0; len],
            };
            self.pieces.push_back(Piece {
                start: self.end,
                data,
                used: 0,
            });
        }
        let Some(piece) = self.pieces.back_mut() else {
            return 0;
        };
        let n = fill(&mut piece.data[piece.used..piece.used + max]).min(max);
        piece.used += n;
        self.end += n as u64;
        n
    }

    /// How many bytes [`write`](Self::write) takes now.
    pub(crate) fn room(&self) -> usize {
        if self.fin != Fin::Open {
            return 0;
        }
        self.capacity.saturating_sub(self.unacked())
    }

    /// Ends the stream after the bytes written so far.
    pub(crate) fn finish(&mut self) {
        if self.fin == Fin::Open {
            self.fin = Fin::Pending;
        }
    }

    /// Give the buffer's memory back when it holds nothing (a quiet connection keeps none).
    pub(crate) fn release_if_empty(&mut self) {
        if self.unacked() == 0 {
            self.pieces = VecDeque::new();
            self.spare = None;
        }
    }

    /// End offset of everything written.
    pub(crate) fn written(&self) -> u64 {
        self.end
    }

    /// Bytes held: written and not yet part of the acknowledged prefix.
    pub(crate) fn unacked(&self) -> usize {
        usize::try_from(self.end - self.base).unwrap_or(usize::MAX)
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
        let first = self.pieces.partition_point(|p| p.end() <= offset);
        let mut at = offset;
        let mut out = &mut out[..];
        for piece in self.pieces.range(first..) {
            if out.is_empty() {
                break;
            }
            let Some(skip) = at.checked_sub(piece.start) else {
                return;
            };
            let Some(src) = usize::try_from(skip)
                .ok()
                .and_then(|skip| piece.data[..piece.used].get(skip..))
            else {
                return;
            };
            let n = src.len().min(out.len());
            out[..n].copy_from_slice(&src[..n]);
            out = &mut out[n..];
            at += n as u64;
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
            self.base = r.end;
            self.free_acked_pieces();
        }
    }

    /// Pops the pieces wholly below the acknowledged prefix, keeping the largest buffer
    /// for the next piece.
    fn free_acked_pieces(&mut self) {
        while self.pieces.front().is_some_and(|p| p.end() <= self.base) {
            let Some(piece) = self.pieces.pop_front() else {
                break;
            };
            if self
                .spare
                .as_ref()
                .is_none_or(|s| s.len() < piece.data.len())
            {
                self.spare = Some(piece.data);
            }
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
        self.fin == Fin::Acked && self.unacked() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn chunk(offset: u64, len: usize, fin: bool) -> Option<Chunk> {
        Some(Chunk { offset, len, fin })
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn sends_new_bytes_within_the_limits_and_frees_acked_prefix() {
        let data = bytes(5000);
        let mut s = SendStream::new(4096);
        assert_eq!(s.write(&data), 4096);
        assert_eq!((s.room(), s.written(), s.unacked()), (0, 4096, 4096));
        assert!(!s.has_pending(0));
        assert_eq!(s.poll(1400, 0), None);
        assert_eq!(s.poll(1400, 3000), chunk(0, 1400, false));
        assert_eq!(s.poll(1400, 3000), chunk(1400, 1400, false));
        assert_eq!(s.poll(1400, 3000), chunk(2800, 200, false));
        assert!(!s.has_pending(3000) && s.has_pending(3001));
        let mut out = vec![0; 1400];
        s.copy_out(1400, &mut out);
        assert_eq!(out, data[1400..2800]);
        // Out-of-order ack frees nothing until the prefix is acknowledged.
        s.on_acked(1400, 1400, false);
        assert_eq!(s.unacked(), 4096);
        s.on_acked(0, 1400, false);
        assert_eq!((s.unacked(), s.room()), (4096 - 2800, 2800));
        assert_eq!(s.write(&data[4096..]), 904);
        let mut out = vec![0; 2000];
        s.copy_out(2800, &mut out);
        assert_eq!(out, data[2800..4800]);
    }

    #[test]
    fn lost_bytes_go_first_minus_what_was_acked_since() {
        let mut s = SendStream::new(10_000);
        s.write(&bytes(6000));
        for _ in 0..4 {
            s.poll(1000, u64::MAX);
        }
        // Packet with [1000, 3000) lost, but [1500, 2000) was acked through another packet.
        s.on_acked(1500, 500, false);
        s.on_lost(1000, 2000, false);
        s.on_lost(0, 500, false);
        s.on_acked(0, 200, false);
        assert!(s.has_pending(0));
        assert_eq!(s.poll(1000, 0), chunk(200, 300, false));
        assert_eq!(s.poll(300, 0), chunk(1000, 300, false));
        assert_eq!(s.poll(1000, 0), chunk(1300, 200, false));
        assert_eq!(s.poll(1000, 0), chunk(2000, 1000, false));
        assert_eq!(s.poll(1000, 0), None);
        assert_eq!(s.poll(0, u64::MAX), None);
        assert_eq!(s.poll(5000, u64::MAX), chunk(4000, 2000, false));
        // Losing what was acked already changes nothing.
        s.on_lost(1500, 500, false);
        assert!(!s.has_pending(u64::MAX));
    }

    #[test]
    fn fin_rides_on_the_last_bytes_or_alone_and_is_resent_when_lost() {
        let mut s = SendStream::new(100);
        s.write(&bytes(10));
        s.finish();
        assert_eq!((s.write(b"x"), s.room()), (0, 0));
        assert_eq!(s.poll(4, 100), chunk(0, 4, false));
        assert_eq!(s.poll(100, 100), chunk(4, 6, true));
        assert!(!s.has_pending(100));
        s.on_lost(4, 6, true);
        assert_eq!(s.poll(3, 100), chunk(4, 3, false));
        assert_eq!(s.poll(3, 100), chunk(7, 3, true));
        s.on_acked(0, 4, false);
        s.on_acked(4, 3, false);
        s.on_acked(7, 3, true);
        assert!(s.is_acked_all());
        // A lone FIN: nothing written after the last chunk.
        let mut s = SendStream::new(100);
        s.write(b"abc");
        assert_eq!(s.poll(100, 100), chunk(0, 3, false));
        s.finish();
        assert!(s.has_pending(0));
        assert_eq!(s.poll(0, 0), chunk(3, 0, true));
        s.on_lost(3, 0, true);
        assert_eq!(s.poll(100, 100), chunk(3, 0, true));
        s.on_acked(3, 0, true);
        assert!(!s.is_acked_all(), "bytes not acked yet");
        s.on_acked(0, 3, false);
        assert!(s.is_acked_all());
        assert_eq!(s.poll(100, 100), None);
    }

    /// Records written in place (each `fill` writing less than it was offered): a bulk flow
    /// moves to pieces of `PIECE_LEN`, chunks read across piece boundaries, and acknowledged
    /// pieces are recycled, so the steady state allocates nothing.
    #[test]
    fn records_are_written_in_place_and_acked_pieces_recycled() {
        let record = 70_000;
        let mut s = SendStream::new(6 * PIECE_LEN);
        let mut source = Vec::new();
        let write_record = |s: &mut SendStream, source: &mut Vec<u8>| {
            let at = source.len();
            let n = s.write_with(record, |out| {
                let k = out.len() - 1234;
                for (i, b) in out[..k].iter_mut().enumerate() {
                    *b = ((at + i) % 251) as u8;
                }
                k
            });
            source.extend((at..at + n).map(|i| (i % 251) as u8));
            n
        };
        while s.written() < 3 * PIECE_LEN as u64 {
            assert_eq!(write_record(&mut s, &mut source), record - 1234);
        }
        // Small pieces (one record each) until the stream held a piece's worth, then large.
        assert!(s.pieces.iter().any(|p| p.data.len() == record));
        assert_eq!(s.pieces.back().map(|p| p.data.len()), Some(PIECE_LEN));
        assert!(s.pieces.len() < 3 * PIECE_LEN / record);
        // Send it all in 1 400-byte chunks; each reads what was written, across pieces.
        let mut out = vec![0; 1400];
        while let Some(c) = s.poll(1400, u64::MAX) {
            s.copy_out(c.offset, &mut out[..c.len]);
            let at = c.offset as usize;
            assert_eq!(out[..c.len], source[at..at + c.len]);
        }
        // Acknowledge the first two large pieces' worth: their buffer is kept ...
        let big_start = s
            .pieces
            .iter()
            .find(|p| p.data.len() == PIECE_LEN)
            .unwrap()
            .start;
        s.on_acked(0, big_start as usize + 2 * PIECE_LEN, false);
        let spare = s.spare.as_ref().map(|d| (d.as_ptr(), d.len()));
        assert_eq!(spare.map(|(_, len)| len), Some(PIECE_LEN));
        // ... and the next piece is that buffer, not a new allocation.
        let pieces = s.pieces.len();
        while s.pieces.len() == pieces {
            write_record(&mut s, &mut source);
        }
        let back = s.pieces.back().map(|p| p.data.as_ptr());
        assert_eq!(back, spare.map(|(ptr, _)| ptr));
        assert!(s.spare.is_none());
        let from = s.written() - 5000;
        let mut out = vec![0; 5000];
        s.copy_out(from, &mut out);
        assert_eq!(out, source[from as usize..]);
        // Everything acknowledged: a quiet stream gives its memory back.
        while s.poll(1 << 20, u64::MAX).is_some() {}
        s.on_acked(0, s.written() as usize, false);
        assert_eq!(s.unacked(), 0);
        s.release_if_empty();
        assert!(s.pieces.is_empty() && s.spare.is_none());
        assert_eq!(s.pieces.capacity(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(usize),
        /// Offer room for `.0` bytes, write `.1` of them in place.
        WriteWith(usize, usize),
        Finish,
        Poll(usize, u64),
        Ack(usize),
        Lose(usize),
        /// Declared lost but still in flight: may be acknowledged or lost later.
        Spurious(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..3000).prop_map(Op::Write),
            2 => (0usize..3000, 0usize..3000).prop_map(|(m, n)| Op::WriteWith(m, n)),
            1 => Just(Op::Finish),
            5 => (0usize..1500, 0u64..2000).prop_map(|(l, d)| Op::Poll(l, d)),
            3 => any::<usize>().prop_map(Op::Ack),
            2 => any::<usize>().prop_map(Op::Lose),
            1 => any::<usize>().prop_map(Op::Spurious),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random writes, polls, acks and losses: every chunk carries the bytes written at its
        /// offsets, buffered bytes stay within capacity, and once everything is resent and
        /// acknowledged the receiver holds exactly what was written.
        #[test]
        fn delivers_what_was_written(capacity in 1usize..6000, ops in proptest::collection::vec(op(), 0..80)) {
            let mut s = SendStream::new(capacity);
            let mut source = Vec::new();
            let mut got: Vec<Option<u8>> = Vec::new();
            let mut fin_at = None;
            let mut in_flight: Vec<(Chunk, Vec<u8>)> = Vec::new();
            let mut max_data = 0u64;
            let mut acked = RangeSet::new();
            let deliver = |c: &Chunk, b: &[u8], got: &mut Vec<Option<u8>>, fin_at: &mut Option<u64>| {
                let end = c.offset as usize + c.len;
                if got.len() < end {
                    got.resize(end, None);
                }
                for (i, &x) in b.iter().enumerate() {
                    got[c.offset as usize + i] = Some(x);
                }
                if c.fin {
                    *fin_at = Some(end as u64);
                }
            };
            for op in ops {
                match op {
                    Op::Write(n) => {
                        let data = bytes(source.len() + n);
                        let took = s.write(&data[source.len()..]);
                        prop_assert!(took <= n);
                        source.extend_from_slice(&data[source.len()..source.len() + took]);
                    }
                    Op::WriteWith(max, n) => {
                        let data = bytes(source.len() + max);
                        let at = source.len();
                        let took = s.write_with(max, |out| {
                            let k = n.min(out.len());
                            out[..k].copy_from_slice(&data[at..at + k]);
                            k
                        });
                        prop_assert!(took <= max.min(n));
                        source.extend_from_slice(&data[at..at + took]);
                    }
                    Op::Finish => s.finish(),
                    Op::Poll(max_len, grow) => {
                        max_data += grow;
                        let pending = s.has_pending(max_data);
                        let c = s.poll(max_len, max_data);
                        if let Some(c) = c {
                            prop_assert!(pending);
                            prop_assert!(c.len <= max_len && (c.len > 0 || c.fin));
                            prop_assert!(c.offset + c.len as u64 <= max_data.max(c.offset));
                            prop_assert!(c.offset >= s.written() - s.unacked() as u64);
                            let end = c.offset + c.len as u64;
                            prop_assert!(!acked.iter().any(|r| r.start < end && c.offset < r.end));
                            let mut b = vec![0; c.len];
                            s.copy_out(c.offset, &mut b);
                            prop_assert_eq!(&b[..], &source[c.offset as usize..c.offset as usize + c.len]);
                            in_flight.push((c, b));
                        } else if max_len > 0 {
                            prop_assert!(!pending);
                        }
                    }
                    Op::Ack(i) if !in_flight.is_empty() => {
                        let (c, b) = in_flight.swap_remove(i % in_flight.len());
                        s.on_acked(c.offset, c.len, c.fin);
                        acked.insert(c.offset..c.offset + c.len as u64);
                        deliver(&c, &b, &mut got, &mut fin_at);
                    }
                    Op::Spurious(i) if !in_flight.is_empty() => {
                        let (c, _) = in_flight[i % in_flight.len()];
                        s.on_lost(c.offset, c.len, c.fin);
                    }
                    Op::Lose(i) if !in_flight.is_empty() => {
                        let (c, _) = in_flight.swap_remove(i % in_flight.len());
                        s.on_lost(c.offset, c.len, c.fin);
                    }
                    Op::Ack(_) | Op::Lose(_) | Op::Spurious(_) => {}
                }
                prop_assert!(s.unacked() <= capacity);
                prop_assert_eq!(s.written(), source.len() as u64);
            }
            // Drain: everything in flight is lost, then resend and ack until nothing is left.
            s.finish();
            for (c, _) in in_flight.drain(..) {
                s.on_lost(c.offset, c.len, c.fin);
            }
            let mut rounds = 0;
            while let Some(c) = s.poll(1000, u64::MAX) {
                rounds += 1;
                prop_assert!(rounds < 10_000);
                let mut b = vec![0; c.len];
                s.copy_out(c.offset, &mut b);
                s.on_acked(c.offset, c.len, c.fin);
                deliver(&c, &b, &mut got, &mut fin_at);
            }
            prop_assert!(s.is_acked_all());
            prop_assert_eq!(s.unacked(), 0);
            prop_assert_eq!(fin_at, Some(source.len() as u64));
            let got: Vec<u8> = got.iter().map(|b| b.unwrap_or(0xEE)).collect();
            prop_assert_eq!(got.len(), source.len());
            prop_assert!(got == source);
        }
    }
}
