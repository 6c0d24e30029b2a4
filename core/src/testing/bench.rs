//! Hooks for the criterion benches in `benches/` (feature `testing`; unstable).
//!
//! The record layer and the per-chunk compressor are crate-private; these thin wrappers let a
//! bench drive the very code a session runs, with the same buffers and no extra copies:
//! [`RecordSealer::seal`] seals in place inside a record buffer (header in front, tag behind),
//! [`RecordOpener::open`] opens in place, [`RecordOpener::open_into`] decrypts out of place into
//! a reused buffer (the session's receive path), and [`ChunkDeflater`] / [`ChunkInflater`] keep one
//! compressor state across calls, as a session does (unlike
//! [`deflate_chunk`](super::deflate_chunk) and [`inflate_chunk`](super::inflate_chunk), which
//! allocate a fresh state and output buffer per call). [`DgramPacketKey`] protects and
//! unprotects whole datagram packets with the transport's packet key.

use core::ops::Range;

use crate::SessionError;
use crate::compress::{Deflater, InflateError, Inflater};
use crate::dgram::keys::{PacketKey, open_packet, seal_packet};
use crate::dgram::packet::{self, Cid, Header, SHORT_HEADER_LEN, TAG_LEN};
use crate::record::keys::{DirectionKeys, REKEY_INTERVAL};
use crate::record::stream::{self, HEADER_LEN, MAX_PLAINTEXT, OVERHEAD};

/// Bytes in front of a record's plaintext (the record header).
pub const RECORD_HEADER_LEN: usize = HEADER_LEN;
/// Bytes a record adds around its plaintext (header and tag).
pub const RECORD_OVERHEAD: usize = OVERHEAD;
/// Largest plaintext of one record.
pub const RECORD_MAX_PLAINTEXT: usize = MAX_PLAINTEXT;

/// The sealing half of one direction of the stream record layer, keyed from a traffic secret
/// with the real rekey interval.
pub struct RecordSealer(stream::RecordSealer);

impl RecordSealer {
    /// A sealer at sequence number 0 of epoch 0 of `secret`.
    pub fn new(secret: [u8; 32]) -> Self {
        RecordSealer(stream::RecordSealer::new(DirectionKeys::new(
            secret,
            REKEY_INTERVAL,
        )))
    }

    /// Seal the plaintext at `record[RECORD_HEADER_LEN..RECORD_HEADER_LEN + plain_len]` in
    /// place as an ordinary (non-FINAL) record: header written in front, tag behind. Returns
    /// the record length, `plain_len + RECORD_OVERHEAD`.
    ///
    /// # Panics
    /// If `plain_len` is 0 or above [`RECORD_MAX_PLAINTEXT`], if `record` is shorter than
    /// `plain_len + RECORD_OVERHEAD`, or when the epoch counter is exhausted (after 2^52
    /// records).
    pub fn seal(&mut self, record: &mut [u8], plain_len: usize) -> usize {
        assert!(
            (1..=MAX_PLAINTEXT).contains(&plain_len) && record.len() >= plain_len + OVERHEAD,
            "plaintext of {plain_len} bytes in a {}-byte record buffer",
            record.len()
        );
        self.0
            .seal(record, plain_len, false)
            .expect("a bench never seals 2^52 records")
    }
}

/// The opening half of one direction of the stream record layer, accepting records of up to
/// [`RECORD_MAX_PLAINTEXT`] bytes.
pub struct RecordOpener(stream::RecordOpener);

impl RecordOpener {
    /// An opener expecting sequence number 0 of epoch 0 of `secret`.
    pub fn new(secret: [u8; 32]) -> Self {
        RecordOpener(stream::RecordOpener::new(
            DirectionKeys::new(secret, REKEY_INTERVAL),
            MAX_PLAINTEXT,
        ))
    }

    /// Open the record at the front of `input` in place; returns where its plaintext now is
    /// inside `input` and how many bytes the record took. `Ok(None)`: incomplete.
    ///
    /// # Errors
    /// As the session's record layer: a bad header, or [`SessionError::Authentication`] (the
    /// sequence number then does not move).
    pub fn open(
        &mut self,
        input: &mut [u8],
    ) -> Result<Option<(Range<usize>, usize)>, SessionError> {
        Ok(self.0.open(input)?.map(|o| (o.plaintext, o.consumed)))
    }

