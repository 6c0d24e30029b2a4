//! Where the pre-shared key comes from. In order:
//!
//! 1. a path given explicitly: `--key PATH`, else the `FERRY_KEY` environment variable;
//! 2. the key itself in [`DATA_ENV`] (`FERRY_KEY_DATA`), holding the key file's text
//!    (`ferry-psk-v1:...`): a CI secret needs no 0600 file;
//! 3. `key = "PATH"` in the config file ([`crate::config`]; ignored when `FERRY_KEY_DATA` is
//!    set);
//! 4. the default path ([`keyfile::default_path`]).
//!
//! Steps 1 and 3 both arrive as [`crate::Cli::key`] (clap reads the flag, the variable and
//! the config default in that order).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::keyfile::{self, KEY_LEN};

/// The environment variable holding the key file's text.
pub const DATA_ENV: &str = "FERRY_KEY_DATA";

/// The key text from [`DATA_ENV`] when set and not empty.
#[must_use]
pub fn data_env() -> Option<String> {
    std::env::var(DATA_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Where a key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A key file.
    File(PathBuf),
    /// [`DATA_ENV`].
    Env,
}

impl Origin {
    /// The path, or `None` for the environment.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            Origin::File(p) => Some(p),
            Origin::Env => None,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env => f.write_str(DATA_ENV),
        }
    }
}

/// Where the key is: `flag` ([`crate::Cli::key`]), else [`DATA_ENV`], else the default path.
///
/// # Errors
/// No home directory for the default path.
pub fn origin(flag: Option<PathBuf>) -> anyhow::Result<Origin> {
    if let Some(p) = flag.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(Origin::File(p));
    }
    if std::env::var_os(keyfile::ENV_VAR).is_none_or(|v| v.is_empty()) && data_env().is_some() {
        return Ok(Origin::Env);
    }
    Ok(Origin::File(keyfile::resolve_path(None)?))
}

/// Load the key (see the module docs for the order).
///
/// # Errors
/// As [`keyfile::load`]; a corrupt [`DATA_ENV`] names the variable.
pub fn load(flag: Option<PathBuf>) -> anyhow::Result<([u8; KEY_LEN], Origin)> {
    let origin = origin(flag)?;
    let key = load_from(&origin)?;
    Ok((key, origin))
}

fn load_from(origin: &Origin) -> anyhow::Result<[u8; KEY_LEN]> {
    match origin {
        Origin::File(p) => keyfile::load(p),
        Origin::Env => {
            let text = data_env().unwrap_or_default();
            keyfile::decode(&text)
                .map_err(|e| keyfile::KeyFileError::Invalid(PathBuf::from(DATA_ENV), e))
                .with_context(|| format!("{DATA_ENV} does not hold a ferry key"))
        }
    }
}

/// For `serve`: [`load`], but a missing key file is created (see [`keyfile::load_or_create`]).
///
/// # Errors
/// As [`keyfile::load_or_create`].
pub fn load_or_create(
    flag: Option<PathBuf>,
    notice: impl FnOnce(&Path),
) -> anyhow::Result<[u8; KEY_LEN]> {
    match origin(flag)? {
        Origin::File(p) => keyfile::load_or_create(&p, notice),
        env => load_from(&env),
    }
}
