//! `seal` and `open`: encryption at rest in C2SP chunked encryption (ferry_core::seal), keyed
//! by the key file or by an Argon2id-stretched passphrase.
//!
//! `open` writes plaintext only to a temporary file next to the destination (or a spool file
//! for standard output) and publishes it only once the last chunk has verified: a tampered or
//! truncated file never leaves plaintext under the final name.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ferry_disk::sealed::seal_with_header;
use proto::seal::{
    Argon2CostLimit, Argon2Params, FileHeader, KeySource, MAX_HEADER_LEN, Opener, PlaintextCodec,
    SealError, SealKey,
};

/// Environment variable a script can use instead of the passphrase prompt.
pub const PASSPHRASE_ENV: &str = "FERRY_PASSPHRASE";

/// How `seal` gets its key.
pub enum KeyChoice {
    /// The key file (`--key`, `FERRY_KEY` or the default path).
    KeyFile(Option<PathBuf>),
    /// A passphrase, stretched with Argon2id (parameters stored in the header).
    Passphrase,
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    Ok(Box::new(File::open(path).with_context(|| {
        format!("cannot read {}", path.display())
    })?))
}

/// Where the result goes: a temporary file published by rename, or standard output.
enum Dest {
    File {
        tmp: tempfile::NamedTempFile,
        path: PathBuf,
        force: bool,
    },
    Stdout(tempfile::NamedTempFile),
}

impl Dest {
    fn new(out: &Path, force: bool) -> anyhow::Result<Dest> {
        if out.as_os_str() == "-" {
            return Ok(Dest::Stdout(
                tempfile::NamedTempFile::new().context("cannot create a spool file")?,
            ));
        }
        if out.exists() && !force {
            bail!("{} exists (use --force to replace it)", out.display());
        }
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".ferry-tmp.")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot write into {}", dir.display()))?;
        Ok(Dest::File {
            tmp,
            path: out.to_path_buf(),
            force,
        })
    }

    fn writer(&mut self) -> &mut File {
        match self {
            Dest::File { tmp, .. } | Dest::Stdout(tmp) => tmp.as_file_mut(),
        }
    }

    /// Make the result visible: fsync and rename, or copy the spool to standard output.
    fn publish(self) -> anyhow::Result<()> {
        match self {
            Dest::File { tmp, path, force } => {
                tmp.as_file().sync_all()?;
                if force {
                    tmp.persist(&path)
                        .map_err(|e| e.error)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                } else {
                    tmp.persist_noclobber(&path)
                        .map_err(|e| e.error)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir)?.sync_all()?;
                }
                Ok(())
            }
            Dest::Stdout(tmp) => {
                let mut f = tmp.reopen()?;
                let mut out = io::stdout().lock();
                io::copy(&mut f, &mut out)
                    .and_then(|_| out.flush())
                    .map_err(crate::signals::stdout_write)?;
                Ok(())
            }
        }
    }
}

fn passphrase(confirm: bool) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(p);
    }
    let p = rpassword::prompt_password("passphrase: ").context(
        "cannot read a passphrase (no terminal?): set FERRY_PASSPHRASE or use the key file",
    )?;
    if confirm {
        let again = rpassword::prompt_password("again: ")?;
        if again != p {
            bail!("the passphrases differ");
        }
    }
    if p.is_empty() {
        bail!("an empty passphrase protects nothing");
    }
    Ok(p)
}

