//! Encryption at rest: [C2SP chunked encryption](https://c2sp.org/chunked-encryption) with
//! `AEAD_AES_256_GCM` and HKDF-SHA-512 (the instantiation Wycheproof calls Cobblestone-256),
//! streaming and sans-IO, plus ferry's thin file header.
//!
//! Two layers, kept apart:
//!
//! 1. **C2SP chunked encryption** ([`Sealer`], [`Opener`]), implemented exactly as the spec
//!    says: `key || base nonce || commitment = HKDF-Expand(input key,
//!    "c2sp.org/chunked-encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || context)`
//!    (HKDF with SHA-512: C2SP leaves the hash to the instantiation, and the Wycheproof
//!    vectors, like the reference implementation `filippo.io/cobblestone`, use SHA-512),
//!    the ciphertext is `salt (24) || commitment (32) || chunks`, the message is cut into
//!    16 KiB chunks of which the last one is always shorter (possibly empty), chunk `i` is
//!    sealed with the nonce `base nonce XOR i` (big-endian), no associated data, and at most
//!    2^38 chunks. Any context is accepted, so other applications' messages (and the
//!    Wycheproof vectors) open too.
//! 2. **ferry's sealed-file header** ([`FileHeader`]), which is *not* part of C2SP: a magic
//!    line naming the format version, how the input key is obtained (ferry key file, or a
//!    passphrase stretched with Argon2id whose parameters and salt are stored here) and
//!    whether the plaintext is deflated. It precedes the C2SP ciphertext, and it is bound into
//!    the C2SP context ([`FileHeader::context`]), so changing any header byte fails the key
//!    commitment. The core only encodes and parses it; the caller runs Argon2id and
//!    compresses.
//!
//! The file format is specified in `docs/PROTOCOL.md`, section "Sealed files".
//!
//! # Streaming and memory
//! Both directions hold one chunk (at most 16 KiB + 72 bytes) and never allocate after
//! construction. The caller passes a slice to `update`, which consumes a prefix of it (the
//! slice is advanced) and returns at most one finished chunk, borrowed until the next call;
//! `finish` ends the stream and returns the last piece. Neither touches an RNG: the caller
//! supplies the 24-byte salt (from the OS RNG; it must never repeat for one input key).
//!
//! # What an opener releases
//! [`Opener::update`] returns the plaintext of a chunk only after that chunk's tag verified at
//! its position: the bytes are authentic, but the message may still turn out truncated.
//! Only when [`Opener::finish`] returns `Ok` has the final (short) chunk verified, which proves
//! the message is complete: everything released before is then *final-verified*. Write the
//! chunks to a temporary file and publish it only after `finish` succeeded. Errors are sticky.
//!
//! ```
//! use ferry_core::seal::{Opener, SealKey, Sealer, SALT_LEN};
//!
//! let key = SealKey::from_key_bytes(&[7; 32]); // a ferry key file's 32 bytes
//! let salt = [9u8; SALT_LEN]; // from the OS RNG in real use
//! let message = vec![0x5a; 40_000];
//!
//! // Seal: feed plaintext, write out whatever comes back.
//! let mut sealer = Sealer::new(&key, &salt, b"example context");
//! let mut sealed = Vec::new();
//! let mut input = &message[..];
//! while !input.is_empty() {
//!     if let Some(ciphertext) = sealer.update(&mut input).unwrap() {
//!         sealed.extend_from_slice(ciphertext);
//!     }
//! }
//! sealed.extend_from_slice(&sealer.finish().unwrap());
//!
//! // Open: chunks come out as they verify; only `finish` proves the message is complete.
//! let mut opener = Opener::new(&key, b"example context");
//! let mut temp_file = Vec::new();
//! let mut input = &sealed[..];
//! while !input.is_empty() {
//!     if let Some(plaintext) = opener.update(&mut input).unwrap() {
//!         temp_file.extend_from_slice(plaintext); // chunk-verified only
//!     }
//! }
//! temp_file.extend_from_slice(&opener.finish().unwrap()); // now final-verified: publish
//! assert_eq!(temp_file, message);
//! ```

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::kdf;

mod file;
mod stream;
#[cfg(test)]
mod tests;

pub use file::{
    Argon2CostLimit, Argon2Params, FERRY_CONTEXT, FileHeader, KeySource, MAGIC, MAX_HEADER_LEN,
    PlaintextCodec,
};
pub use stream::{Opener, Sealer};

