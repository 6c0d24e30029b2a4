//! The relay over UDP: the same rendezvous by nameplate as over TCP, then datagrams forwarded
//! between the two paired addresses as they are.
//!
//! ```text
//! side -> relay   "FRYR" 02 | role ('S'/'R') | nameplate u32 BE | token [16]      (26 bytes)
//! relay -> side   "FRYR" 02 | 'T' | token [16]   echo this token (the address check)  (22)
//!                 "FRYR" 02 | 'W'   parked, waiting for the other side              (6)
//!                 "FRYR" 02 | 'P'   paired: from now on datagrams go to the other side (6)
//!                 "FRYR" 02 | 'X'   refused (as over TCP)                           (6)
//! ```
//!
//! A side sends its hello with a zero token, then once a second (a lost datagram is resent)
//! with the token the relay returned, until `P` (or a datagram of the other side: the `P` was
//! lost). The token is a keyed hash of the address, role, nameplate and the current minute:
//! the relay keeps no state for an address before it echoed one (so a forged source address
//! gets nothing parked), and never sends an address more than that address sent it before
//! (each answer is shorter than the hello it answers); forwarded datagrams go only to checked
//! addresses that asked to be paired. Bounds as over TCP: `--max-waiting` parked sides, each
//! for at most `--wait` seconds (and dropped after [`PARKED_SILENCE`] without a hello),
//! `--per-ip` and `--max-connections` addresses in the table, a pair forgotten after
//! [`PAIR_IDLE`] without a datagram either way.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use proto::Code;

use super::{RelayArgs, Role};

/// The hello's magic and version (2: the UDP rendezvous).
const MAGIC: &[u8; 5] = b"FRYR\x02";
/// A hello: magic, role, nameplate, token.
const HELLO_LEN: usize = 5 + 1 + 4 + TOKEN_LEN;
const TOKEN_LEN: usize = 16;
/// A parked side that sent no hello for this long is gone.
const PARKED_SILENCE: Duration = Duration::from_secs(10);
/// How often a side resends its hello while it waits.
const HELLO_EVERY: Duration = Duration::from_secs(1);
/// A side gives up when the relay said nothing for this long.
const RELAY_SILENCE: Duration = Duration::from_secs(10);
/// A pair with no datagram either way for this long is forgotten: twice the datagram
/// transport's idle timeout (30 s), after which its session is over for sure. Shorter than
/// over TCP: UDP has no close the relay could see.
const PAIR_IDLE: Duration = Duration::from_secs(60);
/// Largest datagram forwarded.
const MAX_DATAGRAM: usize = 64 * 1024;

fn answer(kind: u8) -> [u8; 6] {
    let mut a = [0u8; 6];
    a[..5].copy_from_slice(MAGIC);
    a[5] = kind;
    a
}

/// A parsed hello.
struct Hello {
    role: Role,
    nameplate: u32,
    token: [u8; TOKEN_LEN],
}

fn parse_hello(d: &[u8]) -> Option<Hello> {
    if d.len() != HELLO_LEN || &d[..5] != MAGIC {
        return None;
    }
    let role = match d[5] {
        b'S' => Role::Send,
        b'R' => Role::Receive,
        _ => return None,
    };
    let nameplate = u32::from_be_bytes([d[6], d[7], d[8], d[9]]);
    let mut token = [0u8; TOKEN_LEN];
    token.copy_from_slice(&d[10..]);
    Some(Hello {
        role,
        nameplate,
        token,
    })
}

fn hello(role: Role, nameplate: u32, token: &[u8; TOKEN_LEN]) -> [u8; HELLO_LEN] {
    let mut h = [0u8; HELLO_LEN];
    h[..5].copy_from_slice(MAGIC);
    h[5] = role.byte();
    h[6..10].copy_from_slice(&nameplate.to_be_bytes());
    h[10..].copy_from_slice(token);
    h
}

/// A side waiting at the relay.
struct Parked {
    role: Role,
    addr: SocketAddr,
    since: Instant,
    last_hello: Instant,
}

/// One direction of a pair.
struct Peer {
    other: SocketAddr,
    last: Instant,
}

/// The relay's table (one thread owns it).
struct Table {
    key: [u8; 32],
    parked: HashMap<u32, Parked>,
    pairs: HashMap<SocketAddr, Peer>,
    per_ip: HashMap<IpAddr, usize>,
    args: RelayArgs,
}

