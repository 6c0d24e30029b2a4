//! Datagram ends for simulations: a client [`Connection`] or a server [`Endpoint`] with its
//! connections, each session driven by a [`MemApp`] following the driving contract. A network
//! simulator (the `ferry-sim` crate) moves their datagrams.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::MemApp;
use crate::dgram::{ConnHandle, Connection, DatagramEvent, Endpoint, Transmit, TransportConfig};
use crate::{Config, Instant, Psk};

/// Pump the application, then transmit; pump again when the connection fed the session
/// more (events appear while `poll_transmit` hands buffered input to the session).
fn transmit(
    conn: &mut Connection,
    app: &mut MemApp,
    now: Instant,
    buf: &mut [u8],
) -> Option<Transmit> {
    loop {
        app.pump(conn.session_mut());
        if let Some(t) = conn.poll_transmit(now, buf) {
            return Some(t);
        }
        if !app.pump(conn.session_mut()) {
            return None;
        }
    }
}

/// A client end.
pub struct DgramClient {
    /// The connection.
    pub conn: Connection,
    /// Its application.
    pub app: MemApp,
    addr: SocketAddr,
}

impl DgramClient {
    /// A client at `addr` connecting to `server`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        transport: &TransportConfig,
        psk: &Psk,
        seed: [u8; 32],
        now: Instant,
        addr: SocketAddr,
        server: SocketAddr,
        app: MemApp,
    ) -> Self {
        DgramClient {
            conn: Connection::client(config, transport, psk, seed, now, server),
            app,
            addr,
        }
    }

    /// This end's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A datagram arrived.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        self.conn.handle_datagram(now, from, data);
        self.app.pump(self.conn.session_mut());
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        transmit(&mut self.conn, &mut self.app, now, buf)
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
        self.app.pump(self.conn.session_mut());
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// The transport's invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.conn._internal_check_invariants()
    }

    /// The session is over (cleanly or not).
    pub fn done(&self) -> bool {
        self.conn.session().is_closed()
    }
}

/// A server end: an endpoint and every connection it accepted, each with its own copy of
/// the template application.
pub struct DgramServer {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Live connections and their applications.
    pub conns: BTreeMap<ConnHandle, (Connection, MemApp)>,
    /// Applications of connections that ended (their results, in order of ending).
    pub finished: Vec<(ConnHandle, Connection, MemApp)>,
    template: MemApp,
    addr: SocketAddr,
    responses: VecDeque<(Transmit, Vec<u8>)>,
    next_turn: u64,
    scratch: Vec<u8>,
}

impl DgramServer {
    /// A server at `addr`; `template` is cloned for every new connection (its `files`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        transport: &TransportConfig,
        psk: &Psk,
        seed: [u8; 32],
        max_connections: usize,
        addr: SocketAddr,
        template: MemApp,
    ) -> Self {
        DgramServer {
            endpoint: Endpoint::new(config, transport, psk, seed, max_connections),
            conns: BTreeMap::new(),
            finished: Vec::new(),
            template,
            addr,
            responses: VecDeque::new(),
            next_turn: 0,
            scratch: alloc::vec![0; 2048],
        }
    }

    /// This end's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A datagram arrived.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        match self.endpoint.handle(now, from, data, &mut self.scratch) {
            DatagramEvent::Known(h) => {
                if let Some((c, app)) = self.conns.get_mut(&h) {
                    c.handle_datagram(now, from, data);
                    app.pump(c.session_mut());
                }
            }
            DatagramEvent::New(h, mut c) => {
                let mut app = self.template.clone_store();
                app.pump(c.session_mut());
                self.conns.insert(h, (*c, app));
            }
            DatagramEvent::Respond(t) => {
                self.responses
                    .push_back((t, self.scratch[..t.size].to_vec()));
            }
            DatagramEvent::Dropped => {}
        }
        self.reap();
    }

    /// The next datagram to send (connections take turns).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((t, bytes)) = self.responses.pop_front() {
            buf[..bytes.len()].copy_from_slice(&bytes);
            return Some(t);
        }
        let handles: Vec<ConnHandle> = self.conns.keys().copied().collect();
        let n = handles.len();
        for i in 0..n {
            let h = handles[(self.next_turn as usize + i) % n];
            let (c, app) = self.conns.get_mut(&h).expect("listed above");
            if let Some(t) = transmit(c, app, now, buf) {
                self.next_turn = self.next_turn.wrapping_add(1);
                return Some(t);
            }
        }
        self.reap();
        None
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (c, app) in self.conns.values_mut() {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
                app.pump(c.session_mut());
            }
        }
        self.reap();
    }

    /// The next deadline of any connection.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .filter_map(|(c, _)| c.poll_timeout())
            .min()
    }

    /// Every connection's invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (c, _) in self.conns.values() {
            c._internal_check_invariants()?;
        }
        Ok(())
    }

    fn reap(&mut self) {
        let drained: Vec<ConnHandle> = self
            .conns
            .iter()
            .filter(|(_, (c, _))| c.is_drained())
            .map(|(h, _)| *h)
            .collect();
        for h in drained {
            if let Some((c, app)) = self.conns.remove(&h) {
                self.endpoint.forget(h);
                self.finished.push((h, c, app));
            }
        }
    }
}
