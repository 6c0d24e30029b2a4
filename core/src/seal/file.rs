//! ferry's sealed-file header: the thin layer in front of the C2SP ciphertext.
//!
//! ```text
//! magic   16 bytes  "ferry-sealed/v1\n"
//! mode     1 byte   0x01 key file | 0x02 Argon2id passphrase
//! codec    1 byte   0x00 stored   | 0x01 deflate (raw RFC 1951 stream of the whole plaintext)
//! Argon2id only:
//!   m_cost u32 BE   memory in KiB
//!   t_cost u32 BE   passes
//!   p_cost u32 BE   lanes
//!   salt  16 bytes
//! ```
//!
//! followed by the C2SP ciphertext sealed with the context `"ferry/v1 sealed file" || header`.

use alloc::vec::Vec;

use super::{Opener, SALT_LEN, SealError, SealKey, Sealer};

/// The first line of every ferry sealed file; it names the format version.
pub const MAGIC: &[u8; 16] = b"ferry-sealed/v1\n";
/// The start of the C2SP context of ferry sealed files; the encoded header follows it.
pub const FERRY_CONTEXT: &[u8] = b"ferry/v1 sealed file";
/// Longest encoded header (Argon2id mode): 16 + 1 + 1 + 12 + 16 bytes.
pub const MAX_HEADER_LEN: usize = FIXED_LEN + ARGON2_LEN;

/// Magic, mode and codec.
const FIXED_LEN: usize = MAGIC.len() + 2;
/// Three `u32` parameters and the salt.
const ARGON2_LEN: usize = 12 + Argon2Params::SALT_LEN;
/// What every version's magic starts with.
const MAGIC_FAMILY: &[u8] = b"ferry-sealed/";

const MODE_KEY_FILE: u8 = 0x01;
const MODE_ARGON2ID: u8 = 0x02;
const CODEC_STORED: u8 = 0x00;
const CODEC_DEFLATE: u8 = 0x01;

/// How the C2SP input key of a sealed file is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// From a ferry key file, with [`SealKey::from_key_bytes`].
    KeyFile,
    /// From a passphrase: `SealKey::new(Argon2id(passphrase, salt, params))`, Argon2 version
    /// 0x13, 32-byte output, no secret and no associated data. The caller runs Argon2id.
    Argon2id(Argon2Params),
}

/// How the plaintext inside a sealed file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlaintextCodec {
    /// The plaintext is the file.
    #[default]
    Stored,
    /// The plaintext is one raw deflate stream (RFC 1951, no zlib header) of the file; the
    /// caller inflates it after opening.
    Deflate,
}

/// Argon2id parameters and salt, stored in the header of a passphrase-sealed file.
///
/// Bounded so that a hostile file cannot ask for absurd work: `1 <= p_cost <= 64`,
/// `8 * p_cost <= m_cost_kib <= 4 GiB` (Argon2's own minimum, and ferry's maximum),
/// `1 <= t_cost <= 64`. A caller may refuse smaller costs still (e.g. more memory than the
/// machine has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: [u8; Argon2Params::SALT_LEN],
}

impl Argon2Params {
    /// Length of the Argon2id salt (RFC 9106 recommends 16 bytes).
    pub const SALT_LEN: usize = 16;
    /// Largest accepted memory cost: 4 GiB, in KiB.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    /// Largest accepted number of passes.
    pub const MAX_T_COST: u32 = 64;
    /// Largest accepted number of lanes.
    pub const MAX_P_COST: u32 = 64;

    /// Parameters with a salt (from the OS RNG), checked against the bounds above.
    ///
    /// # Errors
    /// [`SealError::BadParameters`] when out of bounds.
    pub fn new(
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
        salt: [u8; Argon2Params::SALT_LEN],
    ) -> Result<Argon2Params, SealError> {
        let ok = (1..=Self::MAX_P_COST).contains(&p_cost)
            && (8 * p_cost..=Self::MAX_M_COST_KIB).contains(&m_cost_kib)
            && (1..=Self::MAX_T_COST).contains(&t_cost);
        if ok {
            Ok(Argon2Params {
                m_cost_kib,
                t_cost,
                p_cost,
                salt,
            })
        } else {
            Err(SealError::BadParameters)
        }
    }

    /// RFC 9106 §4's second recommended option (64 MiB, 3 passes, 4 lanes) with `salt`.
    pub fn recommended(salt: [u8; Argon2Params::SALT_LEN]) -> Argon2Params {
        Argon2Params {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 4,
            salt,
        }
    }

    /// Whether these costs are within `limit` (every cost at most its maximum).
    ///
    /// # Errors
    /// [`SealError::CostTooHigh`] when any cost exceeds its maximum.
    pub fn check_cost(&self, limit: &Argon2CostLimit) -> Result<(), SealError> {
        if self.m_cost_kib <= limit.max_m_cost_kib
            && self.t_cost <= limit.max_t_cost
            && self.p_cost <= limit.max_p_cost
        {
            Ok(())
        } else {
            Err(SealError::CostTooHigh)
        }
    }

    /// Memory cost in KiB.
    pub fn m_cost_kib(&self) -> u32 {
        self.m_cost_kib
    }

    /// Number of passes.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Degree of parallelism (lanes).
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }

    /// The Argon2id salt.
    pub fn salt(&self) -> &[u8; Argon2Params::SALT_LEN] {
        &self.salt
    }
}

