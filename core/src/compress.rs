//! Per-chunk raw deflate for DATA frames (security.md §3.4 rule 4, §3.6).
//!
//! Every chunk is compressed on its own: the compressor is reset before each call, so no
//! dictionary is shared across chunks or files. The sender keeps a compressed chunk only when it
//! is smaller than the plaintext and stores it otherwise. The receiver inflates into a buffer of
//! exactly the declared plain length, so a deflate bomb stops at that bound and never grows
//! memory. Both sides reuse one boxed miniz_oxide state per session: no allocation per chunk.

mod gate;
use alloc::boxed::Box;
pub(crate) use gate::RateGate;

use crate::wire::CHUNK;

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress as deflate_core,
    create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{
    DecompressorOxide, decompress as inflate_core,
    inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};

/// The level ferry's senders deflate at. miniz's level 1 is a special greedy mode: on log-like
/// text it gets 2.85:1 at ~190 MB/s, level 2 gets 3.64:1 at ~150 MB/s (64 KiB chunks), so 2
/// moves more data per second over any link slow enough for compression to pay.
pub(crate) const LEVEL: u8 = 2;

/// `window_bits` for `create_comp_flags_from_zip_params`: negative means raw deflate (no zlib
/// header or Adler-32 trailer), 15 is the full 32 KiB window.
const RAW_WINDOW_BITS: i32 = -15;

/// miniz/zlib "default strategy".
const DEFAULT_STRATEGY: i32 = 0;

/// Per-chunk raw deflate (no zlib header), independent per chunk (reset for every call: no
/// shared dictionary across chunks).
pub(crate) struct Deflater {
    /// Boxed: the compressor keeps a 64 KiB LZ code buffer inline.
    state: Box<CompressorOxide>,
}

impl Deflater {
    /// `level` 1..=9 (miniz levels); ferry sends at [`LEVEL`].
    ///
    /// Out-of-range levels are clamped: 0 (stored only, never pays) becomes 1 and anything
    /// above 9 becomes 9.
    pub(crate) fn new(level: u8) -> Self {
        let level = i32::from(level.clamp(1, 9));
        let flags = create_comp_flags_from_zip_params(level, RAW_WINDOW_BITS, DEFAULT_STRATEGY);
        Deflater {
            state: Box::new(CompressorOxide::new(flags)),
        }
    }

    /// Compress `input` (<= CHUNK) into `out`. Returns `Some(n)` only if the whole raw-deflate
    /// stream fits in `out` AND `n < input.len()` (deflate pays); `None` otherwise (caller
    /// stores the chunk). Never writes past `out`; on `None` the contents of `out` are
    /// unspecified.
    ///
    /// Empty input and input longer than [`CHUNK`] give `None`. Output is capped at
    /// `input.len() - 1` bytes, so miniz stops at the first block that would not fit.
    /// (On wasm32 miniz_oxide's reset reallocates its LZ buffer; elsewhere nothing is
    /// allocated.)
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        if input.is_empty() || input.len() > CHUNK {
            return None;
        }
        // Anything of `input.len()` bytes or more does not pay, so never let deflate write it.
        let limit = out.len().min(input.len() - 1);
        let out = out.get_mut(..limit)?;
        // Fresh stream for every chunk: no dictionary survives from the previous one.
        self.state.reset();
        let (status, consumed, written) =
            deflate_core(&mut self.state, input, out, TDEFLFlush::Finish);
        // `Done` means the final block was emitted and flushed completely into `out`; `Okay`
        // with `Finish` means output is still pending (it did not fit).
        if status == TDEFLStatus::Done && consumed == input.len() && written <= limit {
            Some(written)
        } else {
            None
        }
    }
}

/// Why a DATA chunk could not be inflated to its declared length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The bytes are not a complete, valid raw-deflate stream (bad block, bad code, distance
    /// before the start of the output, or input that ends before the final block).
    Corrupt,
    /// The stream would produce more than the declared length (deflate bomb); inflation
    /// stopped at the bound.
    TooLong,
    /// The stream ended (final block complete) with fewer bytes than the declared length.
    TooShort,
    /// Input bytes remain after the final block of an otherwise exact stream.
    TrailingInput,
}

