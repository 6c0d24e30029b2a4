//! The `--json` vocabulary: the `reason` every error object carries, and the objects of the
//! commands beyond files and listings (key, seal, open, daytime, dry-run plans, the summary).
//! The contract is `docs/json-schema.json` (checked by `bins/tests/json_schema.rs`) and the
//! README's "JSON output" section.
//!
//! Reasons are a fixed snake_case vocabulary ([`REASONS`]); a new one is a contract change.

use std::io;

use proto::{HandshakeError, Reason, SessionError};
use serde::Serialize;

use ferry_app::host::RunError;

use crate::keyfile::KeyFileError;

/// Every `reason` an error object may carry.
pub const REASONS: &[&str] = &[
    "exists",
    "up_to_date",
    "permission",
    "bad_name",
    "not_found",
    "no_space",
    "io",
    "hash_mismatch",
    "cancelled",
    "unsupported",
    "busy",
    "wrong_key",
    "bad_key",
    "timeout",
    "refused",
    "unreachable",
    "not_resolved",
    "protocol",
    "usage",
    "interrupted",
    "other",
];

/// The reason for a file the peer (or our own store) refused or failed.
#[must_use]
pub fn problem_reason(r: Reason) -> &'static str {
    match r {
        Reason::Exists => "exists",
        Reason::UpToDate => "up_to_date",
        Reason::Denied => "permission",
        Reason::BadName => "bad_name",
        Reason::NotFound => "not_found",
        Reason::NoSpace => "no_space",
        Reason::Io => "io",
        Reason::HashMismatch => "hash_mismatch",
        Reason::Cancelled => "cancelled",
        Reason::Unsupported => "unsupported",
        Reason::Busy => "busy",
        _ => "other",
    }
}

/// The reason for a command that failed as a whole: the first cause in `e`'s chain that
/// says something more precise than "other".
#[must_use]
pub fn error_reason(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        let r = if let Some(t) = cause.downcast_ref::<Tagged>() {
            t.reason
        } else if let Some(n) = cause.downcast_ref::<crate::retry::NoAnswer>() {
            if n.0.contains("unreachable") {
                "refused"
            } else {
                "timeout"
            }
        } else if let Some(k) = cause.downcast_ref::<KeyFileError>() {
            key_reason(k)
        } else if let Some(r) = cause.downcast_ref::<RunError>() {
            match r {
                RunError::Session(s) => session_reason(s),
                RunError::Io(e) => io_reason(e),
            }
        } else if let Some(s) = cause.downcast_ref::<SessionError>() {
            session_reason(s)
        } else if let Some(e) = cause.downcast_ref::<io::Error>() {
            io_reason(e)
        } else {
            "other"
        };
        if r != "other" {
            return r;
        }
    }
    "other"
}

fn key_reason(k: &KeyFileError) -> &'static str {
    match k {
        KeyFileError::NotFound(_) => "not_found",
        KeyFileError::Insecure(..) => "permission",
        KeyFileError::Exists(_) => "exists",
        KeyFileError::Invalid(..) | KeyFileError::TooLarge(_) => "bad_key",
        KeyFileError::Io(_, _, e) => io_reason(e),
        _ => "other",
    }
}

fn session_reason(s: &SessionError) -> &'static str {
    match s {
        SessionError::Authentication
        | SessionError::Handshake(HandshakeError::Refused | HandshakeError::WrongServer) => {
            "wrong_key"
        }
        SessionError::Handshake(HandshakeError::Busy) => "busy",
        SessionError::TimedOut => "timeout",
        SessionError::Truncated | SessionError::ClosedByPeer(_) => "cancelled",
        _ => "protocol",
    }
}

/// An error whose text was rewritten for people (its cause's type is gone) but whose reason
/// was kept: see [`tagged`].
#[derive(Debug)]
pub struct Tagged {
    reason: &'static str,
    text: String,
}

impl std::fmt::Display for Tagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Tagged {}

/// `e` (its whole text) carrying `reason`, unless that is `other` or `e` already says more.
#[must_use]
pub fn tagged(reason: &'static str, e: anyhow::Error) -> anyhow::Error {
    if reason == "other" || error_reason(&e) != "other" {
        return e;
    }
    anyhow::Error::new(Tagged {
        reason,
        text: format!("{e:#}"),
    })
}

/// The reason for an I/O error.
#[must_use]
pub fn io_reason(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "not_found",
        K::PermissionDenied | K::ReadOnlyFilesystem => "permission",
        K::AlreadyExists => "exists",
        K::StorageFull | K::QuotaExceeded => "no_space",
        K::TimedOut | K::WouldBlock => "timeout",
        K::ConnectionRefused => "refused",
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => "unreachable",
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => "cancelled",
        K::Interrupted => "interrupted",
        K::InvalidInput | K::InvalidData => "io",
        _ if e.raw_os_error().is_some() => "io",
        // getaddrinfo failures arrive as `Other` / `Uncategorized` with the resolver's text.
        _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            "not_resolved"
        }
        _ => "other",
    }
}

