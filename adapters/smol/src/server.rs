//! The async server: a task per connection, a connection limit and a graceful shutdown.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_executor::Executor;
use async_io::{Async, Timer};
use ferry_disk::Store;
use ferry_disk::agent::{Agent, LogObserver};
use ferry_disk::host::{Clock, fresh_seed};
use futures_lite::FutureExt;
use proto::{Config, Psk, Session};

use crate::conn::{Command, Conn, drive};

/// Accept failures in a row (out of descriptors and the like) before the server gives up.
const MAX_ACCEPT_ERRORS: u32 = 100;
/// Pause after an accept failure.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Server limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Session configuration.
    pub config: Config,
}

impl Default for ServeOptions {
    /// 256 connections, the default [`Config`].
    fn default() -> Self {
        ServeOptions {
            max_connections: 256,
            config: Config::default(),
        }
    }
}

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
    /// # Errors
    /// Only when accepting fails persistently (the listener is broken); the sessions are
    /// closed first.
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
        // Every connection task holds a clone of `alive`: the channel closes when the last ends.
        let (alive, all_ended) = async_channel::bounded::<()>(1);
        let mut errors = 0;
        let result = loop {
            let stop = async {
                let _ = stop_rx.recv().await;
                None
            };
            let Some(accepted) = async { Some(listener.accept().await) }.or(stop).await else {
                break Ok(());
            };
            let (stream, peer) = match accepted {
                Ok(x) => {
                    errors = 0;
                    x
                }
                Err(e) => {
                    errors += 1;
                    tracing::warn!(error = %e, "accept failed");
                    if errors > MAX_ACCEPT_ERRORS {
                        break Err(e);
                    }
                    Timer::after(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            if alive.sender_count() > opts.max_connections {
                tracing::warn!(%peer, "refused: {} connections already", opts.max_connections);
                let _ = stream.get_ref().shutdown(Shutdown::Both);
                continue;
            }
            let task = serve_one(
                stream,
                peer,
                psk.clone(),
                config.clone(),
                store.clone(),
                stop_rx.clone(),
            );
            let alive = alive.clone();
            ex.spawn(async move {
                task.await;
                drop(alive);
            })
            .detach();
        };
        // Refuse new connections, close every session, wait for them to end.
        drop(listener);
        stop_tx.close();
        drop(alive);
        let _ = all_ended.recv().await;
        result
    }
}

async fn serve_one(
    stream: Async<TcpStream>,
    peer: SocketAddr,
    psk: Arc<Psk>,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    commands: Receiver<Command>,
) {
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
    let (_, result) = drive(stream, Conn::new(session, agent, clock), Some(commands)).await;
    match result {
        Ok(()) => tracing::info!(%peer, "session closed"),
        Err(e) => tracing::warn!(%peer, error = %e, "session failed"),
    }
}
