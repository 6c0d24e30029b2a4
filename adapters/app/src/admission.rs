//! Who a server lets in, shared by the three adapters so they cannot drift apart.
//!
//! A connection still in the handshake has proved nothing, so it counts against a small quota
//! of its own ([`Limits::handshaking`]) and has a short time to finish
//! ([`HANDSHAKE_TIMEOUT`]); when that quota is full, the oldest connection still in the
//! handshake is evicted to admit the new one, never the new one refused. A real client sends
//! its whole first flight (85 bytes) at once and leaves the quota as soon as the server reads
//! it; a connection that has been heard from and is still in the handshake is stalling, so the
//! oldest *stalling* connection goes first ([`Admission::heard`]), and only without one the
//! oldest of all: a slowloris churning every slot cannot evict a real client before the server
//! had a chance to read it. Only once its
//! handshake succeeded does a connection count against `--max-connections`
//! ([`Limits::authenticated`]); if that is full, it is refused with the plaintext
//! [`proto::BUSY_REFUSAL`] in place of the server's handshake message, and so is an evicted
//! connection: a client then says "server busy", never "wrong key", and a peer without the key
//! learns nothing but "busy".
//!
//! [`Admission`] is the policy, single-threaded and generic over the handle the adapter needs
//! to evict a connection (the mio loop's slab key, a duplicate of the socket elsewhere);
//! [`SharedAdmission`] wraps it for the threaded adapters with a [`Pass`] that releases its
//! slot when dropped. [`AcceptErrors`] is the accept loop's back-off when descriptors run out.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a server gives a new connection to complete the handshake (the default of
/// `serve --handshake-timeout`): a real client needs one round trip.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (out of descriptors and the like) before trying again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The two quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections past the handshake (`--max-connections`).
    pub authenticated: usize,
    /// Connections still in the handshake; the oldest is evicted to admit a new one.
    pub handshaking: usize,
}

impl Limits {
    /// `max_connections` authenticated connections, and a handshake quota of a quarter of
    /// that, at least 16 and at most 1024 (64 with the default 256): enough for the bursts of
    /// real clients such a server expects, each of which leaves it within a round trip.
    pub fn for_max_connections(max_connections: usize) -> Limits {
        Limits {
            authenticated: max_connections.max(1),
            handshaking: (max_connections / 4).clamp(16, 1024),
        }
    }
}

/// A connection's place in an [`Admission`].
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    id: u64,
    authenticated: bool,
}

impl Ticket {
    /// Whether the connection got past the handshake and counts against `max_connections`.
    /// A server logs the end of one that did not at debug level only: a crowd of keyless
    /// connections must not flood the log.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }
}

/// The admission policy (see the module docs). `H` is what the caller needs to evict a
/// connection; it is handed back when its connection is evicted.
#[derive(Debug)]
pub struct Admission<H> {
    limits: Limits,
    authenticated: usize,
    /// Connections in the handshake, oldest first (ids only grow), and whether each was heard
    /// from without finishing.
    handshaking: BTreeMap<u64, (H, bool)>,
    next: u64,
}

impl<H> Admission<H> {
    /// An empty admission with `limits`.
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            authenticated: 0,
            handshaking: BTreeMap::new(),
            next: 0,
        }
    }

    /// Admit a new connection into the handshake quota. Returns its ticket and, when the quota
    /// was full, the handle of the oldest connection still in the handshake, which the caller
    /// must refuse ([`refuse`]) and close.
    pub fn admit(&mut self, handle: H) -> (Ticket, Option<H>) {
        let evicted = if self.handshaking.len() >= self.limits.handshaking.max(1) {
            let stalling = self
                .handshaking
                .iter()
                .find(|(_, (_, heard))| *heard)
                .map(|(id, _)| *id);
            match stalling {
                Some(id) => self.handshaking.remove(&id).map(|(h, _)| h),
                None => self.handshaking.pop_first().map(|(_, (h, _))| h),
            }
        } else {
            None
        };
        let id = self.next;
        self.next += 1;
        self.handshaking.insert(id, (handle, false));
        let ticket = Ticket {
            id,
            authenticated: false,
        };
        (ticket, evicted)
    }

    /// The connection's handshake succeeded. `true`: it now counts against the authenticated
    /// quota and goes on. `false`: that quota is full, or it was evicted meanwhile: refuse it.
    /// Either way it has left the handshake quota (its handle is dropped).
    pub fn authenticate(&mut self, ticket: &mut Ticket) -> bool {
        if ticket.authenticated {
            return true;
        }
        if self.handshaking.remove(&ticket.id).is_none() {
            return false;
        }
        if self.authenticated >= self.limits.authenticated {
            tracing::warn!(
                "refused (busy): {} authenticated connections already",
                self.limits.authenticated
            );
            return false;
        }
        self.authenticated += 1;
        ticket.authenticated = true;
        true
    }

    /// The connection's input was read and its handshake is still not done: it is stalling
    /// (evicted before connections not heard from yet).
    pub fn heard(&mut self, ticket: &Ticket) {
        if let Some((_, heard)) = self.handshaking.get_mut(&ticket.id) {
            *heard = true;
        }
    }

    /// The connection ended: its slot is free (nothing happens for an evicted one).
    pub fn release(&mut self, ticket: Ticket) {
        if ticket.authenticated {
            self.authenticated -= 1;
        } else {
            self.handshaking.remove(&ticket.id);
        }
    }

    /// Connections in the handshake and past it.
    pub fn counts(&self) -> (usize, usize) {
        (self.handshaking.len(), self.authenticated)
    }
}

