//! `--retries N`: which failures are worth another attempt, the back-off between attempts (said
//! at normal verbosity: `retrying in 1 s (2/3)`), and the one-line text of a failure that is not
//! (naming the peer, the phase and the fix).
//!
//! Retried: a connection refused, reset or timed out; a temporary name-resolution failure; a
//! busy server; a session dropped mid-transfer (the next attempt resumes: the server kept what
//! arrived). Never retried: a name that does not resolve, a wrong key, a peer that does not
//! speak ferry, a handshake nobody answered, per-file refusals (exists, permission...).

use std::io;
use std::time::Duration;

use ferry_app::host::RunError;
use proto::{HandshakeError, SessionError};

use crate::cli::Remote;

/// What to do about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No connection was made (nothing started): try again with the same job.
    Connect,
    /// The server refused the connection as busy (nothing started).
    Busy,
    /// The session ended early: reconnect and resume what is left.
    Dropped,
    /// Retrying cannot help.
    Final,
}

/// UDP: nobody answered the handshake (silence, or the port unreachable).
#[derive(Debug)]
pub struct NoAnswer(pub String);

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoAnswer {}

/// Classify a failed attempt; `started` says whether the session got as far as moving a file
/// or an answer.
pub fn classify(e: &anyhow::Error, started: bool) -> Verdict {
    if let Some(run) = e.downcast_ref::<RunError>() {
        return match run {
            _ if run.is_busy() => Verdict::Busy,
            RunError::Io(_) | RunError::Session(SessionError::Truncated) => Verdict::Dropped,
            RunError::Session(SessionError::TimedOut) if started => Verdict::Dropped,
            // Cancelled: a server stopping (see `ferry_app::agent::shut_down_all`).
            RunError::Session(SessionError::ClosedByPeer(
                proto::CloseCode::TimedOut
                | proto::CloseCode::InternalError
                | proto::CloseCode::Cancelled,
            )) => Verdict::Dropped,
            _ => Verdict::Final,
        };
    }
    if e.downcast_ref::<NoAnswer>().is_some() {
        return Verdict::Connect;
    }
    match e.chain().find_map(|c| c.downcast_ref::<io::Error>()) {
        Some(io) if is_unknown_host(io) => Verdict::Final,
        Some(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::TimedOut
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::Interrupted
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable => Verdict::Connect,
            // getaddrinfo's EAI_AGAIN ("Temporary failure in name resolution").
            _ if io.to_string().contains("emporary failure") => Verdict::Connect,
            _ => Verdict::Final,
        },
        None => Verdict::Final,
    }
}

/// The resolver says the name does not exist (as opposed to a temporary failure).
fn is_unknown_host(e: &io::Error) -> bool {
    let s = e.to_string();
    [
        "not known",
        "No address associated",
        "nodename nor servname",
        ": no address",
    ]
    .iter()
    .any(|m| s.contains(m))
}

/// The pause before retry number `n` (1-based): 1 s, 2 s, 4 s, then 8 s.
pub fn delay(n: u32) -> Duration {
    Duration::from_secs(1 << n.saturating_sub(1).min(3))
}

/// `connection to HOST dropped; retrying in 1 s (2/3)`.
pub fn announce(what: &str, n: u32, of: u32) -> String {
    format!("{what}; retrying in {} s ({n}/{of})", delay(n).as_secs())
}

/// What a retry is about, for [`announce`].
pub fn what(verdict: Verdict, remote: &Remote) -> String {
    match verdict {
        Verdict::Busy => "server busy".to_owned(),
        Verdict::Dropped => format!("the connection to {remote} dropped"),
        _ => format!("cannot connect to {remote}"),
    }
}

