//! Hostile input: mutations of a recorded session, and a malicious peer that holds the key.
//! Every case must end in a typed error (or a per-file failure) and publish nothing it should
//! not.

use std::time::Duration;

use ferry_core::testing::{LinkConfig, MemApp, Pair, Replay, TestRng, replay_server, test_psk};
use ferry_core::wire::{Codec, Control, encode_control, encode_data_header};
use ferry_core::{
    Config, DecodeError, Event, FileHasher, FileMeta, HandshakeError, InflateError, Psk, Reason,
    RecordError, SendId, SessionError, Violation,
};

const PREAMBLE_LEN: usize = 8;
const HS1_LEN: usize = 2 + 32 + 27 + 16;

struct Recording {
    stream: Vec<u8>,
    server_seed: [u8; 32],
    /// Offsets where records start (after the handshake), and the end.
    boundaries: Vec<usize>,
    clean: Replay,
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = TestRng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// A short but complete session: two small files, one compressible, then a clean close.
fn record() -> Recording {
    let mut client = MemApp::new()
        .with_file("a.txt", b"hello ferry ".repeat(60))
        .with_file("b.bin", data(1, 700));
    client
        .to_send
        .extend(["a.txt".to_string(), "b.bin".to_string()]);
    client.close_when_done = true;
    let mut cfg = Config::default();
    cfg.compression = ferry_core::Compression::On;
    let mut pair = Pair::new(
        &cfg,
        &Config::default(),
        client,
        MemApp::new(),
        LinkConfig::default(),
        77,
    );
    assert!(pair.drive());
    let stream = pair.c2s.log.clone();
    let mut boundaries = vec![];
    let mut pos = PREAMBLE_LEN + HS1_LEN;
    while pos < stream.len() {
        boundaries.push(pos);
        let len =
            u32::from_be_bytes([0, stream[pos + 1], stream[pos + 2], stream[pos + 3]]) as usize;
        pos += 4 + len;
    }
    assert_eq!(pos, stream.len());
    boundaries.push(pos);
    let clean = replay_server(
        &Config::default(),
        &test_psk(),
        pair.server_seed,
        &stream,
        &[],
    );
    assert_eq!(clean.error, None, "the clean replay must succeed");
    assert_eq!(clean.committed.len(), 2);
    Recording {
        stream,
        server_seed: pair.server_seed,
        boundaries,
        clean,
    }
}

fn replay(r: &Recording, stream: &[u8]) -> Replay {
    replay_server(&Config::default(), &test_psk(), r.server_seed, stream, &[])
}

/// Files committed in `got` must have been committed by the clean run before `pos`.
fn assert_no_commit_after(r: &Recording, got: &Replay, pos: usize, what: &str) {
    for (path, _) in &got.committed {
        let clean_at = r
            .clean
            .committed
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, at)| *at);
        assert!(
            clean_at.is_some_and(|at| at <= pos),
            "{what}: {path} committed after damage at {pos}"
        );
    }
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let r = record();
    let mut stream = r.stream.clone();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for pos in 0..stream.len() {
        for bit in 0..8 {
            stream[pos] ^= 1 << bit;
            let got = replay(&r, &stream);
            stream[pos] ^= 1 << bit;
            let err = got
                .error
                .unwrap_or_else(|| panic!("flip at byte {pos} bit {bit} was accepted"));
            *kinds
                .entry(format!("{err:?}").split('(').next().unwrap().to_string())
                .or_default() += 1;
            assert_no_commit_after(&r, &got, pos, &format!("flip {pos}.{bit}"));
        }
    }
    assert!(
        kinds.contains_key("Authentication")
            && kinds.contains_key("Handshake")
            && kinds.contains_key("Record"),
        "{kinds:?}"
    );
}

#[test]
fn truncation_anywhere_is_truncated() {
    let r = record();
    for cut in 0..r.stream.len() {
        let got = replay(&r, &r.stream[..cut]);
        assert_eq!(got.error, Some(SessionError::Truncated), "cut at {cut}");
        assert_no_commit_after(&r, &got, cut, "truncation");
    }
    // Record boundaries are among them, including just before the FINAL record.
    assert!(r.boundaries.len() >= 4);
}

