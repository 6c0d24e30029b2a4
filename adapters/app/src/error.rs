//! How a connection ends badly, for every adapter.

use std::io;

use proto::SessionError;

/// Why a connection ended badly.
#[derive(Debug)]
pub enum RunError {
    /// The protocol failed (authentication, truncation, timeout...).
    Session(SessionError),
    /// The socket failed.
    Io(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Session(e) => e.fmt(f),
            RunError::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// The server refused the connection as busy ([`proto::BUSY_REFUSAL`]): nothing was
    /// started, so the caller may retry later with the same agent (adapters do not
    /// [`finish`](crate::agent::Agent::finish) an agent for it).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            RunError::Session(SessionError::Handshake(proto::HandshakeError::Busy))
        )
    }

    /// The server requires another handshake mode (this preamble mode byte): nothing was
    /// started, the agent may run again in that mode.
    pub fn mode_required(&self) -> Option<u8> {
        match self {
            RunError::Session(SessionError::Handshake(proto::HandshakeError::ModeRequired(m))) => {
                Some(*m)
            }
            _ => None,
        }
    }
}

/// Whether `error` is a refusal in place of the server's handshake message: busy (see
/// [`RunError::is_busy`]) or another mode required. Nothing was started either way, so the
/// agent is not finished and may run again.
pub fn is_busy(error: Option<&SessionError>) -> bool {
    matches!(
        error,
        Some(SessionError::Handshake(
            proto::HandshakeError::Busy | proto::HandshakeError::ModeRequired(_)
        ))
    )
}
