//! The datagram server on a `mio` loop: one thread, one UDP socket, and every connection on it
//! in one [`UdpServer`] (the shared datagram application, whose timer heap gives the loop its
//! timeout). Received files are committed on a small pool that wakes the loop through a
//! `mio::Waker`. The socket is read until it would block (edge-triggered), in batches with
//! sends in between, so a flood of input cannot starve the answers.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_app::ServeOptions;
use ferry_app::agent::LogObserver;
use ferry_app::host::{Clock, fresh_seed};
use ferry_app::pool::{CommitPool, Notify};
use ferry_app::udp::socket::size_buffers;
use ferry_app::udp::{RECV_BUF, TRANSMIT_BUF, UdpServer};
use ferry_disk::Store;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use proto::Psk;
use proto::dgram::{Endpoint, Transmit};

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);
/// Datagrams read before the loop steps and sends.
const READ_BATCH: usize = 256;
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
        &opts.transport,
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
    let mut rx = vec![0u8; RECV_BUF];
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
            let read = read_batch(&sock, &mut server, &mut rx)?;
            server.step();
            while let Some(t) = server.poll_transmit(&mut tx) {
                send(&sock, &tx, &t);
            }
            if read < READ_BATCH {
                break;
            }
        }
    }
}

/// Read up to [`READ_BATCH`] datagrams (until the socket would block).
fn read_batch(sock: &UdpSocket, server: &mut UdpServer, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < READ_BATCH {
        match sock.recv_from(buf) {
            Ok((len, from)) => {
                server.handle_datagram(from, &mut buf[..len]);
                n += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
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
    Ok(n)
}

/// Send one transmit; a full send queue drops it as the network would (recovery resends),
/// and one peer's unreachable address never stops the server.
fn send(sock: &UdpSocket, buf: &[u8], t: &Transmit) {
    let seg = t.segment_size.unwrap_or(t.size).max(1);
    for d in buf[..t.size].chunks(seg) {
        if let Err(e) = sock.send_to(d, t.destination) {
            if e.kind() != io::ErrorKind::WouldBlock {
                tracing::debug!(error = %e, peer = %t.destination, "send failed");
            }
            return;
        }
    }
}
