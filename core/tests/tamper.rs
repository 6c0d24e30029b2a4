//! Named tamper cases, in the style of age's test vectors (C2SP CCTV): each file in
//! `core/tests/corpus/` is one client byte stream with one defect and the outcome a server must
//! reach, replayed into a fresh server by `cargo test`.
//!
//! A case file is a text header, a blank line, then the raw client stream:
//!
//! ```text
//! ferry tamper case v1
//! name: flipped-tag-byte
//! defect: the last byte of the tag of the client's first record is flipped
//! server-seed: <64 hex digits>    the server session's seed (the recording's)
//! key: <64 hex digits>            key-file bytes of the server's PSK
//! expect: Authentication          the server's error ({:?} of SessionError), or "ok"
//! committed: a.txt, b.bin         files the server publishes ("-": none)
//! receive-failed: x:HashMismatch  files the server fails (path:reason, "-": none)
//!
//! <client byte stream>
//! ```
//!
//! The streams come from deterministic sessions of the in-memory `Pair` (fixed seeds).
//! `FERRY_WRITE_CORPUS=1 cargo test -p ferry-core --test tamper` rewrites the files; without
//! it, `cases_regenerate_identically` checks that regenerating gives the same bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_core::testing::{LinkConfig, MemApp, Pair, TestRng, replay_server, test_psk};
use ferry_core::wire::{Codec, Control, encode_control, encode_data_header};
use ferry_core::{Config, Event, FileMeta, Instant, Psk};

const PREAMBLE_AND_MESSAGE_1: usize = 8 + 2 + 75;
/// The key-file bytes `test_psk()` is derived from.
const KEY: [u8; 32] = [0x42; 32];
const WRONG_KEY: [u8; 32] = [0x43; 32];
const RECORDING_SEED: u64 = 0x7A3F_0001;
const FORGER_SEED: u64 = 0x7A3F_0002;

struct Case {
    name: &'static str,
    defect: &'static str,
    server_seed: [u8; 32],
    key: [u8; 32],
    expect: String,
    committed: Vec<String>,
    receive_failed: Vec<String>,
    stream: Vec<u8>,
}

impl Case {
    fn to_bytes(&self) -> Vec<u8> {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        let mut out = format!(
            "ferry tamper case v1\nname: {}\ndefect: {}\nserver-seed: {}\nkey: {}\nexpect: {}\ncommitted: {}\nreceive-failed: {}\n\n",
            self.name,
            self.defect,
            hex::encode(self.server_seed),
            hex::encode(self.key),
            self.expect,
            list(&self.committed),
            list(&self.receive_failed),
        )
        .into_bytes();
        out.extend_from_slice(&self.stream);
        out
    }
}

/// A parsed case file: header fields and the stream.
fn parse(bytes: &[u8]) -> (BTreeMap<String, String>, Vec<u8>) {
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("a case file has a blank line after its header");
    let header = std::str::from_utf8(&bytes[..split]).expect("the header is text");
    let mut lines = header.lines();
    assert_eq!(lines.next(), Some("ferry tamper case v1"));
    let fields = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("header lines are `key: value`");
            (k.to_string(), v.to_string())
        })
        .collect();
    (fields, bytes[split + 2..].to_vec())
}

fn list(s: &str) -> Vec<String> {
    if s == "-" {
        Vec::new()
    } else {
        s.split(", ").map(str::to_string).collect()
    }
}

fn unhex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Where the records of a client stream start, and its end.
fn boundaries(stream: &[u8]) -> Vec<usize> {
    let mut b = vec![];
    let mut pos = PREAMBLE_AND_MESSAGE_1;
    while pos < stream.len() {
        b.push(pos);
        let len = u32::from_be_bytes([0, stream[pos + 1], stream[pos + 2], stream[pos + 3]]);
        pos += 4 + len as usize;
    }
    assert_eq!(pos, stream.len());
    b.push(pos);
    b
}

