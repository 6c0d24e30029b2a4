//! The Noise handshakes ferry speaks, exactly as the Noise Protocol Framework (revision 34)
//! specifies them, with the patterns hard-coded (see `pattern.rs`):
//! `Noise_NNpsk0_25519_AESGCM_SHA256` (mode PSK), `Noise_XX_25519_AESGCM_SHA256` (mode
//! PINNED) and `Noise_XXpsk3_25519_AESGCM_SHA256` (mode PINNED+PSK).
//!
//! `CipherState`, `SymmetricState` and the handshake follow spec §5.1–§5.3 and §9 (PSK
//! handshakes: every `e` token is also `MixKey(e.public_key)`). `HKDF(ck, ikm, n)` of spec §4.3
//! is HKDF-SHA256 Extract(salt = ck, ikm) followed by Expand(info = "", n * 32). The published
//! cacophony vector of each of the three protocols is reproduced byte for byte by the tests.
//!
//! Departures from a generic Noise implementation, all invisible on the wire:
//! - public keys (ephemeral and static) are computed when the message carrying them is
//!   written, so an NNpsk0 responder that rejects message 1 (wrong PSK) has done no curve
//!   operation at all;
//! - messages have an exact length (the caller knows each payload length), errors are sticky
//!   and every read error is fatal for the handshake;
//! - the PSK and the private keys are wiped as soon as their last token is processed.

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::aead::{AeadKey, KEY_LEN, NONCE_LEN, TAG_LEN};
use super::kdf;

mod pattern;

pub(crate) use pattern::Pattern;
use pattern::Token;

/// NNpsk0's protocol name; exactly `HASHLEN` (32) bytes, so it is used as `h` unpadded.
#[cfg(test)]
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
    /// `k`, or `None` for Noise's "empty" key (before the first `MixKey`). Feature `ring`:
    /// its key schedule is not wiped on drop (see `crypto::aead`).
    #[cfg_attr(feature = "ring", zeroize(skip))]
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
    /// `InitializeSymmetric(protocol_name)` (a name shorter than `HASHLEN` is zero-padded,
    /// a longer one hashed), then `MixHash(prologue)`.
    fn new(protocol_name: &[u8], prologue: &[u8]) -> Self {
        let mut h = [0u8; HASH_LEN];
        if protocol_name.len() <= HASH_LEN {
            h[..protocol_name.len()].copy_from_slice(protocol_name);
        } else {
            h = Sha256::digest(protocol_name).into();
        }
        let mut s = Self {
            ck: h,
            h,
            cipher: CipherState::empty(),
        };
        s.mix_hash(prologue);
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
    /// Message `n` (0-based) is next; whether we write or read it follows from our role.
    Msg(usize),
    /// Every message done; only `split` remains.
    Finished,
    /// A fatal, sticky error.
    Failed(NoiseError),
}

/// The keys a handshake starts from. Every secret is copied into the handshake, which wipes
/// it on drop; the caller wipes its own copies.
pub(crate) struct Keys<'a> {
    /// The pre-shared key (ignored by patterns without a `psk` token).
    pub(crate) psk: &'a [u8; 32],
    /// Our static private key (ignored by patterns without an `s` token).
    pub(crate) static_secret: &'a [u8; 32],
    /// Its public key when the caller has it already (a long-term identity keeps it), which
    /// saves a curve operation per handshake; computed from `static_secret` otherwise.
    pub(crate) static_public: Option<[u8; 32]>,
    /// Our ephemeral private key: fresh for every handshake (reusing it is catastrophic,
    /// Noise spec §14); any 32 bytes are a valid X25519 secret (it is clamped).
    pub(crate) ephemeral_secret: [u8; 32],
}

