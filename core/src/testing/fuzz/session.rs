//! `session_server` and `session_client`: a whole session past the handshake, driven by a
//! structured input (decoded with `arbitrary`): frames a keyed peer seals, when its bytes
//! arrive, and what the application under test does.
//!
//! The peer ([`Peer`]) runs a genuine handshake, so these inputs mean the same on stable and
//! under the fuzzer's null AEAD, and the corpus replays deep in plain `cargo test`. Seeds are
//! written with [`Encode`], the exact inverse of the decoding (checked by the corpus test).

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use super::Outcome;
use super::checked::Checked;
use super::handshake::file;
use super::peer::Peer;
use crate::record::stream::MIN_PLAINTEXT;
use crate::testing::{MemApp, START, test_psk};
use crate::wire::{
    BoundedVec, CloseCode, Control, ListEntry, MAX_PATH_LEN, MAX_RECORD_BODY, Mtime, Offer,
    Problem, Reason, RecordBody, RecordFormat, RequestKind,
};
use crate::{Compression, Config, FileMeta, RequestError, Session};

/// Most operations one input is decoded into.
const MAX_OPS: usize = 512;
/// Most rounds of app/transmit/input after one operation before it counts as a hang.
const SETTLE_LIMIT: usize = 20_000;
/// The session under test's seed.
const TARGET_SEED: [u8; 32] = [0x7E; 32];

/// Settings of both ends.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq, Default)]
pub struct Knobs {
    /// The session's `compression` (`% 3`: Off, On, Auto).
    pub compression: u8,
    /// The session accepts deflated chunks.
    pub accept_compression: bool,
    /// The peer advertises DEFLATE.
    pub peer_deflate: bool,
    /// The session's receive window is the smallest allowed (one record).
    pub small_window: bool,
    /// The session advertises the smallest record plaintext.
    pub small_plaintext: bool,
    /// The peer advertises the smallest record plaintext (the session must respect it).
    pub peer_small_plaintext: bool,
    /// The session's `max_open` (0: the default).
    pub max_open: u8,
    /// The session's event queue stops input at 16 events.
    pub small_events: bool,
    /// The session's send buffer is 1000 bytes.
    pub small_send_buffer: bool,
    /// Both rekey every 2 records.
    pub rekey: bool,
    /// The session gets all waiting input at once, not one record per call.
    pub batch: bool,
    /// Server under test: the peer does not lead with `Start`.
    pub no_start: bool,
}

/// Bytes with a 2-byte length in front (at most 4096).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawBytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for RawBytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = usize::from(u16::arbitrary(u)?) % 4097;
        let n = n.min(u.len());
        Ok(RawBytes(u.bytes(n)?.to_vec()))
    }
}

/// A frame the peer puts into its current record. `file`/`req` fields index ids the session
/// used (high values: raw small ids); `id` fields are the peer's own ids.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum PeerFrame {
    /// `Start` (the client's first frame).
    Start,
    /// Keep-alive.
    Ping,
    /// `Close` with code `% 5`.
    Close {
        /// Code selector.
        code: u8,
    },
    /// Offer a file.
    Offer {
        /// Our file id.
        id: u8,
        /// Path selector (also the content).
        path: u8,
        /// Size, `% 200_000`.
        size: Option<u32>,
        /// Announce the true whole-file hash.
        hash: bool,
        /// Ask to overwrite.
        overwrite: bool,
        /// Answer this request of the session's.
        request: Option<u8>,
        /// Nanoseconds out of range.
        bad_mtime: bool,
    },
    /// DATA of our file.
    Data {
        /// Our file id.
        id: u8,
        /// Offset (default: where the file stands).
        offset: Option<u32>,
        /// Plaintext length (0: a chunk, or what is left).
        len: u16,
        /// Deflate the body.
        deflate: bool,
        /// Flip a body byte.
        corrupt: bool,
    },
    /// FileEnd of our file.
    FileEnd {
        /// Our file id.
        id: u8,
        /// Size (default: where the file stands).
        size: Option<u32>,
        /// The true whole-file hash (else a wrong one: a forged FileEnd).
        good_hash: bool,
    },
    /// Accept the session's file.
    Accept {
        /// Which file.
        file: u8,
        /// Resume offset.
        resume_from: u32,
        /// The true prefix hash.
        good_prefix: bool,
    },
    /// Reject the session's file.
    Reject {
        /// Which file.
        file: u8,
        /// Reason selector.
        reason: u8,
    },
    /// Acknowledge the session's file.
    Ack {
        /// Which file.
        file: u8,
    },
    /// Fail the session's file.
    CommitFailed {
        /// Which file.
        file: u8,
        /// Reason selector.
        reason: u8,
    },
    /// Abort our file.
    Abort {
        /// Our file id.
        id: u8,
    },
    /// A GET, LIST or RECORD request of ours.
    Request {
        /// Our request id.
        req: u8,
        /// `% 3`: GET, LIST, RECORD (whose body is the path, JSON or postcard by parity).
        kind: u8,
        /// Path selector.
        path: u8,
    },
    /// Listing entries for the session's request.
    Listing {
        /// Which request.
        req: u8,
        /// How many entries (`% 300`: more than one message may hold).
        entries: u16,
    },
    /// Done for the session's request.
    Done {
        /// Which request.
        req: u8,
        /// With an error.
        error: bool,
    },
    /// Raw frame bytes.
    Raw(RawBytes),
}

