//! ferry over blocking `std::net` TCP sockets.
//!
//! One session per connection, driven by [`run_session`]: a reader thread moves socket bytes
//! into a bounded channel (so reading never waits for writing and memory stays bounded), and
//! the connection's thread owns the [`Session`] and its [`Agent`], feeds it input, lets timers
//! fire at the core's [`Session::poll_timeout`], and writes what [`Session::poll_transmit`]
//! produces. [`serve`] runs a thread per connection; who gets in is
//! [`ferry_app::admission`]'s policy (a small handshake quota that evicts its oldest, then
//! `max_connections` authenticated ones; the rest hear "busy"). [`connect`] dials with a
//! timeout and retries with back-off. No protocol decision lives here.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread;

use ferry_app::admission::{AcceptErrors, Limits, Pass, SharedAdmission, deepen_backlog, refuse};
use ferry_app::agent::{Agent, LogObserver};
use ferry_app::host::{Clock, RunError, fresh_seed, is_busy, keepalive};
use ferry_disk::Store;

pub use ferry_app::host::connect;
use proto::{Config, MAX_RECORD, Psk, Session};

/// Bytes read from the socket per read call.
const READ_BUF: usize = 256 * 1024;
/// Read buffers in flight between the reader thread and the session (bounds memory).
const READ_QUEUE: usize = 8;
/// Bytes gathered from `poll_transmit` before one `write_all`.
const WRITE_BATCH: usize = 256 * 1024;

enum Input {
    Data(Vec<u8>),
    Eof,
    Failed(io::Error),
}

