//! CONTROL messages: a versioned serde enum encoded with postcard.
//!
//! Protocol version 1 fixes the variant order below; a later version may only append variants
//! (postcard encodes the variant index as a varint), and the version byte in the handshake
//! tells a peer which set it may use.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest relative path an `Offer`, `Request` or `ListEntry` may carry, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest human-readable detail in a [`Problem`], in bytes (longer details are cut).
pub const MAX_DETAIL_LEN: usize = 512;
/// Most entries one `Listing` message may carry.
pub const MAX_LIST_ENTRIES: usize = 256;

/// Modification time: seconds and nanoseconds relative to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mtime {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    pub secs: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nanos: u32,
}

/// Why a file or request was refused or failed. Shown to the user on the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// The destination exists with different content and overwriting was not requested.
    Exists,
    /// The destination already holds exactly this content.
    UpToDate,
    /// The receiver's policy or permissions forbid it.
    Denied,
    /// The name is absolute, climbs out of the root, contains control characters or names a
    /// temporary file.
    BadName,
    /// The requested name does not exist.
    NotFound,
    /// The disk is full.
    NoSpace,
    /// Another I/O error.
    Io,
    /// The received bytes do not match the sender's whole-file hash.
    HashMismatch,
    /// The sender gave up on the file.
    Cancelled,
    /// The request is not supported by this peer.
    Unsupported,
    /// Anything else; see the detail text.
    Other,
    /// Another transfer to this name is in progress: the same offer may succeed shortly
    /// (retry with back-off).
    Busy,
}

/// A refusal or failure: a machine-readable reason plus a short text for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// What went wrong.
    pub reason: Reason,
    /// Human-readable detail (at most [`MAX_DETAIL_LEN`] bytes).
    pub detail: String,
}

impl Problem {
    /// A problem with `detail` cut to [`MAX_DETAIL_LEN`] bytes at a character boundary.
    pub fn new(reason: Reason, detail: &str) -> Self {
        let mut end = detail.len().min(MAX_DETAIL_LEN);
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        Problem {
            reason,
            detail: String::from(&detail[..end]),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{:?}", self.reason)
        } else {
            write!(f, "{:?}: {}", self.reason, self.detail)
        }
    }
}

/// An offer to send one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Sender-chosen id, unique among the sender's open transfers.
    pub id: u32,
    /// Relative path with `/` separators.
    pub path: String,
    /// Size in bytes, or `None` when streaming from a source of unknown length.
    pub size: Option<u64>,
    /// Unix permission bits, if the sender has them.
    pub mode: Option<u32>,
    /// Modification time, if known.
    pub mtime: Option<Mtime>,
    /// The peer's request this offer answers (a GET), if any.
    pub request: Option<u32>,
    /// Whole-file BLAKE3 when the sender knows it up front: lets the receiver skip a file it
    /// already holds (`UpToDate`) without any data crossing.
    pub hash: Option<[u8; 32]>,
    /// The sender asks to replace a different existing file at `path`.
    pub overwrite: bool,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RequestKind {
    /// Send me the file or directory at this path (answered with `Offer`s, then `Done`).
    Get {
        /// Relative path.
        path: String,
    },
    /// List the files under this path (answered with `Listing`s, then `Done`).
    List {
        /// Relative path (empty for the root).
        path: String,
    },
    /// Store one structured record (answered with `Done`). The body is opaque to the protocol:
    /// one value in the named encoding, at most [`MAX_RECORD_BODY`] bytes.
    Record {
        /// How the body is encoded.
        format: RecordFormat,
        /// The encoded record.
        body: RecordBody,
    },
}

/// Largest record body a `Record` request may carry (it must fit one CONTROL frame).
pub const MAX_RECORD_BODY: usize = 15 * 1024;

/// The encoding of a record's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordFormat {
    /// postcard (serde's compact binary encoding).
    Postcard,
    /// JSON text (UTF-8).
    Json,
}

/// Record bytes, encoded as one length-prefixed byte string (never pre-allocated from a
/// claimed length: the decoder borrows exactly the bytes present).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordBody(pub Vec<u8>);