/// What the application under test does.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum AppOp {
    /// Offer one of its files.
    Send {
        /// Path selector.
        path: u8,
    },
    /// GET from the peer.
    Get {
        /// Path selector.
        path: u8,
    },
    /// LIST on the peer.
    List {
        /// Path selector.
        path: u8,
    },
    /// Stop or resume reading received chunks (a stalled disk).
    PauseReads {
        /// Paused.
        on: bool,
    },
    /// Hold verified files instead of committing them (a slow fsync).
    HoldCommits {
        /// Held.
        on: bool,
    },
    /// Commits of this path fail (a full disk).
    FailCommits {
        /// Path selector.
        path: u8,
    },
    /// A partial file to resume from: the true first `len` bytes, or wrong ones.
    Partial {
        /// Path selector.
        path: u8,
        /// Its length.
        len: u16,
        /// The true bytes.
        good: bool,
    },
    /// Fail an incoming file before its end (`commit_failed`).
    FailIncoming {
        /// Which one.
        file: u8,
    },
    /// Abort an outgoing file.
    AbortOutgoing {
        /// Which one.
        file: u8,
    },
    /// Close with code `% 5`.
    Close {
        /// Code selector.
        code: u8,
    },
    /// Close once everything is answered.
    CloseWhenDone,
    /// Send a RECORD request of `len` bytes (`% (MAX_RECORD_BODY + 64)`: some too large).
    SendRecord {
        /// JSON (else postcard).
        json: bool,
        /// Body length.
        len: u16,
    },
}

/// One step of a session input.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A frame into the peer's current record.
    Frame(PeerFrame),
    /// Seal the current record (a FINAL one if `fin`).
    Seal {
        /// FINAL record.
        fin: bool,
    },
    /// Up to `max` bytes (0: all) of what the peer sent reach the session.
    Deliver {
        /// Byte count.
        max: u16,
    },
    /// Flip bits of a byte still on the wire.
    Tamper {
        /// Position (modulo the bytes waiting).
        at: u16,
        /// Bits (0 means 1).
        xor: u8,
    },
    /// Raw bytes onto the wire (valid records only under the null AEAD).
    Raw(RawBytes),
    /// The application acts.
    App(AppOp),
    /// Virtual time passes.
    Advance {
        /// Seconds.
        secs: u8,
    },
    /// The transport ends; nothing more happens.
    Eof,
}

/// A whole structured session input: settings, then operations until the bytes run out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionInput {
    /// Settings.
    pub knobs: Knobs,
    /// Operations, in order.
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for SessionInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let knobs = Knobs::arbitrary(u)?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(Op::arbitrary(u)?);
        }
        Ok(SessionInput { knobs, ops })
    }
}

impl SessionInput {
    /// Decode fuzzer bytes (never fails: missing bytes read as zeros).
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        Self::arbitrary(&mut u).unwrap_or_default()
    }

    /// The bytes [`SessionInput::from_bytes`] decodes back into `self`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

// ---- encoding: the inverse of the derived `Arbitrary` impls (arbitrary 1.x) ---------------

/// Writes the bytes that `arbitrary` decodes into this value (for seeds).
pub trait Encode {
    /// Append the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
}

impl Encode for u8 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}
impl Encode for u16 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl Encode for u32 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}
impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => false.encode(out),
            Some(v) => {
                true.encode(out);
                v.encode(out);
            }
        }
    }
}
impl Encode for RawBytes {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.0.len().min(4096) as u16).encode(out);
        out.extend_from_slice(&self.0[..self.0.len().min(4096)]);
    }
}