fn some_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = TestRng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// A clean session: the client puts two files (one of them over two records) and closes.
fn recording() -> (Vec<u8>, [u8; 32]) {
    let mut client = MemApp::new()
        .with_file("a.txt", b"hello ferry ".repeat(50))
        .with_file("b.bin", some_bytes(1, 900));
    client
        .to_send
        .extend(["a.txt".to_string(), "b.bin".to_string()]);
    client.close_when_done = true;
    let mut pair = Pair::new(
        &Config::default(),
        &Config::default(),
        client,
        MemApp::new(),
        LinkConfig::default(),
        RECORDING_SEED,
    );
    assert!(pair.drive());
    assert_eq!(pair.server.app.committed, ["a.txt", "b.bin"]);
    (pair.c2s.log.clone(), pair.server_seed)
}

/// A client that holds the key sends DATA and then a FileEnd whose hash is not the hash of
/// that DATA, and closes in the same record.
fn forged_file_end() -> (Vec<u8>, [u8; 32]) {
    let mut pair = Pair::simple(MemApp::new(), MemApp::new(), FORGER_SEED);
    pair.drive_until(10_000, |p| {
        p.client.session.is_connected() && p.server.session.is_connected()
    });
    let body = some_bytes(2, 300);
    let id = pair
        .client
        .session
        .offer(FileMeta::new("forged.txt", Some(body.len() as u64)))
        .unwrap();
    pair.drive_until(10_000, |p| {
        p.client
            .app
            .log
            .iter()
            .any(|e| matches!(e, Event::Accepted { id: i, .. } if *i == id))
    });
    let mut data = vec![0u8; 22];
    encode_data_header(&mut data, id.0, 0, Codec::Stored, 300, 300).unwrap();
    data.extend_from_slice(&body);
    let mut end = vec![0u8; 64];
    let n = encode_control(
        &Control::FileEnd {
            id: id.0,
            size: 300,
            hash: ferry_core::hash(b"something else"),
        },
        &mut end,
    )
    .unwrap();
    end.truncate(n);
    pair.client.session._internal_inject_frame(data);
    pair.client.session._internal_inject_frame(end);
    pair.client
        .session
        .close(Instant::ZERO, ferry_core::CloseCode::Done);
    assert!(pair.drive());
    assert!(pair.server.app.committed.is_empty());
    (pair.c2s.log.clone(), pair.server_seed)
}