impl Table {
    fn token(&self, addr: SocketAddr, h: &Hello, minute: u64) -> [u8; TOKEN_LEN] {
        let mut m = blake3::Hasher::new_keyed(&self.key);
        m.update(addr.to_string().as_bytes());
        m.update(&[h.role.byte()]);
        m.update(&h.nameplate.to_be_bytes());
        m.update(&minute.to_be_bytes());
        let mut t = [0u8; TOKEN_LEN];
        t.copy_from_slice(&m.finalize().as_bytes()[..TOKEN_LEN]);
        t
    }

    fn entries(&self) -> usize {
        self.parked.len() + self.pairs.len()
    }

    /// Count one more table entry for `addr`, within the bounds.
    fn admit(&mut self, addr: SocketAddr) -> bool {
        let total = self.entries();
        let n = self.per_ip.entry(addr.ip()).or_insert(0);
        if *n >= self.args.per_ip || total >= self.args.max_connections {
            if *n == 0 {
                self.per_ip.remove(&addr.ip());
            }
            return false;
        }
        *n += 1;
        true
    }

    fn release(&mut self, addr: SocketAddr) {
        if let Some(n) = self.per_ip.get_mut(&addr.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&addr.ip());
            }
        }
    }

    /// A hello from an address not paired: what to answer it, and a `P` for a parked side
    /// paired now.
    fn on_hello(
        &mut self,
        from: SocketAddr,
        h: &Hello,
        now: Instant,
        minute: u64,
    ) -> (Vec<u8>, Option<SocketAddr>) {
        let current = self.token(from, h, minute);
        if h.token != current && h.token != self.token(from, h, minute.wrapping_sub(1)) {
            let mut a = answer(b'T').to_vec();
            a.extend_from_slice(&current);
            return (a, None);
        }
        let wait = Duration::from_secs(self.args.wait);
        match self.parked.get_mut(&h.nameplate) {
            Some(p) if p.addr == from => {
                if now.duration_since(p.since) > wait {
                    self.parked.remove(&h.nameplate);
                    self.release(from);
                    return (answer(b'X').to_vec(), None);
                }
                p.last_hello = now;
                (answer(b'W').to_vec(), None)
            }
            Some(p) if p.role != h.role => {
                let other = p.addr;
                if !self.admit(from) {
                    return (answer(b'X').to_vec(), None);
                }
                self.parked.remove(&h.nameplate);
                self.pairs.insert(from, Peer { other, last: now });
                self.pairs.insert(
                    other,
                    Peer {
                        other: from,
                        last: now,
                    },
                );
                (answer(b'P').to_vec(), Some(other))
            }
            Some(_) => (answer(b'X').to_vec(), None),
            None => {
                if self.parked.len() >= self.args.max_waiting || !self.admit(from) {
                    return (answer(b'X').to_vec(), None);
                }
                self.parked.insert(
                    h.nameplate,
                    Parked {
                        role: h.role,
                        addr: from,
                        since: now,
                        last_hello: now,
                    },
                );
                (answer(b'W').to_vec(), None)
            }
        }
    }

    /// Forget silent parked sides and idle pairs; returns the parked sides sent away for
    /// `--wait` (they get an `X`).
    fn sweep(&mut self, now: Instant) -> Vec<SocketAddr> {
        let wait = Duration::from_secs(self.args.wait);
        let mut gone = Vec::new();
        let mut away = Vec::new();
        self.parked.retain(|_, p| {
            let over = now.duration_since(p.since) > wait;
            let silent = now.duration_since(p.last_hello) > PARKED_SILENCE;
            if over {
                away.push(p.addr);
            }
            if over || silent {
                gone.push(p.addr);
                return false;
            }
            true
        });
        let idle: Vec<SocketAddr> = self
            .pairs
            .iter()
            .filter(|(_, p)| now.duration_since(p.last) > PAIR_IDLE)
            .map(|(a, _)| *a)
            .collect();
        for a in idle {
            // A pair is idle when neither direction saw a datagram (both entries are old).
            let other = self.pairs.get(&a).map(|p| p.other);
            let both = other.is_none_or(|o| {
                self.pairs
                    .get(&o)
                    .is_none_or(|p| now.duration_since(p.last) > PAIR_IDLE)
            });
            if both && self.pairs.remove(&a).is_some() {
                gone.push(a);
            }
        }
        for a in gone {
            self.release(a);
        }
        away
    }
}

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