/// The derived enum decoding picks variant `(u32 * count) >> 32`: write the smallest such u32.
fn variant(out: &mut Vec<u8>, index: u32, count: u32) {
    let v = (u64::from(index) << 32).div_ceil(u64::from(count));
    (v as u32).encode(out);
}

/// Encode fields in order.
macro_rules! fields {
    ($out:ident; $($f:expr),*) => { $( $f.encode($out); )* };
}

impl Encode for Knobs {
    fn encode(&self, out: &mut Vec<u8>) {
        fields!(out; self.compression, self.accept_compression, self.peer_deflate,
            self.small_window, self.small_plaintext, self.peer_small_plaintext, self.max_open,
            self.small_events, self.small_send_buffer, self.rekey, self.batch, self.no_start);
    }
}

impl Encode for PeerFrame {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 15;
        match self {
            PeerFrame::Start => variant(out, 0, N),
            PeerFrame::Ping => variant(out, 1, N),
            PeerFrame::Close { code } => {
                variant(out, 2, N);
                fields!(out; code);
            }
            PeerFrame::Offer {
                id,
                path,
                size,
                hash,
                overwrite,
                request,
                bad_mtime,
            } => {
                variant(out, 3, N);
                fields!(out; id, path, size, hash, overwrite, request, bad_mtime);
            }
            PeerFrame::Data {
                id,
                offset,
                len,
                deflate,
                corrupt,
            } => {
                variant(out, 4, N);
                fields!(out; id, offset, len, deflate, corrupt);
            }
            PeerFrame::FileEnd {
                id,
                size,
                good_hash,
            } => {
                variant(out, 5, N);
                fields!(out; id, size, good_hash);
            }
            PeerFrame::Accept {
                file,
                resume_from,
                good_prefix,
            } => {
                variant(out, 6, N);
                fields!(out; file, resume_from, good_prefix);
            }
            PeerFrame::Reject { file, reason } => {
                variant(out, 7, N);
                fields!(out; file, reason);
            }
            PeerFrame::Ack { file } => {
                variant(out, 8, N);
                fields!(out; file);
            }
            PeerFrame::CommitFailed { file, reason } => {
                variant(out, 9, N);
                fields!(out; file, reason);
            }
            PeerFrame::Abort { id } => {
                variant(out, 10, N);
                fields!(out; id);
            }
            PeerFrame::Request { req, kind, path } => {
                variant(out, 11, N);
                fields!(out; req, kind, path);
            }
            PeerFrame::Listing { req, entries } => {
                variant(out, 12, N);
                fields!(out; req, entries);
            }
            PeerFrame::Done { req, error } => {
                variant(out, 13, N);
                fields!(out; req, error);
            }
            PeerFrame::Raw(b) => {
                variant(out, 14, N);
                b.encode(out);
            }
        }
    }
}

impl Encode for AppOp {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 12;
        match self {
            AppOp::Send { path } => {
                variant(out, 0, N);
                fields!(out; path);
            }
            AppOp::Get { path } => {
                variant(out, 1, N);
                fields!(out; path);
            }
            AppOp::List { path } => {
                variant(out, 2, N);
                fields!(out; path);
            }
            AppOp::PauseReads { on } => {
                variant(out, 3, N);
                fields!(out; on);
            }
            AppOp::HoldCommits { on } => {
                variant(out, 4, N);
                fields!(out; on);
            }
            AppOp::FailCommits { path } => {
                variant(out, 5, N);
                fields!(out; path);
            }
            AppOp::Partial { path, len, good } => {
                variant(out, 6, N);
                fields!(out; path, len, good);
            }
            AppOp::FailIncoming { file } => {
                variant(out, 7, N);
                fields!(out; file);
            }
            AppOp::AbortOutgoing { file } => {
                variant(out, 8, N);
                fields!(out; file);
            }
            AppOp::Close { code } => {
                variant(out, 9, N);
                fields!(out; code);
            }
            AppOp::CloseWhenDone => variant(out, 10, N),
            AppOp::SendRecord { json, len } => {
                variant(out, 11, N);
                fields!(out; json, len);
            }
        }
    }
}

