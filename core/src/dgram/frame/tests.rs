// One-range lists of packet-number ranges are what these tests mean.
#![allow(clippy::single_range_in_vec_init)]

use super::*;
use alloc::vec::Vec;
use proptest::prelude::*;

fn decode_all(payload: &[u8]) -> Vec<Result<Frame<'_>, FrameError>> {
    Frames::new(payload).collect()
}

fn ranges_of(ack: &AckFrame<'_>) -> Vec<Range<u64>> {
    ack.iter().map(|r| *r.start()..*r.end() + 1).collect()
}

fn only_ack(payload: &[u8]) -> AckFrame<'_> {
    match decode_all(payload).as_slice() {
        [Ok(Frame::Ack(a))] => *a,
        other => panic!("not one ACK: {other:?}"),
    }
}

fn push(payload: &mut Vec<u8>, f: impl FnOnce(&mut [u8]) -> Option<usize>) {
    let mut buf = [0u8; 128];
    let n = f(&mut buf).unwrap();
    payload.extend_from_slice(&buf[..n]);
}

#[test]
fn every_frame_round_trips() {
    let mut p = Vec::new();
    push(&mut p, |o| encode_padding(o, 3));
    push(&mut p, encode_ping);
    push(&mut p, |o| {
        encode_ack([20..31, 5..9].into_iter(), 800, 8, o)
    });
    push(&mut p, |o| encode_crypto_header(0, 4, o));
    p.extend_from_slice(b"helo");
    push(&mut p, |o| encode_stream_header(1 << 40, 3, false, o));
    p.extend_from_slice(b"abc");
    push(&mut p, |o| {
        encode_stream_header(varint::MAX - 2, 2, true, o)
    });
    p.extend_from_slice(b"de");
    push(&mut p, |o| encode_stream_header(9, 0, true, o));
    push(&mut p, |o| encode_max_data(varint::MAX, o));
    push(&mut p, |o| encode_data_blocked(16_384, o));
    push(&mut p, |o| encode_close(7, b"bye", o));
    push(&mut p, |o| encode_close(0, &[b'x'; 100], o));
    push(&mut p, encode_handshake_done);
    push(&mut p, |o| encode_padding(o, 1));

    let frames: Vec<Frame<'_>> = Frames::new(&p).map(Result::unwrap).collect();
    let Frame::Ack(ack) = frames[2] else {
        panic!("{:?}", frames[2])
    };
    assert_eq!(ack.largest, 30);
    assert_eq!(ack.delay, 100);
    assert_eq!(ack.ack_delay(), Duration::from_micros(800));
    assert_eq!(ranges_of(&ack), [20..31, 5..9]);
    let expect = [
        Frame::Padding,
        Frame::Ping,
        Frame::Ack(ack),
        Frame::Crypto {
            offset: 0,
            data: b"helo",
        },
        Frame::Stream {
            offset: 1 << 40,
            data: b"abc",
            fin: false,
        },
        Frame::Stream {
            offset: varint::MAX - 2,
            data: b"de",
            fin: true,
        },
        Frame::Stream {
            offset: 9,
            data: b"",
            fin: true,
        },
        Frame::MaxData(varint::MAX),
        Frame::DataBlocked(16_384),
        Frame::Close {
            code: 7,
            reason: b"bye",
        },
        Frame::Close {
            code: 0,
            reason: &[b'x'; 64],
        },
        Frame::HandshakeDone,
        Frame::Padding,
    ];
    assert_eq!(frames, expect);
    let eliciting: Vec<bool> = expect.iter().map(Frame::is_ack_eliciting).collect();
    assert_eq!(
        eliciting,
        [
            false, true, false, true, true, true, true, true, true, false, false, true, false
        ]
    );
}

/// RFC 9000 §19.3.1 semantics on a hand-written frame, and its exact encoding.
#[test]
fn ack_wire_layout() {
    // largest 10, delay 2, 2 more ranges, first range 2 (8..=10);
    // gap 0, len 1: 5..=6; gap 1, len 0: 2..=2.
    let wire = [0x02, 10, 2, 2, 2, 0, 1, 1, 0];
    let ack = only_ack(&wire);
    assert_eq!(ranges_of(&ack), [8..11, 5..7, 2..3]);
    assert_eq!(ack.ack_delay(), Duration::from_micros(16));
    let mut out = [0u8; 16];
    let n = encode_ack([8..11, 5..7, 2..3].into_iter(), 16, 10, &mut out).unwrap();
    assert_eq!(&out[..n], &wire);
    // The largest delay field saturates instead of overflowing.
    let mut wire = Vec::from([0x02, 0]);
    wire.extend_from_slice(&[0xff; 8]);
    wire.extend_from_slice(&[0, 0]);
    let ack = only_ack(&wire);
    assert_eq!(ack.delay, varint::MAX);
    assert_eq!(ack.ack_delay(), Duration::from_micros(u64::MAX));
}

