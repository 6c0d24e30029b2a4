//! The fuzz corpora in `fuzz/corpus/<target>/`, on stable.
//!
//! `replay_every_corpus_file` runs every file (seeds and crash regressions alike) through the
//! target's body in `ferry_core::testing::fuzz`, with the same invariant checks the fuzzer
//! uses. The seeds (`seed-*` files) are written by this file from real sessions:
//! `FERRY_WRITE_CORPUS=1 cargo test -p ferry-core --test fuzz_corpus` (re)writes them; without
//! it `seeds_are_up_to_date` checks that the committed seeds are exactly what it would write.
//!
//! Seeds of the raw targets come in two flavours: streams recorded from a real [`Pair`]
//! (they get through the real AEAD, so they go deep here), and the same shapes under the null
//! AEAD of fuzz builds (all-zero tags, so they go deep under the fuzzer).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_core::testing::fuzz::{
    self, AppOp, FUZZ_PAIR_SEED, Knobs, Op, PeerFrame, SessionInput, client_app,
    null_client_stream, null_record, null_server_stream, seal_records, server_app,
};
use ferry_core::testing::{LinkConfig, Pair, deflate_chunk};
use ferry_core::wire::{
    BoundedVec, CloseCode, Codec, Control, ListEntry, Mtime, Offer, Problem, Reason, RequestKind,
    encode_control, encode_data_header,
};
use ferry_core::{Compression, Config};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn control(msg: &Control) -> Vec<u8> {
    let mut f = vec![0u8; 20_000];
    let n = encode_control(msg, &mut f).unwrap();
    f.truncate(n);
    f
}

fn data_frame(id: u32, offset: u64, codec: Codec, plain_len: u32, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 22];
    encode_data_header(&mut f, id, offset, codec, plain_len, body.len() as u32).unwrap();
    f.extend_from_slice(body);
    f
}

fn offer(id: u32, path: &str, size: u64) -> Control {
    Control::Offer(Offer {
        id,
        path: path.into(),
        size: Some(size),
        mode: Some(0o644),
        mtime: Some(Mtime {
            secs: 1_700_000_000,
            nanos: 5,
        }),
        request: None,
        hash: None,
        overwrite: false,
    })
}

/// A small PUT as plaintext records: Start, Offer, then DATA (stored and deflated) with
/// FileEnd, then Close.
fn put_records() -> Vec<(Vec<u8>, bool)> {
    let body = b"hello ferry ".repeat(100);
    let packed = deflate_chunk(&body).unwrap();
    let mut data = data_frame(0, 0, Codec::Stored, 600, &body[..600]);
    data.extend(data_frame(
        0,
        600,
        Codec::Deflate,
        600,
        &deflate_chunk(&body[600..]).unwrap(),
    ));
    data.extend(control(&Control::FileEnd {
        id: 0,
        size: 1200,
        hash: ferry_core::hash(&body),
    }));
    let _ = packed;
    vec![
        (control(&Control::Start), false),
        (control(&offer(0, "greeting.txt", 1200)), false),
        (data, false),
        (
            control(&Control::Close {
                code: CloseCode::Done,
            }),
            true,
        ),
    ]
}

fn borrow(records: &[(Vec<u8>, bool)]) -> Vec<(&[u8], bool)> {
    records.iter().map(|(r, f)| (&r[..], *f)).collect()
}

/// The recorded pair of the handshake targets: the fuzz client and server apps, the seeds of
/// [`FUZZ_PAIR_SEED`]; the client deflates.
fn recorded_pair() -> Pair {
    let mut ccfg = Config::default();
    ccfg.compression = Compression::On;
    let mut pair = Pair::new(
        &ccfg,
        &Config::default(),
        client_app(),
        server_app(),
        LinkConfig::default(),
        FUZZ_PAIR_SEED,
    );
    assert!(pair.drive(), "the recorded session finishes");
    assert_eq!(pair.client.error, None);
    assert_eq!(pair.server.error, None);
    assert_eq!(pair.server.app.committed.len(), 2);
    assert_eq!(pair.client.app.committed.len(), 1);
    pair
}

fn with_cut(cut: u8, stream: &[u8]) -> Vec<u8> {
    let mut v = vec![cut];
    v.extend_from_slice(stream);
    v
}

