//! TCP and UDP side by side: `serve` binds both at one address and port and runs both servers,
//! and clients dial over UDP with the same host resolution and retries as over TCP.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use anyhow::Context as _;
use ferry_app::agent::Agent;
use proto::dgram::TransportConfig;
use proto::{Config, Psk};

use crate::cli::Remote;
use crate::run::Runtime;

/// How often `serve --listen ...:0` picks a new TCP port when the UDP port of the same number
/// is taken.
const BIND_TRIES: usize = 8;

/// Bind TCP at `addr` and, with `udp`, UDP at the address and port TCP got (a port 0 request
/// is fixed by the TCP bind; if that UDP port is taken, another TCP port is tried).
///
/// # Errors
/// A bind failed; a UDP failure says so (and that `--no-udp` serves TCP only).
pub fn bind_server(addr: SocketAddr, udp: bool) -> io::Result<(TcpListener, Option<UdpSocket>)> {
    let mut tries = 0;
    loop {
        tries += 1;
        let tcp = TcpListener::bind(addr)?;
        if !udp {
            return Ok((tcp, None));
        }
        match UdpSocket::bind(tcp.local_addr()?) {
            Ok(sock) => return Ok((tcp, Some(sock))),
            Err(e)
                if addr.port() == 0
                    && e.kind() == io::ErrorKind::AddrInUse
                    && tries < BIND_TRIES => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("UDP: {e} (--no-udp serves TCP only)"),
                ));
            }
        }
    }
}

/// Run the TCP server and, if given, the UDP server, each on a thread of its own, until one
/// of them stops: its error (or its unexpected end) is the result, and the process exits with
/// it.
///
/// # Errors
/// The first server that stopped, and why.
pub fn serve_both<T, U>(tcp: T, udp: Option<U>) -> anyhow::Result<()>
where
    T: FnOnce() -> io::Result<()> + Send + 'static,
    U: FnOnce() -> io::Result<()> + Send + 'static,
{
    let (done, first) = std::sync::mpsc::channel();
    let spawn = |name: &'static str, f: Box<dyn FnOnce() -> io::Result<()> + Send>| {
        let done = done.clone();
        std::thread::Builder::new()
            .name(format!("ferry-serve-{name}"))
            .spawn(move || {
                let result = f();
                let _ = done.send((name, result));
            })
            .map(|_| ())
            .with_context(|| format!("cannot start the {name} server"))
    };
    spawn("tcp", Box::new(tcp))?;
    if let Some(udp) = udp {
        spawn("udp", Box::new(udp))?;
    }
    drop(done);
    match first.recv() {
        Ok((name, Ok(()))) => anyhow::bail!("the {} server stopped", name.to_uppercase()),
        Ok((name, Err(e))) => {
            Err(e).with_context(|| format!("the {} server stopped", name.to_uppercase()))
        }
        Err(_) => anyhow::bail!("the servers stopped"),
    }
}

/// A client's UDP transport settings for `--cc`.
pub fn client_transport(cc: crate::cli::Cc) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.congestion = cc.into();
    t
}

/// Run `agent`'s job over UDP against `remote`: resolve the name as TCP clients do, try each
/// address, and when no address answered the handshake, try again `retries` times with the
/// same back-off as a TCP connect (0.5 s, 1 s, 2 s...). Other outcomes are final.
///
/// # Errors
/// A one-line message when nobody answered (silence, or the port unreachable); otherwise the
/// run's [`RunError`](ferry_app::host::RunError) (busy refusals stay recognisable).
pub fn run_udp(
    rt: &dyn Runtime,
    remote: &Remote,
    retries: u32,
    config: &Config,
    transport: &TransportConfig,
    psk: &Psk,
    agent: &mut Agent,
) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(500);
    let mut last: anyhow::Error = anyhow::anyhow!("{}: no address", remote.host);
    for attempt in 0..=retries {
        if attempt > 0 {
            tracing::info!(attempt, ?delay, "no answer over UDP; retrying");
            std::thread::sleep(delay);
            delay *= 2;
        }
        let addrs: Vec<SocketAddr> = match (remote.host.as_str(), remote.port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                last =
                    anyhow::Error::new(e).context(format!("cannot connect to {remote} over UDP"));
                continue;
            }
        };
        for addr in addrs {
            match rt.run_udp_client(addr, config, transport, psk, agent) {
                Err(e) => match ferry_app::udp::is_no_answer(&e) {
                    Some(refused) => last = no_answer(remote, config, refused),
                    None => return Err(e.into()),
                },
                Ok(()) => return Ok(()),
            }
        }
    }
    Err(last)
}

/// What a client says when nobody answered its handshake.
fn no_answer(remote: &Remote, config: &Config, refused: bool) -> anyhow::Error {
    let msg = if refused {
        format!("no ferry server on UDP {remote} (port unreachable)")
    } else {
        format!(
            "no answer from {remote} over UDP within {} s: no ferry server there, UDP blocked, \
             or a different key",
            config.handshake_timeout.as_secs()
        )
    };
    anyhow::Error::new(crate::retry::NoAnswer(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_tcp_and_udp_the_same_port() {
        let (tcp, udp) = bind_server("127.0.0.1:0".parse().unwrap(), true).unwrap();
        assert_eq!(
            tcp.local_addr().unwrap(),
            udp.unwrap().local_addr().unwrap()
        );
        let (_, none) = bind_server("127.0.0.1:0".parse().unwrap(), false).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn a_taken_udp_port_is_an_error_for_a_fixed_port() {
        let held = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        match bind_server(addr, true) {
            Err(e) => assert!(e.to_string().contains("--no-udp"), "{e}"),
            Ok(_) => {
                // The TCP port of that number was free and so, unexpectedly, was UDP.
                panic!("bound UDP {addr} twice");
            }
        }
        // TCP only is fine.
        bind_server(addr, false).unwrap();
    }
}