/// A handshake in progress (Noise `HandshakeState`) for one of the [`Pattern`]s.
///
/// All secrets (`ck`, `k`, the PSK, the static and ephemeral private keys) are wiped on drop,
/// and as soon as they are no longer needed (finish or error).
#[derive(ZeroizeOnDrop)]
pub(crate) struct Handshake {
    /// Which pattern.
    #[zeroize(skip)]
    pattern: Pattern,
    /// Initiator (writes messages 0, 2, ...) or responder.
    #[zeroize(skip)]
    initiator: bool,
    /// Where the handshake is.
    #[zeroize(skip)]
    state: State,
    /// `ck`, `h` and the handshake cipher state.
    symmetric: SymmetricState,
    /// The PSK, until its token has been processed.
    psk: [u8; 32],
    /// Our static private key `s`.
    s: [u8; DH_LEN],
    /// Our static public key, if the caller gave it.
    #[zeroize(skip)]
    s_pub: Option<[u8; DH_LEN]>,
    /// Our ephemeral private key `e`.
    e: [u8; DH_LEN],
    /// The peer's ephemeral public key `re`.
    re: [u8; DH_LEN],
    /// The peer's static public key `rs`, once its `s` token was read.
    rs: Option<[u8; DH_LEN]>,
    /// X25519 operations done so far (public-key derivations and DHs).
    dh_count: u32,
}

impl Handshake {
    /// The initiator's side of NNpsk0: `Initialize(NNpsk0, initiator, prologue, e, psk)`.
    #[cfg(test)]
    pub(crate) fn initiator(prologue: &[u8], psk: &[u8; 32], ephemeral_secret: [u8; 32]) -> Self {
        Self::new(
            Pattern::NNpsk0,
            true,
            prologue,
            &Keys {
                psk,
                static_secret: &[0; 32],
                static_public: None,
                ephemeral_secret,
            },
        )
    }

    /// The responder's side of NNpsk0.
    #[cfg(test)]
    pub(crate) fn responder(prologue: &[u8], psk: &[u8; 32], ephemeral_secret: [u8; 32]) -> Self {
        Self::new(
            Pattern::NNpsk0,
            false,
            prologue,
            &Keys {
                psk,
                static_secret: &[0; 32],
                static_public: None,
                ephemeral_secret,
            },
        )
    }

    /// `Initialize(pattern, initiator, prologue, s, e, psk)`.
    pub(crate) fn new(pattern: Pattern, initiator: bool, prologue: &[u8], keys: &Keys<'_>) -> Self {
        Self {
            pattern,
            initiator,
            state: State::Msg(0),
            symmetric: SymmetricState::new(pattern.name(), prologue),
            psk: *keys.psk,
            s: *keys.static_secret,
            s_pub: keys.static_public,
            e: keys.ephemeral_secret,
            re: [0; DH_LEN],
            rs: None,
            dh_count: 0,
        }
    }

    /// Length of an NNpsk0 message carrying `payload_len` bytes (32 + payload + 16); both
    /// messages of that pattern have this shape. Saturates instead of overflowing.
    #[cfg(test)]
    pub(crate) fn message_len(payload_len: usize) -> usize {
        DH_LEN.saturating_add(payload_len).saturating_add(TAG_LEN)
    }

    /// Length of the next message (to write or to read) for a payload of `payload_len`
    /// bytes: the pattern's tokens plus the payload, with a tag wherever a key exists.
    /// 0 once the handshake finished or failed. Saturates instead of overflowing.
    pub(crate) fn next_message_len(&self, payload_len: usize) -> usize {
        let State::Msg(i) = self.state else {
            return 0;
        };
        let mut keyed = self.symmetric.cipher.key.is_some();
        let mut len = 0usize;
        for token in self.pattern.messages()[i] {
            match token {
                Token::E => {
                    len += DH_LEN;
                    keyed |= self.pattern.is_psk();
                }
                Token::S => len += DH_LEN + if keyed { TAG_LEN } else { 0 },
                Token::Ee | Token::Es | Token::Se | Token::Psk => keyed = true,
            }
        }
        len.saturating_add(payload_len)
            .saturating_add(if keyed { TAG_LEN } else { 0 })
    }

