//! ferry over UDP: the datagram application, written once for every adapter.
//!
//! [`UdpConn`] is one connection's state but its socket (the core's datagram
//! [`Connection`], its [`Agent`] and the clock); [`UdpServer`] is a server socket's state: the
//! core's [`Endpoint`](proto::dgram::Endpoint) and every connection it accepted. Both are
//! driven the same way by an adapter that keeps only its way of waiting:
//!
//! 1. every datagram read from the socket goes to `handle_datagram` (read until the socket
//!    would block: a receive batch is acknowledged together);
//! 2. `step` lets the agents act (bounded file work) and timers fire;
//! 3. `poll_transmit` is drained into the socket (`Transmit::segment_size`: a GSO batch);
//! 4. wait for the socket or `until_deadline`, whichever comes first.
//!
//! A client is over when [`UdpConn::is_over`]; a server runs until its socket fails.

mod server;
mod serving;
pub mod socket;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_disk::Store;
use proto::dgram::{Connection, Transmit, TransportConfig};
use proto::{CloseCode, Config, Instant, Psk};

use crate::ServeOptions;
use crate::agent::Agent;
use crate::host::{Clock, RunError, fresh_seed};
use crate::pool::Notify;

pub use server::{ObserverFactory, UdpServer};

/// Most datagrams in one GSO send (and one `poll_transmit`, `TransportConfig::max_batch`):
/// 32 full datagrams stay under the 64 KiB a UDP send may carry.
pub const MAX_BATCH: usize = 32;
/// Bytes of a transmit buffer: room for a GSO batch of [`MAX_BATCH`] full datagrams.
pub const TRANSMIT_BUF: usize = proto::dgram::MAX_MTU as usize * MAX_BATCH;
/// Rounds of agent → transmit in one step before the adapter gets the connection back.
const ROUNDS: usize = 8;

/// Serve datagram connections on `sock` on this thread until the socket fails: a blocking
/// loop ([`socket::serve`]) over one [`UdpServer`], commits on a small pool that wakes the
/// loop with a datagram to its own socket.
///
/// # Errors
/// The socket failed for good, or no OS randomness or pool threads.
pub fn serve_blocking(
    sock: UdpSocket,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    if let Some(w) = socket::size_buffers(&sock) {
        tracing::warn!("{w}");
    }
    let sock = Arc::new(sock);
    let io = socket::UdpIo::new(&*sock)?;
    let woken = Arc::new(AtomicBool::new(false));
    let notify = self_waker(sock.clone(), woken.clone())?;
    let server = UdpServer::serving(&io, &psk, store, &opts, notify)?;
    socket::serve(io, server, woken)
}

