//! The simulated network: nodes, one-way links, routes, the event queue and the driver loop
//! (`shared/research/udp.md` §6.3 point 4).

use std::any::Any;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use ferry_core::Instant;

use crate::fault::Fault;
use crate::link::{Departure, Link, LinkConfig, LinkStats};
use crate::node::{Bottleneck, LinkId, Node, NodeId, Pair};
use crate::report::{Budget, Report, SimError, SimErrorKind};
use crate::trace::{Trace, TraceEvent, TraceKind};

/// Object-safe access to a node and to its concrete type.
trait Slot {
    fn node(&self) -> &dyn Node;
    fn node_mut(&mut self) -> &mut dyn Node;
    fn any(&self) -> &dyn Any;
    fn any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Node + 'static> Slot for T {
    fn node(&self) -> &dyn Node {
        self
    }
    fn node_mut(&mut self) -> &mut dyn Node {
        self
    }
    fn any(&self) -> &dyn Any {
        self
    }
    fn any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

struct NodeSlot {
    node: Box<dyn Slot>,
    addr: SocketAddr,
}

/// A datagram in flight: it leaves hop `hop` of path `path` at `at`.
struct Event {
    at: Instant,
    seq: u64,
    path: usize,
    hop: usize,
    from: NodeId,
    to: NodeId,
    data: Vec<u8>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Most datagrams one node may emit in one step before the run fails as a livelock.
const MAX_TRANSMITS_PER_STEP: u64 = 1_000_000;
/// Size of the buffer given to `poll_transmit` (room for a 64 KiB GSO batch).
const TX_BUF: usize = 1 << 16;
/// Default origin of virtual time: not zero, so nodes cannot rely on it.
pub const DEFAULT_START: Instant = Instant::from_micros(1_000_000_000);

/// A deterministic network of [`Node`]s joined by one-way [`LinkConfig`] links, driven on a
/// virtual clock that jumps from one event to the next.
pub struct Sim {
    seed: u64,
    start: Instant,
    now: Instant,
    steps: u64,
    nodes: Vec<NodeSlot>,
    by_addr: BTreeMap<SocketAddr, NodeId>,
    links: Vec<Link>,
    paths: Vec<Vec<LinkId>>,
    routes: BTreeMap<(NodeId, SocketAddr), usize>,
    events: BinaryHeap<Reverse<Event>>,
    seq: u64,
    unroutable: u64,
    tx_buf: Vec<u8>,
    departures: Vec<Departure>,
    trace: Option<Trace>,
}

impl Sim {
    /// An empty network whose randomness all derives from `seed`, starting at
    /// [`DEFAULT_START`].
    pub fn new(seed: u64) -> Self {
        Sim::with_start(seed, DEFAULT_START)
    }

    /// An empty network starting at `start`.
    pub fn with_start(seed: u64, start: Instant) -> Self {
        Sim {
            seed,
            start,
            now: start,
            steps: 0,
            nodes: Vec::new(),
            by_addr: BTreeMap::new(),
            links: Vec::new(),
            paths: Vec::new(),
            routes: BTreeMap::new(),
            events: BinaryHeap::new(),
            seq: 0,
            unroutable: 0,
            tx_buf: vec![0; TX_BUF],
            departures: Vec::new(),
            trace: crate::trace::from_env(),
        }
    }

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Adds a node. Panics if another node already has its address.
    pub fn add_node<T: Node + 'static>(&mut self, node: T) -> NodeId {
        let id = NodeId(self.nodes.len());
        let addr = node.addr();
        assert!(
            self.by_addr.insert(addr, id).is_none(),
            "two nodes at {addr}"
        );
        self.nodes.push(NodeSlot {
            node: Box::new(node),
            addr,
        });
        id
    }