    /// Whether the next message is ours to write.
    pub(crate) fn is_write_turn(&self) -> bool {
        matches!(self.state, State::Msg(i) if (i % 2 == 0) == self.initiator)
    }

    /// Write the next message; `out` must hold `next_message_len(payload.len())` bytes.
    ///
    /// Returns the number of bytes written. Errors: `OutOfOrder` (not our turn),
    /// `BufferTooSmall`, `BadLength` (message over 65 535 bytes), `NonContributory` (a DH
    /// with a small-order peer key). Every error is sticky.
    pub(crate) fn write_message(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let result = self.write_inner(payload, out);
        self.check(result)
    }

    /// Read the peer's next message; exact length: `msg.len()` must equal
    /// `next_message_len(payload_out.len())` (the caller knows the payload length of each
    /// message), else `BadLength`. Returns the payload length. An NNpsk0 responder checks
    /// message 1's tag before any X25519 operation (wrong PSK => `Authentication`, no DH).
    ///
    /// Errors: `OutOfOrder`, `BadLength`, `Authentication`, `NonContributory` (checked before
    /// the tag that depends on the DH). Every error is fatal and sticky; on error
    /// `payload_out` holds no plaintext.
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

    /// True once every message has been written/read successfully.
    pub(crate) fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// The peer's static public key, once the message carrying it was read (and
    /// authenticated: its tag, and the payload's after it, checked).
    pub(crate) fn remote_static(&self) -> Option<[u8; DH_LEN]> {
        self.rs
    }

    /// Number of X25519 operations performed so far (lets tests prove a wrong PSK costs no DH).
    ///
    /// Counts public-key derivations and DHs: a completed NNpsk0 handshake reports 2 on each
    /// side.
    pub(crate) fn dh_count(&self) -> u32 {
        self.dh_count
    }

