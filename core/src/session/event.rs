//! What a session tells the application, and the ids it uses.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::SessionError;
use crate::wire::{ListEntry, Mtime, Problem, RecordFormat};

/// An outgoing file (one this side offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendId(pub u32);

/// An incoming file (one the peer offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecvId(pub u32);

/// A request this side made (GET, LIST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u32);

/// A request the peer made, which this side answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerRequestId(pub u32);

/// Describes one file being offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Relative path with `/` separators (the receiver validates it).
    pub path: String,
    /// Size in bytes, or `None` for a stream of unknown length (no resume).
    pub size: Option<u64>,
    /// Unix permission bits.
    pub mode: Option<u32>,
    /// Modification time.
    pub mtime: Option<Mtime>,
    /// Whole-file BLAKE3, if known before sending (lets the receiver skip identical files).
    pub hash: Option<[u8; 32]>,
    /// Replace a different existing file at `path` (the sender's `--overwrite`).
    pub overwrite: bool,
}

impl FileMeta {
    /// A file at `path` of `size` bytes, with no mode, mtime or hash, not overwriting.
    pub fn new(path: &str, size: Option<u64>) -> Self {
        FileMeta {
            path: String::from(path),
            size,
            mode: None,
            mtime: None,
            hash: None,
            overwrite: false,
        }
    }
}

/// A chunk of a received file that [`Session::read`](crate::Session::read) wrote into the
/// caller's buffer: write `out[..len]` at `offset` of file `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// The file.
    pub id: RecvId,
    /// Where the bytes go.
    pub offset: u64,
    /// How many bytes were written into the caller's buffer.
    pub len: usize,
}

/// Something the application must know or act on, drained with
/// [`Session::poll_event`](crate::Session::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished (on the server: and the client proved it holds the keys).
    Connected,
    /// The peer offers a file: answer with `accept` or `reject`. A client session only
    /// reports offers answering one of its GETs, at the requested path or below it, always with
    /// `overwrite: false`; it refuses everything else, and every request from the peer, itself.
    Offered {
        /// The incoming file.
        id: RecvId,
        /// Its description (the path is the peer's claim: validate it).
        meta: FileMeta,
        /// The GET request of ours this answers, if any.
        request: Option<RequestId>,
    },
    /// The peer accepted our file: call `start` (with the prefix hash of the first
    /// `resume_from` bytes), then `write` and `finish`.
    Accepted {
        /// The outgoing file.
        id: SendId,
        /// Bytes the peer already holds.
        resume_from: u64,
    },
    /// The peer refused our file.
    Rejected {
        /// The outgoing file.
        id: SendId,
        /// Why.
        problem: Problem,
    },
    /// All bytes of an incoming file were read and match the sender's whole-file hash
    /// (verified, not yet committed): make it durable, publish it, then call `committed` (or
    /// `commit_failed`).
    Verified {
        /// The incoming file.
        id: RecvId,
        /// Its size.
        size: u64,
        /// Its BLAKE3.
        hash: [u8; 32],
    },
    /// An incoming file failed (hash mismatch, or the sender aborted). Do not publish it.
    ReceiveFailed {
        /// The incoming file.
        id: RecvId,
        /// Why.
        problem: Problem,
    },
    /// The peer durably committed our file.
    Delivered {
        /// The outgoing file.
        id: SendId,
        /// Its whole size.
        size: u64,
        /// Its whole-file BLAKE3, as sent in `FileEnd` and verified by the peer.
        hash: [u8; 32],
    },
    /// The peer could not commit our file.
    DeliveryFailed {
        /// The outgoing file.
        id: SendId,
        /// Why.
        problem: Problem,
    },
    /// The peer asks for a file or directory: answer with `offer_for` calls, then
    /// `finish_request`.
    GetRequested {
        /// The request.
        req: PeerRequestId,
        /// The requested relative path.
        path: String,
    },
    /// The peer asks for a listing: answer with `send_listing`, then `finish_request`.
    ListRequested {
        /// The request.
        req: PeerRequestId,
        /// The relative path to list.
        path: String,
    },
    /// The peer sends a record to store: answer with `finish_request` (`None` once it is
    /// durably stored, or the problem).
    RecordReceived {
        /// The request.
        req: PeerRequestId,
        /// How `body` is encoded (the application decodes and validates it).
        format: RecordFormat,
        /// The encoded record, at most `MAX_RECORD_BODY` bytes.
        body: Vec<u8>,
    },
    /// Part of the answer to our LIST request.
    Listing {
        /// Our request.
        req: RequestId,
        /// Entries.
        entries: Vec<ListEntry>,
    },
    /// Our request is fully answered (`error` is `None`) or failed.
    RequestDone {
        /// Our request.
        req: RequestId,
        /// Why it failed, if it did.
        error: Option<Problem>,
    },
    /// The session is over: cleanly (both sides sent their FINAL `Close`) or with an error.
    /// Emitted exactly once; drain `poll_transmit` once more, then drop the connection.
    Closed {
        /// `Ok` for a clean close.
        result: Result<(), SessionError>,
    },
}
