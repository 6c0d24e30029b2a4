//! Property tests: frame codec round trips and split-invariance of the byte stream.

use ferry_core::Config;
use ferry_core::testing::{LinkConfig, MemApp, Pair, replay_server, test_psk};
use ferry_core::wire::{
    BoundedVec, CloseCode, Codec, Control, Frame, ListEntry, MAX_CONTROL_LEN, Mtime, Offer,
    Problem, Reason, RecordBody, RecordFormat, RequestKind, decode_frame, encode_control,
    encode_data_header,
};
use proptest::prelude::*;

fn reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        Just(Reason::Exists),
        Just(Reason::UpToDate),
        Just(Reason::Denied),
        Just(Reason::BadName),
        Just(Reason::NotFound),
        Just(Reason::NoSpace),
        Just(Reason::Io),
        Just(Reason::HashMismatch),
        Just(Reason::Cancelled),
        Just(Reason::Unsupported),
        Just(Reason::Other),
        Just(Reason::Busy),
    ]
}

fn problem() -> impl Strategy<Value = Problem> {
    (reason(), ".{0,40}").prop_map(|(r, d)| Problem::new(r, &d))
}

fn mtime() -> impl Strategy<Value = Option<Mtime>> {
    proptest::option::of(
        (any::<i64>(), 0u32..1_000_000_000).prop_map(|(secs, nanos)| Mtime { secs, nanos }),
    )
}

fn control() -> impl Strategy<Value = Control> {
    let path = ".{0,64}";
    prop_oneof![
        Just(Control::Start),
        Just(Control::Ping),
        (
            any::<u32>(),
            path,
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
            mtime(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<[u8; 32]>()),
            any::<bool>()
        )
            .prop_map(|(id, path, size, mode, mtime, request, hash, overwrite)| {
                Control::Offer(Offer {
                    id,
                    path,
                    size,
                    mode,
                    mtime,
                    request,
                    hash,
                    overwrite,
                })
            }),
        (any::<u32>(), any::<u64>(), any::<[u8; 32]>()).prop_map(
            |(id, resume_from, prefix_hash)| Control::Accept {
                id,
                resume_from,
                prefix_hash
            }
        ),
        (any::<u32>(), problem()).prop_map(|(id, problem)| Control::Reject { id, problem }),
        (any::<u32>(), any::<u64>(), any::<[u8; 32]>())
            .prop_map(|(id, size, hash)| Control::FileEnd { id, size, hash }),
        any::<u32>().prop_map(|id| Control::Ack { id }),
        (any::<u32>(), problem()).prop_map(|(id, problem)| Control::CommitFailed { id, problem }),
        (any::<u32>(), problem()).prop_map(|(id, problem)| Control::Abort { id, problem }),
        (any::<u32>(), path).prop_map(|(req, path)| Control::Request {
            req,
            kind: RequestKind::Get { path }
        }),
        (any::<u32>(), path).prop_map(|(req, path)| Control::Request {
            req,
            kind: RequestKind::List { path }
        }),
        (
            any::<u32>(),
            proptest::collection::vec(
                (path, any::<u64>(), mtime()).prop_map(|(path, size, mtime)| ListEntry {
                    path,
                    size,
                    mtime
                }),
                0..20
            )
        )
            .prop_map(|(req, e)| Control::Listing {
                req,
                entries: BoundedVec(e)
            }),
        (any::<u32>(), proptest::option::of(problem()))
            .prop_map(|(req, error)| Control::Done { req, error }),
        (
            any::<u32>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(req, json, body)| Control::Request {
                req,
                kind: RequestKind::Record {
                    format: if json {
                        RecordFormat::Json
                    } else {
                        RecordFormat::Postcard
                    },
                    body: RecordBody(body),
                },
            }),
        prop_oneof![
            Just(CloseCode::Done),
            Just(CloseCode::Cancelled),
            Just(CloseCode::ProtocolError),
            Just(CloseCode::TimedOut),
            Just(CloseCode::InternalError)
        ]
        .prop_map(|code| Control::Close { code }),
    ]
}

proptest! {
    #[test]
    fn control_frames_round_trip(msg in control(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut buf = vec![0u8; 3 + MAX_CONTROL_LEN];
        let n = encode_control(&msg, &mut buf).unwrap();
        buf.truncate(n);
        // Every strict prefix asks for more bytes; the frame decodes exactly, ignoring what follows.
        for cut in 0..n {
            prop_assert_eq!(decode_frame(&buf[..cut]), Ok(None));
        }
        buf.extend_from_slice(&tail);
        let (frame, used) = decode_frame(&buf).unwrap().unwrap();
        prop_assert_eq!(used, n);
        prop_assert_eq!(frame, Frame::Control(msg));
    }

    #[test]
    fn data_frames_round_trip(id: u32, offset in 0u64..u64::MAX / 2, body in proptest::collection::vec(any::<u8>(), 1..2000), deflate: bool, plain in 1u32..65536) {
        let (codec, plain_len) = if deflate { (Codec::Deflate, plain) } else { (Codec::Stored, body.len() as u32) };
        let mut buf = vec![0u8; 22 + body.len()];
        encode_data_header(&mut buf, id, offset, codec, plain_len, body.len() as u32).unwrap();
        buf[22..].copy_from_slice(&body);
        let (frame, used) = decode_frame(&buf).unwrap().unwrap();
        prop_assert_eq!(used, buf.len());
        let Frame::Data(d) = frame else { panic!("not data") };
        prop_assert_eq!((d.file_id, d.offset, d.codec, d.plain_len, d.body), (id, offset, codec, plain_len, &body[..]));
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Any result is fine; a frame it returns must lie inside the input.
        if let Ok(Some((_, used))) = decode_frame(&bytes) {
            prop_assert!(used <= bytes.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any split of the client's byte stream yields the same server events and files.
    #[test]
    fn any_split_yields_the_same_events(cuts in proptest::collection::vec(any::<u16>(), 0..40)) {
        let mut client = MemApp::new()
            .with_file("x", b"ferry ".repeat(4000))
            .with_file("y/z", (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect());
        client.to_send.extend(["x".to_string(), "y/z".to_string()]);
        client.close_when_done = true;
        let cfg = Config::default();
        let mut pair = Pair::new(&cfg, &cfg, client, MemApp::new(), LinkConfig::default(), 21);
        prop_assert!(pair.drive());
        let stream = pair.c2s.log.clone();
        let reference = replay_server(&cfg, &test_psk(), pair.server_seed, &stream, &[]);
        prop_assert_eq!(reference.error, None);
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c as usize * stream.len() / 65536).collect();
        cuts.sort();
        let got = replay_server(&cfg, &test_psk(), pair.server_seed, &stream, &cuts);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(&got.app.log, &reference.app.log);
        prop_assert_eq!(&got.app.files, &reference.app.files);
        prop_assert_eq!(&got.app.files, &pair.server.app.files);
    }
}
