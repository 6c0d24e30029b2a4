#![allow(dead_code)]
//! Packet protection: AES-256-GCM over the frames, the clear header as associated data, and a
//! nonce derived from the full packet number (as QUIC, RFC 9001 §5.3, without header
//! protection).
//!
//! Keys come from 32-byte secrets with HKDF-SHA256:
//! - handshake packets: [`handshake_secrets`] from the PSK and the client's first destination
//!   connection ID;
//! - data packets: the Noise traffic secrets, then [`next_secret`] at each key update (K bit);
//! - per secret: key = HKDF-Expand(secret, "ferry/v1 udp key", 32),
//!   iv = HKDF-Expand(secret, "ferry/v1 udp iv", 12), nonce = iv XOR (0^4 || pn as u64 BE).
//!
//! Test vector (secret `[0x11; 32]`, so key
//! `043859ffbf8e6c4a9567eeb64209ec5dbb9512069704956352492a1bc1b71fab` and iv
//! `42b5ca2a3c2d3651e5c59b1e`; short header with K = 0, dcid `0102030405060708`,
//! pn 7, payload `"ferry"`), header || ciphertext || tag:
//!
//! ```text
//! 40 0102030405060708 00000007
//! daa5044719
//! db40519255107ca734061d673909b86a
//! ```

use core::ops::Range;

use zeroize::{Zeroize, Zeroizing};

