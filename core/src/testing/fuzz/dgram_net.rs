//! The in-memory network of the datagram targets: a [`DgramClient`] and a [`DgramServer`] with
//! fixed seeds and small file transfers both ways, joined by a wire with a fixed latency whose
//! faults the fuzz input picks, on a virtual clock. Every datagram sent is kept (the pool) so
//! inputs can inject a genuine datagram of this very session, edited: under the null AEAD of
//! fuzz builds any edit outside the tag still authenticates, under AES-256-GCM none does.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use super::handshake::file;
use crate::dgram::TransportConfig;
use crate::testing::dgram::{DgramClient, DgramServer};
use crate::testing::{MemApp, START, test_psk};
use crate::{Config, Event, Instant};

/// The client's address.
pub const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);
/// The server's address.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 4433);
/// Somebody else (an off-path attacker); what is sent to it is lost.
pub const STRANGER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 666);
/// The file the client sends.
pub const UP: &str = "up.bin";
/// The file the client gets from the server.
pub const DOWN: &str = "down.bin";
/// One-way latency of the wire.
const LATENCY: Duration = Duration::from_millis(10);

/// What the wire does to one datagram.
pub enum Fate {
    /// Delivered after the latency.
    Deliver,
    /// Lost.
    Drop,
    /// Delivered twice, 1 ms apart.
    Duplicate,
    /// Delivered this much later than the latency (reordered).
    Delay(Duration),
    /// These bytes are XORed (position modulo the length, non-zero mask) and it is delivered.
    Flip(usize, u8),
}

/// A datagram in flight: due time, order, direction, bytes, whether the input changed it.
struct Wired {
    at: Instant,
    seq: u64,
    to_server: bool,
    bytes: Vec<u8>,
    forged: bool,
}

/// The two ends and the wire between them.
pub struct Net {
    /// The client end (sends [`UP`], gets [`DOWN`], then closes).
    pub client: DgramClient,
    /// The server end (holds [`DOWN`]).
    pub server: DgramServer,
    /// The virtual clock.
    pub now: Instant,
    wire: Vec<Wired>,
    seq: u64,
    /// Every datagram sent, as sent: (to the server?, bytes).
    pub pool: Vec<(bool, Vec<u8>)>,
    /// A datagram the input forged or changed was accepted by an end (not dropped).
    pub forged_accepted: bool,
    sizes: (usize, usize),
    buf: Vec<u8>,
    /// Run both ends' timeouts and check after every clock move, due or not (as before
    /// [`Net::fire_timers`] skipped the idle ones; a test compares the two).
    pub eager_timers: bool,
}

impl Net {
    /// The fixed session of `dgram_datagram`, before anything was sent: small files (a few
    /// packets each way), so that executions are fast.
    pub fn new() -> Net {
        Net::with_sizes(4_000, 1_500)
    }

    /// The fixed session of `dgram_session`: big enough to fill the initial congestion window
    /// and keep loss recovery busy.
    pub fn for_session() -> Net {
        Net::with_sizes(40_000, 6_000)
    }

    /// The fixed session with [`UP`] of `up` bytes and [`DOWN`] of `down` bytes.
    pub fn with_sizes(up: usize, down: usize) -> Net {
        let config = Config::default();
        let transport = TransportConfig::default();
        let psk = test_psk();
        let mut client_app = MemApp::new().with_file(UP, file(1, up));
        client_app.to_send.push_back(String::from(UP));
        client_app.to_get.push_back(String::from(DOWN));
        client_app.close_when_done = true;
        let server_app = MemApp::new().with_file(DOWN, file(3, down));
        Net {
            client: DgramClient::new(
                &config, &transport, &psk, [0xC1; 32], START, CLIENT, SERVER, client_app,
            ),
            server: DgramServer::new(&config, &transport, &psk, [0x5E; 32], 4, SERVER, server_app),
            now: START,
            wire: Vec::new(),
            seq: 0,
            pool: Vec::new(),
            forged_accepted: false,
            sizes: (up, down),
            buf: vec![0; 1452 * 64],
            eager_timers: false,
        }
    }

