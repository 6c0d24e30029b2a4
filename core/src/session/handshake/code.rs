//! Mode CODE (security.md §5.3): the SPAKE2 round trip before Noise, and the burned code.
//!
//! ```text
//! C -> S  preamble(mode = CODE) || u16 33 || spake_A
//! S -> C  u16 33 || spake_B
//! both    psk, transcript = crypto::pake (SPAKE2, then HKDF)
//! then    the mode-PSK handshake (NNpsk0) with this psk,
//!         prologue = label || preamble || transcript
//! ```
//!
//! A server whose message 1 fails its tag answers [`CODE_REFUSAL`] instead of message 2 and
//! fails with [`HandshakeError::WrongCode`]; the client fails the same way on that answer. The
//! application burns the code: one wrong attempt ends it (an online guesser gets one try).

use super::{CODE_REFUSAL, Handshake, LEN_PREFIX, Stage};
use crate::crypto::pake;
use crate::error::{HandshakeError, SessionError};
use crate::identity::Mode;

impl Handshake {
    /// Client in mode CODE: queue our SPAKE2 message after the preamble. `false` in other
    /// modes.
    pub(super) fn send_pake(&mut self) -> bool {
        let Some(pake) = &self.pake else {
            return false;
        };
        self.out
            .extend_from_slice(&(pake::MSG_LEN as u16).to_be_bytes());
        self.out.extend_from_slice(pake.message());
        self.stage = Stage::Pake;
        true
    }

    /// Take the peer's SPAKE2 message from the front of `rest`: returns the bytes used (0 when
    /// more are needed). The server answers with its SPAKE2 message; then both start Noise
    /// with the derived PSK and the transcript in the prologue, the client writing message 1.
    pub(super) fn code_step(&mut self, rest: &[u8]) -> Result<usize, SessionError> {
        if rest.len() < LEN_PREFIX {
            return Ok(0);
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if self.client && len == 0 {
            Self::refusal(rest)?;
            return Ok(0);
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
        self.transcript = Some(done.transcript);
        self.pake_psk = Some(done.psk);
        self.start_noise();
        self.stage = Stage::Messages;
        if self.client {
            // NNpsk0 message 1; the handshake cannot be complete after it.
            self.write_next()?;
        }
        Ok(LEN_PREFIX + len)
    }

    /// A server's failure on message 1: in mode CODE a failed tag means a wrong code (or
    /// tampering): tell the client so, and fail with [`HandshakeError::WrongCode`].
    pub(super) fn burn_code(&mut self, e: SessionError) -> SessionError {
        if self.mode == Mode::Code && !self.client && e == SessionError::Authentication {
            self.out.extend_from_slice(&CODE_REFUSAL);
            return HandshakeError::WrongCode.into();
        }
        e
    }
}

/// The code refusal in place of the server's message (`rest` starts with a zero length):
/// `Some(Ok(()))` while it may still be one and is incomplete, `Some(Err(WrongCode))` once
/// complete, `None` when it is something else.
pub(super) fn refusal(rest: &[u8]) -> Option<Result<(), SessionError>> {
    let n = rest.len().min(CODE_REFUSAL.len());
    if n <= LEN_PREFIX || rest[..n] != CODE_REFUSAL[..n] {
        return None;
    }
    Some(if n < CODE_REFUSAL.len() {
        Ok(())
    } else {
        Err(HandshakeError::WrongCode.into())
    })
}
