//! What an async client call can fail with.

use std::fmt;
use std::io;

use ferry_app::host::RunError;
use proto::{Problem, SessionError};

/// Why a [`Client`](crate::Client) call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A socket or a local file failed (connection refused or reset, no such file...).
    Io(io::Error),
    /// The session failed: wrong key ([`SessionError::Handshake`]), a truncated or tampered
    /// stream, a timeout, the peer closing with an error.
    Session(SessionError),
    /// The session went fine but a file did not: the peer refused it (it exists with other
    /// content, a bad name, no space...), or it could not be read or written here.
    Failed {
        /// The file or requested name.
        name: String,
        /// Why, as the peer or the local disk layer put it.
        problem: Problem,
    },
    /// A value that cannot be a record (not an object, too deep, too large): nothing was sent.
    Record(ferry_app::records::RecordError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Session(e) => e.fmt(f),
            Error::Failed { name, problem } => write!(f, "{name}: {problem}"),
            Error::Record(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Session(e) => Some(e),
            Error::Failed { .. } => None,
            Error::Record(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<RunError> for Error {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Io(e) => Error::Io(e),
            RunError::Session(e) => Error::Session(e),
        }
    }
}
