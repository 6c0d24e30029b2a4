//! The pre-shared key file: its text format and how it is created, protected and loaded.
//!
//! # Format
//!
//! One line of ASCII followed by a newline:
//!
//! ```text
//! ferry-psk-v1:<base64url without padding of (32 key bytes || 4 checksum bytes)>
//! ```
//!
//! The checksum is the first 4 bytes of `SHA-256("ferry/v1 keyfile" || key)`. It catches a
//! key damaged by copying (a truncated line, a changed character), not an attacker: anyone who
//! can write the file can write a valid one. The encoded part is always 48 characters long.
//! Decoding ignores whitespace around the line and rejects anything else with a
//! [`DecodeError`].
//!
//! # Files
//!
//! - The path comes from `--key`, else the `FERRY_KEY` environment variable, else
//!   [`default_path`] (`$XDG_CONFIG_HOME/ferry/key` or `~/.config/ferry/key`): see
//!   [`resolve_path`]. The command line reads `FERRY_KEY` itself (clap `env`), so `Cli::key`
//!   already holds it; `resolve_path` reads it again, which is harmless.
//! - [`write_new`] creates the parent directories with mode 0700 and publishes the file with
//!   mode 0600 atomically (a `tempfile` in the same directory, fsync, no-clobber rename,
//!   directory fsync); it never replaces an existing file unless asked to.
//! - [`load`] refuses a key file that group or others may read or write (mode `& 0o077 != 0`),
//!   as ssh does for private keys.
//!
//! Errors are [`KeyFileError`]s inside `anyhow::Error` (downcast to match on them); their
//! `Display` is a complete one-line message naming the path.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64ct::{Base64UrlUnpadded, Encoding as _};
use sha2::{Digest as _, Sha256};

/// Length of the pre-shared key in bytes.
pub const KEY_LEN: usize = 32;

/// The text every key file line starts with; names the format version.
pub const PREFIX: &str = "ferry-psk-v1:";

/// Environment variable naming the key file when `--key` is not given.
pub const ENV_VAR: &str = "FERRY_KEY";

/// Length of the checksum appended to the key before encoding.
const CHECKSUM_LEN: usize = 4;

/// Domain separation for the checksum hash.
const CHECKSUM_DOMAIN: &[u8] = b"ferry/v1 keyfile";

/// A key file is one short line; anything larger is not one (and we do not read `/dev/zero`).
const MAX_FILE_LEN: u64 = 4096;

