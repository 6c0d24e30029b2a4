//! Hostile input: mutations of a recorded session, and a malicious peer that holds the key.
//! Every case must end in a typed error (or a per-file failure) and publish nothing it should
//! not.

use ferry_core::testing::{LinkConfig, MemApp, Pair, Replay, TestRng, replay_server, test_psk};
use ferry_core::wire::{
    Codec, Control, MAX_PATH_LEN, Offer, RequestKind, encode_control, encode_data_header,
};
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
    eprintln!(
        "{} single-bit flips of a {}-byte session: {kinds:?}",
        stream.len() * 8,
        stream.len()
    );
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
    pair.drive_until(10_000, |p| {
        p.client
            .app
            .log
            .iter()
            .any(|e| matches!(e, Event::Accepted { id: i, .. } if *i == id))
    });
    id
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
            .any(|e| matches!(e, Event::Verified { .. }))
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

/// A malicious client frame, built once the file (if any) is in the given state.
enum Setup {
    /// Just connected.
    None,
    /// Offered `size` bytes; the frame rides right behind the offer.
    Offered(u64),
    /// Offered `size` bytes, accepted and started.
    Started(u64),
}

fn raw_offer(id: u32, path: &str, mtime: Option<ferry_core::Mtime>) -> Control {
    Control::Offer(Offer {
        id,
        path: path.to_string(),
        size: Some(1),
        mode: None,
        mtime,
        request: None,
        hash: None,
        overwrite: false,
    })
}

fn malicious_case(setup: Setup, frame: impl FnOnce(u32) -> Vec<u8>) -> (SessionError, Pair) {
    let mut pair = connected();
    let id = match setup {
        Setup::None => 0,
        Setup::Offered(size) => {
            pair.client
                .session
                .offer(FileMeta::new("x", Some(size)))
                .unwrap()
                .0
        }
        Setup::Started(size) => {
            let id = offered(&mut pair, "x", size);
            pair.client.session.start(id, FileHasher::new()).unwrap();
            id.0
        }
    };
    pair.client.session._internal_inject_frame(frame(id));
    (run_until_server_error(&mut pair), pair)
}

#[test]
fn malicious_frames() {
    let stored = |offset: u64, len: u32| {
        move |id: u32| data_frame(id, offset, Codec::Stored, len, &vec![1; len as usize])
    };
    type FrameFor = Box<dyn FnOnce(u32) -> Vec<u8>>;
    let cases: Vec<(&str, Setup, FrameFor, SessionError)> = vec![
        (
            "data before accept",
            Setup::Offered(10),
            Box::new(stored(0, 10)),
            SessionError::Protocol(Violation::DataBeforeAccept(0)),
        ),
        (
            "non-contiguous",
            Setup::Started(100),
            Box::new(stored(10, 10)),
            SessionError::Protocol(Violation::NonContiguous(0)),
        ),
        (
            "beyond size",
            Setup::Started(5),
            Box::new(stored(0, 10)),
            SessionError::Protocol(Violation::SizeMismatch(0)),
        ),
        (
            "unknown id",
            Setup::None,
            Box::new(|_| data_frame(99, 0, Codec::Stored, 1, &[1])),
            SessionError::Protocol(Violation::UnknownId(99)),
        ),
        (
            "garbage frame type",
            Setup::None,
            Box::new(|_| vec![0x07, 1, 2, 3]),
            SessionError::Decode(DecodeError::UnknownFrame(7)),
        ),
        (
            "second Start",
            Setup::None,
            Box::new(|_| control(&Control::Start)),
            SessionError::Protocol(Violation::WrongRole),
        ),
        (
            "over-long offer path",
            Setup::None,
            Box::new(|_| control(&raw_offer(1, &"p".repeat(MAX_PATH_LEN + 1), None))),
            SessionError::Protocol(Violation::PathTooLong),
        ),
        (
            "over-long GET path",
            Setup::None,
            Box::new(|_| {
                control(&Control::Request {
                    req: 1,
                    kind: RequestKind::Get {
                        path: "p".repeat(MAX_PATH_LEN + 1),
                    },
                })
            }),
            SessionError::Protocol(Violation::PathTooLong),
        ),
        (
            "nanoseconds out of range",
            Setup::None,
            Box::new(|_| {
                control(&raw_offer(
                    1,
                    "t",
                    Some(ferry_core::Mtime {
                        secs: 0,
                        nanos: 1_000_000_000,
                    }),
                ))
            }),
            SessionError::Protocol(Violation::InvalidField),
        ),
        (
            "over-long problem detail",
            Setup::None,
            Box::new(|_| {
                control(&Control::Done {
                    req: 1,
                    error: Some(ferry_core::Problem {
                        reason: Reason::Other,
                        detail: "x".repeat(600),
                    }),
                })
            }),
            SessionError::Protocol(Violation::InvalidField),
        ),
        (
            "Close outside FINAL",
            Setup::None,
            Box::new(|_| {
                control(&Control::Close {
                    code: ferry_core::CloseCode::Done,
                })
            }),
            SessionError::Protocol(Violation::BadClose),
        ),
    ];
    for (name, setup, frame, want) in cases {
        let (got, pair) = malicious_case(setup, frame);
        assert_eq!(got, want, "{name}");
        assert_nothing_committed(&pair);
    }
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
    pair.drive_until(10_000, |p| !p.server.app.receive_failed.is_empty());
    assert_eq!(
        pair.server.app.receive_failed,
        vec![("forged".to_string(), Reason::HashMismatch)]
    );
    assert_nothing_committed(&pair);
    // The session survives and the sender hears about it.
    pair.drive_until(10_000, |p| {
        p.client.app.log.iter().any(|e| {
            matches!(e, Event::DeliveryFailed { problem, .. } if problem.reason == Reason::HashMismatch)
        })
    });
    assert_eq!(pair.server.error, None);
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
    let offer = raw_offer(77, "sneaky", None);
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
    pair.drive_until(10_000, |p| {
        p.client
            .app
            .log
            .iter()
            .any(|e| matches!(e, Event::Accepted { .. }))
    });
    pair.client.session.start(id, FileHasher::new()).unwrap();
    // The bytes and FileEnd agree with each other, but not with the Offer's claim.
    assert_eq!(pair.client.session.write(id, b"abce").unwrap(), 4);
    pair.client.session.finish(id).unwrap();
    pair.drive_until(10_000, |p| !p.server.app.receive_failed.is_empty());
    assert_eq!(
        pair.server.app.receive_failed,
        vec![("claimed".to_string(), Reason::HashMismatch)]
    );
    assert_nothing_committed(&pair);
}

