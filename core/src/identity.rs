//! Handshake modes and long-term identities (security.md §5.1, modes PINNED and PINNED+PSK).
//!
//! A server with an [`Identity`] proves it in every handshake (Noise XX), and its clients pin
//! its public key; a client with an identity proves it too, and the server's application
//! checks it against an allow list ([`crate::Session::peer_static`]).

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::kdf;

/// Which handshake a session runs: its byte is the preamble's mode byte, bound into the
/// prologue, and a server answers a client asking for another mode with a plaintext refusal
/// naming the one it requires ([`crate::HandshakeError::ModeRequired`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// The pre-shared key alone: `Noise_NNpsk0_25519_AESGCM_SHA256` (the default).
    #[default]
    Psk,
    /// Static keys, the server's pinned by its clients: `Noise_XX_25519_AESGCM_SHA256`.
    Pinned,
    /// Both: `Noise_XXpsk3_25519_AESGCM_SHA256`, which needs the key file and the identities.
    PinnedPsk,
    /// A short code: SPAKE2 over it, then `Noise_NNpsk0_25519_AESGCM_SHA256` with its result.
    /// Chosen by the PSK ([`crate::Code::psk`]), not by configuration.
    Code,
}

impl Mode {
    /// The preamble byte.
    pub fn byte(self) -> u8 {
        match self {
            Mode::Psk => crate::session::handshake::MODE_PSK,
            Mode::Pinned => crate::session::handshake::MODE_PINNED,
            Mode::PinnedPsk => crate::session::handshake::MODE_PINNED_PSK,
            Mode::Code => crate::session::handshake::MODE_CODE,
        }
    }

    /// The mode of a preamble byte, if this side implements it.
    pub fn from_byte(b: u8) -> Option<Mode> {
        [Mode::Psk, Mode::Pinned, Mode::PinnedPsk, Mode::Code]
            .into_iter()
            .find(|m| m.byte() == b)
    }

    /// A short human name: `PSK`, `PINNED`, `PINNED+PSK`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Psk => "PSK",
            Mode::Pinned => "PINNED",
            Mode::PinnedPsk => "PINNED+PSK",
            Mode::Code => "CODE",
        }
    }
}

/// A long-term X25519 key pair (a server's host key, or a client's key). The private half is
/// wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Identity {
    secret: [u8; 32],
    #[zeroize(skip)]
    public: [u8; 32],
}

impl Identity {
    /// The identity with this private key (any 32 bytes; X25519 clamps them). Draw them from
    /// the OS for a new identity.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Identity {
        let public = kdf::x25519_public(&secret);
        Identity { secret, public }
    }

    /// The public key: what the peer sees, pins or lists.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The private key, for writing the identity file.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Identity(..)")
    }
}
