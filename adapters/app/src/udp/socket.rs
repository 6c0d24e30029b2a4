//! The socket side of the datagram loops. [`UdpIo`] wraps a UDP socket with `quinn-udp`'s fast
//! paths, shared by every adapter: GSO sends (one `sendmsg` for a batch of equal-size
//! datagrams), `recvmmsg` and GRO receives (a received buffer split into its datagrams by
//! stride), no IP fragmentation (`IP_PMTUDISC_PROBE`, DF), and a clean fallback to one datagram
//! per call where the kernel lacks a feature. The socket is non-blocking from then on.
//!
//! [`run_client`] and [`serve`] are the blocking loops of the std adapter: wait for the socket
//! or the next deadline with `poll`, read what the socket holds, step, send. They are also the
//! reference the other adapters' loops follow.

use std::cell::Cell;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proto::dgram::{Transmit, TransportConfig};
use quinn_udp::{BATCH_SIZE, RecvMeta, UdpSockRef, UdpSocketState};

use super::{MAX_BATCH, TRANSMIT_BUF, UdpConn, UdpServer};
use crate::agent::Agent;
use crate::host::RunError;

/// Socket buffer size asked for: enough for the bandwidth-delay product of a fast long path
/// (1 Gbit/s × 64 ms); the kernel may cap it (`net.core.rmem_max`), which [`size_buffers`]
/// reports.
pub const SOCKET_BUF: usize = 8 << 20;
/// Datagrams read per wake before the loop steps and sends (fairness to the send side).
pub const READ_BATCH: usize = 256;
/// Longest wait when no timer is armed (pool work is polled this often too).
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// Bytes of one receive slot: a GRO buffer of up to 64 KiB (the kernel's limit of a
/// coalesced UDP buffer), or of every segment the kernel may coalesce at ferry's largest MTU.
const SLOT: usize = 64 * 1024;

/// Ask for [`SOCKET_BUF`]-byte send and receive buffers; returns a warning when the kernel
/// granted less (the path's bandwidth-delay product may then be limited by packet drops at
/// the socket, not by the network). A privileged process (`CAP_NET_ADMIN`) gets them beyond
/// `net.core.rmem_max`/`wmem_max` (`SO_RCVBUFFORCE`), which a network namespace cannot raise:
/// a receiver that falls behind for a few tens of milliseconds at 500 Mbit/s otherwise drops
/// datagrams at its socket (UDP `RcvbufErrors`).
pub fn size_buffers(sock: &impl AsFd) -> Option<String> {
    use rustix::net::sockopt;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let forced = (
        sockopt::set_socket_recv_buffer_size_force(sock, SOCKET_BUF).is_ok(),
        sockopt::set_socket_send_buffer_size_force(sock, SOCKET_BUF).is_ok(),
    );
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let forced = (false, false);
    if !forced.0 {
        let _ = sockopt::set_socket_recv_buffer_size(sock, SOCKET_BUF);
    }
    if !forced.1 {
        let _ = sockopt::set_socket_send_buffer_size(sock, SOCKET_BUF);
    }
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

/// A UDP socket with the kernel's batch paths (see the module docs): what every adapter's
/// loop reads and sends through. Borrows the socket (which the adapter keeps for waiting).
pub struct UdpIo<'s> {
    sock: BorrowedFd<'s>,
    state: UdpSocketState,
    /// Receive slots, [`SLOT`] bytes each, one per message of a `recvmmsg`.
    rx: Vec<u8>,
    meta: [RecvMeta; BATCH_SIZE],
    /// Most datagrams one `sendmsg` carries (tests lower it to 1: a kernel without GSO).
    gso_cap: usize,
    /// Sends dropped for a full send queue (or too big for the path).
    dropped: Cell<u64>,
}

impl<'s> UdpIo<'s> {
    /// Set `sock` up for the fast paths (non-blocking from now on).
    ///
    /// # Errors
    /// The socket refused a required option.
    pub fn new(sock: &'s impl AsFd) -> io::Result<UdpIo<'s>> {
        let sock = sock.as_fd();
        let state = UdpSocketState::new(UdpSockRef::from(&sock))?;
        Ok(UdpIo {
            sock,
            state,
            rx: vec![0; SLOT * BATCH_SIZE],
            meta: [RecvMeta::default(); BATCH_SIZE],
            gso_cap: MAX_BATCH,
            dropped: Cell::new(0),
        })
    }

    /// Datagrams one send may carry now (1: no GSO, or the kernel refused it once).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, self.gso_cap)
    }

