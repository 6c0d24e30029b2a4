//! `handshake_server` and `handshake_client`: the peer's whole byte stream as raw bytes, from
//! the preamble on, into a session with fixed seeds and a [`MemApp`].
//!
//! The seeds are those of a [`Pair`](crate::testing::Pair) built with [`FUZZ_PAIR_SEED`], so a
//! stream recorded from such a pair (with [`client_app`] and [`server_app`]) replays exactly:
//! on stable it gets through the real AEAD to the end of the session. Under the fuzzer's null
//! AEAD, streams made by [`null_client_stream`] and [`null_server_stream`] do.

use alloc::string::String;
use alloc::vec::Vec;

use super::Outcome;
use super::checked::Checked;
use crate::crypto::aead::TAG_LEN;
use crate::record::stream::{MAX_PLAINTEXT, TYPE_FINAL, TYPE_NORMAL};
use crate::session::handshake::{FEATURE_DEFLATE, PREAMBLE, VERSION};
use crate::testing::{MemApp, START, TestRng, test_psk};
use crate::{Config, Session};

/// The seed of the [`Pair`](crate::testing::Pair) whose session seeds the handshake targets use.
pub const FUZZ_PAIR_SEED: u64 = 0xF022_0001;

/// The (client, server) session seeds of a pair built with [`FUZZ_PAIR_SEED`].
fn seeds() -> ([u8; 32], [u8; 32]) {
    let mut rng = TestRng::new(FUZZ_PAIR_SEED);
    let c = rng.seed32();
    (c, rng.seed32())
}

/// Some file bytes: runs of 64 equal bytes (compressible) for even `tag`s, noise for odd ones.
pub(super) fn content(tag: u8, offset: u64) -> u8 {
    if tag.is_multiple_of(2) {
        ((offset >> 6) as u8).wrapping_add(tag)
    } else {
        (offset
            .wrapping_add(u64::from(tag))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> 56) as u8
    }
}

/// `len` bytes of [`content`] from offset 0.
pub(super) fn file(tag: u8, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| content(tag, i)).collect()
}

/// The client application of the handshake targets: offers two files, asks for a listing
/// and for the server's file, then closes.
pub fn client_app() -> MemApp {
    let mut app = MemApp::new()
        .with_file("a.txt", file(0, 3000))
        .with_file("b.bin", file(1, 1500));
    app.to_send
        .extend([String::from("a.txt"), String::from("b.bin")]);
    app.to_list.push_back(String::new());
    app.to_get.push_back(String::from("srv/x.txt"));
    app.close_when_done = true;
    app
}

/// The server application of the handshake targets: it holds one file to serve.
pub fn server_app() -> MemApp {
    MemApp::new().with_file("srv/x.txt", file(2, 5000))
}

/// Feed `data[1..]` in pieces whose size `data[0]` picks (0: all at once), one record per
/// `handle_input` call, the application reacting in between; then end of stream.
fn drive_raw(mut c: Checked, data: &[u8]) -> Outcome {
    let sel = usize::from(data.first().copied().unwrap_or(0));
    let stream = data.get(1..).unwrap_or_default();
    let piece = if sel == 0 {
        stream.len().max(1)
    } else {
        sel * sel / 4 + 1
    };
    // Every round either consumes input or finds nothing to do.
    let limit = 4 * (stream.len() + 16);
    for chunk in stream.chunks(piece) {
        c.inbox.extend_from_slice(chunk);
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < limit, "no progress bound: {rounds} rounds");
            let mut progress = c.pump(None);
            c.transmit();
            progress |= c.input();
            if !progress {
                break;
            }
        }
    }
    c.eof();
    c.pump(None);
    c.transmit();
    c.check_sticky();
    c.outcome()
}

/// `handshake_server`: `data[0]` picks how the stream is cut, the rest is what a client sends.
pub fn handshake_server(data: &[u8]) {
    handshake_server_outcome(data);
}

