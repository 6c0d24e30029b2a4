//! The stream record layer (TCP): `rtype u8 | len u24 | ciphertext | tag`, header as AAD,
//! implicit per-direction counter nonces.
//!
//! Over datagrams (`crate::dgram`) the same records are *framed* but not sealed: every packet
//! that carries them is sealed instead, so the record is `rtype u8 | len u24 | plaintext` and
//! `len` counts the plaintext only.

#[cfg(any(test, feature = "testing"))]
use core::ops::Range;

use crate::crypto::aead::TAG_LEN;
use crate::error::{RecordError, SessionError, Violation};
use crate::record::keys::{DirectionKeys, Exhausted};
use crate::wire::CHUNK;
use crate::wire::DATA_HEADER_LEN;

/// Record header: type byte and 24-bit big-endian length of ciphertext + tag.
pub(crate) const HEADER_LEN: usize = 4;
/// An ordinary record.
pub(crate) const TYPE_NORMAL: u8 = 0x17;
/// The last record of a direction.
pub(crate) const TYPE_FINAL: u8 = 0x18;
/// Largest plaintext in one record: a full DATA frame plus room for small control frames.
pub(crate) const MAX_PLAINTEXT: usize = DATA_HEADER_LEN + CHUNK + 2048;
/// Smallest plaintext limit a peer may advertise: one largest control frame fits.
pub(crate) const MIN_PLAINTEXT: usize = 16 * 1024 + 64;
/// Largest record on the wire, header included.
pub(crate) const MAX_RECORD: usize = HEADER_LEN + MAX_PLAINTEXT + TAG_LEN;
/// Bytes a record adds around its plaintext.
pub(crate) const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Seals outgoing records.
pub(crate) struct RecordSealer {
    /// `None`: framed only (datagram transport; the packets are sealed).
    keys: Option<DirectionKeys>,
    finished: bool,
}

impl RecordSealer {
    pub(crate) fn new(keys: DirectionKeys) -> Self {
        RecordSealer {
            keys: Some(keys),
            finished: false,
        }
    }

    /// A sealer that only frames records (no tag): the datagram transport seals each packet.
    pub(crate) fn framed() -> Self {
        RecordSealer {
            keys: None,
            finished: false,
        }
    }

    /// Whether the FINAL record has been sealed.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Seal the plaintext at `buf[HEADER_LEN..HEADER_LEN + plain_len]` in place, writing the
    /// header in front and the tag behind it. Returns the record length. The caller guarantees
    /// `1 <= plain_len <= MAX_PLAINTEXT` and `buf.len() >= plain_len + OVERHEAD`.
    pub(crate) fn seal(
        &mut self,
        buf: &mut [u8],
        plain_len: usize,
        fin: bool,
    ) -> Result<usize, Exhausted> {
        debug_assert!(!self.finished, "record sealed after FINAL");
        debug_assert!((1..=MAX_PLAINTEXT).contains(&plain_len));
        let tag_len = if self.keys.is_some() { TAG_LEN } else { 0 };
        let body_len = plain_len + tag_len;
        let len = body_len as u32;
        let header = [
            if fin { TYPE_FINAL } else { TYPE_NORMAL },
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
        ];
        buf[..HEADER_LEN].copy_from_slice(&header);
        if let Some(keys) = &mut self.keys {
            let nonce = keys.nonce();
            let (_, rest) = buf.split_at_mut(HEADER_LEN);
            let tag = keys
                .key()
                .seal_in_place(&nonce, &header, &mut rest[..plain_len]);
            rest[plain_len..body_len].copy_from_slice(&tag);
            keys.advance()?;
        }
        self.finished = fin;
        Ok(HEADER_LEN + body_len)
    }
}

/// The header of the next record, validated from its four bytes alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// FINAL record.
    pub(crate) fin: bool,
    /// Whole record length on the wire.
    pub(crate) total: usize,
}

/// Parse and bound-check the header at the front of `input`; `Ok(None)` if fewer than four
/// bytes are there. `max_plaintext` is what this side advertised.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn peek_header(
    input: &[u8],
    max_plaintext: usize,
) -> Result<Option<Header>, SessionError> {
    peek_header_with(input, max_plaintext, TAG_LEN)
}

/// [`peek_header`] for records whose body ends with a `tag_len`-byte tag (0: framed records).
fn peek_header_with(
    input: &[u8],
    max_plaintext: usize,
    tag_len: usize,
) -> Result<Option<Header>, SessionError> {
    let Some(h) = input.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let fin = match h[0] {
        TYPE_NORMAL => false,
        TYPE_FINAL => true,
        other => return Err(RecordError::UnknownType(other).into()),
    };
    let len = u32::from_be_bytes([0, h[1], h[2], h[3]]);
    let body = len as usize;
    if body <= tag_len || body > MAX_PLAINTEXT + tag_len {
        return Err(RecordError::BadLength(len).into());
    }
    if body > max_plaintext + tag_len {
        return Err(Violation::RecordTooLarge.into());
    }
    Ok(Some(Header {
        fin,
        total: HEADER_LEN + body,
    }))
}