    /// After the last message: Split() => (k1 initiator->responder, k2 responder->initiator)
    /// and the handshake hash h.
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
            State::Msg(_) => Err(NoiseError::OutOfOrder),
        }
    }

    /// Make errors sticky and wipe secrets after one.
    fn check<T>(&mut self, result: Result<T, NoiseError>) -> Result<T, NoiseError> {
        if let Err(err) = result
            && !matches!(self.state, State::Failed(_))
        {
            self.state = State::Failed(err);
            self.rs = None;
            self.wipe();
            self.symmetric.clear();
        }
        result
    }

    /// Wipe every private key this handshake holds.
    fn wipe(&mut self) {
        self.e.zeroize();
        self.s.zeroize();
        self.psk.zeroize();
        self.re.zeroize();
    }

    /// A public key from a private one.
    fn public(&mut self, secret: &[u8; DH_LEN]) -> [u8; DH_LEN] {
        self.dh_count += 1;
        kdf::x25519_public(secret)
    }

    /// The DH a token asks for, refusing an all-zero result.
    fn dh(&mut self, token: Token) -> Result<zeroize::Zeroizing<[u8; DH_LEN]>, NoiseError> {
        let rs = self.rs.unwrap_or([0; DH_LEN]);
        let (ours, theirs) = match (token, self.initiator) {
            (Token::Ee, _) => (&self.e, &self.re),
            (Token::Es, true) | (Token::Se, false) => (&self.e, &rs),
            (Token::Es, false) | (Token::Se, true) => (&self.s, &self.re),
            _ => return Err(NoiseError::OutOfOrder),
        };
        let out = kdf::x25519(ours, theirs);
        self.dh_count += 1;
        out.map_err(|kdf::NonContributory| NoiseError::NonContributory)
    }

    /// The tokens of the next message, if it is ours to `write` (or to read, when false).
    fn next_tokens(&self, write: bool) -> Result<(usize, &'static [Token]), NoiseError> {
        match self.state {
            State::Failed(err) => Err(err),
            State::Msg(i) if self.is_write_turn() == write => Ok((i, self.pattern.messages()[i])),
            State::Msg(_) | State::Finished => Err(NoiseError::OutOfOrder),
        }
    }

    /// The keying tokens (`ee`, `es`, `se`, `psk`).
    fn mix_token(&mut self, token: Token) -> Result<(), NoiseError> {
        if token == Token::Psk {
            let psk = self.psk;
            self.symmetric.mix_key_and_hash(&psk);
            self.psk.zeroize();
        } else {
            let dh = self.dh(token)?;
            self.symmetric.mix_key(&*dh);
        }
        Ok(())
    }

    /// `write_message` without the sticky-error bookkeeping.
    fn write_inner(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        let (i, tokens) = self.next_tokens(true)?;
        let len = self.next_message_len(payload.len());
        if len > MAX_MESSAGE_LEN {
            return Err(NoiseError::BadLength);
        }
        let out = out.get_mut(..len).ok_or(NoiseError::BufferTooSmall)?;
        let mut pos = 0;
        for &token in tokens {
            match token {
                Token::E => {
                    let e = self.e;
                    let e_pub = self.public(&e);
                    out[pos..pos + DH_LEN].copy_from_slice(&e_pub);
                    pos += DH_LEN;
                    self.symmetric.mix_hash(&e_pub);
                    if self.pattern.is_psk() {
                        self.symmetric.mix_key(&e_pub);
                    }
                }
                Token::S => {
                    let s = self.s;
                    let s_pub = match self.s_pub {
                        Some(p) => p,
                        None => self.public(&s),
                    };
                    pos += self.symmetric.encrypt_and_hash(&s_pub, &mut out[pos..])?;
                }
                other => self.mix_token(other)?,
            }
        }
        pos += self.symmetric.encrypt_and_hash(payload, &mut out[pos..])?;
        debug_assert_eq!(pos, len);
        self.finish_step(i);
        Ok(len)
    }

    /// `read_message` without the sticky-error bookkeeping.
    fn read_inner(&mut self, msg: &[u8], payload_out: &mut [u8]) -> Result<usize, NoiseError> {
        let (i, tokens) = self.next_tokens(false)?;
        let len = self.next_message_len(payload_out.len());
        if msg.len() != len || len > MAX_MESSAGE_LEN {
            return Err(NoiseError::BadLength);
        }
        let mut pos = 0;
        for &token in tokens {
            match token {
                Token::E => {
                    self.re.copy_from_slice(&msg[pos..pos + DH_LEN]);
                    pos += DH_LEN;
                    let re = self.re;
                    self.symmetric.mix_hash(&re);
                    if self.pattern.is_psk() {
                        self.symmetric.mix_key(&re);
                    }
                }
                Token::S => {
                    let n = DH_LEN
                        + if self.symmetric.cipher.key.is_some() {
                            TAG_LEN
                        } else {
                            0
                        };
                    let mut rs = [0u8; DH_LEN];
                    self.symmetric
                        .decrypt_and_hash(&msg[pos..pos + n], &mut rs)?;
                    pos += n;
                    self.rs = Some(rs);
                }
                // NNpsk0's message 1 has no DH token, so its responder checks the tag below
                // having done no X25519 operation.
                other => self.mix_token(other)?,
            }
        }
        let pt_len = self.symmetric.decrypt_and_hash(&msg[pos..], payload_out)?;
        self.finish_step(i);
        Ok(pt_len)
    }

    /// Move past message `i`; the private keys are wiped once nothing needs them.
    fn finish_step(&mut self, i: usize) {
        if i + 1 == self.pattern.messages().len() {
            self.state = State::Finished;
            self.wipe();
        } else {
            self.state = State::Msg(i + 1);
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
#[cfg(test)]
mod vectors;
