//! The ferry command line, shared by every adapter binary (`ferry-std`, later `ferry-mio` and
//! `ferry-smol`) so that all of them accept the same flags and print the same things.
//!
//! - [`cli`]: the clap definitions ([`Cli`], [`Command`] and the per-command arguments),
//!   [`parse_host`] and the [`validate`] rules clap cannot express. No behaviour.
//! - [`keyfile`]: the pre-shared key file: text format with a checksum, atomic 0600 creation,
//!   the ssh-like permission check, the default path and `--key` / `FERRY_KEY` resolution.
//! - [`output`]: what the user sees: result lines or JSON objects, errors, progress bars on a
//!   terminal, and the `tracing` subscriber.
//!
//! A binary parses with [`Cli::parse_validated`] (usage errors exit 2), builds an [`Output`]
//! and calls [`init_tracing`], resolves the key with [`keyfile::resolve_path`], runs its
//! adapter, and exits 0 only when every file succeeded ([`EXIT_FAILURE`] otherwise).

pub mod cli;
pub mod keyfile;
pub mod output;
pub mod run;

pub use cli::{
    Cli, Command, Compress, DEFAULT_LISTEN, DEFAULT_LISTEN_V4, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PORT, DEFAULT_RETRIES, DEFAULT_ROOT, EXIT_FAILURE, EXIT_USAGE, GetArgs, KeygenArgs,
    LsArgs, Remote, SendArgs, ServeArgs, parse_host, validate,
};
pub use keyfile::{DecodeError, KEY_LEN, KeyFileError};
pub use output::{FileReport, Output, ProgressHandle, format_bytes, format_utc, init_tracing};
pub use run::{Runtime, main};
