//! How a run ends when the user or the system ends it: SIGINT and SIGTERM, and a closed
//! standard output.
//!
//! - A client (`send`, `get`, `ls`, `record`) hit by SIGINT or SIGTERM closes its session as
//!   cancelled (the agents watch [`cancel_flag`]: nothing more is sent, the server keeps what
//!   arrived as a partial file), clears its progress bars, prints [`INTERRUPTED`] and exits 130
//!   or 143 (128 + the signal, as shells report it). A session that cannot close within
//!   [`GRACE`] (still connecting, or a silent peer) is left to the kernel. Rerunning the same
//!   command resumes.
//! - `serve` and `daytime-serve` close every session as cancelled (within [`SERVER_GRACE`]:
//!   receivers keep partials, clients hear it and reconnect under `--retries`), say that they
//!   stop and exit 0 (a service manager's stop is not a failure).
//! - Writing to a standard output whose reader went away (`open x -o - | head`) ends the run
//!   quietly with 141 (128 + SIGPIPE), as coreutils do, instead of printing `Broken pipe`.
//!
//! A thread of its own waits for the signals (`signal-hook`), so the same code serves every
//! adapter: blocking std, mio and smol alike.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::output::Output;

/// What an interrupted client prints.
pub const INTERRUPTED: &str = "interrupted: rerun the same command to resume";

/// How long a stopping server gives its sessions to close before it exits.
pub const SERVER_GRACE: Duration = Duration::from_millis(500);

/// How long an interrupted client may take to close its session before it exits anyway.
pub const GRACE: Duration = Duration::from_secs(2);

static CANCEL: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
/// The exit status of the signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static ANNOUNCED: AtomicBool = AtomicBool::new(false);

/// Set once a client is interrupted: its agents close their sessions
/// ([`ferry_app::agent::Agent::cancel_on`]).
pub fn cancel_flag() -> Arc<AtomicBool> {
    CANCEL.clone()
}

/// The exit status of an interrupted client (130 or 143), `None` when not interrupted.
pub fn interrupted() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        code => Some(code),
    }
}

/// Print [`INTERRUPTED`] (once, whoever gets here first) and return the exit status.
pub fn announce(out: &Output, code: i32) -> i32 {
    if !ANNOUNCED.swap(true, Ordering::SeqCst) {
        out.interrupted(INTERRUPTED);
    }
    code
}

/// Exit status after SIGPIPE-like endings (128 + 13).
pub const EXIT_PIPE: i32 = 141;

/// Who is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A client command: resume hint, exit 128 + signal.
    Client,
    /// A server: stop notice, exit 0.
    Server,
}

/// Handle SIGINT and SIGTERM for the rest of the process as `role` does (see the module docs).
/// Failing to install the handler is logged and leaves the default behaviour.
pub fn install(out: &Output, role: Role) {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%e, "cannot handle signals");
            return;
        }
    };
    let out = out.clone();
    let spawned = std::thread::Builder::new()
        .name("ferry-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                match role {
                    Role::Client => {
                        let code = 128 + sig;
                        RECEIVED.store(code, Ordering::SeqCst);
                        CANCEL.store(true, Ordering::SeqCst);
                        // The main thread announces and exits once the session closed;
                        // this is for a session that cannot.
                        std::thread::sleep(GRACE);
                        exit_soon(code);
                        std::process::exit(announce(&out, code));
                    }
                    Role::Server => {
                        // Every session closes (the clients hear it and may reconnect).
                        ferry_app::agent::shut_down_all();
                        std::thread::sleep(SERVER_GRACE);
                        exit_soon(0);
                        out.info(format!(
                            "stopping on {name}: partial transfers are kept for the clients \
                             to resume"
                        ));
                        std::process::exit(0);
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(%e, "cannot start the signal thread");
    }
}

/// Standard output was closed by its reader.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Map a failed write to standard output: a broken pipe becomes [`StdoutClosed`] (a quiet
/// exit, see the module docs); other errors stay.
pub fn stdout_write(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(e).context("cannot write to standard output")
    }
}

/// Exit with `code` after a moment whatever happens: printing waits for the output locks, and
/// a run blocked on a full stdout pipe holds them.
fn exit_soon(code: i32) {
    let _ = std::thread::Builder::new().spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        std::process::exit(code);
    });
}
