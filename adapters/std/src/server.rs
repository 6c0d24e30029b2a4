//! The server: an accept loop that admits connections and runs one thread each.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

use ferry_app::admission::{AcceptErrors, Limits, Pass, SharedAdmission, deepen_backlog};
use ferry_app::agent::{Agent, LogObserver};
use ferry_app::driver::Conn;
use ferry_app::host::{Clock, fresh_seed, keepalive};
use ferry_app::pool::{CommitPool, SERVER_THREADS};
use ferry_disk::Store;
use proto::{Config, Psk, Session};

pub use ferry_app::ServeOptions;

/// Accept connections forever, one thread each (plus its reader), admitted by
/// [`ferry_app::admission`] with `opts.max_connections`; every session stores into and serves
/// from `store`, with their disk work on one pool of [`SERVER_THREADS`] threads. A failed accept
/// (out of descriptors) means a short pause, never the end.
///
/// # Errors
/// When the disk pool's threads cannot be started.
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
    let pool = CommitPool::new(SERVER_THREADS)?;
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
        let (psk, config, store, pool) = (psk.clone(), config.clone(), store.clone(), pool.clone());
        let spawned = thread::Builder::new()
            .name(format!("ferry-conn-{peer}"))
            .spawn(move || serve_one(stream, peer, &psk, &config, store, pass, &pool));
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
    pass: Pass,
    pool: &CommitPool,
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
    let agent = Agent::server(store, Box::new(LogObserver));
    let authenticated = pass.authenticated();
    let conn = Conn::new(session, agent, clock).gated(pass);
    match crate::drive(stream, conn, Some(pool)).1 {
        Ok(()) => tracing::info!(%peer, "session closed"),
        // Keyless crowds must not flood the log (see `Ticket::is_authenticated`).
        Err(e) if !authenticated.load(Ordering::Relaxed) => {
            tracing::debug!(%peer, error = %e, "handshake did not complete");
        }
        Err(e) => tracing::warn!(%peer, error = %e, "session failed"),
    }
}