    /// Put everything both ends want to send on the wire, each datagram meeting `fate`.
    pub fn flush(&mut self, fate: &mut dyn FnMut(&[u8]) -> Fate) {
        while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
            let to_peer = t.destination == SERVER;
            self.wire_out(true, to_peer, t.size, t.segment_size, fate);
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut self.buf) {
            let to_peer = t.destination == CLIENT;
            self.wire_out(false, to_peer, t.size, t.segment_size, fate);
        }
        self.check();
    }

    fn wire_out(
        &mut self,
        to_server: bool,
        to_peer: bool,
        size: usize,
        segment: Option<usize>,
        fate: &mut dyn FnMut(&[u8]) -> Fate,
    ) {
        assert!(
            size <= self.buf.len(),
            "transmit of {size} bytes beyond the buffer"
        );
        let seg = segment.unwrap_or(size).max(1);
        let chunks: Vec<Vec<u8>> = self.buf[..size].chunks(seg).map(<[u8]>::to_vec).collect();
        for mut d in chunks {
            assert!(
                d.len() <= usize::from(crate::dgram::MAX_MTU),
                "datagram of {} bytes",
                d.len()
            );
            self.pool.push((to_server, d.clone()));
            if !to_peer {
                continue;
            }
            let mut at = self.now + LATENCY;
            let mut forged = false;
            match fate(&d) {
                Fate::Deliver => {}
                Fate::Drop => continue,
                Fate::Duplicate => {
                    self.push(at + Duration::from_millis(1), to_server, d.clone(), false)
                }
                Fate::Delay(by) => at = at + by,
                Fate::Flip(pos, mask) => {
                    if !d.is_empty() {
                        let n = d.len();
                        d[pos % n] ^= mask.max(1);
                        forged = true;
                    }
                }
            }
            self.push(at, to_server, d, forged);
        }
    }

    fn push(&mut self, at: Instant, to_server: bool, bytes: Vec<u8>, forged: bool) {
        self.wire.push(Wired {
            at,
            seq: self.seq,
            to_server,
            bytes,
            forged,
        });
        self.seq += 1;
    }

    /// Both ends' invariants, and no deadline before now.
    pub fn check(&self) {
        if let Err(e) = self.client.check_invariants() {
            panic!("client invariant: {e} ({})", self.describe());
        }
        if let Err(e) = self.server.check_invariants() {
            panic!("server invariant: {e} ({})", self.describe());
        }
        for t in [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
        {
            assert!(
                t >= self.now,
                "a deadline in the past: {t:?} < {:?}",
                self.now
            );
        }
    }

    /// Hand `data` to one end as if it came from `from`; whether that end dropped it.
    pub fn inject(&mut self, to_server: bool, from: SocketAddr, data: &mut [u8]) -> bool {
        let dropped = if to_server {
            let before = self.server_drops();
            self.server.handle_datagram(self.now, from, data);
            self.server_drops() == before + 1
        } else {
            let before = self.client.conn.stats().dropped;
            self.client.handle_datagram(self.now, from, data);
            self.client.conn.stats().dropped == before + 1
        };
        self.check();
        dropped
    }

    /// Datagrams the server dropped so far (endpoint and connections).
    fn server_drops(&self) -> u64 {
        let e = self.server.endpoint.stats();
        let live = self.server.conns.values().map(|(c, _)| c.stats().dropped);
        let gone = self
            .server
            .finished
            .iter()
            .map(|(_, c, _)| c.stats().dropped);
        e.dropped_header + e.dropped_auth + live.chain(gone).sum::<u64>()
    }

    /// Deliver what is due; whether anything was.
    pub fn deliver_due(&mut self) -> bool {
        self.wire.sort_by_key(|w| (w.at, w.seq));
        let n = self.wire.iter().take_while(|w| w.at <= self.now).count();
        let due: Vec<Wired> = self.wire.drain(..n).collect();
        for mut w in due {
            let from = if w.to_server { CLIENT } else { SERVER };
            let dropped = self.inject(w.to_server, from, &mut w.bytes);
            if w.forged && !dropped {
                self.forged_accepted = true;
            }
        }
        n > 0
    }

    /// Fire the timers that are due, then check both ends (unless no timer was due: then no
    /// end ran and every deadline is still after now).
    pub fn fire_timers(&mut self) {
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= self.now);
        let client_due = due(self.client.poll_timeout());
        let server_due = due(self.server.poll_timeout()) || self.eager_timers;
        if client_due {
            self.client.handle_timeout(self.now);
        }
        if server_due {
            self.server.handle_timeout(self.now);
        }
        if client_due || server_due {
            self.check();
        }
    }

    /// Move the clock by `by` and fire what fell due.
    pub fn jump(&mut self, by: Duration) {
        self.now = self.now + by;
        self.fire_timers();
    }

    /// One step: send everything, then deliver what is due or else jump to the next event.
    pub fn step(&mut self, fate: &mut dyn FnMut(&[u8]) -> Fate) {
        self.flush(fate);
        if self.deliver_due() {
            return;
        }
        let next = [
            self.wire.iter().map(|w| w.at).min(),
            self.client.poll_timeout(),
            self.server.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(t) = next {
            self.now = self.now.max(t);
        }
        self.fire_timers();
    }

    /// What the ends wait for (for failure messages).
    pub fn describe(&self) -> String {
        let mut s = alloc::format!(
            "now {:?}, {} in flight, client: {}",
            self.now,
            self.wire.len(),
            self.client.conn._internal_timers()
        );
        for (c, _) in self.server.conns.values() {
            s.push_str(&alloc::format!("; server: {}", c._internal_timers()));
        }
        s
    }

    /// Both sessions are over and both connections drained (a server that never accepted
    /// the client has nothing to drain).
    pub fn done(&self) -> bool {
        self.client.conn.is_drained() && self.server.conns.is_empty()
    }

    /// Step on a faultless wire until `until` holds or `budget` steps ran; whether it held.
    pub fn run_until(&mut self, budget: usize, until: impl Fn(&Net) -> bool) -> bool {
        for _ in 0..budget {
            if until(self) {
                return true;
            }
            self.step(&mut |_| Fate::Deliver);
        }
        until(self)
    }

    /// Files committed on either side hold exactly what was sent; with `complete`, both
    /// sessions ended cleanly and both files arrived.
    pub fn check_files(&self, complete: bool) {
        let up = file(1, self.sizes.0);
        let down = file(3, self.sizes.1);
        if let Some(got) = self.client.app.files.get(DOWN) {
            assert!(*got == down, "the client committed a different {}", DOWN);
        }
        let mut server_got_up = false;
        for (_, _, app) in &self.server.finished {
            if let Some(got) = app.files.get(UP) {
                assert!(*got == up, "the server committed a different {}", UP);
                server_got_up = true;
            }
        }
        if complete {
            let clean = |app: &MemApp| app.log.contains(&Event::Closed { result: Ok(()) });
            assert!(
                clean(&self.client.app),
                "client did not close cleanly: {:?}",
                self.client.app.log
            );
            assert!(
                self.server.finished.iter().any(|(_, _, a)| clean(a)),
                "server did not close cleanly"
            );
            assert!(
                self.client.app.files.contains_key(DOWN),
                "{} not received",
                DOWN
            );
            assert!(server_got_up, "{} not received", UP);
        }
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}