#[test]
fn any_split_of_the_stream_gives_the_same_result() {
    let r = record();
    let mut rng = TestRng::new(5);
    for _ in 0..200 {
        let mut cuts: Vec<usize> = (0..rng.below(20))
            .map(|_| rng.below(r.stream.len() as u64) as usize)
            .collect();
        cuts.sort();
        let got = replay_server(
            &Config::default(),
            &test_psk(),
            r.server_seed,
            &r.stream,
            &cuts,
        );
        assert_eq!(got.error, None, "cuts {cuts:?}");
        assert_eq!(got.app.files, r.clean.app.files);
    }
}

fn records(r: &Recording) -> Vec<std::ops::Range<usize>> {
    r.boundaries.windows(2).map(|w| w[0]..w[1]).collect()
}

#[test]
fn reordered_records_fail() {
    let r = record();
    let recs = records(&r);
    for i in 0..recs.len() - 1 {
        let mut s = r.stream[..recs[i].start].to_vec();
        s.extend_from_slice(&r.stream[recs[i + 1].clone()]);
        s.extend_from_slice(&r.stream[recs[i].clone()]);
        s.extend_from_slice(&r.stream[recs[i + 1].end..]);
        let got = replay(&r, &s);
        assert_eq!(got.error, Some(SessionError::Authentication), "swap {i}");
        assert_no_commit_after(&r, &got, recs[i].start, "swap");
    }
}

#[test]
fn replayed_record_fails() {
    let r = record();
    for rec in records(&r) {
        let mut s = r.stream[..rec.end].to_vec();
        s.extend_from_slice(&r.stream[rec.clone()]);
        s.extend_from_slice(&r.stream[rec.end..]);
        let got = replay(&r, &s);
        // Replaying the FINAL record is data after the end; any other is a failed tag.
        let want = if rec.end == r.stream.len() {
            SessionError::TrailingData
        } else {
            SessionError::Authentication
        };
        assert_eq!(got.error, Some(want), "replay of {rec:?}");
        assert_no_commit_after(&r, &got, rec.end, "replay");
    }
}

#[test]
fn whole_session_replayed_to_another_server_fails() {
    // A second server has its own ephemeral key: the recorded client records do not open.
    let r = record();
    let got = replay_server(&Config::default(), &test_psk(), [9; 32], &r.stream, &[]);
    assert_eq!(got.error, Some(SessionError::Authentication));
    assert!(got.committed.is_empty());
}

#[test]
fn oversized_and_unknown_headers_are_rejected_before_the_body() {
    let r = record();
    let first = r.boundaries[0];
    for (len, want) in [
        (
            0xff_ffffu32,
            SessionError::Record(RecordError::BadLength(0xff_ffff)),
        ),
        (16, SessionError::Record(RecordError::BadLength(16))),
        (0, SessionError::Record(RecordError::BadLength(0))),
    ] {
        // Only the header: the error must come without the body.
        let mut s = r.stream[..first + 4].to_vec();
        s[first + 1..first + 4].copy_from_slice(&len.to_be_bytes()[1..]);
        assert_eq!(replay(&r, &s).error, Some(want));
    }
    let mut s = r.stream.clone();
    s[first] = 0x16;
    assert_eq!(
        replay(&r, &s).error,
        Some(SessionError::Record(RecordError::UnknownType(0x16)))
    );
    // Larger than the server advertised (but within the protocol maximum).
    let mut cfg = Config::default();
    cfg.max_plaintext = 20_000;
    let mut s = r.stream[..first + 4].to_vec();
    s[first + 1..first + 4].copy_from_slice(&30_000u32.to_be_bytes()[1..]);
    let got = replay_server(&cfg, &test_psk(), r.server_seed, &s, &[]);
    assert_eq!(
        got.error,
        Some(SessionError::Protocol(Violation::RecordTooLarge))
    );
}

