//! `dgram_datagram` and `dgram_session`: the datagram transport under hostile datagrams and a
//! hostile network, on the fixed in-memory session of [`Net`].
//!
//! `dgram_datagram`: `data[0]` picks an end and a state (client: fresh, handshake done,
//! mid-transfer; server: fresh endpoint, handshake done, mid-transfer), the rest is a sequence
//! of datagrams handed to that end's `handle_datagram` (the server's through its
//! [`Endpoint`](crate::dgram::Endpoint), with the connection it creates if any), each one
//! either raw bytes or a genuine datagram of the session (from the pool) with edits. After
//! each: invariants, no deadline in the past. Then the session runs on over a faultless wire:
//! if the end dropped every injected datagram, the transfers must complete byte-identical
//! (always the case with AES-256-GCM on stable unless a datagram is a genuine one); otherwise
//! whatever was committed must still be what was sent.
//!
//! `dgram_session`: the whole session with the input as the network: per datagram deliver,
//! drop, duplicate, delay (reorder) or flip bytes; inject raw or edited genuine datagrams at
//! either end, from the peer's address or a stranger's; jump the clock. Invariants after every
//! step. When the input is used up the wire turns faultless: unless a forged datagram was
//! accepted (only possible under the null AEAD), both connections must drain within a step
//! budget. Committed files are always what was sent.

use core::net::SocketAddr;
use core::time::Duration;

use super::dgram_net::{CLIENT, Fate, Net, SERVER, STRANGER};

/// Steps after the input is used up within which the session must be over.
const BUDGET: usize = 20_000;
/// Steps the input may drive (each consumes at least one byte anyway).
const MAX_INPUT_STEPS: usize = 4_096;

/// The fuzz input, read front to back; zeros once used up.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8().unwrap_or(0), self.u8().unwrap_or(0)])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A datagram from the input: raw (`len u16, bytes`) or, with `pooled`, a genuine datagram
/// sent towards `to_server` (`index u8` from the latest backwards) with `edits` XORs
/// (`pos u16, mask u8` each).
fn datagram(
    net: &Net,
    input: &mut Bytes,
    to_server: bool,
    pooled: bool,
    edits: u8,
) -> alloc::vec::Vec<u8> {
    if !pooled {
        let len = usize::from(input.u16());
        return input.take(len).to_vec();
    }
    let k = usize::from(input.u8().unwrap_or(0));
    let towards: alloc::vec::Vec<&alloc::vec::Vec<u8>> = net
        .pool
        .iter()
        .filter(|(s, _)| *s == to_server)
        .map(|(_, d)| d)
        .collect();
    let mut d = match towards.len() {
        0 => alloc::vec::Vec::new(),
        n => towards[n - 1 - k % n].clone(),
    };
    for _ in 0..edits {
        let pos = usize::from(input.u16());
        let mask = input.u8().unwrap_or(1);
        if !d.is_empty() {
            let n = d.len();
            d[pos % n] ^= mask;
        }
    }
    d
}

/// Where a datagram to `to_server` claims to come from.
fn source(to_server: bool, stranger: bool) -> SocketAddr {
    match (stranger, to_server) {
        (true, _) => STRANGER,
        (false, true) => CLIENT,
        (false, false) => SERVER,
    }
}

/// `dgram_datagram`: see the module docs.
pub fn dgram_datagram(data: &[u8]) {
    dgram_datagram_outcome(data);
}

/// [`dgram_datagram`], returning the network at the end.
pub fn dgram_datagram_outcome(data: &[u8]) -> Net {
    dgram_datagram_on(Net::new(), data)
}

