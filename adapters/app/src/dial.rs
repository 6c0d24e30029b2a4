//! Dialing a server: connect with back-off, and TCP keepalive on every connection.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::Duration;

/// Dial `host:port` with a per-attempt `timeout`, trying every address the name resolves to,
/// and `retries` more rounds with exponential back-off (0.5 s, 1 s, 2 s...).
///
/// # Errors
/// The last connection error.
pub fn connect(host: &str, port: u16, timeout: Duration, retries: u32) -> io::Result<TcpStream> {
    let mut delay = Duration::from_millis(500);
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for attempt in 0..=retries {
        if attempt > 0 {
            tracing::info!(attempt, ?delay, "retrying connection");
            thread::sleep(delay);
            delay *= 2;
        }
        let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                last = e;
                continue;
            }
        };
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    keepalive(&s);
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
    }
    Err(last)
}

/// TCP keepalive probes after this long without traffic...
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
/// ...this far apart...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// ...and the connection fails after this many unanswered ones: a peer whose host vanished
/// without a FIN is noticed within seconds, even while this side only waits to read.
pub const KEEPALIVE_COUNT: u32 = 3;
/// Data unacknowledged this long fails the connection (`TCP_USER_TIMEOUT`; it also bounds the
/// keepalive probing above): a peer that vanished while this side was sending is noticed in
/// 15 s rather than the kernel's retransmission limit of about 15 minutes.
pub const UNACKED_TIMEOUT: Duration = Duration::from_secs(15);

/// Turn TCP keepalive on for `socket` ([`KEEPALIVE_IDLE`], [`KEEPALIVE_INTERVAL`],
/// [`KEEPALIVE_COUNT`], [`UNACKED_TIMEOUT`]). Every connection gets it, on both sides.
/// Failures are logged and ignored (the session's own idle timeout still applies).
pub fn keepalive(socket: &impl std::os::fd::AsFd) {
    use rustix::net::sockopt;
    let set = sockopt::set_socket_keepalive(socket, true)
        .and_then(|()| sockopt::set_tcp_keepidle(socket, KEEPALIVE_IDLE))
        .and_then(|()| sockopt::set_tcp_keepintvl(socket, KEEPALIVE_INTERVAL))
        .and_then(|()| sockopt::set_tcp_keepcnt(socket, KEEPALIVE_COUNT))
        .and_then(|()| {
            let ms = u32::try_from(UNACKED_TIMEOUT.as_millis()).unwrap_or(u32::MAX);
            sockopt::set_tcp_user_timeout(socket, ms)
        });
    if let Err(e) = set {
        tracing::debug!(%e, "cannot turn TCP keepalive on");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn connections_have_tcp_keepalive() {
        use rustix::net::sockopt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = super::connect("127.0.0.1", port, std::time::Duration::from_secs(5), 0).unwrap();
        assert!(sockopt::socket_keepalive(&s).unwrap());
        assert_eq!(sockopt::tcp_keepidle(&s).unwrap(), super::KEEPALIVE_IDLE);
        assert_eq!(
            sockopt::tcp_keepintvl(&s).unwrap(),
            super::KEEPALIVE_INTERVAL
        );
        assert_eq!(sockopt::tcp_keepcnt(&s).unwrap(), super::KEEPALIVE_COUNT);
        assert_eq!(sockopt::tcp_user_timeout(&s).unwrap(), 15_000);
        let (accepted, _) = listener.accept().unwrap();
        assert!(!sockopt::socket_keepalive(&accepted).unwrap());
        super::keepalive(&accepted);
        assert!(sockopt::socket_keepalive(&accepted).unwrap());
    }
}