/// The one line a final failure prints: the peer, the phase, the cause and the fix.
pub fn explain(
    e: anyhow::Error,
    remote: &Remote,
    started: bool,
    timeout: Duration,
) -> anyhow::Error {
    let not_ferry = |why: &str| {
        anyhow::anyhow!(
            "{remote} answered, but not as a ferry server ({why}): is this a ferry server? \
             check the host and port"
        )
    };
    if let Some(run) = e.downcast_ref::<RunError>() {
        return match run {
            RunError::Session(SessionError::TimedOut) if !started => anyhow::anyhow!(
                "no answer from {remote} during the handshake within {} s: is this a ferry \
                 server, and is the port right?",
                timeout.as_secs()
            ),
            RunError::Session(SessionError::TimedOut) => anyhow::anyhow!(
                "{remote} went silent mid-transfer: rerun the same command to resume"
            ),
            RunError::Session(SessionError::Handshake(h)) => match h {
                HandshakeError::NotFerry
                | HandshakeError::BadLength
                | HandshakeError::BadHello
                | HandshakeError::WrongTransport(_) => not_ferry(&h.to_string()),
                _ => e,
            },
            RunError::Session(SessionError::Decode(_) | SessionError::Record(_)) if !started => {
                not_ferry("its answer does not decode")
            }
            RunError::Session(SessionError::Truncated) => anyhow::anyhow!(
                "the connection to {remote} ended mid-session: rerun the same command to resume"
            ),
            RunError::Session(SessionError::ClosedByPeer(proto::CloseCode::Cancelled)) => {
                anyhow::anyhow!(
                    "{remote} closed the session (the server is stopping): rerun the same \
                     command to resume"
                )
            }
            RunError::Io(io) => anyhow::anyhow!(
                "the connection to {remote} dropped ({io}): rerun the same command to resume"
            ),
            _ => e,
        };
    }
    if let Some(io) = e.chain().find_map(|c| c.downcast_ref::<io::Error>())
        && is_unknown_host(io)
    {
        return anyhow::anyhow!(
            "cannot resolve {}: no such host (check the name, or give an IP address)",
            remote.host
        );
    }
    if let Some(io) = e.chain().find_map(|c| c.downcast_ref::<io::Error>())
        && io.kind() == io::ErrorKind::ConnectionRefused
    {
        return anyhow::anyhow!(
            "cannot connect to {remote}: nothing listens there (is `serve` running, on this \
             port?)"
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> Remote {
        Remote {
            host: "example".into(),
            port: 6868,
        }
    }

    #[test]
    fn what_is_retried() {
        let run = |e: RunError| anyhow::Error::from(e);
        let refused = anyhow::Error::new(io::Error::from(io::ErrorKind::ConnectionRefused))
            .context("cannot connect");
        assert_eq!(classify(&refused, false), Verdict::Connect);
        let unknown = anyhow::Error::new(io::Error::other(
            "failed to lookup address information: Name or service not known",
        ));
        assert_eq!(classify(&unknown, false), Verdict::Final);
        assert!(
            explain(unknown, &remote(), false, Duration::from_secs(10))
                .to_string()
                .contains("cannot resolve example: no such host")
        );
        let pipe = run(RunError::Io(io::Error::from(io::ErrorKind::BrokenPipe)));
        assert_eq!(classify(&pipe, true), Verdict::Dropped);
        let auth = run(RunError::Session(SessionError::Authentication));
        assert_eq!(classify(&auth, false), Verdict::Final);
        let refused = run(RunError::Session(SessionError::Handshake(
            HandshakeError::Refused,
        )));
        assert_eq!(classify(&refused, false), Verdict::Final);
        let silent = run(RunError::Session(SessionError::TimedOut));
        assert_eq!(classify(&silent, false), Verdict::Final);
        assert_eq!(classify(&silent, true), Verdict::Dropped);
        assert_eq!(
            explain(silent, &remote(), false, Duration::from_secs(10)).to_string(),
            "no answer from example:6868 during the handshake within 10 s: is this a ferry \
             server, and is the port right?"
        );
    }

    #[test]
    fn announcements() {
        assert_eq!(delay(1), Duration::from_secs(1));
        assert_eq!(delay(2), Duration::from_secs(2));
        assert_eq!(delay(9), Duration::from_secs(8));
        assert_eq!(
            announce("server busy", 1, 3),
            "server busy; retrying in 1 s (1/3)"
        );
    }
}
