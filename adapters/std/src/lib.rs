//! ferry over blocking `std::net` TCP sockets.
//!
//! One session per connection, driven by [`run_session`] through the shared driver
//! ([`ferry_app::driver::Conn`], which decides every protocol and edge-case rule): a reader
//! thread moves socket bytes into a bounded channel (so reading never waits for writing and
//! memory stays bounded), and the connection's thread steps the driver, writes its output with
//! `write_all` and waits on the channel until the driver's next deadline. [`serve`] runs a
//! thread per connection, and every connection's disk work (creating, syncing and renaming
//! received files, opening and hashing files to send) on one shared [`CommitPool`], whose
//! finished work wakes the connection through the same channel: the thread that decrypts never
//! waits for a file system call. Who gets in is [`ferry_app::admission`]'s policy (a small
//! handshake quota that evicts its oldest, then `max_connections` authenticated ones; the rest
//! hear "busy"). [`connect`] dials with a timeout and retries with back-off.

mod server;
mod udp;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ferry_app::admission::refuse;
use ferry_app::agent::{Agent, LogObserver};
use ferry_app::driver::{Conn, INPUT_HEADROOM, LINGER, Step};
use ferry_app::host::{Clock, RunError, fresh_seed};
use ferry_app::pool::CommitPool;

pub use ferry_app::host::connect;
use proto::{Config, Psk, Session};
pub use server::{ServeOptions, serve};
pub use udp::{run_udp_client, serve_udp};

/// Bytes read from the socket per read call.
const READ_BUF: usize = 256 * 1024;
/// Read buffers in flight between the reader thread and the session (bounds memory).
const READ_QUEUE: usize = 4;
/// Read buffers kept for reuse while the connection is busy.
const SPARE_BUFFERS: usize = READ_QUEUE;
/// How long a connection waits for input before it gives its spare read buffers back.
const SPARE_KEEP: Duration = Duration::from_millis(50);
/// How long an idle connection without any timer waits before it looks again (the session
/// normally always has one: its idle timeout).
const NO_DEADLINE_WAIT: Duration = Duration::from_secs(1);

/// Read buffers given back by the connection thread for the reader to fill again (no
/// allocation and no zero-filling per read). Emptied whenever the connection goes idle.
type Spare = Arc<Mutex<Vec<Vec<u8>>>>;

enum Input {
    /// `buf[INPUT_HEADROOM..end]` was read (the headroom lets the driver adopt the buffer).
    Data(Vec<u8>, usize),
    Eof,
    Failed(io::Error),
    /// Disk work finished on the pool: step again.
    Wake,
}

