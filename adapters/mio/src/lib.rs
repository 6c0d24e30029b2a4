//! ferry on a `mio` event loop: one thread drives every connection.
//!
//! Each connection is a [`Session`] plus its [`Agent`] in a slab slot keyed by its `mio`
//! [`Token`]. Sockets are non-blocking and edge-triggered: a connection reads until the socket
//! would block, the session stops taking input ([`Session::wants_input`]), or its input buffer
//! holds [`INBOX_CAP`] bytes; `WRITABLE` interest is registered only while output is pending.
//! Timers live in one binary heap fed by each session's [`Session::poll_timeout`], so the loop
//! sleeps exactly until the earliest deadline, and a silent or slow peer is closed by the core's
//! handshake and idle timers without costing the others anything.
//!
//! # Fairness and disk I/O
//! A connection gets at most [`ROUNDS`] rounds of read → input → application → write per turn,
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
//! buffers: the input and output buffers are released whenever they drain. A busy connection
//! holds at most [`INBOX_CAP`] bytes of input, [`OUTBOX_CAP`] of output, the core's bounded
//! send buffer and receive window (`Config::send_buffer`, `Config::recv_window`, about 264 KiB
//! each by default) and the agent's 64 KiB chunk buffer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as WallClock};

use ferry_app::admission::{AcceptErrors, Admission, Limits, Ticket};
use ferry_app::agent::Agent;
use ferry_app::host::{Clock, RunError, fresh_seed};
use ferry_app::pool::CommitPool;
use ferry_disk::Store;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use proto::{Config, Instant, MAX_RECORD, Psk, Session};
use slab::Slab;

pub use ferry_app::host::connect;

mod admit;
use admit::{Accepted, Commits, accept_all};

/// Largest input buffered per connection before reading pauses.
pub const INBOX_CAP: usize = 2 * MAX_RECORD;
/// Largest output buffered per connection before the session is asked for more.
pub const OUTBOX_CAP: usize = 4 * MAX_RECORD;
/// Rounds of work one connection gets per turn before others get theirs.
pub const ROUNDS: usize = 4;

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// Threads that fsync and rename received files for the loop.
const COMMIT_THREADS: usize = 4;
const READ_CHUNK: usize = 64 * 1024;

/// A connection's agent: owned by a server connection, borrowed from the caller in client mode.
enum AgentSlot<'a> {
    Owned(Box<Agent>),
    Borrowed(&'a mut Agent),
}

impl Deref for AgentSlot<'_> {
    type Target = Agent;
    fn deref(&self) -> &Agent {
        match self {
            AgentSlot::Owned(a) => a,
            AgentSlot::Borrowed(a) => a,
        }
    }
}

impl DerefMut for AgentSlot<'_> {
    fn deref_mut(&mut self) -> &mut Agent {
        match self {
            AgentSlot::Owned(a) => a,
            AgentSlot::Borrowed(a) => a,
        }
    }
}

struct Conn<'a> {
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    agent: AgentSlot<'a>,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    out_pos: usize,
    out_end: usize,
    /// The socket may have more to read (edge-triggered: cleared only by `WouldBlock`).
    readable: bool,
    /// The socket may take more output.
    writable: bool,
    eof: bool,
    /// `WRITABLE` interest is registered.
    write_interest: bool,
    /// The session's current deadline and the heap entry that belongs to it.
    deadline: Option<Instant>,
    generation: u64,
    queued: bool,
    /// How the connection ended, once it has.
    result: Option<Result<(), RunError>>,
    /// A server connection's place in the loop's [`Admission`].
    ticket: Option<Ticket>,
}

enum Step {
    /// Waits for an event or a timer.
    Idle,
    /// Has more work: put it back in the ready queue.
    Busy,
    /// Over: deregister and drop.
    Done,
}

/// The event loop: connections, timers and readiness.
struct EventLoop<'a> {
    poll: Poll,
    conns: Slab<Conn<'a>>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    ready: VecDeque<usize>,
    clock: Clock,
    scratch: Vec<u8>,
    /// Who gets in (servers only).
    admission: Option<Admission<usize>>,
}

impl<'a> EventLoop<'a> {
    fn new() -> io::Result<Self> {
        Ok(EventLoop {
            poll: Poll::new()?,
            conns: Slab::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            clock: Clock::new(),
            scratch: vec![0; READ_CHUNK],
            admission: None,
        })
    }

