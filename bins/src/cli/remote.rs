//! Host and address arguments: `HOST[:PORT]` of a server to connect to, `--listen` addresses.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::DEFAULT_PORT;

/// A server to connect to. `host` is a name or an IP address without brackets, so
/// `(host.as_str(), port)` can be passed to `ToSocketAddrs` as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

pub(crate) fn parse_remote(s: &str) -> Result<Remote, String> {
    parse_host(s, DEFAULT_PORT).map(|(host, port)| Remote { host, port })
}

/// Split `HOST[:PORT]` into host and port, `default_port` when none is given. Accepts `host`,
/// `host:port`, `1.2.3.4:port`, `[::1]`, `[::1]:port` and a bare IPv6 address such as `::1`
/// (which can carry no port: write `[::1]:port`). IPv6 hosts come back without brackets; a
/// `%zone` suffix is kept. Port 0 is refused.
///
/// # Errors
/// A message for the usage error.
pub fn parse_host(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = |why: &str| Err(format!("invalid host `{s}`: {why}"));
    if s.is_empty() {
        return bad("empty");
    }
    if let Some((_, rest)) = s.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        return Err(format!(
            "`{s}` is a URL; give HOST[:PORT] instead, e.g. `{authority}` (ferry speaks its own \
             protocol, not HTTP)"
        ));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return bad("missing `]`");
        };
        if !is_ipv6(inside) {
            return bad("not an IPv6 address inside [...]");
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return bad("expected `:PORT` after `]`"),
            },
        };
        (inside, port)
    } else if s.matches(':').count() >= 2 {
        if !is_ipv6(s) {
            return bad("not an IPv6 address (write [ADDRESS]:PORT)");
        }
        (s, None)
    } else if let Some((h, p)) = s.split_once(':') {
        (h, Some(p))
    } else {
        (s, None)
    };
    if host.is_empty() {
        return bad("empty host name");
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return bad("a host name has only letters, digits, `.`, `-` and `_`");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return bad("the port must be a number from 1 to 65535"),
            Ok(n) => n,
        },
    };
    Ok((host.to_owned(), port))
}

fn is_ipv6(s: &str) -> bool {
    match s.split_once('%') {
        Some((addr, zone)) => {
            !zone.is_empty()
                && zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                && addr.parse::<Ipv6Addr>().is_ok()
        }
        None => s.parse::<Ipv6Addr>().is_ok(),
    }
}

/// `--listen`: `IP:PORT`, `[IPv6]:PORT`, or an IP alone (port 6868). Port 0 lets the OS pick.
pub(crate) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| {
            format!("invalid listen address `{s}`: expected IP:PORT, [IPv6]:PORT or an IP address")
        })
}
