//! Short codes over UDP (`--udp` or `FERRY_TRANSPORT=udp`): the sender serves exactly one
//! receiver on a UDP socket of its own (the core's [`Endpoint`] admitting one connection,
//! driven by the blocking loop below with the sender's own agent), directly or at a relay
//! ([`crate::relay::meet`]); the receiver is a datagram client.
//!
//! A failed handshake is never explained over UDP: a sender whose check of the receiver's
//! first Noise message fails (a wrong code) burns the code and exits without a word, and the
//! receiver, which heard the sender's SPAKE2 answer and then nothing, reports the same burned
//! code when its handshake times out.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use anyhow::{Context as _, bail};
use ferry_app::agent::Agent;
use ferry_app::host::{Clock, RunError, fresh_seed};
use ferry_app::udp::socket::{READ_BATCH, UdpIo};
use ferry_app::udp::{TRANSMIT_BUF, UdpConn, is_no_answer, was_heard};
use proto::dgram::{
    ConnHandle, Connection, DatagramEvent, Endpoint, MAX_MTU, Transmit, TransportConfig,
};
use proto::{Code, Config, HandshakeError, Psk, SessionError};

use crate::cli::Remote;
use crate::relay::{Met, Role, meet};
use crate::run::Runtime;

/// Longest wait in the sender's loop when no timer is armed.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// The error a receiver ends with when the sender answered the code exchange and then fell
/// silent: it refused our code (and burned it).
fn burned() -> anyhow::Error {
    RunError::Session(SessionError::Handshake(HandshakeError::WrongCode)).into()
}

/// Nobody answered (the JSON reason `timeout`, or `refused` for an unreachable port).
fn no_answer(msg: String) -> anyhow::Error {
    anyhow::Error::new(crate::retry::NoAnswer(msg))
}

/// The first address `remote` resolves to.
fn resolve(remote: &Remote) -> anyhow::Result<SocketAddr> {
    (remote.host.as_str(), remote.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {remote}"))?
        .next()
        .with_context(|| format!("{}: no address", remote.host))
}

/// A socket for talking to the relay at `relay` (connected to it, buffers sized).
fn relay_socket(relay: SocketAddr) -> anyhow::Result<UdpSocket> {
    ferry_app::udp::client_socket(relay)
        .with_context(|| format!("cannot open a UDP socket towards the relay {relay}"))
}

/// The sender's socket: `listen`, else `[::]:6868`, else `0.0.0.0:6868`.
pub(super) fn bind(listen: Option<SocketAddr>) -> anyhow::Result<UdpSocket> {
    let sock = match listen {
        Some(addr) => {
            UdpSocket::bind(addr).with_context(|| format!("cannot listen on UDP {addr}"))?
        }
        None => UdpSocket::bind(crate::DEFAULT_LISTEN)
            .or_else(|_| UdpSocket::bind(crate::DEFAULT_LISTEN_V4))
            .with_context(|| {
                format!(
                    "cannot listen on UDP {} or {}",
                    crate::DEFAULT_LISTEN,
                    crate::DEFAULT_LISTEN_V4
                )
            })?,
    };
    if let Some(w) = ferry_app::udp::socket::size_buffers(&sock) {
        tracing::warn!("{w}");
    }
    Ok(sock)
}

/// `send --code --relay HOST --udp`: meet the receiver at the relay (a refused number gets a
/// fresh code, as over TCP; `announce` prints each code taken), then serve it. Returns the
/// code used and the run.
pub(super) fn send_relayed(
    relay: &Remote,
    code: &mut Code,
    mut fresh: impl FnMut() -> anyhow::Result<Code>,
    announce: &dyn Fn(&Code),
    serve: &dyn Fn(&UdpSocket, First, &Psk) -> Served,
) -> anyhow::Result<Served> {
    let addr = resolve(relay)?;
    let sock = relay_socket(addr)?;
    let mut tries = 0;
    loop {
        match meet(&sock, Role::Send, code, || announce(code))? {
            Met::Paired(first) => return Ok(serve(&sock, first.map(|d| (addr, d)), &code.psk())),
            Met::Refused if tries < 8 => {
                tries += 1;
                *code = fresh()?;
            }
            Met::Refused => bail!("the relay {relay} refused every code number tried"),
        }
    }
}

/// A datagram of the receiver read before the sender's loop started (at a relay).
pub(super) type First = Option<(SocketAddr, Vec<u8>)>;

/// The outcome of serving one receiver: its agent and the session's result, or a socket that
/// failed before anyone came.
pub(super) type Served = anyhow::Result<(Agent, Result<(), RunError>)>;

/// Serve exactly one receiver on `sock`: the first datagram connection the endpoint admits
/// (for `psk`'s nameplate) gets an agent from `agent`; the run ends when that connection is
/// over. `first` is a datagram read already (at a relay, before our `P`).
pub(super) fn serve_one(
    sock: &UdpSocket,
    first: First,
    config: &Config,
    transport: &TransportConfig,
    psk: &Psk,
    agent: &dyn Fn(SocketAddr) -> Agent,
) -> Served {
    let mut io = UdpIo::new(sock)?;
    io.log_features();
    let transport = io.transport(transport);
    let mut one = One {
        endpoint: Endpoint::new(config, &transport, psk, fresh_seed()?, 1),
        conn: None,
        clock: Clock::new(),
        scratch: vec![0; MAX_MTU.into()],
        responses: Vec::new(),
        agent,
    };
    if let Some((from, mut d)) = first {
        one.route(from, &mut d);
    }
    let mut tx = vec![0u8; TRANSMIT_BUF];
    loop {
        for (t, bytes) in one.responses.drain(..) {
            let _ = io.send(&t, &bytes);
        }
        if let Some((_, c)) = &mut one.conn {
            c.step();
            while let Some(t) = c.poll_transmit(&mut tx) {
                if let Err(e) = io.send(&t, &tx) {
                    tracing::debug!(error = %e, "send failed");
                }
            }
            if c.is_over() {
                let (_, c) = one.conn.take().expect("just looked at");
                return Ok(c.finish(None));
            }
        }
        let read = match io.recv_up_to(READ_BATCH, |from, d| one.route(from, d)) {
            Ok(n) => n,
            // ICMP about an earlier datagram, or a signal: not the socket's end.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => return one.failed(e),
        };
        if read > 0 {
            continue;
        }
        let wait = one
            .conn
            .as_ref()
            .and_then(|(_, c)| c.until_deadline())
            .unwrap_or(IDLE_WAIT)
            .min(IDLE_WAIT);
        if let Err(e) = io.wait_readable(wait) {
            return one.failed(e);
        }
    }
}

/// The state of [`serve_one`]'s loop.
struct One<'a> {
    endpoint: Endpoint,
    conn: Option<(ConnHandle, UdpConn)>,
    clock: Clock,
    scratch: Vec<u8>,
    responses: Vec<(Transmit, Vec<u8>)>,
    agent: &'a dyn Fn(SocketAddr) -> Agent,
}

