//! Files kept sealed at rest (`serve --store-sealed`): the ferry sealed-file format of
//! `ferry_core::seal` (C2SP chunked encryption under the server's key file), written when a
//! received file is committed and opened on the fly when it is served.

use std::fs::File;
use std::io::{self, Read, Write};

use proto::seal::{
    FileHeader, KeySource, Opener, PREFIX_LEN, PlaintextCodec, SALT_LEN, SEALED_CHUNK_LEN, SealKey,
    TAG_LEN,
};

/// The header of files this store seals: the key file's key, stored plaintext.
fn header() -> FileHeader {
    FileHeader {
        key: KeySource::KeyFile,
        codec: PlaintextCodec::Stored,
    }
}

/// Seal everything `src` yields into `dst` in this store's format (header, salt and
/// commitment, chunks).
///
/// # Errors
/// Reading, writing or the OS random source failed.
pub fn seal_into(src: &mut impl Read, dst: &mut impl Write, key: &SealKey) -> io::Result<()> {
    seal_with_header(src, dst, key, &header())
}

/// Seal everything `src` yields into `dst` under any ferry sealed-file header (the `seal`
/// command's key source and codec; `src` already deflated when the codec says so).
///
/// # Errors
/// Reading, writing or the OS random source failed.
pub fn seal_with_header(
    src: &mut impl Read,
    dst: &mut impl Write,
    key: &SealKey,
    h: &FileHeader,
) -> io::Result<()> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| io::Error::other(format!("no OS randomness: {e}")))?;
    dst.write_all(&h.encode())?;
    let mut sealer = h.sealer(key, &salt);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut input = &buf[..n];
        while !input.is_empty() {
            if let Some(chunk) = sealer.update(&mut input).map_err(io::Error::other)? {
                dst.write_all(chunk)?;
            }
        }
    }
    dst.write_all(&sealer.finish().map_err(io::Error::other)?)?;
    dst.flush()
}

/// The plaintext length of a sealed file of `file_len` bytes written by [`seal_into`], or
/// `None` if no such file has that length.
pub fn plaintext_len(file_len: u64) -> Option<u64> {
    let body = file_len.checked_sub((header().encoded_len() + PREFIX_LEN) as u64)?;
    let full = body / SEALED_CHUNK_LEN as u64;
    let last = (body % SEALED_CHUNK_LEN as u64).checked_sub(TAG_LEN as u64)?;
    Some(full * (SEALED_CHUNK_LEN - TAG_LEN) as u64 + last)
}

/// Reads the plaintext of a sealed file. Each chunk is released only once its tag verified; a
/// truncated, tampered or wrongly keyed file is an `InvalidData` error (at the latest at the
/// end), so a transfer serving it fails instead of completing.
pub struct SealedReader {
    file: File,
    opener: Option<Opener>,
    out: Vec<u8>,
    pos: usize,
    buf: Vec<u8>,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sealed file: {e}"))
}

impl SealedReader {
    /// Open `file` (positioned at its start) with `key`.
    ///
    /// # Errors
    /// Not a sealed file of this store, or reading failed.
    pub fn new(mut file: File, key: &SealKey) -> io::Result<Self> {
        let h = header();
        let mut head = vec![0u8; h.encoded_len()];
        file.read_exact(&mut head)?;
        match FileHeader::decode(&head).map_err(invalid)? {
            Some((got, used)) if got == h && used == head.len() => {}
            _ => return Err(invalid("unexpected header")),
        }
        Ok(SealedReader {
            file,
            opener: Some(h.opener(key)),
            out: Vec::new(),
            pos: 0,
            buf: vec![0u8; 64 * 1024],
        })
    }
}

impl Read for SealedReader {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            let Some(opener) = self.opener.as_mut() else {
                return Ok(0);
            };
            self.out.clear();
            self.pos = 0;
            let n = self.file.read(&mut self.buf)?;
            if n == 0 {
                let opener = self.opener.take().ok_or_else(|| invalid("finished"))?;
                self.out = opener.finish().map_err(invalid)?;
                continue;
            }
            let mut input = &self.buf[..n];
            while !input.is_empty() {
                if let Some(chunk) = opener.update(&mut input).map_err(invalid)? {
                    self.out.extend_from_slice(chunk);
                }
            }
        }
        let n = dst.len().min(self.out.len() - self.pos);
        dst[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_read_back_and_lengths() {
        let key = SealKey::from_key_bytes(&[5; 32]);
        for n in [
            0usize,
            1,
            16 * 1024 - 1,
            16 * 1024,
            3 * 16 * 1024 + 7,
            200_000,
        ] {
            let plain: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("s");
            let mut f = File::create(&p).unwrap();
            seal_into(&mut &plain[..], &mut f, &key).unwrap();
            drop(f);
            let len = std::fs::metadata(&p).unwrap().len();
            assert_eq!(plaintext_len(len), Some(n as u64), "n = {n}");
            let mut back = Vec::new();
            SealedReader::new(File::open(&p).unwrap(), &key)
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == plain, "n = {n}");
            // Another key, or a flipped byte, is an error before the end.
            let other = SealKey::from_key_bytes(&[6; 32]);
            assert!(
                SealedReader::new(File::open(&p).unwrap(), &other)
                    .and_then(|mut r| r.read_to_end(&mut Vec::new()))
                    .is_err()
            );
            let mut bytes = std::fs::read(&p).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            std::fs::write(&p, &bytes).unwrap();
            assert!(
                SealedReader::new(File::open(&p).unwrap(), &key)
                    .and_then(|mut r| r.read_to_end(&mut Vec::new()))
                    .is_err()
            );
        }
        assert_eq!(plaintext_len(3), None);
    }
}
