//! The one loop that drives a connection: every client call, every served connection and the
//! blocking entry points of `ferry-smol` run through [`drive`].
//!
//! A round has two halves. The *step* runs on the `blocking` pool: it feeds buffered input to
//! the session, lets due timers fire, pumps the agent (file reads, writes and commits) and
//! gathers output. The *exchange* runs on the executor: it writes output, reads input while
//! [`Session::wants_input`] holds, and waits for the socket, the session's deadline
//! ([`Session::poll_timeout`]) or an application command, whichever comes first.

use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant as WallClock};

use async_channel::Receiver;
use async_io::{Async, Timer};
use ferry_disk::admission::{Pass, refuse};
use ferry_disk::agent::Agent;
use ferry_disk::host::{Clock, RunError};
use futures_lite::future::poll_fn;
use futures_lite::{AsyncRead, AsyncWrite};
use proto::{CloseCode, Instant, MAX_RECORD, Session, SessionError};

use crate::buf::Buf;

/// Input buffered per connection before reading pauses (the session's receive window is about
/// half of it).
pub const INBOX_CAP: usize = 8 * MAX_RECORD;
/// Output gathered per connection before the step stops asking the session for more.
pub const OUTBOX_CAP: usize = 8 * MAX_RECORD;
/// Bytes asked of the socket per read call.
const READ_CHUNK: usize = 64 * 1024;
/// Rounds of input → agent → output in one step before the executor gets the connection back.
const ROUNDS: usize = 8;
/// How long a closed session may take to flush its last records to a peer that stopped reading.
const LINGER: Duration = Duration::from_secs(10);

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

/// Everything a connection owns except its socket. It moves to the blocking pool for each
/// step and back.
pub(crate) struct Conn {
    session: Session,
    agent: Agent,
    clock: Clock,
    inbox: Buf,
    outbox: Buf,
    eof: bool,
    /// The application asked to close; applied by the next step.
    close_requested: bool,
    close_applied: bool,
    /// A server connection's admission: checked once the client's first handshake message
    /// checked out, then held (it frees the slot when the connection ends).
    pass: Option<Pass>,
    authenticated: bool,
}

/// How a step left the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// It still had work when its rounds ran out: exchange without waiting, then step again.
    Busy,
    /// Nothing more until the socket, a timer or a command: exchange and wait.
    Idle,
    /// The session is over: flush, then end.
    Ended,
    /// The admission refused the authenticated client: answer "busy" and end.
    Refused,
}

impl Conn {
    /// A connection for `session` (made with `clock`'s time) and its agent.
    pub(crate) fn new(session: Session, agent: Agent, clock: Clock) -> Box<Conn> {
        Box::new(Conn {
            session,
            agent,
            clock,
            inbox: Buf::default(),
            outbox: Buf::default(),
            eof: false,
            close_requested: false,
            close_applied: false,
            pass: None,
            authenticated: false,
        })
    }

    /// A server connection under `pass`: see [`Pass::authenticate`].
    pub(crate) fn gated(mut self: Box<Self>, pass: Pass) -> Box<Conn> {
        self.pass = Some(pass);
        self
    }

