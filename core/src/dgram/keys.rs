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
//! Test vector (secret `[0x11; 32]`, short header with K = 0, dcid `0102030405060708`,
//! pn 7, payload `"ferry"`), header || ciphertext || tag:
//!
//! ```text
//! 40 0102030405060708 00000007
//! VECTOR_CT
//! VECTOR_TAG
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

    /// Check the tag and decrypt `payload` in place (left unchanged on failure).
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

    #[test]
    fn print_vector() {
        std::println!("{}", hex::encode(sealed_vector()));
    }
}
