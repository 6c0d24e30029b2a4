//! ferry's sealed-file header (`ferry_core::seal::FileHeader`): encoding, parsing, bounds, its
//! binding into the C2SP context, and a known-answer file computed independently.

use ferry_core::seal::{
    Argon2CostLimit, Argon2Params, FileHeader, KeySource, MAGIC, MAX_HEADER_LEN, PlaintextCodec,
    SALT_LEN, SealError, SealKey,
};

fn key_file() -> FileHeader {
    FileHeader {
        key: KeySource::KeyFile,
        codec: PlaintextCodec::Stored,
    }
}

fn argon2id(codec: PlaintextCodec) -> FileHeader {
    FileHeader {
        key: KeySource::Argon2id(Argon2Params::recommended(core::array::from_fn(|i| i as u8))),
        codec,
    }
}

/// Header, then the C2SP ciphertext of `pt`, fed whole.
fn seal_file(header: &FileHeader, key: &SealKey, salt: &[u8; SALT_LEN], pt: &[u8]) -> Vec<u8> {
    let mut file = header.encode();
    let mut sealer = header.sealer(key, salt);
    let mut input = pt;
    while !input.is_empty() {
        if let Some(ct) = sealer.update(&mut input).unwrap() {
            file.extend_from_slice(ct);
        }
    }
    file.extend_from_slice(&sealer.finish().unwrap());
    file
}

/// Parse the header, then open the rest with `key`.
fn open_file(file: &[u8], key: &SealKey) -> Result<(FileHeader, Vec<u8>), SealError> {
    let (header, len) = FileHeader::decode(file)?.ok_or(SealError::Truncated)?;
    let mut opener = header.opener(key);
    let mut out = Vec::new();
    let mut input = &file[len..];
    while !input.is_empty() {
        if let Some(pt) = opener.update(&mut input)? {
            out.extend_from_slice(pt);
        }
    }
    out.extend_from_slice(&opener.finish()?);
    Ok((header, out))
}

/// A sealed file computed from the format description with Python's `cryptography` (HKDF-SHA256
/// for the key-file input key, HKDF-SHA512 Expand for C2SP, AES-256-GCM): key file bytes
/// 00 01 .. 1f, C2SP salt 64 65 .. 7b, plaintext "hello, ferry\n". Also in docs/PROTOCOL.md.
#[test]
fn known_answer_key_file() {
    let file = hex::decode(
        "66657272792d7365616c65642f76310a0100\
         6465666768696a6b6c6d6e6f707172737475767778797a7b\
         fd72eadbd1bc7e6eeb3ad8ae07522caf0e5dd9d93e454f5671fef332ba16a797\
         1294ccc4d752b44793cf0db3efb2e6078fd8bfdf61ca5259fcfc0df842",
    )
    .unwrap();
    let key = SealKey::from_key_bytes(&core::array::from_fn(|i| i as u8));
    let salt: [u8; SALT_LEN] = core::array::from_fn(|i| 100 + i as u8);
    assert_eq!(seal_file(&key_file(), &key, &salt, b"hello, ferry\n"), file);
    let (header, pt) = open_file(&file, &key).unwrap();
    assert_eq!(header, key_file());
    assert_eq!(pt, b"hello, ferry\n");
}

#[test]
fn encodings() {
    let h = key_file();
    assert_eq!(h.encode(), b"ferry-sealed/v1\n\x01\x00");
    assert_eq!(h.encoded_len(), 18);
    let h = argon2id(PlaintextCodec::Deflate);
    assert_eq!(
        hex::encode(h.encode()),
        "66657272792d7365616c65642f76310a0201\
         000100000000000300000004000102030405060708090a0b0c0d0e0f"
    );
    assert_eq!(h.encoded_len(), MAX_HEADER_LEN);
    assert_eq!(MAX_HEADER_LEN, 46);
    let mut context = b"ferry/v1 sealed file".to_vec();
    context.extend_from_slice(&h.encode());
    assert_eq!(h.context(), context);
}

/// Every header decodes back, with its length, whatever follows it; every proper prefix is
/// "need more"; the empty input too.
#[test]
fn decode_round_trip_and_prefixes() {
    for h in [
        key_file(),
        FileHeader {
            key: KeySource::KeyFile,
            codec: PlaintextCodec::Deflate,
        },
        argon2id(PlaintextCodec::Stored),
        argon2id(PlaintextCodec::Deflate),
    ] {
        let bytes = h.encode();
        for cut in 0..bytes.len() {
            assert_eq!(
                FileHeader::decode(&bytes[..cut]),
                Ok(None),
                "{h:?} cut {cut}"
            );
        }
        assert_eq!(FileHeader::decode(&bytes), Ok(Some((h, bytes.len()))));
        let mut more = bytes.clone();
        more.extend_from_slice(&[0xff; 100]);
        assert_eq!(FileHeader::decode(&more), Ok(Some((h, bytes.len()))));
    }
}

#[test]
fn decode_rejects_foreign_and_unknown_headers() {
    let e = |b: &[u8]| FileHeader::decode(b);
    assert_eq!(e(b"age-encryption.org/v1\n"), Err(SealError::NotSealedFile));
    assert_eq!(e(b"x"), Err(SealError::NotSealedFile));
    assert_eq!(e(b"ferry-sealeD"), Err(SealError::NotSealedFile));
    assert_eq!(e(b"ferry-sealed/v2\n\x01\x00"), Err(SealError::Unsupported));
    assert_eq!(e(b"ferry-sealed/v10"), Err(SealError::Unsupported));
    assert_eq!(e(b"ferry-sealed/"), Ok(None));
    for mode in [0x00, 0x03, 0xff] {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[mode, 0x00]);
        assert_eq!(e(&b), Err(SealError::Unsupported), "mode {mode}");
    }
    for codec in [0x02, 0x80, 0xff] {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[0x01, codec]);
        assert_eq!(e(&b), Err(SealError::Unsupported), "codec {codec}");
    }
}