/// Refuse a connection: the busy answer (one short write, which a fresh socket's buffer
/// always takes), then hang up both ways.
pub fn refuse(stream: &TcpStream) {
    let _ = (&*stream).write(&proto::BUSY_REFUSAL);
    let _ = stream.shutdown(Shutdown::Both);
}

/// Depth asked of a server's accept queue (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Deepen `listener`'s accept queue to [`BACKLOG`] (std listens with 128): a crowd of peers
/// that reconnect as soon as they are dropped would otherwise keep a 128-deep queue full, and
/// the kernel drops everyone else's SYN (retried only after 1, 3, 7 s). Failures are logged.
pub fn deepen_backlog(listener: &impl std::os::fd::AsFd) {
    if let Err(e) = rustix::net::listen(listener, BACKLOG) {
        tracing::debug!(%e, "cannot deepen the accept queue");
    }
}

/// [`Admission`] for adapters with a thread or task per connection; evicting a connection
/// refuses its socket (through a duplicate descriptor held while it is in the handshake),
/// which its own thread or task sees as the end of the stream.
#[derive(Debug)]
pub struct SharedAdmission(Mutex<Admission<Option<TcpStream>>>);

impl SharedAdmission {
    /// A shared admission with `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(SharedAdmission(Mutex::new(Admission::new(limits))))
    }

    fn lock(&self) -> MutexGuard<'_, Admission<Option<TcpStream>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit `stream`, evicting the oldest connection in the handshake if the quota is full.
    /// Out of descriptors for the duplicate, it is admitted all the same but cannot be closed
    /// when evicted (its handshake timer still ends it).
    pub fn admit(self: &Arc<Self>, stream: &TcpStream) -> Pass {
        let handle = stream.try_clone().ok();
        let (ticket, evicted) = self.lock().admit(handle);
        if let Some(old) = evicted.flatten() {
            tracing::debug!(peer = ?old.peer_addr().ok(), "evicted: the oldest handshake");
            refuse(&old);
        }
        Pass {
            shared: self.clone(),
            ticket: Some(ticket),
            authenticated: Arc::default(),
        }
    }
}

/// A connection's slot in a [`SharedAdmission`], released when dropped.
#[derive(Debug)]
pub struct Pass {
    shared: Arc<SharedAdmission>,
    ticket: Option<Ticket>,
    authenticated: Arc<AtomicBool>,
}

impl Pass {
    /// As [`Admission::heard`].
    pub fn heard(&self) {
        if let Some(t) = &self.ticket {
            self.shared.lock().heard(t);
        }
    }

    /// As [`Admission::authenticate`]: `false` means refuse the connection.
    pub fn authenticate(&mut self) -> bool {
        let ok = match &mut self.ticket {
            Some(t) => self.shared.lock().authenticate(t),
            None => false,
        };
        self.authenticated.store(ok, Ordering::Relaxed);
        ok
    }

    /// A flag that turns true once the connection authenticated (see
    /// [`Ticket::is_authenticated`]), readable after the pass moved on.
    pub fn authenticated(&self) -> Arc<AtomicBool> {
        self.authenticated.clone()
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.shared.lock().release(t);
        }
    }
}

/// Failed `accept`s in a row: each one means a short pause (the caller's), and only the first
/// of a burst is logged as a warning, so running out of descriptors neither spins, floods the
/// log, nor stops the server.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    failures: u64,
}