    /// Open the record at the front of `input` into `out` as a session does (out of place:
    /// `input` is left alone, `out` grows if it is shorter and is never zero-filled again);
    /// returns the plaintext length and how many bytes the record took. `Ok(None)`: incomplete.
    ///
    /// # Errors
    /// As [`RecordOpener::open`].
    pub fn open_into(
        &mut self,
        input: &[u8],
        out: &mut alloc::vec::Vec<u8>,
    ) -> Result<Option<(usize, usize)>, SessionError> {
        Ok(self
            .0
            .open_into(input, out)?
            .map(|(n, _, consumed)| (n, consumed)))
    }
}

/// Bytes in front of a data packet's frames (the short header).
pub const DGRAM_HEADER_LEN: usize = SHORT_HEADER_LEN;
/// Bytes a data packet adds around its frames (short header and tag).
pub const DGRAM_OVERHEAD: usize = SHORT_HEADER_LEN + TAG_LEN;

/// One direction's datagram packet key (`dgram::keys::PacketKey`), keyed from a traffic
/// secret, protecting and unprotecting whole short-header packets as a connection does:
/// [`DgramPacketKey::seal`] writes the header (K bit, destination id, truncated packet number)
/// and seals the frames behind it in place with the header as associated data;
/// [`DgramPacketKey::open`] parses the header, checks the destination id, expands the packet
/// number and opens in place. The key schedule is done once, in [`DgramPacketKey::new`].
pub struct DgramPacketKey {
    key: PacketKey,
    dcid: Cid,
    next_pn: u64,
    largest: Option<u64>,
}

impl DgramPacketKey {
    /// Packet key of `secret` (sealing from packet number 0) for packets addressed to `dcid`.
    pub fn new(secret: [u8; 32], dcid: [u8; 8]) -> Self {
        DgramPacketKey {
            key: PacketKey::from_secret(&secret),
            dcid,
            next_pn: 0,
            largest: None,
        }
    }

    /// Protect the frames at `buf[DGRAM_HEADER_LEN..DGRAM_HEADER_LEN + payload_len]` in place
    /// as the next data packet: header in front, tag behind. Returns the packet length,
    /// `payload_len + DGRAM_OVERHEAD`.
    ///
    /// # Panics
    /// If `buf` is shorter than `payload_len + DGRAM_OVERHEAD`.
    pub fn seal(&mut self, buf: &mut [u8], payload_len: usize) -> usize {
        let pn = self.next_pn;
        self.next_pn += 1;
        Header::Short {
            key_phase: false,
            dcid: self.dcid,
            pn: packet::truncate_pn(pn),
        }
        .write(buf)
        .expect("room for the header");
        seal_packet(&self.key, pn, buf, SHORT_HEADER_LEN, payload_len)
    }

    /// Unprotect the data packet `datagram` in place; where its frames now are. `None`: not a
    /// short-header packet for this id, or the tag does not verify.
    pub fn open(&mut self, datagram: &mut [u8]) -> Option<Range<usize>> {
        let Ok(Header::Short { dcid, pn, .. }) = packet::parse_header(datagram) else {
            return None;
        };
        if dcid != self.dcid {
            return None;
        }
        let pn = packet::expand_pn(self.largest, pn);
        let range = open_packet(&self.key, pn, datagram, SHORT_HEADER_LEN).ok()?;
        self.largest = Some(self.largest.map_or(pn, |l| l.max(pn)));
        Some(range)
    }
}

/// The sender's per-chunk compressor (the sending level, a fresh stream per chunk), state kept across
/// calls.
pub struct ChunkDeflater(Deflater);

impl ChunkDeflater {
    /// A deflater at the level sessions use.
    pub fn new() -> Self {
        ChunkDeflater(Deflater::new(crate::compress::LEVEL))
    }

    /// Deflate `input` (at most [`CHUNK`](crate::CHUNK) bytes) into `out`; `Some(n)` only
    /// when the whole stream fits and is shorter than `input` (otherwise a session sends the
    /// chunk stored).
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        self.0.compress(input, out)
    }
}

impl Default for ChunkDeflater {
    fn default() -> Self {
        Self::new()
    }
}

/// The receiver's per-chunk inflater, state kept across calls.
#[derive(Default)]
pub struct ChunkInflater(Inflater);

