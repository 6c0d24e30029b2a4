//! Targets on raw bytes with no session around them: the frame decoder, the record opener and
//! the inflater.

use alloc::vec;
use alloc::vec::Vec;

use crate::CHUNK;
use crate::compress::{InflateError, Inflater};
use crate::crypto::aead::TAG_LEN;
use crate::error::{SessionError, Violation};
use crate::record::keys::{DirectionKeys, REKEY_INTERVAL};
use crate::record::stream::{
    HEADER_LEN, MAX_PLAINTEXT, MIN_PLAINTEXT, RecordOpener, TYPE_FINAL, TYPE_NORMAL, peek_header,
};
use crate::wire::{self, Frame, encode_control, encode_data_header};

use super::{deflate_chunk, inflate_chunk};

/// Most frames one input is decoded into (inputs are small; this only bounds the work).
const MAX_FRAMES: usize = 256;

/// `decode_frame`: decode frames back to back from raw bytes.
///
/// Checks: a decoded frame used between 1 byte and what was there; it re-encodes to the same
/// frame (DATA: the same bytes; CONTROL: the same message in at most as many bytes, since
/// non-minimal varints are accepted); every strict prefix of it is `Ok(None)`; an error does
/// not change when more bytes follow.
pub fn decode_frame(data: &[u8]) {
    let mut pos = 0;
    for _ in 0..MAX_FRAMES {
        let rest = &data[pos..];
        match wire::decode_frame(rest) {
            Ok(None) => {
                if let Some(&kind) = rest.first() {
                    assert!(matches!(kind, wire::FRAME_DATA | wire::FRAME_CONTROL));
                }
                return;
            }
            Err(e) => {
                let mut longer = rest.to_vec();
                longer.extend_from_slice(&[0xA5; 32]);
                assert_eq!(
                    wire::decode_frame(&longer).err(),
                    Some(e),
                    "a decode error depends on bytes after the frame"
                );
                return;
            }
            Ok(Some((frame, used))) => {
                assert!(
                    used > 0 && used <= rest.len(),
                    "used {used} of {}",
                    rest.len()
                );
                check_frame(&rest[..used], &frame);
                for cut in [0, 1, 2, 3, used / 2, used - 1] {
                    if cut < used {
                        assert_eq!(
                            wire::decode_frame(&rest[..cut]),
                            Ok(None),
                            "strict prefix {cut}/{used} of a frame did not wait"
                        );
                    }
                }
                pos += used;
            }
        }
    }
}

fn check_frame(bytes: &[u8], frame: &Frame<'_>) {
    match frame {
        Frame::Data(d) => {
            assert!((1..=CHUNK as u32).contains(&d.plain_len));
            assert!(!d.body.is_empty() && d.body.len() <= CHUNK);
            if d.codec == wire::Codec::Stored {
                assert_eq!(d.body.len(), d.plain_len as usize);
            }
            assert!(d.offset.checked_add(u64::from(d.plain_len)).is_some());
            let mut again = vec![0u8; wire::DATA_HEADER_LEN];
            encode_data_header(
                &mut again,
                d.file_id,
                d.offset,
                d.codec,
                d.plain_len,
                d.body.len() as u32,
            )
            .expect("a DATA header fits its own length");
            again.extend_from_slice(d.body);
            assert_eq!(again, bytes, "DATA frame does not re-encode to itself");
        }
        Frame::Control(msg) => {
            let mut out = vec![0u8; wire::CONTROL_HEADER_LEN + wire::MAX_CONTROL_LEN];
            let n = encode_control(msg, &mut out).expect("a decoded CONTROL message re-encodes");
            assert!(n <= bytes.len(), "canonical encoding longer than the input");
            let (again, used) = wire::decode_frame(&out[..n])
                .expect("re-encoded CONTROL decodes")
                .expect("re-encoded CONTROL is complete");
            assert_eq!(used, n);
            assert_eq!(&again, frame, "CONTROL message does not round-trip");
        }
    }
}

/// The fixed traffic secret of the `record_open` target (and of its seeds).
pub const RECORD_KEY: [u8; 32] = [0x33; 32];

/// The `record_open` settings in the first two input bytes: the advertised plaintext limit and
/// the rekey interval.
fn record_settings(data: &[u8]) -> (usize, u64) {
    let a = data.first().copied().unwrap_or(0);
    let b = data.get(1).copied().unwrap_or(0);
    let max_plaintext = if a == 0 {
        MAX_PLAINTEXT
    } else {
        MIN_PLAINTEXT + (MAX_PLAINTEXT - MIN_PLAINTEXT) * usize::from(a) / 255
    };
    let interval = if b == 0 {
        REKEY_INTERVAL
    } else {
        u64::from(b % 4) + 1
    };
    (max_plaintext, interval)
}

/// Seal `records` (plaintext, FINAL flag) as the `record_open` target's sender would, behind
/// the two settings bytes: a seed for that target (real AEAD outside fuzz builds).
pub fn seal_records(settings: [u8; 2], records: &[(&[u8], bool)]) -> Vec<u8> {
    let (_, interval) = record_settings(&settings);
    let mut keys = DirectionKeys::new(RECORD_KEY, interval);
    let mut out = settings.to_vec();
    for (pt, fin) in records {
        out.extend_from_slice(&seal_one(&mut keys, pt, *fin));
    }
    out
}

