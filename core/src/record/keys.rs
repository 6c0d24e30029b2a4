//! Per-direction traffic keys with the implicit ferry/v1 rekey schedule.

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::aead::{AeadKey, NONCE_LEN};
use crate::crypto::kdf;

/// Records per epoch before both sides move to the next key (security.md §2.7: 2^20 records of
/// 64 KiB keep the AES-GCM confidentiality advantage near 2^-65 per key).
pub(crate) const REKEY_INTERVAL: u64 = 1 << 20;
/// Hard cap on epochs; reaching it fails the session instead of wrapping.
pub(crate) const MAX_EPOCHS: u32 = u32::MAX;

/// Sequence numbers and keys of one direction.
pub(crate) struct DirectionKeys {
    secret: Zeroizing<[u8; 32]>,
    key: AeadKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
    epoch: u32,
    interval: u64,
}

/// The epoch counter reached [`MAX_EPOCHS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted;

impl DirectionKeys {
    /// Keys for epoch 0 from a traffic secret; `interval` is [`REKEY_INTERVAL`] outside tests.
    pub(crate) fn new(secret: [u8; 32], interval: u64) -> Self {
        let secret = Zeroizing::new(secret);
        let (key, iv) = derive(&secret);
        DirectionKeys {
            secret,
            key,
            iv,
            seq: 0,
            epoch: 0,
            interval: interval.max(1),
        }
    }

    /// The AEAD key of the current epoch.
    pub(crate) fn key(&self) -> &AeadKey {
        &self.key
    }

    /// Nonce for the current record: IV XOR (0^32 || seq_be64).
    pub(crate) fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }

    /// Current epoch (for diagnostics and tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Move past the record just sealed or opened; rekey at the end of an epoch.
    pub(crate) fn advance(&mut self) -> Result<(), Exhausted> {
        self.seq += 1;
        if self.seq < self.interval {
            return Ok(());
        }
        if self.epoch >= MAX_EPOCHS - 1 {
            return Err(Exhausted);
        }
        let mut next = [0u8; 32];
        kdf::expand(&self.secret, &[b"ferry/v1 upd"], &mut next);
        self.secret.copy_from_slice(&next);
        next.zeroize();
        let (key, iv) = derive(&self.secret);
        self.key = key;
        self.iv = iv;
        self.seq = 0;
        self.epoch += 1;
        Ok(())
    }
}

fn derive(secret: &[u8; 32]) -> (AeadKey, [u8; NONCE_LEN]) {
    let mut key = Zeroizing::new([0u8; 32]);
    kdf::expand(secret, &[b"ferry/v1 key"], &mut key[..]);
    let mut iv = [0u8; NONCE_LEN];
    kdf::expand(secret, &[b"ferry/v1 iv"], &mut iv);
    (AeadKey::new(&key), iv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_unique_across_rekey() {
        let mut k = DirectionKeys::new([7; 32], 4);
        let mut seen = alloc::vec::Vec::new();
        for _ in 0..12 {
            seen.push((k.epoch(), k.nonce()));
            k.advance().unwrap();
        }
        assert_eq!(k.epoch(), 3);
        // Within an epoch nonces differ; across epochs the IV changes too.
        for (i, a) in seen.iter().enumerate() {
            for b in &seen[i + 1..] {
                assert_ne!(a.1, b.1);
            }
        }
    }
}