#[test]
fn bad_acks_are_rejected_and_stop_the_iterator() {
    let cases: [&[u8]; 4] = [
        &[0x02, 3, 0, 0, 4],              // first range below 0
        &[0x02, 3, 0, 1, 1, 1, 0],        // next largest = 2 - 1 - 2 < 0
        &[0x02, 5, 0, 1, 1, 0, 3],        // next range 2..=2 minus len 3 < 0
        &[0x02, 10, 0, 2, 0, 0, 0, 8, 0], // third range below 0
    ];
    for wire in cases {
        let mut p = Vec::from(wire);
        p.push(0x01); // a PING after it is never reached
        assert_eq!(decode_all(&p), [Err(FrameError::BadAck)], "{wire:?}");
    }
    // The same shapes just within bounds decode: down to packet 0.
    assert_eq!(ranges_of(&only_ack(&[0x02, 3, 0, 0, 3])), [0..4]);
    assert_eq!(
        ranges_of(&only_ack(&[0x02, 4, 0, 1, 1, 1, 0])),
        [3..5, 0..1]
    );
}

#[test]
fn malformed_payloads() {
    use FrameError::*;
    let cases: [(&[u8], FrameError); 14] = [
        (&[0x03], UnknownType(0x03)),
        (&[0x01, 0xff], UnknownType(0xff)),
        (&[0x02, 1, 0, 0], Truncated),
        (&[0x02, 9, 0, 1, 0, 0], Truncated),
        (&[0x02, 0x40], Truncated),
        (&[0x06, 0, 5, 1, 2, 3, 4], Truncated),
        (&[0x08, 0], Truncated),
        (&[0x09, 0, 1], Truncated),
        (&[0x10], Truncated),
        (&[0x14, 0x80, 0], Truncated),
        (&[0x1c, 0, 3, b'a'], Truncated),
        (&[0x1c, 0, 0x40, 65], TooLong),
        // offset + len past 2^62 - 1
        (
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0],
            TooLong,
        ),
        (
            &[
                0x06, 0xc0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            TooLong,
        ),
    ];
    for (wire, err) in cases {
        let frames = decode_all(wire);
        assert_eq!(frames.last(), Some(&Err(err)), "{wire:02x?}");
        assert!(frames[..frames.len() - 1].iter().all(Result::is_ok));
    }
    assert!(decode_all(&[]).is_empty());
    // Zeros are one PADDING frame however many there are.
    assert_eq!(decode_all(&[0; 1000]), [Ok(Frame::Padding)]);
}

/// Every encoder refuses every buffer one byte too short, and fills exactly what it says.
#[test]
fn encoders_refuse_short_buffers() {
    type Enc = fn(&mut [u8]) -> Option<usize>;
    let encoders: [Enc; 9] = [
        encode_ping,
        encode_handshake_done,
        |o| encode_max_data(1 << 20, o),
        |o| encode_data_blocked(63, o),
        |o| encode_close(300, b"reason", o),
        |o| encode_padding(o, 5),
        |o| encode_stream_header(70, 20_000, true, o),
        |o| encode_crypto_header(0, 1, o),
        |o| encode_ack([100..200, 50..60, 10..11].into_iter(), 1000, 3, o),
    ];
    for enc in encoders {
        let mut big = [0xaau8; 64];
        let n = enc(&mut big).unwrap();
        assert_eq!(enc(&mut big[..n]), Some(n));
        for short in 0..n {
            let mut buf = alloc::vec![0u8; short];
            if enc(&mut buf).is_some() {
                // Only ACK may shrink to fewer ranges, never below one.
                let only_ack = Frames::new(&buf).next();
                assert!(matches!(only_ack, Some(Ok(Frame::Ack(_)))), "{n} {short}");
            }
        }
    }
    assert_eq!(stream_header_size(70, 20_000), 1 + 2 + 4);
    assert_eq!(encode_ack(core::iter::empty(), 0, 4, &mut [0; 16]), None);
    assert_eq!(encode_ack([5..5].into_iter(), 0, 4, &mut [0; 16]), None);
}

#[test]
fn encode_ack_limits_and_merges() {
    let mut out = [0u8; 64];
    let ranges = [90..100, 70..80, 50..60, 30..40];
    let n = encode_ack(ranges.clone().into_iter(), 0, 2, &mut out).unwrap();
    assert_eq!(ranges_of(&only_ack(&out[..n])), [90..100, 70..80]);
    // 0 ranges allowed still writes the first one.
    let n = encode_ack(ranges.clone().into_iter(), 0, 0, &mut out).unwrap();
    assert_eq!(ranges_of(&only_ack(&out[..n])), [90..100]);
    // Adjacent ranges are merged, empty ones skipped.
    let n = encode_ack(
        [90..100, 80..90, 75..75, 70..80].into_iter(),
        0,
        9,
        &mut out,
    )
    .unwrap();
    assert_eq!(ranges_of(&only_ack(&out[..n])), [70..100]);
    // Overlapping or ascending input ends the list.
    let n = encode_ack([90..100, 85..95, 10..20].into_iter(), 0, 9, &mut out).unwrap();
    assert_eq!(ranges_of(&only_ack(&out[..n])), [90..100]);
    let n = encode_ack([90..100, 40..50, 60..70].into_iter(), 0, 9, &mut out).unwrap();
    assert_eq!(ranges_of(&only_ack(&out[..n])), [90..100, 40..50]);
    // A largest packet number beyond 2^62 - 1 is not encodable.
    assert_eq!(
        encode_ack([0..varint::MAX + 2].into_iter(), 0, 1, &mut out),
        None
    );
}

