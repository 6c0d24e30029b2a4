//! The event loop: connections in a slab keyed by their `mio` [`Token`], readiness, a timer
//! heap and a ready queue. Every connection runs through the shared driver
//! ([`ferry_app::driver::Conn`]); this module only moves bytes between it and the socket and
//! decides when to give it a turn.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_app::admission::{Admission, Ticket};
use ferry_app::agent::{Agent, LogObserver};
use ferry_app::driver::{Conn, LINGER, Step};
use ferry_app::host::{Clock, RunError};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use proto::{Instant, Session};
use slab::Slab;

use crate::{ROUNDS, admit};

pub(crate) const LISTENER: Token = Token(usize::MAX);
pub(crate) const WAKER: Token = Token(usize::MAX - 1);

/// One connection: its socket, the driver and the loop's bookkeeping.
pub(crate) struct Slot<'a> {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) conn: Conn,
    /// Client mode: the caller's agent, which gets the driver's agent back at the end.
    home: Option<&'a mut Agent>,
    /// The socket may have more to read (edge-triggered: cleared only by `WouldBlock`).
    readable: bool,
    /// The socket may take more output.
    writable: bool,
    /// `WRITABLE` interest is registered.
    write_interest: bool,
    /// The armed deadline (the session's, or the linger's) and the heap entry that belongs to
    /// it.
    deadline: Option<Instant>,
    generation: u64,
    queued: bool,
    /// The driver ended: its last records are being flushed until this time.
    linger: Option<Instant>,
    /// Over: remove it, with this socket failure (if any) for [`Conn::finish`].
    over: Option<Option<io::Error>>,
    /// A server connection's place in the loop's [`Admission`].
    pub(crate) ticket: Option<Ticket>,
}

impl Slot<'_> {
    /// End the connection now (the next turn removes it).
    pub(crate) fn end(&mut self, failed: Option<io::Error>) {
        self.over.get_or_insert(failed);
    }
}

/// Where a connection's agent comes from.
pub(crate) enum AgentFrom<'a> {
    /// A server connection's own.
    Owned(Box<Agent>),
    /// A client's caller's: it gets the agent back when the connection ends.
    Caller(&'a mut Agent),
}

/// How a turn left a connection.
enum Turn {
    /// Waits for an event or a timer.
    Idle,
    /// Has more work: put it back in the ready queue.
    Busy,
    /// Over: deregister and finish.
    Done,
}

/// The event loop: connections, timers and readiness.
pub(crate) struct EventLoop<'a> {
    pub(crate) poll: Poll,
    pub(crate) conns: Slab<Slot<'a>>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    ready: VecDeque<usize>,
    pub(crate) clock: Clock,
    /// Who gets in (servers only). It stays outside the driver ([`Conn::gated`] takes a
    /// `Pass` of a `SharedAdmission`, a mutex over std sockets that evicts by shutting one
    /// down from another thread); here one thread owns the policy, keyed by slab keys, and
    /// evicts by key.
    pub(crate) admission: Option<Admission<usize>>,
}

