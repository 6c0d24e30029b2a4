//! `Noise_NNpsk0_25519_AESGCM_SHA256`, exactly as the Noise Protocol Framework (revision 34)
//! specifies it, with the pattern hard-coded:
//!
//! ```text
//! NNpsk0:
//!   -> psk, e
//!   <- e, ee
//! ```
//!
//! `CipherState`, `SymmetricState` and the handshake follow spec §5.1–§5.3 and §9 (PSK
//! handshakes: every `e` token is also `MixKey(e.public_key)`). `HKDF(ck, ikm, n)` of spec §4.3
//! is HKDF-SHA256 Extract(salt = ck, ikm) followed by Expand(info = "", n * 32). The protocol
//! name is exactly 32 bytes, so the initial `h` is the name itself. The published cacophony
//! vector for this protocol is reproduced byte for byte by the tests below.
//!
//! Departures from a generic Noise implementation, all invisible on the wire:
//! - `MixKeyAndHash(psk)` (the first token of message 1, which depends on nothing in the
//!   message) is done by the constructors, so the PSK itself is never stored;
//! - the local ephemeral public key is computed when the message carrying it is written, so a
//!   responder that rejects message 1 (wrong PSK) has done no curve operation at all;
//! - messages have an exact length (the caller knows each payload length), errors are sticky
//!   and every read error is fatal for the handshake.

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::aead::{AeadKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use super::kdf;

/// The Noise protocol name; exactly `HASHLEN` (32) bytes, so it is used as `h` unpadded.
const PROTOCOL_NAME: &[u8; HASH_LEN] = b"Noise_NNpsk0_25519_AESGCM_SHA256";

/// Noise `DHLEN` for 25519: length of a public key and of a DH output.
pub(crate) const DH_LEN: usize = 32;

/// Noise `HASHLEN` for SHA256.
const HASH_LEN: usize = 32;

/// Noise's maximum message length (spec §3).
const MAX_MESSAGE_LEN: usize = 65_535;

/// Why a handshake or cipher-state operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoiseError {
    /// A handshake message or transport ciphertext failed its AEAD tag (wrong PSK, wrong
    /// prologue, or tampering). Deliberately no detail.
    Authentication,
    /// The peer's ephemeral key has small order: the `ee` DH result is all zeros.
    NonContributory,
    /// A message does not have its exact expected length, is shorter than a tag, or would
    /// exceed Noise's 65 535-byte limit.
    BadLength,
    /// A call not allowed now: writing when a read is expected (or the reverse), any call
    /// after the handshake finished, or `split` before it finished.
    OutOfOrder,
    /// The output buffer cannot hold the message or plaintext.
    BufferTooSmall,
    /// The cipher state's nonce reached 2^64 - 1, which Noise reserves: the key is used up.
    NonceExhausted,
}

/// The 96-bit AESGCM nonce of Noise spec §12.3: 32 bits of zeros, then `n` big-endian.
fn nonce(n: u64) -> [u8; NONCE_LEN] {
    let mut out = [0u8; NONCE_LEN];
    out[4..].copy_from_slice(&n.to_be_bytes());
    out
}

/// Noise transport CipherState (used by tests against the published vectors' transport messages; the session uses its own record layer).
///
/// Also the handshake's internal cipher state, which starts without a key. The nonce counter
/// starts at 0, advances only after a successful encryption or decryption, and stops at the
/// reserved value 2^64 - 1. A failed decryption is not sticky here (Noise leaves that to the
/// application); the handshake makes it fatal.
#[derive(ZeroizeOnDrop)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct CipherState {
    /// `k`, or `None` for Noise's "empty" key (before the first `MixKey`).
    key: Option<AeadKey>,
    /// `n`.
    n: u64,
}