impl Serialize for RecordBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for RecordBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordBody;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<RecordBody, E> {
                Ok(RecordBody(v.to_vec()))
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                v: &'de [u8],
            ) -> Result<RecordBody, E> {
                Ok(RecordBody(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<RecordBody, E> {
                Ok(RecordBody(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// Relative path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, if known.
    pub mtime: Option<Mtime>,
}

/// Why a direction was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CloseCode {
    /// Everything this side wanted to do is done.
    Done,
    /// The application cancelled.
    Cancelled,
    /// The peer broke the protocol.
    ProtocolError,
    /// The peer was silent for too long.
    TimedOut,
    /// This side hit an internal error.
    InternalError,
    /// The server refused this client: its key is not on the allow list, or its access was
    /// revoked.
    Refused,
}

/// A `Vec` that refuses to decode more than `MAX_LIST_ENTRIES` elements and never
/// pre-allocates from the length the peer claims beyond that bound.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BoundedVec<T>(pub Vec<T>);

impl<T: Serialize> Serialize for BoundedVec<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for BoundedVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = BoundedVec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {MAX_LIST_ENTRIES} elements")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let hint = seq.size_hint().unwrap_or(0);
                if hint > MAX_LIST_ENTRIES {
                    return Err(serde::de::Error::invalid_length(hint, &self));
                }
                let mut v = Vec::with_capacity(hint);
                while let Some(x) = seq.next_element()? {
                    if v.len() == MAX_LIST_ENTRIES {
                        return Err(serde::de::Error::invalid_length(v.len() + 1, &self));
                    }
                    v.push(x);
                }
                Ok(BoundedVec(v))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A control message (protocol version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Control {
    /// The client's first frame: proves to the server that the client holds the session keys.
    Start,
    /// Offer one file.
    Offer(Offer),
    /// Accept an offered file; the sender continues at `resume_from` if its first
    /// `resume_from` bytes hash to `prefix_hash` (BLAKE3), else from 0.
    Accept {
        /// The offer's id.
        id: u32,
        /// Bytes the receiver already holds.
        resume_from: u64,
        /// BLAKE3 of those bytes.
        prefix_hash: [u8; 32],
    },
    /// Refuse an offered file.
    Reject {
        /// The offer's id.
        id: u32,
        /// Why.
        problem: Problem,
    },
    /// All DATA of a file has been sent.
    FileEnd {
        /// The offer's id.
        id: u32,
        /// Whole-file size.
        size: u64,
        /// Whole-file BLAKE3.
        hash: [u8; 32],
    },
    /// The receiver has durably committed the file.
    Ack {
        /// The offer's id.
        id: u32,
    },
    /// The receiver could not commit the file (hash mismatch, disk full...).
    CommitFailed {
        /// The offer's id.
        id: u32,
        /// Why.
        problem: Problem,
    },
    /// The sender gives up on a file it had offered.
    Abort {
        /// The offer's id.
        id: u32,
        /// Why.
        problem: Problem,
    },
    /// A request (GET or LIST).
    Request {
        /// Requester-chosen id.
        req: u32,
        /// What is asked.
        kind: RequestKind,
    },
    /// Part of the answer to a LIST request.
    Listing {
        /// The request's id.
        req: u32,
        /// Entries.
        entries: BoundedVec<ListEntry>,
    },
    /// The answer to a request is complete (or failed).
    Done {
        /// The request's id.
        req: u32,
        /// `None` on success.
        error: Option<Problem>,
    },
    /// Keep-alive; carries nothing.
    Ping,
    /// The last frame of a direction, always in a FINAL record.
    Close {
        /// Why.
        code: CloseCode,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_detail_is_cut_on_char_boundary() {
        let long = "é".repeat(MAX_DETAIL_LEN);
        let p = Problem::new(Reason::Io, &long);
        assert!(p.detail.len() <= MAX_DETAIL_LEN);
        assert!(p.detail.len() >= MAX_DETAIL_LEN - 1);
    }

    #[test]
    fn bounded_vec_refuses_huge_claims() {
        // Listing { req: 0, entries: <len = 2^32> } with no entries behind it.
        let bytes = [9u8, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(postcard::from_bytes::<Control>(&bytes).is_err());
        // 257 empty entries.
        let mut v = alloc::vec![9u8, 0, 0x81, 0x02];
        for _ in 0..=MAX_LIST_ENTRIES {
            v.extend_from_slice(&[0, 0, 0]);
        }
        assert!(postcard::from_bytes::<Control>(&v).is_err());
    }
}