/// Run the UDP relay on `sock` until the socket fails.
///
/// # Errors
/// The socket failed for good, or no randomness for the token key.
pub(super) fn serve(sock: &UdpSocket, args: &RelayArgs) -> io::Result<()> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    let mut t = Table {
        key,
        parked: HashMap::new(),
        pairs: HashMap::new(),
        per_ip: HashMap::new(),
        args: args.clone(),
    };
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut swept = Instant::now();
    loop {
        let now = Instant::now();
        if now.duration_since(swept) >= Duration::from_secs(1) {
            swept = now;
            for a in t.sweep(now) {
                let _ = sock.send_to(&answer(b'X'), a);
            }
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let d = &buf[..n];
        let hello = parse_hello(d);
        if let Some(p) = t.pairs.get_mut(&from) {
            p.last = now;
            if hello.is_some() {
                // A side that missed its `P`.
                let _ = sock.send_to(&answer(b'P'), from);
            } else {
                let _ = sock.send_to(d, p.other);
            }
            continue;
        }
        let Some(h) = hello else {
            // Not a hello from an unknown address: no answer at all.
            continue;
        };
        let (reply, paired) = t.on_hello(from, &h, now, minute());
        debug_assert!(reply.len() < HELLO_LEN);
        let _ = sock.send_to(&reply, from);
        if let Some(other) = paired {
            let _ = sock.send_to(&answer(b'P'), other);
        }
    }
}

/// What a side's rendezvous came to.
pub enum Met {
    /// Paired; the other side's first datagram if it came before our `P`.
    Paired(Option<Vec<u8>>),
    /// Refused before the relay took us (the number is in use: a sender picks another code).
    Refused,
}

