//! Blocking entry points for the shared command line (`ferry_cli::adapter_main!`): each runs
//! the async implementation on `smol`.

use std::io;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;

use async_io::Async;
use ferry_app::agent::Agent;
use ferry_app::host::{Clock, RunError, fresh_seed};
use ferry_disk::Store;
use proto::{Config, Psk, Session};

use crate::conn::drive;
use crate::server::{ServeOptions, Server};
use ferry_app::driver::Conn;

/// Threads that run connection tasks in [`serve`]. The tasks mostly wait: file I/O, crypto and
/// compression run on the `blocking` pool.
const EXECUTOR_THREADS: usize = 2;

/// Run one client session over a connected `stream` with `agent` (its job decides what
/// happens), on `smol::block_on`.
///
/// # Errors
/// The session's fatal error or the socket's; also when no session seed can be drawn.
pub fn run_client(
    stream: TcpStream,
    config: &Config,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    run_one(stream, config, psk, agent, false)
}

/// Run one server session over an accepted `stream` with `agent` (a short-code send: the
/// sending side listens and serves exactly one receiver), on `smol::block_on`.
///
/// # Errors
/// As [`run_client`].
pub fn run_server(
    stream: TcpStream,
    config: &Config,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    run_one(stream, config, psk, agent, true)
}

fn run_one(
    stream: TcpStream,
    config: &Config,
    psk: &Psk,
    agent: &mut Agent,
    server: bool,
) -> Result<(), RunError> {
    let stream = Async::new(stream).map_err(RunError::Io)?;
    let clock = Clock::new();
    let seed = fresh_seed().map_err(RunError::Io)?;
    let session = if server {
        Session::server(config, psk, seed, clock.now())
    } else {
        Session::client(config, psk, seed, clock.now())
    };
    // The driver owns its agent (it moves to the blocking pool and back every round).
    let owned = Agent::take(agent);
    let (owned, result) = smol::block_on(drive(
        stream,
        Box::new(Conn::new(session, owned, clock)),
        None,
        None,
    ));
    *agent = owned;
    result
}

/// Serve forever: accept on `listener`, one task per connection on a `smol::Executor` run by
/// this thread and one more, admitted by [`ferry_app::admission`] with
/// `opts.max_connections`; every session stores into and serves from `store`.
///
/// # Errors
/// When a thread cannot start (a failed accept only means a short pause).
pub fn serve(
    listener: TcpListener,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    let server = Server::new(Async::new(listener)?, store, &psk, opts);
    let ex = smol::Executor::new();
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    thread::scope(|scope| {
        for i in 1..EXECUTOR_THREADS {
            let (ex, stopped) = (&ex, stopped.clone());
            thread::Builder::new()
                .name(format!("ferry-smol-{i}"))
                .spawn_scoped(scope, move || smol::block_on(ex.run(stopped.recv())))?;
        }
        let result = smol::block_on(ex.run(server.run_on(&ex)));
        drop(stop);
        result
    })
}

/// Serve daytime (RFC 867) until an error: every TCP connection gets the date line and is
/// closed, every UDP datagram gets the line back. Blocking, one thread per protocol: the one
/// daytime server of every adapter ([`ferry_app::daytime::serve`]).
///
/// # Errors
/// When the listener or the socket fails for good.
pub fn daytime_serve(tcp: TcpListener, udp: UdpSocket) -> io::Result<()> {
    ferry_app::daytime::serve(tcp, udp)
}
