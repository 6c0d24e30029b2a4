//! Daytime (RFC 867): the client every adapter uses, and the one server every adapter runs.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::thread;
use std::time::{Duration, Instant as WallClock};

use crate::clock::unix_now;

/// Ask a daytime (RFC 867) server for the time, over TCP or UDP, and return its line.
///
/// `timeout` is a deadline for the whole answer (connecting, and every read until the server
/// closes), not a bound on each read: a server trickling bytes cannot hold the client longer.
///
/// # Errors
/// No whole answer within `timeout` ([`io::ErrorKind::TimedOut`]), or an answer that is not one
/// line of text.
pub fn query(host: &str, port: u16, udp: bool, timeout: Duration) -> io::Result<String> {
    use std::io::Read;
    let deadline = WallClock::now() + timeout;
    let left = || {
        let left = deadline.saturating_duration_since(WallClock::now());
        if left.is_zero() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no whole answer within {timeout:?}"),
            ))
        } else {
            Ok(left)
        }
    };
    // A read timeout shows as `WouldBlock` (EAGAIN) on Unix: say what it means.
    let timed_out = |e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no whole answer within {timeout:?}"),
        ),
        _ => e,
    };
    let mut buf = vec![0u8; proto::daytime::MAX_ANSWER + 1];
    let n = if udp {
        let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"))
        })?;
        let local: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().map_err(io::Error::other)?
        } else {
            "0.0.0.0:0".parse().map_err(io::Error::other)?
        };
        let sock = UdpSocket::bind(local)?;
        sock.set_read_timeout(Some(left()?))?;
        sock.connect(addr)?;
        // RFC 867: any datagram asks for the time.
        sock.send(b"\n")?;
        sock.recv(&mut buf).map_err(timed_out)?
    } else {
        let mut stream = crate::dial::connect(host, port, left()?, 0)?;
        let mut n = 0;
        loop {
            stream.set_read_timeout(Some(left()?))?;
            let k = stream.read(&mut buf[n..]).map_err(timed_out)?;
            if k == 0 || n + k == buf.len() {
                n += k;
                break;
            }
            n += k;
        }
        n
    };
    proto::daytime::parse_answer(&buf[..n])
        .map(str::to_owned)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Serve daytime (RFC 867) until an error, blocking: every TCP connection gets the date line
/// and is closed; every UDP datagram gets the line back. One thread per protocol (the sockets
/// are made blocking). Every adapter's `daytime_serve` is this.
///
/// # Errors
/// When the UDP socket fails for good (noticed at the next TCP connection), or a socket cannot
/// be made blocking.
pub fn serve(tcp: TcpListener, udp: UdpSocket) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    udp.set_nonblocking(false)?;
    let udp_loop = thread::Builder::new()
        .name("ferry-daytime-udp".into())
        .spawn(move || -> io::Result<()> {
            let mut buf = [0u8; 512];
            loop {
                let (_, from) = udp.recv_from(&mut buf)?;
                let line = proto::daytime::line(unix_now());
                let _ = udp.send_to(line.as_bytes(), from);
            }
        })?;
    for stream in tcp.incoming() {
        match stream {
            Ok(mut s) => {
                let line = proto::daytime::line(unix_now());
                let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(line.as_bytes());
                let _ = s.shutdown(Shutdown::Both);
            }
            Err(e) => tracing::warn!(error = %e, "daytime accept failed"),
        }
        if udp_loop.is_finished() {
            break;
        }
    }
    match udp_loop.join() {
        Ok(r) => r,
        Err(_) => Err(io::Error::other("the daytime UDP thread panicked")),
    }
}
