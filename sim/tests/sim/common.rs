//! Toy nodes for the simulator's own tests: a blaster and a sink to observe links, a
//! fixed-window sender and an acker to exercise the driver loop end to end.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use ferry_core::Instant;
use ferry_core::dgram::Transmit;
use ferry_sim::{Budget, Meter, Node, Report, Sim, SimError};

pub(crate) fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 4433))
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// FNV-1a, 64 bits: detects any single flipped bit.
pub(crate) fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `[tag][index u64][filler][fnv64 of the rest]`, `len >= 17` bytes.
pub(crate) fn encode(tag: u8, index: u64, len: usize, out: &mut [u8]) {
    let len = len.max(17);
    out[0] = tag;
    out[1..9].copy_from_slice(&index.to_le_bytes());
    for (i, b) in out[9..len - 8].iter_mut().enumerate() {
        *b = (index as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    let sum = fnv(&out[..len - 8]);
    out[len - 8..len].copy_from_slice(&sum.to_le_bytes());
}

/// `(tag, index)` when the datagram is intact.
pub(crate) fn decode(data: &[u8]) -> Option<(u8, u64)> {
    if data.len() < 17 {
        return None;
    }
    let (body, sum) = data.split_at(data.len() - 8);
    (fnv(body).to_le_bytes() == sum)
        .then(|| (body[0], u64::from_le_bytes(body[1..9].try_into().unwrap())))
}

/// Sends `count` numbered datagrams to `dest`: `per_tick` at once, every `interval`; sizes cycle
/// through `sizes`. With `gso`, each tick's datagrams go out as one batch.
pub(crate) struct Blaster {
    pub(crate) addr: SocketAddr,
    pub(crate) dest: SocketAddr,
    pub(crate) count: u64,
    pub(crate) per_tick: u64,
    pub(crate) interval: Duration,
    pub(crate) sizes: Vec<usize>,
    pub(crate) gso: bool,
    next: u64,
    ready: u64,
    next_tick: Option<Instant>,
    /// `(index, sent at)`.
    pub(crate) sent: Vec<(u64, Instant)>,
}

impl Blaster {
    pub(crate) fn new(
        addr: SocketAddr,
        dest: SocketAddr,
        count: u64,
        per_tick: u64,
        interval: Duration,
    ) -> Self {
        Blaster {
            addr,
            dest,
            count,
            per_tick,
            interval,
            sizes: vec![1200],
            gso: false,
            next: 0,
            ready: per_tick,
            next_tick: None,
            sent: Vec::new(),
        }
    }

    pub(crate) fn sizes(mut self, sizes: &[usize]) -> Self {
        self.sizes = sizes.to_vec();
        self
    }
}

impl Node for Blaster {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, _: Instant, _: SocketAddr, _: &mut [u8]) {}
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.next_tick.is_none() {
            self.next_tick = Some(now + self.interval);
        }
        if self.ready == 0 || self.next >= self.count {
            return None;
        }
        let size = self.sizes[(self.next % self.sizes.len() as u64) as usize];
        let mut n = 0;
        while self.ready > 0 && self.next < self.count && (n == 0 || self.gso) {
            encode(0, self.next, size, &mut buf[n * size..]);
            self.sent.push((self.next, now));
            self.next += 1;
            self.ready -= 1;
            n += 1;
        }
        Some(Transmit {
            destination: self.dest,
            size: n * size,
            segment_size: self.gso.then_some(size),
        })
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.ready = self.per_tick;
        self.next_tick = Some(now + self.interval);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        if self.next < self.count {
            self.next_tick
        } else {
            None
        }
    }
    fn done(&self) -> bool {
        self.next >= self.count
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arrival {
    pub(crate) at: Instant,
    pub(crate) from: SocketAddr,
    pub(crate) len: usize,
    /// `None` when corrupted.
    pub(crate) index: Option<u64>,
}

/// Records every datagram it receives; always done.
pub(crate) struct Sink {
    pub(crate) addr: SocketAddr,
    pub(crate) arrivals: Vec<Arrival>,
}

impl Sink {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Sink {
            addr,
            arrivals: Vec::new(),
        }
    }

    /// Indices received intact, in arrival order.
    pub(crate) fn indices(&self) -> Vec<u64> {
        self.arrivals.iter().filter_map(|a| a.index).collect()
    }

    /// Indices below `count` never received.
    pub(crate) fn missing(&self, count: u64) -> Vec<u64> {
        let mut seen = vec![false; count as usize];
        for i in self.indices() {
            seen[i as usize] = true;
        }
        (0..count).filter(|&i| !seen[i as usize]).collect()
    }
}

impl Node for Sink {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        let index = decode(data).map(|(_, i)| i);
        self.arrivals.push(Arrival {
            at: now,
            from,
            len: data.len(),
            index,
        });
    }
    fn poll_transmit(&mut self, _: Instant, _: &mut [u8]) -> Option<Transmit> {
        None
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> bool {
        true
    }
}

/// Runs until every node is done and nothing is in flight.
pub(crate) fn drain(sim: &mut Sim) -> Result<Report, SimError> {
    sim.run_until(|s| s.all_done() && s.in_flight() == 0, Budget::default())
}

/// A blaster at `addr(1)` and a sink at `addr(2)` over `link` (and a perfect link back).
pub(crate) fn blast(
    seed: u64,
    blaster: Blaster,
    link: ferry_sim::LinkConfig,
) -> (Sim, ferry_sim::Pair) {
    let mut sim = Sim::new(seed);
    let a = sim.add_node(blaster);
    let b = sim.add_node(Sink::new(addr(2)));
    let pair = sim.connect(a, b, link, ferry_sim::LinkConfig::default());
    (sim, pair)
}

const DATA: u8 = 0;
const ACK: u8 = 1;

/// Sends `total` numbered datagrams of `size` bytes with at most `window` unacknowledged, and
/// resends each one `rto` after it was sent until acknowledged (never, with `rto: None`).
pub(crate) struct Sender {
    pub(crate) addr: SocketAddr,
    pub(crate) peer: SocketAddr,
    pub(crate) total: u64,
    pub(crate) window: usize,
    pub(crate) size: usize,
    pub(crate) rto: Option<Duration>,
    next: u64,
    /// Sent and unacknowledged: when, or `None` when queued for resending.
    unacked: BTreeMap<u64, Option<Instant>>,
    resend: VecDeque<u64>,
    pub(crate) acked: u64,
    pub(crate) retransmits: u64,
    pub(crate) acked_bytes: Meter,
}

impl Sender {
    pub(crate) fn new(
        addr: SocketAddr,
        peer: SocketAddr,
        total: u64,
        window: usize,
        rto: Option<Duration>,
    ) -> Self {
        Sender {
            addr,
            peer,
            total,
            window,
            size: 1200,
            rto,
            next: 0,
            unacked: BTreeMap::new(),
            resend: VecDeque::new(),
            acked: 0,
            retransmits: 0,
            acked_bytes: Meter::new(),
        }
    }
}

impl Node for Sender {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, _: SocketAddr, data: &mut [u8]) {
        if let Some((ACK, seq)) = decode(data)
            && self.unacked.remove(&seq).is_some()
        {
            self.resend.retain(|&s| s != seq);
            self.acked += 1;
            self.acked_bytes.record(now, self.acked * self.size as u64);
        }
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let seq = if let Some(seq) = self.resend.pop_front() {
            self.retransmits += 1;
            seq
        } else if self.unacked.len() < self.window && self.next < self.total {
            self.next += 1;
            self.next - 1
        } else {
            return None;
        };
        self.unacked.insert(seq, Some(now));
        encode(DATA, seq, self.size, buf);
        // The total rides in the filler's first bytes.
        buf[9..17].copy_from_slice(&self.total.to_le_bytes());
        let sum = fnv(&buf[..self.size - 8]);
        buf[self.size - 8..self.size].copy_from_slice(&sum.to_le_bytes());
        Some(Transmit {
            destination: self.peer,
            size: self.size,
            segment_size: None,
        })
    }
    fn handle_timeout(&mut self, now: Instant) {
        let Some(rto) = self.rto else { return };
        for (&seq, sent) in self.unacked.iter_mut() {
            if sent.is_some_and(|t| t + rto <= now) {
                *sent = None;
                self.resend.push_back(seq);
            }
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        let rto = self.rto?;
        self.unacked.values().flatten().map(|&t| t + rto).min()
    }
    fn check_invariants(&self, _: Instant) -> Result<(), String> {
        if self.unacked.len() > self.window {
            return Err(format!(
                "{} unacked > window {}",
                self.unacked.len(),
                self.window
            ));
        }
        if self.acked > self.total {
            return Err("acked more than sent".into());
        }
        Ok(())
    }
    fn done(&self) -> bool {
        self.acked == self.total
    }
}

/// One sender's flow as the receiver sees it.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    pub(crate) total: u64,
    pub(crate) received: Vec<bool>,
    pub(crate) distinct: u64,
    pub(crate) duplicates: u64,
    pub(crate) bytes: Meter,
}