/// Reusable inflater (boxed DecompressorOxide so sessions don't put ~11 KiB on the stack).
pub(crate) struct Inflater {
    /// Decoder state; re-initialised at the start of every chunk.
    state: Box<DecompressorOxide>,
}

impl Inflater {
    /// A fresh inflater; allocates its decoder state once.
    pub(crate) fn new() -> Self {
        Inflater {
            state: Box::default(),
        }
    }

    /// Inflate one raw-deflate chunk into exactly `out` (`out.len()` == the declared plain
    /// length, <= CHUNK).
    ///
    /// `Err(TooLong)` if the stream would produce more than `out.len()` bytes (deflate bomb:
    /// stop at the bound, never grow memory), `Err(TooShort)` if it ends early,
    /// `Err(TrailingInput)` if input bytes remain after the final block, `Err(Corrupt)` on a
    /// bad stream (including one cut off before its final block). A stream that both ends
    /// early and has trailing bytes is `TooShort`. On error the contents of `out` are
    /// unspecified. Nothing is allocated.
    pub(crate) fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(), InflateError> {
        // Each chunk is an independent stream: start from the block-header state.
        self.state.init();
        // Non-wrapping: `out` is the whole window, back-references before its start are
        // rejected. No `HAS_MORE_INPUT`: the chunk is all the input there is.
        let (status, consumed, written) = inflate_core(
            &mut self.state,
            input,
            out,
            0,
            TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        );
        match status {
            TINFLStatus::Done if written < out.len() => Err(InflateError::TooShort),
            TINFLStatus::Done if consumed < input.len() => Err(InflateError::TrailingInput),
            TINFLStatus::Done => Ok(()),
            // Output is full and the stream still wants to write.
            TINFLStatus::HasMoreOutput => Err(InflateError::TooLong),
            _ => Err(InflateError::Corrupt),
        }
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

/// When the sender compresses DATA chunks.
///
/// Compression before encryption makes record sizes depend on content (CRIME-style leak when
/// attacker-influenced and secret bytes share a chunk), so it is off by default; CONTROL frames
/// are never compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Never compress; every chunk is sent stored.
    #[default]
    Off,
    /// Try deflate on every chunk; keep it only when it is smaller than the plaintext.
    On,
    /// Like `On`, but after chunks that do not pay (compressed to 7/8 of the input or more),
    /// skip an exponentially growing number of chunks (1, 2, 4 ... 64) before trying again.
    Auto,
}

/// Longest run of chunks `Compression::Auto` skips after a chunk that did not pay.
const MAX_SKIP: u32 = 64;

/// Decides per chunk whether to try deflate, for `Compression::Auto`: try; when a chunk does
/// not pay (compressed >= 7/8 of input or None), skip the next 1, 2, 4 ... up to 64 chunks
/// before trying again (exponential back-off, reset to 0 on a chunk that pays). On: always
/// try. Off: never.
#[derive(Debug, Clone)]
pub(crate) struct CompressPolicy {
    /// The configured mode.
    mode: Compression,
    /// Chunks still to skip before the next attempt (`Auto` only).
    skip: u32,
    /// Length of the last skip run; 0 after a chunk that paid (`Auto` only).
    backoff: u32,
}

impl CompressPolicy {
    /// A policy for `mode`, starting with no back-off.
    pub(crate) fn new(mode: Compression) -> Self {
        CompressPolicy {
            mode,
            skip: 0,
            backoff: 0,
        }
    }

    /// What [`should_try`](Self::should_try) would answer, without consuming anything.
    pub(crate) fn would_try(&self) -> bool {
        match self.mode {
            Compression::Off => false,
            Compression::On => true,
            Compression::Auto => self.skip == 0,
        }
    }