fn decode_frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let put = put_records();
    let problem = || Problem::new(Reason::NoSpace, "disk full");
    let mut seeds = vec![
        ("put-offer", put[1].0.clone()),
        ("put-data-fileend", put[2].0.clone()),
        ("close", put[3].0.clone()),
    ];
    let msgs = [
        (
            "accept",
            Control::Accept {
                id: 3,
                resume_from: 500,
                prefix_hash: [7; 32],
            },
        ),
        (
            "reject",
            Control::Reject {
                id: 1,
                problem: problem(),
            },
        ),
        ("ack", Control::Ack { id: 2 }),
        (
            "commit-failed",
            Control::CommitFailed {
                id: 2,
                problem: problem(),
            },
        ),
        (
            "abort",
            Control::Abort {
                id: 2,
                problem: problem(),
            },
        ),
        (
            "get",
            Control::Request {
                req: 1,
                kind: RequestKind::Get {
                    path: "dir/x".into(),
                },
            },
        ),
        (
            "list",
            Control::Request {
                req: 2,
                kind: RequestKind::List {
                    path: String::new(),
                },
            },
        ),
        (
            "listing",
            Control::Listing {
                req: 2,
                entries: BoundedVec(vec![
                    ListEntry {
                        path: "a".into(),
                        size: 1,
                        mtime: None,
                    },
                    ListEntry {
                        path: "b/c".into(),
                        size: 1 << 40,
                        mtime: Some(Mtime { secs: -1, nanos: 0 }),
                    },
                ]),
            },
        ),
        (
            "done",
            Control::Done {
                req: 1,
                error: Some(problem()),
            },
        ),
        ("ping-start", Control::Ping),
    ];
    for (name, m) in msgs {
        let mut f = control(&m);
        if name == "ping-start" {
            f.extend(control(&Control::Start));
        }
        seeds.push((name, f));
    }
    seeds
}

fn record_open_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let put = put_records();
    let recs = borrow(&put);
    let mut null = vec![0u8, 0];
    let mut null_rekey = vec![0x40u8, 1];
    for (pt, fin) in &recs {
        null.extend(null_record(pt, *fin));
        null_rekey.extend(null_record(pt, *fin));
    }
    vec![
        ("sealed", seal_records([0, 0], &recs)),
        ("sealed-rekey-small", seal_records([1, 1], &recs)),
        ("null", null),
        ("null-rekey", null_rekey),
    ]
}

fn handshake_server_seeds(pair: &Pair) -> Vec<(&'static str, Vec<u8>)> {
    let put = put_records();
    vec![
        ("recorded", with_cut(0, &pair.c2s.log)),
        ("recorded-cut", with_cut(37, &pair.c2s.log)),
        ("null-put", with_cut(0, &null_client_stream(&borrow(&put)))),
    ]
}

fn handshake_client_seeds(pair: &Pair) -> Vec<(&'static str, Vec<u8>)> {
    let accept = control(&Control::Accept {
        id: 0,
        resume_from: 0,
        prefix_hash: [0; 32],
    });
    let mut ack = control(&Control::Ack { id: 0 });
    ack.extend(control(&Control::Close {
        code: CloseCode::Done,
    }));
    let records = [(&accept[..], false), (&ack[..], true)];
    vec![
        ("recorded", with_cut(0, &pair.s2c.log)),
        ("recorded-cut", with_cut(61, &pair.s2c.log)),
        ("null-accept", with_cut(0, &null_server_stream(&records))),
        ("busy", with_cut(0, &ferry_core::BUSY_REFUSAL)),
    ]
}

fn inflate_seed(declared: usize, stream: &[u8]) -> Vec<u8> {
    let mut v = (declared as u32).to_be_bytes()[1..].to_vec();
    v.extend_from_slice(stream);
    v
}

fn inflate_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let text = b"the quick brown fox jumps over the lazy dog; ".repeat(30);
    let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 1 << 18], 9);
    let stored = miniz_oxide::deflate::compress_to_vec(b"ferry", 0);
    vec![
        (
            "text",
            inflate_seed(text.len(), &deflate_chunk(&text).unwrap()),
        ),
        (
            "text-too-short",
            inflate_seed(text.len() + 1, &deflate_chunk(&text).unwrap()),
        ),
        ("bomb", inflate_seed(65_536, &bomb)),
        ("stored", inflate_seed(5, &stored)),
        (
            "fixed",
            inflate_seed(17, &hex::decode("cb48cdc9c957c8409000").unwrap()),
        ),
    ]
}

