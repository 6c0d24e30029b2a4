//! A sender that shares its CPU: every `period` it is descheduled for `off` (it neither
//! reads, sends nor runs its timers; datagrams wait in its socket buffer). On a machine with
//! more busy processes than cores (the sender, the receiver and a relay on two), each is
//! off for a few milliseconds at a time, far longer than the pacer's 2 ms burst. A paced
//! sender that drops the pacing credit it could not use while off sends below its own
//! pacing rate; BBR's rate samples then measure that lower rate, its bandwidth estimate (a
//! maximum of those samples) follows it down, and it paces lower still.

use std::net::SocketAddr;
use std::time::Duration;

use ferry_core::dgram::{CongestionControl, Transmit, TransportConfig};
use ferry_core::{Config, Instant};
use ferry_sim::{Budget, LinkConfig, Node, Sim, seed_or};

const MBIT: u64 = 1_000_000;

use crate::nodes::{Client, Server, data, ms, sender};
use crate::throughput::link;

/// `inner`, descheduled for `off` at the start of every `period` (from `start + phase`).
pub(crate) struct Stalling<N> {
    pub(crate) inner: N,
    start: Instant,
    period: Duration,
    off: Duration,
    /// Datagrams that arrived while off, in order.
    queued: Vec<(SocketAddr, Vec<u8>)>,
    /// The latest `now` seen.
    now: Instant,
}

impl<N: Node> Stalling<N> {
    pub(crate) fn new(inner: N, start: Instant, period: Duration, off: Duration) -> Self {
        assert!(off < period);
        Stalling {
            inner,
            start,
            period,
            off,
            queued: Vec::new(),
            now: start,
        }
    }

    /// When the stall that `t` falls in ends, or `None` when `t` is not in one.
    fn stall_end(&self, t: Instant) -> Option<Instant> {
        if t < self.start {
            return None;
        }
        let since = t - self.start;
        let phase = Duration::from_nanos((since.as_nanos() % self.period.as_nanos()) as u64);
        (phase < self.off).then(|| t + (self.off - phase))
    }

    /// Back on: read what waited in the socket buffer.
    fn wake(&mut self, now: Instant) -> bool {
        self.now = self.now.max(now);
        if self.stall_end(now).is_some() {
            return false;
        }
        for (from, mut d) in std::mem::take(&mut self.queued) {
            self.inner.handle_datagram(now, from, &mut d);
        }
        true
    }
}

impl<N: Node> Node for Stalling<N> {
    fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        if self.wake(now) {
            self.inner.handle_datagram(now, from, data);
        } else {
            self.queued.push((from, data.to_vec()));
        }
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.wake(now) {
            self.inner.poll_transmit(now, buf)
        } else {
            None
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.wake(now) && self.inner.poll_timeout().is_some_and(|t| t <= now) {
            self.inner.handle_timeout(now);
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        // A timer due while off fires when the stall ends; the node wakes then anyway (to
        // read queued datagrams and send what it could not).
        let timer = self
            .inner
            .poll_timeout()
            .map(|t| self.stall_end(t).unwrap_or(t));
        timer.into_iter().chain(self.stall_end(self.now)).min()
    }
    fn check_invariants(&self, now: Instant) -> Result<(), String> {
        self.inner.check_invariants(now)
    }
    fn done(&self) -> bool {
        self.inner.done()
    }
}

/// Goodput (bits per second, from 1 s after the start to the last byte) of one `size`-byte
/// transfer by a sender off for `off` of every `period`, with GSO batches of 64 datagrams
/// (as the UDP loops use).
pub(crate) fn stalled_flow(
    seed: u64,
    cc: CongestionControl,
    size: usize,
    l: LinkConfig,
    period: Duration,
    off: Duration,
) -> f64 {
    let mut transport = TransportConfig::default();
    transport.congestion = cc;
    transport.max_batch = 64;
    let mut sim = Sim::new(seed);
    let start = sim.now();
    let files = vec![("big".to_string(), data(seed, size))];
    let client = Client::new(
        &Config::default(),
        &transport,
        seed,
        0,
        start,
        sender(&files),
    );
    let client = sim.add_node(Stalling::new(client, start, period, off));
    let server = sim.add_node(Server::new(&Config::default(), &transport, seed, 1));
    sim.connect(client, server, l.clone(), l);
    sim.run(Budget::virtual_time(Duration::from_secs(120)))
        .unwrap();
    assert!(sim.node::<Stalling<Client>>(client).inner.delivered_all());
    let m = &sim.node::<Server>(server).received;
    let end = m
        .samples()
        .iter()
        .find(|s| s.1 >= size as u64)
        .expect("all bytes arrived")
        .0;
    let st = sim.node::<Stalling<Client>>(client).inner.stats();
    let goodput = m.rate_bps(start + ms(1000), end);
    eprintln!(
        "  {cc:?}, sender off {off:?} of every {period:?}: goodput {:.1} Mbit/s after 1 s, lost {}, retransmitted {} bytes, cwnd {}",
        goodput / 1e6,
        st.packets_lost,
        st.stream_bytes_retransmitted,
        st.cwnd
    );
    goodput
}

/// BBR keeps a 1 Gbit/s, 20 ms path full, clean and at 1 % loss, while its sender is off
/// for 6 ms of every 12 (half its time, as on a machine with more busy processes than
/// cores). Before the pacer kept the tokens of a late wake-up, the bucket's 2 ms burst was
/// all a sender back from a stall could send: it sent at about 2/3 of its pacing rate, BBR
/// measured that as the bandwidth and paced lower each round (a 2 Gbit/s path: 51 Mbit/s).
#[test]
fn bbr_keeps_the_path_full_when_its_sender_is_descheduled() {
    for (loss, floor) in [(0.0, 900e6), (0.01, 850e6)] {
        let goodput = stalled_flow(
            seed_or(1),
            CongestionControl::Bbr,
            200 << 20,
            link(1000 * MBIT, ms(20), loss),
            ms(12),
            ms(6),
        );
        assert!(goodput >= floor, "loss {loss}: {:.1} Mbit/s", goodput / 1e6);
    }
}
