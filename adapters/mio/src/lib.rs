//! ferry on a `mio` event loop: one thread drives every connection.
//!
//! Each connection is the shared driver ([`ferry_app::driver::Conn`]: its [`Session`], its
//! [`Agent`], bounded buffers and every edge-case rule) plus its socket, in a slab slot keyed by
//! its `mio` `Token`. Sockets are non-blocking and edge-triggered: a connection reads until the
//! socket would block or the driver stops taking input (`Conn::wants_input`: the session pushes
//! back, or [`INBOX_CAP`] bytes wait); `WRITABLE` interest is registered only while output is
//! pending. Timers live in one binary heap fed by each driver's `Conn::deadline` (or an ended
//! connection's linger deadline), so the loop sleeps exactly until the earliest one, and a
//! silent or slow peer is closed by the core's handshake and idle timers without costing the
//! others anything. An ended connection flushes its last records on `WRITABLE` events for at
//! most the driver's `LINGER`, then hangs up.
//!
//! # Fairness and disk I/O
//! A connection gets at most [`ROUNDS`] steps of read → driver step → write per turn,
//! then goes to the back of a ready queue if it still has work. File reads and writes stay on
//! the loop thread but are small and bounded per turn: the agent moves at most a few 64 KiB
//! chunks per pump, and a page-cache write of that size takes microseconds. Commits are the
//! slow part (fsync of the file, rename, fsync of the directory: milliseconds each), so they go
//! to a small pool of threads ([`CommitPool`], 4 threads); a finished commit wakes the loop
//! through a `mio::Waker` and the connection sends its `Ack` on its next turn. The session
//! waits for that answer by itself (the core acknowledges only after `committed`), which is
//! the back-pressure. One per-file cost stays on the loop: hashing an existing destination or
//! partial file when an offer arrives (up-to-date and resume checks).
//!
//! # Memory per connection
//! An idle connection holds its session state (a few hundred bytes), its agent, and no I/O
//! buffers: the driver's input and output buffers are released whenever it goes idle. A busy
//! connection holds at most [`INBOX_CAP`] (+ one 64 KiB read) bytes of input, [`OUTBOX_CAP`]
//! of output (an ended one's last records, flushed for at most `LINGER`), the core's bounded
//! send buffer and receive window (`Config::send_buffer`, `Config::recv_window`, about 264 KiB
//! each by default) and the agent's 64 KiB chunk buffer.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant as WallClock;

use ferry_app::admission::{AcceptErrors, Admission, Limits};
use ferry_app::agent::Agent;
use ferry_app::host::{RunError, fresh_seed};
use ferry_app::pool::CommitPool;
use ferry_disk::Store;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest};
use proto::{Config, Psk, Session};

pub use ferry_app::driver::{INBOX_CAP, OUTBOX_CAP};
pub use ferry_app::host::connect;

mod admit;
mod evloop;
mod udp;
use admit::{Accepted, Commits, accept_all};
use evloop::{AgentFrom, EventLoop, LISTENER, WAKER};
pub use udp::{run_udp_client, serve_udp};

/// Driver steps one connection gets per turn before others get theirs.
pub const ROUNDS: usize = 4;

/// Serve daytime (RFC 867) until an error: every TCP connection gets the date line and is
/// closed, every UDP datagram gets the line back. Blocking, one thread per protocol: the one
/// daytime server of every adapter ([`ferry_app::daytime::serve`]).
///
/// # Errors
/// When the listener or the socket fails for good.
pub fn daytime_serve(tcp: std::net::TcpListener, udp: std::net::UdpSocket) -> io::Result<()> {
    ferry_app::daytime::serve(tcp, udp)
}

pub use ferry_app::ServeOptions;