/// `keygen` and `key fingerprint`: `{"event":"key","path":..,"fingerprint":..,"created":..}`;
/// `path` is null when the key came from `FERRY_KEY_DATA`.
#[derive(Serialize)]
pub struct KeyEvent<'a> {
    /// `"key"`.
    pub event: &'static str,
    /// The key file (null: from the environment).
    pub path: Option<&'a str>,
    /// [`crate::fingerprint::fingerprint`] of the key.
    pub fingerprint: &'a str,
    /// `keygen` wrote it now.
    pub created: bool,
    /// An identity's public key (64 hex digits, the allow list's form); none for key files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<&'a str>,
}

/// `seal` and `open`: `{"event":"sealed"|"opened","input":..,"output":..}`.
#[derive(Serialize)]
pub struct SealEvent<'a> {
    /// `"sealed"` or `"opened"`.
    pub event: &'static str,
    /// The input path (`-` for standard input).
    pub input: &'a str,
    /// The output path (`-` for standard output).
    pub output: &'a str,
}

/// `daytime`: `{"event":"daytime","server":..,"time":..}`.
#[derive(Serialize)]
pub struct DaytimeEvent<'a> {
    /// `"daytime"`.
    pub event: &'static str,
    /// `HOST:PORT` as given.
    pub server: &'a str,
    /// The server's line, as sent.
    pub time: &'a str,
}

/// `--dry-run`: `{"event":"plan","action":"send"|"get","name":..,"bytes":..}`.
#[derive(Serialize)]
pub struct PlanEvent<'a> {
    /// `"plan"`.
    pub event: &'static str,
    /// `"send"` or `"get"`.
    pub action: &'static str,
    /// The name on the server.
    pub name: &'a str,
    /// Its size (null: unknown, standard input).
    pub bytes: Option<u64>,
}

/// The last object of every command but `serve`:
/// `{"event":"summary","command":..,"ok":..,"exit_code":..,"files":..,"up_to_date":..,
/// "failed":..,"entries":..,"bytes":..,"seconds":..}`.
#[derive(Debug, Serialize, Default, Clone)]
pub struct Summary {
    /// `"summary"`.
    pub event: &'static str,
    /// The subcommand (`send`, `get`...).
    pub command: String,
    /// `exit_code == 0`.
    pub ok: bool,
    /// The process's exit status.
    pub exit_code: i32,
    /// Files transferred (sent or received).
    pub files: u64,
    /// Files already up to date (nothing transferred).
    pub up_to_date: u64,
    /// Files and requests that failed.
    pub failed: u64,
    /// Listing entries (`ls`) or plan lines (`--dry-run`).
    pub entries: u64,
    /// Bytes moved over the network (resumed prefixes not counted).
    pub bytes: u64,
    /// Wall-clock seconds of the command.
    pub seconds: f64,
}

/// The command's name in the summary, as typed.
#[must_use]
pub fn command_name(c: &crate::Command) -> &'static str {
    use crate::Command as C;
    match c {
        C::Keygen(_) => "keygen",
        C::Serve(_) => "serve",
        C::Send(_) => "send",
        C::Receive(_) => "receive",
        C::Relay(_) => "relay",
        C::Get(_) => "get",
        C::Ls(_) => "ls",
        C::Record(_) => "record",
        C::Seal(_) => "seal",
        C::Open(_) => "open",
        C::DaytimeServe(_) => "daytime-serve",
        C::Daytime(_) => "daytime",
        C::Key(_) => "key",
        C::Completions(_) => "completions",
        C::Man => "man",
    }
}

/// Whether `--json` is among the raw arguments (before `--`): usage errors are then JSON too.
pub fn json_requested<T: AsRef<std::ffi::OsStr>>(args: &[T]) -> bool {
    args.iter()
        .skip(1)
        .map(AsRef::as_ref)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_snake_case_and_listed() {
        for r in REASONS {
            assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
        }
        for r in [Reason::Exists, Reason::Denied, Reason::Busy, Reason::Other] {
            assert!(REASONS.contains(&problem_reason(r)));
        }
    }

    #[test]
    fn chain_gives_the_precise_reason() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::ConnectionRefused))
            .context("cannot connect to h:1");
        assert_eq!(error_reason(&e), "refused");
        let e = anyhow::Error::from(RunError::Session(SessionError::Authentication));
        assert_eq!(error_reason(&e), "wrong_key");
        assert_eq!(error_reason(&anyhow::anyhow!("plain")), "other");
    }

    #[test]
    fn json_flag_before_double_dash_only() {
        assert!(json_requested(&["f", "ls", "--json"]));
        assert!(!json_requested(&["f", "send", "--", "--json"]));
        assert!(!json_requested(&["--json"]));
    }
}
