#![no_std]
#![forbid(unsafe_code)]
//! ferry-core (crate docs written later)
extern crate alloc;

mod compress;
mod config;
mod crypto;
mod error;
mod hash;
mod record;
mod session;
mod time;
pub mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use compress::{Compression, InflateError};
pub use config::{Config, Psk};
pub use error::{
    BufferTooSmall, DecodeError, HandshakeError, ReadError, RecordError, RequestError,
    SessionError, Violation, WriteError,
};
pub use hash::{FileHasher, hash};
pub use session::{
    Chunk, Event, FileMeta, PeerRequestId, RecvId, RequestId, SendId, Session, Timer,
};
pub use time::Instant;
pub use wire::{CloseCode, ListEntry, Mtime, Problem, Reason};

/// Largest plaintext chunk of a file in one DATA frame (64 KiB): a `read` buffer of this size
/// always suffices.
pub const CHUNK: usize = compress::CHUNK;
/// Largest record on the wire: a `poll_transmit` buffer of this size always suffices.
pub const MAX_RECORD: usize = record::stream::MAX_RECORD;
