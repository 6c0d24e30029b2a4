//! The C2SP chunked-encryption state machines: [`Sealer`] and [`Opener`].

use alloc::vec::Vec;
use core::fmt;

use hkdf::Hkdf;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    CHUNK_LEN, COMMITMENT_LEN, MAX_CHUNKS, PREFIX_LEN, SALT_LEN, SEALED_CHUNK_LEN, SealError,
    SealKey, TAG_LEN,
};
use crate::crypto::aead::{AeadKey, KEY_LEN, NONCE_LEN};

/// The fixed start of the HKDF-Expand info.
const LABEL: &[u8] = b"c2sp.org/chunked-encryption@v1+";
/// The AEAD's name in the IANA AEAD registry, as the info field carries it.
const AEAD_NAME: &[u8] = b"AEAD_AES_256_GCM";

/// What HKDF-Expand derives for one message.
pub(super) struct Derived {
    pub(super) key: Zeroizing<[u8; KEY_LEN]>,
    pub(super) base_nonce: [u8; NONCE_LEN],
    pub(super) commitment: [u8; COMMITMENT_LEN],
}

/// `key || base nonce || commitment = HKDF-Expand(prk = input key,
/// info = "c2sp.org/chunked-encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || context)`
/// with HKDF-SHA-512.
pub(super) fn derive(input_key: &SealKey, salt: &[u8; SALT_LEN], context: &[u8]) -> Derived {
    let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_LEN + COMMITMENT_LEN]);
    expand_sha512(
        input_key.bytes(),
        &[LABEL, AEAD_NAME, &[0x00], salt, context],
        &mut okm[..],
    );
    let (key, rest) = okm.split_at(KEY_LEN);
    let (base_nonce, commitment) = rest.split_at(NONCE_LEN);
    Derived {
        key: Zeroizing::new(key.try_into().expect("split at KEY_LEN")),
        base_nonce: base_nonce.try_into().expect("split at NONCE_LEN"),
        commitment: commitment.try_into().expect("the rest is COMMITMENT_LEN"),
    }
}

/// HKDF-SHA-512 Expand (RFC 5869) with the 32-byte input key as the PRK, `info` given in parts.
///
/// RFC 5869 asks for a PRK of at least HashLen (64) bytes and `hkdf` enforces that, but C2SP
/// expands straight from the input key. HMAC zero-pads every key shorter than the SHA-512
/// block (128 bytes), so `input key || 32 zero bytes` is the very same HMAC key: this is exactly
/// `HKDF-Expand(prk = input key, info)`, as the Wycheproof vectors confirm.
/// (`crypto::kdf::expand` is the SHA-256 counterpart.)
fn expand_sha512(input_key: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
    let mut prk = Zeroizing::new([0u8; 64]);
    prk[..32].copy_from_slice(input_key);
    Hkdf::<Sha512>::from_prk(&prk[..])
        .expect("a 64-byte PRK is exactly SHA-512's output length, which from_prk accepts")
        .expand_multi_info(info, out)
        .expect("callers request 76 bytes, far below 255*64");
}

/// The nonce of chunk `counter`: the base nonce XOR the counter as a 96-bit big-endian integer
/// (the counter is below 2^38, so only the last 5 bytes ever change).
pub(super) fn chunk_nonce(base_nonce: &[u8; NONCE_LEN], counter: u64) -> [u8; NONCE_LEN] {
    let mut nonce = *base_nonce;
    for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(counter.to_be_bytes()) {
        *n ^= c;
    }
    nonce
}

/// The per-message AEAD state shared by both directions.
struct ChunkKeys {
    aead: AeadKey,
    base_nonce: [u8; NONCE_LEN],
    /// Index of the next chunk to seal or open.
    counter: u64,
}

impl ChunkKeys {
    fn new(derived: &Derived) -> ChunkKeys {
        ChunkKeys {
            aead: AeadKey::new(&derived.key),
            base_nonce: derived.base_nonce,
            counter: 0,
        }
    }