impl<'a> EventLoop<'a> {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(EventLoop {
            poll: Poll::new()?,
            conns: Slab::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            clock: Clock::new(),
            admission: None,
        })
    }

    /// Register `stream` with a driver for `session` and `agent`.
    pub(crate) fn add(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        session: Session,
        agent: AgentFrom<'a>,
    ) -> io::Result<usize> {
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)?;
        let (agent, home) = match agent {
            AgentFrom::Owned(agent) => (*agent, None),
            // The driver owns its agent: the caller's slot holds an inert stand-in meanwhile.
            AgentFrom::Caller(caller) => (std::mem::replace(caller, stand_in()), Some(caller)),
        };
        entry.insert(Slot {
            stream,
            peer,
            conn: Conn::new(session, agent, self.clock),
            home,
            readable: true,
            writable: true,
            write_interest: false,
            deadline: None,
            generation: 0,
            queued: false,
            linger: None,
            over: None,
            ticket: None,
        });
        self.schedule(key);
        Ok(key)
    }

    pub(crate) fn schedule(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.queued
        {
            c.queued = true;
            self.ready.push_back(key);
        }
    }

    /// How long `poll` may sleep: not at all with ready work, else until the earliest timer.
    pub(crate) fn poll_timeout(&mut self) -> Option<Duration> {
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
    pub(crate) fn fire_timers(&mut self) {
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

    /// Give each queued connection its turn; returns the ones that ended, with their outcome.
    pub(crate) fn run_ready(&mut self) -> Vec<(usize, SocketAddr, Result<(), RunError>)> {
        let mut finished = Vec::new();
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            let Some(slot) = self.conns.get_mut(key) else {
                continue;
            };
            slot.queued = false;
            let turn = service(slot, &self.clock, self.admission.as_mut());
            match turn {
                Turn::Done => {
                    let slot = self.conns.remove(key);
                    if let Some(done) = self.end(slot) {
                        finished.push((key, done.0, done.1));
                    }
                }
                Turn::Busy | Turn::Idle => {
                    if let Err(e) = self.rearm(key) {
                        if let Some(c) = self.conns.get_mut(key) {
                            c.end(Some(e));
                        }
                        self.schedule(key);
                        continue;
                    }
                    if matches!(turn, Turn::Busy) {
                        self.schedule(key);
                    }
                }
            }
        }
        finished
    }

    /// A removed connection: hang up, finish the driver, give a client's agent back, free a
    /// server's admission slot. Returns its outcome unless already logged.
    fn end(&mut self, mut slot: Slot<'a>) -> Option<(SocketAddr, Result<(), RunError>)> {
        let _ = self.poll.registry().deregister(&mut slot.stream);
        let _ = slot.stream.shutdown(std::net::Shutdown::Both);
        let (agent, result) = slot.conn.finish(slot.over.flatten());
        if let Some(home) = slot.home {
            *home = agent;
        }
        let logged = admit::release(self.admission.as_mut(), slot.ticket, slot.peer, &result);
        (!logged).then_some((slot.peer, result))
    }

    /// The loop itself failed with `e`: end every connection now.
    pub(crate) fn end_all(&mut self, e: &io::Error) -> Vec<(usize, Result<(), RunError>)> {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        let mut ended = Vec::new();
        for key in keys {
            let mut slot = self.conns.remove(key);
            slot.end(Some(io::Error::new(e.kind(), e.to_string())));
            ended.extend(self.end(slot).map(|(_, result)| (key, result)));
        }
        ended
    }

    /// Interest and timer bookkeeping after a connection's turn.
    fn rearm(&mut self, key: usize) -> io::Result<()> {
        let Some(c) = self.conns.get_mut(key) else {
            return Ok(());
        };
        let pending = c.conn.has_output();
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
        let deadline = c.linger.or_else(|| c.conn.deadline());
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
    pub(crate) fn on_events(&mut self, events: &Events) {
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

/// The driver's agent while the caller's is elsewhere: it never runs.
fn stand_in() -> Agent {
    Agent::server(
        Arc::new(ferry_disk::StdoutStore::new()),
        Box::new(LogObserver),
    )
}

/// One turn of one connection: read, step the driver, write; at most [`ROUNDS`] steps while
/// it is busy.
fn service(c: &mut Slot<'_>, clock: &Clock, mut admission: Option<&mut Admission<usize>>) -> Turn {
    if c.over.is_some() {
        return Turn::Done;
    }
    if let Some(until) = c.linger {
        return flush_last(c, clock, until);
    }
    for _ in 0..ROUNDS {
        let heard = read(c);
        let step = c.conn.step();
        if admit::gate(c, admission.as_deref_mut(), heard) {
            return Turn::Done;
        }
        match step {
            Step::Refused => {
                admit::refuse(&mut c.stream);
                c.end(Some(admit::busy()));
                return Turn::Done;
            }
            Step::Ended => {
                // The session's last records (our FINAL, or the error `Close`), within reason.
                let until = clock.now() + LINGER;
                c.linger = Some(until);
                return flush_last(c, clock, until);
            }
            Step::Busy | Step::Idle => {}
        }
        let before = c.conn.output().len();
        if let Err(e) = write(c) {
            c.end(Some(e));
            return Turn::Done;
        }
        // Written output is progress (a step stops gathering when the output is full), and an
        // edge-triggered socket left readable while the driver takes input again raises no
        // new event: either way, step again.
        let wrote = c.conn.output().len() != before;
        if step == Step::Idle && !wrote && !(c.readable && c.conn.wants_input()) {
            // Quiet until the socket or a timer: an idle connection keeps no I/O buffers.
            c.conn.release_idle_buffers();
            return Turn::Idle;
        }
    }
    Turn::Busy
}

/// Read while the socket has bytes and the driver takes them. Returns whether any arrived.
fn read(c: &mut Slot<'_>) -> bool {
    let mut heard = false;
    while c.readable && c.conn.wants_input() {
        match c.stream.read(c.conn.input_room()) {
            Ok(0) => c.conn.end_of_input(),
            Ok(n) => {
                c.conn.input_filled(n);
                heard = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => c.conn.input_failed(e),
        }
    }
    heard
}

/// Write the driver's output while the socket takes it.
fn write(c: &mut Slot<'_>) -> io::Result<()> {
    while c.writable && c.conn.has_output() {
        match c.stream.write(c.conn.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.conn.output_sent(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An ended connection flushes its last records on `WRITABLE` events until `until`.
fn flush_last(c: &mut Slot<'_>, clock: &Clock, until: Instant) -> Turn {
    let flushed = write(c);
    if let Err(e) = &flushed {
        tracing::debug!(peer = %c.peer, error = %e, "could not flush the last records");
    }
    if flushed.is_err() || !c.conn.has_output() || clock.now() >= until {
        c.end(None);
        return Turn::Done;
    }
    Turn::Idle
}