    /// The sans-IO half of a round, with the agent's file I/O: runs on the blocking pool.
    fn step(&mut self) -> Step {
        let mut progress = false;
        for _ in 0..ROUNDS {
            let now = self.clock.now();
            progress = false;
            if self.close_requested && !self.close_applied {
                self.session.close(now, CloseCode::Cancelled);
                self.close_applied = true;
                progress = true;
            }
            if !self.inbox.is_empty() && self.session.wants_input() {
                // A fatal error is sticky and closes the session; it is reported at the end.
                if let Ok(n) = self.session.handle_input(now, self.inbox.pending_mut()) {
                    self.inbox.consume(n);
                    progress |= n > 0;
                }
            }
            if !self.authenticated
                && let Some(pass) = &mut self.pass
            {
                if self.session.peer_side().is_none() {
                    if !self.inbox.is_empty() {
                        pass.heard();
                    }
                } else if pass.authenticate() {
                    self.authenticated = true;
                } else {
                    // The server's message 2 is never sent.
                    return Step::Refused;
                }
            }
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
            }
            progress |= self.agent.pump(&mut self.session, now);
            progress |= self.gather(now);
            if self.session.is_closed() {
                return Step::Ended;
            }
            // A stream's next read may block: what it gave goes out first.
            let stream_waits = self.agent.reads_stream() && !self.outbox.is_empty();
            if !progress || self.outbox.len() >= OUTBOX_CAP || stream_waits {
                break;
            }
        }
        if self.eof && !progress {
            // Whatever is still buffered can never complete a record: clean only after FINAL.
            let now = self.clock.now();
            let _ = self.session.handle_eof(now);
            let more = self.agent.pump(&mut self.session, now) | self.gather(now);
            if self.session.is_closed() || (!more && self.session.poll_timeout().is_none()) {
                return Step::Ended;
            }
            return if more { Step::Busy } else { Step::Idle };
        }
        if progress && self.outbox.len() < OUTBOX_CAP {
            Step::Busy
        } else {
            Step::Idle
        }
    }

    /// Ask the session for output until it has none or `OUTBOX_CAP` bytes wait (a closed
    /// session's last records are always taken). Returns whether anything was added.
    fn gather(&mut self, now: Instant) -> bool {
        // A quiet connection holds no output buffer: an empty slice asks whether there is
        // anything to send (`BufferTooSmall` if so, and nothing is consumed).
        if !self.outbox.is_allocated() && self.session.poll_transmit(now, &mut []) == Ok(0) {
            return false;
        }
        let mut any = false;
        while self.outbox.len() < OUTBOX_CAP || self.session.is_closed() {
            // MAX_RECORD bytes always suffice.
            let n = self
                .session
                .poll_transmit(now, self.outbox.room(MAX_RECORD))
                .unwrap_or(0);
            self.outbox.commit(n);
            if n == 0 {
                break;
            }
            any = true;
        }
        any
    }
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

    /// Tell the agent how the session ended and hand it back (a busy refusal started nothing:
    /// the caller may retry with the same agent).
    fn finish(mut self, error: Option<SessionError>) -> Agent {
        let mut conn = self
            .0
            .take()
            .expect("a live connection holds its state until it is finished");
        if !ferry_disk::host::is_busy(error.as_ref()) {
            conn.agent.finish(error.as_ref());
        }
        conn.agent
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(mut conn) = self.0.take() {
            // `finish` may fsync (partial files are kept durably): never on the executor.
            blocking::unblock(move || {
                let error = conn.session.error();
                conn.agent.finish(error.as_ref());
            })
            .detach();
        }
    }
}