#[test]
fn trailing_data_after_final() {
    let r = record();
    for extra in [
        &b"x"[..],
        &[0x17, 0, 0, 20][..],
        &r.stream[r.boundaries[0]..r.boundaries[1]],
    ] {
        let mut s = r.stream.clone();
        s.extend_from_slice(extra);
        let got = replay(&r, &s);
        assert_eq!(got.error, Some(SessionError::TrailingData));
        // Everything before the end was legitimate and stays committed.
        assert_eq!(got.committed.len(), 2);
    }
}

#[test]
fn wrong_psk_is_rejected_before_any_x25519() {
    let r = record();
    let other = Psk::from_key_bytes(&[0x43; 32]);
    let mut s = ferry_core::Session::server(
        &Config::default(),
        &other,
        r.server_seed,
        ferry_core::Instant::ZERO,
    );
    let mut hs = r.stream[..PREAMBLE_LEN + HS1_LEN].to_vec();
    assert_eq!(
        s.handle_input(ferry_core::Instant::ZERO, &mut hs),
        Err(SessionError::Authentication)
    );
    assert_eq!(
        s._internal_dh_count(),
        0,
        "a wrong key must cost the server no DH"
    );
    // And the client learns nothing but a closed connection: the server sends nothing.
    let mut out = vec![0u8; ferry_core::MAX_RECORD];
    assert_eq!(s.poll_transmit(ferry_core::Instant::ZERO, &mut out), Ok(0));
    // Sticky.
    assert_eq!(
        s.handle_input(ferry_core::Instant::ZERO, &mut []),
        Err(SessionError::Authentication)
    );
}

#[test]
fn preamble_mismatches() {
    let r = record();
    for (i, b, want) in [
        (0, b'X', HandshakeError::NotFerry),
        (3, 2, HandshakeError::UnsupportedVersion(2)),
        (4, 3, HandshakeError::UnsupportedMode(3)),
        (5, 2, HandshakeError::UnsupportedSuite(2)),
    ] {
        let mut s = r.stream.clone();
        s[i] = b;
        assert_eq!(replay(&r, &s).error, Some(SessionError::Handshake(want)));
    }
    // A foreign protocol is refused from its first byte.
    let got = replay(&r, b"GET / HTTP/1.1\r\n");
    assert_eq!(
        got.error,
        Some(SessionError::Handshake(HandshakeError::NotFerry))
    );
    // A handshake message of the wrong length.
    let mut s = r.stream.clone();
    s[PREAMBLE_LEN + 1] += 1;
    assert_eq!(
        replay(&r, &s).error,
        Some(SessionError::Handshake(HandshakeError::BadLength))
    );
}

// ---- a malicious peer that holds the key ------------------------------------------------

/// A connected pair whose client app does nothing on its own; the test drives the client.
fn connected() -> Pair {
    let mut pair = Pair::simple(MemApp::new(), MemApp::new(), 3);
    while !(pair.client.session.is_connected() && pair.server.session.is_connected()) {
        assert!(!pair.drive_bounded(1));
    }
    pair
}

/// Offer `size` bytes and wait for the server's Accept; returns the id (not started).
fn offered(pair: &mut Pair, path: &str, size: u64) -> SendId {
    let id = pair
        .client
        .session
        .offer(FileMeta::new(path, Some(size)))
        .unwrap();
    for _ in 0..10_000 {
        if pair
            .client
            .app
            .log
            .iter()
            .any(|e| matches!(e, Event::Accepted { id: i, .. } if *i == id))
        {
            return id;
        }
        pair.drive_bounded(1);
    }
    panic!("never accepted");
}

fn data_frame(id: u32, offset: u64, codec: Codec, plain_len: u32, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 22 + body.len()];
    encode_data_header(&mut f, id, offset, codec, plain_len, body.len() as u32).unwrap();
    f[22..].copy_from_slice(body);
    f
}

fn control(msg: &Control) -> Vec<u8> {
    let mut f = vec![0u8; 20_000];
    let n = encode_control(msg, &mut f).unwrap();
    f.truncate(n);
    f
}

fn run_until_server_error(pair: &mut Pair) -> SessionError {
    for _ in 0..10_000 {
        if let Some(e) = pair.server.error.or(pair.server.session.error()) {
            return e;
        }
        pair.drive_bounded(1);
    }
    panic!("server accepted the bad input");
}

