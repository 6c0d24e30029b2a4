//! Thin wrappers over RustCrypto/dalek primitives, and the Noise handshake.
pub(crate) mod aead;
pub(crate) mod kdf;
pub(crate) mod noise;
pub(crate) mod pake;