fn all_cases() -> Vec<Case> {
    let (stream, server_seed) = recording();
    let b = boundaries(&stream);
    assert!(b.len() >= 4, "at least three records: {b:?}");
    let both = vec!["a.txt".to_string(), "b.bin".to_string()];
    let case = |name, defect, expect: &str, committed: Vec<String>, stream: Vec<u8>| Case {
        name,
        defect,
        server_seed,
        key: KEY,
        expect: expect.to_string(),
        committed,
        receive_failed: vec![],
        stream,
    };
    let first = b[0]..b[1];
    let second = b[1]..b[2];
    let last = b[b.len() - 2]..b[b.len() - 1];

    let mut flipped = stream.clone();
    flipped[first.end - 1] ^= 0x01;

    let truncated = stream[..last.end - 7].to_vec();

    let mut swapped = stream[..first.start].to_vec();
    swapped.extend_from_slice(&stream[second.clone()]);
    swapped.extend_from_slice(&stream[first.clone()]);
    swapped.extend_from_slice(&stream[second.end..]);

    let mut replayed = stream[..second.end].to_vec();
    replayed.extend_from_slice(&stream[second.clone()]);
    replayed.extend_from_slice(&stream[second.end..]);

    let mut oversized = stream[..first.start + 4].to_vec();
    oversized[first.start + 1..first.start + 4].copy_from_slice(&[0xff, 0xff, 0xff]);

    let mut trailing = stream.clone();
    trailing.extend_from_slice(b"\x17\x00\x00\x14more");

    let (forged, forger_seed) = forged_file_end();

    vec![
        case(
            "flipped-tag-byte",
            "the last byte of the tag of the client's first record is flipped",
            "Authentication",
            vec![],
            flipped,
        ),
        case(
            "truncated-final-record",
            "the stream ends 7 bytes before the end of the FINAL record (the Close never arrives)",
            "Truncated",
            both.clone(),
            truncated,
        ),
        case(
            "swapped-records",
            "the client's first two records are swapped",
            "Authentication",
            vec![],
            swapped,
        ),
        case(
            "replayed-record",
            "the client's second record (the files' DATA and FileEnds) is sent twice",
            "Authentication",
            both.clone(),
            replayed,
        ),
        Case {
            key: WRONG_KEY,
            ..case(
                "wrong-psk",
                "the server holds another key file than the client",
                "Authentication",
                vec![],
                stream.clone(),
            )
        },
        case(
            "oversized-length",
            "the first record's header claims 0xffffff bytes (only the header is sent)",
            "Record(BadLength(16777215))",
            vec![],
            oversized,
        ),
        case(
            "trailing-bytes",
            "bytes follow the client's FINAL record",
            "TrailingData",
            both,
            trailing,
        ),
        Case {
            name: "forged-file-end",
            defect: "a client holding the key sends a file's DATA and then a FileEnd whose hash is not that of the DATA",
            server_seed: forger_seed,
            key: KEY,
            expect: "ok".to_string(),
            committed: vec![],
            receive_failed: vec!["forged.txt:HashMismatch".to_string()],
            stream: forged,
        },
    ]
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[test]
fn cases_regenerate_identically() {
    let write = std::env::var_os("FERRY_WRITE_CORPUS").is_some_and(|v| v == "1");
    if write {
        std::fs::create_dir_all(corpus()).unwrap();
    }
    for case in all_cases() {
        let path = corpus().join(format!("{}.bin", case.name));
        let bytes = case.to_bytes();
        if write {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (FERRY_WRITE_CORPUS=1 writes it)", path.display())
            });
            assert!(
                committed == bytes,
                "{} is not what regenerating gives (FERRY_WRITE_CORPUS=1 rewrites it)",
                path.display()
            );
        }
    }
}

#[test]
fn every_case_reaches_its_expected_outcome() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "the eight named cases");
    for path in files {
        let (h, stream) = parse(&std::fs::read(&path).unwrap());
        let name = &h["name"];
        let psk = Psk::from_key_bytes(&unhex32(&h["key"]));
        let got = replay_server(
            &Config::default(),
            &psk,
            unhex32(&h["server-seed"]),
            &stream,
            &[],
        );
        let error = got.error.map_or("ok".to_string(), |e| format!("{e:?}"));
        assert_eq!(error, h["expect"], "{name}");
        let committed: Vec<String> = got.committed.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(committed, list(&h["committed"]), "{name}: committed");
        assert_eq!(
            got.app.files.keys().cloned().collect::<Vec<_>>(),
            committed,
            "{name}"
        );
        let failed: Vec<String> = got
            .app
            .receive_failed
            .iter()
            .map(|(p, r)| format!("{p}:{r:?}"))
            .collect();
        assert_eq!(failed, list(&h["receive-failed"]), "{name}: receive-failed");
        // The same stream cut anywhere into pieces reaches the same outcome.
        let cuts: Vec<usize> = (1..stream.len()).step_by(97).collect();
        let again = replay_server(
            &Config::default(),
            &psk,
            unhex32(&h["server-seed"]),
            &stream,
            &cuts,
        );
        assert_eq!(again.error, got.error, "{name}: cut stream");
        assert_eq!(
            again.committed.len(),
            got.committed.len(),
            "{name}: cut stream"
        );
    }
}

/// The recordings the cases are cut from are sound: untampered, they end cleanly.
#[test]
fn untampered_recordings_are_clean() {
    let (stream, seed) = recording();
    let got = replay_server(&Config::default(), &test_psk(), seed, &stream, &[]);
    assert_eq!(got.error, None);
    assert_eq!(got.app.files.len(), 2);
}
