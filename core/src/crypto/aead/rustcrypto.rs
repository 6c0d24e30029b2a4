//! The default backend: RustCrypto `aes-gcm` 0.11 (`aead` 0.6 `AeadInOut`).
//!
//! `aes-gcm` computes the expected tag over the ciphertext, compares it in constant time, and
//! only then applies the keystream, so a failed open leaves its buffers exactly as they were.

use super::{AuthFailed, KEY_LEN, NONCE_LEN, TAG_LEN};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};

/// The round keys and the GHASH key live in the `aes-gcm` cipher object, which (with the
/// `zeroize` feature enabled in `Cargo.toml`) wipes them when dropped.
pub(super) struct Key(Aes256Gcm);

impl Key {
    pub(super) fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    pub(super) fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        self.0
            .encrypt_inout_detached(nonce.into(), aad, buf.into())
            .expect("AES-GCM only refuses plaintexts over 2^36-32 bytes; records are far smaller")
            .into()
    }

    pub(super) fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthFailed> {
        self.0
            .decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into())
            .map_err(|_| AuthFailed)
    }

    pub(super) fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthFailed> {
        let buf = aes_gcm::aead::inout::InOutBuf::new(input, out).map_err(|_| AuthFailed)?;
        self.0
            .decrypt_inout_detached(nonce.into(), aad, buf, tag.into())
            .map_err(|_| AuthFailed)
    }
}

/// Marker: `Aes256Gcm` (with `aes-gcm`'s `zeroize` feature) wipes its round keys and GHASH key
/// when dropped, and `Key` holds nothing else.
impl zeroize::ZeroizeOnDrop for Key {}

/// Compile-time proof of the claim above: this fails to build if `aes-gcm`'s `zeroize` feature
/// is ever turned off.
const _: fn() = || {
    fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroize_on_drop::<Aes256Gcm>();
};