/// One opened record: its plaintext sits in place at `plaintext` inside the input buffer.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    /// FINAL record.
    pub(crate) fin: bool,
    /// Where the plaintext is, in the input buffer.
    pub(crate) plaintext: Range<usize>,
    /// Bytes of input the record took.
    pub(crate) consumed: usize,
}

/// Opens incoming records.
pub(crate) struct RecordOpener {
    /// `None`: framed only (datagram transport; the packets were opened already).
    keys: Option<DirectionKeys>,
    max_plaintext: usize,
}

impl RecordOpener {
    pub(crate) fn new(keys: DirectionKeys, max_plaintext: usize) -> Self {
        RecordOpener {
            keys: Some(keys),
            max_plaintext,
        }
    }

    /// An opener of framed records (no tag): the datagram transport opened each packet.
    pub(crate) fn framed(max_plaintext: usize) -> Self {
        RecordOpener {
            keys: None,
            max_plaintext,
        }
    }

    fn tag_len(&self) -> usize {
        if self.keys.is_some() { TAG_LEN } else { 0 }
    }

    /// The header of the record at the front of `input` (see [`peek_header`]).
    pub(crate) fn peek(&self, input: &[u8]) -> Result<Option<Header>, SessionError> {
        peek_header_with(input, self.max_plaintext, self.tag_len())
    }

    /// Open the record at the front of `input` in place (tests, fuzzing and benches; the
    /// session uses [`RecordOpener::open_into`]). `Ok(None)`: incomplete, need more.
    /// A tag failure is [`SessionError::Authentication`] and leaves the nonce counter as it was.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn open(&mut self, input: &mut [u8]) -> Result<Option<Opened>, SessionError> {
        let Some(h) = self.peek(input)? else {
            return Ok(None);
        };
        if input.len() < h.total {
            return Ok(None);
        }
        let Some(keys) = &mut self.keys else {
            return Ok(Some(Opened {
                fin: h.fin,
                plaintext: HEADER_LEN..h.total,
                consumed: h.total,
            }));
        };
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&input[..HEADER_LEN]);
        let body = &mut input[HEADER_LEN..h.total];
        let (ct, tag) = body.split_at_mut(body.len() - TAG_LEN);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        let nonce = keys.nonce();
        keys.key()
            .open_in_place(&nonce, &header, ct, &t)
            .map_err(|_| SessionError::Authentication)?;
        keys.advance()
            .map_err(|_| SessionError::Record(RecordError::KeysExhausted))?;
        Ok(Some(Opened {
            fin: h.fin,
            plaintext: HEADER_LEN..h.total - TAG_LEN,
            consumed: h.total,
        }))
    }
}

impl RecordOpener {
    /// [`RecordOpener::open`] without touching `input`: the record at its front is decrypted
    /// into `out[..n]` (grown if it is shorter, never shrunk: a reused buffer is not zero-filled
    /// again) and `Ok(Some((n, fin, consumed)))` says how much. `Ok(None)`: incomplete.
    pub(crate) fn open_into(
        &mut self,
        input: &[u8],
        out: &mut alloc::vec::Vec<u8>,
    ) -> Result<Option<(usize, bool, usize)>, SessionError> {
        let Some(h) = self.peek(input)? else {
            return Ok(None);
        };
        let Some(record) = input.get(..h.total) else {
            return Ok(None);
        };
        let body = &record[HEADER_LEN..];
        let Some(keys) = &mut self.keys else {
            grow(out, body.len()).copy_from_slice(body);
            return Ok(Some((body.len(), h.fin, h.total)));
        };
        let (ct, tag) = body.split_at(body.len() - TAG_LEN);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        let nonce = keys.nonce();
        keys.key()
            .open_to(&nonce, &record[..HEADER_LEN], ct, grow(out, ct.len()), &t)
            .map_err(|_| SessionError::Authentication)?;
        keys.advance()
            .map_err(|_| SessionError::Record(RecordError::KeysExhausted))?;
        Ok(Some((ct.len(), h.fin, h.total)))
    }
}