    /// Adds a one-way link; it carries nothing until a [`route`](Sim::route) uses it. Its
    /// random draws come from its own stream of the seed, so adding links later does not
    /// change the draws of this one.
    pub fn add_link(&mut self, config: LinkConfig) -> LinkId {
        let id = LinkId(self.links.len());
        self.links.push(Link::new(config, self.seed, id.0 as u64));
        id
    }

    /// Datagrams from `from` to `to` cross `path`, one link after the other (replacing any
    /// previous route).
    pub fn route(&mut self, from: NodeId, to: NodeId, path: &[LinkId]) {
        assert!(!path.is_empty(), "a route needs at least one link");
        self.paths.push(path.to_vec());
        self.routes
            .insert((from, self.nodes[to.0].addr), self.paths.len() - 1);
    }

    /// Joins `a` and `b` by a link each way.
    pub fn connect(&mut self, a: NodeId, b: NodeId, ab: LinkConfig, ba: LinkConfig) -> Pair {
        let (l_ab, l_ba) = (self.add_link(ab), self.add_link(ba));
        self.route(a, b, &[l_ab]);
        self.route(b, a, &[l_ba]);
        Pair {
            a,
            b,
            ab: l_ab,
            ba: l_ba,
        }
    }

    /// Joins every client to `server` through one shared link each way: the clients' flows
    /// compete for the same queue and rate.
    pub fn share_bottleneck(
        &mut self,
        clients: &[NodeId],
        server: NodeId,
        up: LinkConfig,
        down: LinkConfig,
    ) -> Bottleneck {
        let (up, down) = (self.add_link(up), self.add_link(down));
        for &c in clients {
            self.route(c, server, &[up]);
            self.route(server, c, &[down]);
        }
        Bottleneck { up, down }
    }

    /// Calls `hook` for every datagram offered to, delivered by or dropped by a link
    /// (replacing the stderr trace `FERRY_SIM_TRACE` installs).
    pub fn set_trace(&mut self, hook: impl FnMut(&TraceEvent<'_>) + 'static) {
        self.trace = Some(Box::new(hook));
    }

    /// Attaches a scripted fault to `link`.
    pub fn fault(&mut self, link: LinkId, fault: Fault) {
        self.links[link.0].faults.push(fault);
    }

    /// The model of `link`, to change it between runs.
    pub fn link_config_mut(&mut self, link: LinkId) -> &mut LinkConfig {
        &mut self.links[link.0].config
    }

    /// The counters of `link`.
    pub fn stats(&self, link: LinkId) -> &LinkStats {
        &self.links[link.0].stats
    }

    /// The node `id` as its concrete type. Panics if it is not a `T`.
    pub fn node<T: Node + 'static>(&self, id: NodeId) -> &T {
        self.nodes[id.0]
            .node
            .any()
            .downcast_ref()
            .expect("node of another type")
    }

    /// The node `id` as its concrete type, mutably. Panics if it is not a `T`.
    pub fn node_mut<T: Node + 'static>(&mut self, id: NodeId) -> &mut T {
        self.nodes[id.0]
            .node
            .any_mut()
            .downcast_mut()
            .expect("node of another type")
    }

    /// The node `id` through the [`Node`] trait.
    pub fn node_dyn(&self, id: NodeId) -> &dyn Node {
        self.nodes[id.0].node.node()
    }

    /// Whether there are nodes and every one is [`done`](Node::done).
    pub fn all_done(&self) -> bool {
        !self.nodes.is_empty() && self.nodes.iter().all(|n| n.node.node().done())
    }

    /// Datagrams in flight on some link.
    pub fn in_flight(&self) -> usize {
        self.events.len()
    }

    /// The counters so far.
    pub fn report(&self) -> Report {
        Report {
            seed: self.seed,
            now: self.now,
            elapsed: self.elapsed(),
            steps: self.steps,
            links: self.links.iter().map(|l| l.stats.clone()).collect(),
            unroutable: self.unroutable,
        }
    }

