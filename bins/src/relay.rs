//! `relay`: a rendezvous for short-code transfers when neither side can reach the other.
//!
//! Both sides connect out to the relay and say which code number (nameplate) they meet at and
//! which side they are; the relay pairs a sender with a receiver of the same number and from
//! then on copies bytes both ways. It never sees the code's words: they are the SPAKE2
//! password inside the end-to-end handshake, so it cannot read, change or name a file (a
//! changed byte fails the receiver's record authentication).
//!
//! ```text
//! side -> relay   "FRYR" | 0x01 | role ('S' send, 'R' receive) | nameplate u32 BE   (10 bytes)
//! relay -> side   'W' parked, waiting for the other side (only the first to arrive)
//!                 'P' paired: from the next byte on, the stream is the other side's
//!                 'X' refused (number taken by the same role, too many waiting, too many
//!                     connections from this address, or waited too long), then close
//! ```
//!
//! Bounds: at most `--max-waiting` parked sides, each for at most `--wait` seconds; at most
//! `--per-ip` connections (parked or paired) per source address and `--max-connections` in
//! all; a hello must arrive within
//! [`HELLO_TIMEOUT`]; a pair is cut after [`IDLE`] without a byte either way; each direction
//! of a pair holds one `BUF` buffer (64 KiB).
//!
//! By default the relay also listens on UDP at the same address and port (module `udp`: the same
//! pairing, then datagrams forwarded; `--no-udp` turns it off).

mod udp;

pub use udp::{Met, meet};

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use proto::Code;

use crate::cli::Remote;
use crate::output::Output;
use crate::{DEFAULT_LISTEN, DEFAULT_LISTEN_V4};

/// The hello's magic and version.
const MAGIC: &[u8; 5] = b"FRYR\x01";
const HELLO_LEN: usize = 10;
/// A connection must say hello within this.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A pair with no byte either way for this long is cut (ferry sessions ping every 15 s).
pub const IDLE: Duration = Duration::from_secs(120);
/// Forwarding buffer per direction.
const BUF: usize = 64 * 1024;

/// Which side a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `send --code --relay`.
    Send,
    /// `receive --relay`.
    Receive,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Send => b'S',
            Role::Receive => b'R',
        }
    }
}

/// `relay [--listen ADDR] [--wait SECS] [--max-waiting N] [--per-ip N] [--max-connections N]`.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// Address to listen on (default `[::]:6868`, else `0.0.0.0:6868`; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Seconds a side may wait for the other before it is sent away.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub wait: u64,

    /// Most sides waiting at once.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_waiting: usize,

    /// Most connections (waiting or paired) from one address.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub per_ip: usize,

    /// Most connections at once, from all addresses (each holds a thread); over UDP, most
    /// addresses parked or paired.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,

    /// Listen on TCP only (by default UDP too, at the same address and port).
    #[arg(long)]
    pub no_udp: bool,
}

/// Connect to the relay as `role` for `code`'s number; `waiting` runs once the relay has taken
/// us (parked or paired). Returns the stream once paired, `None` when the relay refused us at
/// once (the number is in use: a sender picks another code).
///
/// # Errors
/// The relay cannot be reached, refused us after taking us, or closed.
pub fn connect(
    relay: &Remote,
    role: Role,
    code: &Code,
    waiting: impl FnOnce(),
) -> anyhow::Result<Option<TcpStream>> {
    let mut s = ferry_app::dial::connect(&relay.host, relay.port, Duration::from_secs(10), 2)
        .with_context(|| format!("cannot connect to the relay {relay}"))?;
    let mut hello = [0u8; HELLO_LEN];
    hello[..5].copy_from_slice(MAGIC);
    hello[5] = role.byte();
    hello[6..].copy_from_slice(&code.nameplate().to_be_bytes());
    s.write_all(&hello)
        .with_context(|| format!("the relay {relay} failed"))?;
    let mut waiting = Some(waiting);
    loop {
        let mut b = [0u8; 1];
        if s.read_exact(&mut b).is_err() {
            bail!("the relay {relay} closed the connection");
        }
        match b[0] {
            b'W' | b'P' => {
                if let Some(w) = waiting.take() {
                    w();
                }
                if b[0] == b'P' {
                    return Ok(Some(s));
                }
            }
            _ if waiting.is_some() => return Ok(None),
            _ => bail!(
                "the relay {relay} refused: the code's number is in use, the relay is full, \
                 or nobody came in time"
            ),
        }
    }
}

/// A parked side.
struct Parked {
    role: Role,
    stream: TcpStream,
    id: u64,
    /// Told when the side was paired (its thread stops watching the clock).
    paired: mpsc::Sender<()>,
}

struct Relay {
    waiting: Mutex<HashMap<u32, Parked>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    args: RelayArgs,
    next_id: Mutex<u64>,
}