    /// Datagrams the kernel may coalesce into one received buffer (1: no GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// The kernel may fragment what is sent (no DF / `IP_PMTUDISC_PROBE` on this platform).
    pub fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    /// Behave as on a kernel without GSO (one datagram per send): a test hook.
    #[doc(hidden)]
    pub fn disable_gso(&mut self) {
        self.gso_cap = 1;
    }

    /// `transport` with its batch (`max_batch`) raised to what one GSO send carries here.
    pub fn transport(&self, transport: &TransportConfig) -> TransportConfig {
        let mut t = transport.clone();
        t.max_batch = t.max_batch.max(self.max_gso_segments()).min(MAX_BATCH);
        t
    }

    /// Send one transmit (`buf[..t.size]`): a GSO batch in as few `sendmsg` as the kernel
    /// allows, else one datagram at a time. A full send queue drops what is left, as the
    /// network would (recovery resends); so does a datagram too big for the path (an MTU
    /// probe, with `IP_PMTUDISC_PROBE`).
    ///
    /// # Errors
    /// Any other error of the socket (an ICMP error of an earlier datagram, for one).
    pub fn send(&self, t: &Transmit, buf: &[u8]) -> io::Result<()> {
        let data = &buf[..t.size];
        let seg = match t.segment_size {
            Some(s) if s > 0 && s < data.len() => s,
            _ => return self.send_one(t.destination, data, None),
        };
        let mut rest = data;
        while !rest.is_empty() {
            let per = self.max_gso_segments();
            let (now, later) = rest.split_at(rest.len().min(seg * per));
            let segment_size = (now.len() > seg).then_some(seg);
            match self.send_one(t.destination, now, segment_size) {
                Ok(()) => rest = later,
                // GSO failed and quinn-udp turned it off: the same datagrams one by one.
                Err(_) if segment_size.is_some() && self.max_gso_segments() < per => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn send_one(
        &self,
        to: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> io::Result<()> {
        let t = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        match self.state.try_send(UdpSockRef::from(&self.sock), &t) {
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || (quinn_udp::is_msg_size_err(&e) && segment_size.is_none()) =>
            {
                self.dropped.set(self.dropped.get() + 1);
                Ok(())
            }
            r => r,
        }
    }

    /// One `recvmmsg` (or `recvmsg`): hand each datagram received to `on` (a GRO buffer split
    /// at its stride). Returns how many; `Err(WouldBlock)` when the socket holds none.
    ///
    /// # Errors
    /// `WouldBlock`, or the socket's error (an ICMP error of an earlier datagram, for one).
    pub fn recv_batch(&mut self, mut on: impl FnMut(SocketAddr, &mut [u8])) -> io::Result<usize> {
        let mut slots = self.rx.chunks_mut(SLOT);
        let mut bufs: [IoSliceMut<'_>; BATCH_SIZE] =
            std::array::from_fn(|_| IoSliceMut::new(slots.next().expect("BATCH_SIZE slots")));
        let msgs = self
            .state
            .recv(UdpSockRef::from(&self.sock), &mut bufs, &mut self.meta)?;
        let mut n = 0;
        for (meta, buf) in self.meta.iter().zip(bufs.iter_mut()).take(msgs) {
            let stride = if meta.stride == 0 {
                meta.len
            } else {
                meta.stride
            };
            for d in buf[..meta.len].chunks_mut(stride.max(1)) {
                on(meta.addr, d);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Read until the socket would block or at least `limit` datagrams came (then more may
    /// wait): hand each to `on`. Returns how many.
    ///
    /// # Errors
    /// The socket's error (an ICMP error of an earlier datagram, for one).
    pub fn recv_up_to(
        &mut self,
        limit: usize,
        mut on: impl FnMut(SocketAddr, &mut [u8]),
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < limit {
            match self.recv_batch(&mut on) {
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Wait until the socket is readable or `wait` passed (`poll`). Returns whether readable.
    ///
    /// # Errors
    /// `poll` failed (not for a signal: that returns `false`).
    pub fn wait_readable(&self, wait: Duration) -> io::Result<bool> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut fds = [PollFd::from_borrowed_fd(self.sock, PollFlags::IN)];
        let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        match poll(&mut fds, Some(&timeout)) {
            Ok(n) => Ok(n > 0),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends dropped so far for a full send queue (or a datagram too big for the path).
    pub fn sends_dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Log what this kernel offers (once per socket, at debug).
    pub fn log_features(&self) {
        tracing::debug!(
            gso_segments = self.max_gso_segments(),
            gro_segments = self.gro_segments(),
            may_fragment = self.may_fragment(),
            "UDP socket fast paths"
        );
    }
}

/// How long a client keeps trying while every answer is "port unreachable" (a server may be
/// starting) before it gives up with [`io::ErrorKind::ConnectionRefused`].
pub const REFUSED_FOR: Duration = Duration::from_secs(1);

/// ICMP port-unreachable reports seen by a client (every adapter's client loop keeps one).
#[derive(Default)]
pub struct Refusals {
    first: Option<std::time::Instant>,
}

impl Refusals {
    /// A refusal arrived: the error to end with, once it has lasted [`REFUSED_FOR`] before
    /// the peer ever answered (or at once, when it had answered: the server went away).
    pub fn note(&mut self, conn: &mut UdpConn, e: io::Error) -> Option<io::Error> {
        if conn.answered() {
            return Some(e);
        }
        conn.port_unreachable();
        let first = *self.first.get_or_insert_with(std::time::Instant::now);
        (first.elapsed() >= REFUSED_FOR).then_some(e)
    }
}

/// Drive a client connection on `io` (its socket connected to the server) until it is over.
/// The connection's transport should come from [`UdpIo::transport`] (GSO batches).
pub fn run_client(mut io: UdpIo<'_>, mut conn: UdpConn) -> (Agent, Result<(), RunError>) {
    io.log_features();
    let mut tx = vec![0u8; TRANSMIT_BUF];
    let mut refused = Refusals::default();
    let failed = loop {
        conn.step();
        let mut send_error = None;
        while let Some(t) = conn.poll_transmit(&mut tx) {
            if let Err(e) = io.send(&t, &tx) {
                send_error = Some(e);
                break;
            }
        }
        match send_error {
            // Nothing listens there (ICMP from an earlier datagram).
            Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                if let Some(e) = refused.note(&mut conn, e) {
                    break Some(e);
                }
            }
            Some(e) => break Some(e),
            None => {}
        }
        if conn.is_over() {
            tracing::debug!(stats = ?conn.connection().stats(), "UDP connection over");
            if std::env::var_os("FERRY_UDP_STATS").is_some() {
                eprintln!(
                    "{:?}, sends dropped: {}",
                    conn.connection().stats(),
                    io.sends_dropped()
                );
            }
            break None;
        }
        let read = match io.recv_up_to(READ_BATCH, |from, d| conn.handle_datagram(from, d)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                if let Some(e) = refused.note(&mut conn, e) {
                    break Some(e);
                }
                0
            }
            Err(e) => break Some(e),
        };
        if read > 0 {
            continue;
        }
        let wait = conn.until_deadline().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
        if let Err(e) = io.wait_readable(wait) {
            break Some(e);
        }
    };
    conn.finish(failed)
}

/// Serve datagram connections on `io` until its socket fails (the endpoint's transport should
/// come from [`UdpIo::transport`]). `woken` is set by the pool's notify (work finished off the
/// loop): every connection then gets a turn.
///
/// # Errors
/// The socket failed for good.
pub fn serve(mut io: UdpIo<'_>, mut server: UdpServer, woken: Arc<AtomicBool>) -> io::Result<()> {
    io.log_features();
    let mut tx = vec![0u8; TRANSMIT_BUF];
    loop {
        if woken.swap(false, Ordering::AcqRel) {
            server.wake_all();
        }
        if server.turn(&mut io, &mut tx)? || woken.load(Ordering::Acquire) {
            continue;
        }
        let wait = server.until_deadline().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
        io.wait_readable(wait)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_privileged_process_gets_buffers_beyond_the_sysctl_cap() {
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        let Some(cap) = cap.filter(|&c| c < SOCKET_BUF) else {
            eprintln!("skipped: net.core.rmem_max is unknown or not below {SOCKET_BUF}");
            return;
        };
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: not root (no CAP_NET_ADMIN for SO_RCVBUFFORCE)");
            return;
        }
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(size_buffers(&sock), None);
        // Linux reports twice what it grants.
        let recv = rustix::net::sockopt::socket_recv_buffer_size(&sock).unwrap();
        assert!(recv >= 2 * SOCKET_BUF, "granted {recv} (rmem_max {cap})");
    }
}