    /// Runs until every node is [`done`](Node::done).
    pub fn run(&mut self, budget: Budget) -> Result<Report, SimError> {
        self.run_until(|sim| sim.all_done(), budget)
    }

    /// Runs until `stop` (asked after every step) returns true. Fails on a deadlock (nothing
    /// scheduled), a livelock (step budget, or time not advancing), the virtual-time budget,
    /// or a broken invariant.
    pub fn run_until(
        &mut self,
        mut stop: impl FnMut(&Sim) -> bool,
        budget: Budget,
    ) -> Result<Report, SimError> {
        let deadline = self.now + budget.max_virtual;
        let (mut steps, mut same) = (0u64, 0u64);
        loop {
            self.step()?;
            steps += 1;
            if stop(self) {
                return Ok(self.report());
            }
            let Some(next) = self.next_wakeup() else {
                return Err(self.error(SimErrorKind::Deadlock));
            };
            if next > deadline {
                return Err(self.error(SimErrorKind::TimeBudget));
            }
            self.advance(next, steps, &mut same, budget)?;
        }
    }

    /// Runs for `duration` of virtual time (an idle network just lets time pass), then stops
    /// at exactly `now + duration`.
    pub fn run_for(&mut self, duration: Duration, budget: Budget) -> Result<Report, SimError> {
        let end = self.now + duration;
        let (mut steps, mut same) = (0u64, 0u64);
        loop {
            self.step()?;
            steps += 1;
            match self.next_wakeup() {
                Some(next) if next <= end => self.advance(next, steps, &mut same, budget)?,
                _ => {
                    self.now = end;
                    return Ok(self.report());
                }
            }
        }
    }

    fn advance(
        &mut self,
        next: Instant,
        steps: u64,
        same: &mut u64,
        budget: Budget,
    ) -> Result<(), SimError> {
        if steps >= budget.max_steps {
            let why = format!("step budget of {} exhausted", budget.max_steps);
            return Err(self.error(SimErrorKind::Livelock(why)));
        }
        if next <= self.now {
            *same += 1;
            if *same >= budget.max_same_instant {
                let why = format!("{} steps without virtual time advancing", *same);
                return Err(self.error(SimErrorKind::Livelock(why)));
            }
        } else {
            *same = 0;
            self.now = next;
        }
        Ok(())
    }

    /// The earliest datagram arrival or node timer.
    fn next_wakeup(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .iter()
            .filter_map(|n| n.node.node().poll_timeout());
        timers.chain(self.events.peek().map(|e| e.0.at)).min()
    }

    fn error(&self, kind: SimErrorKind) -> SimError {
        SimError {
            kind,
            seed: self.seed,
            now: self.now,
            elapsed: self.elapsed(),
            steps: self.steps,
        }
    }

    fn invariant(&self, node: usize, message: String) -> SimError {
        self.error(SimErrorKind::Invariant {
            node: NodeId(node),
            message,
        })
    }

    /// One step at `now`: deliver what is due, fire due timers, drain every node's output into
    /// its links, then check invariants.
    fn step(&mut self) -> Result<(), SimError> {
        self.steps += 1;
        let now = self.now;
        while self.events.peek().is_some_and(|e| e.0.at <= now) {
            let Some(Reverse(ev)) = self.events.pop() else {
                break;
            };
            let link_id = self.paths[ev.path][ev.hop];
            let link = &mut self.links[link_id.0];
            link.stats.delivered += 1;
            link.stats.bytes_delivered += ev.data.len() as u64;
            self.emit(link_id, ev.from, ev.to, TraceKind::Delivered, &ev.data);
            if ev.hop + 1 < self.paths[ev.path].len() {
                self.offer(ev.path, ev.hop + 1, ev.from, ev.to, ev.data);
            } else {
                let from = self.nodes[ev.from.0].addr;
                let mut data = ev.data;
                self.nodes[ev.to.0]
                    .node
                    .node_mut()
                    .handle_datagram(now, from, &mut data);
            }
        }
        for slot in &mut self.nodes {
            let node = slot.node.node_mut();
            if node.poll_timeout().is_some_and(|t| t <= now) {
                node.handle_timeout(now);
            }
        }
        for i in 0..self.nodes.len() {
            self.drain(i)?;
        }
        for (i, slot) in self.nodes.iter().enumerate() {
            let node = slot.node.node();
            if let Err(message) = node.check_invariants(now) {
                return Err(self.invariant(i, message));
            }
            if let Some(t) = node.poll_timeout().filter(|&t| t < now) {
                let late = now - t;
                return Err(self.invariant(i, format!("timer set {late:?} in the past")));
            }
        }
        Ok(())
    }