#[test]
fn server_silence_during_handshake_reads_as_refused() {
    // A server that fails message 1 (wrong key) closes without a word; the client says why.
    let mut c = ferry_core::Session::client(
        &Config::default(),
        &test_psk(),
        [1; 32],
        ferry_core::Instant::ZERO,
    );
    let mut out = vec![0u8; ferry_core::MAX_RECORD];
    assert!(
        c.poll_transmit(ferry_core::Instant::ZERO, &mut out)
            .unwrap()
            > 0
    );
    assert_eq!(
        c.handle_eof(ferry_core::Instant::ZERO),
        Err(SessionError::Handshake(HandshakeError::Refused))
    );
}

/// A server's busy refusal in place of message 2 is `Handshake(Busy)`, in any split; anything
/// else with a zero length is still `BadLength`, and the refusal is not taken from a client.
#[test]
fn busy_refusal_is_recognised_and_nothing_else_is() {
    let now = ferry_core::Instant::from_micros(0);
    for split in 0..ferry_core::BUSY_REFUSAL.len() {
        let mut c = ferry_core::Session::client(&Config::default(), &test_psk(), [5; 32], now);
        let mut out = vec![0u8; 4096];
        while c.poll_transmit(now, &mut out).unwrap() > 0 {}
        let mut wire = ferry_core::BUSY_REFUSAL.to_vec();
        let (a, b) = wire.split_at_mut(split);
        let used = c.handle_input(now, a);
        assert!(matches!(used, Ok(0)), "a prefix waits for more: {used:?}");
        let mut whole = [&a[..], &b[..]].concat();
        assert_eq!(
            c.handle_input(now, &mut whole),
            Err(SessionError::Handshake(HandshakeError::Busy))
        );
    }
    let mut c = ferry_core::Session::client(&Config::default(), &test_psk(), [5; 32], now);
    let mut other = *b"\0\0bust";
    assert_eq!(
        c.handle_input(now, &mut other),
        Err(SessionError::Handshake(HandshakeError::BadLength))
    );
    let mut s = ferry_core::Session::server(&Config::default(), &test_psk(), [6; 32], now);
    let mut busy = ferry_core::BUSY_REFUSAL;
    assert!(s.handle_input(now, &mut busy).is_err());
}

/// `commit_write` queues only bytes of the room `write_room` handed out for that file: more
/// than the room, another file's room or no room at all queues nothing; past the offered size
/// is `TooLong`. What was committed arrives whole and verified.
#[test]
fn commit_write_takes_only_the_room_handed_out() {
    use ferry_core::WriteError;
    let mut pair = connected();
    let id = offered(&mut pair, "room", 100);
    let s = &mut pair.client.session;
    assert_eq!(s.write_room(id, 10).err(), Some(WriteError::InvalidState));
    s.start(id, FileHasher::new()).unwrap();
    let room = s.write_room(id, 1_000).unwrap();
    assert_eq!(room.len(), 100, "bounded by what is left of the file");
    room[..60].fill(7);
    assert_eq!(s.commit_write(id, 101), Err(WriteError::TooLong));
    assert_eq!(
        s.commit_write(id, 60),
        Ok(0),
        "the room was taken back by the failed call"
    );
    let room = s.write_room(id, 60).unwrap();
    room.fill(7);
    assert_eq!(s.commit_write(id, 60), Ok(60));
    assert_eq!(s.commit_write(id, 10), Ok(0), "no room handed out");
    let room = s.write_room(id, 5).unwrap();
    assert_eq!(room.len(), 5);
    assert_eq!(s.commit_write(id, 6), Ok(0), "more than the room");
    assert_eq!(
        s.commit_write(SendId(id.0 + 1), 1),
        Err(WriteError::InvalidState)
    );
    let room = s.write_room(id, 1_000).unwrap();
    assert_eq!(room.len(), 40);
    room.fill(7);
    assert_eq!(s.commit_write(id, 40), Ok(40));
    assert!(
        s.write_room(id, 1_000).unwrap().is_empty(),
        "the file is complete"
    );
    s.finish(id).unwrap();
    pair.drive_until(10_000, |p| p.server.app.files.contains_key("room"));
    assert_eq!(pair.server.app.files["room"], vec![7u8; 100]);
}
