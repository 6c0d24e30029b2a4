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
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    // The cacophony vector for Noise_NNpsk0_25519_AESGCM_SHA256, from mcginty/snow
    // `tests/vectors/cacophony.txt` (as shipped in the snow 0.10.0 crate).
    const PROLOGUE: &str = "4a6f686e2047616c74";
    const PSK: &str = "54686973206973206d7920417573747269616e20706572737065637469766521";
    const INIT_EPHEMERAL: &str = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
    const RESP_EPHEMERAL: &str = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
    const HANDSHAKE_HASH: &str = "9f3b1f9afd7767767b5b9d1069844a6154fdbdcc36dfb3e31c0fffc5c973d530";
    /// (payload, ciphertext); 0 and 1 are the handshake, 2.. alternate initiator -> responder
    /// (k1) and responder -> initiator (k2) transport messages.
    const MESSAGES: [(&str, &str); 6] = [
        (
            "4c756477696720766f6e204d69736573",
            "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944\
             7c37a89fc17813788d30df2d59501d6066f5f8aecc3406bbd9829f2d24a531b1",
        ),
        (
            "4d757272617920526f746862617264",
            "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843\
             2f29d79368ef9de4e1ae7a362fb05bf0ad668e026bf5714554497b3a720461",
        ),
        (
            "462e20412e20486179656b",
            "7c01e898a6201f36aecee532e29cd0b7f8ffa29d3366ad0dce39a6",
        ),
        (
            "4361726c204d656e676572",
            "a9ff535aace3db6a1da1a7fb00fe2de2622bb373abad9fb42c00e0",
        ),
        (
            "4a65616e2d426170746973746520536179",
            "6cfc49a3e65472edc2d0152abe5ce950170a8a47c959f30bd48b5f0aacf29adbfd",
        ),
        (
            "457567656e2042f6686d20766f6e2042617765726b",
            "9bc86e6d974ed21ba04604a94aa68de21677eb409ead070c0cd569b069ee19ba142aa4c1a9",
        ),
    ];

    /// Small-order X25519 public keys (and non-canonical encodings of them): DH with any
    /// secret is all zeros.
    const SMALL_ORDER: [&str; 7] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn h32(s: &str) -> [u8; 32] {
        hx(s).try_into().unwrap()
    }

    fn initiator() -> Handshake {
        Handshake::initiator(&hx(PROLOGUE), &h32(PSK), h32(INIT_EPHEMERAL))
    }

    fn responder() -> Handshake {
        Handshake::responder(&hx(PROLOGUE), &h32(PSK), h32(RESP_EPHEMERAL))
    }

    fn payload(i: usize) -> Vec<u8> {
        hx(MESSAGES[i].0)
    }

    /// Write the next message of `hs` carrying `payload`.
    fn write(hs: &mut Handshake, payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut out = vec![0u8; Handshake::message_len(payload.len())];
        let n = hs.write_message(payload, &mut out)?;
        assert_eq!(n, out.len());
        Ok(out)
    }

    /// Read `msg` into a payload buffer of `payload_len` bytes.
    fn read(hs: &mut Handshake, msg: &[u8], payload_len: usize) -> Result<Vec<u8>, NoiseError> {
        let mut out = vec![0u8; payload_len];
        let n = hs.read_message(msg, &mut out)?;
        assert_eq!(n, payload_len);
        Ok(out)
    }

    /// Message 1 as the vector's initiator writes it.
    fn msg1() -> Vec<u8> {
        write(&mut initiator(), &payload(0)).unwrap()
    }

    /// Message 1 from a "peer" that puts arbitrary bytes in its `e` field and knows the PSK
    /// (so the tag is valid), built from the same SymmetricState steps.
    fn crafted_msg1(e_pub: &[u8; 32], payload: &[u8]) -> Vec<u8> {
        let mut ss = SymmetricState::new(&hx(PROLOGUE), &h32(PSK));
        let mut out = vec![0u8; Handshake::message_len(payload.len())];
        out[..32].copy_from_slice(e_pub);
        ss.mix_hash(e_pub);
        ss.mix_key(e_pub);
        ss.encrypt_and_hash(payload, &mut out[32..]).unwrap();
        out
    }

    fn assert_sticky(hs: &mut Handshake, err: NoiseError) {
        let mut out = [0u8; 256];
        assert_eq!(hs.write_message(b"x", &mut out), Err(err));
        assert_eq!(hs.read_message(&msg1(), &mut [0u8; 16]), Err(err));
        assert_eq!(hs.read_message(&[0u8; 48], &mut []), Err(err));
        assert!(!hs.is_finished());
    }

    #[test]
    fn protocol_name_is_hashlen_bytes() {
        assert_eq!(PROTOCOL_NAME.len(), HASH_LEN);
        let ss = SymmetricState {
            ck: *PROTOCOL_NAME,
            h: *PROTOCOL_NAME,
            cipher: CipherState::empty(),
        };
        assert_eq!(&ss.h, b"Noise_NNpsk0_25519_AESGCM_SHA256");
    }

    #[test]
    fn nonce_is_zero_prefix_then_big_endian_counter() {
        assert_eq!(
            nonce(0x0102_0304_0506_0708),
            [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(nonce(0), [0; 12]);
    }

    /// The published cacophony vector, byte for byte: both handshake messages (written by one
    /// side, read by the other), the handshake hash on both sides, and the four transport
    /// messages through `CipherState`s keyed from `split`.
    #[test]
    fn cacophony_nnpsk0_25519_aesgcm_sha256() {
        let mut init = initiator();
        let mut resp = responder();

        let m1 = write(&mut init, &payload(0)).unwrap();
        assert_eq!(hex::encode(&m1), MESSAGES[0].1);
        assert_eq!(read(&mut resp, &m1, payload(0).len()).unwrap(), payload(0));
        assert_eq!(resp.dh_count(), 0);

        let m2 = write(&mut resp, &payload(1)).unwrap();
        assert_eq!(hex::encode(&m2), MESSAGES[1].1);
        assert_eq!(read(&mut init, &m2, payload(1).len()).unwrap(), payload(1));

        assert!(init.is_finished() && resp.is_finished());
        assert_eq!((init.dh_count(), resp.dh_count()), (2, 2));

        let si = init.split().unwrap();
        let sr = resp.split().unwrap();
        assert_eq!(hex::encode(si.handshake_hash), HANDSHAKE_HASH);
        assert_eq!(hex::encode(sr.handshake_hash), HANDSHAKE_HASH);
        assert_eq!(si.k1, sr.k1);
        assert_eq!(si.k2, sr.k2);
        assert_ne!(si.k1, si.k2);

        let mut i_tx = CipherState::new(si.k1);
        let mut i_rx = CipherState::new(si.k2);
        let mut r_tx = CipherState::new(sr.k2);
        let mut r_rx = CipherState::new(sr.k1);
        for (i, (pt, ct)) in MESSAGES.iter().enumerate().skip(2) {
            let pt = hx(pt);
            let (tx, rx) = if i % 2 == 0 {
                (&mut i_tx, &mut r_rx)
            } else {
                (&mut r_tx, &mut i_rx)
            };
            let mut wire = vec![0u8; pt.len() + TAG_LEN];
            assert_eq!(tx.encrypt_with_ad(&[], &pt, &mut wire), Ok(wire.len()));
            assert_eq!(hex::encode(&wire), *ct, "transport message {i}");
            let mut got = vec![0u8; pt.len()];
            assert_eq!(rx.decrypt_with_ad(&[], &wire, &mut got), Ok(pt.len()));
            assert_eq!(got, pt, "transport message {i}");
        }
        assert_eq!((i_tx.n, i_rx.n, r_tx.n, r_rx.n), (2, 2, 2, 2));
    }

    /// A responder with a different PSK rejects message 1 with `Authentication` having done
    /// no X25519 operation, releases no plaintext, and stays failed.
    #[test]
    fn wrong_psk_fails_msg1_before_any_dh() {
        let m1 = msg1();
        for bit in 0..256 {
            let mut psk = h32(PSK);
            psk[bit / 8] ^= 1 << (bit % 8);
            let mut resp = Handshake::responder(&hx(PROLOGUE), &psk, h32(RESP_EPHEMERAL));
            let mut out = vec![0xAA; payload(0).len()];
            assert_eq!(
                resp.read_message(&m1, &mut out),
                Err(NoiseError::Authentication),
                "psk bit {bit}"
            );
            assert_eq!(resp.dh_count(), 0);
            assert!(out.iter().all(|&b| b == 0), "payload_out not cleared");
            if bit == 0 {
                assert_sticky(&mut resp, NoiseError::Authentication);
                assert_eq!(resp.dh_count(), 0);
                assert_eq!(resp.split().err(), Some(NoiseError::Authentication));
            }
        }
    }

    #[test]
    fn wrong_prologue_fails_msg1() {
        let m1 = msg1();
        for prologue in [&b""[..], b"John Galt ", b"John Galu", b"john Galt"] {
            let mut resp = Handshake::responder(prologue, &h32(PSK), h32(RESP_EPHEMERAL));
            assert_eq!(
                read(&mut resp, &m1, payload(0).len()),
                Err(NoiseError::Authentication)
            );
            assert_eq!(resp.dh_count(), 0);
        }
    }

    /// Flipping any single bit of message 1 (ephemeral key, ciphertext or tag) fails
    /// authentication, with no DH done.
    #[test]
    fn every_bit_flip_in_msg1_fails() {
        let m1 = msg1();
        for bit in 0..m1.len() * 8 {
            let mut bad = m1.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut resp = responder();
            assert_eq!(
                read(&mut resp, &bad, payload(0).len()),
                Err(NoiseError::Authentication),
                "bit {bit}"
            );
            assert_eq!(resp.dh_count(), 0);
        }
    }

    /// Flipping any single bit of message 2 fails authentication at the initiator.
    #[test]
    fn every_bit_flip_in_msg2_fails() {
        let mut resp = responder();
        read(&mut resp, &msg1(), payload(0).len()).unwrap();
        let m2 = write(&mut resp, &payload(1)).unwrap();
        for bit in 0..m2.len() * 8 {
            let mut bad = m2.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut init = initiator();
            write(&mut init, &payload(0)).unwrap();
            let mut out = vec![0xAA; payload(1).len()];
            assert_eq!(
                init.read_message(&bad, &mut out),
                Err(NoiseError::Authentication),
                "bit {bit}"
            );
            assert!(out.iter().all(|&b| b == 0));
            assert!(!init.is_finished());
        }
        // And the untampered message still works on a fresh initiator.
        let mut init = initiator();
        write(&mut init, &payload(0)).unwrap();
        assert_eq!(read(&mut init, &m2, payload(1).len()).unwrap(), payload(1));
    }

    /// Any message length other than 32 + payload + 16 is `BadLength`, for both messages, and
    /// the error is sticky (a correct message afterwards is still refused).
    #[test]
    fn wrong_lengths_are_bad_length_and_sticky() {
        let m1 = msg1();
        let p0 = payload(0).len();
        let mut cases: Vec<(Vec<u8>, usize)> = vec![
            (m1[..m1.len() - 1].to_vec(), p0),
            ([m1.as_slice(), &[0]].concat(), p0),
            (m1.clone(), p0 - 1),
            (m1.clone(), p0 + 1),
            (Vec::new(), 0),
            (m1[..47].to_vec(), 0),
            (m1[..32].to_vec(), 0),
        ];
        // A message over Noise's 65535-byte limit, even with a matching payload buffer.
        cases.push((vec![0u8; MAX_MESSAGE_LEN + 1], MAX_MESSAGE_LEN + 1 - 48));
        for (i, (msg, plen)) in cases.iter().enumerate() {
            let mut resp = responder();
            assert_eq!(
                read(&mut resp, msg, *plen),
                Err(NoiseError::BadLength),
                "case {i}"
            );
            assert_eq!(resp.dh_count(), 0);
            assert_eq!(read(&mut resp, &m1, p0), Err(NoiseError::BadLength));
            assert_sticky(&mut resp, NoiseError::BadLength);
        }

        let mut resp = responder();
        read(&mut resp, &m1, p0).unwrap();
        let m2 = write(&mut resp, &payload(1)).unwrap();
        let p1 = payload(1).len();
        for (msg, plen) in [
            (&m2[..m2.len() - 1], p1),
            (&m2[..], p1 + 1),
            (&m2[..], p1 - 1),
            (&[][..], 0),
        ] {
            let mut init = initiator();
            write(&mut init, &payload(0)).unwrap();
            assert_eq!(read(&mut init, msg, plen), Err(NoiseError::BadLength));
            assert_eq!(init.dh_count(), 1, "no DH before the length check");
            assert_eq!(read(&mut init, &m2, p1), Err(NoiseError::BadLength));
        }
    }

    /// A writer whose message would exceed 65535 bytes gets `BadLength`.
    #[test]
    fn oversized_payload_is_bad_length() {
        let big = vec![0u8; MAX_MESSAGE_LEN - 48 + 1];
        let mut out = vec![0u8; Handshake::message_len(big.len())];
        let mut init = initiator();
        assert_eq!(
            init.write_message(&big, &mut out),
            Err(NoiseError::BadLength)
        );
        assert_sticky(&mut init, NoiseError::BadLength);
        // The largest allowed payload works.
        let max = vec![7u8; MAX_MESSAGE_LEN - 48];
        let m = write(&mut initiator(), &max).unwrap();
        assert_eq!(m.len(), MAX_MESSAGE_LEN);
        assert_eq!(read(&mut responder(), &m, max.len()).unwrap(), max);
        assert_eq!(Handshake::message_len(usize::MAX), usize::MAX);
    }

    /// A small-order ephemeral in an otherwise valid message 1 (the sender knows the PSK) is
    /// caught by the responder's `ee` DH when writing message 2.
    #[test]
    fn low_order_ephemeral_in_msg1_is_non_contributory() {
        for p in SMALL_ORDER {
            let m1 = crafted_msg1(&h32(p), &payload(0));
            let mut resp = responder();
            assert_eq!(read(&mut resp, &m1, payload(0).len()).unwrap(), payload(0));
            assert_eq!(resp.dh_count(), 0);
            let mut out = vec![0u8; Handshake::message_len(4)];
            assert_eq!(
                resp.write_message(b"oops", &mut out),
                Err(NoiseError::NonContributory),
                "{p}"
            );
            assert_eq!(resp.dh_count(), 2);
            assert_sticky(&mut resp, NoiseError::NonContributory);
            assert_eq!(resp.split().err(), Some(NoiseError::NonContributory));
        }
        // Sanity: the crafting helper agrees with the real initiator for a real key.
        let e_pub = kdf::x25519_public(&h32(INIT_EPHEMERAL));
        assert_eq!(crafted_msg1(&e_pub, &payload(0)), msg1());
    }

    /// A small-order ephemeral in message 2 is refused by the initiator before it looks at
    /// the tag (the tag key depends on the DH).
    #[test]
    fn low_order_ephemeral_in_msg2_is_non_contributory() {
        for p in SMALL_ORDER {
            let mut init = initiator();
            write(&mut init, &payload(0)).unwrap();
            let mut m2 = vec![0u8; Handshake::message_len(3)];
            m2[..32].copy_from_slice(&h32(p));
            assert_eq!(
                read(&mut init, &m2, 3),
                Err(NoiseError::NonContributory),
                "{p}"
            );
            assert_eq!(init.dh_count(), 2);
            assert_sticky(&mut init, NoiseError::NonContributory);
        }
    }

    #[test]
    fn out_of_order_calls() {
        let mut out = [0u8; 64];
        // Initiator must write first.
        let mut init = initiator();
        assert_eq!(
            init.read_message(&[0u8; 48], &mut []),
            Err(NoiseError::OutOfOrder)
        );
        assert_sticky(&mut init, NoiseError::OutOfOrder);
        // Responder must read first.
        let mut resp = responder();
        assert_eq!(
            resp.write_message(b"", &mut out),
            Err(NoiseError::OutOfOrder)
        );
        assert_eq!(resp.dh_count(), 0);
        assert_sticky(&mut resp, NoiseError::OutOfOrder);
        // Initiator cannot write twice; responder cannot read twice.
        let mut init = initiator();
        write(&mut init, b"").unwrap();
        assert_eq!(
            init.write_message(b"", &mut out),
            Err(NoiseError::OutOfOrder)
        );
        let mut resp = responder();
        read(&mut resp, &msg1(), payload(0).len()).unwrap();
        assert_eq!(
            read(&mut resp, &msg1(), payload(0).len()),
            Err(NoiseError::OutOfOrder)
        );
        // Split before the end.
        assert_eq!(initiator().split().err(), Some(NoiseError::OutOfOrder));
        let mut resp = responder();
        read(&mut resp, &msg1(), payload(0).len()).unwrap();
        assert_eq!(resp.split().err(), Some(NoiseError::OutOfOrder));
        // Nothing after the end.
        let (mut init, mut resp) = (initiator(), responder());
        let m1 = write(&mut init, b"a").unwrap();
        read(&mut resp, &m1, 1).unwrap();
        let m2 = write(&mut resp, b"b").unwrap();
        read(&mut init, &m2, 1).unwrap();
        assert_eq!(
            init.write_message(b"", &mut out),
            Err(NoiseError::OutOfOrder)
        );
        assert_eq!(read(&mut resp, &m2, 1), Err(NoiseError::OutOfOrder));
    }

    #[test]
    fn short_output_buffer_is_buffer_too_small() {
        let p = payload(0);
        let mut out = vec![0u8; Handshake::message_len(p.len()) - 1];
        let mut init = initiator();
        assert_eq!(
            init.write_message(&p, &mut out),
            Err(NoiseError::BufferTooSmall)
        );
        assert_eq!(init.dh_count(), 0, "checked before any work");
        assert_sticky(&mut init, NoiseError::BufferTooSmall);
        // A larger buffer is fine: only message_len bytes are written.
        let mut big = vec![0xEE; Handshake::message_len(p.len()) + 10];
        let n = initiator().write_message(&p, &mut big).unwrap();
        assert_eq!(hex::encode(&big[..n]), MESSAGES[0].1);
        assert!(big[n..].iter().all(|&b| b == 0xEE));
    }

    /// Transport: a failed decryption does not advance the nonce, so the genuine message at
    /// the same position still decrypts, and so does the next one.
    #[test]
    fn cipher_state_failed_decrypt_does_not_advance_nonce() {
        let key = [9u8; 32];
        let mut tx = CipherState::new(key);
        let mut rx = CipherState::new(key);
        let mut c0 = [0u8; 5 + TAG_LEN];
        let mut c1 = [0u8; 5 + TAG_LEN];
        tx.encrypt_with_ad(b"ad", b"hello", &mut c0).unwrap();
        tx.encrypt_with_ad(b"ad", b"world", &mut c1).unwrap();
        let mut out = [0u8; 5];
        // Out of order (n = 1 message at n = 0), tampered, wrong AD: all refused at n = 0.
        assert_eq!(
            rx.decrypt_with_ad(b"ad", &c1, &mut out),
            Err(NoiseError::Authentication)
        );
        let mut bad = c0;
        bad[2] ^= 4;
        assert_eq!(
            rx.decrypt_with_ad(b"ad", &bad, &mut out),
            Err(NoiseError::Authentication)
        );
        assert_eq!(out, [0; 5]);
        assert_eq!(
            rx.decrypt_with_ad(b"AD", &c0, &mut out),
            Err(NoiseError::Authentication)
        );
        assert_eq!(rx.n, 0);
        assert_eq!(rx.decrypt_with_ad(b"ad", &c0, &mut out), Ok(5));
        assert_eq!(&out, b"hello");
        assert_eq!(rx.decrypt_with_ad(b"ad", &c1, &mut out), Ok(5));
        assert_eq!(&out, b"world");
        // Replay of c0 at n = 2 fails.
        assert_eq!(
            rx.decrypt_with_ad(b"ad", &c0, &mut out),
            Err(NoiseError::Authentication)
        );
        // Shapes: shorter than a tag, short output buffers.
        assert_eq!(
            rx.decrypt_with_ad(b"", &[0; 15], &mut out),
            Err(NoiseError::BadLength)
        );
        assert_eq!(
            rx.decrypt_with_ad(b"ad", &c0, &mut [0; 4]),
            Err(NoiseError::BufferTooSmall)
        );
        assert_eq!(
            tx.encrypt_with_ad(b"", b"hello", &mut [0; 20]),
            Err(NoiseError::BufferTooSmall)
        );
        assert_eq!((tx.n, rx.n), (2, 2));
    }

    /// Nonce 2^64 - 1 is reserved: the last usable nonce is 2^64 - 2.
    #[test]
    fn cipher_state_nonce_exhaustion() {
        let key = [3u8; 32];
        let mut tx = CipherState::new(key);
        let mut rx = CipherState::new(key);
        tx.n = u64::MAX - 1;
        rx.n = u64::MAX - 1;
        let mut ct = [0u8; 1 + TAG_LEN];
        assert_eq!(tx.encrypt_with_ad(b"", b"z", &mut ct), Ok(ct.len()));
        // The nonce used was 2^64 - 2, encoded as 0^32 || BE64.
        let mut check = *b"z";
        let tag = AeadKey::new(&key).seal_in_place(
            &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
            b"",
            &mut check,
        );
        assert_eq!(ct[..1], check);
        assert_eq!(ct[1..], tag);
        assert_eq!(
            tx.encrypt_with_ad(b"", b"z", &mut ct),
            Err(NoiseError::NonceExhausted)
        );
        let mut out = [0u8; 1];
        assert_eq!(rx.decrypt_with_ad(b"", &ct, &mut out), Ok(1));
        assert_eq!(
            rx.decrypt_with_ad(b"", &ct, &mut out),
            Err(NoiseError::NonceExhausted)
        );
    }

    /// Property: for any prologue, PSK, ephemerals and payloads, both sides finish with the
    /// same keys and hash, deliver the payloads, and a prologue mismatch always fails msg 1.
    #[test]
    fn handshake_agrees_for_any_inputs() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        let strategy = (
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(any::<u8>(), 0..200),
        );
        let mut runner = TestRunner::new(Config {
            cases: 64,
            ..Config::default()
        });
        runner
            .run(&strategy, |(prologue, psk, ei, er, p1, p2)| {
                let mut init = Handshake::initiator(&prologue, &psk, ei);
                let mut resp = Handshake::responder(&prologue, &psk, er);
                let m1 = write(&mut init, &p1).unwrap();
                prop_assert_eq!(read(&mut resp, &m1, p1.len()).unwrap(), p1.clone());
                let m2 = write(&mut resp, &p2).unwrap();
                prop_assert_eq!(read(&mut init, &m2, p2.len()).unwrap(), p2);
                let (si, sr) = (init.split().unwrap(), resp.split().unwrap());
                prop_assert_eq!(si.k1, sr.k1);
                prop_assert_eq!(si.k2, sr.k2);
                prop_assert_eq!(si.handshake_hash, sr.handshake_hash);
                prop_assert_ne!(si.k1, si.k2);

                let mut other = prologue.clone();
                other.push(0);
                let mut resp2 = Handshake::responder(&other, &psk, er);
                prop_assert_eq!(
                    read(&mut resp2, &m1, p1.len()),
                    Err(NoiseError::Authentication)
                );
                Ok(())
            })
            .unwrap();
    }
}