/// One connection's share of its address's count, released on drop.
struct IpSlot {
    relay: Arc<Relay>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self
            .relay
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Run the relay forever.
///
/// # Errors
/// The listen address cannot be bound.
pub fn run(args: &RelayArgs, out: &Output) -> anyhow::Result<()> {
    let bind =
        |a: &str| crate::transport::bind_server(a.parse().expect("a valid default"), !args.no_udp);
    let (listener, udp) = match args.listen {
        Some(addr) => crate::transport::bind_server(addr, !args.no_udp)
            .with_context(|| format!("cannot listen on {addr}"))?,
        None => bind(DEFAULT_LISTEN)
            .or_else(|_| bind(DEFAULT_LISTEN_V4))
            .with_context(|| format!("cannot listen on {DEFAULT_LISTEN} or {DEFAULT_LISTEN_V4}"))?,
    };
    out.listening(listener.local_addr()?);
    if let Some(sock) = udp {
        if let Some(w) = ferry_app::udp::socket::size_buffers(&sock) {
            tracing::warn!("{w}");
        }
        let args = args.clone();
        thread::Builder::new()
            .name("ferry-relay-udp".into())
            .spawn(move || {
                if let Err(e) = udp::serve(&sock, &args) {
                    tracing::error!(error = %e, "the UDP relay stopped");
                }
            })
            .context("cannot start the UDP relay")?;
    }
    let relay = Arc::new(Relay {
        waiting: Mutex::new(HashMap::new()),
        per_ip: Mutex::new(HashMap::new()),
        args: args.clone(),
        next_id: Mutex::new(0),
    });
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(slot) = admit(&relay, peer.ip()) else {
            let _ = (&stream).write_all(b"X");
            continue;
        };
        let relay = relay.clone();
        let spawned = thread::Builder::new()
            .name("ferry-relay".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                if let Err(e) = handle(&relay, stream, slot) {
                    tracing::debug!(%peer, error = %e, "relay connection ended");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
}

fn admit(relay: &Arc<Relay>, ip: IpAddr) -> Option<IpSlot> {
    let mut m = relay
        .per_ip
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let total: usize = m.values().sum();
    let n = m.entry(ip).or_insert(0);
    if *n >= relay.args.per_ip || total >= relay.args.max_connections {
        return None;
    }
    *n += 1;
    Some(IpSlot {
        relay: relay.clone(),
        ip,
    })
}

fn handle(relay: &Arc<Relay>, mut stream: TcpStream, slot: IpSlot) -> io::Result<()> {
    stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
    let mut hello = [0u8; HELLO_LEN];
    stream.read_exact(&mut hello)?;
    let role = match (&hello[..5] == MAGIC, hello[5]) {
        (true, b'S') => Role::Send,
        (true, b'R') => Role::Receive,
        _ => {
            let _ = stream.write_all(b"X");
            return Ok(());
        }
    };
    let nameplate = u32::from_be_bytes([hello[6], hello[7], hello[8], hello[9]]);
    let (tx, rx) = mpsc::channel();
    let id;
    {
        let mut waiting = relay
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match waiting.remove(&nameplate) {
            Some(other) if other.role != role => {
                drop(waiting);
                let _ = other.paired.send(());
                return forward(stream, other.stream, slot);
            }
            Some(same) => {
                waiting.insert(nameplate, same);
                let _ = stream.write_all(b"X");
                return Ok(());
            }
            None if waiting.len() >= relay.args.max_waiting => {
                let _ = stream.write_all(b"X");
                return Ok(());
            }
            None => {
                let mut n = relay
                    .next_id
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *n += 1;
                id = *n;
                stream.write_all(b"W")?;
                waiting.insert(
                    nameplate,
                    Parked {
                        role,
                        stream: stream.try_clone()?,
                        id,
                        paired: tx,
                    },
                );
            }
        }
    }
    // Parked: wait to be paired (the pairing thread then owns the streams) or time out. The
    // IP slot stays held until then, by this thread.
    if rx
        .recv_timeout(Duration::from_secs(relay.args.wait))
        .is_ok()
    {
        // Paired: the other thread forwards; keep the slot for the pair's lifetime.
        let _ = rx.recv();
        drop(slot);
        return Ok(());
    }
    let mut waiting = relay
        .waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if waiting.get(&nameplate).is_some_and(|p| p.id == id) {
        waiting.remove(&nameplate);
        let _ = stream.write_all(b"X");
        let _ = stream.shutdown(Shutdown::Both);
    }
    Ok(())
}

/// Tell both sides they are paired, then copy both ways until both directions ended.
fn forward(a: TcpStream, b: TcpStream, slot: IpSlot) -> io::Result<()> {
    (&a).write_all(b"P")?;
    (&b).write_all(b"P")?;
    for s in [&a, &b] {
        s.set_read_timeout(Some(IDLE))?;
        s.set_write_timeout(Some(IDLE))?;
        let _ = s.set_nodelay(true);
    }
    let (a2, b2) = (a.try_clone()?, b.try_clone()?);
    let back = thread::Builder::new()
        .name("ferry-relay-pair".into())
        .stack_size(128 * 1024)
        .spawn(move || pipe(b2, a2))?;
    pipe(a, b);
    let _ = back.join();
    drop(slot);
    Ok(())
}

/// Copy `from` to `to` until the end (then pass the end on) or an error (then cut both).
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; BUF];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