/// `max_stream_data` is exact: the answer fits with its header, one more byte does not.
#[test]
fn max_stream_data_is_exact() {
    for offset in [0, 63, 64, 1 << 20, 1 << 40, varint::MAX - 1000, varint::MAX] {
        for room in 0..20_000usize {
            let n = max_stream_data(offset, room);
            let limit = varint::MAX - offset;
            if n > 0 {
                assert!(stream_header_size(offset, n) + n <= room, "{offset} {room}");
            }
            if (n as u64) < limit {
                assert!(
                    stream_header_size(offset, n + 1) + n + 1 > room,
                    "{offset} {room} {n}"
                );
            } else {
                assert_eq!(n as u64, limit);
            }
        }
    }
    assert_eq!(max_stream_data(0, 1200), 1200 - 4);
    assert_eq!(max_stream_data(0, 66), 63);
    assert_eq!(max_stream_data(0, 4), 1);
    assert_eq!(max_stream_data(0, 3), 0);
}

/// Disjoint, non-adjacent, descending ranges (end exclusive) from a largest, a first range
/// length and (gap, len) pairs, stopping before any range would go below 0.
fn range_set() -> impl Strategy<Value = Vec<Range<u64>>> {
    let value = || prop_oneof![0..4u64, 0..1000u64, 0..1u64 << 20, 0..=varint::MAX];
    (
        value(),
        value(),
        proptest::collection::vec((value(), value()), 0..150),
    )
        .prop_map(|(largest, first, pairs)| {
            let start = largest - first.min(largest);
            let mut out = alloc::vec![start..largest + 1];
            let mut prev_start = start;
            for (gap, len) in pairs {
                let Some(end) = prev_start.checked_sub(gap + 2) else {
                    break;
                };
                let Some(start) = end.checked_sub(len) else {
                    break;
                };
                out.push(start..end + 1);
                prev_start = start;
            }
            out
        })
}

proptest! {
    #[test]
    fn ack_round_trips(ranges in range_set(), delay in 0..=varint::MAX) {
        let mut out = alloc::vec![0u8; 4096];
        let n = encode_ack(ranges.clone().into_iter(), delay, usize::MAX, &mut out).unwrap();
        let ack = only_ack(&out[..n]);
        prop_assert_eq!(ranges_of(&ack), ranges);
        prop_assert_eq!(ack.delay, delay >> 3);
    }

    /// With a small buffer and a range limit, the frame holds the longest prefix that fits.
    #[test]
    fn ack_truncates_to_longest_fitting_prefix(
        ranges in range_set(),
        room in 0usize..400,
        max in 0usize..200,
    ) {
        let mut out = alloc::vec![0u8; room];
        let Some(n) = encode_ack(ranges.clone().into_iter(), 0, max, &mut out) else {
            let mut big = [0u8; 64];
            let need = encode_ack(ranges[..1].iter().cloned(), 0, 1, &mut big).unwrap();
            prop_assert!(need > room);
            return Ok(());
        };
        let got = ranges_of(&only_ack(&out[..n]));
        let k = got.len();
        prop_assert!(k >= 1 && k <= max.max(1));
        prop_assert_eq!(&got[..], &ranges[..k]);
        if k < ranges.len() && k < max.max(1) {
            let mut big = alloc::vec![0u8; 4096];
            let need = encode_ack(ranges[..k + 1].iter().cloned(), 0, k + 1, &mut big).unwrap();
            prop_assert!(need > room, "{} ranges fit in {} bytes", k + 1, room);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut errors = 0;
        for f in Frames::new(&payload) {
            match f {
                Ok(Frame::Ack(ack)) => {
                    let mut prev: Option<u64> = None;
                    for r in ack.iter() {
                        prop_assert!(r.start() <= r.end() && *r.end() <= ack.largest);
                        prop_assert!(prev.is_none_or(|p| *r.end() + 1 < p));
                        prev = Some(*r.start());
                    }
                    let _ = ack.ack_delay();
                }
                Ok(_) => {}
                Err(_) => errors += 1,
            }
        }
        prop_assert!(errors <= 1);
    }

    /// Mostly-valid payloads: random frame type bytes followed by small varints, so that
    /// the decoder's deeper paths (ACK ranges, data lengths) are exercised.
    #[test]
    fn structured_bytes_never_panic(
        payload in proptest::collection::vec(
            prop_oneof![
                Just(0x02u8), Just(0x06), Just(0x08), Just(0x09), Just(0x1c), Just(0x00),
                0u8..8, 0x40u8..0x42, any::<u8>(),
            ],
            0..256,
        )
    ) {
        for f in Frames::new(&payload) {
            if let Ok(Frame::Ack(ack)) = f {
                prop_assert!(ack.iter().count() >= 1);
            }
        }
    }
}