fn spawn_reader(stream: Arc<TcpStream>, spare: Spare, tx: SyncSender<Input>) -> io::Result<()> {
    thread::Builder::new()
        .name("ferry-reader".into())
        .spawn(move || {
            loop {
                // Wait for input before taking a buffer: an idle connection holds none.
                match stream.peek(&mut [0u8]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    _ => {}
                }
                let mut buf = spare
                    .lock()
                    .ok()
                    .and_then(|mut s| s.pop())
                    .unwrap_or_default();
                if buf.len() < INPUT_HEADROOM + READ_BUF {
                    // Zero-filled once per buffer, not once per read.
                    buf.resize(INPUT_HEADROOM + READ_BUF, 0);
                }
                let msg = match (&*stream).read(&mut buf[INPUT_HEADROOM..]) {
                    Ok(0) => Input::Eof,
                    Ok(n) => Input::Data(buf, INPUT_HEADROOM + n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Input::Failed(e),
                };
                let last = !matches!(msg, Input::Data(..));
                if tx.send(msg).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Run `conn`'s disk work on `pool`: a finished piece of work wakes the connection's thread,
/// whether it waits for input (a `Wake` on the channel; when the channel is full, input is
/// waiting anyway) or only for a timer (an unpark).
fn use_pool(conn: &mut Conn, pool: &CommitPool, tx: &SyncSender<Input>) {
    let (tx, me) = (tx.clone(), thread::current());
    conn.use_commit_pool(
        pool.clone(),
        Arc::new(move || {
            let _ = tx.try_send(Input::Wake);
            me.unpark();
        }),
    );
}

/// Hand what the reader delivered to the driver (its buffer is adopted, not copied, when it
/// can be), and give a buffer back to the reader.
fn deliver(conn: &mut Conn, spare: &Spare, msg: Input) {
    match msg {
        Input::Data(buf, end) => {
            let back = conn.push_input_owned(buf, INPUT_HEADROOM, end);
            if let Ok(mut s) = spare.lock()
                && s.len() < SPARE_BUFFERS
                && back.capacity() >= INPUT_HEADROOM + READ_BUF
            {
                s.push(back);
            }
        }
        Input::Eof => conn.end_of_input(),
        Input::Failed(e) => conn.input_failed(e),
        Input::Wake => {}
    }
}

/// Write all of the driver's output.
fn write_out(mut stream: &TcpStream, conn: &mut Conn) -> io::Result<()> {
    if conn.has_output() {
        let n = conn.output().len();
        stream.write_all(conn.output())?;
        conn.output_sent(n);
    }
    Ok(())
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
    // The driver owns its agent while it runs.
    let owned = Agent::take(agent);
    let (owned, result) = drive(stream, Conn::new(session, owned, *clock), None);
    *agent = owned;
    result
}

/// Drive `conn` over `stream` until it ends, then finish it (see [`ferry_app::driver`]); its
/// disk work runs on `pool` when there is one, else on this thread.
pub(crate) fn drive(
    stream: TcpStream,
    mut conn: Conn,
    pool: Option<&CommitPool>,
) -> (Agent, Result<(), RunError>) {
    let setup = stream.set_nodelay(true).and_then(|()| {
        // A peer that stops reading must not hold this thread forever.
        stream.set_write_timeout(Some(conn.session().idle_timeout()))
    });
    // Reader and writer share the socket (no second descriptor).
    let stream = Arc::new(stream);
    let spare = Spare::default();
    let (tx, rx): (SyncSender<Input>, Receiver<Input>) = sync_channel(READ_QUEUE);
    if let Some(pool) = pool {
        use_pool(&mut conn, pool, &tx);
    }
    if let Err(e) = setup.and_then(|()| spawn_reader(stream.clone(), spare.clone(), tx)) {
        return conn.finish(Some(e));
    }
    let failed = loop {
        // Take what the reader has, without waiting, while the driver takes input: one buffer
        // per step while the session keeps up, so each is adopted rather than copied.
        while conn.wants_input() && conn.input_pending() <= INPUT_HEADROOM {
            match rx.try_recv() {
                Ok(msg) => deliver(&mut conn, &spare, msg),
                Err(TryRecvError::Disconnected) => conn.end_of_input(),
                Err(TryRecvError::Empty) => break,
            }
        }
        let step = conn.step();
        match step {
            Step::Refused => {
                // Message 2 is never sent: the client hears "busy" instead.
                refuse(&stream);
                break Some(io::Error::other("refused: server busy"));
            }
            Step::Ended => {
                // The session's last records (our FINAL, or the error `Close`), within reason.
                let _ = stream.set_write_timeout(Some(LINGER));
                if let Err(e) = write_out(&stream, &mut conn) {
                    tracing::debug!(error = %e, "could not flush the last records");
                }
                break None;
            }
            Step::Busy | Step::Idle => {}
        }
        // Written output is progress: a step stops gathering when the output is full.
        let wrote = conn.has_output();
        if let Err(e) = write_out(&stream, &mut conn) {
            break Some(e);
        }
        if step == Step::Busy || wrote {
            continue;
        }
        // Nothing to do until input or a timer: an idle connection holds no buffers.
        conn.release_idle_buffers();
        let wait = conn.until_deadline();
        if conn.wants_input() {
            // A stream pausing briefly keeps the spare read buffers; a quiet one gives them back.
            let first = wait.map_or(SPARE_KEEP, |d| d.min(SPARE_KEEP));
            let mut msg = rx.recv_timeout(first);
            if matches!(msg, Err(RecvTimeoutError::Timeout)) {
                if let Ok(mut s) = spare.lock() {
                    s.clear();
                }
                msg = match wait {
                    Some(d) => rx.recv_timeout(d.saturating_sub(first)),
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
            }
            match msg {
                Ok(msg) => deliver(&mut conn, &spare, msg),
                Err(RecvTimeoutError::Disconnected) => conn.end_of_input(),
                Err(RecvTimeoutError::Timeout) => {}
            }
        } else {
            // The stream ended (or the session pushes back): only a timer or the pool's
            // finished work can move it now.
            thread::park_timeout(wait.unwrap_or(NO_DEADLINE_WAIT));
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    conn.finish(failed)
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

/// Run one server session over an accepted `stream` with `agent` (a short-code send: the
/// sending side listens and serves exactly one receiver).
///
/// # Errors
/// As [`run_session`]; also when no session seed can be drawn.
pub fn run_server(
    stream: TcpStream,
    config: &Config,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    let clock = Clock::new();
    let seed = fresh_seed().map_err(RunError::Io)?;
    let session = Session::server(config, psk, seed, clock.now());
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
    format: proto::RecordFormat,
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
