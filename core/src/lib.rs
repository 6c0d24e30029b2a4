#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
//! The sans-IO protocol core of [ferry](https://github.com/ferry-rs/ferry): handshake,
//! encrypted records, framing, compression and file transfer, as pure state machines.
//!
//! `ferry-core` is `no_std` + `alloc` and touches nothing: no sockets, files, clocks, threads
//! or OS randomness. The caller passes in bytes, timestamps ([`Instant`]) and a per-session
//! 32-byte seed, and polls bytes to send, events and the next deadline out. The adapters
//! (blocking `std`, `mio`, `smol`) own all I/O and share this one implementation.
//!
//! # What it does
//! - **Handshake**: `Noise_NNpsk0_25519_AESGCM_SHA256` with a cleartext preamble bound into the
//!   prologue, hello payloads carrying capabilities, and a [`Psk`] derived from a key file.
//! - **Records**: AES-256-GCM with implicit per-direction counter nonces, the record header as
//!   associated data, implicit rekeying, and a mandatory `Close` in a FINAL record (so
//!   truncation is detected).
//! - **Frames**: fixed-header DATA frames and postcard CONTROL messages, decoded by the
//!   panic-free frame decoder (module `wire`, feature `testing`).
//! - **Compression**: optional per-chunk raw deflate, inflated lazily into the reader's buffer
//!   and bounded by the declared length.
//! - **Transfer**: offers (PUT), GET, LIST, accept/resume with a BLAKE3 prefix check, whole-file
//!   BLAKE3 verification, acknowledgements after the receiver's durable commit, keep-alive,
//!   idle and handshake timeouts, explicit back-pressure.
//!
//! The wire format is specified in `docs/PROTOCOL.md`.
//!
//! # What it does not do
//! It does not read files or pick paths (the adapters' disk layer validates names, writes
//! temporary files and renames), it does not decide whether to accept an offer (the
//! application does, on [`Event::Offered`]).
//!
//! # Over UDP
//! [`dgram`] carries the same [`Session`] over datagrams: a [`dgram::Connection`] (client) or
//! an [`dgram::Endpoint`] (server, many connections on one socket) with packet protection,
//! acknowledgements, loss recovery, congestion control, pacing, flow control and path MTU
//! discovery. Its driving contract is the same, with datagrams in place of bytes.
//!
//! # The driving contract
//! One [`Session`] per connection. After **any** input ([`Session::handle_input`],
//! [`Session::handle_eof`], [`Session::handle_timeout`]) or application call:
//! 1. call [`Session::poll_transmit`] until it returns 0, sending what it writes;
//! 2. drain [`Session::read`] (received file bytes) and [`Session::poll_event`];
//! 3. wait for socket readiness or [`Session::poll_timeout`], whichever comes first.
//!
//! `handle_input` consumes a prefix of the bytes it is given and returns its length; keep the
//! rest and append newly received bytes to it. It stops early while the receive window or
//! the event queue is full ([`Session::wants_input`] is then false): stop reading the socket
//! until the application drained `read` and `poll_event`. Fatal errors are sticky and end the
//! session with exactly one [`Event::Closed`].
//!
//! ```
//! use ferry_core::{Config, Event, FileHasher, FileMeta, Instant, Psk, Session, CHUNK, MAX_RECORD};
//!
//! // Both ends share a key file's 32 bytes; adapters draw seeds from the OS.
//! let psk = Psk::from_key_bytes(&[7; 32]);
//! let mut now = Instant::ZERO;
//! let mut client = Session::client(&Config::default(), &psk, [1; 32], now);
//! let mut server = Session::server(&Config::default(), &psk, [2; 32], now);
//! let payload = b"hello, ferry".to_vec();
//! let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
//! let (mut out, mut chunk) = (vec![0; MAX_RECORD], vec![0; CHUNK]);
//! let mut received = Vec::new();
//! let mut offered = false;
//!
//! while !(client.is_closed() && server.is_closed()) {
//!     // 1. Transmit until there is nothing more to send.
//!     for (session, wire) in [(&mut client, &mut to_server), (&mut server, &mut to_client)] {
//!         loop {
//!             let n = session.poll_transmit(now, &mut out).unwrap();
//!             if n == 0 { break; }
//!             wire.extend_from_slice(&out[..n]);
//!         }
//!     }
//!     // Input: each side consumes what it can and keeps the rest. While `wants_input` is
//!     // false (its application has not drained `read` and `poll_event`), an adapter stops
//!     // reading the socket.
//!     for (session, wire) in [(&mut server, &mut to_server), (&mut client, &mut to_client)] {
//!         if session.wants_input() {
//!             let used = session.handle_input(now, wire).unwrap();
//!             wire.drain(..used);
//!         }
//!     }
//!     // 2. Drain received bytes and events.
//!     while let Some(c) = server.read(&mut chunk).unwrap() {
//!         received.extend_from_slice(&chunk[..c.len]);
//!     }
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             Event::Offered { id, .. } => server.accept(id, None).unwrap(),
//!             // The bytes match the sender's whole-file hash: publish, then acknowledge.
//!             Event::Verified { id, .. } => server.committed(id).unwrap(),
//!             _ => {}
//!         }
//!     }
//!     if client.is_connected() && !offered {
//!         client.offer(FileMeta::new("greeting.txt", Some(payload.len() as u64))).unwrap();
//!         offered = true;
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             Event::Accepted { id, .. } => {
//!                 client.start(id, FileHasher::new()).unwrap();
//!                 assert_eq!(client.write(id, &payload).unwrap(), payload.len());
//!                 client.finish(id).unwrap();
//!             }
//!             Event::Delivered { .. } => client.close(now, ferry_core::CloseCode::Done),
//!             _ => {}
//!         }
//!     }
//!     // 3. Wait for input or the next deadline, whichever comes first. The wires here are
//!     // in memory: when nothing is in flight or waiting to be sent, time jumps to the
//!     // earliest `poll_timeout` (a keep-alive, say) and the timers fire.
//!     let quiet = to_server.is_empty() && to_client.is_empty();
//!     if quiet && !client.has_transmit() && !server.has_transmit() {
//!         let Some(at) = [client.poll_timeout(), server.poll_timeout()].into_iter().flatten().min()
//!         else {
//!             break;
//!         };
//!         now = at;
//!         client.handle_timeout(now);
//!         server.handle_timeout(now);
//!     }
//! }
//! assert_eq!(received, payload);
//! ```
//!
//! # Features
//! - `testing` (unstable): the in-memory `testing::Pair` harness with a virtual clock and
//!   links that split, delay and coalesce bytes, the frame codec (`wire`) and the
//!   `_internal_*` hooks, used by the tests, the benches and the fuzz targets.
//!
//! # MSRV
//! Rust 1.88.
extern crate alloc;
// `arbitrary`'s derive (structured fuzz inputs in `testing::fuzz`) needs `std` in the crate root.
#[cfg(feature = "testing")]
extern crate std;

pub mod code;
mod compress;
mod config;
mod crypto;
pub mod daytime;
pub mod dgram;
mod error;
mod hash;
mod identity;
mod record;
pub mod seal;
mod session;
mod time;
// The frame codec is public for tests, benches and fuzz targets only.
#[cfg(feature = "testing")]
pub mod wire;
// Without `testing` its `pub` items are the crate's own (or re-exported above).
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)]
mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use code::{Code, CodeError};
pub use compress::{Compression, InflateError};
pub use config::{Config, Psk};
pub use error::{
    BufferTooSmall, DecodeError, HandshakeError, ReadError, RecordError, RequestError,
    SessionError, Violation, WriteError,
};
pub use hash::{FileHasher, hash};
pub use identity::{Identity, Mode};
pub use seal::{FileHeader, Opener, SealError, SealKey, Sealer};
pub use session::{
    BUSY_REFUSAL, Chunk, Event, FileMeta, MODE_REFUSAL, PeerRequestId, RecvId, RequestId, SendId,
    Session, Timer,
};
pub use time::Instant;
pub use wire::{
    CHUNK, CloseCode, ListEntry, MAX_DETAIL_LEN, MAX_LIST_ENTRIES, MAX_PATH_LEN, MAX_RECORD_BODY,
    Mtime, Problem, Reason, RecordFormat,
};

/// Largest record on the wire: a `poll_transmit` buffer of this size always suffices.
pub const MAX_RECORD: usize = record::stream::MAX_RECORD;