/// Acknowledges every intact datagram of every sender; done when `flows` senders are complete.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    pub(crate) flows_expected: usize,
    pub(crate) flows: BTreeMap<SocketAddr, Flow>,
    pub(crate) corrupt: u64,
    acks: VecDeque<(SocketAddr, u64)>,
}

impl Receiver {
    pub(crate) fn new(addr: SocketAddr, flows_expected: usize) -> Self {
        Receiver {
            addr,
            flows_expected,
            flows: BTreeMap::new(),
            corrupt: 0,
            acks: VecDeque::new(),
        }
    }
}

impl Node for Receiver {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        let Some((DATA, seq)) = decode(data) else {
            self.corrupt += 1;
            return;
        };
        let total = u64::from_le_bytes(data[9..17].try_into().unwrap());
        let flow = self.flows.entry(from).or_default();
        flow.total = total;
        flow.received.resize(total as usize, false);
        if std::mem::replace(&mut flow.received[seq as usize], true) {
            flow.duplicates += 1;
        } else {
            flow.distinct += 1;
            flow.bytes.record(now, flow.distinct * data.len() as u64);
        }
        self.acks.push_back((from, seq));
    }
    fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (to, seq) = self.acks.pop_front()?;
        encode(ACK, seq, 40, buf);
        Some(Transmit {
            destination: to,
            size: 40,
            segment_size: None,
        })
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn check_invariants(&self, _: Instant) -> Result<(), String> {
        for (from, flow) in &self.flows {
            if flow.distinct > flow.total {
                return Err(format!(
                    "{from}: {} distinct of {}",
                    flow.distinct, flow.total
                ));
            }
        }
        Ok(())
    }
    fn done(&self) -> bool {
        self.flows.len() == self.flows_expected
            && self.flows.values().all(|f| f.distinct == f.total)
    }
}

/// Sends scripted raw transmits at its first step, then idles.
pub(crate) struct OneShot {
    pub(crate) addr: SocketAddr,
    pub(crate) transmits: VecDeque<(SocketAddr, Vec<u8>, Option<usize>)>,
}

impl Node for OneShot {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, _: Instant, _: SocketAddr, _: &mut [u8]) {}
    fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (destination, data, segment_size) = self.transmits.pop_front()?;
        buf[..data.len()].copy_from_slice(&data);
        Some(Transmit {
            destination,
            size: data.len(),
            segment_size,
        })
    }
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> bool {
        self.transmits.is_empty()
    }
}