fn assert_nothing_committed(pair: &Pair) {
    assert!(pair.server.app.committed.is_empty());
    assert!(
        !pair
            .server
            .app
            .log
            .iter()
            .any(|e| matches!(e, Event::Received { .. }))
    );
}

#[test]
fn deflate_bomb_is_a_typed_error() {
    let mut pair = connected();
    let id = offered(&mut pair, "bomb", 65_536);
    pair.client.session.start(id, FileHasher::new()).unwrap();
    let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 1 << 20], 9);
    assert!(bomb.len() < 65_536);
    pair.client
        .session
        ._internal_inject_frame(data_frame(id.0, 0, Codec::Deflate, 65_536, &bomb));
    let err = run_until_server_error(&mut pair);
    assert_eq!(
        err,
        SessionError::Protocol(Violation::Inflate(InflateError::TooLong))
    );
    assert_nothing_committed(&pair);
}

#[test]
fn malicious_data_frames() {
    // Data before Accept.
    let mut pair = connected();
    let id = pair
        .client
        .session
        .offer(FileMeta::new("x", Some(10)))
        .unwrap();
    pair.client
        .session
        ._internal_inject_frame(data_frame(id.0, 0, Codec::Stored, 10, &[1; 10]));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::DataBeforeAccept(id.0))
    );
    assert_nothing_committed(&pair);

    // Non-contiguous offsets.
    let mut pair = connected();
    let id = offered(&mut pair, "x", 100);
    pair.client.session.start(id, FileHasher::new()).unwrap();
    pair.client
        .session
        ._internal_inject_frame(data_frame(id.0, 10, Codec::Stored, 10, &[1; 10]));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::NonContiguous(id.0))
    );
    assert_nothing_committed(&pair);

    // Beyond the offered size.
    let mut pair = connected();
    let id = offered(&mut pair, "x", 5);
    pair.client.session.start(id, FileHasher::new()).unwrap();
    pair.client
        .session
        ._internal_inject_frame(data_frame(id.0, 0, Codec::Stored, 10, &[1; 10]));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::SizeMismatch(id.0))
    );
    assert_nothing_committed(&pair);

    // Unknown file id.
    let mut pair = connected();
    pair.client
        .session
        ._internal_inject_frame(data_frame(99, 0, Codec::Stored, 1, &[1]));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::UnknownId(99))
    );

    // Garbage frame type inside an authenticated record.
    let mut pair = connected();
    pair.client
        .session
        ._internal_inject_frame(vec![0x07, 1, 2, 3]);
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Decode(DecodeError::UnknownFrame(7))
    );

    // A second Start.
    let mut pair = connected();
    pair.client
        .session
        ._internal_inject_frame(control(&Control::Start));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::WrongRole)
    );

    // A path longer than any honest sender would send.
    let mut pair = connected();
    let offer = Control::Offer(ferry_core::wire::Offer {
        id: 1,
        path: "p".repeat(ferry_core::wire::MAX_PATH_LEN + 1),
        size: Some(1),
        mode: None,
        mtime: None,
        request: None,
        hash: None,
        overwrite: false,
    });
    pair.client.session._internal_inject_frame(control(&offer));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::PathTooLong)
    );
    let mut pair = connected();
    let get = Control::Request {
        req: 1,
        kind: ferry_core::wire::RequestKind::Get {
            path: "p".repeat(5000),
        },
    };
    pair.client.session._internal_inject_frame(control(&get));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::PathTooLong)
    );

    // Close outside a FINAL record.
    let mut pair = connected();
    pair.client
        .session
        ._internal_inject_frame(control(&Control::Close {
            code: ferry_core::CloseCode::Done,
        }));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::BadClose)
    );
}

