//! Unit tests of the parent module: reassembly, reading as records, flow control.

use super::*;
use proptest::prelude::*;

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 13 + i / 256) as u8).collect()
}

fn ms(n: u64) -> Instant {
    Instant::from_micros(n * 1000)
}

/// The pieces `[0, len)` falls into at the cut points.
fn cut(len: usize, cuts: &[prop::sample::Index]) -> Vec<(usize, usize)> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    bounds.extend([0, len]);
    bounds.sort_unstable();
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

/// A deterministic shuffle from `order` (xorshift).
fn shuffle<T>(items: &mut [T], order: u64) {
    let mut seed = order | 1;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Reads everything readable.
fn read_all(r: &mut RecvStream) -> Vec<u8> {
    let mut v = Vec::new();
    while !r.readable().is_empty() {
        let n = r.readable().len();
        v.extend_from_slice(r.readable());
        r.consume(n);
    }
    v
}

#[test]
fn reassembles_out_of_order_and_overlapping_pieces() {
    let data = bytes(100);
    let mut r = RecvStream::new(1000, 1000);
    r.insert(50, &data[50..70], false).unwrap();
    r.insert(60, &data[60..80], false).unwrap();
    r.insert(90, &data[90..100], true).unwrap();
    assert!(r.readable().is_empty());
    assert_eq!(r.buffered(), 40);
    r.insert(0, &data[0..30], false).unwrap();
    assert_eq!(r.readable(), &data[..30]);
    r.consume(10);
    r.insert(5, &data[5..55], false).unwrap();
    assert_eq!(r.readable(), &data[10..80]);
    r.insert(75, &data[75..95], false).unwrap();
    assert!(r.fin_received() && !r.is_finished());
    assert_eq!(read_all(&mut r), &data[10..]);
    assert!(r.is_finished());
    assert_eq!(r.buffered(), 0);
    // Late duplicates are ignored.
    r.insert(0, &data[..100], true).unwrap();
    assert!(r.readable().is_empty());
}

#[test]
fn data_beyond_the_advertised_limit_is_a_flow_control_error() {
    let mut r = RecvStream::new(100, 100);
    assert_eq!(r.max_data(), 100);
    r.insert(90, &[1; 10], false).unwrap();
    assert_eq!(r.insert(91, &[1; 10], false), Err(StreamError::FlowControl));
    assert_eq!(r.insert(100, &[], true), Ok(()));
    assert_eq!(
        r.insert(u64::MAX, &[1; 2], false),
        Err(StreamError::FlowControl)
    );
    let mut r = RecvStream::new(100, 100);
    assert_eq!(r.insert(101, &[], true), Err(StreamError::FlowControl));
}

#[test]
fn final_size_violations() {
    let mut r = RecvStream::new(100, 100);
    r.insert(0, &[1; 20], false).unwrap();
    assert_eq!(r.insert(0, &[1; 10], true), Err(StreamError::FinalSize));
    r.insert(20, &[1; 10], true).unwrap();
    r.insert(25, &[1; 5], true).unwrap();
    assert_eq!(r.insert(25, &[1; 6], false), Err(StreamError::FinalSize));
    assert_eq!(r.insert(40, &[], false), Err(StreamError::FinalSize));
    assert_eq!(r.insert(10, &[1; 5], true), Err(StreamError::FinalSize));
    assert_eq!(read_all(&mut r).len(), 30);
    assert!(r.is_finished());
}

#[test]
fn credit_reopens_every_eighth_window_and_the_window_grows_when_it_limits() {
    let srtt = Duration::from_millis(20);
    let mut r = RecvStream::new(1000, 4000);
    assert_eq!(r.poll_max_data(ms(0), srtt), None);
    r.insert(0, &[0; 1000], false).unwrap();
    // A new limit once an eighth of the window was consumed (the sender's credit never
    // falls below 7/8 of a window).
    r.consume(124);
    assert_eq!(r.poll_max_data(ms(1), srtt), None);
    r.consume(1);
    assert_eq!(r.poll_max_data(ms(2), srtt), Some(1125));
    assert_eq!(r.poll_max_data(ms(2), srtt), None);
    // A slow reader: a quarter window took longer than srtt, no growth.
    r.consume(125);
    assert_eq!(r.poll_max_data(ms(41), srtt), Some(1250));
    assert_eq!(r.window(), 1000);
    // A quarter window consumed within srtt: the window (the bottleneck) doubles, up to
    // the maximum.
    r.consume(250);
    assert_eq!(r.poll_max_data(ms(50), srtt), Some(2500));
    assert_eq!(r.window(), 2000);
    r.insert(1000, &[0; 1500], false).unwrap();
    r.consume(500);
    assert_eq!(r.poll_max_data(ms(55), srtt), Some(5000));
    assert_eq!(r.window(), 4000);
    r.insert(2500, &[0; 2500], false).unwrap();
    r.consume(1000);
    assert_eq!(
        r.poll_max_data(ms(56), srtt),
        Some(6000),
        "capped at max_window"
    );
    assert_eq!(r.window(), 4000);
    // No credit is needed past the final size.
    r.insert(5000, &[0; 10], true).unwrap();
    r.consume(3010);
    assert_eq!(r.poll_max_data(ms(150), srtt), None);
}

#[test]
fn the_window_grows_when_holes_not_the_reader_hold_delivery_back() {
    let srtt = Duration::from_millis(20);
    let mut r = RecvStream::new(1000, 4000);
    assert_eq!(r.poll_max_data(ms(0), srtt), None);
    // Half the window arrives in order, then bytes beyond a hole; the reader takes all it
    // can, but slowly (long after srtt): the window still grows.
    r.insert(0, &[0; 500], false).unwrap();
    r.insert(600, &[0; 300], false).unwrap();
    r.consume(500);
    assert_eq!(r.poll_max_data(ms(100), srtt), Some(2500));
    assert_eq!(r.window(), 2000);
    // A reader that leaves readable bytes behind (more than a record) is the bottleneck:
    // no growth.
    let mut r = RecvStream::new(400_000, 1_600_000);
    assert_eq!(r.poll_max_data(ms(0), srtt), None);
    r.insert(0, &[0; 390_000], false).unwrap();
    r.insert(395_000, &[0; 10], false).unwrap();
    r.consume(200_000);
    assert_eq!(r.poll_max_data(ms(100), srtt), Some(600_000));
    assert_eq!(r.window(), 400_000);
}

#[test]
fn the_window_grows_at_once_when_the_sender_nears_the_limit_behind_a_hole() {
    let srtt = Duration::from_millis(200);
    let mut r = RecvStream::new(1000, 8000);
    assert_eq!(r.poll_max_data(ms(0), srtt), None);
    // The first bytes are lost; the sender runs on to within half a window of the limit.
    // Nothing was consumed (no update is due by consumption), yet the window, not the
    // reader, holds the transfer: it doubles and is advertised now.
    r.insert(100, &[0; 400], false).unwrap();
    assert_eq!(
        r.poll_max_data(ms(10), srtt),
        None,
        "half a window still free"
    );
    r.insert(500, &[0; 100], false).unwrap();
    assert_eq!(r.poll_max_data(ms(20), srtt), Some(2000));
    assert_eq!(r.window(), 2000);
    // Not again until the sender uses the new credit.
    assert_eq!(r.poll_max_data(ms(30), srtt), None);
    r.insert(600, &[0; 1000], false).unwrap();
    assert_eq!(r.poll_max_data(ms(230), srtt), Some(4000));
    // Without a hole (the reader leaves bytes unread), nearing the limit grows nothing.
    let mut r = RecvStream::new(100_000, 800_000);
    r.insert(0, &[0; 90_000], false).unwrap();
    assert_eq!(r.poll_max_data(ms(0), srtt), None);
    assert_eq!(r.window(), 100_000);
}

#[test]
fn fragmenting_the_window_into_too_many_pieces_is_refused() {
    let window = 4 * MAX_PIECES as u64;
    let mut r = RecvStream::new(window, window);
    for i in 0..MAX_PIECES as u64 {
        r.insert(2 + 2 * i, &[1], false).unwrap();
    }
    // Extending a piece is fine, a new one is not.
    r.insert(3, &[1], false).unwrap();
    let last = 2 * MAX_PIECES as u64 + 2;
    assert_eq!(r.insert(last, &[1], false), Err(StreamError::FlowControl));
    assert_eq!(r.pending.len(), MAX_PIECES);
    // Filling the first gap drains everything.
    r.insert(0, &[1; 2], false).unwrap();
    assert_eq!(r.pending.len(), MAX_PIECES - 2);
}

/// Reads as the session does: whole records of the given lengths (cycled), each only once
/// it is all readable; checks that a record's worth is always in view.
fn read_records(r: &mut RecvStream, lens: &[usize], next: &mut usize, out: &mut Vec<u8>) {
    loop {
        let contiguous = r.ready_len;
        let view = r.readable().len();
        assert!(
            view >= contiguous.min(crate::MAX_RECORD),
            "{view} of {contiguous} in view"
        );
        let want = lens[*next % lens.len()];
        if view < want {
            return;
        }
        out.extend_from_slice(&r.readable()[..want]);
        r.consume(want);
        *next += 1;
    }
}

/// What follows a hole joins the contiguous bytes as it is (no copy), and records that
/// straddle the seam read whole.
#[test]
fn a_long_piece_after_a_hole_is_moved_not_copied() {
    let data = bytes(600_000);
    let mut r = RecvStream::new(1 << 20, 1 << 20);
    r.insert(0, &data[..30_000], false).unwrap();
    for at in (31_400..data.len()).step_by(1400) {
        let end = (at + 1400).min(data.len());
        r.insert(at as u64, &data[at..end], end == data.len())
            .unwrap();
    }
    let piece = r.pending.values().next().map(|p| p.as_ptr());
    let (mut out, mut next) = (Vec::new(), 0);
    let lens = [50_000, crate::MAX_RECORD, 7, 64_000];
    read_records(&mut r, &lens, &mut next, &mut out);
    assert_eq!(out.len(), 0, "the first record is not all there");
    r.insert(30_000, &data[30_000..31_400], false).unwrap();
    assert_eq!(r.ready.len(), 2);
    assert_eq!(r.ready.back().map(|s| s.buf.as_ptr()), piece);
    read_records(&mut r, &lens, &mut next, &mut out);
    out.extend(read_all(&mut r));
    assert!(out == data);
    assert!(r.is_finished());
    assert_eq!(r.buffered(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any permutation of pieces, with duplicates and overlaps, read at any pace, gives back
    /// exactly the bytes sent; memory stays within the window.
    #[test]
    fn any_order_gives_back_the_bytes(
        len in 0usize..4000,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        extra in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..600), 0..10),
        order in any::<u64>(),
        reads in proptest::collection::vec(0usize..1500, 1..30),
    ) {
        let data = bytes(len);
        let mut pieces = cut(len, &cuts);
        for (at, l) in &extra {
            let s = at.index(len + 1);
            pieces.push((s, (s + l).min(len)));
        }
        shuffle(&mut pieces, order);
        let window = 4096u64;
        let mut r = RecvStream::new(window, window);
        let mut out = Vec::new();
        let mut reads = reads.into_iter().cycle();
        for (s, e) in pieces {
            prop_assert_eq!(r.insert(s as u64, &data[s..e], e == len), Ok(()));
            prop_assert!(r.buffered() as u64 <= window);
            let n = reads.next().unwrap_or(0).min(r.readable().len());
            out.extend_from_slice(&r.readable()[..n]);
            r.consume(n);
        }
        out.extend(read_all(&mut r));
        prop_assert!(out == data);
        prop_assert!(r.is_finished());
        prop_assert_eq!(r.buffered(), 0);
    }

    /// Long pieces in any order, read as records: the bytes come back exactly, a record's
    /// worth is always in view, and memory stays within the window.
    #[test]
    fn long_pieces_read_as_records(
        len in 0usize..400_000,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        order in any::<u64>(),
        lens in proptest::collection::vec(1usize..=crate::MAX_RECORD, 1..6),
    ) {
        let data = bytes(len);
        let mut pieces = cut(len, &cuts);
        shuffle(&mut pieces, order);
        let window = 1u64 << 20;
        let mut r = RecvStream::new(window, window);
        let (mut out, mut next) = (Vec::new(), 0);
        for (s, e) in pieces {
            prop_assert_eq!(r.insert(s as u64, &data[s..e], e == len), Ok(()));
            prop_assert!(r.buffered() as u64 <= window);
            read_records(&mut r, &lens, &mut next, &mut out);
        }
        out.extend(read_all(&mut r));
        prop_assert!(out == data);
        prop_assert!(r.is_finished());
        prop_assert_eq!(r.buffered(), 0);
    }

    /// Hostile input (any offsets, lengths, FINs): no panic, memory within the window, and
    /// the bytes handed out are those of the accepted frames.
    #[test]
    fn hostile_frames_are_bounded(
        frames in proptest::collection::vec(
            (prop_oneof![0u64..3000, any::<u64>()], 0usize..700, any::<bool>(), 0usize..900), 0..60),
    ) {
        let mut r = RecvStream::new(2048, 8192);
        let mut now = 0;
        for (offset, len, fin, read) in frames {
            let data: Vec<u8> = (0..len as u64).map(|i| offset.wrapping_add(i) as u8).collect();
            let _ = r.insert(offset, &data, fin);
            prop_assert!(r.buffered() as u64 <= r.window());
            let start = r.consumed;
            let n = read.min(r.readable().len());
            for (i, b) in r.readable()[..n].iter().enumerate() {
                prop_assert_eq!(*b, (start + i as u64) as u8);
            }
            r.consume(n);
            now += 1;
            let _ = r.poll_max_data(ms(now), Duration::from_millis(5));
            prop_assert!(r.max_data() <= r.consumed + r.window());
        }
    }
}
