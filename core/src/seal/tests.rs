//! Crate-private checks: the derived key and base nonce against Wycheproof, the nonce
//! construction, and the 2^38 chunk limit (unreachable with real data).

use alloc::vec;
use alloc::vec::Vec;

use super::stream::{chunk_nonce, derive};
use super::*;

/// Every Wycheproof vector that states the derived AEAD key and base nonce (all but the
/// header failures) derives exactly those from its input key, salt and context.
#[test]
fn derive_matches_wycheproof_aead_key_and_base_nonce() {
    use wycheproof::chunked_encryption::{TestName, TestSet};
    let set = TestSet::load(TestName::Cobblestone256).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let (Some(aead_key), Some(base_nonce)) = (&t.aead_key, &t.base_nonce) else {
                continue;
            };
            let ct = miniz_oxide::inflate::decompress_to_vec_zlib(&t.ct).unwrap();
            let key: [u8; 32] = t.key.as_slice().try_into().unwrap();
            let salt: [u8; SALT_LEN] = ct[..SALT_LEN].try_into().unwrap();
            let d = derive(&SealKey::new(&key), &salt, &t.ctx);
            assert_eq!(d.key.as_slice(), aead_key.as_slice(), "tc {}", t.tc_id);
            assert_eq!(
                d.base_nonce.as_slice(),
                base_nonce.as_slice(),
                "tc {}",
                t.tc_id
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} vectors carry the derived key"
    );
}

#[test]
fn chunk_nonce_xors_the_big_endian_counter_into_the_last_bytes() {
    let base = [0xa5; 12];
    assert_eq!(chunk_nonce(&base, 0), base);
    let mut n = base;
    n[11] ^= 1;
    assert_eq!(chunk_nonce(&base, 1), n);
    let mut n = base;
    n[10] ^= 1;
    assert_eq!(chunk_nonce(&base, 0x100), n);
    let mut n = base;
    n[7] ^= 0x3f;
    n[8..].iter_mut().for_each(|b| *b ^= 0xff);
    assert_eq!(chunk_nonce(&base, MAX_CHUNKS - 1), n);
}

/// Seal `pt` as one message whose first chunk has index `first`, returning the sealed bytes.
fn seal_from(key: &SealKey, first: u64, pt: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut s = Sealer::new(key, &[1; SALT_LEN], b"");
    s.set_counter(first);
    let mut out = Vec::new();
    let mut input = pt;
    while !input.is_empty() {
        if let Some(c) = s.update(&mut input)? {
            out.extend_from_slice(c);
        }
    }
    out.extend_from_slice(&s.finish()?);
    Ok(out)
}

fn open_from(key: &SealKey, first: u64, ct: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut o = Opener::new(key, b"");
    let mut out = Vec::new();
    // Get through the prefix first, then jump the counter.
    let mut prefix = &ct[..PREFIX_LEN];
    assert_eq!(o.update(&mut prefix), Ok(None));
    let mut input = &ct[PREFIX_LEN..];
    o.set_counter(first);
    while !input.is_empty() {
        if let Some(p) = o.update(&mut input)? {
            out.extend_from_slice(p);
        }
    }
    out.extend_from_slice(&o.finish()?);
    Ok(out)
}

/// The last index a message may use is 2^38 - 1, and only for its final chunk: a full chunk
/// there (which a final chunk would have to follow) is refused, in both directions, and the
/// error sticks.
#[test]
fn chunk_counter_limit_is_2_pow_38() {
    let key = SealKey::new(&[3; 32]);
    let full = vec![0x11; CHUNK_LEN];
    let short = vec![0x22; 100];

    // Final chunk at 2^38 - 1: allowed both ways.
    let ct = seal_from(&key, MAX_CHUNKS - 1, &short).unwrap();
    assert_eq!(open_from(&key, MAX_CHUNKS - 1, &ct).unwrap(), short);
    // A full chunk at 2^38 - 2 and the final one at 2^38 - 1: allowed.
    let mut pt = full.clone();
    pt.extend_from_slice(&short);
    let ct = seal_from(&key, MAX_CHUNKS - 2, &pt).unwrap();
    assert_eq!(open_from(&key, MAX_CHUNKS - 2, &ct).unwrap(), pt);
    // A full chunk at 2^38 - 1: refused.
    assert_eq!(
        seal_from(&key, MAX_CHUNKS - 1, &full),
        Err(SealError::TooLong)
    );
    let ct = seal_from(&key, MAX_CHUNKS - 2, &pt).unwrap();
    assert_eq!(
        open_from(&key, MAX_CHUNKS - 1, &ct),
        Err(SealError::TooLong)
    );

    // Sticky in the sealer.
    let mut s = Sealer::new(&key, &[1; SALT_LEN], b"");
    s.set_counter(MAX_CHUNKS - 1);
    let mut input = &full[..];
    assert_eq!(s.update(&mut input), Err(SealError::TooLong));
    assert_eq!(s.update(&mut &b"x"[..]), Err(SealError::TooLong));
    assert_eq!(s.finish(), Err(SealError::TooLong));
}

/// The prefix is output once, in front of the first chunk, whether that is a full chunk or
/// the final one.
#[test]
fn prefix_precedes_the_first_output_only() {
    let key = SealKey::new(&[4; 32]);
    let mut s = Sealer::new(&key, &[5; SALT_LEN], b"ctx");
    let pt = vec![0u8; CHUNK_LEN];
    let mut input = &pt[..];
    let first = s.update(&mut input).unwrap().unwrap().to_vec();
    assert_eq!(first.len(), PREFIX_LEN + SEALED_CHUNK_LEN);
    assert_eq!(&first[..SALT_LEN], &[5; SALT_LEN]);
    assert_eq!(s.finish().unwrap().len(), TAG_LEN);

    let s = Sealer::new(&key, &[5; SALT_LEN], b"ctx");
    let last = s.finish().unwrap();
    assert_eq!(last.len(), PREFIX_LEN + TAG_LEN);
    assert_eq!(&last[..PREFIX_LEN], &first[..PREFIX_LEN]);
}
