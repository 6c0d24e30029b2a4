//! The config file: defaults for flags, in TOML.
//!
//! Path: `$FERRY_CONFIG` when set (it must then exist), else `config.toml` beside the default
//! key (`$XDG_CONFIG_HOME/ferry/config.toml`, else `~/.config/ferry/config.toml`); a missing
//! default file is no config. Every key is optional:
//!
//! ```toml
//! remote = "files.example.org:6868"   # default --to / --from
//! key = "/etc/ferry/key"              # default --key (FERRY_KEY and FERRY_KEY_DATA win)
//! compress = "auto"                   # default send --compress
//! retries = 5                         # default --retries
//! exclude = ["*.o", "target/"]        # default send --exclude
//! ```
//!
//! The values become the clap defaults of the matching arguments ([`apply`]), so a flag on
//! the command line (or its environment variable) always wins, and a bad value is reported
//! as clap reports a bad flag.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Deserialize;

/// The environment variable naming the config file.
pub const ENV_VAR: &str = "FERRY_CONFIG";

/// The config file's content.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `--to` / `--from`.
    pub remote: Option<String>,
    /// Default `--key`.
    pub key: Option<PathBuf>,
    /// Default `send --compress`.
    pub compress: Option<String>,
    /// Default `--retries`.
    pub retries: Option<u32>,
    /// Default `send --exclude`.
    pub exclude: Option<Vec<String>>,
}

/// The config file's path, and whether it was named explicitly (then it must exist).
///
/// # Errors
/// No home directory.
pub fn path() -> anyhow::Result<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        return Ok((PathBuf::from(p), true));
    }
    let key = crate::keyfile::default_path()?;
    Ok((key.with_file_name("config.toml"), false))
}

/// Read the config file (an absent default file is an empty config).
///
/// # Errors
/// The file named by [`ENV_VAR`] is missing, or the file is unreadable or not valid.
pub fn load() -> anyhow::Result<Config> {
    let Ok((path, explicit)) = path() else {
        return Ok(Config::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(Config::default());
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the config file {}", path.display()));
        }
    };
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Make `config`'s values the defaults of `cmd`'s arguments.
#[must_use]
pub fn apply(mut cmd: clap::Command, config: &Config) -> clap::Command {
    if let Some(remote) = &config.remote {
        let remote = leak(remote.clone());
        for (sub, arg) in [
            ("send", "to"),
            ("record", "to"),
            ("get", "from"),
            ("ls", "from"),
        ] {
            cmd = cmd.mut_subcommand(sub, |s| {
                s.mut_arg(arg, |a| a.required(false).default_value(remote))
            });
        }
    }
    if let Some(key) = &config.key
        && crate::keysource::data_env().is_none()
    {
        let key = leak(key.to_string_lossy().into_owned());
        cmd = cmd.mut_arg("key", |a| a.default_value(key));
    }
    if let Some(c) = &config.compress {
        let c = leak(c.clone());
        cmd = cmd.mut_subcommand("send", |s| s.mut_arg("compress", |a| a.default_value(c)));
    }
    if let Some(n) = config.retries {
        let n = leak(n.to_string());
        for sub in ["send", "get", "ls", "record"] {
            cmd = cmd.mut_subcommand(sub, |s| s.mut_arg("retries", |a| a.default_value(n)));
        }
    }
    if let Some(ex) = &config.exclude {
        let ex: Vec<&'static str> = ex.iter().map(|e| leak(e.clone())).collect();
        cmd = cmd.mut_subcommand("send", |s| s.mut_arg("exclude", |a| a.default_values(ex)));
    }
    cmd
}