/// Serve forever on one thread: accept (admitted by [`ferry_app::admission`] with
/// `opts.max_connections`), drive every session, fire their timers. A failed accept (out of
/// descriptors) is retried after a short pause, never the end.
///
/// # Errors
/// Only when the poller itself fails.
pub fn serve(
    listener: std::net::TcpListener,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    ferry_app::admission::deepen_backlog(&listener);
    let mut listener = TcpListener::from_std(listener);
    let mut el = EventLoop::new()?;
    el.admission = Some(Admission::new(Limits::for_max_connections(
        opts.max_connections,
    )));
    el.poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    // Commits (fsync, rename, directory fsync) run on a small pool; a finished one wakes the
    // loop and names its connection.
    let waker = Arc::new(mio::Waker::new(el.poll.registry(), WAKER)?);
    let woken: Arc<Mutex<Vec<usize>>> = Arc::default();
    let commits = Commits {
        pool: CommitPool::new(ferry_app::pool::SERVER_THREADS)?,
        waker,
        woken: woken.clone(),
    };
    let mut events = Events::with_capacity(1024);
    let mut accept_errors = AcceptErrors::default();
    // After a failed accept, when to try again: the listener is edge-triggered and the
    // connections waiting in its backlog raise no new event.
    let mut accept_retry: Option<WallClock> = None;
    loop {
        let mut timeout = el.poll_timeout();
        if let Some(at) = accept_retry {
            let wait = at.saturating_duration_since(WallClock::now());
            timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
        }
        if let Err(e) = el.poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let retry_due = accept_retry.is_some_and(|at| at <= WallClock::now());
        if retry_due || events.iter().any(|e| e.token() == LISTENER) {
            accept_retry = match accept_all(&mut el, &listener, &psk, &store, &opts, &commits) {
                Accepted::Drained => {
                    accept_errors.succeeded();
                    None
                }
                Accepted::More => {
                    accept_errors.succeeded();
                    Some(WallClock::now())
                }
                Accepted::Failed(e) => Some(WallClock::now() + accept_errors.failed(&e)),
            };
        }
        if events.iter().any(|e| e.token() == WAKER) {
            let keys = std::mem::take(&mut *woken.lock().unwrap_or_else(|p| p.into_inner()));
            for key in keys {
                el.schedule(key);
            }
        }
        el.on_events(&events);
        el.fire_timers();
        for (_, peer, result) in el.run_ready() {
            match result {
                Ok(()) => tracing::info!(%peer, "session closed"),
                Err(e) => tracing::warn!(%peer, error = %e, "session failed"),
            }
        }
    }
}

/// Run one client session over a connected `stream` on an event loop of its own.
///
/// # Errors
/// The session's fatal error or the socket's.
pub fn run_client(
    stream: std::net::TcpStream,
    config: &Config,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    run_clients(vec![(stream, agent)], config, psk)
        .pop()
        .unwrap_or(Ok(()))
}

/// Run one server session over an accepted `stream` with `agent` (a short-code send: the
/// sending side listens and serves exactly one receiver) on an event loop of its own.
///
/// # Errors
/// As [`run_client`].
pub fn run_server(
    stream: std::net::TcpStream,
    config: &Config,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    run_sessions(vec![(stream, agent)], config, psk, true)
        .pop()
        .unwrap_or(Ok(()))
}

/// Run several client sessions at once on one event loop (one thread), each over its connected
/// stream with its own agent; returns each session's outcome, in order.
pub fn run_clients(
    conns: Vec<(std::net::TcpStream, &mut Agent)>,
    config: &Config,
    psk: &Psk,
) -> Vec<Result<(), RunError>> {
    run_sessions(conns, config, psk, false)
}

/// [`run_clients`], or server sessions over accepted streams with `server`.
fn run_sessions(
    conns: Vec<(std::net::TcpStream, &mut Agent)>,
    config: &Config,
    psk: &Psk,
    server: bool,
) -> Vec<Result<(), RunError>> {
    let mut results: Vec<Option<Result<(), RunError>>> = Vec::new();
    let mut el = match EventLoop::new() {
        Ok(el) => el,
        Err(e) => {
            return conns
                .iter()
                .map(|_| Err(RunError::Io(io::Error::new(e.kind(), e.to_string()))))
                .collect();
        }
    };
    let mut slot_of_key = std::collections::HashMap::new();
    for (i, (stream, agent)) in conns.into_iter().enumerate() {
        results.push(None);
        let started = (|| {
            stream.set_nonblocking(true)?;
            let peer = stream.peer_addr()?;
            let seed = fresh_seed()?;
            let session = if server {
                Session::server(config, psk, seed, el.clock.now())
            } else {
                Session::client(config, psk, seed, el.clock.now())
            };
            el.add(
                TcpStream::from_std(stream),
                peer,
                session,
                AgentFrom::Caller(agent),
            )
        })();
        match started {
            Ok(key) => {
                slot_of_key.insert(key, i);
            }
            Err(e) => results[i] = Some(Err(RunError::Io(e))),
        }
    }
    let mut events = Events::with_capacity(1024);
    while !el.conns.is_empty() {
        let timeout = el.poll_timeout();
        match el.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Every agent is finished and goes back to its caller.
                for (key, result) in el.end_all(&e) {
                    if let Some(i) = slot_of_key.get(&key) {
                        results[*i] = Some(result);
                    }
                }
                break;
            }
        }
        el.on_events(&events);
        el.fire_timers();
        for (key, _, result) in el.run_ready() {
            if let Some(i) = slot_of_key.get(&key) {
                results[*i] = Some(result);
            }
        }
    }
    results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
}
