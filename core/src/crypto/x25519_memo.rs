//! A memo of X25519 results for fuzz builds only (`cfg(fuzzing)`; compiled under `cfg(test)`
//! to test it, never in a normal build).
//!
//! The fuzz targets run the same fixed-seed sessions millions of times, so they compute the
//! same few X25519 products again and again: in the datagram targets those scalar
//! multiplications were a quarter of every execution. X25519 is a pure function of its two
//! 32-byte inputs, so remembering the latest results changes no output, only the time.
//!
//! [`SLOTS`] entries, two candidate slots per input, the least recently used one replaced (so
//! that the few inputs of one session never keep evicting each other), each guarded by a
//! sequence number (a seqlock made of atomics, no `unsafe`): a writer that finds a slot busy
//! skips caching, a reader that sees the slot change under it misses. A miss only costs the
//! computation.

use core::sync::atomic::{AtomicU64, Ordering, fence};

/// Entries of the memo.
const SLOTS: usize = 64;
/// Words of one entry: kind, secret (4), public (4), result present, result (4).
const WORDS: usize = 14;

/// What was computed: a shared secret or a public key (whose `public` input is unused).
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Shared = 1,
    Public = 2,
}

struct Slot {
    /// Even: stable; odd: being written.
    seq: AtomicU64,
    /// When it was last written or read ([`CLOCK`]; 0: never): the older candidate goes.
    used: AtomicU64,
    words: [AtomicU64; WORDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU64::new(0),
    used: AtomicU64::new(0),
    words: [const { AtomicU64::new(0) }; WORDS],
};

static MEMO: [Slot; SLOTS] = [EMPTY; SLOTS];
/// Counts uses of the memo (the `used` stamps).
static CLOCK: AtomicU64 = AtomicU64::new(0);

fn touch(s: &Slot) {
    s.used
        .store(CLOCK.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The little-endian word of an 8-byte chunk (of `chunks_exact(8)`).
fn word(c: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    u64::from_le_bytes(b)
}

fn key(kind: Kind, secret: &[u8; 32], public: &[u8; 32]) -> [u64; 9] {
    let mut k = [0u64; 9];
    k[0] = kind as u64;
    for (i, c) in secret
        .chunks_exact(8)
        .chain(public.chunks_exact(8))
        .enumerate()
    {
        k[1 + i] = word(c);
    }
    k
}

/// The two slots an input may live in.
fn slots(k: &[u64; 9]) -> [&'static Slot; 2] {
    let h = k
        .iter()
        .fold(0u64, |h, &w| (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let a = (h >> 32) as usize % SLOTS;
    let b = (h >> 48) as usize % SLOTS;
    [&MEMO[a], &MEMO[if b == a { (a + 1) % SLOTS } else { b }]]
}

fn lookup(k: &[u64; 9]) -> Option<Option<[u8; 32]>> {
    slots(k).into_iter().find_map(|s| read(s, k))
}

fn read(s: &Slot, k: &[u64; 9]) -> Option<Option<[u8; 32]>> {
    let before = s.seq.load(Ordering::Acquire);
    if before == 0 || before & 1 == 1 {
        return None;
    }
    let mut w = [0u64; WORDS];
    for (o, a) in w.iter_mut().zip(&s.words) {
        *o = a.load(Ordering::Relaxed);
    }
    fence(Ordering::Acquire);
    if s.seq.load(Ordering::Relaxed) != before || w[..9] != k[..] {
        return None;
    }
    touch(s);
    if w[9] == 0 {
        return Some(None);
    }
    let mut out = [0u8; 32];
    for (c, v) in out.chunks_exact_mut(8).zip(&w[10..]) {
        c.copy_from_slice(&v.to_le_bytes());
    }
    Some(Some(out))
}

fn store(k: &[u64; 9], result: Option<[u8; 32]>) {
    // The least recently used candidate (an empty one never was).
    let [a, b] = slots(k);
    let s = if a.used.load(Ordering::Relaxed) <= b.used.load(Ordering::Relaxed) {
        a
    } else {
        b
    };
    let seq = s.seq.load(Ordering::Relaxed);
    if seq & 1 == 1
        || s.seq
            .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    fence(Ordering::Release);
    let mut w = [0u64; WORDS];
    w[..9].copy_from_slice(k);
    if let Some(r) = result {
        w[9] = 1;
        for (v, c) in w[10..].iter_mut().zip(r.chunks_exact(8)) {
            *v = word(c);
        }
    }
    for (a, v) in s.words.iter().zip(w) {
        a.store(v, Ordering::Relaxed);
    }
    s.seq.store(seq + 2, Ordering::Release);
    touch(s);
}

/// `compute()`'s result for these inputs: remembered, or computed and remembered.
pub(crate) fn cached(
    kind: Kind,
    secret: &[u8; 32],
    public: &[u8; 32],
    compute: impl FnOnce() -> Option<[u8; 32]>,
) -> Option<[u8; 32]> {
    let k = key(kind, secret, public);
    if let Some(r) = lookup(&k) {
        return r;
    }
    let r = compute();
    store(&k, r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::kdf;

    fn uncached(secret: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
        kdf::x25519(secret, public).ok().map(|z| *z)
    }

    fn input(i: u8) -> ([u8; 32], [u8; 32]) {
        let secret = [i.wrapping_mul(37) ^ 0x5a; 32];
        let public = if i.is_multiple_of(5) {
            [0u8; 32] // small order: the result is refused
        } else {
            kdf::x25519_public(&[i; 32])
        };
        (secret, public)
    }

    /// The memo answers exactly what X25519 computes (non-contributory results included),
    /// across evictions (three times more inputs than slots); the few inputs of one handshake,
    /// asked again and again, are computed once (two of them sharing a slot once made every
    /// execution recompute its DH).
    #[test]
    fn the_memo_answers_what_x25519_computes() {
        let inputs: alloc::vec::Vec<_> = (0..3 * SLOTS as u8).map(input).collect();
        for _ in 0..2 {
            for (secret, public) in &inputs {
                let got = cached(Kind::Shared, secret, public, || uncached(secret, public));
                assert_eq!(got, uncached(secret, public));
                let public_key = cached(Kind::Public, secret, secret, || {
                    Some(kdf::x25519_public(secret))
                });
                assert_eq!(public_key, Some(kdf::x25519_public(secret)));
            }
        }
        for group in inputs.chunks(2) {
            let mut computed = 0;
            for _ in 0..3 {
                for (secret, public) in group {
                    let got = cached(Kind::Shared, secret, public, || {
                        computed += 1;
                        uncached(secret, public)
                    });
                    assert_eq!(got, uncached(secret, public));
                    let public_key = cached(Kind::Public, secret, secret, || {
                        computed += 1;
                        Some(kdf::x25519_public(secret))
                    });
                    assert_eq!(public_key, Some(kdf::x25519_public(secret)));
                }
            }
            assert!(computed <= 4, "{computed} computations for 4 inputs");
        }
        // The same inputs asked again at once always hit.
        let (secret, public) = inputs[1];
        let first = cached(Kind::Shared, &secret, &public, || {
            uncached(&secret, &public)
        });
        let again = cached(Kind::Shared, &secret, &public, || panic!("a miss"));
        assert_eq!(first, again);
        // The kind is part of the key.
        let fresh = [0xee; 32];
        assert_eq!(
            cached(Kind::Shared, &fresh, &fresh, || Some([1; 32])),
            Some([1; 32])
        );
        assert_eq!(
            cached(Kind::Public, &fresh, &fresh, || Some([2; 32])),
            Some([2; 32])
        );
    }
}