#[cfg_attr(not(test), allow(dead_code))]
impl CipherState {
    /// A cipher state with key `k` and nonce 0 (Noise `InitializeKey(k)`).
    pub(crate) fn new(k: [u8; KEY_LEN]) -> Self {
        let k = zeroize::Zeroizing::new(k);
        Self::with_key(&k)
    }

    /// `InitializeKey(k)` from a borrowed key.
    fn with_key(k: &[u8; KEY_LEN]) -> Self {
        Self {
            key: Some(AeadKey::new(k)),
            n: 0,
        }
    }

    /// `InitializeKey(empty)`.
    fn empty() -> Self {
        Self { key: None, n: 0 }
    }

    /// `EncryptWithAd(ad, plaintext)` into `out`; returns the ciphertext length
    /// (`plaintext.len() + 16`, or `plaintext.len()` while the key is empty).
    pub(crate) fn encrypt_with_ad(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let Some(key) = &self.key else {
            let dst = out
                .get_mut(..plaintext.len())
                .ok_or(NoiseError::BufferTooSmall)?;
            dst.copy_from_slice(plaintext);
            return Ok(plaintext.len());
        };
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let ct_len = plaintext
            .len()
            .checked_add(TAG_LEN)
            .ok_or(NoiseError::BadLength)?;
        let dst = out.get_mut(..ct_len).ok_or(NoiseError::BufferTooSmall)?;
        let (body, tag_dst) = dst.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let tag = key.seal_in_place(&nonce(self.n), ad, body);
        tag_dst.copy_from_slice(&tag);
        self.n += 1;
        Ok(ct_len)
    }

    /// `DecryptWithAd(ad, ciphertext)` into `out`; returns the plaintext length.
    ///
    /// On `Authentication` the nonce does not advance and `out` holds no plaintext (it is
    /// zeroed).
    pub(crate) fn decrypt_with_ad(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let Some(key) = &self.key else {
            let dst = out
                .get_mut(..ciphertext.len())
                .ok_or(NoiseError::BufferTooSmall)?;
            dst.copy_from_slice(ciphertext);
            return Ok(ciphertext.len());
        };
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let pt_len = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(NoiseError::BadLength)?;
        let (body, tag) = ciphertext.split_at(pt_len);
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| NoiseError::BadLength)?;
        let dst = out.get_mut(..pt_len).ok_or(NoiseError::BufferTooSmall)?;
        dst.copy_from_slice(body);
        if key.open_in_place(&nonce(self.n), ad, dst, tag).is_err() {
            dst.fill(0);
            return Err(NoiseError::Authentication);
        }
        self.n += 1;
        Ok(pt_len)
    }
}

