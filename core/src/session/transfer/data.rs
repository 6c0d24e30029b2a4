//! Encoding one DATA frame: the sending side's compression state (deflater, policy, rate
//! gate) and the choice between a stored and a deflated chunk.

use crate::Instant;
use crate::compress::{CompressPolicy, Compression, Deflater, LEVEL, RateGate};
use crate::wire::{Codec, DATA_HEADER_LEN, encode_data_header};

/// The sender's compression state, consulted once per DATA frame.
pub(super) struct DataEncoder {
    deflater: Option<Deflater>,
    policy: CompressPolicy,
    /// `Compression::Auto` only: whether compressing currently makes the transfer faster.
    gate: Option<RateGate>,
    /// DATA was left queued when the last record was filled (see `RateGate::compress`).
    pub(super) backlogged: bool,
}

/// What [`DataEncoder::encode`] did.
pub(super) enum Encoded {
    /// A frame of `len` bytes carrying the next `plain` bytes of the chunk was written.
    Frame { plain: usize, len: usize },
    /// Nothing was written: the chunk goes into the next record.
    NextRecord,
}

impl DataEncoder {
    pub(super) fn new(mode: Compression) -> Self {
        DataEncoder {
            deflater: None,
            policy: CompressPolicy::new(mode),
            gate: (mode == Compression::Auto).then(RateGate::default),
            backlogged: false,
        }
    }

    /// Encode one DATA frame for `id` at `offset` from the front of `rest` (the unsent part of
    /// a queued chunk) into `out` (the room left in the record; `first` when nothing precedes
    /// it in the record). A deflated chunk goes whole or not at all; a stored one is cut to
    /// the room.
    pub(super) fn encode(
        &mut self,
        now: Instant,
        out: &mut [u8],
        first: bool,
        id: u32,
        offset: u64,
        rest: &[u8],
    ) -> Encoded {
        let room = out.len();
        if room <= DATA_HEADER_LEN {
            return Encoded::NextRecord;
        }
        let whole = rest.len();
        let limit = room - DATA_HEADER_LEN;
        let mut n = whole.min(limit);
        let mut codec = Codec::Stored;
        let mut body_len = n;
        let backlogged = self.backlogged;
        let gate_open = self
            .gate
            .as_mut()
            .is_none_or(|g| g.compress(now, backlogged));
        if gate_open && !self.policy.would_try() {
            // Auto backing off after chunks that did not pay: one skipped.
            self.policy.should_try();
        } else if gate_open {
            // Deflate the whole chunk (cutting it to the room left in the record would cost
            // ratio): it goes here if it fits compressed, else whole into the next record.
            if whole > limit && !first && limit < whole / 4 {
                return Encoded::NextRecord;
            }
            self.policy.should_try();
            let d = self.deflater.get_or_insert_with(|| Deflater::new(LEVEL));
            let slot = &mut out[DATA_HEADER_LEN..DATA_HEADER_LEN + limit];
            match d.compress(rest, slot) {
                Some(m) => {
                    self.policy.record(whole, Some(m));
                    n = whole;
                    codec = Codec::Deflate;
                    body_len = m;
                }
                // It did not fit the rest of this record: no verdict on the data.
                None if whole > limit && !first => return Encoded::NextRecord,
                None => self.policy.record(whole, None),
            }
        }
        if codec == Codec::Stored {
            out[DATA_HEADER_LEN..DATA_HEADER_LEN + n].copy_from_slice(&rest[..n]);
        }
        // n and body_len are at most CHUNK, the header fits (checked above).
        let _ = encode_data_header(out, id, offset, codec, n as u32, body_len as u32);
        if let Some(g) = &mut self.gate {
            g.sent(now, n);
        }
        Encoded::Frame {
            plain: n,
            len: DATA_HEADER_LEN + body_len,
        }
    }
}