/// One record sealed with `keys`, which then move past it (like `RecordSealer::seal`, which refuses
/// to seal after FINAL: this mirror does not need to).
fn seal_one(keys: &mut DirectionKeys, plaintext: &[u8], fin: bool) -> Vec<u8> {
    let len = (plaintext.len() + TAG_LEN) as u32;
    let header = [
        if fin { TYPE_FINAL } else { TYPE_NORMAL },
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
    ];
    let mut rec = header.to_vec();
    let mut body = plaintext.to_vec();
    let tag = keys.key().seal_in_place(&keys.nonce(), &header, &mut body);
    rec.extend_from_slice(&body);
    rec.extend_from_slice(&tag);
    keys.advance()
        .expect("fuzz inputs never reach the epoch cap");
    rec
}

/// `record_open`: open records back to back with a fixed key.
///
/// Checks: a record opens only if it is byte for byte what the sender would seal for its
/// plaintext at that position (so nothing forged, reordered or relabelled opens); the
/// plaintext lies inside the record and within the advertised limit; errors are the header
/// and tag errors only; after a failed tag the counter has not moved (the right record still
/// opens).
pub fn record_open(data: &[u8]) {
    let (max_plaintext, interval) = record_settings(data);
    let mut opener = RecordOpener::new(DirectionKeys::new(RECORD_KEY, interval), max_plaintext);
    let mut mirror = DirectionKeys::new(RECORD_KEY, interval);
    let mut input = data.get(2..).unwrap_or_default().to_vec();
    let mut pos = 0;
    while pos < input.len() {
        let original = input[pos..].to_vec();
        match opener.open(&mut input[pos..]) {
            Ok(None) => {
                if let Ok(Some(h)) = peek_header(&original, max_plaintext) {
                    assert!(original.len() < h.total, "a complete record waited");
                } else {
                    assert!(original.len() < HEADER_LEN, "a complete header waited");
                }
                return;
            }
            Ok(Some(o)) => {
                let h = peek_header(&original, max_plaintext)
                    .expect("an opened record has a valid header")
                    .expect("an opened record has a header");
                assert_eq!(o.consumed, h.total);
                assert_eq!(o.plaintext, HEADER_LEN..h.total - TAG_LEN);
                assert!(o.plaintext.len() <= max_plaintext);
                assert_eq!(o.fin, h.fin);
                let pt = input[pos + o.plaintext.start..pos + o.plaintext.end].to_vec();
                let resealed = seal_one(&mut mirror, &pt, o.fin);
                assert_eq!(
                    resealed,
                    original[..o.consumed],
                    "a record opened that the sender would not have sealed"
                );
                pos += o.consumed;
            }
            Err(e) => {
                match e {
                    SessionError::Record(_) | SessionError::Protocol(Violation::RecordTooLarge) => {
                        assert!(peek_header(&original, max_plaintext).is_err());
                    }
                    SessionError::Authentication => {
                        // The counter did not move: the genuine record at this position opens.
                        let genuine = seal_one(&mut mirror, b"\x02\x00\x01\x0b", false);
                        let mut g = genuine.clone();
                        let o = opener
                            .open(&mut g)
                            .expect("after a failed tag the next genuine record opens")
                            .expect("complete");
                        assert_eq!(o.consumed, genuine.len());
                    }
                    other => panic!("record layer returned {other:?}"),
                }
                return;
            }
        }
    }
}

/// `inflate`: a declared length (3 bytes, modulo `CHUNK + 1`) and a raw-deflate stream.
///
/// Checks: success means exactly the declared length, agreeing with miniz's own decoder, and a
/// reused inflater gives the same answer as a fresh one; `TooShort` means the stream really is
/// shorter; whatever inflates re-deflates and inflates back; any input deflates losslessly.
pub fn inflate(data: &[u8]) {
    let mut d = [0u8; 4];
    for (i, b) in data.iter().take(3).enumerate() {
        d[i + 1] = *b;
    }
    let declared = u32::from_be_bytes(d) as usize % (CHUNK + 1);
    let stream = data.get(3..).unwrap_or_default();
    let got = inflate_chunk(stream, declared);

    // A reused inflater (after a failure) answers the same.
    let mut reused = Inflater::new();
    let mut junk = [0u8; 16];
    let _ = reused.inflate(&[0x07, 0xff], &mut junk);
    let mut out = vec![0u8; declared];
    let again = reused.inflate(stream, &mut out).map(|()| out);
    assert_eq!(again, got, "reused inflater disagrees");

    let reference = miniz_oxide::inflate::decompress_to_vec_with_limit(stream, declared);
    match &got {
        Ok(out) => {
            assert_eq!(out.len(), declared);
            assert_eq!(
                reference.as_ref().ok(),
                Some(out),
                "miniz disagrees on a stream we accepted"
            );
            if let Some(packed) = deflate_chunk(out) {
                assert!(packed.len() < out.len());
                assert_eq!(inflate_chunk(&packed, out.len()).as_ref(), Ok(out));
            }
        }
        Err(InflateError::TooShort) => {
            if let Ok(r) = &reference {
                assert!(
                    r.len() < declared,
                    "TooShort but miniz made {} bytes",
                    r.len()
                );
            }
        }
        Err(InflateError::TooLong | InflateError::TrailingInput | InflateError::Corrupt) => {}
    }

    // The stream bytes as plaintext: deflate pays only when shorter, and round-trips.
    let plain = &stream[..stream.len().min(CHUNK)];
    if let Some(packed) = deflate_chunk(plain) {
        assert!(packed.len() < plain.len());
        assert_eq!(inflate_chunk(&packed, plain.len()).as_deref(), Ok(plain));
    }
}
