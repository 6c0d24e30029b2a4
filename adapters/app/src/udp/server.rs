//! A server socket's state: the core's endpoint and every connection it accepted, each with
//! its own agent answering from the store.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_disk::Store;
use proto::Instant;
use proto::dgram::{ConnHandle, DatagramEvent, Endpoint, Transmit};

use super::UdpConn;
use crate::agent::{Agent, Observer};
use crate::host::Clock;
use crate::pool::{CommitPool, Notify};

/// Makes the observer of each new connection's agent.
pub type ObserverFactory = Box<dyn FnMut(SocketAddr) -> Box<dyn Observer> + Send>;

/// A datagram server: see the module docs of [`crate::udp`].
pub struct UdpServer {
    endpoint: Endpoint,
    conns: BTreeMap<ConnHandle, UdpConn>,
    store: Arc<dyn Store>,
    observers: ObserverFactory,
    pool: Option<(CommitPool, Notify)>,
    clock: Clock,
    /// Busy refusals to send (the endpoint keeps no state for them).
    responses: VecDeque<(Transmit, Vec<u8>)>,
    /// Connections that may have something to do or send, in turn order (each once).
    ready: VecDeque<ConnHandle>,
    queued: BTreeSet<ConnHandle>,
    /// Each connection's deadline as last scheduled, and a heap of them (entries that no
    /// longer match `scheduled` are stale and skipped): no scan of every connection per wake.
    scheduled: BTreeMap<ConnHandle, Instant>,
    timers: BinaryHeap<Reverse<(Instant, ConnHandle)>>,
    scratch: Vec<u8>,
}

impl UdpServer {
    /// A server over `endpoint`, answering from `store`. With `pool`, received files are made
    /// durable (and disk walks and hashes run) on the pool's threads, so the loop never waits
    /// for the disk; `notify` wakes the loop when such work is done.
    pub fn new(
        endpoint: Endpoint,
        store: Arc<dyn Store>,
        observers: ObserverFactory,
        pool: Option<(CommitPool, Notify)>,
        clock: Clock,
    ) -> Self {
        UdpServer {
            endpoint,
            conns: BTreeMap::new(),
            store,
            observers,
            pool,
            clock,
            responses: VecDeque::new(),
            ready: VecDeque::new(),
            queued: BTreeSet::new(),
            scheduled: BTreeMap::new(),
            timers: BinaryHeap::new(),
            scratch: vec![0; proto::dgram::MAX_MTU.into()],
        }
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A datagram arrived from `from`.
    pub fn handle_datagram(&mut self, from: SocketAddr, data: &mut [u8]) {
        let now = self.clock.now();
        match self.endpoint.handle(now, from, data, &mut self.scratch) {
            DatagramEvent::Known(h) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    c.handle_datagram(from, data);
                    self.wake(h);
                    self.after_turn(h);
                }
            }
            DatagramEvent::New(h, conn) => {
                let mut agent = Agent::server(self.store.clone(), (self.observers)(from));
                if let Some((pool, notify)) = &self.pool {
                    agent.use_commit_pool(pool.clone(), notify.clone());
                }
                tracing::debug!(peer = %from, "new datagram connection");
                self.conns.insert(h, UdpConn::new(*conn, agent, self.clock));
                self.wake(h);
            }
            DatagramEvent::Respond(t) => {
                self.responses
                    .push_back((t, self.scratch[..t.size].to_vec()));
            }
            DatagramEvent::Dropped => {}
        }
    }

    /// Queue `h` for a turn (once).
    fn wake(&mut self, h: ConnHandle) {
        if self.queued.insert(h) {
            self.ready.push_back(h);
        }
    }

    /// Pool work finished somewhere (the `notify` of [`UdpServer::new`] ran): every
    /// connection gets a turn.
    pub fn wake_all(&mut self) {
        let all: Vec<ConnHandle> = self.conns.keys().copied().collect();
        for h in all {
            self.wake(h);
        }
    }

    /// Fire due timers (those connections get a turn) and forget ended connections.
    pub fn step(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((at, h))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.scheduled.get(&h) == Some(&at) {
                self.scheduled.remove(&h);
                self.wake(h);
            }
        }
    }

    /// After a connection's turn: forget it if it ended, else (re)schedule its deadline.
    fn after_turn(&mut self, h: ConnHandle) {
        let Some(c) = self.conns.get(&h) else {
            return;
        };
        if c.connection().is_drained() {
            let c = self.conns.remove(&h).expect("just looked up");
            self.scheduled.remove(&h);
            self.endpoint.forget(h);
            let (_agent, result) = c.finish(None);
            if let Err(e) = result {
                tracing::debug!(error = %e, "datagram connection ended");
            }
            return;
        }
        match c.deadline() {
            Some(at) if self.scheduled.get(&h) != Some(&at) => {
                self.scheduled.insert(h, at);
                self.timers.push(Reverse((at, h)));
            }
            Some(_) => {}
            None => {
                self.scheduled.remove(&h);
            }
        }
    }

    /// The next datagram (or GSO batch) to send; drain until `None`. Connections with work
    /// take turns: each turn lets the agent act (bounded file work), then takes one transmit.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((t, bytes)) = self.responses.pop_front() {
            buf[..bytes.len()].copy_from_slice(&bytes);
            return Some(t);
        }
        let now = self.clock.now();
        while let Some(h) = self.ready.pop_front() {
            self.queued.remove(&h);
            let Some(c) = self.conns.get_mut(&h) else {
                continue;
            };
            let acted = c.step_at(now);
            let sent = c.poll_transmit(buf);
            self.after_turn(h);
            if let Some(t) = sent {
                // It may have more: back of the queue, so others get their turn.
                self.wake(h);
                return Some(t);
            }
            if acted && self.conns.contains_key(&h) {
                self.wake(h);
            }
        }
        None
    }

    /// When the earliest connection timer is due (or now, when a connection waits for its
    /// turn).
    pub fn deadline(&self) -> Option<Instant> {
        if !self.ready.is_empty() || !self.responses.is_empty() {
            return Some(self.clock.now());
        }
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// How long from now until [`UdpServer::deadline`], if any.
    pub fn until_deadline(&self) -> Option<Duration> {
        self.deadline().map(|at| self.clock.until(at))
    }
}