/// [`handshake_server`], returning how the session ended.
pub fn handshake_server_outcome(data: &[u8]) -> Outcome {
    let (_, server_seed) = seeds();
    let cfg = Config::default();
    let s = Session::server(&cfg, &test_psk(), server_seed, START);
    let c = Checked::new(s, server_app(), START, cfg.recv_window);
    drive_raw(c, data)
}

/// `handshake_client`: `data[0]` picks how the stream is cut, the rest is what a server sends.
/// The client's own first flight is produced (and checked) but goes nowhere.
pub fn handshake_client(data: &[u8]) {
    handshake_client_outcome(data);
}

/// [`handshake_client`], returning how the session ended.
pub fn handshake_client_outcome(data: &[u8]) -> Outcome {
    let (client_seed, _) = seeds();
    let cfg = Config::default();
    let s = Session::client(&cfg, &test_psk(), client_seed, START);
    let mut c = Checked::new(s, client_app(), START, cfg.recv_window);
    c.transmit();
    drive_raw(c, data)
}

/// A record as the null AEAD of fuzz builds seals it: header, plaintext, 16 zero bytes.
pub fn null_record(plaintext: &[u8], fin: bool) -> Vec<u8> {
    let len = (plaintext.len() + TAG_LEN) as u32;
    let mut r = Vec::with_capacity(plaintext.len() + 4 + TAG_LEN);
    r.push(if fin { TYPE_FINAL } else { TYPE_NORMAL });
    r.extend_from_slice(&len.to_be_bytes()[1..]);
    r.extend_from_slice(plaintext);
    r.extend_from_slice(&[0; TAG_LEN]);
    r
}

/// An X25519 public key of full order (the client's from the golden transcript).
const SOME_PUBLIC_KEY: [u8; 32] = [
    0xd5, 0x3b, 0x9f, 0xea, 0x1d, 0xd4, 0xd5, 0x70, 0xdb, 0xe3, 0x81, 0x80, 0x76, 0x7c, 0x23, 0x64,
    0x56, 0xca, 0x66, 0x33, 0xf1, 0x03, 0xf1, 0xaa, 0x06, 0x37, 0xe7, 0xb6, 0x13, 0xd2, 0x52, 0x74,
];

/// `features | max_plaintext | max_open` of a default hello.
fn hello_tail(out: &mut Vec<u8>) {
    out.extend_from_slice(&FEATURE_DEFLATE.to_be_bytes());
    out.extend_from_slice(&(MAX_PLAINTEXT as u32).to_be_bytes());
    out.extend_from_slice(&1024u16.to_be_bytes());
}

/// What a client sends under the null AEAD: preamble, message 1 with a plaintext ClientHello
/// and a zero tag, then `records` (plaintext, FINAL) as null records. Only fuzz builds accept
/// it (stable fails its first tag).
pub fn null_client_stream(records: &[(&[u8], bool)]) -> Vec<u8> {
    let mut s = PREAMBLE.to_vec();
    s.extend_from_slice(&75u16.to_be_bytes());
    s.extend_from_slice(&SOME_PUBLIC_KEY);
    s.push(VERSION);
    s.extend_from_slice(&[0xC1; 16]);
    hello_tail(&mut s);
    s.extend_from_slice(&[0; TAG_LEN]);
    for (pt, fin) in records {
        s.extend_from_slice(&null_record(pt, *fin));
    }
    s
}

/// What a server sends under the null AEAD: message 2 with a plaintext ServerHello and a zero
/// tag, then `records` as null records.
pub fn null_server_stream(records: &[(&[u8], bool)]) -> Vec<u8> {
    let mut s = 91u16.to_be_bytes().to_vec();
    s.extend_from_slice(&SOME_PUBLIC_KEY);
    s.push(VERSION);
    s.extend_from_slice(&[0x5E; 16]);
    s.extend_from_slice(&[0; 16]);
    hello_tail(&mut s);
    s.extend_from_slice(&[0; TAG_LEN]);
    for (pt, fin) in records {
        s.extend_from_slice(&null_record(pt, *fin));
    }
    s
}