/// Sealed files under the target's fixed key, real and null-AEAD, a few lengths around the
/// 16 KiB chunk; the first byte is the target's split selector.
fn seal_open_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use ferry_core::seal::{Argon2Params, CHUNK_LEN, FileHeader, KeySource, PlaintextCodec};
    let stored = FileHeader {
        key: KeySource::KeyFile,
        codec: PlaintextCodec::Stored,
    };
    let deflate = FileHeader {
        key: KeySource::KeyFile,
        codec: PlaintextCodec::Deflate,
    };
    let argon = FileHeader {
        key: KeySource::Argon2id(Argon2Params::recommended([9; Argon2Params::SALT_LEN])),
        codec: PlaintextCodec::Stored,
    };
    let text = b"sealed at rest; ".repeat(10);
    let two_chunks: Vec<u8> = (0..2 * CHUNK_LEN + 300).map(|i| (i % 251) as u8).collect();
    let split = |s: u8, file: Vec<u8>| {
        let mut v = vec![s];
        v.extend(file);
        v
    };
    vec![
        ("empty", split(0, fuzz::sealed_file(&stored, b""))),
        ("text", split(3, fuzz::sealed_file(&deflate, &text))),
        (
            "one-chunk",
            split(200, fuzz::sealed_file(&stored, &two_chunks[..CHUNK_LEN])),
        ),
        (
            "two-chunks",
            split(255, fuzz::sealed_file(&stored, &two_chunks)),
        ),
        ("null-empty", split(0, fuzz::null_sealed_file(&stored, b""))),
        (
            "null-text",
            split(1, fuzz::null_sealed_file(&deflate, &text)),
        ),
        (
            "null-one-chunk",
            split(7, fuzz::null_sealed_file(&stored, &two_chunks[..CHUNK_LEN])),
        ),
        (
            "null-two-chunks",
            split(90, fuzz::null_sealed_file(&stored, &two_chunks)),
        ),
        (
            "argon2id-header",
            split(0, fuzz::sealed_file(&argon, &text)),
        ),
    ]
}

// ---- structured session seeds ---------------------------------------------------------------

fn f(frame: PeerFrame) -> Op {
    Op::Frame(frame)
}
const SEAL: Op = Op::Seal { fin: false };
const FIN: Op = Op::Seal { fin: true };
const DELIVER: Op = Op::Deliver { max: 0 };

fn peer_offer(id: u8, path: u8, size: u32, hash: bool) -> Op {
    f(PeerFrame::Offer {
        id,
        path,
        size: Some(size),
        hash,
        overwrite: false,
        request: None,
        bad_mtime: false,
    })
}

fn data(id: u8, len: u16, deflate: bool) -> Op {
    f(PeerFrame::Data {
        id,
        offset: None,
        len,
        deflate,
        corrupt: false,
    })
}

fn file_end(id: u8, good_hash: bool) -> Op {
    f(PeerFrame::FileEnd {
        id,
        size: None,
        good_hash,
    })
}

fn peer_close() -> Vec<Op> {
    vec![f(PeerFrame::Close { code: 0 }), FIN, DELIVER]
}

