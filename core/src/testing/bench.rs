//! Hooks for the criterion benches in `benches/` (feature `testing`; unstable).
//!
//! The record layer and the per-chunk compressor are crate-private; these thin wrappers let a
//! bench drive the very code a session runs, with the same buffers and no extra copies:
//! [`RecordSealer::seal`] seals in place inside a record buffer (header in front, tag behind),
//! [`RecordOpener::open`] opens in place, and [`ChunkDeflater`] / [`ChunkInflater`] keep one
//! compressor state across calls, as a session does (unlike
//! [`deflate_chunk`](super::deflate_chunk) and [`inflate_chunk`](super::inflate_chunk), which
//! allocate a fresh state and output buffer per call).

use core::ops::Range;

use crate::SessionError;
use crate::compress::{Deflater, InflateError, Inflater};
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
