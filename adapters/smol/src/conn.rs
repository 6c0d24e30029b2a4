//! The futures that drive a connection: every client call, every served connection and the
//! blocking entry points of `ferry-smol` run through [`drive`].
//!
//! A round has two halves. The *step* ([`Conn::step`], the driver every adapter shares) runs on
//! the `blocking` pool: it feeds buffered input to the session, lets due timers fire, pumps the
//! agent (file reads, writes and commits) and gathers output. The *exchange* runs on the
//! executor: it writes output, reads input while [`Conn::wants_input`] holds, and waits for the
//! socket, the session's deadline ([`Conn::deadline`]), an application command or, for a
//! server's connection, disk work finished on its [`CommitPool`], whichever comes first.

use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Instant as WallClock;

use async_channel::Receiver;
use async_io::{Async, Timer};
use ferry_app::admission::refuse;
use ferry_app::agent::Agent;
use ferry_app::driver::{Conn, LINGER, Step};
use ferry_app::host::{Clock, RunError};
use ferry_app::pool::CommitPool;
use futures_lite::future::poll_fn;
use futures_lite::{AsyncRead, AsyncWrite, Stream};
use proto::Instant;

pub use ferry_app::driver::{INBOX_CAP, OUTBOX_CAP};

/// What the application can tell a running connection. A closed command channel means the same
/// as [`Command::Close`] (that is how a server shutdown reaches every connection at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// Close the session now (`CloseCode::Cancelled`); transfers in flight fail and received
    /// partial files are kept for a resume.
    Close,
}

/// The next command, as a future (the channel's `Receiver` is not `Unpin`).
type NextCommand = Pin<Box<dyn Future<Output = Command> + Send>>;

/// Wake-ups from the disk pool: one is enough however much work finished meanwhile.
type Wakes = Pin<Box<Receiver<()>>>;

/// Run `conn`'s disk work on `pool` (creating, syncing and renaming received files, opening
/// and hashing files to send) instead of inside its step: the step thread then never waits
/// for the file system. The returned wake-ups say when finished work is waiting.
fn use_pool(conn: &mut Conn, pool: CommitPool) -> Wakes {
    let (tx, rx) = async_channel::bounded::<()>(1);
    conn.use_commit_pool(
        pool,
        Arc::new(move || {
            // Full: a wake-up is already waiting.
            let _ = tx.try_send(());
        }),
    );
    Box::pin(rx)
}

/// A connection that has not ended yet. If it is dropped before [`Live::finish`] (the future
/// driving it was cancelled), its agent is finished on the blocking pool: incoming files are
/// kept as partial files for a resume, and no file is published that was not complete.
struct Live(Option<Box<Conn>>);

impl Live {
    fn conn(&mut self) -> &mut Conn {
        self.0
            .as_mut()
            .expect("a live connection holds its state until it is finished")
    }

    /// The driver's outcome and the agent back.
    fn finish(mut self, failed: Option<io::Error>) -> (Agent, Result<(), RunError>) {
        let conn = self
            .0
            .take()
            .expect("a live connection holds its state until it is finished");
        conn.finish(failed)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // `finish` may fsync (partial files are kept durably): never on the executor.
            blocking::unblock(move || drop(conn.finish(None))).detach();
        }
    }
}