/// The most Argon2id work an opener agrees to do for a header, checked with
/// [`Argon2Params::check_cost`] before running Argon2id.
///
/// The header is not authenticated until the key it derives opens the file, so anyone who can
/// hand a user a file chooses these costs; [`Argon2Params::new`]'s bounds (4 GiB, 64 passes)
/// only keep them finite. [`Argon2CostLimit::DEFAULT`] allows every ferry-sealed file (64 MiB,
/// 3 passes, 4 lanes) with room to spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2CostLimit {
    /// Largest memory cost, in KiB.
    pub max_m_cost_kib: u32,
    /// Largest number of passes.
    pub max_t_cost: u32,
    /// Largest number of lanes.
    pub max_p_cost: u32,
}

impl Argon2CostLimit {
    /// 1 GiB of memory, 8 passes, 16 lanes.
    pub const DEFAULT: Argon2CostLimit = Argon2CostLimit {
        max_m_cost_kib: 1024 * 1024,
        max_t_cost: 8,
        max_p_cost: 16,
    };
}

impl Default for Argon2CostLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The header of a ferry sealed file (not part of C2SP): format version, key source and
/// plaintext codec. See the module docs for the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// How the input key is obtained.
    pub key: KeySource,
    /// How the plaintext is encoded.
    pub codec: PlaintextCodec,
}

impl FileHeader {
    /// Length of this header once encoded: 18 bytes, or 46 with Argon2id.
    pub fn encoded_len(&self) -> usize {
        match self.key {
            KeySource::KeyFile => FIXED_LEN,
            KeySource::Argon2id(_) => FIXED_LEN + ARGON2_LEN,
        }
    }

    /// The header's bytes, to write before the sealer's output.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.push(match self.key {
            KeySource::KeyFile => MODE_KEY_FILE,
            KeySource::Argon2id(_) => MODE_ARGON2ID,
        });
        out.push(match self.codec {
            PlaintextCodec::Stored => CODEC_STORED,
            PlaintextCodec::Deflate => CODEC_DEFLATE,
        });
        if let KeySource::Argon2id(p) = &self.key {
            out.extend_from_slice(&p.m_cost_kib.to_be_bytes());
            out.extend_from_slice(&p.t_cost.to_be_bytes());
            out.extend_from_slice(&p.p_cost.to_be_bytes());
            out.extend_from_slice(&p.salt);
        }
        out
    }

    /// Parse a header from the start of a file. `Ok(None)`: `input` is a valid but incomplete
    /// start (at most [`MAX_HEADER_LEN`] bytes are ever needed; at the end of the file that
    /// means [`SealError::Truncated`]). `Ok(Some((header, len)))`: the C2SP ciphertext starts
    /// at `input[len..]`.
    ///
    /// # Errors
    /// [`SealError::NotSealedFile`] (no magic), [`SealError::Unsupported`] (another format
    /// version, unknown mode or codec), [`SealError::BadParameters`] (Argon2id bounds).
    pub fn decode(input: &[u8]) -> Result<Option<(FileHeader, usize)>, SealError> {
        let seen = input.len().min(MAGIC.len());
        if input[..seen] != MAGIC[..seen] {
            let family = seen.min(MAGIC_FAMILY.len());
            return Err(
                if seen > MAGIC_FAMILY.len() && input[..family] == MAGIC_FAMILY[..family] {
                    SealError::Unsupported
                } else {
                    SealError::NotSealedFile
                },
            );
        }
        let Some(&[mode, codec]) = input.get(MAGIC.len()..FIXED_LEN) else {
            return Ok(None);
        };
        let codec = match codec {
            CODEC_STORED => PlaintextCodec::Stored,
            CODEC_DEFLATE => PlaintextCodec::Deflate,
            _ => return Err(SealError::Unsupported),
        };
        let key = match mode {
            MODE_KEY_FILE => KeySource::KeyFile,
            MODE_ARGON2ID => {
                let Some(p) = input.get(FIXED_LEN..FIXED_LEN + ARGON2_LEN) else {
                    return Ok(None);
                };
                let word = |i: usize| u32::from_be_bytes(p[i..i + 4].try_into().expect("4 bytes"));
                let salt = p[12..].try_into().expect("ARGON2_LEN - 12 = SALT_LEN");
                KeySource::Argon2id(Argon2Params::new(word(0), word(4), word(8), salt)?)
            }
            _ => return Err(SealError::Unsupported),
        };
        let header = FileHeader { key, codec };
        Ok(Some((header, header.encoded_len())))
    }

    /// The C2SP context of a file with this header: `"ferry/v1 sealed file" || header`. Binding
    /// the header here makes any change to it fail the key commitment ([`SealError::WrongKey`]).
    pub fn context(&self) -> Vec<u8> {
        let mut context = Vec::with_capacity(FERRY_CONTEXT.len() + self.encoded_len());
        context.extend_from_slice(FERRY_CONTEXT);
        context.extend_from_slice(&self.encode());
        context
    }

    /// A [`Sealer`] for the C2SP ciphertext after this header, bound to it.
    pub fn sealer(&self, input_key: &SealKey, salt: &[u8; SALT_LEN]) -> Sealer {
        Sealer::new(input_key, salt, &self.context())
    }

    /// An [`Opener`] for the C2SP ciphertext after this header, bound to it.
    pub fn opener(&self, input_key: &SealKey) -> Opener {
        Opener::new(input_key, &self.context())
    }
}