/// `out[..n]`, growing `out` (zero-filled) only if it is shorter: a reused buffer keeps its
/// length, so filling it again costs no zeroing.
pub(crate) fn grow(out: &mut alloc::vec::Vec<u8>, n: usize) -> &mut [u8] {
    if out.len() < n {
        out.resize(n, 0);
    }
    &mut out[..n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn pair(interval: u64) -> (RecordSealer, RecordOpener) {
        (
            RecordSealer::new(DirectionKeys::new([3; 32], interval)),
            RecordOpener::new(DirectionKeys::new([3; 32], interval), MAX_PLAINTEXT),
        )
    }

    fn record(s: &mut RecordSealer, msg: &[u8], fin: bool) -> Vec<u8> {
        let mut buf = vec![0u8; msg.len() + OVERHEAD];
        buf[HEADER_LEN..HEADER_LEN + msg.len()].copy_from_slice(msg);
        let n = s.seal(&mut buf, msg.len(), fin).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn seal_open_in_order_across_rekeys() {
        let (mut s, mut o) = pair(3);
        for i in 0..10u8 {
            let mut r = record(&mut s, &[i; 100], i == 9);
            let opened = o.open(&mut r).unwrap().unwrap();
            assert_eq!(&r[opened.plaintext.clone()], &[i; 100]);
            assert_eq!(opened.fin, i == 9);
            assert_eq!(opened.consumed, r.len());
        }
        assert!(s.is_finished());
    }

    #[test]
    fn open_into_matches_open_and_leaves_input_alone() {
        let (mut s, mut o) = pair(2);
        let (_, mut o2) = pair(2);
        let mut out = vec![0xee; 3];
        for i in 0..5u8 {
            let r = record(&mut s, &[i; 300], false);
            let (n, fin, used) = o.open_into(&r, &mut out).unwrap().unwrap();
            assert_eq!((&out[..n], fin, used), (&[i; 300][..], false, r.len()));
            let mut copy = r.clone();
            let opened = o2.open(&mut copy).unwrap().unwrap();
            assert_eq!(&copy[opened.plaintext], &out[..n]);
            // A shorter record reuses the buffer without shrinking it.
            assert!(out.len() >= 300);
        }
        // Incomplete, tampered: nothing opened, the counter stays.
        let r = record(&mut s, b"tail", false);
        assert_eq!(o.open_into(&r[..r.len() - 1], &mut out), Ok(None));
        let mut bad = r.clone();
        bad[HEADER_LEN] ^= 1;
        assert_eq!(
            o.open_into(&bad, &mut out),
            Err(SessionError::Authentication)
        );
        let (n, _, _) = o.open_into(&r, &mut out).unwrap().unwrap();
        assert_eq!(&out[..n], b"tail");
        // Framed records are copied out as they are.
        let mut f = RecordOpener::framed(MAX_PLAINTEXT);
        let (n, fin, used) = f
            .open_into(&[TYPE_FINAL, 0, 0, 2, b'h', b'i'], &mut out)
            .unwrap()
            .unwrap();
        assert_eq!((&out[..n], fin, used), (&b"hi"[..], true, 6));
    }

    #[test]
    fn replay_reorder_and_relabel_fail() {
        let (mut s, mut o) = pair(1 << 20);
        let r1 = record(&mut s, b"one", false);
        let r2 = record(&mut s, b"two", false);
        // Reordered: r2 first.
        assert_eq!(o.open(&mut r2.clone()), Err(SessionError::Authentication));
        // The failure did not advance the counter: r1 still opens, then r1 again (replay) fails.
        assert!(o.open(&mut r1.clone()).unwrap().is_some());
        assert_eq!(o.open(&mut r1.clone()), Err(SessionError::Authentication));
        // Relabelled as FINAL.
        let mut fake = r2.clone();
        fake[0] = TYPE_FINAL;
        assert_eq!(o.open(&mut fake), Err(SessionError::Authentication));
        assert!(o.open(&mut r2.clone()).unwrap().is_some());
    }

    #[test]
    fn framed_records_carry_plaintext_and_still_check_headers() {
        let (mut s, mut o) = (RecordSealer::framed(), RecordOpener::framed(MAX_PLAINTEXT));
        let mut buf = vec![0u8; 3 + OVERHEAD];
        buf[HEADER_LEN..HEADER_LEN + 3].copy_from_slice(b"abc");
        let n = s.seal(&mut buf, 3, true).unwrap();
        assert_eq!(&buf[..n], &[TYPE_FINAL, 0, 0, 3, b'a', b'b', b'c']);
        let opened = o.open(&mut buf[..n]).unwrap().unwrap();
        assert_eq!(
            (opened.fin, opened.plaintext, opened.consumed),
            (true, 4..7, 7)
        );
        assert!(s.is_finished());
        // An empty body is as malformed framed as it is sealed.
        assert_eq!(
            o.open(&mut [TYPE_NORMAL, 0, 0, 0]),
            Err(SessionError::Record(RecordError::BadLength(0)))
        );
    }

    #[test]
    fn header_checked_before_body() {
        let mut o = pair(8).1;
        assert_eq!(o.open(&mut [0x17, 0x00]), Ok(None));
        assert_eq!(
            o.open(&mut [0x16, 0, 0, 20]),
            Err(SessionError::Record(RecordError::UnknownType(0x16)))
        );
        assert_eq!(
            o.open(&mut [0x17, 0xff, 0xff, 0xff]),
            Err(SessionError::Record(RecordError::BadLength(0xff_ffff)))
        );
        assert_eq!(
            o.open(&mut [0x17, 0, 0, 16]),
            Err(SessionError::Record(RecordError::BadLength(16)))
        );
        // A valid header with a missing body just waits.
        assert_eq!(o.open(&mut [0x17, 0, 1, 0]), Ok(None));
        let mut small = RecordOpener::new(DirectionKeys::new([3; 32], 8), MIN_PLAINTEXT);
        let len = (MIN_PLAINTEXT + TAG_LEN + 1) as u32;
        let hdr = [0x17, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        assert_eq!(
            small.open(&mut hdr.clone()),
            Err(SessionError::Protocol(Violation::RecordTooLarge))
        );
    }
}