impl Encode for Op {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 8;
        match self {
            Op::Frame(f) => {
                variant(out, 0, N);
                f.encode(out);
            }
            Op::Seal { fin } => {
                variant(out, 1, N);
                fields!(out; fin);
            }
            Op::Deliver { max } => {
                variant(out, 2, N);
                fields!(out; max);
            }
            Op::Tamper { at, xor } => {
                variant(out, 3, N);
                fields!(out; at, xor);
            }
            Op::Raw(b) => {
                variant(out, 4, N);
                b.encode(out);
            }
            Op::App(a) => {
                variant(out, 5, N);
                a.encode(out);
            }
            Op::Advance { secs } => {
                variant(out, 6, N);
                fields!(out; secs);
            }
            Op::Eof => variant(out, 7, N),
        }
    }
}

impl Encode for SessionInput {
    fn encode(&self, out: &mut Vec<u8>) {
        self.knobs.encode(out);
        for op in &self.ops {
            op.encode(out);
        }
    }
}

// ---- running ------------------------------------------------------------------------------

/// Path selectors (`% PATHS`); the selector is also the content tag of the peer's file.
const PATHS: u8 = 10;

/// Path selector to a path: the application's files, new names, bad names, one too long.
fn path(sel: u8) -> String {
    match sel % PATHS {
        0 => String::from("a.txt"),
        1 => String::from("b.bin"),
        2 => String::from("dir/c.txt"),
        3 => String::from("dir/d"),
        4 => String::from("in/new.txt"),
        5 => String::from("in/big.bin"),
        6 => String::from("../up"),
        7 => String::new(),
        8 => String::from("/abs"),
        _ => "x".repeat(MAX_PATH_LEN + 1),
    }
}

fn close_code(sel: u8) -> CloseCode {
    match sel % 5 {
        0 => CloseCode::Done,
        1 => CloseCode::Cancelled,
        2 => CloseCode::ProtocolError,
        3 => CloseCode::TimedOut,
        _ => CloseCode::InternalError,
    }
}

fn reason(sel: u8) -> Reason {
    match sel % 4 {
        0 => Reason::Exists,
        1 => Reason::NoSpace,
        2 => Reason::HashMismatch,
        _ => Reason::Other,
    }
}

/// The application under test: the files it can send or serve.
fn target_app() -> MemApp {
    MemApp::new()
        .with_file("a.txt", file(0, 3000))
        .with_file("b.bin", file(1, 70_000))
        .with_file("dir/c.txt", Vec::new())
        .with_file("dir/d", file(3, 100))
}

fn configs(k: &Knobs) -> (Config, Config) {
    let rekey = if k.rekey {
        2
    } else {
        Config::default()._internal_rekey_interval
    };
    let default = Config::default();
    let target = Config {
        compression: match k.compression % 3 {
            0 => Compression::Off,
            1 => Compression::On,
            _ => Compression::Auto,
        },
        accept_compression: k.accept_compression,
        recv_window: if k.small_window {
            0
        } else {
            default.recv_window
        },
        max_plaintext: if k.small_plaintext {
            MIN_PLAINTEXT
        } else {
            default.max_plaintext
        },
        max_open: if k.max_open > 0 {
            u16::from(k.max_open)
        } else {
            default.max_open
        },
        max_events: if k.small_events {
            0
        } else {
            default.max_events
        },
        send_buffer: if k.small_send_buffer {
            1000
        } else {
            default.send_buffer
        },
        _internal_rekey_interval: rekey,
        ..Config::default()
    };
    let peer = Config {
        accept_compression: k.peer_deflate,
        max_plaintext: if k.peer_small_plaintext {
            MIN_PLAINTEXT
        } else {
            default.max_plaintext
        },
        _internal_rekey_interval: rekey,
        ..Config::default()
    };
    (target, peer)
}

/// The session under test and the peer.
struct Run {
    t: Checked,
    peer: Peer,
}

impl Run {
    fn new(server: bool, k: &Knobs) -> Self {
        let (tcfg, pcfg) = configs(k);
        if server {
            let s = Session::server(&tcfg, &test_psk(), TARGET_SEED, START);
            let mut t = Checked::new(s, target_app(), START, tcfg.recv_window);
            t.one_record = !k.batch;
            let (hs, first) = Peer::client_hello(&pcfg);
            t.inbox.extend_from_slice(&first);
            while t.input() {}
            let reply: Vec<u8> = t.transmit().concat();
            let mut peer = Peer::client_finish(hs, &reply, &pcfg);
            if !k.no_start {
                peer.start();
            }
            Run { t, peer }
        } else {
            let s = Session::client(&tcfg, &test_psk(), TARGET_SEED, START);
            let mut t = Checked::new(s, target_app(), START, tcfg.recv_window);
            t.one_record = !k.batch;
            let first: Vec<u8> = t.transmit().concat();
            let mut peer = Peer::server(&pcfg, &first);
            t.inbox.append(&mut peer.wire);
            let mut run = Run { t, peer };
            run.settle();
            run
        }
    }

