//! The datagram server on a `mio` loop: one thread, one UDP socket, and every connection on it
//! in one [`UdpServer`] (the shared datagram application, whose timer heap gives the loop its
//! timeout). Received files are committed on a small pool that wakes the loop through a
//! `mio::Waker`. The socket is read until it would block (edge-triggered), in batches with
//! sends in between, so a flood of input cannot starve the answers.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_app::ServeOptions;
use ferry_app::agent::Agent;
use ferry_app::host::RunError;
use ferry_app::pool::Notify;
use ferry_app::udp::socket::{UdpIo, size_buffers};
use ferry_app::udp::{TRANSMIT_BUF, UdpServer};
use ferry_disk::Store;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::dgram::TransportConfig;
use proto::{Config, Psk};

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);

/// Serve datagram connections on `sock` forever (see the module docs).
///
/// # Errors
/// When the poller or the socket fails for good.
pub fn serve_udp(
    sock: std::net::UdpSocket,
    psk: Psk,
    store: Arc<dyn Store>,
    opts: ServeOptions,
) -> io::Result<()> {
    if let Some(w) = size_buffers(&sock) {
        tracing::warn!("{w}");
    }
    sock.set_nonblocking(true)?;
    let mut sock = UdpSocket::from_std(sock);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut sock, SOCKET, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let mut io = UdpIo::new(&sock)?;
    io.log_features();
    let woken = Arc::new(AtomicBool::new(false));
    let notify: Notify = {
        let (waker, woken) = (waker.clone(), woken.clone());
        Arc::new(move || {
            woken.store(true, Ordering::Release);
            let _ = waker.wake();
        })
    };
    let mut server = UdpServer::serving(&io, &psk, store, &opts, notify)?;
    let mut events = Events::with_capacity(64);
    let mut tx = vec![0u8; TRANSMIT_BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, server.until_deadline()) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if woken.swap(false, Ordering::AcqRel) {
            server.wake_all();
        }
        // Edge-triggered: turn until the socket is seen empty.
        while server.turn(&mut io, &mut tx)? {}
    }
}

/// Run `agent`'s job over UDP against `remote` on this thread. A client is one connection on
/// one socket: it waits with the shared blocking loop of [`ferry_app::udp::socket`].
///
/// # Errors
/// The socket failed, or the session did. A handshake that got no answer (silence until
/// `config.handshake_timeout`, or the port unreachable) is [`RunError::Io`] that
/// [`ferry_app::udp::is_no_answer`] recognises; the agent is then not finished (retry with it).
pub fn run_udp_client(
    remote: std::net::SocketAddr,
    config: &Config,
    transport: &TransportConfig,
    psk: &Psk,
    agent: &mut Agent,
) -> Result<(), RunError> {
    ferry_app::udp::run_client_blocking(remote, config, transport, psk, agent)
}