impl ChunkInflater {
    /// A fresh inflater.
    pub fn new() -> Self {
        ChunkInflater(Inflater::new())
    }

    /// Inflate one raw-deflate chunk into exactly `out` (its declared plain length).
    ///
    /// # Errors
    /// The stream is corrupt, or does not produce exactly `out.len()` bytes.
    pub fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(), InflateError> {
        self.0.inflate(input, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn sealed_records_open_in_place() {
        let (mut s, mut o) = (RecordSealer::new([5; 32]), RecordOpener::new([5; 32]));
        let mut buf = vec![0u8; 1000 + RECORD_OVERHEAD];
        for i in 0..3u8 {
            buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + 1000].fill(i);
            let n = s.seal(&mut buf, 1000);
            assert_eq!(n, buf.len());
            let (pt, used) = o.open(&mut buf).unwrap().unwrap();
            assert_eq!(
                (pt.clone(), used),
                (RECORD_HEADER_LEN..RECORD_HEADER_LEN + 1000, n)
            );
            assert!(buf[pt].iter().all(|&b| b == i));
        }
        // A replayed record does not open a second time.
        let n = s.seal(&mut buf, 1000);
        let mut replay = buf[..n].to_vec();
        assert!(o.open(&mut buf[..n]).unwrap().is_some());
        assert_eq!(o.open(&mut replay), Err(SessionError::Authentication));
    }

    #[test]
    fn sealed_records_open_into_a_reused_buffer() {
        let (mut s, mut o) = (RecordSealer::new([6; 32]), RecordOpener::new([6; 32]));
        let mut buf = vec![0u8; 1000 + RECORD_OVERHEAD];
        let mut out = vec::Vec::new();
        for (i, len) in [(1u8, 1000), (2, 10), (3, 700)] {
            buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len].fill(i);
            let n = s.seal(&mut buf, len);
            let sealed = buf[..n].to_vec();
            assert_eq!(o.open_into(&buf[..n], &mut out).unwrap(), Some((len, n)));
            assert!(out[..len].iter().all(|&b| b == i));
            assert_eq!(out.len(), 1000, "grown once, never shrunk");
            assert_eq!(&buf[..n], &sealed[..], "the input is left alone");
        }
        let n = s.seal(&mut buf, 5);
        assert_eq!(o.open_into(&buf[..n - 1], &mut out).unwrap(), None);
        buf[RECORD_HEADER_LEN] ^= 1;
        assert_eq!(
            o.open_into(&buf[..n], &mut out),
            Err(SessionError::Authentication)
        );
    }

    #[test]
    fn dgram_packets_open_in_place() {
        let dcid = [1, 2, 3, 4, 5, 6, 7, 8];
        let (mut s, mut o) = (
            DgramPacketKey::new([6; 32], dcid),
            DgramPacketKey::new([6; 32], dcid),
        );
        let mut buf = vec![0u8; 1400];
        let payload = 1400 - DGRAM_OVERHEAD;
        for i in 0..3u8 {
            buf[DGRAM_HEADER_LEN..DGRAM_HEADER_LEN + payload].fill(i);
            assert_eq!(s.seal(&mut buf, payload), 1400);
            assert_eq!(&buf[1..9], &dcid);
            let r = o.open(&mut buf).expect("opens");
            assert_eq!(r, DGRAM_HEADER_LEN..DGRAM_HEADER_LEN + payload);
            assert!(buf[r].iter().all(|&b| b == i));
        }
        // Another key or another id does not open it.
        s.seal(&mut buf, payload);
        let mut copy = buf.clone();
        assert!(DgramPacketKey::new([7; 32], dcid).open(&mut copy).is_none());
        assert!(
            DgramPacketKey::new([6; 32], [0; 8])
                .open(&mut copy)
                .is_none()
        );
        buf[20] ^= 1;
        assert!(o.open(&mut buf).is_none());
    }

    #[test]
    fn chunk_compressor_round_trips() {
        let text = b"the quick brown fox jumps over the lazy dog\n".repeat(100);
        let (mut d, mut i) = (ChunkDeflater::new(), ChunkInflater::new());
        let mut packed = vec![0u8; text.len()];
        let n = d.compress(&text, &mut packed).unwrap();
        let mut out = vec![0u8; text.len()];
        i.inflate(&packed[..n], &mut out).unwrap();
        assert_eq!(out, text);
    }
}