/// Argon2id parameters outside the bounds are refused when built and when parsed.
#[test]
fn argon2_parameter_bounds() {
    let salt = [7; Argon2Params::SALT_LEN];
    let ok = Argon2Params::new(8, 1, 1, salt).unwrap();
    assert_eq!((ok.m_cost_kib(), ok.t_cost(), ok.p_cost()), (8, 1, 1));
    assert_eq!(ok.salt(), &salt);
    assert!(Argon2Params::new(4 << 20, 64, 64, salt).is_ok());
    let rec = Argon2Params::recommended(salt);
    assert_eq!(
        (rec.m_cost_kib(), rec.t_cost(), rec.p_cost()),
        (65536, 3, 4)
    );
    for (m, t, p) in [
        (8, 1, 0),
        (8, 1, 65),
        (31, 1, 4),
        (8, 0, 1),
        (8, 65, 1),
        ((4 << 20) + 1, 1, 1),
        (u32::MAX, u32::MAX, u32::MAX),
    ] {
        assert_eq!(
            Argon2Params::new(m, t, p, salt),
            Err(SealError::BadParameters),
            "{m} {t} {p}"
        );
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[0x02, 0x00]);
        b.extend_from_slice(&m.to_be_bytes());
        b.extend_from_slice(&t.to_be_bytes());
        b.extend_from_slice(&p.to_be_bytes());
        b.extend_from_slice(&salt);
        assert_eq!(FileHeader::decode(&b), Err(SealError::BadParameters));
    }
}

/// A header's Argon2id costs are checked against the caller's limit, each cost on its own,
/// inclusive; the default limit takes ferry's own parameters and refuses the format's maximum.
#[test]
fn argon2_cost_limit() {
    let salt = [7; Argon2Params::SALT_LEN];
    let p = |m, t, l| Argon2Params::new(m, t, l, salt).unwrap();
    let default = Argon2CostLimit::default();
    assert_eq!(default, Argon2CostLimit::DEFAULT);
    assert_eq!(Argon2Params::recommended(salt).check_cost(&default), Ok(()));
    assert_eq!(p(1 << 20, 8, 16).check_cost(&default), Ok(()));
    for (m, t, l) in [
        ((1 << 20) + 1, 1, 1),
        (1 << 20, 9, 1),
        (1 << 20, 1, 17),
        (4 << 20, 64, 4),
        (4 << 20, 64, 64),
    ] {
        assert_eq!(
            p(m, t, l).check_cost(&default),
            Err(SealError::CostTooHigh),
            "{m} {t} {l}"
        );
    }
    let small = Argon2CostLimit {
        max_m_cost_kib: 64 * 1024,
        max_t_cost: 3,
        max_p_cost: 4,
    };
    assert_eq!(Argon2Params::recommended(salt).check_cost(&small), Ok(()));
    for (m, t, l) in [(64 * 1024 + 1, 3, 4), (64 * 1024, 4, 4), (64 * 1024, 3, 5)] {
        assert_eq!(p(m, t, l).check_cost(&small), Err(SealError::CostTooHigh));
    }
}

/// The header is bound into the C2SP context: changing any of its bytes (to another valid
/// header) fails the key commitment even with the right key, before any chunk is opened.
#[test]
fn header_is_bound_to_the_ciphertext() {
    let key = SealKey::new(&[0x21; 32]);
    let pt = vec![0x5a; 20_000];
    let header = argon2id(PlaintextCodec::Deflate);
    let file = seal_file(&header, &key, &[0x31; SALT_LEN], &pt);
    assert_eq!(open_file(&file, &key).unwrap(), (header, pt.clone()));

    let len = header.encoded_len();
    let mut changed = 0;
    for i in MAGIC.len()..len {
        for bit in 0..8 {
            let mut bad = file.clone();
            bad[i] ^= 1 << bit;
            match FileHeader::decode(&bad) {
                // Still a valid header: the commitment must catch it.
                Ok(Some(_)) => {
                    assert_eq!(open_file(&bad, &key), Err(SealError::WrongKey), "byte {i}");
                    changed += 1;
                }
                other => assert!(other.is_err(), "byte {i} bit {bit}: {other:?}"),
            }
        }
    }
    // All 128 salt bits, the codec flip and most low parameter bits stay valid headers.
    assert!(changed >= 150, "only {changed} header variants were opened");

    // Codec flipped on a key-file header.
    let file = seal_file(&key_file(), &key, &[0x31; SALT_LEN], &pt);
    let mut bad = file.clone();
    bad[MAGIC.len() + 1] = 0x01;
    assert_eq!(open_file(&bad, &key), Err(SealError::WrongKey));
    // A key-file key and a raw key of the same bytes differ.
    assert_eq!(
        open_file(&file, &SealKey::from_key_bytes(&[0x21; 32])),
        Err(SealError::WrongKey)
    );
}

/// A file cut inside its header is reported as incomplete by `decode`.
#[test]
fn truncated_header() {
    let key = SealKey::new(&[0x21; 32]);
    let file = seal_file(
        &argon2id(PlaintextCodec::Stored),
        &key,
        &[0x31; SALT_LEN],
        b"x",
    );
    for cut in 0..MAX_HEADER_LEN {
        assert_eq!(open_file(&file[..cut], &key), Err(SealError::Truncated));
    }
    for cut in MAX_HEADER_LEN..file.len() {
        assert!(open_file(&file[..cut], &key).is_err(), "cut {cut}");
    }
}