impl One<'_> {
    fn route(&mut self, from: SocketAddr, d: &mut [u8]) {
        match self
            .endpoint
            .handle(self.clock.now(), from, d, &mut self.scratch)
        {
            DatagramEvent::Known(h) => {
                if let Some((mine, c)) = &mut self.conn
                    && *mine == h
                {
                    c.handle_datagram(from, d);
                }
            }
            DatagramEvent::New(h, conn) => {
                if self.conn.is_none() {
                    tracing::debug!(peer = %from, "a receiver");
                    let agent = (self.agent)(from);
                    self.conn = Some((h, UdpConn::new(*conn, agent, self.clock)));
                } else {
                    self.endpoint.forget(h);
                }
            }
            DatagramEvent::Respond(t) => {
                self.responses.push((t, self.scratch[..t.size].to_vec()));
            }
            DatagramEvent::Dropped => {}
        }
    }

    /// The socket failed: the receiver's session with it, or the whole send.
    fn failed(mut self, e: io::Error) -> Served {
        match self.conn.take() {
            Some((_, c)) => Ok(c.finish(Some(e))),
            None => Err(anyhow::Error::new(e).context("the UDP socket failed")),
        }
    }
}

/// `receive CODE --udp`: directly (resolving and retrying as other UDP clients do), or at a
/// relay. A sender that answered the code exchange and then fell silent refused the code: the
/// burned-code error, and no retry.
///
/// # Errors
/// As over TCP.
pub(super) fn receive(
    rt: &dyn Runtime,
    args: &super::ReceiveArgs,
    config: &Config,
    transport: &TransportConfig,
    code: &Code,
    agent: &mut Agent,
) -> anyhow::Result<()> {
    let psk = code.psk();
    if let Some(relay) = &args.relay {
        let addr = resolve(relay)?;
        let sock = relay_socket(addr)?;
        match meet(&sock, Role::Receive, code, || {})? {
            // The sender is the server: nothing of it comes before our first datagram.
            Met::Paired(_) => {}
            Met::Refused => bail!("the relay refused: a receiver for this code is there already"),
        }
        let io = UdpIo::new(&sock)?;
        let clock = Clock::new();
        let transport = io.transport(transport);
        let conn = Connection::client(config, &transport, &psk, fresh_seed()?, clock.now(), addr);
        let owned = Agent::take(agent);
        let (owned, result) =
            ferry_app::udp::socket::run_client(io, UdpConn::new(conn, owned, clock));
        *agent = owned;
        return result.map_err(|e| match is_no_answer(&e) {
            Some(_) if was_heard(&e) => burned(),
            Some(_) => no_answer(format!(
                "no answer from the sender through the relay {relay} within {} s",
                config.handshake_timeout.as_secs()
            )),
            None => e.into(),
        });
    }
    let remote = args
        .from
        .as_ref()
        .context("receive needs --from HOST or --relay HOST")?;
    let mut delay = Duration::from_millis(500);
    let mut last = anyhow::anyhow!("{}: no address", remote.host);
    for attempt in 0..=args.retries {
        if attempt > 0 {
            std::thread::sleep(delay);
            delay *= 2;
        }
        let addrs: Vec<SocketAddr> = match (remote.host.as_str(), remote.port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                last = anyhow::Error::new(e).context(format!("cannot resolve {remote}"));
                continue;
            }
        };
        for addr in addrs {
            match rt.run_udp_client(addr, config, transport, &psk, agent) {
                Ok(()) => return Ok(()),
                Err(e) if was_heard(&e) => return Err(burned()),
                Err(e) => match is_no_answer(&e) {
                    Some(true) => {
                        last = no_answer(format!("no sender on UDP {remote} (port unreachable)"));
                    }
                    Some(false) => {
                        last = no_answer(format!(
                            "no answer from {remote} over UDP within {} s: no sender there, or \
                             UDP blocked",
                            config.handshake_timeout.as_secs()
                        ));
                    }
                    None => return Err(e.into()),
                },
            }
        }
    }
    Err(last)
}