    /// Application, transmit and input until nothing changes.
    fn settle(&mut self) {
        for _ in 0..SETTLE_LIMIT {
            let ends = (!self.peer.unscripted).then_some(&self.peer.file_ends);
            let mut progress = self.t.pump(ends);
            for rec in self.t.transmit() {
                self.peer.receive(&rec);
                progress = true;
            }
            progress |= self.t.input();
            if !progress {
                return;
            }
        }
        panic!("the session did not settle in {SETTLE_LIMIT} rounds");
    }

    fn deliver(&mut self, max: u16) {
        let n = if max == 0 {
            self.peer.wire.len()
        } else {
            usize::from(max).min(self.peer.wire.len())
        };
        self.t.inbox.extend(self.peer.wire.drain(..n));
    }

    fn frame(&mut self, f: &PeerFrame) {
        let p = &mut self.peer;
        match f {
            PeerFrame::Start => p.start(),
            PeerFrame::Ping => p.ping(),
            PeerFrame::Close { code } => p.close(close_code(*code)),
            PeerFrame::Offer {
                id,
                path: sel,
                size,
                hash,
                overwrite,
                request,
                bad_mtime,
            } => {
                let offer = Offer {
                    id: u32::from(*id),
                    path: path(*sel),
                    size: size.map(|s| u64::from(s % 200_000)),
                    mode: Some(0o644),
                    mtime: bad_mtime.then_some(Mtime {
                        secs: 0,
                        nanos: 1_000_000_000,
                    }),
                    request: request.map(|r| p.their_request(r)),
                    hash: None,
                    overwrite: *overwrite,
                };
                p.offer(offer, sel % PATHS, *hash);
            }
            PeerFrame::Data {
                id,
                offset,
                len,
                deflate,
                corrupt,
            } => p.data(
                u32::from(*id),
                offset.map(u64::from),
                *len,
                *deflate,
                *corrupt,
            ),
            PeerFrame::FileEnd {
                id,
                size,
                good_hash,
            } => p.file_end(u32::from(*id), size.map(u64::from), *good_hash),
            PeerFrame::Accept {
                file,
                resume_from,
                good_prefix,
            } => p.accept(*file, u64::from(*resume_from), *good_prefix, &self.t.app),
            PeerFrame::Reject { file, reason: r } => p.answer(*file, |id| Control::Reject {
                id,
                problem: Problem::new(reason(*r), "no"),
            }),
            PeerFrame::Ack { file } => p.answer(*file, |id| Control::Ack { id }),
            PeerFrame::CommitFailed { file, reason: r } => {
                p.answer(*file, |id| Control::CommitFailed {
                    id,
                    problem: Problem::new(reason(*r), "failed"),
                });
            }
            PeerFrame::Abort { id } => p.control(&Control::Abort {
                id: u32::from(*id),
                problem: Problem::new(Reason::Cancelled, "abort"),
            }),
            PeerFrame::Request {
                req,
                kind,
                path: sel,
            } => {
                let path = path(*sel);
                let kind = match kind % 3 {
                    0 => RequestKind::Get { path },
                    1 => RequestKind::List { path },
                    _ => RequestKind::Record {
                        format: if sel % 2 == 0 {
                            RecordFormat::Json
                        } else {
                            RecordFormat::Postcard
                        },
                        body: RecordBody(path.into_bytes()),
                    },
                };
                p.request(u32::from(*req), kind);
            }
            PeerFrame::Listing { req, entries } => {
                let n = usize::from(*entries % 300);
                p.answer_request(*req, |req| Control::Listing {
                    req,
                    entries: BoundedVec(
                        (0..n)
                            .map(|i| ListEntry {
                                path: alloc::format!("e{i}"),
                                size: i as u64,
                                mtime: None,
                            })
                            .collect(),
                    ),
                });
            }
            PeerFrame::Done { req, error } => p.answer_request(*req, |req| Control::Done {
                req,
                error: error.then(|| Problem::new(Reason::NotFound, "none")),
            }),
            PeerFrame::Raw(b) => p.raw_frame(&b.0),
        }
    }

