//! Typed errors, one enum per layer.
//!
//! Fatal session errors are sticky: once a [`Session`](crate::Session) fails, every later input
//! call returns the same error. Authentication failures deliberately carry no detail.

use core::fmt;

use crate::compress::InflateError;
use crate::wire::CloseCode;

/// A caller-provided buffer was too small. Nothing was consumed or committed; retry with a
/// buffer of at least `needed` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes needed.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer too small: {} bytes needed", self.needed)
    }
}
impl core::error::Error for BufferTooSmall {}

/// Bytes that cannot be a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Unknown frame type byte.
    UnknownFrame(u8),
    /// Unknown DATA codec byte.
    UnknownCodec(u8),
    /// DATA `plain_len` is zero or larger than a chunk.
    BadChunkLength(u32),
    /// DATA `body_len` is zero, larger than a chunk, or differs from `plain_len` when stored.
    BadBodyLength(u32),
    /// `offset + plain_len` overflows.
    OffsetOverflow,
    /// CONTROL length is zero or too large.
    BadControlLength(usize),
    /// The CONTROL body is not a valid message.
    Malformed,
    /// The CONTROL body has bytes after the message.
    TrailingBytes,
    /// A frame is cut by the end of its record (frames never span records).
    IncompleteFrame,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownFrame(t) => write!(f, "unknown frame type {t:#04x}"),
            DecodeError::UnknownCodec(c) => write!(f, "unknown codec {c:#04x}"),
            DecodeError::BadChunkLength(n) => write!(f, "invalid chunk length {n}"),
            DecodeError::BadBodyLength(n) => write!(f, "invalid body length {n}"),
            DecodeError::OffsetOverflow => f.write_str("chunk offset overflows"),
            DecodeError::BadControlLength(n) => write!(f, "invalid control length {n}"),
            DecodeError::Malformed => f.write_str("malformed control message"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes in control frame"),
            DecodeError::IncompleteFrame => f.write_str("frame cut by the end of its record"),
        }
    }
}
impl core::error::Error for DecodeError {}

/// Problems with the cleartext preamble or the handshake messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer does not speak ferry (bad magic).
    NotFerry,
    /// Protocol version not supported.
    UnsupportedVersion(u8),
    /// The client asked for a handshake mode this server does not run (the preamble's mode
    /// byte); the server answered with the one it requires.
    UnsupportedMode(u8),
    /// The server requires another handshake mode (this preamble mode byte), and said so in
    /// a plaintext refusal instead of its handshake message.
    ModeRequired(u8),
    /// Cipher suite not supported.
    UnsupportedSuite(u8),
    /// The preamble names another transport (a stream preamble in a datagram, or the reverse).
    WrongTransport(u8),
    /// A handshake message has the wrong length.
    BadLength,
    /// The peer's X25519 share gives a non-contributory (all-zero) secret.
    NonContributory,
    /// A hello payload is invalid (bad version, record size out of range...).
    BadHello,
    /// The server's id is not the one the client expects.
    WrongServer,
    /// The server closed the connection before answering the handshake: it does not share
    /// this key (a server never explains a failed handshake), or it is not a ferry server.
    Refused,
    /// The server refused the connection because it is busy (too many connections): try
    /// again later. Says nothing about the key.
    Busy,
    /// Mode CODE: the two sides' codes differ, or someone tried to guess it (or changed the
    /// exchange). The code is burned.
    WrongCode,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::NotFerry => f.write_str("peer does not speak the ferry protocol"),
            HandshakeError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            HandshakeError::UnsupportedMode(m) => write!(f, "unsupported handshake mode {m}"),
            HandshakeError::ModeRequired(m) => {
                let what = match crate::Mode::from_byte(*m) {
                    Some(crate::Mode::Psk) => "a pre-shared key (mode PSK): the key file alone",
                    Some(crate::Mode::Pinned) => {
                        "a pinned server identity (mode PINNED): a client that pins server keys"
                    }
                    Some(crate::Mode::PinnedPsk) => {
                        "a pinned server identity and the key file (mode PINNED+PSK)"
                    }
                    _ => "a handshake mode this client does not know",
                };
                write!(f, "this server requires {what} (mode byte {m})")
            }
            HandshakeError::UnsupportedSuite(s) => write!(f, "unsupported cipher suite {s}"),
            HandshakeError::WrongTransport(t) => {
                write!(f, "preamble names another transport ({t})")
            }
            HandshakeError::BadLength => f.write_str("handshake message has the wrong length"),
            HandshakeError::NonContributory => f.write_str("non-contributory key share"),
            HandshakeError::BadHello => f.write_str("invalid hello"),
            HandshakeError::WrongServer => f.write_str("server id does not match"),
            HandshakeError::WrongCode => f.write_str(
                "wrong code, or someone tried to guess it: the code is now burned; start again",
            ),
            HandshakeError::Refused => f.write_str(
                "the server closed the connection during the handshake: it does not share this key",
            ),
            HandshakeError::Busy => {
                f.write_str("server busy: it refused the connection (too many connections)")
            }
        }
    }
}