    /// Whether to try deflate on the next chunk. Call once per DATA chunk; a `false` under
    /// `Auto` consumes one skipped chunk.
    pub(crate) fn should_try(&mut self) -> bool {
        match self.mode {
            Compression::Off => false,
            Compression::On => true,
            Compression::Auto => {
                if self.skip > 0 {
                    self.skip -= 1;
                    false
                } else {
                    true
                }
            }
        }
    }

    /// Report the result of an attempt: `input_len` plaintext bytes, `output` as returned by
    /// [`Deflater::compress`]. Only `Auto` keeps state; an empty chunk says nothing and is
    /// ignored.
    pub(crate) fn record(&mut self, input_len: usize, output: Option<usize>) {
        if self.mode != Compression::Auto || input_len == 0 {
            return;
        }
        // Pays when compressed * 8 < input * 7 (strictly below 7/8); saturating so no overflow.
        let pays = output.is_some_and(|n| n.saturating_mul(8) < input_len.saturating_mul(7));
        if pays {
            self.backoff = 0;
            self.skip = 0;
        } else {
            self.backoff = if self.backoff == 0 {
                1
            } else {
                self.backoff.saturating_mul(2).min(MAX_SKIP)
            };
            self.skip = self.backoff;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Deterministic filler (splitmix64), so "random" fixtures replay bit for bit.
    fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            for b in z.to_le_bytes() {
                if v.len() < len {
                    v.push(b);
                }
            }
        }
        v
    }

    /// Compress with a fresh deflater (the sending level) into a CHUNK buffer.
    fn deflate(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; CHUNK];
        let n = Deflater::new(LEVEL).compress(input, &mut out)?;
        out.truncate(n);
        Some(out)
    }

    /// Inflate into a buffer of exactly `plain_len` bytes.
    fn inflate(input: &[u8], plain_len: usize) -> Result<Vec<u8>, InflateError> {
        let mut out = vec![0u8; plain_len];
        Inflater::new().inflate(input, &mut out)?;
        Ok(out)
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("test fixture is valid hex")
    }