/// [`dgram_datagram`] on `net` (a [`Net::new`], possibly with other settings).
pub fn dgram_datagram_on(mut net: Net, data: &[u8]) -> Net {
    let mut input = Bytes(data);
    let sel = input.u8().unwrap_or(0);
    let to_server = sel & 1 == 1;
    match (sel >> 1) % 3 {
        0 => {
            // Fresh: the other end's first flight exists (in the pool) but is not delivered.
            net.flush(&mut |_| Fate::Deliver);
            if !to_server {
                net.now = net.now + Duration::from_millis(10);
                net.deliver_due();
                net.flush(&mut |_| Fate::Deliver);
            }
        }
        1 => {
            let connected = |n: &Net| {
                n.client.conn.session().is_connected()
                    && n.server
                        .conns
                        .values()
                        .any(|(c, _)| c.session().is_connected())
            };
            assert!(net.run_until(BUDGET, connected), "the handshake completes");
        }
        _ => {
            let mid = |n: &Net| n.client.conn.stats().stream_bytes_sent >= 2_000;
            assert!(net.run_until(BUDGET, mid), "the transfer starts");
        }
    }
    let mut all_dropped = true;
    for _ in 0..64 {
        let Some(f) = input.u8() else { break };
        net.jump(Duration::from_millis(5 * u64::from((f >> 3) & 7)));
        let mut d = datagram(&net, &mut input, to_server, f & 0x40 != 0, f & 7);
        all_dropped &= net.inject(to_server, source(to_server, f & 0x80 != 0), &mut d);
    }
    let done = net.run_until(BUDGET, Net::done);
    if all_dropped {
        assert!(done, "not over after {BUDGET} steps: {}", net.describe());
    }
    net.check_files(all_dropped);
    net
}

/// The wire's fate for one datagram from its fate byte: `0x00..=0x7f` deliver, `0x80..` drop,
/// `0x90..` duplicate, `0xa0..=0xbf` delay by 3 ms steps, `0xc0..` flip (`pos u16` follows, the
/// low six bits make the mask).
fn fate(input: &mut Bytes) -> Fate {
    let Some(g) = input.u8() else {
        return Fate::Deliver;
    };
    match g {
        0x00..=0x7f => Fate::Deliver,
        0x80..=0x8f => Fate::Drop,
        0x90..=0x9f => Fate::Duplicate,
        0xa0..=0xbf => Fate::Delay(Duration::from_millis(3 * u64::from(g & 31))),
        _ => Fate::Flip(usize::from(input.u16()), (g << 2) | 1),
    }
}

/// `dgram_session`: see the module docs.
pub fn dgram_session(data: &[u8]) {
    dgram_session_outcome(data);
}

/// [`dgram_session`], returning the network at the end.
///
/// Ops, one byte each then their arguments: `0x00..=0xbf` a step (each datagram sent in it
/// reads its `fate` byte); `0xc0..=0xdf` inject a raw datagram, `0xe0..=0xef` inject a pooled
/// one with `(op >> 2) & 3` edits (bit 0: to the server, bit 1: from a stranger; arguments as
/// in `datagram`); `0xf0..` jump the clock by `(b + 1) << (op & 7)` ms (`b` follows).
pub fn dgram_session_outcome(data: &[u8]) -> Net {
    dgram_session_on(Net::for_session(), data)
}

/// [`dgram_session`] on `net` (a [`Net::for_session`], possibly with other settings).
pub fn dgram_session_on(mut net: Net, data: &[u8]) -> Net {
    let mut input = Bytes(data);
    let mut steps = 0;
    while !input.is_empty() && steps < MAX_INPUT_STEPS {
        steps += 1;
        let op = input.u8().unwrap_or(0);
        match op {
            0x00..=0xbf => net.step(&mut |_| fate(&mut input)),
            0xc0..=0xef => {
                let to_server = op & 1 == 1;
                let mut d = datagram(&net, &mut input, to_server, op >= 0xe0, (op >> 2) & 3);
                if !net.inject(to_server, source(to_server, op & 2 != 0), &mut d) {
                    net.forged_accepted = true;
                }
            }
            _ => {
                let b = u64::from(input.u8().unwrap_or(0));
                net.jump(Duration::from_millis((b + 1) << (op & 7)));
            }
        }
    }
    let done = net.run_until(BUDGET, Net::done);
    if !net.forged_accepted {
        assert!(done, "not over after {BUDGET} steps: {}", net.describe());
    }
    net.check_files(false);
    net
}