/// A notify that sets `woken` and sends one byte from `sock` to itself (which the endpoint
/// drops as garbage), so a loop blocked in `recv` wakes at once. It takes no descriptor of its
/// own: a server that runs out of them (a crowd of TCP connections) keeps its UDP side.
fn self_waker(sock: Arc<UdpSocket>, woken: Arc<AtomicBool>) -> io::Result<Notify> {
    let mut target = sock.local_addr()?;
    if target.ip().is_unspecified() {
        target.set_ip(match target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(Arc::new(move || {
        woken.store(true, Ordering::Release);
        let _ = sock.send_to(&[0], target);
    }))
}

/// A client's socket: bound to any local address of `remote`'s family, connected to `remote`
/// (so the host's "port unreachable" reaches it), buffers sized (a warning when capped).
///
/// # Errors
/// Binding or connecting failed.
pub fn client_socket(remote: SocketAddr) -> io::Result<UdpSocket> {
    let bind: SocketAddr = match remote {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(remote)?;
    if let Some(w) = socket::size_buffers(&sock) {
        tracing::warn!("{w}");
    }
    Ok(sock)
}

/// Run `agent`'s job over UDP against `remote` on this thread (a blocking loop,
/// [`socket::run_client`]); the agent comes back in `agent` (its reports, resume state).
///
/// # Errors
/// The socket failed, or the session did (a silent server: the handshake timeout).
pub fn run_client_blocking(
    remote: SocketAddr,
    config: &Config,
    transport: &TransportConfig,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    let sock = client_socket(remote).map_err(RunError::Io)?;
    let io = socket::UdpIo::new(&sock).map_err(RunError::Io)?;
    let clock = Clock::new();
    let seed = fresh_seed().map_err(RunError::Io)?;
    let transport = io.transport(transport);
    let conn = Connection::client(config, &transport, psk, seed, clock.now(), remote);
    let owned = Agent::take(agent);
    let (owned, result) = socket::run_client(io, UdpConn::new(conn, owned, clock));
    *agent = owned;
    result
}

/// The error inside a client's [`RunError::Io`] when its handshake got no answer.
#[derive(Debug)]
pub struct NoAnswer {
    /// The peer sent authenticated handshake packets, then fell silent (see [`was_heard`]).
    heard: bool,
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no answer to the handshake")
    }
}

impl std::error::Error for NoAnswer {}

/// Whether a client run ended because its handshake got no answer (see [`UdpConn::finish`]):
/// `Some(true)` when the port was reported unreachable, `Some(false)` for silence.
pub fn is_no_answer(e: &RunError) -> Option<bool> {
    match e {
        RunError::Io(io) if io.get_ref().is_some_and(|i| i.is::<NoAnswer>()) => {
            Some(io.kind() == io::ErrorKind::ConnectionRefused)
        }
        _ => None,
    }
}

/// Whether a client run that got no answer (see [`is_no_answer`]) had heard the peer first:
/// it sent authenticated handshake packets, then fell silent. In mode CODE that is a sender
/// that refused our code (a failed handshake is never explained over UDP).
pub fn was_heard(e: &RunError) -> bool {
    match e {
        RunError::Io(io) => io
            .get_ref()
            .and_then(|i| i.downcast_ref::<NoAnswer>())
            .is_some_and(|n| n.heard),
        _ => false,
    }
}

/// One datagram connection's state but its socket.
pub struct UdpConn {
    conn: Connection,
    agent: Agent,
    clock: Clock,
    close_requested: bool,
    close_applied: bool,
    /// The session was connected at some point (the peer answered the handshake).
    answered: bool,
    /// The port was reported unreachable (ICMP) while not yet answered.
    refused: bool,
}

impl UdpConn {
    /// A connection (made with `clock`'s time) and its agent.
    pub fn new(conn: Connection, agent: Agent, clock: Clock) -> UdpConn {
        UdpConn {
            conn,
            agent,
            clock,
            close_requested: false,
            close_applied: false,
            answered: false,
            refused: false,
        }
    }

    /// The connection (its session, stats).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The agent (reports so far).
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.conn.remote()
    }

    /// A datagram arrived from `from` (opened in place).
    pub fn handle_datagram(&mut self, from: SocketAddr, data: &mut [u8]) {
        let now = self.clock.now();
        self.conn.handle_datagram(now, from, data);
        self.answered |= self.conn.session().is_connected();
    }

    /// Whether the peer ever answered: the session was connected at some point.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// The socket reported the peer's port unreachable (ICMP): remembered for
    /// [`UdpConn::finish`], which then reports a refusal rather than a silent timeout.
    pub fn port_unreachable(&mut self) {
        self.refused = true;
    }

    /// Close the session (`CloseCode::Cancelled`) at the next step, as a TCP connection's
    /// `request_close` does.
    pub fn request_close(&mut self) {
        self.close_requested = true;
    }

    /// Let the agent act and timers fire. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.clock.now();
        self.step_at(now)
    }

    pub(crate) fn step_at(&mut self, now: Instant) -> bool {
        let mut any = false;
        for _ in 0..ROUNDS {
            let mut progress = false;
            if self.close_requested && !self.close_applied {
                let s = self.conn.session_mut();
                self.agent.cancel(s);
                s.close(now, CloseCode::Cancelled);
                self.close_applied = true;
                progress = true;
            }
            if self.conn.poll_timeout().is_some_and(|t| t <= now) {
                self.conn.handle_timeout(now);
            }
            progress |= self.agent.pump(self.conn.session_mut(), now);
            self.answered |= self.conn.session().is_connected();
            any |= progress;
            if !progress {
                break;
            }
        }
        any
    }

    /// The next datagram (or GSO batch) to send; drain until `None`. The agent acts again
    /// when the connection handed its session more input meanwhile.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let now = self.clock.now();
        loop {
            if let Some(t) = self.conn.poll_transmit(now, buf) {
                return Some(t);
            }
            if !self.agent.pump(self.conn.session_mut(), now) {
                return None;
            }
        }
    }

    /// When the next timer is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// How long from now until [`UdpConn::deadline`], if any.
    pub fn until_deadline(&self) -> Option<Duration> {
        self.deadline().map(|at| self.clock.until(at))
    }

    /// The session is over and this side has nothing more to send (its CLOSE is out, or the
    /// connection drained): the adapter may stop once `poll_transmit` returned `None`.
    pub fn is_over(&self) -> bool {
        self.conn.is_drained() || (self.conn.session().is_closed() && self.conn.is_closing())
    }

    /// The connection is over (or its socket failed with `socket_error`): tell the agent how
    /// the session ended and hand it back with the outcome.
    ///
    /// A client whose handshake got no answer (the session timed out, or the port was
    /// unreachable, before it was ever connected) ends with [`RunError::Io`] of kind
    /// [`io::ErrorKind::TimedOut`] or [`io::ErrorKind::ConnectionRefused`], see
    /// [`is_no_answer`]; its agent is not finished (nothing started: retry with it).
    pub fn finish(mut self, socket_error: Option<io::Error>) -> (Agent, Result<(), RunError>) {
        let error = self.conn.session().error();
        if self.conn.session().is_client() && !self.answered {
            let refused = socket_error
                .as_ref()
                .is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused);
            if refused || error == Some(proto::SessionError::TimedOut) {
                let kind = if refused || self.refused {
                    io::ErrorKind::ConnectionRefused
                } else {
                    io::ErrorKind::TimedOut
                };
                let stats = self.conn.stats();
                let heard = stats.datagrams_received > stats.dropped;
                return (
                    self.agent,
                    Err(RunError::Io(io::Error::new(kind, NoAnswer { heard }))),
                );
            }
        }
        if !crate::host::is_busy(error.as_ref()) {
            self.agent.finish(error.as_ref());
        }
        let result = match (socket_error, error) {
            (Some(e), _) => Err(RunError::Io(e)),
            (None, Some(e)) => Err(RunError::Session(e)),
            (None, None) => Ok(()),
        };
        (self.agent, result)
    }
}