    /// Moves every datagram node `i` has to send into the first link of its route.
    fn drain(&mut self, i: usize) -> Result<(), SimError> {
        let mut buf = std::mem::take(&mut self.tx_buf);
        let result = self.drain_into(i, &mut buf);
        self.tx_buf = buf;
        result
    }

    fn drain_into(&mut self, i: usize, buf: &mut [u8]) -> Result<(), SimError> {
        let now = self.now;
        let mut count = 0u64;
        while let Some(t) = self.nodes[i].node.node_mut().poll_transmit(now, buf) {
            count += 1;
            if count > MAX_TRANSMITS_PER_STEP {
                let why = format!("node {i} sent {MAX_TRANSMITS_PER_STEP} transmits in one step");
                return Err(self.error(SimErrorKind::Livelock(why)));
            }
            if t.size > buf.len() {
                let msg = format!(
                    "transmit of {} bytes from a {}-byte buffer",
                    t.size,
                    buf.len()
                );
                return Err(self.invariant(i, msg));
            }
            if t.segment_size == Some(0) {
                return Err(self.invariant(i, "segment_size of 0".into()));
            }
            let data = &buf[..t.size];
            let segments = data
                .len()
                .div_ceil(t.segment_size.unwrap_or(t.size).max(1))
                .max(1);
            let Some(&path) = self.routes.get(&(NodeId(i), t.destination)) else {
                self.unroutable += segments as u64;
                continue;
            };
            let to = self.by_addr[&t.destination];
            if data.is_empty() {
                self.offer(path, 0, NodeId(i), to, Vec::new());
            }
            for chunk in data.chunks(t.segment_size.unwrap_or(t.size).max(1)) {
                self.offer(path, 0, NodeId(i), to, chunk.to_vec());
            }
        }
        Ok(())
    }

    /// Offers `data` to hop `hop` of `path` now and schedules what comes out of it.
    fn offer(&mut self, path: usize, hop: usize, from: NodeId, to: NodeId, data: Vec<u8>) {
        let link = self.paths[path][hop];
        let elapsed = self.now - self.start;
        let copy = self.trace.is_some().then(|| data.clone());
        if let Some(copy) = &copy {
            self.emit(link, from, to, TraceKind::Sent, copy);
        }
        let dropped = self.links[link.0].offer(self.now, elapsed, data, &mut self.departures);
        if let (Some(reason), Some(copy)) = (dropped, &copy) {
            self.emit(link, from, to, TraceKind::Dropped(reason), copy);
        }
        for d in self.departures.drain(..) {
            let ev = Event {
                at: d.at,
                seq: self.seq,
                path,
                hop,
                from,
                to,
                data: d.data,
            };
            self.seq += 1;
            self.events.push(Reverse(ev));
        }
    }

    fn emit(&mut self, link: LinkId, from: NodeId, to: NodeId, kind: TraceKind, data: &[u8]) {
        if let Some(trace) = &mut self.trace {
            let (at, elapsed) = (self.now, self.now - self.start);
            trace(&TraceEvent {
                at,
                elapsed,
                link,
                from,
                to,
                kind,
                data,
            });
        }
    }
}
