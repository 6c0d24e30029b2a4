//! ferry over UDP on `async-io`: the shared datagram application ([`UdpServer`], [`UdpConn`])
//! driven by futures. A loop reads every datagram the socket has (without blocking), lets the
//! connections act, sends, then awaits the socket's readability, the next deadline
//! (`async_io::Timer`) or a wake-up from the commit pool, whichever comes first.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use ferry_app::ServeOptions;
use ferry_app::agent::Agent;
use ferry_app::host::{Clock, RunError, fresh_seed};
use ferry_app::pool::Notify;
use ferry_app::udp::socket::{READ_BATCH, Refusals, UdpIo, size_buffers};
use ferry_app::udp::{TRANSMIT_BUF, UdpConn, UdpServer};
use ferry_disk::Store;
use futures_lite::future;
use proto::dgram::{Connection, TransportConfig};
use proto::{Config, Psk};

/// Longest wait when no timer is armed.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Serve datagram connections on `sock` forever, on `smol::block_on`.
///
/// # Errors
/// When the socket fails for good, or no OS randomness or pool threads.
pub fn serve_udp(
    sock: UdpSocket,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    if let Some(w) = size_buffers(&sock) {
        tracing::warn!("{w}");
    }
    let sock = Async::new(sock)?;
    smol::block_on(serve_udp_async(&sock, psk, store, opts))
}

/// [`serve_udp`] as a future on an `Async` socket.
///
/// # Errors
/// As [`serve_udp`].
pub async fn serve_udp_async(
    sock: &Async<UdpSocket>,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    let (wake_tx, wake_rx) = async_channel::bounded::<()>(1);
    let notify: Notify = Arc::new(move || {
        let _ = wake_tx.try_send(());
    });
    let mut io = UdpIo::new(sock.get_ref())?;
    io.log_features();
    let mut server = UdpServer::serving(&io, &psk, store, &opts, notify)?;
    let mut tx = vec![0u8; TRANSMIT_BUF];
    let mut woken = false;
    loop {
        if std::mem::take(&mut woken) || wake_rx.try_recv().is_ok() {
            server.wake_all();
        }
        if server.turn(&mut io, &mut tx)? {
            continue;
        }
        let wait = server.until_deadline().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
        woken = wait_any(sock, wait, Some(&wake_rx)).await;
    }
}

/// Run `agent`'s job over UDP against `remote`, on `smol::block_on`.
///
/// # Errors
/// The socket failed, or the session did (a silent server: the handshake timeout).
pub fn run_udp_client(
    remote: SocketAddr,
    config: &Config,
    transport: &TransportConfig,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    let sock = ferry_app::udp::client_socket(remote).map_err(RunError::Io)?;
    let sock = Async::new(sock).map_err(RunError::Io)?;
    let io = UdpIo::new(sock.get_ref()).map_err(RunError::Io)?;
    let clock = Clock::new();
    let seed = fresh_seed().map_err(RunError::Io)?;
    let transport = io.transport(transport);
    let conn = Connection::client(config, &transport, psk, seed, clock.now(), remote);
    let owned = Agent::take(agent);
    let conn = UdpConn::new(conn, owned, clock);
    let (owned, result) = smol::block_on(drive_client(&sock, io, conn));
    *agent = owned;
    result
}

async fn drive_client(
    sock: &Async<UdpSocket>,
    mut io: UdpIo<'_>,
    mut conn: UdpConn,
) -> (Agent, Result<(), RunError>) {
    io.log_features();
    let mut tx = vec![0u8; TRANSMIT_BUF];
    let mut refused = Refusals::default();
    let failed = loop {
        let read = match io.recv_up_to(READ_BATCH, |from, d| conn.handle_datagram(from, d)) {
            Ok(n) => n,
            // Nothing listens there: a short grace (a server may be starting), then the end.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                match refused.note(&mut conn, e) {
                    Some(e) => break Some(e),
                    None => 0,
                }
            }
            Err(e) => break Some(e),
        };
        conn.step();
        let mut error = None;
        while let Some(t) = conn.poll_transmit(&mut tx) {
            match io.send(&t, &tx) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    error = refused.note(&mut conn, e);
                    if error.is_some() {
                        break;
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_some() {
            break error;
        }
        if conn.is_over() {
            break None;
        }
        if read >= READ_BATCH {
            continue;
        }
        let wait = conn.until_deadline().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
        wait_any(sock, wait, None).await;
    };
    conn.finish(failed)
}

/// Until the socket is readable, `wait` passed, or the pool woke us; true for the last.
async fn wait_any(
    sock: &Async<UdpSocket>,
    wait: Duration,
    woken: Option<&async_channel::Receiver<()>>,
) -> bool {
    let readable = async {
        let _ = sock.readable().await;
        false
    };
    let timer = async {
        Timer::after(wait).await;
        false
    };
    match woken {
        Some(rx) => {
            let pool = async { rx.recv().await.is_ok() };
            future::or(readable, future::or(timer, pool)).await
        }
        None => future::or(readable, timer).await,
    }
}
