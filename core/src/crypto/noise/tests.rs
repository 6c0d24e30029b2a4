//! Unit tests of the parent module.

use super::*;
use alloc::vec;
use alloc::vec::Vec;

// The cacophony vector for Noise_NNpsk0_25519_AESGCM_SHA256, from mcginty/snow
// `tests/vectors/cacophony.txt` (as shipped in the snow 0.10.0 crate).
const PROLOGUE: &str = "4a6f686e2047616c74";
const PSK: &str = "54686973206973206d7920417573747269616e20706572737065637469766521";
const INIT_EPHEMERAL: &str = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
const RESP_EPHEMERAL: &str = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
const HANDSHAKE_HASH: &str = "9f3b1f9afd7767767b5b9d1069844a6154fdbdcc36dfb3e31c0fffc5c973d530";
/// (payload, ciphertext); 0 and 1 are the handshake, 2.. alternate initiator -> responder
/// (k1) and responder -> initiator (k2) transport messages.
const MESSAGES: [(&str, &str); 6] = [
    (
        "4c756477696720766f6e204d69736573",
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944\
         7c37a89fc17813788d30df2d59501d6066f5f8aecc3406bbd9829f2d24a531b1",
    ),
    (
        "4d757272617920526f746862617264",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843\
         2f29d79368ef9de4e1ae7a362fb05bf0ad668e026bf5714554497b3a720461",
    ),
    (
        "462e20412e20486179656b",
        "7c01e898a6201f36aecee532e29cd0b7f8ffa29d3366ad0dce39a6",
    ),
    (
        "4361726c204d656e676572",
        "a9ff535aace3db6a1da1a7fb00fe2de2622bb373abad9fb42c00e0",
    ),
    (
        "4a65616e2d426170746973746520536179",
        "6cfc49a3e65472edc2d0152abe5ce950170a8a47c959f30bd48b5f0aacf29adbfd",
    ),
    (
        "457567656e2042f6686d20766f6e2042617765726b",
        "9bc86e6d974ed21ba04604a94aa68de21677eb409ead070c0cd569b069ee19ba142aa4c1a9",
    ),
];

/// Small-order X25519 public keys (and non-canonical encodings of them): DH with any
/// secret is all zeros.
const SMALL_ORDER: [&str; 7] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn h32(s: &str) -> [u8; 32] {
    hx(s).try_into().unwrap()
}

fn initiator() -> Handshake {
    Handshake::initiator(&hx(PROLOGUE), &h32(PSK), h32(INIT_EPHEMERAL))
}

fn responder() -> Handshake {
    Handshake::responder(&hx(PROLOGUE), &h32(PSK), h32(RESP_EPHEMERAL))
}

fn payload(i: usize) -> Vec<u8> {
    hx(MESSAGES[i].0)
}

/// Write the next message of `hs` carrying `payload`.
fn write(hs: &mut Handshake, payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
    let mut out = vec![0u8; Handshake::message_len(payload.len())];
    let n = hs.write_message(payload, &mut out)?;
    assert_eq!(n, out.len());
    Ok(out)
}

/// Read `msg` into a payload buffer of `payload_len` bytes.
fn read(hs: &mut Handshake, msg: &[u8], payload_len: usize) -> Result<Vec<u8>, NoiseError> {
    let mut out = vec![0u8; payload_len];
    let n = hs.read_message(msg, &mut out)?;
    assert_eq!(n, payload_len);
    Ok(out)
}

/// Message 1 as the vector's initiator writes it.
fn msg1() -> Vec<u8> {
    write(&mut initiator(), &payload(0)).unwrap()
}

/// Message 1 from a "peer" that puts arbitrary bytes in its `e` field and knows the PSK
/// (so the tag is valid), built from the same SymmetricState steps.
fn crafted_msg1(e_pub: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let mut ss = SymmetricState::new(PROTOCOL_NAME, &hx(PROLOGUE));
    ss.mix_key_and_hash(&h32(PSK));
    let mut out = vec![0u8; Handshake::message_len(payload.len())];
    out[..32].copy_from_slice(e_pub);
    ss.mix_hash(e_pub);
    ss.mix_key(e_pub);
    ss.encrypt_and_hash(payload, &mut out[32..]).unwrap();
    out
}