fn session_server_seeds() -> Vec<(&'static str, SessionInput)> {
    let put = |id, path, size, deflate, good_hash| {
        let mut ops = vec![peer_offer(id, path, size, true), SEAL, DELIVER];
        ops.extend([
            data(id, 0, deflate),
            data(id, 0, deflate),
            file_end(id, good_hash),
            SEAL,
            DELIVER,
        ]);
        ops
    };
    let mut honest = put(0, 4, 3000, false, true);
    honest.extend(peer_close());

    let mut multi_chunk = put(1, 5, 100_000, true, true);
    multi_chunk.extend(put(2, 4, 10, false, true));
    multi_chunk.extend(peer_close());

    let mut forged = put(0, 4, 3000, false, false);
    forged.extend(peer_close());

    let mut resume = vec![Op::App(AppOp::Partial {
        path: 4,
        len: 1000,
        good: true,
    })];
    resume.extend(put(0, 4, 3000, false, true));
    resume.push(Op::App(AppOp::Partial {
        path: 5,
        len: 500,
        good: false,
    }));
    resume.extend(put(1, 5, 2000, true, true));
    resume.extend(peer_close());

    let mut requests = vec![
        f(PeerFrame::Request {
            req: 0,
            kind: 1,
            path: 7,
        }),
        f(PeerFrame::Request {
            req: 1,
            kind: 0,
            path: 0,
        }),
        f(PeerFrame::Request {
            req: 2,
            kind: 2,
            path: 4,
        }),
        SEAL,
        DELIVER,
        f(PeerFrame::Accept {
            file: 0,
            resume_from: 0,
            good_prefix: true,
        }),
        SEAL,
        DELIVER,
        f(PeerFrame::Ack { file: 0 }),
        SEAL,
        DELIVER,
    ];
    requests.extend(peer_close());

    let mut stalled = vec![Op::App(AppOp::PauseReads { on: true })];
    stalled.extend(put(1, 5, 150_000, false, true));
    stalled.extend([
        Op::Advance { secs: 20 },
        Op::App(AppOp::PauseReads { on: false }),
    ]);
    stalled.extend([
        data(1, 0, false),
        file_end(1, true),
        SEAL,
        DELIVER,
        Op::Advance { secs: 70 },
    ]);

    let mut fail = put(3, 4, 70_000, false, true);
    fail.insert(3, Op::App(AppOp::FailIncoming { file: 0 }));
    fail.extend([f(PeerFrame::Abort { id: 3 }), SEAL, DELIVER]);
    fail.extend(peer_close());

    let default = Knobs {
        accept_compression: true,
        peer_deflate: true,
        ..Knobs::default()
    };
    let small = Knobs {
        small_window: true,
        small_plaintext: true,
        small_events: true,
        rekey: true,
        batch: true,
        max_open: 2,
        ..default.clone()
    };
    vec![
        (
            "put",
            SessionInput {
                knobs: default.clone(),
                ops: honest,
            },
        ),
        (
            "put-multi-chunk",
            SessionInput {
                knobs: default.clone(),
                ops: multi_chunk.clone(),
            },
        ),
        (
            "put-small-limits",
            SessionInput {
                knobs: small,
                ops: multi_chunk,
            },
        ),
        (
            "forged-file-end",
            SessionInput {
                knobs: default.clone(),
                ops: forged,
            },
        ),
        (
            "resume",
            SessionInput {
                knobs: default.clone(),
                ops: resume,
            },
        ),
        (
            "get-list",
            SessionInput {
                knobs: default.clone(),
                ops: requests,
            },
        ),
        (
            "stalled-reader",
            SessionInput {
                knobs: default.clone(),
                ops: stalled,
            },
        ),
        (
            "fail-abort",
            SessionInput {
                knobs: default,
                ops: fail,
            },
        ),
    ]
}

