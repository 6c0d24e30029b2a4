#![allow(dead_code)]
//! QUIC variable-length integers (RFC 9000 §16): the two high bits of the first byte give the
//! length (1, 2, 4 or 8 bytes), the remaining bits are the value, big-endian.

/// The largest value a varint can hold, 2^62 - 1.
pub(crate) const MAX: u64 = (1 << 62) - 1;

/// Bytes needed to encode `v` (8 for anything above 2^30 - 1, including values over [`MAX`],
/// which cannot be written).
pub(crate) fn size(v: u64) -> usize {
    if v < 1 << 6 {
        1
    } else if v < 1 << 14 {
        2
    } else if v < 1 << 30 {
        4
    } else {
        8
    }
}

/// Write `v` in its shortest encoding at the start of `out`; the number of bytes written, or
/// `None` (nothing written) if `out` is too short. `v` must be at most [`MAX`] (a value above
/// is a caller bug: debug builds panic, release builds write `v & MAX`).
pub(crate) fn write(v: u64, out: &mut [u8]) -> Option<usize> {
    debug_assert!(v <= MAX, "varint out of range: {v}");
    let v = v & MAX;
    let n = size(v);
    let dst = out.get_mut(..n)?;
    let tag: u64 = match n {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    let bytes = (v | tag << (n * 8 - 2)).to_be_bytes();
    dst.copy_from_slice(&bytes[8 - n..]);
    Some(n)
}

/// Read a varint from the start of `buf`: the value and the bytes it took, or `None` if `buf`
/// is shorter than the encoding. Non-shortest encodings are accepted (as RFC 9000 allows).
pub(crate) fn read(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let n = 1usize << (first >> 6);
    let src = buf.get(..n)?;
    let mut bytes = [0u8; 8];
    bytes[8 - n..].copy_from_slice(src);
    bytes[8 - n] &= 0x3f;
    Some((u64::from_be_bytes(bytes), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> alloc::vec::Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 9000 appendix A.1: the four example encodings, plus the non-shortest two-byte
    /// encoding of 37.
    #[test]
    fn rfc9000_a1_examples() {
        let cases: [(&str, u64); 4] = [
            ("c2197c5eff14e88c", 151_288_809_941_952_652),
            ("9d7f3e7d", 494_878_333),
            ("7bbd", 15_293),
            ("25", 37),
        ];
        for (enc, v) in cases {
            let enc = h(enc);
            assert_eq!(read(&enc), Some((v, enc.len())), "{v}");
            let mut out = [0u8; 8];
            assert_eq!(write(v, &mut out), Some(enc.len()));
            assert_eq!(&out[..enc.len()], enc.as_slice());
            assert_eq!(size(v), enc.len());
        }
        assert_eq!(read(&h("4025")), Some((37, 2)));
    }

    #[test]
    fn boundaries() {
        for (v, n) in [
            (0, 1),
            (63, 1),
            (64, 2),
            (16_383, 2),
            (16_384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (MAX, 8),
        ] {
            assert_eq!(size(v), n, "{v}");
            let mut out = [0u8; 8];
            assert_eq!(write(v, &mut out), Some(n));
            assert_eq!(read(&out), Some((v, n)));
            // One byte short: nothing fits, and reading the prefix fails.
            assert_eq!(write(v, &mut out[..n - 1]), None);
            assert_eq!(read(&out[..n - 1]), None);
        }
        assert_eq!(read(&[]), None);
    }

    proptest::proptest! {
        #[test]
        fn roundtrip(v in 0..=MAX) {
            let mut out = [0u8; 9];
            let n = write(v, &mut out).unwrap();
            proptest::prop_assert_eq!(n, size(v));
            proptest::prop_assert_eq!(read(&out), Some((v, n)));
        }

        #[test]
        fn read_never_panics(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..10)) {
            if let Some((v, n)) = read(&buf) {
                proptest::prop_assert!(v <= MAX && n <= buf.len());
            }
        }
    }
}