    /// May chunk `counter` be sealed or opened? A full chunk must leave room for the final
    /// chunk after it (index at most 2^38 - 1), so it needs `counter < 2^38 - 1`.
    fn check_counter(&self, full: bool) -> Result<(), SealError> {
        let limit = if full { MAX_CHUNKS - 1 } else { MAX_CHUNKS };
        if self.counter < limit {
            Ok(())
        } else {
            Err(SealError::TooLong)
        }
    }

    fn nonce(&self) -> [u8; NONCE_LEN] {
        chunk_nonce(&self.base_nonce, self.counter)
    }
}

/// Streaming C2SP encryption of one message (Cobblestone-256: `AEAD_AES_256_GCM`, HKDF-SHA-512).
///
/// Feed plaintext with [`update`](Sealer::update), which returns sealed bytes each time a
/// 16 KiB chunk fills (the first output also carries the 56-byte salt and commitment), then
/// call [`finish`](Sealer::finish) for the short final chunk. Memory: one chunk, allocated in
/// [`new`](Sealer::new).
pub struct Sealer {
    keys: ChunkKeys,
    /// While `start > 0` (nothing output yet): salt and commitment, then the first chunk's
    /// plaintext; afterwards the current chunk only. After a chunk is sealed in place it holds
    /// that chunk's ciphertext and tag until the next call.
    buf: Vec<u8>,
    /// Where the current chunk's plaintext starts in `buf`.
    start: usize,
    /// `buf` holds output returned by the previous `update`: clear it first.
    emitted: bool,
    failed: Option<SealError>,
}

impl Sealer {
    /// Start sealing a message under `input_key` with a fresh `salt` and the application's
    /// `context` (any bytes, possibly empty; ferry files use [`FileHeader::context`]).
    ///
    /// The salt must never repeat for one input key: draw it from the OS RNG.
    ///
    /// [`FileHeader::context`]: super::FileHeader::context
    pub fn new(input_key: &SealKey, salt: &[u8; SALT_LEN], context: &[u8]) -> Sealer {
        let derived = derive(input_key, salt, context);
        let mut buf = Vec::with_capacity(PREFIX_LEN + SEALED_CHUNK_LEN);
        buf.extend_from_slice(salt);
        buf.extend_from_slice(&derived.commitment);
        Sealer {
            keys: ChunkKeys::new(&derived),
            buf,
            start: PREFIX_LEN,
            emitted: false,
            failed: None,
        }
    }

    /// Consume a prefix of `input` (advancing it) into the current chunk. When the chunk fills
    /// (16 KiB), seal it and return its ciphertext and tag (preceded by the salt and commitment
    /// the first time), valid until the next call; otherwise `input` is empty and `None` is
    /// returned. Call it until `input` is empty.
    ///
    /// # Errors
    /// [`SealError::TooLong`] past 2^38 chunks (sticky).
    pub fn update(&mut self, input: &mut &[u8]) -> Result<Option<&[u8]>, SealError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.reclaim();
        let room = self.start + CHUNK_LEN - self.buf.len();
        let (take, rest) = input.split_at(room.min(input.len()));
        self.buf.extend_from_slice(take);
        *input = rest;
        if self.buf.len() < self.start + CHUNK_LEN {
            return Ok(None);
        }
        // A full chunk is never the final one: seal it now.
        if let Err(e) = self.seal_chunk(true) {
            self.failed = Some(e);
            return Err(e);
        }
        Ok(Some(&self.buf))
    }

    /// End the message: seal the final chunk (shorter than 16 KiB, possibly empty) and return
    /// the remaining ciphertext (with the salt and commitment if nothing was output yet).
    ///
    /// # Errors
    /// The sticky error of an earlier call.
    pub fn finish(mut self) -> Result<Vec<u8>, SealError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.reclaim();
        self.seal_chunk(false)?;
        Ok(core::mem::take(&mut self.buf))
    }

    /// Tests only: pretend `counter` chunks were sealed already.
    #[cfg(test)]
    pub(super) fn set_counter(&mut self, counter: u64) {
        self.keys.counter = counter;
    }

    /// Drop the output returned by the previous call.
    fn reclaim(&mut self) {
        if self.emitted {
            self.buf.clear();
            self.start = 0;
            self.emitted = false;
        }
    }

    /// Seal `buf[start..]` in place as chunk `counter` and append its tag.
    fn seal_chunk(&mut self, full: bool) -> Result<(), SealError> {
        self.keys.check_counter(full)?;
        let nonce = self.keys.nonce();
        let tag = self
            .keys
            .aead
            .seal_in_place(&nonce, &[], &mut self.buf[self.start..]);
        self.buf.extend_from_slice(&tag);
        self.keys.counter += 1;
        self.emitted = true;
        Ok(())
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("chunks_sealed", &self.keys.counter)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Where an [`Opener`] is.
#[expect(
    clippy::large_enum_variant,
    reason = "one per stream, never moved in a loop; boxing would allocate after `new`"
)]
enum State {
    /// Collecting the salt and commitment in `buf`; the key and context wait for the salt.
    Prefix {
        input_key: SealKey,
        context: Vec<u8>,
    },
    /// Collecting chunks in `buf`.
    Chunks(ChunkKeys),
    Failed(SealError),
}