fn session_client_seeds() -> Vec<(&'static str, SessionInput)> {
    let accept = |file, resume_from, good_prefix| {
        f(PeerFrame::Accept {
            file,
            resume_from,
            good_prefix,
        })
    };
    let send = vec![
        Op::App(AppOp::Send { path: 0 }),
        Op::App(AppOp::Send { path: 1 }),
        accept(0, 0, true),
        accept(1, 30_000, true),
        SEAL,
        DELIVER,
        f(PeerFrame::Ack { file: 0 }),
        f(PeerFrame::Ack { file: 1 }),
        SEAL,
        DELIVER,
        Op::App(AppOp::CloseWhenDone),
        f(PeerFrame::Close { code: 0 }),
        FIN,
        DELIVER,
    ];
    let get = vec![
        Op::App(AppOp::Get { path: 4 }),
        Op::App(AppOp::List { path: 7 }),
        Op::App(AppOp::SendRecord {
            json: true,
            len: 40,
        }),
        f(PeerFrame::Offer {
            id: 0,
            path: 4,
            size: Some(5000),
            hash: true,
            overwrite: false,
            request: Some(0),
            bad_mtime: false,
        }),
        f(PeerFrame::Done {
            req: 0,
            error: false,
        }),
        f(PeerFrame::Listing { req: 0, entries: 3 }),
        f(PeerFrame::Done {
            req: 0,
            error: false,
        }),
        f(PeerFrame::Done {
            req: 0,
            error: false,
        }),
        SEAL,
        DELIVER,
        data(0, 0, true),
        file_end(0, true),
        SEAL,
        DELIVER,
        Op::App(AppOp::CloseWhenDone),
        f(PeerFrame::Close { code: 0 }),
        FIN,
        DELIVER,
    ];
    let refuse = vec![
        Op::App(AppOp::Send { path: 3 }),
        f(PeerFrame::Reject { file: 0, reason: 0 }),
        SEAL,
        DELIVER,
        Op::App(AppOp::Send { path: 0 }),
        accept(0, 0, false),
        SEAL,
        DELIVER,
        f(PeerFrame::CommitFailed { file: 0, reason: 1 }),
        SEAL,
        DELIVER,
        Op::Advance { secs: 16 },
        Op::App(AppOp::Close { code: 1 }),
        Op::Eof,
    ];
    let default = Knobs {
        compression: 1,
        accept_compression: true,
        peer_deflate: true,
        ..Knobs::default()
    };
    let small = Knobs {
        compression: 2,
        small_send_buffer: true,
        peer_small_plaintext: true,
        rekey: true,
        ..default.clone()
    };
    vec![
        (
            "send",
            SessionInput {
                knobs: default.clone(),
                ops: send.clone(),
            },
        ),
        (
            "send-small-limits",
            SessionInput {
                knobs: small,
                ops: send,
            },
        ),
        (
            "get-list",
            SessionInput {
                knobs: default.clone(),
                ops: get,
            },
        ),
        (
            "refused",
            SessionInput {
                knobs: default,
                ops: refuse,
            },
        ),
    ]
}

/// Every seed file, per target.
fn all_seeds() -> BTreeMap<&'static str, Vec<(String, Vec<u8>)>> {
    let pair = recorded_pair();
    let named = |v: Vec<(&'static str, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        v.into_iter()
            .map(|(n, b)| (format!("seed-{n}"), b))
            .collect()
    };
    let structured = |v: Vec<(&'static str, SessionInput)>| -> Vec<(String, Vec<u8>)> {
        v.into_iter()
            .map(|(n, input)| {
                let bytes = input.to_bytes();
                assert_eq!(
                    SessionInput::from_bytes(&bytes),
                    input,
                    "seed {n} does not decode back (did arbitrary's encoding change?)"
                );
                (format!("seed-{n}"), bytes)
            })
            .collect()
    };
    let mut m = BTreeMap::new();
    m.insert("decode_frame", named(decode_frame_seeds()));
    m.insert("record_open", named(record_open_seeds()));
    m.insert("handshake_server", named(handshake_server_seeds(&pair)));
    m.insert("handshake_client", named(handshake_client_seeds(&pair)));
    m.insert("session_server", structured(session_server_seeds()));
    m.insert("session_client", structured(session_client_seeds()));
    m.insert("inflate", named(inflate_seeds()));
    m.insert("seal_open", named(seal_open_seeds()));
    m
}

