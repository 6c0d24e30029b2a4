//! What every adapter needs from the host besides sockets: a clock in the core's time units
//! and fresh session seeds.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant as WallClock};

use proto::{Instant, SessionError};

/// Converts wall-clock time into the core's [`Instant`] (microseconds since this clock was
/// made). One clock per process or per session; never mix origins within one session.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: WallClock,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: WallClock::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        let micros = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(micros)
    }

    /// How long from now until `at` (zero if it has passed).
    pub fn until(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// 32 fresh random bytes from the OS for a new session (never reuse one: the session's
/// ephemeral key comes from it).
///
/// # Errors
/// The OS has no randomness to give (then no session can be made safely).
pub fn fresh_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(format!("no OS randomness: {e}")))?;
    Ok(seed)
}

/// Why a connection ended badly.
#[derive(Debug)]
pub enum RunError {
    /// The protocol failed (authentication, truncation, timeout...).
    Session(SessionError),
    /// The socket failed.
    Io(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Session(e) => e.fmt(f),
            RunError::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// The server refused the connection as busy ([`proto::BUSY_REFUSAL`]): nothing was
    /// started, so the caller may retry later with the same agent (adapters do not
    /// [`finish`](crate::agent::Agent::finish) an agent for it).
    pub fn is_busy(&self) -> bool {
        matches!(self, RunError::Session(e) if is_busy(Some(e)))
    }
}

/// Whether `error` is the server's busy refusal (see [`RunError::is_busy`]).
pub fn is_busy(error: Option<&SessionError>) -> bool {
    matches!(
        error,
        Some(SessionError::Handshake(proto::HandshakeError::Busy))
    )
}

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
/// [`KEEPALIVE_COUNT`], [`UNACKED_TIMEOUT`]). Every connection gets it, on both sides. Failures are logged and
/// ignored (the session's own idle timeout still applies).
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

/// Seconds since the Unix epoch, now (negative before 1970).
pub fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Ask a daytime (RFC 867) server for the time, over TCP or UDP, and return its line.
///
/// `timeout` is a deadline for the whole answer (connecting, and every read until the server
/// closes), not a bound on each read: a server trickling bytes cannot hold the client longer.
///
/// # Errors
/// No whole answer within `timeout` ([`io::ErrorKind::TimedOut`]), or an answer that is not one
/// line of text.
pub fn daytime_query(host: &str, port: u16, udp: bool, timeout: Duration) -> io::Result<String> {
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
        let sock = std::net::UdpSocket::bind(local)?;
        sock.set_read_timeout(Some(left()?))?;
        sock.connect(addr)?;
        // RFC 867: any datagram asks for the time.
        sock.send(b"\n")?;
        sock.recv(&mut buf).map_err(timed_out)?
    } else {
        let mut stream = connect(host, port, left()?, 0)?;
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

/// Raise this process's soft limit on open files to its hard limit (as Go programs do at
/// start): the soft limit is often 1024, about what one busy session may hold. Failures are
/// logged and ignored; the old limit then stays.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let below = match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) => current < maximum,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below {
        let from = limit.current;
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::debug!(?from, to = ?limit.current, "raised the open file limit"),
            Err(e) => tracing::debug!(%e, "cannot raise the open file limit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rustix::process::{Resource, getrlimit, setrlimit};

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

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let limit = getrlimit(Resource::Nofile);
        let Some(hard) = limit.maximum else {
            return; // unlimited hard limit: nothing to compare against
        };
        // One below the hard limit, so the rest of this process barely notices.
        let mut lower = limit;
        lower.current = Some(hard - 1);
        setrlimit(Resource::Nofile, lower).unwrap();
        super::raise_open_file_limit();
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
    }
}