#[test]
fn forged_file_end_hash_fails_the_file_not_the_session() {
    let mut pair = connected();
    let id = offered(&mut pair, "forged", 4);
    pair.client.session.start(id, FileHasher::new()).unwrap();
    pair.client
        .session
        ._internal_inject_frame(data_frame(id.0, 0, Codec::Stored, 4, b"abcd"));
    pair.client
        .session
        ._internal_inject_frame(control(&Control::FileEnd {
            id: id.0,
            size: 4,
            hash: [0; 32],
        }));
    for _ in 0..10_000 {
        if !pair.server.app.receive_failed.is_empty() {
            break;
        }
        pair.drive_bounded(1);
    }
    assert_eq!(
        pair.server.app.receive_failed,
        vec![("forged".to_string(), Reason::HashMismatch)]
    );
    assert_nothing_committed(&pair);
    // The session survives and the sender hears about it.
    for _ in 0..10_000 {
        if pair
            .client
            .app
            .log
            .iter()
            .any(|e| matches!(e, Event::DeliveryFailed { .. }))
        {
            break;
        }
        pair.drive_bounded(1);
    }
    assert!(pair.client.app.log.iter().any(|e| matches!(e, Event::DeliveryFailed { problem, .. } if problem.reason == Reason::HashMismatch)));
    assert_eq!(pair.server.error, None);
    pair.sleep(Duration::from_millis(1));
}

#[test]
fn too_many_open_offers_is_a_violation() {
    let mut cfg = Config::default();
    cfg.max_open = 2;
    let mut pair = Pair::new(
        &Config::default(),
        &cfg,
        MemApp::new(),
        MemApp::new(),
        LinkConfig::default(),
        1,
    );
    while !pair.server.session.is_connected() {
        pair.drive_bounded(1);
    }
    // The client respects the server's limit...
    for i in 0..2 {
        pair.client
            .session
            .offer(FileMeta::new(&format!("f{i}"), Some(1)))
            .unwrap();
    }
    assert_eq!(
        pair.client.session.offer(FileMeta::new("f3", Some(1))),
        Err(ferry_core::RequestError::Busy)
    );
    // ...and a client that ignores it is cut off.
    let offer = Control::Offer(ferry_core::wire::Offer {
        id: 77,
        path: "sneaky".into(),
        size: Some(1),
        mode: None,
        mtime: None,
        request: None,
        hash: None,
        overwrite: false,
    });
    pair.client.session._internal_inject_frame(control(&offer));
    // The MemApp server answers the first two offers quickly; make them stay open by keeping
    // the files unfinished (the client app never starts them).
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::TooManyOpen)
    );
}

#[test]
fn file_end_contradicting_the_offered_hash_fails_the_file() {
    let mut pair = connected();
    let mut meta = FileMeta::new("claimed", Some(4));
    meta.hash = Some(ferry_core::hash(b"abcd"));
    let id = pair.client.session.offer(meta).unwrap();
    while !pair
        .client
        .app
        .log
        .iter()
        .any(|e| matches!(e, Event::Accepted { .. }))
    {
        pair.drive_bounded(1);
    }
    pair.client.session.start(id, FileHasher::new()).unwrap();
    // The bytes and FileEnd agree with each other, but not with the Offer's claim.
    assert_eq!(pair.client.session.write(id, b"abce").unwrap(), 4);
    pair.client.session.finish(id).unwrap();
    for _ in 0..10_000 {
        if !pair.server.app.receive_failed.is_empty() {
            break;
        }
        pair.drive_bounded(1);
    }
    assert_eq!(
        pair.server.app.receive_failed,
        vec![("claimed".to_string(), Reason::HashMismatch)]
    );
    assert_nothing_committed(&pair);
}

#[test]
fn out_of_range_fields_are_violations() {
    let mut pair = connected();
    let offer = Control::Offer(ferry_core::wire::Offer {
        id: 1,
        path: "t".into(),
        size: Some(1),
        mode: None,
        mtime: Some(ferry_core::Mtime {
            secs: 0,
            nanos: 1_000_000_000,
        }),
        request: None,
        hash: None,
        overwrite: false,
    });
    pair.client.session._internal_inject_frame(control(&offer));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::InvalidField)
    );
    let mut pair = connected();
    let done = Control::Done {
        req: 1,
        error: Some(ferry_core::Problem {
            reason: Reason::Other,
            detail: "x".repeat(600),
        }),
    };
    pair.client.session._internal_inject_frame(control(&done));
    assert_eq!(
        run_until_server_error(&mut pair),
        SessionError::Protocol(Violation::InvalidField)
    );
}