/// Drive `conn` over `stream` until its session ends, then tell its agent how it ended
/// ([`Agent::finish`]) and hand the agent back with the outcome. `commands`, if any, can close
/// the session early.
///
/// Cancellation: dropping the future drops the socket at once; the agent is finished on the
/// blocking pool (see [`Live`]).
pub(crate) async fn drive(
    stream: Async<TcpStream>,
    conn: Box<Conn>,
    commands: Option<Receiver<Command>>,
) -> (Agent, Result<(), RunError>) {
    let _ = stream.get_ref().set_nodelay(true);
    let mut commands: Option<NextCommand> = commands.map(|rx| {
        Box::pin(async move { rx.recv().await.unwrap_or(Command::Close) }) as NextCommand
    });
    let mut live = Live(Some(conn));
    let mut timer = Armed::default();
    let mut failed = None;
    loop {
        let (back, step) = blocking::unblock(move || {
            let step = live.conn().step();
            (live, step)
        })
        .await;
        live = back;
        if step == Step::Ended {
            break;
        }
        if step == Step::Refused {
            refuse(stream.get_ref());
            failed = Some(io::Error::other("refused: server busy"));
            break;
        }
        let c = live.conn();
        if let Err(e) = exchange(c, &stream, &mut timer, &mut commands, step == Step::Idle).await {
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
    let error = c.session.error();
    let result = match (failed, error) {
        (Some(e), _) => Err(RunError::Io(e)),
        (None, Some(e)) => Err(RunError::Session(e)),
        (None, None) => Ok(()),
    };
    let agent = blocking::unblock(move || live.finish(error)).await;
    (agent, result)
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
    while !c.outbox.is_empty() {
        match Pin::new(&mut &*stream).poll_write(cx, c.outbox.pending()) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => c.outbox.consume(n),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}

/// The I/O half of a round, on the executor: write pending output, read while the session
/// takes input, notice a due deadline or a command. Without `wait` it does what it can and
/// returns; with `wait` it returns once at least one of them happened.
async fn exchange(
    c: &mut Conn,
    stream: &Async<TcpStream>,
    timer: &mut Armed,
    commands: &mut Option<NextCommand>,
    wait: bool,
) -> io::Result<()> {
    timer.set(c.session.poll_timeout(), &c.clock);
    poll_fn(|cx| {
        let mut happened = false;
        let before = c.outbox.len();
        if let Poll::Ready(Err(e)) = poll_write_all(c, stream, cx) {
            return Poll::Ready(Err(e));
        }
        happened |= c.outbox.len() != before;
        // Back-pressure: read only while the session will take more and the inbox has room.
        while !c.eof && c.inbox.len() < INBOX_CAP && c.session.wants_input() {
            // A quiet connection waits for readability before it allocates room to read into.
            if !c.inbox.is_allocated() {
                match stream.poll_readable(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
            let read = Pin::new(&mut &*stream).poll_read(cx, c.inbox.room(READ_CHUNK));
            match read {
                Poll::Ready(Ok(0)) => {
                    c.eof = true;
                    happened = true;
                }
                Poll::Ready(Ok(n)) => {
                    c.inbox.commit(n);
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
            c.inbox.release_if_empty();
            c.outbox.release_if_empty();
        }
        if !c.close_requested
            && let Some(next) = commands.as_mut()
            && let Poll::Ready(cmd) = next.as_mut().poll(cx)
        {
            match cmd {
                Command::Close => c.close_requested = true,
            }
            *commands = None;
            happened = true;
        }
        if happened || !wait {
            Poll::Ready(Ok(()))
        } else {
            // Waiting for the peer: an idle connection keeps no I/O buffers.
            c.inbox.release_if_empty();
            c.outbox.release_if_empty();
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_disk::agent::LogObserver;
    use proto::{Config, Psk};

    use super::*;
    use crate::client::NoStore;

    fn conn(client: bool) -> Box<Conn> {
        let clock = Clock::new();
        let (cfg, psk) = (Config::default(), Psk::from_key_bytes(&[3; 32]));
        let session = if client {
            Session::client(&cfg, &psk, [1; 32], clock.now())
        } else {
            Session::server(&cfg, &psk, [2; 32], clock.now())
        };
        Conn::new(
            session,
            Agent::server(Arc::new(NoStore), Box::new(LogObserver)),
            clock,
        )
    }

    /// A server waiting for a handshake has nothing to send and holds no I/O buffer; a client
    /// gathers its first handshake message.
    #[test]
    fn a_quiet_connection_holds_no_buffers() {
        let mut server = conn(false);
        assert_eq!(server.step(), Step::Idle);
        assert!(!server.outbox.is_allocated() && !server.inbox.is_allocated());
        let mut client = conn(true);
        assert_eq!(client.step(), Step::Idle);
        assert!(!client.outbox.is_empty(), "the handshake's first message");
    }

    /// Move `from`'s pending output into `to`'s input, as a socket would.
    fn shuttle(from: &mut Conn, to: &mut Conn) {
        let n = from.outbox.len();
        to.inbox.room(n).copy_from_slice(from.outbox.pending());
        to.inbox.commit(n);
        from.outbox.consume(n);
    }

    /// Two connections wired in memory: the handshake completes through `step`, then a close
    /// command on the server ends both sessions cleanly, each with its FINAL record sent.
    #[test]
    fn close_command_ends_both_sessions() {
        let (mut client, mut server) = (conn(true), conn(false));
        for _ in 0..20 {
            client.step();
            shuttle(&mut client, &mut server);
            server.step();
            shuttle(&mut server, &mut client);
        }
        assert!(client.session.is_connected() && server.session.is_connected());
        server.close_requested = true;
        let mut ended = (false, false);
        for _ in 0..20 {
            ended.1 |= server.step() == Step::Ended;
            shuttle(&mut server, &mut client);
            ended.0 |= client.step() == Step::Ended;
            shuttle(&mut client, &mut server);
        }
        assert_eq!(ended, (true, true));
        assert_eq!(
            (client.session.error(), server.session.error()),
            (None, None)
        );
    }
}