/// Noise `SymmetricState` (spec §5.2) for SHA256: chaining key, handshake hash, cipher state.
#[derive(ZeroizeOnDrop)]
struct SymmetricState {
    /// `ck`.
    ck: [u8; HASH_LEN],
    /// `h`.
    h: [u8; HASH_LEN],
    /// The cipher state keyed by `MixKey` / `MixKeyAndHash`.
    cipher: CipherState,
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`, `MixHash(prologue)`, then the first token of
    /// message 1, `psk` (`MixKeyAndHash(psk)`), which is the same for both roles.
    fn new(prologue: &[u8], psk: &[u8; 32]) -> Self {
        let mut s = Self {
            ck: *PROTOCOL_NAME,
            h: *PROTOCOL_NAME,
            cipher: CipherState::empty(),
        };
        s.mix_hash(prologue);
        s.mix_key_and_hash(psk);
        s
    }

    /// Noise `HKDF(ck, ikm, N)` for N = 2 or 3 (the outputs written into `out`).
    fn hkdf<const N: usize>(&self, ikm: &[u8]) -> zeroize::Zeroizing<[[u8; HASH_LEN]; N]> {
        let mut out = zeroize::Zeroizing::new([[0u8; HASH_LEN]; N]);
        kdf::extract_expand(&self.ck, ikm, &[], out.as_flattened_mut());
        out
    }

    /// `MixKey(ikm)`: `ck, temp_k = HKDF(ck, ikm, 2)`, `InitializeKey(temp_k)`.
    fn mix_key(&mut self, ikm: &[u8]) {
        let out = self.hkdf::<2>(ikm);
        self.ck = out[0];
        self.cipher = CipherState::with_key(&out[1]);
    }

    /// `MixHash(data)`: `h = SHA256(h || data)`.
    fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(self.h);
        hasher.update(data);
        self.h = hasher.finalize().into();
    }

    /// `MixKeyAndHash(ikm)`: `ck, temp_h, temp_k = HKDF(ck, ikm, 3)`, `MixHash(temp_h)`,
    /// `InitializeKey(temp_k)`.
    fn mix_key_and_hash(&mut self, ikm: &[u8]) {
        let out = self.hkdf::<3>(ikm);
        self.ck = out[0];
        self.mix_hash(&out[1]);
        self.cipher = CipherState::with_key(&out[2]);
    }

    /// `EncryptAndHash(plaintext)` into `out`; returns the ciphertext length.
    fn encrypt_and_hash(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let n = self.cipher.encrypt_with_ad(&self.h, plaintext, out)?;
        self.mix_hash(&out[..n]);
        Ok(n)
    }

    /// `DecryptAndHash(ciphertext)` into `out`; returns the plaintext length.
    fn decrypt_and_hash(&mut self, ciphertext: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let n = self.cipher.decrypt_with_ad(&self.h, ciphertext, out)?;
        self.mix_hash(ciphertext);
        Ok(n)
    }

    /// `Split()` without the handshake hash: `temp_k1, temp_k2 = HKDF(ck, "", 2)`.
    fn split(&self) -> zeroize::Zeroizing<[[u8; HASH_LEN]; 2]> {
        self.hkdf::<2>(&[])
    }

    /// Wipe `ck` and `h` and drop the key, after a fatal error.
    fn clear(&mut self) {
        self.ck.zeroize();
        self.h.zeroize();
        self.cipher = CipherState::empty();
    }
}

/// Where a handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Initiator: next call is `write_message` (message 1).
    WriteMsg1,
    /// Responder: next call is `read_message` (message 1).
    ReadMsg1,
    /// Responder: next call is `write_message` (message 2).
    WriteMsg2,
    /// Initiator: next call is `read_message` (message 2).
    ReadMsg2,
    /// Both messages done; only `split` remains.
    Finished,
    /// A fatal, sticky error.
    Failed(NoiseError),
}

/// A `Noise_NNpsk0_25519_AESGCM_SHA256` handshake in progress (Noise `HandshakeState`).
///
/// All secrets (`ck`, `k`, the ephemeral private key) are wiped on drop, and as soon as they
/// are no longer needed (finish or error).
#[derive(ZeroizeOnDrop)]
pub(crate) struct Handshake {
    /// Where the handshake is.
    #[zeroize(skip)]
    state: State,
    /// `ck`, `h` and the handshake cipher state.
    symmetric: SymmetricState,
    /// Our ephemeral private key `e`.
    e: [u8; DH_LEN],
    /// The peer's ephemeral public key `re` (responder: from message 1, used in message 2).
    re: [u8; DH_LEN],
    /// X25519 operations done so far (public-key derivations and DHs).
    dh_count: u32,
}

impl Handshake {
    /// The initiator's side: `Initialize(NNpsk0, initiator, prologue, e, psk)`.
    ///
    /// `ephemeral_secret` must be fresh for every handshake (reusing it is catastrophic, Noise
    /// spec §14); any 32 bytes are a valid X25519 secret (it is clamped).
    pub(crate) fn initiator(prologue: &[u8], psk: &[u8; 32], ephemeral_secret: [u8; 32]) -> Self {
        Self::new(State::WriteMsg1, prologue, psk, ephemeral_secret)
    }

    /// The responder's side: `Initialize(NNpsk0, responder, prologue, e, psk)`.
    ///
    /// `ephemeral_secret` must be fresh for every handshake (see [`Handshake::initiator`]).
    pub(crate) fn responder(prologue: &[u8], psk: &[u8; 32], ephemeral_secret: [u8; 32]) -> Self {
        Self::new(State::ReadMsg1, prologue, psk, ephemeral_secret)
    }

    /// Shared constructor.
    fn new(state: State, prologue: &[u8], psk: &[u8; 32], ephemeral_secret: [u8; 32]) -> Self {
        Self {
            state,
            symmetric: SymmetricState::new(prologue, psk),
            e: ephemeral_secret,
            re: [0; DH_LEN],
            dh_count: 0,
        }
    }

    /// Length of the next message for a payload of `payload_len` bytes (32 + payload + 16).
    ///
    /// Both NNpsk0 messages have this shape. Saturates instead of overflowing.
    pub(crate) fn message_len(payload_len: usize) -> usize {
        DH_LEN.saturating_add(payload_len).saturating_add(TAG_LEN)
    }

    /// Write the next message (initiator: msg 1; responder: msg 2). out must hold message_len(payload.len()).
    ///
    /// Returns the number of bytes written. Errors: `OutOfOrder` (not our turn),
    /// `BufferTooSmall`, `BadLength` (message over 65 535 bytes), `NonContributory` (responder:
    /// the initiator's ephemeral has small order). Every error is sticky.
    pub(crate) fn write_message(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let result = self.write_inner(payload, out);
        self.check(result)
    }

    /// Read the peer's next message; exact length: msg.len() must equal 32 + payload_out.len() + 16
    /// (the caller knows the payload length of each message), else BadLength. Returns payload length.
    /// The responder checks message 1's tag BEFORE any X25519 operation (wrong PSK => Authentication, zero DH done).
    ///
    /// Errors: `OutOfOrder`, `BadLength`, `Authentication`, `NonContributory` (initiator: the
    /// responder's ephemeral has small order; checked before message 2's tag, because the tag
    /// key depends on the DH). Every error is fatal and sticky; on error `payload_out` holds no
    /// plaintext.
    pub(crate) fn read_message(
        &mut self,
        msg: &[u8],
        payload_out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let result = self.read_inner(msg, payload_out);
        if result.is_err() {
            payload_out.fill(0);
        }
        self.check(result)
    }

    /// True once both messages have been written/read successfully.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Number of X25519 operations performed so far (lets tests prove a wrong PSK costs no DH).
    ///
    /// Counts the derivation of our ephemeral public key and the `ee` DH, so a completed
    /// handshake reports 2 on each side.
    pub(crate) fn dh_count(&self) -> u32 {
        self.dh_count
    }

    /// After both messages: Split() => (k1 initiator->responder, k2 responder->initiator) and the handshake hash h.
    ///
    /// `OutOfOrder` if the handshake has not finished; the sticky error if it failed.
    pub(crate) fn split(self) -> Result<Split, NoiseError> {
        match self.state {
            State::Finished => {
                let keys = self.symmetric.split();
                Ok(Split {
                    k1: keys[0],
                    k2: keys[1],
                    handshake_hash: self.symmetric.h,
                })
            }
            State::Failed(err) => Err(err),
            _ => Err(NoiseError::OutOfOrder),
        }
    }

    /// Make errors sticky and wipe secrets after one.
    fn check<T>(&mut self, result: Result<T, NoiseError>) -> Result<T, NoiseError> {
        if let Err(err) = result
            && !matches!(self.state, State::Failed(_))
        {
            self.state = State::Failed(err);
            self.e.zeroize();
            self.symmetric.clear();
        }
        result
    }

    /// Our ephemeral public key, derived on first use.
    fn ephemeral_public(&mut self) -> [u8; DH_LEN] {
        self.dh_count += 1;
        kdf::x25519_public(&self.e)
    }

    /// `DH(e, re)`, refusing an all-zero result.
    fn dh_ee(&mut self) -> Result<zeroize::Zeroizing<[u8; DH_LEN]>, NoiseError> {
        self.dh_count += 1;
        kdf::x25519(&self.e, &self.re).map_err(|kdf::NonContributory| NoiseError::NonContributory)
    }

    /// `write_message` without the sticky-error bookkeeping.
    fn write_inner(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let next = match self.state {
            State::Failed(err) => return Err(err),
            State::WriteMsg1 => State::ReadMsg2,
            State::WriteMsg2 => State::Finished,
            State::ReadMsg1 | State::ReadMsg2 | State::Finished => {
                return Err(NoiseError::OutOfOrder);
            }
        };
        let len = Self::message_len(payload.len());
        if len > MAX_MESSAGE_LEN {
            return Err(NoiseError::BadLength);
        }
        let out = out.get_mut(..len).ok_or(NoiseError::BufferTooSmall)?;
        let (e_dst, ct_dst) = out.split_at_mut(DH_LEN);

        // Token `e` (both messages), with the PSK-handshake MixKey.
        let e_pub = self.ephemeral_public();
        e_dst.copy_from_slice(&e_pub);
        self.symmetric.mix_hash(&e_pub);
        self.symmetric.mix_key(&e_pub);

        // Token `ee` (message 2 only).
        if next == State::Finished {
            let dh = self.dh_ee()?;
            self.symmetric.mix_key(&*dh);
        }

        let ct_len = self.symmetric.encrypt_and_hash(payload, ct_dst)?;
        debug_assert_eq!(DH_LEN + ct_len, len);
        self.finish_step(next);
        Ok(len)
    }

    /// `read_message` without the sticky-error bookkeeping.
    fn read_inner(&mut self, msg: &[u8], payload_out: &mut [u8]) -> Result<usize, NoiseError> {
        let next = match self.state {
            State::Failed(err) => return Err(err),
            State::ReadMsg1 => State::WriteMsg2,
            State::ReadMsg2 => State::Finished,
            State::WriteMsg1 | State::WriteMsg2 | State::Finished => {
                return Err(NoiseError::OutOfOrder);
            }
        };
        let len = Self::message_len(payload_out.len());
        if msg.len() != len || len > MAX_MESSAGE_LEN {
            return Err(NoiseError::BadLength);
        }
        let (re, ct) = msg.split_at(DH_LEN);

        // Token `e` (both messages), with the PSK-handshake MixKey.
        self.re.copy_from_slice(re);
        self.symmetric.mix_hash(re);
        self.symmetric.mix_key(re);

        // Token `ee` (message 2 only). Message 1 has no DH token, so the responder checks its
        // tag below having done no X25519 operation.
        if next == State::Finished {
            let dh = self.dh_ee()?;
            self.symmetric.mix_key(&*dh);
        }

        let pt_len = self.symmetric.decrypt_and_hash(ct, payload_out)?;
        self.finish_step(next);
        Ok(pt_len)
    }

    /// Move to `next`; the ephemeral secret is wiped once nothing needs it.
    fn finish_step(&mut self, next: State) {
        self.state = next;
        if next == State::Finished {
            self.e.zeroize();
            self.re.zeroize();
        }
    }
}

/// The result of a finished handshake: Noise `Split()` keys and the handshake hash.
#[derive(ZeroizeOnDrop)]
pub(crate) struct Split {
    /// Key for initiator -> responder traffic (Noise's first `Split` output).
    pub(crate) k1: [u8; 32],
    /// Key for responder -> initiator traffic (Noise's second `Split` output).
    pub(crate) k2: [u8; 32],
    /// The final handshake hash `h`, for channel binding and the ferry key schedule.
    pub(crate) handshake_hash: [u8; 32],
}

#[cfg(test)]
mod tests;
