//! The `seal_open` target: sealed files (ferry header + C2SP ciphertext) into the header
//! decoder and the streaming [`Opener`].

use alloc::vec::Vec;

use crate::seal::{
    CHUNK_LEN, FileHeader, KeySource, MAX_HEADER_LEN, PREFIX_LEN, SALT_LEN, SealError, SealKey,
    sealed_len,
};

/// The fixed input key of the `seal_open` target (and of its seeds).
pub const SEAL_KEY: [u8; 32] = [0x5E; 32];

/// The salt the seeds are sealed with.
pub const SEAL_SALT: [u8; SALT_LEN] = [0x5A; SALT_LEN];

/// `seal_open`: the first byte picks how the ciphertext is cut into `update` calls, the rest is
/// a sealed file opened with [`SEAL_KEY`].
///
/// Checks: the header decoder waits only while fewer than [`MAX_HEADER_LEN`] bytes are there
/// and a decoded header re-encodes to the bytes it came from; the opener consumes every byte it
/// is given, releases plaintext only in whole 16 KiB chunks and never more than it was given;
/// its errors are sticky; and a file opens only if sealing its plaintext again with its salt
/// gives back exactly its ciphertext (nothing but what the sealer produces opens).
/// Argon2id headers are decoded but not opened (the KDF would dominate the run).
pub fn seal_open(data: &[u8]) {
    let Some((&split, file)) = data.split_first() else {
        return;
    };
    let (header, header_len) = match FileHeader::decode(file) {
        Ok(Some(found)) => found,
        Ok(None) => {
            assert!(
                file.len() < MAX_HEADER_LEN,
                "decoder waits on a full header"
            );
            return;
        }
        Err(e) => {
            assert!(matches!(
                e,
                SealError::NotSealedFile | SealError::Unsupported | SealError::BadParameters
            ));
            return;
        }
    };
    assert_eq!(header.encode(), file[..header_len], "header re-encodes");
    assert_eq!(header.encoded_len(), header_len);
    if matches!(header.key, KeySource::Argon2id(_)) {
        return;
    }
    let ciphertext = &file[header_len..];
    let key = SealKey::new(&SEAL_KEY);
    let mut opener = header.opener(&key);
    let piece_len = 1 + usize::from(split) * 131;
    let mut plain = Vec::new();
    let mut failed = None;
    'feed: for piece in ciphertext.chunks(piece_len) {
        let mut rest = piece;
        while !rest.is_empty() {
            let before = rest.len();
            match opener.update(&mut rest) {
                Ok(Some(chunk)) => {
                    assert_eq!(chunk.len(), CHUNK_LEN, "released a partial chunk");
                    plain.extend_from_slice(chunk);
                }
                Ok(None) => assert!(rest.is_empty(), "update returned early with input left"),
                Err(e) => {
                    failed = Some(e);
                    break 'feed;
                }
            }
            assert!(
                rest.len() < before || rest.is_empty(),
                "update made no progress"
            );
        }
        assert_eq!(opener.released(), plain.len() as u64);
        assert!(plain.len() <= ciphertext.len());
    }
    if let Some(e) = failed {
        assert!(matches!(
            e,
            SealError::WrongKey | SealError::Authentication | SealError::TooLong
        ));
        assert_eq!(opener.update(&mut &[0u8; 3][..]), Err(e), "sticky update");
        assert_eq!(opener.finish(), Err(e), "sticky finish");
        return;
    }
    match opener.finish() {
        Ok(last) => {
            assert!(last.len() < CHUNK_LEN, "final chunk too long");
            plain.extend_from_slice(&last);
            assert_eq!(
                sealed_len(plain.len() as u64),
                Some(ciphertext.len() as u64)
            );
            let salt = ciphertext[..SALT_LEN].try_into().expect("SALT_LEN bytes");
            assert_eq!(
                sealed(&header, &plain, &salt),
                ciphertext,
                "opened data the sealer would not produce"
            );
        }
        Err(e) => assert!(matches!(
            e,
            SealError::Truncated | SealError::Authentication | SealError::TooLong
        )),
    }
}

/// The C2SP ciphertext of `plain` under [`SEAL_KEY`], `header` and `salt` (without the header).
pub fn sealed(header: &FileHeader, plain: &[u8], salt: &[u8; SALT_LEN]) -> Vec<u8> {
    let mut sealer = header.sealer(&SealKey::new(&SEAL_KEY), salt);
    let mut out = Vec::new();
    let mut rest = plain;
    while !rest.is_empty() {
        if let Some(chunk) = sealer.update(&mut rest).expect("far below 2^38 chunks") {
            out.extend_from_slice(chunk);
        }
    }
    out.extend(sealer.finish().expect("far below 2^38 chunks"));
    out
}

/// A sealed file (header included) as fuzz builds seal it: the real salt and commitment, then
/// each chunk's plaintext with an all-zero tag (the null AEAD). Only fuzz builds open it.
pub fn null_sealed_file(header: &FileHeader, plain: &[u8]) -> Vec<u8> {
    let real = sealed(header, &[], &SEAL_SALT);
    let mut out = header.encode();
    out.extend_from_slice(&real[..PREFIX_LEN]);
    let full = plain.len() / CHUNK_LEN * CHUNK_LEN;
    for chunk in plain[..full]
        .chunks(CHUNK_LEN)
        .chain(core::iter::once(&plain[full..]))
    {
        out.extend_from_slice(chunk);
        out.extend_from_slice(&[0; crate::seal::TAG_LEN]);
    }
    out
}

/// A sealed file (header included) under [`SEAL_KEY`] and [`SEAL_SALT`], as real builds seal it.
pub fn sealed_file(header: &FileHeader, plain: &[u8]) -> Vec<u8> {
    let mut out = header.encode();
    out.extend(sealed(header, plain, &SEAL_SALT));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::PlaintextCodec;

    #[test]
    fn real_and_null_files_differ_only_in_the_chunks() {
        let header = FileHeader {
            key: KeySource::KeyFile,
            codec: PlaintextCodec::Stored,
        };
        let plain = [7u8; CHUNK_LEN + 5];
        let real = sealed_file(&header, &plain);
        let null = null_sealed_file(&header, &plain);
        assert_eq!(real.len(), null.len());
        let head = header.encoded_len() + PREFIX_LEN;
        assert_eq!(real[..head], null[..head]);
        assert_ne!(real[head..], null[head..]);
        for split in [0u8, 1, 255] {
            let mut input = alloc::vec![split];
            input.extend_from_slice(&real);
            seal_open(&input);
        }
    }
}
