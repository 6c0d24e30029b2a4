//! Mode CODE (security.md §5.3): the SPAKE2 round trip before Noise, and the burned code.
//!
//! ```text
//! C -> S  preamble(mode = CODE) || u16 33 || spake_A
//! S -> C  u16 33 || spake_B
//! both    psk, transcript = crypto::pake (SPAKE2, then HKDF)
//! then    the mode-PSK handshake with this psk, prologue = label || preamble || transcript
//! ```
//!
//! A server whose message 1 fails its tag answers [`CODE_REFUSAL`] instead of message 2 and
//! fails with [`HandshakeError::WrongCode`]; the client fails the same way on that answer. The
//! application burns the code: one wrong attempt ends it (an online guesser gets one try).

use zeroize::Zeroizing;

use super::{BUSY_REFUSAL, CODE_REFUSAL, Handshake, LEN_PREFIX, MODE_CODE, Stage, noise, prologue};
use crate::crypto::pake;
use crate::error::{HandshakeError, SessionError};

impl Handshake {
    /// Take the peer's SPAKE2 message from the front of `rest`: returns the bytes used (0 when
    /// more are needed). The client then queues Noise message 1; the server its SPAKE2 message
    /// and waits for message 1.
    pub(super) fn code_step(&mut self, rest: &[u8]) -> Result<usize, SessionError> {
        if rest.len() < LEN_PREFIX {
            return Ok(0);
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if self.client && len == 0 {
            return match refusal(rest)? {
                None => Ok(0),
                Some(e) => Err(e),
            };
        }
        if len != pake::MSG_LEN {
            return Err(HandshakeError::BadLength.into());
        }
        let Some(msg) = rest.get(LEN_PREFIX..LEN_PREFIX + len) else {
            return Ok(0);
        };
        let pake = self.pake.take().ok_or(HandshakeError::BadLength)?;
        if !self.client {
            self.out
                .extend_from_slice(&(pake::MSG_LEN as u16).to_be_bytes());
            self.out.extend_from_slice(pake.message());
        }
        let done = pake.finish(msg).map_err(|_| HandshakeError::BadHello)?;
        let prologue = prologue(self.transport, MODE_CODE, Some(&done.transcript));
        let psk: Zeroizing<[u8; 32]> = done.psk;
        if self.client {
            self.write_message_1(&prologue, &psk)?;
            self.stage = Stage::ClientAwait;
        } else {
            self.noise = Some(noise::Handshake::responder(
                &prologue,
                &psk,
                *self.ephemeral,
            ));
            self.stage = Stage::ServerAwait;
        }
        Ok(LEN_PREFIX + len)
    }

    /// A server's failure on message 1: in mode CODE a failed tag means a wrong code (or
    /// tampering): tell the client so, and fail with [`HandshakeError::WrongCode`].
    pub(super) fn burn_code(&mut self, e: SessionError) -> SessionError {
        if self.mode() == MODE_CODE && e == SessionError::Authentication {
            self.out.extend_from_slice(&CODE_REFUSAL);
            return HandshakeError::WrongCode.into();
        }
        e
    }
}

/// The server's refusal in place of its next message (`rest` starts with a zero length):
/// `Ok(None)` while incomplete.
pub(super) fn refusal(rest: &[u8]) -> Result<Option<SessionError>, SessionError> {
    for (r, e) in [
        (BUSY_REFUSAL, HandshakeError::Busy),
        (CODE_REFUSAL, HandshakeError::WrongCode),
    ] {
        let n = rest.len().min(r.len());
        if rest[..n] == r[..n] {
            return Ok((n == r.len()).then_some(e.into()));
        }
    }
    Err(HandshakeError::BadLength.into())
}