/// Drive `conn` over `stream` until its session ends, then tell its agent how it ended
/// ([`Agent::finish`]) and hand the agent back with the outcome. `commands`, if any, can close
/// the session early; the agent's disk work runs on `pool`, if any, else in the step.
///
/// Cancellation: dropping the future drops the socket at once; the agent is finished on the
/// blocking pool (see [`Live`]).
pub(crate) async fn drive(
    mut stream: Async<TcpStream>,
    mut conn: Box<Conn>,
    commands: Option<Receiver<Command>>,
    pool: Option<CommitPool>,
) -> (Agent, Result<(), RunError>) {
    let mut wakes = pool.map(|pool| use_pool(&mut conn, pool));
    let _ = stream.get_ref().set_nodelay(true);
    let watch = Watch {
        commands: commands.clone(),
        dropped: Arc::new(AtomicBool::new(false)),
    };
    let _dropped = SetOnDrop(watch.dropped.clone());
    let mut commands: Option<NextCommand> = commands.map(|rx| {
        Box::pin(async move { rx.recv().await.unwrap_or(Command::Close) }) as NextCommand
    });
    let mut live = Live(Some(conn));
    let mut timer = Armed::default();
    let mut failed = None;
    loop {
        // Once the command is taken, only a dropped future still interrupts the rounds.
        let watch = Watch {
            commands: watch.commands.clone().filter(|_| commands.is_some()),
            dropped: watch.dropped.clone(),
        };
        let (back, back_stream, step) = blocking::unblock(move || {
            let step = rounds(live.conn(), stream.get_ref(), &watch);
            (live, stream, step)
        })
        .await;
        live = back;
        stream = back_stream;
        let step = match step {
            Ok(step) => step,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        if step == Step::Ended {
            break;
        }
        if step == Step::Refused {
            refuse(stream.get_ref());
            failed = Some(io::Error::other("refused: server busy"));
            break;
        }
        let c = live.conn();
        let waits = Waits {
            timer: &mut timer,
            commands: &mut commands,
            wakes: &mut wakes,
        };
        if let Err(e) = exchange(c, &stream, waits, step == Step::Idle).await {
            failed = Some(e);
            break;
        }
    }
    let c = live.conn();
    if failed.is_none() {
        // The session's last records (our FINAL, or the error `Close`), within reason.
        let mut linger = Timer::after(LINGER);
        let flushed = poll_fn(|cx| {
            if Pin::new(&mut linger).poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            poll_write_all(c, &stream, cx)
        })
        .await;
        if let Err(e) = flushed {
            tracing::debug!(error = %e, "could not flush the last records");
        }
    }
    let _ = stream.get_ref().shutdown(Shutdown::Both);
    drop(stream);
    blocking::unblock(move || live.finish(failed)).await
}

/// Steps on the pool thread per hand-off at most, while the socket keeps moving.
const ROUNDS: usize = 16;

/// The step, on the pool thread, repeated with non-blocking socket I/O in between while bytes
/// move (as the mio loop does): a bulk transfer then crosses to the pool and back once per
/// [`ROUNDS`] steps, not twice per step. Returns the last step, or the socket's write error.
/// A pending command or a dropped future ends the rounds after the current step, so the
/// executor acts on it as soon as it would have with one step per hand-off.
fn rounds(c: &mut Conn, mut socket: &TcpStream, watch: &Watch) -> io::Result<Step> {
    use std::io::{Read, Write};
    for round in 0..ROUNDS {
        if round > 0 && watch.interrupted() {
            return Ok(Step::Busy);
        }
        let step = c.step();
        if matches!(step, Step::Ended | Step::Refused) {
            return Ok(step);
        }
        let mut moved = false;
        while c.has_output() {
            match socket.write(c.output()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    c.output_sent(n);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        // A quiet connection reads (and takes input room) only on the executor, once readable.
        while c.wants_input() && c.holds_input_buffer() {
            match socket.read(c.input_room()) {
                Ok(0) => {
                    c.end_of_input();
                    moved = true;
                    break;
                }
                Ok(n) => {
                    c.input_filled(n);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    c.input_failed(e);
                    moved = true;
                    break;
                }
            }
        }
        if !moved && step == Step::Idle {
            return Ok(step);
        }
    }
    // Out of rounds while bytes still moved: what was read last is not stepped yet.
    Ok(Step::Busy)
}

/// What interrupts [`rounds`] on the pool thread: a command waiting (or the command channel
/// closed: a server shutdown), or the future that drives the connection dropped (a cancelled
/// call must not go on moving and publishing files for another [`ROUNDS`] steps).
struct Watch {
    commands: Option<Receiver<Command>>,
    dropped: Arc<AtomicBool>,
}

impl Watch {
    fn interrupted(&self) -> bool {
        self.dropped.load(Ordering::Relaxed)
            || self
                .commands
                .as_ref()
                .is_some_and(|rx| rx.is_closed() || !rx.is_empty())
    }
}

/// Sets its flag when dropped: held by [`drive`]'s future, so the flag says it was dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The session's deadline as an `async-io` timer, re-armed only when the deadline changes.
#[derive(Default)]
struct Armed {
    timer: Option<Timer>,
    at: Option<Instant>,
}

impl Armed {
    fn set(&mut self, deadline: Option<Instant>, clock: &Clock) {
        if deadline == self.at && (deadline.is_none() || self.timer.is_some()) {
            return;
        }
        self.at = deadline;
        match deadline {
            None => self.timer = None,
            Some(at) => {
                let when = WallClock::now() + clock.until(at);
                match &mut self.timer {
                    Some(t) => t.set_at(when),
                    None => self.timer = Some(Timer::at(when)),
                }
            }
        }
    }

    /// Whether the deadline passed (the timer is then disarmed until the next `set`).
    fn poll_fired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        let fired = self
            .timer
            .as_mut()
            .is_some_and(|t| Pin::new(t).poll(cx).is_ready());
        if fired {
            self.timer = None;
        }
        fired
    }
}

/// Write as much pending output as the socket takes: `Ready(Ok(()))` once all of it is out,
/// `Pending` while the socket is full.
fn poll_write_all(
    c: &mut Conn,
    stream: &Async<TcpStream>,
    cx: &mut std::task::Context<'_>,
) -> Poll<io::Result<()>> {
    while c.has_output() {
        match Pin::new(&mut &*stream).poll_write(cx, c.output()) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => c.output_sent(n),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}

/// What a connection waits for besides its socket.
struct Waits<'a> {
    timer: &'a mut Armed,
    commands: &'a mut Option<NextCommand>,
    wakes: &'a mut Option<Wakes>,
}

/// The I/O half of a round, on the executor: write pending output, read while the session
/// takes input, notice a due deadline, a command or finished disk work. Without `wait` it does
/// what it can and returns; with `wait` it returns once at least one of them happened.
async fn exchange(
    c: &mut Conn,
    stream: &Async<TcpStream>,
    waits: Waits<'_>,
    wait: bool,
) -> io::Result<()> {
    let Waits {
        timer,
        commands,
        wakes,
    } = waits;
    timer.set(c.deadline(), c.clock());
    poll_fn(|cx| {
        let mut happened = false;
        let before = c.output().len();
        if let Poll::Ready(Err(e)) = poll_write_all(c, stream, cx) {
            return Poll::Ready(Err(e));
        }
        happened |= c.output().len() != before;
        // Back-pressure: read only while the session will take more and the inbox has room.
        while c.wants_input() {
            // A quiet connection waits for readability before it allocates room to read into.
            if !c.holds_input_buffer() {
                match stream.poll_readable(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            let read = Pin::new(&mut &*stream).poll_read(cx, c.input_room());
            match read {
                Poll::Ready(Ok(0)) => {
                    c.end_of_input();
                    happened = true;
                }
                Poll::Ready(Ok(n)) => {
                    c.input_filled(n);
                    happened = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if timer.poll_fired(cx) {
            happened = true;
            // Quiet until a deadline: an idle connection keeps no I/O buffers.
            c.release_idle_buffers();
        }
        if let Some(next) = commands.as_mut()
            && let Poll::Ready(cmd) = next.as_mut().poll(cx)
        {
            match cmd {
                Command::Close => c.request_close(),
            }
            *commands = None;
            happened = true;
        }
        // The channel never closes while the agent (which holds its sender) lives.
        if let Some(rx) = wakes.as_mut()
            && let Poll::Ready(Some(())) = rx.as_mut().poll_next(cx)
        {
            happened = true;
        }
        if happened || !wait {
            Poll::Ready(Ok(()))
        } else {
            // Waiting for the peer: an idle connection keeps no I/O buffers.
            c.release_idle_buffers();
            Poll::Pending
        }
    })
    .await
}
