//! Thin wrappers over RustCrypto/dalek primitives, and the Noise handshake.
pub(crate) mod aead;
pub(crate) mod kdf;
pub(crate) mod noise;
pub(crate) mod pake;
#[cfg(any(fuzzing, test))]
mod x25519_memo;