    fn add(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        session: Session,
        agent: AgentSlot<'a>,
    ) -> io::Result<usize> {
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)?;
        entry.insert(Conn {
            stream,
            peer,
            session,
            agent,
            inbox: Vec::new(),
            outbox: Vec::new(),
            out_pos: 0,
            out_end: 0,
            readable: true,
            writable: true,
            eof: false,
            write_interest: false,
            deadline: None,
            generation: 0,
            queued: false,
            result: None,
            ticket: None,
        });
        self.schedule(key);
        Ok(key)
    }

    fn schedule(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.queued
        {
            c.queued = true;
            self.ready.push_back(key);
        }
    }

    /// How long `poll` may sleep: not at all with ready work, else until the earliest timer.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        // Drop heap entries of timers that were replaced or whose connection is gone.
        while let Some(Reverse((at, key, generation))) = self.timers.peek().copied() {
            match self.conns.get(key) {
                Some(c) if c.generation == generation && c.deadline == Some(at) => {
                    return Some(self.clock.until(at));
                }
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// Connections whose timers are due.
    fn fire_timers(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((at, key, generation))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.generation == generation && c.deadline == Some(at))
            {
                self.schedule(key);
            }
        }
    }

    /// Give each queued connection its turn.
    fn run_ready(&mut self) -> Vec<(usize, SocketAddr, Result<(), RunError>)> {
        let mut finished = Vec::new();
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.queued = false;
            let step = service(
                conn,
                &self.clock,
                &mut self.scratch,
                self.admission.as_mut(),
            );
            match step {
                Step::Done => {
                    let mut conn = self.conns.remove(key);
                    let _ = self.poll.registry().deregister(&mut conn.stream);
                    let result = conn.result.take().unwrap_or(Ok(()));
                    if !admit::release(self.admission.as_mut(), &mut conn, &result) {
                        finished.push((key, conn.peer, result));
                    }
                }
                Step::Busy | Step::Idle => {
                    if let Err(e) = self.rearm(key) {
                        if let Some(c) = self.conns.get_mut(key) {
                            c.result = Some(Err(RunError::Io(e)));
                        }
                        self.schedule(key);
                        continue;
                    }
                    if matches!(step, Step::Busy) {
                        self.schedule(key);
                    }
                }
            }
        }
        finished
    }

    /// Interest and timer bookkeeping after a connection's turn.
    fn rearm(&mut self, key: usize) -> io::Result<()> {
        let Some(c) = self.conns.get_mut(key) else {
            return Ok(());
        };
        let pending = c.out_pos < c.out_end;
        if pending != c.write_interest {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            self.poll
                .registry()
                .reregister(&mut c.stream, Token(key), interest)?;
            c.write_interest = pending;
        }
        let deadline = c.session.poll_timeout();
        if deadline != c.deadline {
            c.deadline = deadline;
            c.generation += 1;
            if let Some(at) = deadline {
                self.timers.push(Reverse((at, key, c.generation)));
            }
        }
        Ok(())
    }

    /// Mark readiness from one poll's events.
    fn on_events(&mut self, events: &Events) {
        for ev in events.iter() {
            let key = ev.token().0;
            if let Some(c) = self.conns.get_mut(key).filter(|_| ev.token() != WAKER) {
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    c.readable = true;
                }
                if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                    c.writable = true;
                }
                self.schedule(key);
            }
        }
    }
}