/// Why a key file's text is not a valid key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text does not start with [`PREFIX`] (not a ferry key file, or another version).
    WrongPrefix,
    /// The part after the prefix is not unpadded base64url.
    BadBase64,
    /// The decoded part has this many bytes instead of 36 (key and checksum).
    WrongLength(usize),
    /// The checksum does not match the key: the file was damaged.
    ChecksumMismatch,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongPrefix => write!(
                f,
                "not a ferry key file (expected one line starting with `{PREFIX}`)"
            ),
            Self::BadBase64 => write!(
                f,
                "key file is corrupt (invalid base64url after `{PREFIX}`)"
            ),
            Self::WrongLength(n) => write!(
                f,
                "key file is corrupt (decodes to {n} bytes, expected {})",
                KEY_LEN + CHECKSUM_LEN
            ),
            Self::ChecksumMismatch => write!(f, "key file is corrupt (checksum mismatch)"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What went wrong with a key file on disk. `Display` is a complete one-line message.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// No file at this path.
    NotFound(PathBuf),
    /// The file is readable or writable by group or others; carries the permission bits.
    Insecure(PathBuf, u32),
    /// [`write_new`] without `force` found a file already there.
    Exists(PathBuf),
    /// The file's content is not a valid key.
    Invalid(PathBuf, DecodeError),
    /// The file is larger than any key file.
    TooLarge(PathBuf),
    /// No path could be chosen: neither `--key`, `FERRY_KEY` nor a home directory.
    NoDefaultPath,
    /// An I/O error while doing `action` ("read", "create directory", ...) on the path.
    Io(&'static str, PathBuf, io::Error),
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(p) => write!(
                f,
                "key file not found: {} (create one with `keygen`, or copy the server's key there; \
                 --key or {ENV_VAR} choose another path)",
                p.display()
            ),
            Self::Insecure(p, mode) => write!(
                f,
                "key file {} is accessible by group or others (mode {mode:04o}); refusing to use \
                 it: run `chmod 600 {}`",
                p.display(),
                p.display()
            ),
            Self::Exists(p) => write!(
                f,
                "key file exists: {} (use --force to replace it)",
                p.display()
            ),
            Self::Invalid(p, e) => write!(f, "{}: {e}", p.display()),
            Self::TooLarge(p) => write!(
                f,
                "{}: not a ferry key file (larger than {MAX_FILE_LEN} bytes)",
                p.display()
            ),
            Self::NoDefaultPath => write!(
                f,
                "cannot find the home directory for the default key path; pass --key PATH or set \
                 {ENV_VAR}"
            ),
            Self::Io(action, p, e) => write!(f, "cannot {action} {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Draw a new key from the operating system's random number generator.
///
/// # Errors
/// The OS generator is unavailable.
pub fn generate() -> anyhow::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).context("cannot draw random bytes for a new key from the OS")?;
    Ok(key)
}

fn checksum(key: &[u8; KEY_LEN]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(key)
        .finalize();
    let mut sum = [0u8; CHECKSUM_LEN];
    sum.copy_from_slice(&digest[..CHECKSUM_LEN]);
    sum
}

/// The key file text for `key`: one line with its trailing newline.
pub fn encode(key: &[u8; KEY_LEN]) -> String {
    let mut raw = [0u8; KEY_LEN + CHECKSUM_LEN];
    raw[..KEY_LEN].copy_from_slice(key);
    raw[KEY_LEN..].copy_from_slice(&checksum(key));
    format!("{PREFIX}{}\n", Base64UrlUnpadded::encode_string(&raw))
}

/// Parse key file text (whitespace around the line is ignored).
///
/// # Errors
/// The [`DecodeError`] saying what is wrong.
pub fn decode(text: &str) -> Result<[u8; KEY_LEN], DecodeError> {
    let encoded = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(DecodeError::WrongPrefix)?;
    let raw = Base64UrlUnpadded::decode_vec(encoded).map_err(|_| DecodeError::BadBase64)?;
    if raw.len() != KEY_LEN + CHECKSUM_LEN {
        return Err(DecodeError::WrongLength(raw.len()));
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&raw[..KEY_LEN]);
    if raw[KEY_LEN..] != checksum(&key) {
        return Err(DecodeError::ChecksumMismatch);
    }
    Ok(key)
}

/// The default key path: `$XDG_CONFIG_HOME/ferry/key` when that variable is set to an absolute
/// path, else `$HOME/.config/ferry/key` (on every platform, so that the path the docs show is
/// the path used).
///
/// # Errors
/// [`KeyFileError::NoDefaultPath`] when there is no home directory.
pub fn default_path() -> anyhow::Result<PathBuf> {
    default_path_from(std::env::var_os("XDG_CONFIG_HOME"), dirs::home_dir)
}

fn default_path_from(
    xdg_config_home: Option<std::ffi::OsString>,
    home: impl FnOnce() -> Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    // The XDG spec says relative values are invalid and must be ignored.
    let config = match xdg_config_home.map(PathBuf::from) {
        Some(xdg) if xdg.is_absolute() => xdg,
        _ => home()
            .filter(|h| !h.as_os_str().is_empty())
            .ok_or(KeyFileError::NoDefaultPath)?
            .join(".config"),
    };
    Ok(config.join("ferry").join("key"))
}

/// The key path to use: `flag` (`--key`, which clap also fills from `FERRY_KEY`), else the
/// `FERRY_KEY` environment variable when set and non-empty, else [`default_path`].
///
/// # Errors
/// [`KeyFileError::NoDefaultPath`].
pub fn resolve_path(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    resolve_path_from(flag, std::env::var_os(ENV_VAR), default_path)
}

fn resolve_path_from(
    flag: Option<PathBuf>,
    env: Option<std::ffi::OsString>,
    default: impl FnOnce() -> anyhow::Result<PathBuf>,
) -> anyhow::Result<PathBuf> {
    let non_empty = |p: &PathBuf| !p.as_os_str().is_empty();
    if let Some(p) = flag.filter(non_empty) {
        return Ok(p);
    }
    if let Some(p) = env.map(PathBuf::from).filter(non_empty) {
        return Ok(p);
    }
    default()
}

/// Read and decode the key at `path`, refusing a file that group or others can access.
///
/// # Errors
/// A [`KeyFileError`]: `NotFound`, `Insecure` (with the `chmod 600` advice), `Invalid`,
/// `TooLarge` or `Io`.
pub fn load(path: &Path) -> anyhow::Result<[u8; KEY_LEN]> {
    let io_err = |action, e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => KeyFileError::NotFound(path.to_owned()),
        _ => KeyFileError::Io(action, path.to_owned(), e),
    };
    let file = File::open(path).map_err(|e| io_err("open key file", e))?;
    // Check the file actually opened (fstat), not the path, so a swap in between cannot fool us.
    let meta = file.metadata().map_err(|e| io_err("inspect key file", e))?;
    if meta.is_dir() {
        return Err(KeyFileError::Io(
            "read key file",
            path.to_owned(),
            io::Error::other("it is a directory"),
        )
        .into());
    }
    check_private(path, &meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err("read key file", e))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeyFileError::TooLarge(path.to_owned()).into());
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| KeyFileError::Invalid(path.to_owned(), DecodeError::WrongPrefix))?;
    decode(text).map_err(|e| KeyFileError::Invalid(path.to_owned(), e).into())
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Insecure(path.to_owned(), mode));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &fs::Metadata) -> Result<(), KeyFileError> {
    Ok(())
}