/// Streaming C2SP decryption of one message (Cobblestone-256: `AEAD_AES_256_GCM`, HKDF-SHA-512).
///
/// Feed ciphertext with [`update`](Opener::update): it checks the key commitment as soon as
/// the 56-byte salt and commitment are in, then returns the plaintext of each full chunk once
/// its tag verified (*chunk-verified*: authentic, at its position, but the message may still be
/// truncated). At the end of the ciphertext, [`finish`](Opener::finish) opens the short final
/// chunk; its `Ok` proves the message complete, making everything released *final-verified*.
/// Unverified plaintext is never released. Memory: one sealed chunk, allocated in
/// [`new`](Opener::new).
pub struct Opener {
    state: State,
    /// The salt and commitment, then the current sealed chunk (opened in place).
    buf: Vec<u8>,
    /// `buf` holds plaintext returned by the previous `update`: clear it first.
    emitted: bool,
    /// Plaintext bytes released by `update` so far.
    released: u64,
}

impl Opener {
    /// Start opening a message sealed under `input_key` with the same `context`.
    pub fn new(input_key: &SealKey, context: &[u8]) -> Opener {
        Opener {
            state: State::Prefix {
                input_key: input_key.clone(),
                context: context.to_vec(),
            },
            buf: Vec::with_capacity(SEALED_CHUNK_LEN),
            emitted: false,
            released: 0,
        }
    }