    /// Compressible data: a short random pattern repeated, with sparse random edits.
    fn compressible() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(any::<u8>(), 1..64),
            1024usize..=CHUNK,
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..16),
        )
            .prop_map(|(pattern, len, edits)| {
                let mut v: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
                for (at, b) in edits {
                    let i = at % len;
                    v[i] = b;
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary bytes of every entropy (alphabet 0..=max): when deflate claims to pay,
        /// it really is shorter and inflates back to the input, at both level extremes.
        #[test]
        fn roundtrip_arbitrary(
            data in (0u8..=255).prop_flat_map(|max| proptest::collection::vec(0..=max, 0..=CHUNK)),
            level in prop_oneof![Just(1u8), Just(9u8)],
        ) {
            let mut out = vec![0u8; CHUNK];
            if let Some(n) = Deflater::new(level).compress(&data, &mut out) {
                prop_assert!(n < data.len());
                prop_assert_eq!(inflate(&out[..n], data.len()), Ok(data));
            }
        }

        /// Repeated patterns always pay and round-trip.
        #[test]
        fn roundtrip_compressible(data in compressible()) {
            let packed = deflate(&data);
            prop_assert!(packed.is_some(), "compressible data of {} bytes did not pay", data.len());
            let packed = packed.unwrap_or_default();
            prop_assert!(packed.len() * 8 < data.len() * 7);
            prop_assert_eq!(inflate(&packed, data.len()), Ok(data));
        }

        /// Any input: the inflater never panics, and succeeds only with exactly the declared
        /// length and no trailing byte.
        #[test]
        fn inflate_arbitrary_input_never_panics(
            input in proptest::collection::vec(any::<u8>(), 0..512),
            plain_len in 0usize..2048,
        ) {
            let mut out = vec![0u8; plain_len];
            let _ = Inflater::new().inflate(&input, &mut out);
        }
    }

    #[test]
    fn random_data_does_not_pay() {
        for (len, seed) in [
            (1, 1),
            (2, 2),
            (100, 3),
            (4096, 4),
            (CHUNK - 1, 5),
            (CHUNK, 6),
        ] {
            let data = pseudo_random(len, seed);
            for level in [1, 6, 9] {
                let mut out = vec![0u8; CHUNK + 1024];
                assert_eq!(
                    Deflater::new(level).compress(&data, &mut out),
                    None,
                    "len {len} level {level}"
                );
            }
        }
    }

    #[test]
    fn empty_and_oversized_input_are_stored() {
        let mut out = vec![0u8; 2 * CHUNK];
        let mut d = Deflater::new(LEVEL);
        assert_eq!(d.compress(&[], &mut out), None);
        assert_eq!(d.compress(&vec![0u8; CHUNK + 1], &mut out), None);
        // A full chunk of zeros is fine.
        assert!(d.compress(&vec![0u8; CHUNK], &mut out).is_some());
    }

    #[test]
    fn output_must_fit_whole_stream() {
        let data = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(20);
        let packed = deflate(&data).expect("repetitive data pays");
        let n = packed.len();
        let mut d = Deflater::new(LEVEL);
        // Exactly enough room: same bytes.
        let mut out = vec![0u8; n];
        assert_eq!(d.compress(&data, &mut out), Some(n));
        assert_eq!(out, packed);
        // One byte short, or nothing at all: stored, and nothing past `out` is touched.
        let mut buf = vec![0xEEu8; n + 8];
        assert_eq!(d.compress(&data, &mut buf[..n - 1]), None);
        assert!(buf[n - 1..].iter().all(|&b| b == 0xEE));
        assert_eq!(d.compress(&data, &mut []), None);
        // The deflater is still usable afterwards.
        assert_eq!(d.compress(&data, &mut out), Some(n));
        assert_eq!(out, packed);
    }

    #[test]
    fn not_paying_by_one_byte_is_none() {
        // A tiny input whose stream is at least as long as itself.
        let mut out = vec![0u8; 64];
        let mut d = Deflater::new(LEVEL);
        for input in [&b"a"[..], b"ab", b"abc", b"abcd"] {
            assert_eq!(d.compress(input, &mut out), None, "{input:?}");
        }
    }

    #[test]
    fn chunks_are_independent() {
        let a = b"the quick brown fox jumps over the lazy dog ".repeat(40);
        // B repeats A's content: a shared dictionary would shrink it.
        let mut b = a.clone();
        b.extend_from_slice(b"and then something else entirely, 0123456789");
        for level in [1, 6, 9] {
            let mut fresh = Deflater::new(level);
            let mut out_alone = vec![0u8; CHUNK];
            let n_alone = fresh.compress(&b, &mut out_alone).expect("pays");

            let mut used = Deflater::new(level);
            let mut scratch = vec![0u8; CHUNK];
            assert!(used.compress(&a, &mut scratch).is_some());
            // Also leave the deflater after a failed (too small) call.
            assert_eq!(used.compress(&a, &mut scratch[..3]), None);
            let mut out_after = vec![0u8; CHUNK];
            let n_after = used.compress(&b, &mut out_after).expect("pays");

            assert_eq!(out_after[..n_after], out_alone[..n_alone], "level {level}");
            assert_eq!(inflate(&out_after[..n_after], b.len()), Ok(b.clone()));
        }
    }

    #[test]
    fn known_vectors_inflate() {
        let dynamic_text: Vec<u8> = [
            &b"the quick brown fox jumps over the lazy dog; ".repeat(3)[..],
            b"pack my box with five dozen liquor jugs.",
        ]
        .concat();
        // Raw deflate from python's zlib.compressobj(level, zlib.DEFLATED, -15).
        let cases: [(&str, &[u8]); 4] = [
            // Fixed Huffman block (level 9).
            ("cb48cdc9c957c8409000", b"hello hello hello"),
            // Stored block (level 0).
            ("010500faff6665727279", b"ferry"),
            // Hand-built fixed block: literal 'a', then length 3 at distance 1.
            ("4b040200", b"aaaa"),
            // Dynamic Huffman block (level 9).
            (
                "b5cbc91180300c43d15654010d504d02cec212670f503d1e7ae0a8f94fd51152f3cb0e9d790418\
                 beb0b5331670a78c2af950cf8d95edfcad7f7054e2ce1b5ad0f0d5c1f84e921e0a387c6a9ce5\
                 6bcbf402",
                &dynamic_text,
            ),
        ];
        let mut inf = Inflater::new();
        for (hex, text) in cases {
            let stream = unhex(hex);
            let mut out = vec![0u8; text.len()];
            assert_eq!(inf.inflate(&stream, &mut out), Ok(()), "{hex}");
            assert_eq!(out, text);
        }
        // Our own output for the same text is accepted too.
        let hello = b"hello hello hello";
        let mut out = [0u8; 16];
        let n = Deflater::new(LEVEL)
            .compress(hello, &mut out)
            .expect("pays");
        assert_eq!(inflate(&out[..n], hello.len()), Ok(hello.to_vec()));
    }

    #[test]
    fn corrupt_vectors() {
        let cases: [(&str, &str); 5] = [
            ("07", "block type 3 is reserved"),
            ("010500fbff6665727279", "stored block with bad NLEN"),
            // Fixed block: literal 'a' then length 3 at distance 2 (only 1 byte written);
            // python's zlib says "invalid distance too far back".
            ("4b044200", "distance before start of output"),
            ("", "empty input has no final block"),
            ("cb48cdc9c957c8", "cut inside a block"),
        ];
        for (hex, why) in cases {
            let got = inflate(&unhex(hex), 17);
            assert_eq!(got, Err(InflateError::Corrupt), "{why}");
        }
    }

    #[test]
    fn deflate_bomb_stops_at_bound() {
        // 1 MiB of zeros deflates to about a kilobyte.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 1 << 20], 9);
        assert!(bomb.len() < 4096, "bomb is {} bytes", bomb.len());
        let mut out = vec![0xAAu8; CHUNK];
        let mut inf = Inflater::new();
        assert_eq!(inf.inflate(&bomb, &mut out), Err(InflateError::TooLong));
        // It filled exactly the bound with the real data and went no further.
        assert!(out.iter().all(|&b| b == 0));
        // Declared length 0: the first output byte is already too long.
        assert_eq!(inf.inflate(&bomb, &mut []), Err(InflateError::TooLong));
        // One byte less than the real length is too long as well.
        let data = b"hello hello hello";
        assert_eq!(
            inflate(&unhex("cb48cdc9c957c8409000"), data.len() - 1),
            Err(InflateError::TooLong)
        );
    }

    #[test]
    fn truncated_stream_is_rejected() {
        let data = b"the quick brown fox jumps over the lazy dog ".repeat(50);
        let packed = deflate(&data).expect("pays");
        let mut inf = Inflater::new();
        let mut out = vec![0u8; data.len()];
        for cut in 0..packed.len() {
            let got = inf.inflate(&packed[..cut], &mut out);
            assert!(
                matches!(got, Err(InflateError::TooShort | InflateError::Corrupt)),
                "cut at {cut}/{}: {got:?}",
                packed.len()
            );
        }
        assert_eq!(inf.inflate(&packed, &mut out), Ok(()));
        assert_eq!(out, data);
    }

    #[test]
    fn trailing_input_is_rejected() {
        let data = b"hello hello hello";
        let mut stream = unhex("cb48cdc9c957c8409000");
        let mut inf = Inflater::new();
        let mut out = [0u8; 17];
        for extra in [&[0u8][..], &[0xFF][..], &b"garbage"[..], &stream[..]] {
            let mut s = stream.clone();
            s.extend_from_slice(extra);
            assert_eq!(
                inf.inflate(&s, &mut out),
                Err(InflateError::TrailingInput),
                "extra {extra:?}"
            );
        }
        // The exact stream still passes on the same inflater.
        assert_eq!(inf.inflate(&stream, &mut out), Ok(()));
        assert_eq!(&out, data);
        // Trailing bytes on our own output too.
        let big = vec![7u8; 1000];
        stream = deflate(&big).expect("pays");
        stream.push(0);
        assert_eq!(
            inflate(&stream, big.len()),
            Err(InflateError::TrailingInput)
        );
    }

    #[test]
    fn declared_length_longer_than_real_is_too_short() {
        let stream = unhex("cb48cdc9c957c8409000");
        assert_eq!(inflate(&stream, 18), Err(InflateError::TooShort));
        assert_eq!(inflate(&stream, CHUNK), Err(InflateError::TooShort));
        let data = vec![1u8; 5000];
        let packed = deflate(&data).expect("pays");
        assert_eq!(inflate(&packed, 5001), Err(InflateError::TooShort));
        assert_eq!(inflate(&packed, 5000), Ok(data));
    }

    #[test]
    fn inflater_recovers_after_errors() {
        let mut inf = Inflater::new();
        let mut out = [0u8; 17];
        assert!(inf.inflate(&unhex("07"), &mut out).is_err());
        assert!(inf.inflate(&unhex("cb48cd"), &mut out).is_err());
        assert_eq!(
            inf.inflate(&unhex("cb48cdc9c957c8409000"), &mut out),
            Ok(())
        );
        assert_eq!(&out, b"hello hello hello");
    }

    /// Drive `policy` for `chunks` chunks, each of which compresses to `output` of 1000 bytes;
    /// returns which chunks were tried.
    fn drive(policy: &mut CompressPolicy, chunks: usize, output: Option<usize>) -> Vec<bool> {
        (0..chunks)
            .map(|_| {
                let tried = policy.should_try();
                if tried {
                    policy.record(1000, output);
                }
                tried
            })
            .collect()
    }

    /// Expected try/skip pattern from a run length list: try once, then skip `n`.
    fn pattern(skips: &[usize]) -> Vec<bool> {
        let mut v = Vec::new();
        for &n in skips {
            v.push(true);
            v.extend(core::iter::repeat_n(false, n));
        }
        v
    }

    #[test]
    fn auto_policy_backs_off_exponentially() {
        let mut p = CompressPolicy::new(Compression::Auto);
        let skips = [1, 2, 4, 8, 16, 32, 64, 64, 64];
        let expected = pattern(&skips);
        assert_eq!(drive(&mut p, expected.len(), None), expected);

        // A chunk that pays resets the back-off: try every chunk again.
        let mut p = CompressPolicy::new(Compression::Auto);
        let warmup = pattern(&[1, 2, 4]);
        assert_eq!(drive(&mut p, warmup.len(), Some(1001)), warmup);
        assert_eq!(drive(&mut p, 3, Some(100)), [true, true, true]);
        // And the next failure starts again at 1.
        let again = pattern(&[1, 2]);
        assert_eq!(drive(&mut p, again.len(), None), again);
    }

    #[test]
    fn auto_policy_threshold_is_seven_eighths() {
        let cases = [
            (Some(874), true),
            (Some(875), false), // exactly 7/8 of 1000
            (Some(999), false),
            (None, false),
            (Some(0), true),
        ];
        for (output, pays) in cases {
            let mut p = CompressPolicy::new(Compression::Auto);
            assert!(p.should_try());
            p.record(1000, output);
            assert_eq!(p.should_try(), pays, "{output:?}");
        }
        // Empty chunks tell nothing.
        let mut p = CompressPolicy::new(Compression::Auto);
        p.record(0, None);
        assert!(p.should_try());
    }

    #[test]
    fn on_and_off_policies_ignore_results() {
        let mut on = CompressPolicy::new(Compression::On);
        assert!(drive(&mut on, 200, None).iter().all(|&t| t));
        let mut off = CompressPolicy::new(Compression::Off);
        assert!(drive(&mut off, 200, Some(1)).iter().all(|&t| !t));
        assert_eq!(Compression::default(), Compression::Off);
    }
}
