//! The bodies of the fuzz targets, with the invariants they check (feature `testing`;
//! unstable).
//!
//! Every target is a plain function of the fuzzer's bytes that returns normally on any input
//! and panics only when an invariant breaks. `fuzz/fuzz_targets/<name>.rs` calls it from
//! `fuzz_target!`, and `core/tests/fuzz_corpus.rs` runs every file of `fuzz/corpus/<name>/`
//! through the same function on stable, so a corpus entry (a seed or a crash kept as a
//! regression) is checked by plain `cargo test` too. Inputs are decoded here, not by the fuzz
//! crate, so both read a file the same way.
//!
//! | target | input | checks |
//! |---|---|---|
//! | `decode_frame` | raw frame bytes | every decoded frame re-encodes to itself; strict prefixes wait |
//! | `record_open` | settings byte pair + raw records | only what the sealer would produce opens; bounds; a failed tag moves no counter |
//! | `handshake_server` | cut byte + the client's byte stream | session invariants (below), with a [`MemApp`] |
//! | `handshake_client` | cut byte + the server's byte stream | the same, on a client |
//! | `session_server` | a [`SessionInput`]: frames of a keyed client, application calls | session invariants, and everything the server sends is checked by the peer |
//! | `session_client` | a [`SessionInput`] against a keyed server | the same, on a client |
//! | `inflate` | declared length + a deflate stream | exact length or a typed error; agrees with miniz; round trips |
//! | `seal_open` | split byte + a sealed file | header re-encodes; whole chunks only; sticky errors; only what the sealer produces opens |
//! | `dgram_datagram` | end and state byte + datagrams (raw, or genuine ones edited) into `handle_datagram` | transport invariants, no past deadline; the transfer completes when every datagram was dropped |
//! | `dgram_session` | a hostile network: drop, duplicate, delay, flip, inject, jump the clock | the same after every step; drained within a step budget; committed files are what was sent |
//!
//! Session invariants (see `checked.rs`): `poll_transmit` never writes more than
//! [`MAX_RECORD`](crate::MAX_RECORD) bytes even into a larger buffer and always reaches 0;
//! `handle_input` never claims more than it was given; the receive window never holds more
//! than the configured `recv_window`; `poll_timeout` never lies in the past; no `Received`
//! event unless the bytes read hash to the `FileEnd` hash the peer sent; at most one `Closed`
//! event, carrying the sticky error; once an error is returned, `handle_input`, `read` and
//! `handle_eof` return that same error forever.
//!
//! Fuzz builds (`cfg(fuzzing)`) replace AES-256-GCM by a null AEAD (all-zero tags), so raw
//! inputs can carry valid handshake messages and records; the seeds hold both real recorded
//! streams (deep on stable) and null-AEAD streams (deep under the fuzzer). They also remember
//! X25519 results (the fixed seeds repeat them every execution; same outputs, less time).
//!
//! [`MemApp`]: crate::testing::MemApp

mod checked;
mod dgram;
pub mod dgram_net;
mod handshake;
mod peer;
mod raw;
mod seal;
mod session;

use alloc::vec::Vec;

pub use dgram::{
    dgram_datagram, dgram_datagram_on, dgram_datagram_outcome, dgram_session, dgram_session_on,
    dgram_session_outcome,
};
pub use handshake::{
    FUZZ_PAIR_SEED, client_app, handshake_client, handshake_client_outcome, handshake_server,
    handshake_server_outcome, null_client_stream, null_record, null_server_stream, server_app,
};
pub use raw::{RECORD_KEY, decode_frame, inflate, record_open, seal_records};
pub use seal::{SEAL_KEY, SEAL_SALT, null_sealed_file, seal_open, sealed, sealed_file};
pub use session::{
    AppOp, Encode, Knobs, Op, PeerFrame, RawBytes, SessionInput, session_client, session_outcome,
    session_server,
};

use crate::SessionError;
use crate::compress::{Deflater, InflateError, Inflater};
use crate::testing::MemApp;

/// How a session under a target ended (for tests that check what the seeds reach).
pub struct Outcome {
    /// The sticky error, if the session failed.
    pub error: Option<SessionError>,
    /// Whether the session is closed.
    pub closed: bool,
    /// The application: files it committed, outcomes of what it sent, its event log.
    pub app: MemApp,
}

/// A fuzz target: the fuzzer's bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` name it.
pub const TARGETS: [(&str, Target); 8] = [
    ("decode_frame", decode_frame),
    ("record_open", record_open),
    ("handshake_server", handshake_server),
    ("handshake_client", handshake_client),
    ("session_server", session_server),
    ("session_client", session_client),
    ("inflate", inflate),
    ("seal_open", seal_open),
];

/// The datagram transport's targets (their corpora are replayed by
/// `core/tests/fuzz_corpus_dgram.rs`).
pub const DGRAM_TARGETS: [(&str, Target); 2] = [
    ("dgram_datagram", dgram_datagram),
    ("dgram_session", dgram_session),
];

/// Inflate one DATA body with the session's inflater into exactly `declared_len` bytes.
///
/// # Errors
/// The [`InflateError`] a session would fail a chunk with.
pub fn inflate_chunk(input: &[u8], declared_len: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = alloc::vec![0u8; declared_len];
    Inflater::new().inflate(input, &mut out)?;
    Ok(out)
}

/// Deflate one chunk as a sending session does (its level, fresh stream); `None` when it does
/// not pay (or the input is empty or longer than [`CHUNK`](crate::CHUNK)).
pub fn deflate_chunk(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = alloc::vec![0u8; input.len()];
    let n = Deflater::new(crate::compress::LEVEL).compress(input, &mut out)?;
    out.truncate(n);
    Some(out)
}