fn assert_sticky(hs: &mut Handshake, err: NoiseError) {
    let mut out = [0u8; 256];
    assert_eq!(hs.write_message(b"x", &mut out), Err(err));
    assert_eq!(hs.read_message(&msg1(), &mut [0u8; 16]), Err(err));
    assert_eq!(hs.read_message(&[0u8; 48], &mut []), Err(err));
    assert!(!hs.is_finished());
}

#[test]
fn protocol_name_is_hashlen_bytes() {
    assert_eq!(PROTOCOL_NAME.len(), HASH_LEN);
    let ss = SymmetricState {
        ck: *PROTOCOL_NAME,
        h: *PROTOCOL_NAME,
        cipher: CipherState::empty(),
    };
    assert_eq!(&ss.h, b"Noise_NNpsk0_25519_AESGCM_SHA256");
}

#[test]
fn nonce_is_zero_prefix_then_big_endian_counter() {
    assert_eq!(
        nonce(0x0102_0304_0506_0708),
        [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(nonce(0), [0; 12]);
}

/// The published cacophony vector, byte for byte: both handshake messages (written by one
/// side, read by the other), the handshake hash on both sides, and the four transport
/// messages through `CipherState`s keyed from `split`.
#[test]
fn cacophony_nnpsk0_25519_aesgcm_sha256() {
    let mut init = initiator();
    let mut resp = responder();

    let m1 = write(&mut init, &payload(0)).unwrap();
    assert_eq!(hex::encode(&m1), MESSAGES[0].1);
    assert_eq!(read(&mut resp, &m1, payload(0).len()).unwrap(), payload(0));
    assert_eq!(resp.dh_count(), 0);

    let m2 = write(&mut resp, &payload(1)).unwrap();
    assert_eq!(hex::encode(&m2), MESSAGES[1].1);
    assert_eq!(read(&mut init, &m2, payload(1).len()).unwrap(), payload(1));

    assert!(init.is_finished() && resp.is_finished());
    assert_eq!((init.dh_count(), resp.dh_count()), (2, 2));

    let si = init.split().unwrap();
    let sr = resp.split().unwrap();
    assert_eq!(hex::encode(si.handshake_hash), HANDSHAKE_HASH);
    assert_eq!(hex::encode(sr.handshake_hash), HANDSHAKE_HASH);
    assert_eq!(si.k1, sr.k1);
    assert_eq!(si.k2, sr.k2);
    assert_ne!(si.k1, si.k2);

    let mut i_tx = CipherState::new(si.k1);
    let mut i_rx = CipherState::new(si.k2);
    let mut r_tx = CipherState::new(sr.k2);
    let mut r_rx = CipherState::new(sr.k1);
    for (i, (pt, ct)) in MESSAGES.iter().enumerate().skip(2) {
        let pt = hx(pt);
        let (tx, rx) = if i % 2 == 0 {
            (&mut i_tx, &mut r_rx)
        } else {
            (&mut r_tx, &mut i_rx)
        };
        let mut wire = vec![0u8; pt.len() + TAG_LEN];
        assert_eq!(tx.encrypt_with_ad(&[], &pt, &mut wire), Ok(wire.len()));
        assert_eq!(hex::encode(&wire), *ct, "transport message {i}");
        let mut got = vec![0u8; pt.len()];
        assert_eq!(rx.decrypt_with_ad(&[], &wire, &mut got), Ok(pt.len()));
        assert_eq!(got, pt, "transport message {i}");
    }
    assert_eq!((i_tx.n, i_rx.n, r_tx.n, r_rx.n), (2, 2, 2, 2));
}

/// A responder with a different PSK rejects message 1 with `Authentication` having done
/// no X25519 operation, releases no plaintext, and stays failed.
#[test]
fn wrong_psk_fails_msg1_before_any_dh() {
    let m1 = msg1();
    for bit in 0..256 {
        let mut psk = h32(PSK);
        psk[bit / 8] ^= 1 << (bit % 8);
        let mut resp = Handshake::responder(&hx(PROLOGUE), &psk, h32(RESP_EPHEMERAL));
        let mut out = vec![0xAA; payload(0).len()];
        assert_eq!(
            resp.read_message(&m1, &mut out),
            Err(NoiseError::Authentication),
            "psk bit {bit}"
        );
        assert_eq!(resp.dh_count(), 0);
        assert!(out.iter().all(|&b| b == 0), "payload_out not cleared");
        if bit == 0 {
            assert_sticky(&mut resp, NoiseError::Authentication);
            assert_eq!(resp.dh_count(), 0);
            assert_eq!(resp.split().err(), Some(NoiseError::Authentication));
        }
    }
}

#[test]
fn wrong_prologue_fails_msg1() {
    let m1 = msg1();
    for prologue in [&b""[..], b"John Galt ", b"John Galu", b"john Galt"] {
        let mut resp = Handshake::responder(prologue, &h32(PSK), h32(RESP_EPHEMERAL));
        assert_eq!(
            read(&mut resp, &m1, payload(0).len()),
            Err(NoiseError::Authentication)
        );
        assert_eq!(resp.dh_count(), 0);
    }
}

/// Flipping any single bit of message 1 (ephemeral key, ciphertext or tag) fails
/// authentication, with no DH done.
#[test]
fn every_bit_flip_in_msg1_fails() {
    let m1 = msg1();
    for bit in 0..m1.len() * 8 {
        let mut bad = m1.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut resp = responder();
        assert_eq!(
            read(&mut resp, &bad, payload(0).len()),
            Err(NoiseError::Authentication),
            "bit {bit}"
        );
        assert_eq!(resp.dh_count(), 0);
    }
}

/// Flipping any single bit of message 2 fails authentication at the initiator.
#[test]
fn every_bit_flip_in_msg2_fails() {
    let mut resp = responder();
    read(&mut resp, &msg1(), payload(0).len()).unwrap();
    let m2 = write(&mut resp, &payload(1)).unwrap();
    for bit in 0..m2.len() * 8 {
        let mut bad = m2.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let mut init = initiator();
        write(&mut init, &payload(0)).unwrap();
        let mut out = vec![0xAA; payload(1).len()];
        assert_eq!(
            init.read_message(&bad, &mut out),
            Err(NoiseError::Authentication),
            "bit {bit}"
        );
        assert!(out.iter().all(|&b| b == 0));
        assert!(!init.is_finished());
    }
    // And the untampered message still works on a fresh initiator.
    let mut init = initiator();
    write(&mut init, &payload(0)).unwrap();
    assert_eq!(read(&mut init, &m2, payload(1).len()).unwrap(), payload(1));
}

/// Any message length other than 32 + payload + 16 is `BadLength`, for both messages, and
/// the error is sticky (a correct message afterwards is still refused).
#[test]
fn wrong_lengths_are_bad_length_and_sticky() {
    let m1 = msg1();
    let p0 = payload(0).len();
    let mut cases: Vec<(Vec<u8>, usize)> = vec![
        (m1[..m1.len() - 1].to_vec(), p0),
        ([m1.as_slice(), &[0]].concat(), p0),
        (m1.clone(), p0 - 1),
        (m1.clone(), p0 + 1),
        (Vec::new(), 0),
        (m1[..47].to_vec(), 0),
        (m1[..32].to_vec(), 0),
    ];
    // A message over Noise's 65535-byte limit, even with a matching payload buffer.
    cases.push((vec![0u8; MAX_MESSAGE_LEN + 1], MAX_MESSAGE_LEN + 1 - 48));
    for (i, (msg, plen)) in cases.iter().enumerate() {
        let mut resp = responder();
        assert_eq!(
            read(&mut resp, msg, *plen),
            Err(NoiseError::BadLength),
            "case {i}"
        );
        assert_eq!(resp.dh_count(), 0);
        assert_eq!(read(&mut resp, &m1, p0), Err(NoiseError::BadLength));
        assert_sticky(&mut resp, NoiseError::BadLength);
    }

    let mut resp = responder();
    read(&mut resp, &m1, p0).unwrap();
    let m2 = write(&mut resp, &payload(1)).unwrap();
    let p1 = payload(1).len();
    for (msg, plen) in [
        (&m2[..m2.len() - 1], p1),
        (&m2[..], p1 + 1),
        (&m2[..], p1 - 1),
        (&[][..], 0),
    ] {
        let mut init = initiator();
        write(&mut init, &payload(0)).unwrap();
        assert_eq!(read(&mut init, msg, plen), Err(NoiseError::BadLength));
        assert_eq!(init.dh_count(), 1, "no DH before the length check");
        assert_eq!(read(&mut init, &m2, p1), Err(NoiseError::BadLength));
    }
}

/// A writer whose message would exceed 65535 bytes gets `BadLength`.
#[test]
fn oversized_payload_is_bad_length() {
    let big = vec![0u8; MAX_MESSAGE_LEN - 48 + 1];
    let mut out = vec![0u8; Handshake::message_len(big.len())];
    let mut init = initiator();
    assert_eq!(
        init.write_message(&big, &mut out),
        Err(NoiseError::BadLength)
    );
    assert_sticky(&mut init, NoiseError::BadLength);
    // The largest allowed payload works.
    let max = vec![7u8; MAX_MESSAGE_LEN - 48];
    let m = write(&mut initiator(), &max).unwrap();
    assert_eq!(m.len(), MAX_MESSAGE_LEN);
    assert_eq!(read(&mut responder(), &m, max.len()).unwrap(), max);
    assert_eq!(Handshake::message_len(usize::MAX), usize::MAX);
}

/// A small-order ephemeral in an otherwise valid message 1 (the sender knows the PSK) is
/// caught by the responder's `ee` DH when writing message 2.
#[test]
fn low_order_ephemeral_in_msg1_is_non_contributory() {
    for p in SMALL_ORDER {
        let m1 = crafted_msg1(&h32(p), &payload(0));
        let mut resp = responder();
        assert_eq!(read(&mut resp, &m1, payload(0).len()).unwrap(), payload(0));
        assert_eq!(resp.dh_count(), 0);
        let mut out = vec![0u8; Handshake::message_len(4)];
        assert_eq!(
            resp.write_message(b"oops", &mut out),
            Err(NoiseError::NonContributory),
            "{p}"
        );
        assert_eq!(resp.dh_count(), 2);
        assert_sticky(&mut resp, NoiseError::NonContributory);
        assert_eq!(resp.split().err(), Some(NoiseError::NonContributory));
    }
    // Sanity: the crafting helper agrees with the real initiator for a real key.
    let e_pub = kdf::x25519_public(&h32(INIT_EPHEMERAL));
    assert_eq!(crafted_msg1(&e_pub, &payload(0)), msg1());
}

/// A small-order ephemeral in message 2 is refused by the initiator before it looks at
/// the tag (the tag key depends on the DH).
#[test]
fn low_order_ephemeral_in_msg2_is_non_contributory() {
    for p in SMALL_ORDER {
        let mut init = initiator();
        write(&mut init, &payload(0)).unwrap();
        let mut m2 = vec![0u8; Handshake::message_len(3)];
        m2[..32].copy_from_slice(&h32(p));
        assert_eq!(
            read(&mut init, &m2, 3),
            Err(NoiseError::NonContributory),
            "{p}"
        );
        assert_eq!(init.dh_count(), 2);
        assert_sticky(&mut init, NoiseError::NonContributory);
    }
}

#[test]
fn out_of_order_calls() {
    let mut out = [0u8; 64];
    // Initiator must write first.
    let mut init = initiator();
    assert_eq!(
        init.read_message(&[0u8; 48], &mut []),
        Err(NoiseError::OutOfOrder)
    );
    assert_sticky(&mut init, NoiseError::OutOfOrder);
    // Responder must read first.
    let mut resp = responder();
    assert_eq!(
        resp.write_message(b"", &mut out),
        Err(NoiseError::OutOfOrder)
    );
    assert_eq!(resp.dh_count(), 0);
    assert_sticky(&mut resp, NoiseError::OutOfOrder);
    // Initiator cannot write twice; responder cannot read twice.
    let mut init = initiator();
    write(&mut init, b"").unwrap();
    assert_eq!(
        init.write_message(b"", &mut out),
        Err(NoiseError::OutOfOrder)
    );
    let mut resp = responder();
    read(&mut resp, &msg1(), payload(0).len()).unwrap();
    assert_eq!(
        read(&mut resp, &msg1(), payload(0).len()),
        Err(NoiseError::OutOfOrder)
    );
    // Split before the end.
    assert_eq!(initiator().split().err(), Some(NoiseError::OutOfOrder));
    let mut resp = responder();
    read(&mut resp, &msg1(), payload(0).len()).unwrap();
    assert_eq!(resp.split().err(), Some(NoiseError::OutOfOrder));
    // Nothing after the end.
    let (mut init, mut resp) = (initiator(), responder());
    let m1 = write(&mut init, b"a").unwrap();
    read(&mut resp, &m1, 1).unwrap();
    let m2 = write(&mut resp, b"b").unwrap();
    read(&mut init, &m2, 1).unwrap();
    assert_eq!(
        init.write_message(b"", &mut out),
        Err(NoiseError::OutOfOrder)
    );
    assert_eq!(read(&mut resp, &m2, 1), Err(NoiseError::OutOfOrder));
}

#[test]
fn short_output_buffer_is_buffer_too_small() {
    let p = payload(0);
    let mut out = vec![0u8; Handshake::message_len(p.len()) - 1];
    let mut init = initiator();
    assert_eq!(
        init.write_message(&p, &mut out),
        Err(NoiseError::BufferTooSmall)
    );
    assert_eq!(init.dh_count(), 0, "checked before any work");
    assert_sticky(&mut init, NoiseError::BufferTooSmall);
    // A larger buffer is fine: only message_len bytes are written.
    let mut big = vec![0xEE; Handshake::message_len(p.len()) + 10];
    let n = initiator().write_message(&p, &mut big).unwrap();
    assert_eq!(hex::encode(&big[..n]), MESSAGES[0].1);
    assert!(big[n..].iter().all(|&b| b == 0xEE));
}

/// Transport: a failed decryption does not advance the nonce, so the genuine message at
/// the same position still decrypts, and so does the next one.
#[test]
fn cipher_state_failed_decrypt_does_not_advance_nonce() {
    let key = [9u8; 32];
    let mut tx = CipherState::new(key);
    let mut rx = CipherState::new(key);
    let mut c0 = [0u8; 5 + TAG_LEN];
    let mut c1 = [0u8; 5 + TAG_LEN];
    tx.encrypt_with_ad(b"ad", b"hello", &mut c0).unwrap();
    tx.encrypt_with_ad(b"ad", b"world", &mut c1).unwrap();
    let mut out = [0u8; 5];
    // Out of order (n = 1 message at n = 0), tampered, wrong AD: all refused at n = 0.
    assert_eq!(
        rx.decrypt_with_ad(b"ad", &c1, &mut out),
        Err(NoiseError::Authentication)
    );
    let mut bad = c0;
    bad[2] ^= 4;
    assert_eq!(
        rx.decrypt_with_ad(b"ad", &bad, &mut out),
        Err(NoiseError::Authentication)
    );
    assert_eq!(out, [0; 5]);
    assert_eq!(
        rx.decrypt_with_ad(b"AD", &c0, &mut out),
        Err(NoiseError::Authentication)
    );
    assert_eq!(rx.n, 0);
    assert_eq!(rx.decrypt_with_ad(b"ad", &c0, &mut out), Ok(5));
    assert_eq!(&out, b"hello");
    assert_eq!(rx.decrypt_with_ad(b"ad", &c1, &mut out), Ok(5));
    assert_eq!(&out, b"world");
    // Replay of c0 at n = 2 fails.
    assert_eq!(
        rx.decrypt_with_ad(b"ad", &c0, &mut out),
        Err(NoiseError::Authentication)
    );
    // Shapes: shorter than a tag, short output buffers.
    assert_eq!(
        rx.decrypt_with_ad(b"", &[0; 15], &mut out),
        Err(NoiseError::BadLength)
    );
    assert_eq!(
        rx.decrypt_with_ad(b"ad", &c0, &mut [0; 4]),
        Err(NoiseError::BufferTooSmall)
    );
    assert_eq!(
        tx.encrypt_with_ad(b"", b"hello", &mut [0; 20]),
        Err(NoiseError::BufferTooSmall)
    );
    assert_eq!((tx.n, rx.n), (2, 2));
}

/// Nonce 2^64 - 1 is reserved: the last usable nonce is 2^64 - 2.
#[test]
fn cipher_state_nonce_exhaustion() {
    let key = [3u8; 32];
    let mut tx = CipherState::new(key);
    let mut rx = CipherState::new(key);
    tx.n = u64::MAX - 1;
    rx.n = u64::MAX - 1;
    let mut ct = [0u8; 1 + TAG_LEN];
    assert_eq!(tx.encrypt_with_ad(b"", b"z", &mut ct), Ok(ct.len()));
    // The nonce used was 2^64 - 2, encoded as 0^32 || BE64.
    let mut check = *b"z";
    let tag = AeadKey::new(&key).seal_in_place(
        &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
        b"",
        &mut check,
    );
    assert_eq!(ct[..1], check);
    assert_eq!(ct[1..], tag);
    assert_eq!(
        tx.encrypt_with_ad(b"", b"z", &mut ct),
        Err(NoiseError::NonceExhausted)
    );
    let mut out = [0u8; 1];
    assert_eq!(rx.decrypt_with_ad(b"", &ct, &mut out), Ok(1));
    assert_eq!(
        rx.decrypt_with_ad(b"", &ct, &mut out),
        Err(NoiseError::NonceExhausted)
    );
}

/// Property: for any prologue, PSK, ephemerals and payloads, both sides finish with the
/// same keys and hash, deliver the payloads, and a prologue mismatch always fails msg 1.
#[test]
fn handshake_agrees_for_any_inputs() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(any::<u8>(), 0..200),
    );
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&strategy, |(prologue, psk, ei, er, p1, p2)| {
            let mut init = Handshake::initiator(&prologue, &psk, ei);
            let mut resp = Handshake::responder(&prologue, &psk, er);
            let m1 = write(&mut init, &p1).unwrap();
            prop_assert_eq!(read(&mut resp, &m1, p1.len()).unwrap(), p1.clone());
            let m2 = write(&mut resp, &p2).unwrap();
            prop_assert_eq!(read(&mut init, &m2, p2.len()).unwrap(), p2);
            let (si, sr) = (init.split().unwrap(), resp.split().unwrap());
            prop_assert_eq!(si.k1, sr.k1);
            prop_assert_eq!(si.k2, sr.k2);
            prop_assert_eq!(si.handshake_hash, sr.handshake_hash);
            prop_assert_ne!(si.k1, si.k2);

            let mut other = prologue.clone();
            other.push(0);
            let mut resp2 = Handshake::responder(&other, &psk, er);
            prop_assert_eq!(
                read(&mut resp2, &m1, p1.len()),
                Err(NoiseError::Authentication)
            );
            Ok(())
        })
        .unwrap();
}