fn spawn_reader(stream: Arc<TcpStream>) -> io::Result<Receiver<Input>> {
    let (tx, rx): (SyncSender<Input>, Receiver<Input>) = sync_channel(READ_QUEUE);
    thread::Builder::new()
        .name("ferry-reader".into())
        .spawn(move || {
            loop {
                // Wait for input before taking a buffer: an idle connection holds none.
                match stream.peek(&mut [0u8]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    _ => {}
                }
                let mut buf = vec![0u8; READ_BUF];
                let msg = match (&*stream).read(&mut buf) {
                    Ok(0) => Input::Eof,
                    Ok(n) => {
                        buf.truncate(n);
                        Input::Data(buf)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Input::Failed(e),
                };
                let last = !matches!(msg, Input::Data(_));
                if tx.send(msg).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(rx)
}

/// Records gathered for one `write_all`: the buffer grows (zero-filled once) as far as the
/// output needs, is reused while data moves, and is released when the connection goes idle.
#[derive(Default)]
struct Out {
    buf: Vec<u8>,
    filled: usize,
}

impl Out {
    /// Room for one more record after what is gathered.
    fn room(&mut self) -> &mut [u8] {
        if self.buf.len() < self.filled + MAX_RECORD {
            self.buf.resize(self.filled + MAX_RECORD, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Nothing to send for now: give the memory back.
    fn release(&mut self) {
        if self.filled == 0 {
            *self = Out::default();
        }
    }
}

/// Gather what the session wants to send and write it. Returns whether anything was written.
fn transmit(
    session: &mut Session,
    clock: &Clock,
    mut stream: &TcpStream,
    out: &mut Out,
) -> io::Result<bool> {
    let mut any = false;
    loop {
        if !any && out.filled == 0 && session.poll_transmit(clock.now(), &mut []) == Ok(0) {
            // Nothing to send: ask without taking a buffer.
            return Ok(false);
        }
        let n = session
            .poll_transmit(clock.now(), out.room())
            .map_err(|e| io::Error::other(e.to_string()))?;
        out.filled += n;
        if n == 0 || out.filled >= WRITE_BATCH {
            if out.filled > 0 {
                stream.write_all(&out.buf[..out.filled])?;
                out.filled = 0;
                any = true;
            }
            if n == 0 {
                return Ok(any);
            }
        }
    }
}

/// Drive one session over a connected stream until it ends. The agent is told how it ended
/// ([`Agent::finish`]) either way, except for a busy refusal (nothing started: retry with it).
///
/// # Errors
/// The session's fatal error, or the socket's.
pub fn run_session(
    stream: TcpStream,
    session: Session,
    agent: &mut Agent,
    clock: &Clock,
) -> Result<(), RunError> {
    run_gated(stream, session, agent, clock, None)
}

/// [`run_session`] for a server connection holding `pass`: once the client's first handshake
/// message checks out, the connection must [`Pass::authenticate`] or is refused as busy.
fn run_gated(
    stream: TcpStream,
    mut session: Session,
    agent: &mut Agent,
    clock: &Clock,
    gate: Option<&mut Pass>,
) -> Result<(), RunError> {
    let result = drive(stream, &mut session, agent, clock, gate);
    let error = match &result {
        Err(RunError::Session(e)) => Some(*e),
        _ => session.error(),
    };
    if !is_busy(error.as_ref()) {
        agent.finish(error.as_ref());
    }
    match (result, error) {
        (Ok(()), Some(e)) => Err(RunError::Session(e)),
        (r, _) => r,
    }
}

fn drive(
    stream: TcpStream,
    session: &mut Session,
    agent: &mut Agent,
    clock: &Clock,
    mut gate: Option<&mut Pass>,
) -> Result<(), RunError> {
    stream.set_nodelay(true).map_err(RunError::Io)?;
    // A peer that stops reading must not hold this thread forever.
    stream
        .set_write_timeout(Some(session.idle_timeout()))
        .map_err(RunError::Io)?;
    // Reader and writer share the socket (no second descriptor).
    let stream = Arc::new(stream);
    let rx = spawn_reader(stream.clone()).map_err(RunError::Io)?;
    let mut inbox: Vec<u8> = Vec::new();
    let mut out = Out::default();
    let mut eof = false;
    let result = 'conn: loop {
        // Take what the reader has, without waiting (bounded: the inbox holds at most a few
        // reads beyond what the session is willing to consume).
        while !eof && inbox.len() < READ_BUF * READ_QUEUE {
            match rx.try_recv() {
                Ok(Input::Data(d)) => inbox.extend_from_slice(&d),
                Ok(Input::Eof) | Err(TryRecvError::Disconnected) => eof = true,
                Ok(Input::Failed(e)) => break 'conn Err(RunError::Io(e)),
                Err(TryRecvError::Empty) => break,
            }
        }
        let now = clock.now();
        let mut progress = false;
        if !inbox.is_empty() && session.wants_input() {
            match session.handle_input(now, &mut inbox) {
                Ok(n) => {
                    inbox.drain(..n);
                    progress |= n > 0;
                }
                Err(e) => break Err(RunError::Session(e)),
            }
        }
        if session.peer_side().is_none() {
            if let Some(pass) = &gate
                && !inbox.is_empty()
            {
                pass.heard();
            }
        } else if let Some(pass) = gate.take()
            && !pass.authenticate()
        {
            // Message 2 is never sent: the client hears "busy" instead.
            refuse(&stream);
            return Err(RunError::Io(io::Error::other("refused: server busy")));
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        progress |= agent.pump(session, now);
        progress |= transmit(session, clock, &stream, &mut out).map_err(RunError::Io)?;
        if session.is_closed() {
            break session
                .error()
                .map_or(Ok(()), |e| Err(RunError::Session(e)));
        }
        if progress {
            continue;
        }
        // Nothing to do until input or a timer: an idle connection holds no buffers.
        out.release();
        if inbox.is_empty() {
            inbox = Vec::new();
        }
        if eof {
            // Whatever is still buffered can never complete a record.
            if let Err(e) = session.handle_eof(now) {
                break Err(RunError::Session(e));
            }
            match session.poll_timeout() {
                Some(t) => thread::sleep(clock.until(t)),
                None => break Ok(()),
            }
            continue;
        }
        let msg = match session.poll_timeout() {
            Some(t) => rx.recv_timeout(clock.until(t)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Input::Data(d)) => inbox.extend_from_slice(&d),
            Ok(Input::Eof) | Err(RecvTimeoutError::Disconnected) => eof = true,
            Ok(Input::Failed(e)) => break Err(RunError::Io(e)),
            Err(RecvTimeoutError::Timeout) => {}
        }
    };
    // Flush what is left (an error Close, or our FINAL), then hang up.
    let _ = transmit(session, clock, &stream, &mut out);
    let _ = stream.shutdown(Shutdown::Both);
    result
}

/// Run one client session over `stream` with `agent` (its job decides what happens).
///
/// # Errors
/// As [`run_session`]; also when no session seed can be drawn.
pub fn run_client(
    stream: TcpStream,
    config: &Config,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    let clock = Clock::new();
    let seed = fresh_seed().map_err(RunError::Io)?;
    let session = Session::client(config, psk, seed, clock.now());
    run_session(stream, session, agent, &clock)
}

/// Send one record — any value that serializes to a JSON object — over a connected `stream`,
/// and wait until the server stored it.
///
/// # Errors
/// The value is not an object or too large (nothing sent), the session failed, or the server
/// refused it.
pub fn send_record<T: serde::Serialize + ?Sized>(
    stream: TcpStream,
    config: &Config,
    psk: &Psk,
    value: &T,
    format: proto::wire::RecordFormat,
) -> Result<(), ferry_app::records::SendRecordError> {
    use ferry_app::agent::{record_job, record_outcome};
    let job = record_job(value, format)?;
    let store = Arc::new(ferry_disk::StdoutStore::new());
    let mut agent = Agent::client(store, Box::new(LogObserver), job);
    let run = run_client(stream, config, psk, &mut agent);
    record_outcome(&agent, run)
}

/// Serve daytime (RFC 867) until an error: every TCP connection gets the date line and is
/// closed; every UDP datagram gets the line back. One thread per protocol
/// ([`ferry_app::daytime::serve`], the one daytime server of every adapter).
///
/// # Errors
/// When the listener or the socket fails for good.
pub fn daytime_serve(tcp: TcpListener, udp: std::net::UdpSocket) -> io::Result<()> {
    ferry_app::daytime::serve(tcp, udp)
}

/// Server limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Authenticated connections served at once; more hear "busy". Connections still in the
    /// handshake have a smaller quota of their own ([`ferry_app::admission`]).
    pub max_connections: usize,
    /// Session configuration.
    pub config: Config,
}

/// Accept connections forever, one thread each (plus its reader), admitted by
/// [`ferry_app::admission`] with `opts.max_connections`; every session stores into and serves
/// from `store`. A failed accept (out of descriptors) means a short pause, never the end.
///
/// # Errors
/// None so far: the signature keeps room for a listener that breaks for good.
pub fn serve(
    listener: TcpListener,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    deepen_backlog(&listener);
    let admission = SharedAdmission::new(Limits::for_max_connections(opts.max_connections));
    let psk = Arc::new(psk);
    let config = Arc::new(opts.config);
    let mut errors = AcceptErrors::default();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => {
                errors.succeeded();
                x
            }
            Err(e) => {
                // EMFILE and friends: pause instead of spinning, and stay up.
                thread::sleep(errors.failed(&e));
                continue;
            }
        };
        keepalive(&stream);
        let pass = admission.admit(&stream);
        let (psk, config, store) = (psk.clone(), config.clone(), store.clone());
        let spawned = thread::Builder::new()
            .name(format!("ferry-conn-{peer}"))
            .spawn(move || serve_one(stream, peer, &psk, &config, store, pass));
        if let Err(e) = spawned {
            tracing::warn!(%peer, error = %e, "cannot start a connection thread");
        }
    }
}

fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    psk: &Psk,
    config: &Config,
    store: Arc<dyn Store>,
    mut pass: Pass,
) {
    let clock = Clock::new();
    let seed = match fresh_seed() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%peer, error = %e, "no session seed");
            return;
        }
    };
    let session = Session::server(config, psk, seed, clock.now());
    let mut agent = Agent::server(store, Box::new(LogObserver));
    match run_gated(stream, session, &mut agent, &clock, Some(&mut pass)) {
        Ok(()) => tracing::info!(%peer, "session closed"),
        // Keyless crowds must not flood the log (see `Ticket::is_authenticated`).
        Err(e)
            if !pass
                .authenticated()
                .load(std::sync::atomic::Ordering::Relaxed) =>
        {
            tracing::debug!(%peer, error = %e, "handshake did not complete");
        }
        Err(e) => tracing::warn!(%peer, error = %e, "session failed"),
    }
}
