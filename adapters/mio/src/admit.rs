//! Accepting connections on the loop: [`ferry_app::admission`]'s policy with slab keys as
//! handles, the busy refusal, and the commit pool each server connection uses.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ferry_app::admission::{Admission, Ticket};
use ferry_app::agent::{Agent, LogObserver};
use ferry_app::host::{RunError, fresh_seed, keepalive};
use ferry_app::pool::CommitPool;
use ferry_disk::Store;
use mio::net::{TcpListener, TcpStream};
use proto::{Psk, Session};

use crate::ServeOptions;
use crate::evloop::{AgentFrom, EventLoop, Slot};

/// The commit pool and how its threads wake the loop.
pub(crate) struct Commits {
    pub(crate) pool: CommitPool,
    pub(crate) waker: Arc<mio::Waker>,
    pub(crate) woken: Arc<Mutex<Vec<usize>>>,
}

/// Refuse a connection: the busy answer (one short non-blocking write, which a fresh socket's
/// buffer takes), then hang up. (`ferry_app::admission::refuse` takes a std socket.)
pub(crate) fn refuse(stream: &mut TcpStream) {
    let _ = stream.write(&proto::BUSY_REFUSAL);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Once a server connection's first handshake message checked out, it must authenticate
/// with the admission (`max_connections`) or be refused as busy: then the server's message 2,
/// gathered by the step that checked it, is dropped unsent and the connection ends (returns
/// `true`). Before that, input that did not finish the handshake (`heard`) marks it as
/// stalling.
pub(crate) fn gate(
    c: &mut Slot<'_>,
    admission: Option<&mut Admission<usize>>,
    heard: bool,
) -> bool {
    let (Some(admission), Some(ticket)) = (admission, c.ticket.as_mut()) else {
        return false;
    };
    if ticket.is_authenticated() {
        return false;
    }
    if c.conn.session().peer_side().is_none() {
        if heard {
            admission.heard(ticket);
        }
        return false;
    }
    if admission.authenticate(ticket) {
        return false;
    }
    let unsent = c.conn.output().len();
    c.conn.output_sent(unsent);
    refuse(&mut c.stream);
    c.end(Some(busy()));
    true
}

/// A server connection ended: free its slot. Returns whether its end is already logged (at
/// debug level for one that never finished the handshake: keyless crowds must not flood the
/// log); the caller reports the others.
pub(crate) fn release(
    admission: Option<&mut Admission<usize>>,
    ticket: Option<Ticket>,
    peer: SocketAddr,
    result: &Result<(), RunError>,
) -> bool {
    let (Some(admission), Some(ticket)) = (admission, ticket) else {
        return false;
    };
    let quiet = !ticket.is_authenticated() && result.is_err();
    if let (true, Err(e)) = (quiet, result) {
        tracing::debug!(%peer, error = %e, "handshake did not complete");
    }
    admission.release(ticket);
    quiet
}

pub(crate) fn busy() -> io::Error {
    io::Error::other("refused: server busy")
}

/// Connections accepted per turn of the loop: the ones accepted get their turn (their first
/// flight read) before a flood of newer ones can evict them from the handshake quota.
const ACCEPT_BATCH: usize = 16;

/// How [`accept_all`] left the listener.
pub(crate) enum Accepted {
    /// Nothing more waits (until the next readiness event).
    Drained,
    /// A batch was taken and more may wait: try again on the next turn.
    More,
    /// Accepting failed (out of descriptors and the like): try again after a pause.
    Failed(io::Error),
}

/// Accept up to [`ACCEPT_BATCH`] waiting connections.
pub(crate) fn accept_all(
    el: &mut EventLoop<'_>,
    listener: &TcpListener,
    psk: &Psk,
    store: &Arc<dyn Store>,
    opts: &ServeOptions,
    commits: &Commits,
) -> Accepted {
    for _ in 0..ACCEPT_BATCH {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Accepted::Failed(e),
        };
        keepalive(&stream);
        let seed = match fresh_seed() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no session seed");
                continue;
            }
        };
        let session = Session::server(&opts.config, psk, seed, el.clock.now());
        let mut agent = Agent::server(store.clone(), Box::new(LogObserver));
        let key = el.conns.vacant_key();
        let (waker, woken) = (commits.waker.clone(), commits.woken.clone());
        agent.use_commit_pool(
            commits.pool.clone(),
            Arc::new(move || {
                woken.lock().unwrap_or_else(|p| p.into_inner()).push(key);
                let _ = waker.wake();
            }),
        );
        admit(el, stream, peer, session, agent);
    }
    Accepted::More
}

/// Add a server connection under the admission policy, evicting the oldest handshake if its
/// quota is full.
fn admit(
    el: &mut EventLoop<'_>,
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    agent: Agent,
) {
    let key = match el.add(stream, peer, session, AgentFrom::Owned(Box::new(agent))) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot register the connection");
            return;
        }
    };
    let Some(admission) = el.admission.as_mut() else {
        return;
    };
    let (ticket, evicted) = admission.admit(key);
    if let Some(c) = el.conns.get_mut(key) {
        c.ticket = Some(ticket);
    }
    if let Some(old) = evicted
        && let Some(c) = el.conns.get_mut(old)
    {
        tracing::debug!(peer = %c.peer, "evicted: the oldest handshake");
        refuse(&mut c.stream);
        c.end(Some(busy()));
        el.schedule(old);
    }
}