#[test]
fn seeds_are_up_to_date() {
    let write = std::env::var_os("FERRY_WRITE_CORPUS").is_some_and(|v| v == "1");
    let seeds = all_seeds();
    assert_eq!(seeds.len(), fuzz::TARGETS.len());
    for (target, files) in &seeds {
        let dir = corpus_dir(target);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for old in std::fs::read_dir(&dir).unwrap() {
                let p = old.unwrap().path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
                {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        for (name, bytes) in files {
            let path = dir.join(name);
            if write {
                std::fs::write(&path, bytes).unwrap();
            } else {
                let committed = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (FERRY_WRITE_CORPUS=1 writes it)", path.display())
                });
                assert!(
                    committed == *bytes,
                    "{} differs from what this test writes (FERRY_WRITE_CORPUS=1 rewrites it)",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn replay_every_corpus_file() {
    let mut total = 0;
    for (target, body) in fuzz::TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {target}");
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            let run = std::panic::catch_unwind(|| body(&bytes));
            assert!(
                run.is_ok(),
                "{target}: {} breaks an invariant",
                file.display()
            );
        }
        total += files.len();
        eprintln!("{target}: {} corpus files", files.len());
    }
    eprintln!("{total} corpus files replayed");
}

/// The seeds reach what they are meant to reach on stable: the recorded streams get through
/// the real AEAD to a clean end, the structured sessions move files.
#[test]
fn seeds_go_deep() {
    use ferry_core::testing::Outcome;
    let seeds = all_seeds();
    let seed = |target: &str, name: &str| -> Vec<u8> {
        let name = format!("seed-{name}");
        seeds[target]
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    };
    let clean = |o: &fuzz::Outcome, what: &str| {
        assert_eq!(o.error, None, "{what}");
        assert!(o.closed, "{what} did not close");
    };
    let o = fuzz::handshake_server_outcome(&seed("handshake_server", "recorded"));
    clean(&o, "recorded client stream");
    assert_eq!(o.app.committed, ["a.txt", "b.bin"]);
    let o = fuzz::handshake_server_outcome(&seed("handshake_server", "recorded-cut"));
    clean(&o, "recorded client stream, cut");
    let o = fuzz::handshake_client_outcome(&seed("handshake_client", "recorded"));
    clean(&o, "recorded server stream");
    assert_eq!(o.app.committed, ["srv/x.txt"]);
    assert!(o.app.outcomes.values().all(|v| *v == Outcome::Delivered));

    let o = fuzz::session_outcome(true, &seed("session_server", "put"));
    clean(&o, "put");
    assert_eq!(o.app.committed, ["in/new.txt"]);
    let o = fuzz::session_outcome(true, &seed("session_server", "put-multi-chunk"));
    clean(&o, "put-multi-chunk");
    assert_eq!(o.app.committed, ["in/big.bin", "in/new.txt"]);
    let o = fuzz::session_outcome(true, &seed("session_server", "put-small-limits"));
    clean(&o, "put-small-limits");
    assert_eq!(o.app.committed, ["in/big.bin", "in/new.txt"]);
    let o = fuzz::session_outcome(true, &seed("session_server", "forged-file-end"));
    clean(&o, "forged-file-end");
    assert!(o.app.committed.is_empty());
    assert_eq!(
        o.app.receive_failed,
        [("in/new.txt".to_string(), Reason::HashMismatch)]
    );
    let o = fuzz::session_outcome(true, &seed("session_server", "resume"));
    clean(&o, "resume");
    assert_eq!(o.app.committed, ["in/new.txt"]);
    assert_eq!(
        o.app.receive_failed,
        [("in/big.bin".to_string(), Reason::HashMismatch)]
    );
    let o = fuzz::session_outcome(true, &seed("session_server", "get-list"));
    clean(&o, "get-list");
    assert_eq!(o.app.records.len(), 1, "the RECORD request was stored");
    let o = fuzz::session_outcome(false, &seed("session_client", "send"));
    clean(&o, "send");
    assert!(
        o.app.outcomes.values().all(|v| *v == Outcome::Delivered),
        "{:?}",
        o.app.outcomes
    );
    assert_eq!(o.app.outcomes.len(), 2);
    let o = fuzz::session_outcome(false, &seed("session_client", "send-small-limits"));
    clean(&o, "send-small-limits");
    let o = fuzz::session_outcome(false, &seed("session_client", "get-list"));
    clean(&o, "get-list");
    assert_eq!(o.app.committed, ["in/new.txt"]);
    assert_eq!(o.app.listings.len(), 3);
    assert_eq!(o.app.requests_done.len(), 3);
    assert!(o.app.requests_done.iter().all(|(_, e)| e.is_none()));

    // The real seal_open seeds open on stable (so the target's re-seal check runs on them).
    for name in ["empty", "text", "one-chunk", "two-chunks"] {
        let input = seed("seal_open", name);
        let (header, len) = ferry_core::FileHeader::decode(&input[1..])
            .unwrap()
            .unwrap();
        let mut opener = header.opener(&ferry_core::SealKey::new(&fuzz::SEAL_KEY));
        let mut rest = &input[1 + len..];
        let mut plain = 0;
        while !rest.is_empty() {
            plain += opener.update(&mut rest).unwrap().map_or(0, <[u8]>::len);
        }
        plain += opener.finish().unwrap().len();
        assert!(plain < input.len(), "{name}");
    }
}