/// Meet at the relay over UDP on `sock` (connected to the relay) as `role` for `code`'s
/// number; `waiting` runs once the relay has taken us (parked or paired).
///
/// # Errors
/// The relay said nothing for 10 s, refused us after taking us, or the socket
/// failed.
pub fn meet(
    sock: &UdpSocket,
    role: Role,
    code: &Code,
    waiting: impl FnOnce(),
) -> anyhow::Result<Met> {
    let relay = sock.peer_addr()?;
    sock.set_read_timeout(Some(HELLO_EVERY))?;
    let mut token = [0u8; TOKEN_LEN];
    let mut waiting = Some(waiting);
    let mut heard = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut send_hello = true;
    loop {
        if send_hello {
            sock.send(&hello(role, code.nameplate(), &token))
                .with_context(|| format!("cannot reach the relay {relay} over UDP"))?;
        }
        send_hello = true;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if heard.elapsed() > RELAY_SILENCE {
                    bail!("no answer from the relay {relay} over UDP");
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("the relay {relay} over UDP failed"));
            }
        };
        heard = Instant::now();
        let d = &buf[..n];
        if d.len() < 6 || &d[..5] != MAGIC {
            // The other side's first datagram: our `P` was lost.
            if waiting.is_none() {
                return Ok(Met::Paired(Some(d.to_vec())));
            }
            continue;
        }
        match d[5] {
            b'T' if d.len() == 6 + TOKEN_LEN => {
                token.copy_from_slice(&d[6..]);
            }
            b'W' | b'P' => {
                if let Some(w) = waiting.take() {
                    w();
                }
                if d[5] == b'P' {
                    return Ok(Met::Paired(None));
                }
                // Parked: the next hello in a second keeps our place.
                send_hello = false;
                sock.set_read_timeout(Some(HELLO_EVERY))?;
            }
            b'X' if waiting.is_some() => return Ok(Met::Refused),
            b'X' => bail!(
                "the relay {relay} refused: the code's number is in use, the relay is full, \
                 or nobody came in time"
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(per_ip: usize) -> Table {
        Table {
            key: [7; 32],
            parked: HashMap::new(),
            pairs: HashMap::new(),
            per_ip: HashMap::new(),
            args: RelayArgs {
                listen: None,
                wait: 600,
                max_waiting: 10,
                per_ip,
                max_connections: 100,
                no_udp: false,
            },
        }
    }

    /// A zero-token hello gets the token (shorter than the hello); the echo gets the answer.
    fn check_in(t: &mut Table, from: &str, role: Role, n: u32, now: Instant) -> Vec<u8> {
        let from: SocketAddr = from.parse().unwrap();
        let mut h = Hello {
            role,
            nameplate: n,
            token: [0; TOKEN_LEN],
        };
        let (a, paired) = t.on_hello(from, &h, now, 100);
        assert!(a.len() < HELLO_LEN && a.starts_with(b"FRYR\x02T"), "{a:?}");
        assert!(paired.is_none());
        h.token.copy_from_slice(&a[6..]);
        let (a, _) = t.on_hello(from, &h, now, 100);
        assert!(a.len() < HELLO_LEN);
        a
    }

    #[test]
    fn nothing_is_kept_for_an_unchecked_address() {
        let mut t = table(8);
        let from: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let h = Hello {
            role: Role::Send,
            nameplate: 5,
            token: [9; TOKEN_LEN],
        };
        for _ in 0..100 {
            let (a, paired) = t.on_hello(from, &h, Instant::now(), 100);
            assert_eq!(&a[..6], b"FRYR\x02T");
            assert!(paired.is_none());
        }
        assert!(t.parked.is_empty() && t.per_ip.is_empty());
        // A token is good this minute and the next, for its own address only.
        let token = t.token(from, &h, 100);
        let h = Hello { token, ..h };
        let other: SocketAddr = "10.0.0.2:1000".parse().unwrap();
        assert_eq!(t.on_hello(other, &h, Instant::now(), 100).0[5], b'T');
        assert_eq!(t.on_hello(from, &h, Instant::now(), 102).0[5], b'T');
        assert_eq!(t.on_hello(from, &h, Instant::now(), 101).0, answer(b'W'));
    }

    #[test]
    fn pairs_are_forgotten_when_idle_and_their_addresses_released() {
        let now = Instant::now();
        let mut t = table(8);
        assert_eq!(
            check_in(&mut t, "10.0.0.1:1000", Role::Send, 5, now),
            answer(b'W')
        );
        assert_eq!(
            check_in(&mut t, "10.0.0.1:1001", Role::Send, 5, now),
            answer(b'X'),
            "the same role on a taken number"
        );
        assert_eq!(
            check_in(&mut t, "10.0.0.2:2000", Role::Receive, 5, now),
            answer(b'P')
        );
        assert_eq!(t.pairs.len(), 2);
        assert!(t.parked.is_empty());
        assert!(t.sweep(now + PAIR_IDLE / 2).is_empty());
        assert_eq!(t.pairs.len(), 2, "not idle yet");
        t.sweep(now + PAIR_IDLE + Duration::from_secs(1));
        assert!(t.pairs.is_empty() && t.per_ip.is_empty());
    }

    #[test]
    fn parked_sides_leave_after_wait_or_silence() {
        let now = Instant::now();
        let mut t = table(8);
        t.args.wait = 30;
        check_in(&mut t, "10.0.0.1:1000", Role::Send, 5, now);
        check_in(&mut t, "10.0.0.3:1000", Role::Send, 6, now);
        // One keeps saying hello, the other falls silent.
        t.parked.get_mut(&5).unwrap().last_hello = now + Duration::from_secs(25);
        assert!(t.sweep(now + Duration::from_secs(20)).is_empty());
        assert_eq!(t.parked.len(), 1, "the silent side is dropped");
        let away = t.sweep(now + Duration::from_secs(31));
        assert_eq!(away, vec!["10.0.0.1:1000".parse::<SocketAddr>().unwrap()]);
        assert!(t.parked.is_empty() && t.per_ip.is_empty());
    }

    #[test]
    fn per_ip_and_waiting_limits() {
        let now = Instant::now();
        let mut t = table(2);
        assert_eq!(
            check_in(&mut t, "10.0.0.1:1", Role::Send, 1, now),
            answer(b'W')
        );
        assert_eq!(
            check_in(&mut t, "10.0.0.1:2", Role::Send, 2, now),
            answer(b'W')
        );
        assert_eq!(
            check_in(&mut t, "10.0.0.1:3", Role::Send, 3, now),
            answer(b'X')
        );
        t.args.max_waiting = 3;
        assert_eq!(
            check_in(&mut t, "10.0.0.2:1", Role::Send, 4, now),
            answer(b'W')
        );
        assert_eq!(
            check_in(&mut t, "10.0.0.3:1", Role::Send, 5, now),
            answer(b'X')
        );
    }
}
