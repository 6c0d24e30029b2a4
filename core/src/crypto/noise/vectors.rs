//! The cacophony vectors of `Noise_XX_25519_AESGCM_SHA256` and
//! `Noise_XXpsk3_25519_AESGCM_SHA256`, from mcginty/snow `tests/vectors/cacophony.txt` (as
//! shipped in the snow 0.10.0 crate), byte for byte: the three handshake messages, the
//! handshake hash and each side's view of the other's static key, then the transport
//! messages through `CipherState`s keyed from `split`.

use alloc::vec;
use alloc::vec::Vec;

use super::*;

const PROLOGUE: &str = "4a6f686e2047616c74";
const PSK: &str = "54686973206973206d7920417573747269616e20706572737065637469766521";
const INIT_STATIC: &str = "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
const INIT_EPHEMERAL: &str = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
const RESP_STATIC: &str = "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
const RESP_EPHEMERAL: &str = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
/// The payloads, the same in both vectors.
const PAYLOADS: [&str; 6] = [
    "4c756477696720766f6e204d69736573",
    "4d757272617920526f746862617264",
    "462e20412e20486179656b",
    "4361726c204d656e676572",
    "4a65616e2d426170746973746520536179",
    "457567656e2042f6686d20766f6e2042617765726b",
];

struct Vector {
    pattern: Pattern,
    handshake_hash: &'static str,
    ciphertexts: [&'static str; 6],
}

const XX: Vector = Vector {
    pattern: Pattern::XX,
    handshake_hash: "1b7aefb1125762aa21a252890d00af54519638b76437444538f9a52f21e2e0dc",
    ciphertexts: [
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843757117acceb05bd7a45733bc22015c97a9d0cbaf41b80446d5988ff5127235d76b79eade70f473d6a4ef521fdcbeda5340d01e028ba793fc059f2724a83af05f12dda0448a7621a926b379a92477fd",
        "c90f1cf77eba4e50edb038991565e36c9758943a989229b6051244dc4fbecb6946744b401af2ee1a5881b65fbb87fd07cb6a328ececc9ce6ce84c399dc332d4fd521fa4bb7f467ce909395",
        "bc3fa77f6aca3e8466d7dc6bea10013e88a6a29add5132b461806c",
        "250b01074cdfe0df2ecf8ccbf1737b15a2ddb5b52fd9a396604e9c793cee3b3bb9",
        "449d4d433b3cdc3d02bf6fc881774b9df54366ebcffb9689bb13f14709822cd7ef42bcdb4d",
    ],
};

const XXPSK3: Vector = Vector {
    pattern: Pattern::XXpsk3,
    handshake_hash: "033c8317037cb66a83308d5ae57ebbbea254e7ef2267f296c40baa4beaae4fcc",
    ciphertexts: [
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944ad6766e442bec99c94ff573cd5316da008cbcc1ebcf47fbe43991ed633bcbb75",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884336a2439b0bafb5e97fee2c19b6f9f741125f810ad98e7e9659c48ca3e19652d316d1121073a281e0402b7bc1acb476caa1e7308faad7f75337b30f12435c98303cac63cac1d69ac11f2e1971e138ac",
        "2504a7905dbd6a56820581eb314085df196fda55aa5e77745d61c0b526355733d5ee67b9a4f345be7dc7c6583d3807626eb0f42c69388955ff0c9f35b03951129db18848a76f6a4d270022",
        "b20ca762013411bc55d65fc7137a2e719d432cd549cb037f5e9c84",
        "6b10e774950e93bc7cc50f225a105e656eb418310c00c374a81c1452b48cb12000",
        "6d617e8fd817a630755b8dffdee52ad3c39964bdca895a56847fd5f1edb49d14f555cc314b",
    ],
};

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn h32(s: &str) -> [u8; 32] {
    hx(s).try_into().unwrap()
}

fn side(pattern: Pattern, initiator: bool, psk: &str) -> Handshake {
    let (s, e) = if initiator {
        (INIT_STATIC, INIT_EPHEMERAL)
    } else {
        (RESP_STATIC, RESP_EPHEMERAL)
    };
    Handshake::new(
        pattern,
        initiator,
        &hx(PROLOGUE),
        &Keys {
            psk: &h32(psk),
            static_secret: &h32(s),
            ephemeral_secret: h32(e),
        },
    )
}

fn write(hs: &mut Handshake, payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
    let mut out = vec![0u8; hs.next_message_len(payload.len())];
    let n = hs.write_message(payload, &mut out)?;
    assert_eq!(n, out.len());
    Ok(out)
}

fn read(hs: &mut Handshake, msg: &[u8], payload_len: usize) -> Result<Vec<u8>, NoiseError> {
    let mut out = vec![0u8; payload_len];
    let n = hs.read_message(msg, &mut out)?;
    Ok(out[..n].to_vec())
}

#[allow(clippy::needless_range_loop)]
fn check(v: &Vector) {
    let mut init = side(v.pattern, true, PSK);
    let mut resp = side(v.pattern, false, PSK);
    for i in 0..3 {
        let p = hx(PAYLOADS[i]);
        let (w, r) = if i % 2 == 0 {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        assert!(w.is_write_turn() && !r.is_write_turn(), "message {i}");
        let msg = write(w, &p).unwrap();
        assert_eq!(hex::encode(&msg), v.ciphertexts[i], "message {i}");
        assert_eq!(read(r, &msg, p.len()).unwrap(), p, "message {i}");
    }
    assert!(init.is_finished() && resp.is_finished());
    // Each side learned the other's static key.
    assert_eq!(
        init.remote_static(),
        Some(kdf::x25519_public(&h32(RESP_STATIC)))
    );
    assert_eq!(
        resp.remote_static(),
        Some(kdf::x25519_public(&h32(INIT_STATIC)))
    );
    let (si, sr) = (init.split().unwrap(), resp.split().unwrap());
    assert_eq!(hex::encode(si.handshake_hash), v.handshake_hash);
    assert_eq!(hex::encode(sr.handshake_hash), v.handshake_hash);
    // Transport: responder -> initiator first (message 3 of the vector), then alternating.
    let (mut i2r, mut r2i) = (CipherState::new(si.k1), CipherState::new(si.k2));
    let (mut i2r_open, mut r2i_open) = (CipherState::new(sr.k1), CipherState::new(sr.k2));
    for i in 3..6 {
        let p = hx(PAYLOADS[i]);
        let mut ct = vec![0u8; p.len() + 16];
        let (seal, open) = if i % 2 == 1 {
            (&mut r2i_open, &mut r2i)
        } else {
            (&mut i2r, &mut i2r_open)
        };
        seal.encrypt_with_ad(&[], &p, &mut ct).unwrap();
        assert_eq!(hex::encode(&ct), v.ciphertexts[i], "transport {i}");
        let mut pt = vec![0u8; p.len()];
        open.decrypt_with_ad(&[], &ct, &mut pt).unwrap();
        assert_eq!(pt, p);
    }
}

#[test]
fn cacophony_xx_25519_aesgcm_sha256() {
    check(&XX);
}

#[test]
fn cacophony_xxpsk3_25519_aesgcm_sha256() {
    check(&XXPSK3);
}

#[test]
fn xx_protocol_name_is_zero_padded() {
    assert_eq!(Pattern::XX.name().len(), 28);
    let ss = SymmetricState::new(Pattern::XX.name(), &[]);
    let mut padded = [0u8; 32];
    padded[..28].copy_from_slice(b"Noise_XX_25519_AESGCM_SHA256");
    // h = MixHash(prologue = "") over the padded name.
    let mut h = Sha256::new();
    h.update(padded);
    let want: [u8; 32] = h.finalize().into();
    assert_eq!(ss.h, want);
    assert_eq!(ss.ck, padded);
}

/// XXpsk3 with the wrong PSK fails at message 3 (the responder's read), and the message
/// lengths are those of the pattern: 32 + 16 (a PSK pattern keys on `e`), 32 + 48 + payload
/// + 16, 48 + payload + 16.
#[test]
fn xxpsk3_wrong_psk_fails_message_3() {
    let mut init = side(Pattern::XXpsk3, true, PSK);
    let mut resp = side(Pattern::XXpsk3, false, RESP_STATIC);
    assert_eq!(init.next_message_len(0), 32 + 16);
    let m1 = write(&mut init, b"").unwrap();
    read(&mut resp, &m1, 0).unwrap();
    assert_eq!(resp.next_message_len(5), 32 + 48 + 5 + 16);
    let m2 = write(&mut resp, b"hello").unwrap();
    read(&mut init, &m2, 5).unwrap();
    assert_eq!(init.next_message_len(3), 48 + 3 + 16);
    let m3 = write(&mut init, b"abc").unwrap();
    assert_eq!(read(&mut resp, &m3, 3), Err(NoiseError::Authentication));
    assert_eq!(resp.remote_static(), None);
    assert!(!resp.is_finished());
}

/// Every bit flip in each XX message fails the handshake (message 1 is plaintext: its reader
/// takes it, and the flip is caught by the next message, whose tags bind the transcript).
#[test]
fn every_bit_flip_in_xx_fails() {
    for m in 0..3 {
        let len = [32, 32 + 48 + 16, 48 + 16][m];
        for bit in 0..len * 8 {
            let mut sides = [side(Pattern::XX, true, PSK), side(Pattern::XX, false, PSK)];
            let mut failed = false;
            for k in 0..3 {
                let (a, b) = sides.split_at_mut(1);
                let (w, r) = if k % 2 == 0 {
                    (&mut a[0], &mut b[0])
                } else {
                    (&mut b[0], &mut a[0])
                };
                let Ok(mut msg) = write(w, b"") else {
                    failed = true;
                    break;
                };
                if k == m {
                    msg[bit / 8] ^= 1 << (bit % 8);
                }
                if read(r, &msg, 0).is_err() {
                    failed = true;
                    break;
                }
            }
            assert!(failed, "flip of bit {bit} in message {m} went unnoticed");
        }
    }
}