/// Problems with the record layer's framing (before or around authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Unknown record type byte.
    UnknownType(u8),
    /// Declared record length out of range (checked before the body is buffered).
    BadLength(u32),
    /// The peer's keys reached the hard epoch cap.
    KeysExhausted,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::UnknownType(t) => write!(f, "unknown record type {t:#04x}"),
            RecordError::BadLength(n) => write!(f, "record length {n} out of range"),
            RecordError::KeysExhausted => f.write_str("record keys exhausted"),
        }
    }
}

/// Well-formed input that the protocol does not allow at this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// The client's first frame was not `Start`.
    ExpectedStart,
    /// A frame that only one role may send came from the other.
    WrongRole,
    /// A frame about a transfer or request id that is not open.
    UnknownId(u32),
    /// An offer or request reused an id that is still open.
    DuplicateId(u32),
    /// DATA before the receiver accepted the file.
    DataBeforeAccept(u32),
    /// DATA not contiguous with what came before.
    NonContiguous(u32),
    /// DATA or FileEnd beyond or short of the offered size.
    SizeMismatch(u32),
    /// A deflated chunk while compression was not negotiated.
    CompressionNotNegotiated,
    /// A deflated chunk does not inflate to exactly its declared length.
    Inflate(InflateError),
    /// More open transfers or requests than this side allows.
    TooManyOpen,
    /// A record larger than this side advertised.
    RecordTooLarge,
    /// A `Close` outside a FINAL record, or a FINAL record without `Close` last.
    BadClose,
    /// A frame after `Close`.
    AfterClose,
    /// A frame that belongs to the session layer reached the transfer layer.
    BadRecordContents,
    /// A path longer than the protocol allows.
    PathTooLong,
    /// A field outside its range (an over-long detail text, nanoseconds >= 10^9).
    InvalidField,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::ExpectedStart => f.write_str("first client frame was not Start"),
            Violation::WrongRole => f.write_str("frame not allowed from this role"),
            Violation::UnknownId(id) => write!(f, "unknown transfer or request id {id}"),
            Violation::DuplicateId(id) => write!(f, "id {id} is already open"),
            Violation::DataBeforeAccept(id) => {
                write!(f, "data for file {id} before it was accepted")
            }
            Violation::NonContiguous(id) => write!(f, "non-contiguous data for file {id}"),
            Violation::SizeMismatch(id) => write!(f, "file {id} does not match its offered size"),
            Violation::CompressionNotNegotiated => {
                f.write_str("compressed chunk without negotiation")
            }
            Violation::Inflate(e) => write!(f, "bad compressed chunk: {e:?}"),
            Violation::TooManyOpen => f.write_str("too many open transfers or requests"),
            Violation::RecordTooLarge => f.write_str("record larger than advertised"),
            Violation::BadClose => f.write_str("malformed close"),
            Violation::AfterClose => f.write_str("frame after close"),
            Violation::BadRecordContents => f.write_str("invalid record contents"),
            Violation::PathTooLong => f.write_str("path too long"),
            Violation::InvalidField => f.write_str("field out of range"),
        }
    }
}