impl AcceptErrors {
    /// An accept failed with `e`: how long to pause before the next try.
    pub fn failed(&mut self, e: &io::Error) -> Duration {
        if self.failures == 0 {
            tracing::warn!(error = %e, "accept failed; retrying every {ACCEPT_BACKOFF:?}");
        }
        self.failures += 1;
        ACCEPT_BACKOFF
    }

    /// An accept succeeded (ends a burst of failures).
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::warn!(failures = self.failures, "accepting again");
            self.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(authenticated: usize, handshaking: usize) -> Limits {
        Limits {
            authenticated,
            handshaking,
        }
    }

    #[test]
    fn a_full_handshake_quota_evicts_the_oldest() {
        let mut a = Admission::new(limits(10, 3));
        let (t0, e) = a.admit("a");
        assert_eq!(e, None);
        let (_t1, _) = a.admit("b");
        let (_t2, _) = a.admit("c");
        let (mut t3, e) = a.admit("d");
        assert_eq!(e, Some("a"), "the oldest goes");
        let (_t4, e) = a.admit("e");
        assert_eq!(e, Some("b"));
        assert_eq!(a.counts(), (3, 0));
        // An evicted connection cannot authenticate, and releasing it changes nothing.
        let mut t0 = t0;
        assert!(!a.authenticate(&mut t0));
        a.release(t0);
        assert_eq!(a.counts(), (3, 0));
        // Authenticating leaves the handshake quota.
        assert!(a.authenticate(&mut t3));
        assert_eq!(a.counts(), (2, 1));
        a.release(t3);
        assert_eq!(a.counts(), (2, 0));
    }

    #[test]
    fn a_stalling_handshake_goes_before_older_unheard_ones() {
        let mut a = Admission::new(limits(10, 3));
        let (_t0, _) = a.admit("unheard");
        let (t1, _) = a.admit("stalling");
        let (_t2, _) = a.admit("new");
        a.heard(&t1);
        let (t3, e) = a.admit("newer");
        assert_eq!(e, Some("stalling"));
        a.heard(&t3);
        let (_t4, e) = a.admit("newest");
        assert_eq!(e, Some("newer"), "stalling beats age");
        let (_t5, e) = a.admit("last");
        assert_eq!(e, Some("unheard"), "then the oldest");
    }

    #[test]
    fn only_authenticated_connections_count_against_max_connections() {
        let mut a = Admission::new(limits(2, 16));
        let mut tickets: Vec<Ticket> = (0..5).map(|i| a.admit(i).0).collect();
        assert_eq!(a.counts(), (5, 0), "five handshakes with max_connections 2");
        assert!(a.authenticate(&mut tickets[0]));
        assert!(a.authenticate(&mut tickets[1]));
        assert!(!a.authenticate(&mut tickets[2]), "busy");
        assert_eq!(a.counts(), (2, 2));
        let first = tickets.remove(0);
        a.release(first);
        assert!(a.authenticate(&mut tickets[2]), "a slot came free");
    }

    #[test]
    fn limits_from_max_connections() {
        assert_eq!(Limits::for_max_connections(256), limits(256, 64));
        assert_eq!(Limits::for_max_connections(4), limits(4, 16));
        assert_eq!(Limits::for_max_connections(100), limits(100, 25));
        assert_eq!(Limits::for_max_connections(5000), limits(5000, 1024));
    }

    #[test]
    fn evicted_sockets_get_the_busy_answer() {
        use std::io::Read;
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = SharedAdmission::new(limits(1, 1));
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (first, _) = listener.accept().unwrap();
        let mut pass = shared.admit(&first);
        let _other = TcpStream::connect(addr).unwrap();
        let (second, _) = listener.accept().unwrap();
        let _pass2 = shared.admit(&second);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, proto::BUSY_REFUSAL);
        assert!(!pass.authenticate());
        drop(first);
    }
}

/// A server's limits, the same for every adapter.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Authenticated connections served at once; more hear "busy". Connections still in the
    /// handshake have a smaller quota of their own ([`Limits::for_max_connections`]).
    pub max_connections: usize,
    /// Session configuration.
    pub config: proto::Config,
    /// Datagram transport settings (UDP connections).
    pub transport: proto::dgram::TransportConfig,
}

impl Default for ServeOptions {
    /// 256 connections, the default [`proto::Config`].
    fn default() -> Self {
        ServeOptions {
            max_connections: 256,
            config: proto::Config::default(),
            transport: proto::dgram::TransportConfig::default(),
        }
    }
}