fn stretch(pass: &str, params: &Argon2Params) -> anyhow::Result<SealKey> {
    let p = argon2::Params::new(
        params.m_cost_kib(),
        params.t_cost(),
        params.p_cost(),
        Some(32),
    )
    .map_err(|e| anyhow::anyhow!("invalid Argon2 parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(pass.as_bytes(), params.salt(), &mut key)
        .map_err(|e| anyhow::anyhow!("Argon2id failed: {e}"))?;
    Ok(SealKey::new(&key))
}

fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    Ok(b)
}

/// `seal IN -o OUT`.
pub fn seal(
    input: &Path,
    out: &Path,
    key: KeyChoice,
    compress: bool,
    force: bool,
) -> anyhow::Result<()> {
    let (source, seal_key) = match key {
        KeyChoice::KeyFile(path) => (
            KeySource::KeyFile,
            SealKey::from_key_bytes(&crate::keysource::load(path)?.0),
        ),
        KeyChoice::Passphrase => {
            let params = Argon2Params::recommended(random()?);
            let k = stretch(&passphrase(true)?, &params)?;
            (KeySource::Argon2id(params), k)
        }
    };
    let header = FileHeader {
        key: source,
        codec: if compress {
            PlaintextCodec::Deflate
        } else {
            PlaintextCodec::Stored
        },
    };
    let reader = open_input(input)?;
    let mut dest = Dest::new(out, force)?;
    let mut w = io::BufWriter::with_capacity(256 * 1024, dest.writer());
    let sealed = if compress {
        let mut deflated = flate2::read::DeflateEncoder::new(reader, flate2::Compression::fast());
        seal_with_header(&mut deflated, &mut w, &seal_key, &header)
    } else {
        let mut reader = reader;
        seal_with_header(&mut reader, &mut w, &seal_key, &header)
    };
    sealed.context("cannot seal")?;
    drop(w);
    dest.publish()
}

fn describe(e: SealError) -> anyhow::Error {
    match e {
        SealError::WrongKey => anyhow::anyhow!("wrong key or passphrase for this sealed file"),
        SealError::Truncated => anyhow::anyhow!("the sealed file is truncated"),
        SealError::Authentication => {
            anyhow::anyhow!("the sealed file is corrupt or was tampered with")
        }
        SealError::NotSealedFile => anyhow::anyhow!("not a ferry sealed file"),
        other => anyhow::anyhow!("cannot open: {other}"),
    }
}

fn check_cost(params: &Argon2Params, limit: &Argon2CostLimit) -> anyhow::Result<()> {
    if params.check_cost(limit).is_err() {
        bail!(
            "this sealed file asks Argon2id for {} MiB, {} passes and {} lanes, more than the \
             limit of {} MiB, {} passes and {} lanes; if you trust the file, raise the limit \
             with --max-argon2-mib / --max-argon2-passes",
            params.m_cost_kib().div_ceil(1024),
            params.t_cost(),
            params.p_cost(),
            limit.max_m_cost_kib / 1024,
            limit.max_t_cost,
            limit.max_p_cost,
        );
    }
    Ok(())
}

/// Where opened plaintext goes: straight to the file, or through an inflater first.
enum Sink<W: Write> {
    Plain(W),
    Inflate(flate2::write::DeflateDecoder<W>),
}

impl<W: Write> Sink<W> {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Inflate(d) => d.write_all(b),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Inflate(d) => d.finish()?.flush(),
        }
    }
}

/// `open IN -o OUT`.
pub fn open(
    input: &Path,
    out: &Path,
    key_path: Option<PathBuf>,
    force: bool,
    limit: &Argon2CostLimit,
) -> anyhow::Result<()> {
    let mut reader = open_input(input)?;
    // The header first (it names the key source and the codec).
    let mut head = Vec::with_capacity(MAX_HEADER_LEN);
    let (header, used) = loop {
        if let Some(h) = FileHeader::decode(&head).map_err(describe)? {
            break h;
        }
        let mut b = [0u8; 1];
        if reader.read(&mut b)? == 0 {
            return Err(describe(SealError::NotSealedFile));
        }
        head.push(b[0]);
    };
    debug_assert_eq!(used, head.len());
    let key = match &header.key {
        KeySource::KeyFile => SealKey::from_key_bytes(&crate::keysource::load(key_path)?.0),
        KeySource::Argon2id(params) => {
            // The header is not authenticated yet: refuse a hostile cost before prompting or
            // allocating anything.
            check_cost(params, limit)?;
            stretch(&passphrase(false)?, params)?
        }
        _ => bail!("this sealed file uses a key source this version does not know"),
    };
    let mut opener: Opener = header.opener(&key);
    let mut dest = Dest::new(out, force)?;
    let deflate = header.codec == PlaintextCodec::Deflate;
    {
        let file = io::BufWriter::with_capacity(256 * 1024, dest.writer());
        let mut sink = if deflate {
            Sink::Inflate(flate2::write::DeflateDecoder::new(file))
        } else {
            Sink::Plain(file)
        };
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let mut input = &buf[..n];
            while !input.is_empty() {
                if let Some(chunk) = opener.update(&mut input).map_err(describe)? {
                    sink.write_all(chunk)?;
                }
            }
        }
        let last = opener.finish().map_err(describe)?;
        sink.write_all(&last)?;
        sink.finish()?;
    }
    // Everything verified: only now does the plaintext get its final name.
    dest.publish()
}
