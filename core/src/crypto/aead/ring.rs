//! The optional backend (feature `ring`): `ring` 0.17's AES-256-GCM, BoringSSL's assembly
//! (AES-NI or VAES with a stitched CLMUL/VPCLMULQDQ GHASH, chosen at run time).
//!
//! Two honest differences from the default backend:
//! - No zeroization: `ring::aead::LessSafeKey` does not wipe its round keys or GHASH key when
//!   dropped, and without `unsafe` (forbidden in this crate) they cannot be reached to wipe
//!   them here. The raw key bytes passed to [`Key::new`] are still the caller's to wipe.
//! - `ring` decrypts and authenticates in one pass, so a failed open has already overwritten
//!   its buffer; `ring` then zeroes it. No plaintext is ever released, but the buffer (or
//!   `out` for [`Key::open_to`]) is all zeros afterwards rather than unchanged.

use super::{AuthFailed, KEY_LEN, NONCE_LEN, TAG_LEN};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

pub(super) struct Key(LessSafeKey);

impl Key {
    pub(super) fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key is a valid AES-256 key"),
        ))
    }

    pub(super) fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .expect("AES-GCM only refuses plaintexts over 2^36-32 bytes; records are far smaller");
        tag.as_ref()
            .try_into()
            .expect("ring's AES-GCM tag is 16 bytes")
    }

    pub(super) fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthFailed> {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                Tag::from(*tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| AuthFailed)
    }

    /// `ring` has no out-of-place open: copy, then open `out` in place (the copy is a
    /// cache-resident `memcpy`, small beside the AES-GCM pass).
    pub(super) fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthFailed> {
        if input.len() != out.len() {
            return Err(AuthFailed);
        }
        out.copy_from_slice(input);
        self.open_in_place(nonce, aad, out, tag)
    }
}

/// `ring` against RustCrypto `aes-gcm` (still a dependency): same ciphertext and tag at every
/// length around the block and stitching boundaries and for a 64 KiB record, and each opens
/// the other's output (in place and out of place).
#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes256Gcm, KeyInit};

    #[test]
    fn agrees_with_rustcrypto() {
        let key = [0x5c; KEY_LEN];
        let ours = Key::new(&key);
        let theirs = Aes256Gcm::new(&key.into());
        for len in (0..=600).chain([4095, 4096, 4097, 65_536]) {
            let nonce = [(len % 256) as u8; NONCE_LEN];
            let aad = &[0xa0u8; 13][..len % 14];
            let pt: alloc::vec::Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let mut a = pt.clone();
            let tag_a = ours.seal_in_place(&nonce, aad, &mut a);
            let mut b = pt.clone();
            let tag_b: [u8; TAG_LEN] = theirs
                .encrypt_inout_detached((&nonce).into(), aad, b.as_mut_slice().into())
                .unwrap()
                .into();
            assert_eq!((&a, tag_a), (&b, tag_b), "len {len}");
            let mut out = alloc::vec![0; len];
            ours.open_to(&nonce, aad, &b, &mut out, &tag_b).unwrap();
            assert_eq!(out, pt, "len {len}: open_to");
            ours.open_in_place(&nonce, aad, &mut b, &tag_b).unwrap();
            assert_eq!(b, pt, "len {len}: open_in_place");
            theirs
                .decrypt_inout_detached(
                    (&nonce).into(),
                    aad,
                    a.as_mut_slice().into(),
                    (&tag_a).into(),
                )
                .unwrap();
            assert_eq!(a, pt, "len {len}: aes-gcm opens ring's");
        }
    }
}