/// One turn of one connection: read, feed the session, run the agent, write; at most
/// [`ROUNDS`] times while it makes progress.
fn service(
    c: &mut Conn<'_>,
    clock: &Clock,
    scratch: &mut [u8],
    mut admission: Option<&mut Admission<usize>>,
) -> Step {
    if c.result.is_some() {
        return Step::Done;
    }
    for _ in 0..ROUNDS {
        let now = clock.now();
        let mut progress = false;
        let mut heard = false;
        // Read while the socket has bytes and the session will take them.
        while c.readable && !c.eof && c.inbox.len() < INBOX_CAP && c.session.wants_input() {
            match c.stream.read(scratch) {
                Ok(0) => c.eof = true,
                Ok(n) => {
                    c.inbox.extend_from_slice(&scratch[..n]);
                    progress = true;
                    heard = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return fail(c, now, RunError::Io(e)),
            }
        }
        if !c.inbox.is_empty() && c.session.wants_input() {
            match c.session.handle_input(now, &mut c.inbox) {
                Ok(n) => {
                    c.inbox.drain(..n);
                    progress |= n > 0;
                }
                Err(e) => return fail(c, now, RunError::Session(e)),
            }
        }
        if let Some(refused) = admit::gate(c, admission.as_deref_mut(), heard) {
            return refused;
        }
        if c.session.poll_timeout().is_some_and(|t| t <= now) {
            c.session.handle_timeout(now);
            progress = true;
        }
        progress |= c.agent.pump(&mut c.session, now);
        // Gather output, then write as much as the socket takes.
        // `outbox[..out_end]` is pending output; the rest is initialised room, zero-filled once
        // per burst rather than once per record.
        while c.out_end - c.out_pos < OUTBOX_CAP {
            if c.outbox.len() < c.out_end + MAX_RECORD {
                c.outbox.resize(c.out_end + MAX_RECORD, 0);
            }
            let n = c
                .session
                .poll_transmit(now, &mut c.outbox[c.out_end..])
                .unwrap_or(0);
            c.out_end += n;
            if n == 0 {
                break;
            }
            progress = true;
        }
        while c.writable && c.out_pos < c.out_end {
            match c.stream.write(&c.outbox[c.out_pos..c.out_end]) {
                Ok(0) => return fail(c, now, RunError::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    c.out_pos += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return fail(c, now, RunError::Io(e)),
            }
        }
        if c.out_pos == c.out_end {
            // Drained: an idle connection keeps no buffer.
            c.outbox = Vec::new();
            c.out_pos = 0;
            c.out_end = 0;
        }
        if c.inbox.is_empty() && c.inbox.capacity() > 0 {
            c.inbox = Vec::new();
        }
        if c.session.is_closed() {
            if c.out_pos == c.out_end {
                let result = c
                    .session
                    .error()
                    .map_or(Ok(()), |e| Err(RunError::Session(e)));
                return finish(c, result);
            }
            if !c.writable {
                // The last records wait for WRITABLE (armed by `rearm`).
                return Step::Idle;
            }
            continue;
        }
        if c.eof && !progress {
            // Whatever is buffered can never complete a record: clean only after FINAL.
            if let Err(e) = c.session.handle_eof(now) {
                return fail(c, now, RunError::Session(e));
            }
            progress = c.agent.pump(&mut c.session, now);
            if !progress && c.session.poll_timeout().is_none() {
                return finish(c, Ok(()));
            }
        }
        if !progress {
            return Step::Idle;
        }
    }
    Step::Busy
}

/// The connection failed: try to flush the error `Close` (one non-blocking write), then end.
fn fail(c: &mut Conn<'_>, now: Instant, e: RunError) -> Step {
    let mut pending = c.outbox[c.out_pos..c.out_end].to_vec();
    let mut buf = vec![0u8; MAX_RECORD];
    while let Ok(n) = c.session.poll_transmit(now, &mut buf) {
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
    }
    let _ = c.stream.write(&pending);
    finish(c, Err(e))
}

fn finish(c: &mut Conn<'_>, result: Result<(), RunError>) -> Step {
    let error = match &result {
        Err(RunError::Session(e)) => Some(*e),
        _ => c.session.error(),
    };
    // A busy refusal started nothing: the caller may retry with the same agent.
    if !ferry_app::host::is_busy(error.as_ref()) {
        c.agent.finish(error.as_ref());
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Both);
    c.result = Some(result);
    Step::Done
}

/// Serve daytime (RFC 867) until an error: every TCP connection gets the date line and is
/// closed, every UDP datagram gets the line back. Blocking, one thread per protocol: the one
/// daytime server of every adapter ([`ferry_app::daytime::serve`]).
///
/// # Errors
/// When the listener or the socket fails for good.
pub fn daytime_serve(tcp: std::net::TcpListener, udp: std::net::UdpSocket) -> io::Result<()> {
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
        pool: CommitPool::new(COMMIT_THREADS)?,
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

/// Run several client sessions at once on one event loop (one thread), each over its connected
/// stream with its own agent; returns each session's outcome, in order.
pub fn run_clients(
    conns: Vec<(std::net::TcpStream, &mut Agent)>,
    config: &Config,
    psk: &Psk,
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
            let session = Session::client(config, psk, seed, el.clock.now());
            el.add(
                TcpStream::from_std(stream),
                peer,
                session,
                AgentSlot::Borrowed(agent),
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
                for (key, i) in &slot_of_key {
                    if el.conns.contains(*key) && results[*i].is_none() {
                        results[*i] =
                            Some(Err(RunError::Io(io::Error::new(e.kind(), e.to_string()))));
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