/// A fatal session error. Sticky: once returned, every later input call returns it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// Malformed frame bytes from the peer.
    Decode(DecodeError),
    /// Bad preamble or handshake.
    Handshake(HandshakeError),
    /// Bad record framing.
    Record(RecordError),
    /// Well-formed but not allowed here.
    Protocol(Violation),
    /// A record or handshake message failed authentication (deliberately no detail).
    Authentication,
    /// The stream ended without a FINAL record carrying `Close`.
    Truncated,
    /// Bytes arrived after the peer's FINAL record.
    TrailingData,
    /// The handshake or idle timer expired.
    TimedOut,
    /// The peer closed the session with an error code.
    ClosedByPeer(CloseCode),
    /// This side's own sending keys are exhausted (never in practice).
    KeysExhausted,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Decode(e) => write!(f, "decode error: {e}"),
            SessionError::Handshake(e) => write!(f, "handshake failed: {e}"),
            SessionError::Record(e) => write!(f, "record error: {e}"),
            SessionError::Protocol(v) => write!(f, "protocol violation: {v}"),
            SessionError::Authentication => {
                f.write_str("authentication failed (wrong key or tampered data)")
            }
            SessionError::Truncated => {
                f.write_str("connection ended before the peer closed the session")
            }
            SessionError::TrailingData => f.write_str("data after the end of the session"),
            SessionError::TimedOut => f.write_str("timed out"),
            SessionError::ClosedByPeer(CloseCode::Refused) => f.write_str(
                "the server refused this client: its key is not on the server's allow list \
                 (--identity), or its access was revoked",
            ),
            SessionError::ClosedByPeer(c) => write!(f, "closed by peer: {c:?}"),
            SessionError::KeysExhausted => f.write_str("record keys exhausted"),
        }
    }
}
impl core::error::Error for SessionError {}

impl From<DecodeError> for SessionError {
    fn from(e: DecodeError) -> Self {
        SessionError::Decode(e)
    }
}
impl From<Violation> for SessionError {
    fn from(v: Violation) -> Self {
        SessionError::Protocol(v)
    }
}
impl From<HandshakeError> for SessionError {
    fn from(e: HandshakeError) -> Self {
        SessionError::Handshake(e)
    }
}
impl From<RecordError> for SessionError {
    fn from(e: RecordError) -> Self {
        SessionError::Record(e)
    }
}

/// An application request (offer, accept, get, ...) that cannot be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The session is not established yet, is closing, or has failed.
    NotOpen,
    /// No such transfer or request, or not in a state where this call applies.
    InvalidState,
    /// The peer's limit on open transfers/requests is reached; retry after `Delivered`,
    /// `Rejected` or `RequestDone` events.
    Busy,
    /// A path longer than [`MAX_PATH_LEN`](crate::wire::MAX_PATH_LEN) bytes.
    PathTooLong,
    /// The resume prefix is longer than the offered size.
    InvalidResume,
    /// A field outside its range (an `Mtime` with nanoseconds >= 10^9).
    InvalidField,
    /// A record larger than the protocol carries.
    TooLarge,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NotOpen => f.write_str("session is not open"),
            RequestError::InvalidState => {
                f.write_str("no such transfer in a state that allows this")
            }
            RequestError::Busy => f.write_str("too many open transfers; wait for one to finish"),
            RequestError::PathTooLong => f.write_str("path too long"),
            RequestError::InvalidResume => f.write_str("resume offset beyond the offered size"),
            RequestError::InvalidField => f.write_str("field out of range"),
            RequestError::TooLarge => f.write_str("record too large"),
        }
    }
}
impl core::error::Error for RequestError {}

/// Writing file bytes failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The session is not open.
    NotOpen,
    /// No such outgoing transfer, or it is not started (call `start` after `Accepted`).
    InvalidState,
    /// More bytes than the offered size.
    TooLong,
    /// `finish` before all offered bytes were written.
    TooShort,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotOpen => f.write_str("session is not open"),
            WriteError::InvalidState => f.write_str("transfer is not sending"),
            WriteError::TooLong => f.write_str("more bytes than the offered size"),
            WriteError::TooShort => f.write_str("fewer bytes than the offered size"),
        }
    }
}
impl core::error::Error for WriteError {}

/// Reading received file bytes failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// `out` is smaller than the next chunk; nothing was consumed.
    BufferTooSmall(BufferTooSmall),
    /// The chunk was invalid; the session has failed with this error.
    Session(SessionError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::BufferTooSmall(e) => e.fmt(f),
            ReadError::Session(e) => e.fmt(f),
        }
    }
}
impl core::error::Error for ReadError {}