    /// Consume a prefix of `input` (advancing it). Returns the plaintext of a full chunk as
    /// soon as its tag verified (valid until the next call); otherwise `input` is empty and
    /// `None` is returned. Call it until `input` is empty, then call [`finish`](Self::finish)
    /// at the end of the ciphertext.
    ///
    /// Plaintext returned here is chunk-verified only: keep it away from its final
    /// destination until `finish` succeeded.
    ///
    /// # Errors
    /// [`SealError::WrongKey`] (commitment), [`SealError::Authentication`] (a chunk),
    /// [`SealError::TooLong`]. Sticky: every later call returns the same error.
    pub fn update(&mut self, input: &mut &[u8]) -> Result<Option<&[u8]>, SealError> {
        match self.step(input) {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(&self.buf)),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    /// End of the ciphertext: open the final chunk and return its plaintext. `Ok` means the
    /// whole message verified: every chunk, in order, and its length. Publish only now.
    ///
    /// # Errors
    /// [`SealError::Truncated`] if the salt and commitment are incomplete, if no bytes follow
    /// the last full chunk or fewer than a tag; [`SealError::Authentication`] if the final
    /// chunk does not verify; the sticky error of an earlier call.
    pub fn finish(mut self) -> Result<Vec<u8>, SealError> {
        let keys = match &mut self.state {
            State::Failed(e) => return Err(*e),
            // `update` processes the prefix as soon as all 56 bytes are in.
            State::Prefix { .. } => return Err(SealError::Truncated),
            State::Chunks(keys) => keys,
        };
        if self.emitted {
            self.buf.clear();
        }
        // `update` opens a chunk as soon as it is full, so what is left is shorter.
        let Some(body_len) = self.buf.len().checked_sub(TAG_LEN) else {
            return Err(SealError::Truncated);
        };
        keys.check_counter(false)?;
        open_chunk(keys, &mut self.buf)?;
        self.buf.truncate(body_len);
        Ok(core::mem::take(&mut self.buf))
    }

    /// Plaintext bytes released by [`update`](Self::update) so far (all chunk-verified).
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Tests only: once the prefix is processed, pretend `counter` chunks were opened already.
    #[cfg(test)]
    pub(super) fn set_counter(&mut self, counter: u64) {
        let State::Chunks(keys) = &mut self.state else {
            panic!("set_counter before the prefix was processed");
        };
        keys.counter = counter;
    }

    /// Process input until a chunk's plaintext is ready (`true`) or the input is used up.
    fn step(&mut self, input: &mut &[u8]) -> Result<bool, SealError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        if self.emitted {
            self.buf.clear();
            self.emitted = false;
        }
        if let State::Prefix { input_key, context } = &self.state {
            fill(&mut self.buf, input, PREFIX_LEN);
            if self.buf.len() < PREFIX_LEN {
                return Ok(false);
            }
            let (salt, commitment) = self.buf.split_at(SALT_LEN);
            let salt: &[u8; SALT_LEN] = salt.try_into().expect("split at SALT_LEN");
            let derived = derive(input_key, salt, context);
            if !bool::from(derived.commitment.ct_eq(commitment)) {
                return Err(SealError::WrongKey);
            }
            // Dropping the old state zeroizes the input key.
            self.state = State::Chunks(ChunkKeys::new(&derived));
            self.buf.clear();
        }
        let State::Chunks(keys) = &mut self.state else {
            unreachable!("the prefix state was handled above and failures returned early");
        };
        fill(&mut self.buf, input, SEALED_CHUNK_LEN);
        if self.buf.len() < SEALED_CHUNK_LEN {
            return Ok(false);
        }
        // A full-length chunk is never the final one: open it now.
        keys.check_counter(true)?;
        open_chunk(keys, &mut self.buf)?;
        self.buf.truncate(CHUNK_LEN);
        self.emitted = true;
        self.released += CHUNK_LEN as u64;
        Ok(true)
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Prefix { .. } => "prefix",
            State::Chunks(_) => "chunks",
            State::Failed(_) => "failed",
        };
        f.debug_struct("Opener")
            .field("state", &state)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}

/// Move bytes from `input` into `buf` until it holds `target` bytes or `input` is empty.
fn fill(buf: &mut Vec<u8>, input: &mut &[u8], target: usize) {
    let room = target.saturating_sub(buf.len());
    let (take, rest) = input.split_at(room.min(input.len()));
    buf.extend_from_slice(take);
    *input = rest;
}

/// Verify and decrypt `sealed` (a chunk's ciphertext and tag) in place as chunk `counter`,
/// then advance the counter. On failure no plaintext is released (see `crypto::aead`).
fn open_chunk(keys: &mut ChunkKeys, sealed: &mut [u8]) -> Result<(), SealError> {
    let nonce = keys.nonce();
    let (body, tag) = sealed.split_at_mut(sealed.len() - TAG_LEN);
    let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("split TAG_LEN from the end");
    keys.aead
        .open_in_place(&nonce, &[], body, tag)
        .map_err(|_| SealError::Authentication)?;
    keys.counter += 1;
    Ok(())
}
