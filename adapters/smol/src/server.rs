//! The async server: a task per connection, a connection limit and a graceful shutdown.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use async_executor::Executor;
use async_io::{Async, Timer};
use ferry_app::admission::{AcceptErrors, Limits, Pass, SharedAdmission};
use ferry_app::agent::{Agent, LogObserver};
use ferry_app::host::{Clock, fresh_seed, keepalive};
use ferry_app::pool::CommitPool;
use ferry_disk::Store;
use futures_lite::FutureExt;
use proto::{Config, Psk, Session};

use crate::conn::{Command, drive};
use ferry_app::driver::Conn;

pub use ferry_app::ServeOptions;

/// A ferry server for async programs: accepts connections and serves each one from a
/// [`Store`] (receives the files clients send, answers their GET and LIST requests).
///
/// Run it with [`run`](Server::run) (its connections run inside that future, on whatever
/// executor polls it) or [`run_on`](Server::run_on) (connections become tasks of an
/// `async-executor` that other threads may run too). Stop it with a [`ShutdownHandle`]; drop
/// the `run` future to stop at once.
pub struct Server {
    listener: Async<TcpListener>,
    store: Arc<dyn Store>,
    psk: Psk,
    opts: ServeOptions,
    stop_tx: Sender<Command>,
    stop_rx: Receiver<Command>,
}

/// Stops a [`Server`] gracefully. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownHandle(Sender<Command>);

impl ShutdownHandle {
    /// Stop accepting and close every session (`CloseCode::Cancelled`: transfers in flight
    /// fail, their partial files are kept for a resume). The server's `run` future completes
    /// once every session has ended. Calling it again does nothing.
    pub fn shutdown(&self) {
        self.0.close();
    }
}

impl Server {
    /// A server on `listener` for sessions keyed with `psk`, storing into and serving from
    /// `store`.
    pub fn new(
        listener: Async<TcpListener>,
        store: Arc<dyn Store>,
        psk: &Psk,
        opts: ServeOptions,
    ) -> Server {
        ferry_app::admission::deepen_backlog(listener.get_ref());
        let (stop_tx, stop_rx) = async_channel::bounded(1);
        Server {
            listener,
            store,
            psk: psk.clone(),
            opts,
            stop_tx,
            stop_rx,
        }
    }

    /// [`Server::new`] on a new listener bound to `addr` (port 0 picks a free port; see
    /// [`local_addr`](Server::local_addr)).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn bind(
        addr: SocketAddr,
        store: Arc<dyn Store>,
        psk: &Psk,
        opts: ServeOptions,
    ) -> io::Result<Server> {
        Ok(Server::new(
            Async::<TcpListener>::bind(addr)?,
            store,
            psk,
            opts,
        ))
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop_tx.clone())
    }

    /// Serve until shut down, running every connection inside this future. Dropping the future
    /// drops every connection at once (their received partial files are kept; nothing
    /// incomplete is ever published).
    ///
    /// A failed accept (out of descriptors and the like) means a short pause, never the end.
    ///
    /// # Errors
    /// When the disk pool's threads cannot be started.
    pub async fn run(self) -> io::Result<()> {
        let ex = Executor::new();
        ex.run(self.run_on(&ex)).await
    }

    /// Serve until shut down, spawning each connection as a task on `ex`. Completes once shut
    /// down and every session has ended. Dropping the future stops accepting; the connection
    /// tasks go on.
    ///
    /// # Errors
    /// As [`run`](Server::run).
    pub async fn run_on(self, ex: &Executor<'_>) -> io::Result<()> {
        let Server {
            listener,
            store,
            psk,
            opts,
            stop_tx,
            stop_rx,
        } = self;
        let psk = Arc::new(psk);
        let config = Arc::new(opts.config);
        let pool = CommitPool::new(ferry_app::pool::SERVER_THREADS)?;
        // Every connection task holds a clone of `alive`: the channel closes when the last ends.
        let (alive, all_ended) = async_channel::bounded::<()>(1);
        let admission = SharedAdmission::new(Limits::for_max_connections(opts.max_connections));
        let mut errors = AcceptErrors::default();
        let result: io::Result<()> = loop {
            let stop = async {
                let _ = stop_rx.recv().await;
                None
            };
            let Some(accepted) = async { Some(listener.accept().await) }.or(stop).await else {
                break Ok(());
            };
            let (stream, peer) = match accepted {
                Ok(x) => {
                    errors.succeeded();
                    x
                }
                Err(e) => {
                    Timer::after(errors.failed(&e)).await;
                    continue;
                }
            };
            keepalive(stream.get_ref());
            let pass = admission.admit(stream.get_ref());
            let shared = Shared {
                psk: psk.clone(),
                config: config.clone(),
                store: store.clone(),
                commands: stop_rx.clone(),
                pool: pool.clone(),
            };
            let task = serve_one(stream, pass, peer, shared);
            let alive = alive.clone();
            ex.spawn(async move {
                task.await;
                drop(alive);
            })
            .detach();
            // A flood of connections must not starve the ones accepted: each gets its first
            // turn (its first flight read) before many newer ones can evict it.
            futures_lite::future::yield_now().await;
        };
        // Refuse new connections, close every session, wait for them to end.
        drop(listener);
        stop_tx.close();
        drop(alive);
        let _ = all_ended.recv().await;
        result
    }
}

/// What every connection of a server shares.
struct Shared {
    psk: Arc<Psk>,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    /// Closed at shutdown.
    commands: Receiver<Command>,
    pool: CommitPool,
}

async fn serve_one(stream: Async<TcpStream>, pass: Pass, peer: SocketAddr, shared: Shared) {
    let Shared {
        psk,
        config,
        store,
        commands,
        pool,
    } = shared;
    let seed = match fresh_seed() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%peer, error = %e, "no session seed");
            return;
        }
    };
    let clock = Clock::new();
    let session = Session::server(&config, &psk, seed, clock.now());
    let agent = Agent::server(store, Box::new(LogObserver));
    let authenticated = pass.authenticated();
    let (_, result) = drive(
        stream,
        Box::new(Conn::new(session, agent, clock).gated(pass)),
        Some(commands),
        Some(pool),
    )
    .await;
    match result {
        Ok(()) => tracing::info!(%peer, "session closed"),
        // Keyless crowds must not flood the log (see `Ticket::is_authenticated`).
        Err(e) if !authenticated.load(std::sync::atomic::Ordering::Relaxed) => {
            tracing::debug!(%peer, error = %e, "handshake did not complete");
        }
        Err(e) => tracing::warn!(%peer, error = %e, "session failed"),
    }
}
