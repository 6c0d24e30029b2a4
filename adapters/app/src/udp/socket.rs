//! Blocking `std::net::UdpSocket` loops for [`UdpConn`] and [`UdpServer`]: wait for a datagram
//! or the next deadline with a read timeout, read the whole batch without blocking, step, send.
//! The std adapter uses them; they are also the reference the other adapters' loops follow.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proto::dgram::Transmit;

use super::{RECV_BUF, TRANSMIT_BUF, UdpConn, UdpServer};
use crate::agent::Agent;
use crate::host::RunError;

/// Socket buffer size asked for: enough for the bandwidth-delay product of a fast long path
/// (1 Gbit/s × 64 ms); the kernel may cap it (`net.core.rmem_max`), which [`size_buffers`]
/// reports.
pub const SOCKET_BUF: usize = 8 << 20;
/// Datagrams read per wake before the loop steps and sends (fairness to the send side).
const READ_BATCH: usize = 256;
/// Longest wait when no timer is armed (pool work is polled this often too).
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// Shortest wait: a read timeout of zero would mean "block forever".
const MIN_WAIT: Duration = Duration::from_micros(100);

/// Ask for [`SOCKET_BUF`]-byte send and receive buffers; returns a warning when the kernel
/// granted less (the path's bandwidth-delay product may then be limited by packet drops at
/// the socket, not by the network).
pub fn size_buffers(sock: &UdpSocket) -> Option<String> {
    use rustix::net::sockopt;
    let _ = sockopt::set_socket_recv_buffer_size(sock, SOCKET_BUF);
    let _ = sockopt::set_socket_send_buffer_size(sock, SOCKET_BUF);
    let recv = sockopt::socket_recv_buffer_size(sock).unwrap_or(0);
    let send = sockopt::socket_send_buffer_size(sock).unwrap_or(0);
    // Linux reports twice what it grants (bookkeeping overhead).
    let granted = recv.min(send) / 2;
    (granted < SOCKET_BUF / 2).then(|| {
        format!(
            "UDP socket buffers capped at {} KiB (asked {} KiB); raise net.core.rmem_max and \
             net.core.wmem_max for fast long paths",
            granted / 1024,
            SOCKET_BUF / 1024
        )
    })
}

/// Send one transmit: a GSO batch goes out one datagram at a time.
pub fn send(sock: &UdpSocket, connected: bool, buf: &[u8], t: &Transmit) -> io::Result<()> {
    let seg = t.segment_size.unwrap_or(t.size).max(1);
    for d in buf[..t.size].chunks(seg) {
        let r = if connected {
            sock.send(d)
        } else {
            sock.send_to(d, t.destination)
        };
        match r {
            Ok(_) => {}
            // A full send queue drops the datagram like the network would: recovery resends.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Wait up to `wait` for datagrams and hand each to `on` (the first read blocks, the rest of
/// the batch does not). Returns how many arrived.
fn read_batch(
    sock: &UdpSocket,
    wait: Duration,
    buf: &mut [u8],
    mut on: impl FnMut(SocketAddr, &mut [u8]),
) -> io::Result<usize> {
    sock.set_read_timeout(Some(wait.max(MIN_WAIT)))?;
    let mut n = 0;
    match sock.recv_from(buf) {
        Ok((len, from)) => {
            on(from, &mut buf[..len]);
            n += 1;
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Ok(0);
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
        Err(e) => return Err(e),
    }
    sock.set_nonblocking(true)?;
    let drained = loop {
        if n >= READ_BATCH {
            break Ok(());
        }
        match sock.recv_from(buf) {
            Ok((len, from)) => {
                on(from, &mut buf[..len]);
                n += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    sock.set_nonblocking(false)?;
    drained.map(|()| n)
}

/// Drive a client connection on `sock` (connected to the server) until it is over.
pub fn run_client(sock: &UdpSocket, mut conn: UdpConn) -> (Agent, Result<(), RunError>) {
    if let Some(w) = size_buffers(sock) {
        tracing::warn!("{w}");
    }
    let mut rx = vec![0u8; RECV_BUF];
    let mut tx = vec![0u8; TRANSMIT_BUF];
    let failed = loop {
        conn.step();
        let mut sent = false;
        let mut send_error = None;
        while let Some(t) = conn.poll_transmit(&mut tx) {
            if let Err(e) = send(sock, true, &tx, &t) {
                send_error = Some(e);
                break;
            }
            sent = true;
        }
        match send_error {
            // Nothing listens there (ICMP from an earlier datagram): keep trying until the
            // handshake timeout, as a server may be starting.
            Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Some(e) => break Some(e),
            None => {}
        }
        if conn.is_over() {
            tracing::debug!(stats = ?conn.connection().stats(), "UDP connection over");
            if std::env::var_os("FERRY_UDP_STATS").is_some() {
                eprintln!("{:?}", conn.connection().stats());
            }
            break None;
        }
        let wait = conn.until_deadline().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
        let wait = if sent { wait.min(MIN_WAIT) } else { wait };
        match read_batch(sock, wait, &mut rx, |from, d| conn.handle_datagram(from, d)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                // ICMP port unreachable: nothing listens there. Keep trying until the
                // handshake timeout says so (a server may be starting), unless connected.
                if conn.connection().session().is_connected() {
                    break Some(e);
                }
            }
            Err(e) => break Some(e),
        }
    };
    conn.finish(failed)
}

/// Serve datagram connections on `sock` until it fails. `woken` is set by the pool's notify
/// (work finished off the loop): every connection then gets a turn.
pub fn serve(sock: &UdpSocket, mut server: UdpServer, woken: Arc<AtomicBool>) -> io::Result<()> {
    if let Some(w) = size_buffers(sock) {
        tracing::warn!("{w}");
    }
    let mut rx = vec![0u8; RECV_BUF];
    let mut tx = vec![0u8; TRANSMIT_BUF];
    loop {
        if woken.swap(false, Ordering::AcqRel) {
            server.wake_all();
        }
        server.step();
        let mut sent = false;
        while let Some(t) = server.poll_transmit(&mut tx) {
            match send(sock, false, &tx, &t) {
                Ok(()) => sent = true,
                // One peer's unreachable address must not stop the server.
                Err(e) => tracing::debug!(error = %e, peer = %t.destination, "send failed"),
            }
        }
        let mut wait = server.until_deadline().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
        if sent || woken.load(Ordering::Acquire) {
            wait = wait.min(MIN_WAIT);
        }
        match read_batch(sock, wait, &mut rx, |from, d| {
            server.handle_datagram(from, d)
        }) {
            Ok(_) => {}
            // ICMP errors from some client's address surface here on Linux: not ours to end on.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
