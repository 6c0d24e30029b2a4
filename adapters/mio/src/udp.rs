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
use ferry_app::agent::LogObserver;
use ferry_app::host::RunError;
use ferry_app::host::{Clock, fresh_seed};
use ferry_app::pool::{CommitPool, Notify};
use ferry_app::udp::socket::{READ_BATCH, UdpIo, size_buffers};
use ferry_app::udp::{TRANSMIT_BUF, UdpServer};
use ferry_disk::Store;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::dgram::{Endpoint, TransportConfig};
use proto::{Config, Psk};

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);
/// Threads that make received files durable for the loop.
const COMMIT_THREADS: usize = 4;

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
    let endpoint = Endpoint::new(
        &opts.config,
        &io.transport(&opts.transport),
        &psk,
        fresh_seed()?,
        opts.max_connections,
    );
    let mut server = UdpServer::new(
        endpoint,
        store,
        Box::new(|_| Box::new(LogObserver)),
        Some((CommitPool::new(COMMIT_THREADS)?, notify)),
        Clock::new(),
    );
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
        loop {
            let read = read_batch(&mut io, &mut server)?;
            server.step();
            while let Some(t) = server.poll_transmit(&mut tx) {
                // A full send queue drops it as the network would (recovery resends), and
                // one peer's unreachable address never stops the server.
                if let Err(e) = io.send(&t, &tx) {
                    tracing::debug!(error = %e, peer = %t.destination, "send failed");
                }
            }
            if read < READ_BATCH {
                break;
            }
        }
    }
}

/// Read about [`READ_BATCH`] datagrams (until the socket would block).
fn read_batch(io: &mut UdpIo<'_>, server: &mut UdpServer) -> io::Result<usize> {
    loop {
        match io.recv_up_to(READ_BATCH, |from, d| server.handle_datagram(from, d)) {
            Ok(n) => return Ok(n),
            // ICMP errors about some client's address, and signals: not the socket's end.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(e),
        }
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