use super::packet::Cid;
use crate::crypto::aead::{AeadKey, AuthFailed, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::crypto::kdf::{expand, extract_expand};

const KEY_INFO: &[u8] = b"ferry/v1 udp key";
const IV_INFO: &[u8] = b"ferry/v1 udp iv";
const UPDATE_INFO: &[u8] = b"ferry/v1 udp upd";
const HANDSHAKE_SALT: &[u8] = b"ferry/v1 udp handshake";

/// The AEAD key and IV of one direction and key phase; zeroized on drop.
pub(crate) struct PacketKey {
    key: AeadKey,
    iv: [u8; NONCE_LEN],
}

impl Drop for PacketKey {
    fn drop(&mut self) {
        self.iv.zeroize();
    }
}

impl PacketKey {
    /// Derive the key and IV from a 32-byte secret.
    pub(crate) fn from_secret(secret: &[u8; 32]) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        expand(secret, &[KEY_INFO], &mut *key);
        let mut iv = [0u8; NONCE_LEN];
        expand(secret, &[IV_INFO], &mut iv);
        PacketKey {
            key: AeadKey::new(&key),
            iv,
        }
    }

    fn nonce(&self, pn: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.iv;
        for (n, p) in nonce[NONCE_LEN - 8..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        nonce
    }

    /// Encrypt `payload` in place with `header` as associated data; the tag.
    pub(crate) fn seal(&self, pn: u64, header: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
        self.key.seal_in_place(&self.nonce(pn), header, payload)
    }

    /// Check the tag and decrypt `payload` in place (on failure left unchanged, or zeroed with
    /// feature `ring`: see `crypto::aead`).
    pub(crate) fn open(
        &self,
        pn: u64,
        header: &[u8],
        payload: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthFailed> {
        self.key
            .open_in_place(&self.nonce(pn), header, payload, tag)
    }
}

/// Seal the packet in `buf` (`header_len` header bytes, then `payload_len` payload bytes) and
/// write the tag after the payload; the packet's total length.
///
/// # Panics
///
/// If `buf` is shorter than `header_len + payload_len + TAG_LEN` (a caller bug: the sender
/// sizes its own buffer).
pub(crate) fn seal_packet(
    key: &PacketKey,
    pn: u64,
    buf: &mut [u8],
    header_len: usize,
    payload_len: usize,
) -> usize {
    let (header, rest) = buf.split_at_mut(header_len);
    let (payload, rest) = rest.split_at_mut(payload_len);
    let tag = key.seal(pn, header, payload);
    rest[..TAG_LEN].copy_from_slice(&tag);
    header_len + payload_len + TAG_LEN
}

/// Open the whole `datagram` (`header_len` header bytes, ciphertext, tag) in place; the range
/// of the plaintext inside it. A datagram too short for the header and a tag fails as
/// [`AuthFailed`].
pub(crate) fn open_packet(
    key: &PacketKey,
    pn: u64,
    datagram: &mut [u8],
    header_len: usize,
) -> Result<Range<usize>, AuthFailed> {
    let end = datagram
        .len()
        .checked_sub(TAG_LEN)
        .filter(|&end| end >= header_len)
        .ok_or(AuthFailed)?;
    let (header, rest) = datagram.split_at_mut(header_len);
    let (payload, tag) = rest.split_at_mut(end - header_len);
    let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| AuthFailed)?;
    key.open(pn, header, payload, tag)?;
    Ok(header_len..end)
}

/// The next secret of a direction at a key update: HKDF-Expand(secret, "ferry/v1 udp upd").
pub(crate) fn next_secret(secret: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut next = Zeroizing::new([0u8; 32]);
    expand(secret, &[UPDATE_INFO], &mut *next);
    next
}

/// The handshake-packet secrets (client→server, server→client): HKDF-Extract with salt
/// "ferry/v1 udp handshake" over `psk || client_dcid`, then Expand with info "client" and
/// "server".
pub(crate) fn handshake_secrets(
    psk: &[u8; 32],
    client_dcid: &Cid,
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut ikm = Zeroizing::new([0u8; 32 + 8]);
    ikm[..32].copy_from_slice(psk);
    ikm[32..].copy_from_slice(client_dcid);
    let mut client = Zeroizing::new([0u8; 32]);
    let mut server = Zeroizing::new([0u8; 32]);
    extract_expand(HANDSHAKE_SALT, &*ikm, &[b"client"], &mut *client);
    extract_expand(HANDSHAKE_SALT, &*ikm, &[b"server"], &mut *server);
    (client, server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dgram::packet::{Header, SHORT_HEADER_LEN};

    const DCID: Cid = [1, 2, 3, 4, 5, 6, 7, 8];

    fn sealed_vector() -> alloc::vec::Vec<u8> {
        let key = PacketKey::from_secret(&[0x11; 32]);
        let header = Header::Short {
            key_phase: false,
            dcid: DCID,
            pn: 7,
        };
        let mut buf = alloc::vec![0u8; SHORT_HEADER_LEN + 5 + TAG_LEN];
        let h = header.write(&mut buf).unwrap();
        buf[h..h + 5].copy_from_slice(b"ferry");
        let n = seal_packet(&key, 7, &mut buf, h, 5);
        assert_eq!(n, buf.len());
        buf
    }

    /// The vector quoted in the module documentation and in `docs/PROTOCOL.md`.
    #[test]
    fn short_packet_vector() {
        let packet = sealed_vector();
        assert_eq!(
            hex::encode(&packet),
            "40010203040506070800000007\
             daa5044719\
             db40519255107ca734061d673909b86a"
        );
        let mut d = packet.clone();
        let key = PacketKey::from_secret(&[0x11; 32]);
        let range = open_packet(&key, 7, &mut d, SHORT_HEADER_LEN).unwrap();
        assert_eq!(&d[range], b"ferry");
    }

    /// Any flipped bit of header, ciphertext or tag, a wrong packet number or a wrong key
    /// fails, and leaves the datagram unchanged (its payload zeroed with feature `ring`).
    #[test]
    fn tampering_fails() {
        let packet = sealed_vector();
        let key = PacketKey::from_secret(&[0x11; 32]);
        for i in 0..packet.len() * 8 {
            let mut d = packet.clone();
            d[i / 8] ^= 1 << (i % 8);
            let mut want = d.clone();
            let body = SHORT_HEADER_LEN..want.len() - TAG_LEN;
            let after = crate::crypto::aead::after_failed_open(&want[body.clone()]);
            want[body].copy_from_slice(&after);
            assert_eq!(
                open_packet(&key, 7, &mut d, SHORT_HEADER_LEN),
                Err(AuthFailed),
                "bit {i}"
            );
            assert_eq!(d, want);
        }
        for pn in [6, 8, 7 | 1 << 32, 7 << 32] {
            let mut d = packet.clone();
            assert_eq!(
                open_packet(&key, pn, &mut d, SHORT_HEADER_LEN),
                Err(AuthFailed)
            );
        }
        let mut d = packet.clone();
        let other = PacketKey::from_secret(&next_secret(&[0x11; 32]));
        assert_eq!(
            open_packet(&other, 7, &mut d, SHORT_HEADER_LEN),
            Err(AuthFailed)
        );
        // A different header split moves bytes between AAD and ciphertext.
        let mut d = packet.clone();
        assert_eq!(
            open_packet(&key, 7, &mut d, SHORT_HEADER_LEN - 1),
            Err(AuthFailed)
        );
    }

    #[test]
    fn short_datagrams_fail_without_panicking() {
        let key = PacketKey::from_secret(&[0x11; 32]);
        for len in 0..SHORT_HEADER_LEN + TAG_LEN {
            let mut d = alloc::vec![0u8; len];
            assert_eq!(
                open_packet(&key, 0, &mut d, SHORT_HEADER_LEN),
                Err(AuthFailed)
            );
        }
        // Header and tag only: an empty payload is still authenticated.
        let mut d = alloc::vec![0x40u8; SHORT_HEADER_LEN + TAG_LEN];
        assert_eq!(seal_packet(&key, 3, &mut d, SHORT_HEADER_LEN, 0), d.len());
        assert_eq!(
            open_packet(&key, 3, &mut d, SHORT_HEADER_LEN),
            Ok(SHORT_HEADER_LEN..SHORT_HEADER_LEN)
        );
    }

    /// The nonce is the IV XOR the 64-bit packet number in its last eight bytes: distinct
    /// packet numbers (including ones equal modulo 2^32) give distinct nonces.
    #[test]
    fn nonce_layout() {
        let key = PacketKey::from_secret(&[0x22; 32]);
        assert_eq!(key.nonce(0), key.iv);
        let n = key.nonce(0x0102_0304_0506_0708);
        assert_eq!(n[..4], key.iv[..4]);
        let xored: alloc::vec::Vec<u8> = n[4..]
            .iter()
            .zip(&key.iv[4..])
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(xored, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_ne!(key.nonce(7), key.nonce(7 | 1 << 32));
    }

    /// Known answers, computed independently (Python `hmac`/`hashlib` HKDF and the
    /// `cryptography` package's AES-GCM, which also reproduced `short_packet_vector`).
    #[test]
    fn derivation_known_answers() {
        assert_eq!(
            hex::encode(PacketKey::from_secret(&[0x11; 32]).iv),
            "42b5ca2a3c2d3651e5c59b1e"
        );
        assert_eq!(
            hex::encode(*next_secret(&[0x11; 32])),
            "8b47f2e475df3d5019586a89c9d804f91db1d7f74510cc9e007ec4af51d59c8b"
        );
        let (c, s) = handshake_secrets(&[1; 32], &DCID);
        assert_eq!(
            hex::encode(*c),
            "c3f2e839fa47f70caee75be26c132b1629fd727e38cf3a02a32d0af994352b0a"
        );
        assert_eq!(
            hex::encode(*s),
            "f85081bcfdbcd60195d2068dbe0fade51d29573c7b5e6e7e1732d567d264cb45"
        );
    }

    /// Secrets: each derivation depends on all its inputs and the two directions differ.
    #[test]
    fn secrets_are_separated() {
        let (c, s) = handshake_secrets(&[1; 32], &DCID);
        assert_ne!(*c, *s);
        let (c2, s2) = handshake_secrets(&[1; 32], &[1, 2, 3, 4, 5, 6, 7, 9]);
        assert_ne!(*c, *c2);
        assert_ne!(*s, *s2);
        let (c3, _) = handshake_secrets(&[2; 32], &DCID);
        assert_ne!(*c, *c3);
        assert_eq!(*handshake_secrets(&[1; 32], &DCID).0, *c);
        let next = next_secret(&c);
        assert_ne!(*next, *c);
        assert_ne!(*next_secret(&next), *next);
    }
}