/// Plaintext bytes in every chunk but the last, which is always shorter (16 KiB).
pub const CHUNK_LEN: usize = 16 * 1024;
/// Length of the random salt that starts a C2SP ciphertext.
pub const SALT_LEN: usize = 24;
/// Length of the key commitment that follows the salt.
pub const COMMITMENT_LEN: usize = 32;
/// Length of the C2SP prefix: salt and commitment.
pub const PREFIX_LEN: usize = SALT_LEN + COMMITMENT_LEN;
/// AES-256-GCM tag appended to every chunk.
pub const TAG_LEN: usize = crate::crypto::aead::TAG_LEN;
/// Length of a sealed full chunk (plaintext and tag).
pub const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;
/// Most chunks one message may have (2^38, 4 PiB), as C2SP specifies.
pub const MAX_CHUNKS: u64 = 1 << 38;

/// Length of the C2SP ciphertext of a `plaintext_len`-byte message:
/// `56 + plaintext_len + 16 * (plaintext_len / 16384 + 1)`, or `None` on overflow.
pub const fn sealed_len(plaintext_len: u64) -> Option<u64> {
    let chunks = plaintext_len / CHUNK_LEN as u64 + 1;
    match (TAG_LEN as u64).checked_mul(chunks) {
        Some(tags) => match plaintext_len.checked_add(tags) {
            Some(n) => n.checked_add(PREFIX_LEN as u64),
            None => None,
        },
        None => None,
    }
}

/// The C2SP *input key*: 32 uniformly random bytes. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealKey([u8; 32]);

impl SealKey {
    /// Use `input_key` as it is: the 32-byte output of a KDF (ferry: Argon2id of a passphrase)
    /// or 32 bytes from a CSPRNG. C2SP requires it to be uniformly random.
    pub fn new(input_key: &[u8; 32]) -> SealKey {
        SealKey(*input_key)
    }

    /// The input key for sealing with a ferry key file (its 32 raw bytes):
    /// `HKDF-SHA256(salt = "ferry/v1 seal", IKM = key_bytes, info = "input key", L = 32)`.
    ///
    /// The raw bytes are never used as a key themselves, and this key is independent of the
    /// Noise PSK derived from the same file ([`Psk::from_key_bytes`](crate::Psk::from_key_bytes)).
    pub fn from_key_bytes(key_bytes: &[u8; 32]) -> SealKey {
        let mut key = [0u8; 32];
        kdf::extract_expand(b"ferry/v1 seal", key_bytes, &[b"input key"], &mut key);
        let sealed = SealKey(key);
        key.zeroize();
        sealed
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// From a slice, which must be exactly 32 bytes long.
impl TryFrom<&[u8]> for SealKey {
    type Error = SealError;

    fn try_from(input_key: &[u8]) -> Result<SealKey, SealError> {
        let key: &[u8; 32] = input_key.try_into().map_err(|_| SealError::KeyLength)?;
        Ok(SealKey::new(key))
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

/// Why sealing or opening failed. Errors are sticky: a failed [`Sealer`] or [`Opener`] returns
/// the same error from every later call.
///
/// Authentication failures carry no detail (which byte, which chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The input key is not 32 bytes long (AES-256-GCM's key size, which C2SP requires).
    KeyLength,
    /// The sealed data ended too early: inside the 56-byte salt and commitment, right after a
    /// full chunk (the short final chunk is missing), or with a final chunk shorter than a tag.
    Truncated,
    /// The key commitment does not match: wrong key or passphrase, a different context (for
    /// ferry files: a modified header), or a modified salt or commitment. Checked before any
    /// chunk is opened.
    WrongKey,
    /// A chunk failed authentication: the data was modified, reordered, cut inside a chunk or
    /// extended with trailing bytes (C2SP places chunk boundaries by length, so bytes after the
    /// real final chunk make the apparent final chunk fail).
    Authentication,
    /// The message would exceed C2SP's limit of 2^38 chunks (4 PiB).
    TooLong,
    /// Not a ferry sealed file: the magic line is missing.
    NotSealedFile,
    /// A ferry sealed file of a format version, key mode or codec this build does not know.
    Unsupported,
    /// The header's Argon2id parameters are outside the accepted bounds
    /// ([`Argon2Params::new`]).
    BadParameters,
    /// The header's Argon2id costs are within [`Argon2Params::new`]'s bounds but above the
    /// caller's [`Argon2CostLimit`] ([`Argon2Params::check_cost`]).
    CostTooHigh,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SealError::KeyLength => "the input key must be 32 bytes long",
            SealError::Truncated => "sealed data is truncated",
            SealError::WrongKey => {
                "wrong key or passphrase (the key commitment does not match; or the header was modified)"
            }
            SealError::Authentication => "sealed data failed authentication (modified or corrupt)",
            SealError::TooLong => "message exceeds the chunked-encryption limit of 2^38 chunks",
            SealError::NotSealedFile => "not a ferry sealed file",
            SealError::Unsupported => {
                "unsupported ferry sealed-file format version, key mode or codec"
            }
            SealError::BadParameters => "Argon2id parameters in the header are out of range",
            SealError::CostTooHigh => "Argon2id costs in the header exceed the accepted limit",
        })
    }
}

impl core::error::Error for SealError {}