/// Write `key` to a new key file at `path` with mode 0600, creating missing parent directories
/// with mode 0700. The file appears atomically, complete and fsynced, or not at all. Without
/// `force` an existing file is never replaced (not even by a concurrent writer: publishing is
/// `tempfile`'s `persist_noclobber`, which fails if the name exists); with `force` it is replaced by
/// a rename.
///
/// # Errors
/// [`KeyFileError::Exists`] without `force`; [`KeyFileError::Io`] otherwise.
pub fn write_new(path: &Path, key: &[u8; KEY_LEN], force: bool) -> anyhow::Result<()> {
    let exists = || KeyFileError::Exists(path.to_owned());
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(exists().into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        KeyFileError::Io(
            "write key file",
            path.to_owned(),
            io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"),
        )
    })?;
    create_private_dirs(&dir).map_err(|e| KeyFileError::Io("create directory", dir.clone(), e))?;

    // A 0600 temporary file in the same directory (tempfile's), removed if anything fails.
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(file_name);
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| KeyFileError::Io("create a temporary file in", dir.clone(), e))?;
    let written = (|| {
        set_private(tmp.as_file())?;
        tmp.write_all(encode(key).as_bytes())?;
        tmp.as_file().sync_all()
    })();
    if let Err(e) = written {
        return Err(KeyFileError::Io("write", tmp.path().to_owned(), e).into());
    }
    // Without `force`, never replace a file that appeared meanwhile (no-clobber rename).
    let published = if force {
        tmp.persist(path)
    } else {
        tmp.persist_noclobber(path)
    };
    if let Err(e) = published {
        return Err(match e.error.kind() {
            io::ErrorKind::AlreadyExists => exists(),
            _ => KeyFileError::Io("write key file", path.to_owned(), e.error),
        }
        .into());
    }
    sync_dir(&dir).map_err(|e| KeyFileError::Io("sync directory", dir, e))?;
    Ok(())
}

#[cfg(unix)]
fn set_private(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    // The umask can only have removed bits from 0600; make it exactly 0600 anyway.
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dirs(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// For `serve`: load the key at `path`, or when there is none create it (mode 0600, parents
/// 0700) and call `notice` with the path so the command line can tell the user to copy it to
/// clients. If another process creates the key at the same moment, its key is loaded.
///
/// # Errors
/// As [`load`] and [`write_new`]; an existing but unusable file (insecure, corrupt) is an error,
/// never replaced.
pub fn load_or_create(path: &Path, notice: impl FnOnce(&Path)) -> anyhow::Result<[u8; KEY_LEN]> {
    match load(path) {
        Err(e) if matches!(e.downcast_ref(), Some(KeyFileError::NotFound(_))) => {}
        other => return other,
    }
    let key = generate()?;
    match write_new(path, &key, false) {
        Ok(()) => {
            notice(path);
            Ok(key)
        }
        // Lost a race with another process creating it: use theirs.
        Err(e) if matches!(e.downcast_ref(), Some(KeyFileError::Exists(_))) => load(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
