//! The three handshake patterns ferry speaks (Noise spec rev 34 §7.5, §9.4), hard-coded as
//! token lists: no pattern-string parsing.
//!
//! ```text
//! NNpsk0:          XX:                    XXpsk3:
//!   -> psk, e        -> e                   -> e
//!   <- e, ee         <- e, ee, s, es        <- e, ee, s, es
//!                    -> s, se               -> s, se, psk
//! ```

/// A Noise message token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// The sender's ephemeral public key, in clear.
    E,
    /// The sender's static public key, encrypted once a key exists.
    S,
    /// `MixKey(DH(e, re))`.
    Ee,
    /// `MixKey(DH(e, rs))` for the initiator, `DH(s, re)` for the responder.
    Es,
    /// `MixKey(DH(s, re))` for the initiator, `DH(e, rs)` for the responder.
    Se,
    /// `MixKeyAndHash(psk)`.
    Psk,
}

/// A handshake pattern with its cipher suite fixed to `25519_AESGCM_SHA256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `Noise_NNpsk0_25519_AESGCM_SHA256`: pre-shared key only (ferry mode PSK).
    NNpsk0,
    /// `Noise_XX_25519_AESGCM_SHA256`: static keys exchanged and learned (mode PINNED).
    XX,
    /// `Noise_XXpsk3_25519_AESGCM_SHA256`: XX with a pre-shared key at the end of message 3
    /// (mode PINNED+PSK).
    XXpsk3,
}

use Token::{E, Ee, Es, Psk, S, Se};

impl Pattern {
    /// The full protocol name (Noise §8).
    pub(crate) fn name(self) -> &'static [u8] {
        match self {
            Pattern::NNpsk0 => b"Noise_NNpsk0_25519_AESGCM_SHA256",
            Pattern::XX => b"Noise_XX_25519_AESGCM_SHA256",
            Pattern::XXpsk3 => b"Noise_XXpsk3_25519_AESGCM_SHA256",
        }
    }

    /// The messages, initiator first, alternating.
    pub(crate) fn messages(self) -> &'static [&'static [Token]] {
        match self {
            Pattern::NNpsk0 => &[&[Psk, E], &[E, Ee]],
            Pattern::XX => &[&[E], &[E, Ee, S, Es], &[S, Se]],
            Pattern::XXpsk3 => &[&[E], &[E, Ee, S, Es], &[S, Se, Psk]],
        }
    }

    /// A PSK handshake (Noise §9.2): every `e` token is also `MixKey(e.public_key)`.
    pub(crate) fn is_psk(self) -> bool {
        self.messages().iter().any(|m| m.contains(&Psk))
    }
}