    fn app(&mut self, a: &AppOp) {
        let app = &mut self.t.app;
        let s = &mut self.t.s;
        match a {
            // Paths over MAX_PATH_LEN are refused by the API itself (MemApp would panic).
            AppOp::Send { path: sel } if path(*sel).len() > MAX_PATH_LEN => {
                let r = s.offer(FileMeta::new(&path(*sel), Some(1)));
                assert!(matches!(
                    r,
                    Err(RequestError::PathTooLong | RequestError::NotOpen)
                ));
            }
            AppOp::Get { path: sel } | AppOp::List { path: sel }
                if path(*sel).len() > MAX_PATH_LEN =>
            {
                let r = s.get(&path(*sel)).and(s.list(&path(*sel)));
                assert!(matches!(
                    r,
                    Err(RequestError::PathTooLong | RequestError::NotOpen)
                ));
            }
            AppOp::Send { path: sel } => app.to_send.push_back(path(*sel)),
            AppOp::Get { path: sel } => app.to_get.push_back(path(*sel)),
            AppOp::List { path: sel } => app.to_list.push_back(path(*sel)),
            AppOp::PauseReads { on } => app.read_paused = *on,
            AppOp::HoldCommits { on } => app.hold_commits = *on,
            AppOp::FailCommits { path: sel } => {
                app.fail_commit.insert(path(*sel));
            }
            AppOp::Partial {
                path: sel,
                len,
                good,
            } => {
                let mut data = file(sel % PATHS, usize::from(*len));
                if !good && !data.is_empty() {
                    data[0] ^= 0xFF;
                }
                app.partials.insert(path(*sel), data);
            }
            AppOp::FailIncoming { file } => app.fail_incoming(s, usize::from(*file)),
            AppOp::AbortOutgoing { file } => app.abort_outgoing(s, usize::from(*file)),
            AppOp::Close { code } => s.close(self.t.now, close_code(*code)),
            AppOp::CloseWhenDone => app.close_when_done = true,
            AppOp::SendRecord { json, len } => {
                let format = if *json {
                    RecordFormat::Json
                } else {
                    RecordFormat::Postcard
                };
                let len = usize::from(*len) % (MAX_RECORD_BODY + 64);
                let _ = s.send_record(format, alloc::vec![b'7'; len]);
            }
        }
    }

    /// Apply one op; false when the run is over (end of stream).
    fn op(&mut self, op: &Op) -> bool {
        match op {
            Op::Frame(f) => self.frame(f),
            Op::Seal { fin } => self.peer.seal(*fin),
            Op::Deliver { max } => self.deliver(*max),
            Op::Tamper { at, xor } => {
                let w = &mut self.peer.wire;
                if !w.is_empty() {
                    let i = usize::from(*at) % w.len();
                    w[i] ^= if *xor == 0 { 1 } else { *xor };
                    self.peer.unscripted = true;
                }
            }
            Op::Raw(b) => {
                self.peer.unscripted |= !b.0.is_empty();
                self.peer.wire.extend_from_slice(&b.0);
            }
            Op::App(a) => self.app(a),
            Op::Advance { secs } => self.t.advance(Duration::from_secs(u64::from(*secs))),
            Op::Eof => {
                self.settle();
                self.t.eof();
                self.settle();
                return false;
            }
        }
        self.settle();
        true
    }

    fn finish(&mut self) {
        self.peer.seal(false);
        self.deliver(0);
        self.settle();
        self.t.check_sticky();
    }
}

fn run(server: bool, data: &[u8]) -> Outcome {
    let input = SessionInput::from_bytes(data);
    let mut r = Run::new(server, &input.knobs);
    for op in &input.ops {
        if !r.op(op) {
            r.t.check_sticky();
            return r.t.outcome();
        }
    }
    r.finish();
    r.t.outcome()
}

/// `session_server`: a server under test, its client a keyed peer scripted by `data`.
pub fn session_server(data: &[u8]) {
    run(true, data);
}

/// `session_client`: a client under test, its server a keyed peer scripted by `data`.
pub fn session_client(data: &[u8]) {
    run(false, data);
}

/// [`session_server`] or [`session_client`], returning how the session ended.
pub fn session_outcome(server: bool, data: &[u8]) -> Outcome {
    run(server, data)
}
