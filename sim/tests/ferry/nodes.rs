//! `Node`s over ferry-core's datagram test ends, and the scenario plumbing shared by the
//! tests: one client sending files to one server (or several clients to one server).

use std::net::SocketAddr;
use std::time::Duration;

use ferry_core::dgram::{ConnectionStats, Transmit, TransportConfig};
use ferry_core::testing::dgram::{DgramClient, DgramServer};
use ferry_core::testing::{MemApp, Outcome, TestRng};
use ferry_core::{Config, Event, Instant, Psk};
use ferry_sim::{Budget, LinkConfig, Meter, Node, NodeId, Pair, Sim, sub_seed};

/// The server's address.
pub(crate) fn server_addr() -> SocketAddr {
    "10.0.0.100:4433".parse().unwrap()
}

/// The address of client `i`.
pub(crate) fn client_addr(i: u8) -> SocketAddr {
    format!("10.0.0.{}:5000", i + 1).parse().unwrap()
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn psk() -> Psk {
    Psk::from_key_bytes(&[9; 32])
}

fn key_seed(seed: u64, stream: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&sub_seed(seed, stream * 8 + i as u64).to_le_bytes());
    }
    out
}

/// `len` pseudo-random bytes from `seed`.
pub(crate) fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = TestRng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A client application sending `files` (path, bytes) and closing when they are delivered.
pub(crate) fn sender(files: &[(String, Vec<u8>)]) -> MemApp {
    let mut app = MemApp::new();
    for (p, d) in files {
        app = app.with_file(p, d.clone());
        app.to_send.push_back(p.clone());
    }
    app.close_when_done = true;
    app
}

/// A client end as a simulator node.
pub(crate) struct Client {
    pub(crate) inner: DgramClient,
    /// When the client's session first reported connected.
    pub(crate) connected_at: Option<Instant>,
}

impl Client {
    pub(crate) fn new(
        config: &Config,
        transport: &TransportConfig,
        seed: u64,
        i: u8,
        now: Instant,
        app: MemApp,
    ) -> Self {
        let inner = DgramClient::new(
            config,
            transport,
            &psk(),
            key_seed(seed, 1 + u64::from(i)),
            now,
            client_addr(i),
            server_addr(),
            app,
        );
        Client {
            inner,
            connected_at: None,
        }
    }

    fn observe(&mut self, now: Instant) {
        if self.connected_at.is_none() && self.inner.conn.session().is_connected() {
            self.connected_at = Some(now);
        }
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        self.inner.conn.stats()
    }

    /// Every offered file was delivered and the session closed cleanly.
    pub(crate) fn delivered_all(&self) -> bool {
        let app = &self.inner.app;
        app.log.contains(&Event::Closed { result: Ok(()) })
            && app.to_send.is_empty()
            && app.outcomes.values().all(|o| *o == Outcome::Delivered)
    }
}

impl Node for Client {
    fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        self.inner.handle_datagram(now, from, data);
        self.observe(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.inner.poll_transmit(now, buf);
        self.observe(now);
        t
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.observe(now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn check_invariants(&self, _now: Instant) -> Result<(), String> {
        self.inner.check_invariants()
    }
    fn done(&self) -> bool {
        self.inner.done()
    }
}

/// A server end as a simulator node: counts received file bytes over time.
pub(crate) struct Server {
    pub(crate) inner: DgramServer,
    /// How many connections must end (drained) before it is done.
    pub(crate) expect: usize,
    pub(crate) connected_at: Option<Instant>,
    /// Bytes of file chunks received, all connections together.
    pub(crate) received: Meter,
    /// The same per client address.
    pub(crate) per_client: Vec<(SocketAddr, Meter)>,
}

impl Server {
    pub(crate) fn new(
        config: &Config,
        transport: &TransportConfig,
        seed: u64,
        expect: usize,
    ) -> Self {
        Server {
            inner: DgramServer::new(
                config,
                transport,
                &psk(),
                key_seed(seed, 0),
                16,
                server_addr(),
                MemApp::new(),
            ),
            expect,
            connected_at: None,
            received: Meter::new(),
            per_client: Vec::new(),
        }
    }

    fn observe(&mut self, now: Instant) {
        if self.connected_at.is_none()
            && self
                .inner
                .conns
                .values()
                .any(|(c, _)| c.session().is_connected())
        {
            self.connected_at = Some(now);
        }
        let mut total = 0;
        let live = self
            .inner
            .conns
            .values()
            .map(|(c, a)| (c.remote(), a.bytes_read));
        let ended = self
            .inner
            .finished
            .iter()
            .map(|(_, c, a)| (c.remote(), a.bytes_read));
        for (from, bytes) in live.chain(ended) {
            total += bytes;
            match self.per_client.iter_mut().find(|(a, _)| *a == from) {
                Some((_, m)) => m.record(now, bytes),
                None => {
                    let mut m = Meter::new();
                    m.record(now, bytes);
                    self.per_client.push((from, m));
                }
            }
        }
        self.received.record(now, total);
    }

    /// The application of the connection from `from` (live or ended).
    pub(crate) fn app(&self, from: SocketAddr) -> Option<&MemApp> {
        self.inner
            .conns
            .values()
            .find(|(c, _)| c.remote() == from)
            .map(|(_, a)| a)
            .or_else(|| {
                self.inner
                    .finished
                    .iter()
                    .find(|(_, c, _)| c.remote() == from)
                    .map(|(_, _, a)| a)
            })
    }

    /// The stats of the connection from `from` (live or ended).
    pub(crate) fn stats(&self, from: SocketAddr) -> Option<ConnectionStats> {
        self.inner
            .conns
            .values()
            .map(|(c, _)| c)
            .chain(self.inner.finished.iter().map(|(_, c, _)| c))
            .find(|c| c.remote() == from)
            .map(|c| c.stats())
    }
}

impl Node for Server {
    fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        self.inner.handle_datagram(now, from, data);
        self.observe(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.inner.poll_transmit(now, buf);
        self.observe(now);
        t
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.observe(now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn check_invariants(&self, _now: Instant) -> Result<(), String> {
        self.inner.check_invariants()
    }
    fn done(&self) -> bool {
        self.inner.conns.is_empty() && self.inner.finished.len() >= self.expect
    }
}

/// One client sending `files` to a server over `up` (client to server) and `down`.
pub(crate) struct Scenario {
    pub(crate) sim: Sim,
    pub(crate) client: NodeId,
    pub(crate) server: NodeId,
    pub(crate) pair: Pair,
    pub(crate) files: Vec<(String, Vec<u8>)>,
}

impl Scenario {
    pub(crate) fn new(
        seed: u64,
        transport: &TransportConfig,
        files: Vec<(String, Vec<u8>)>,
        up: LinkConfig,
        down: LinkConfig,
    ) -> Self {
        Self::with_config(seed, &Config::default(), transport, files, up, down)
    }

    pub(crate) fn with_config(
        seed: u64,
        config: &Config,
        transport: &TransportConfig,
        files: Vec<(String, Vec<u8>)>,
        up: LinkConfig,
        down: LinkConfig,
    ) -> Self {
        let mut sim = Sim::new(seed);
        let now = sim.now();
        let client = sim.add_node(Client::new(config, transport, seed, 0, now, sender(&files)));
        let server = sim.add_node(Server::new(config, transport, seed, 1));
        let pair = sim.connect(client, server, up, down);
        Scenario {
            sim,
            client,
            server,
            pair,
            files,
        }
    }

    pub(crate) fn client(&self) -> &Client {
        self.sim.node::<Client>(self.client)
    }

    pub(crate) fn server(&self) -> &Server {
        self.sim.node::<Server>(self.server)
    }

    /// Runs to the end; then checks every file arrived byte-identical and the client's
    /// session closed cleanly with every file delivered.
    pub(crate) fn run(&mut self, max_virtual: Duration) -> Result<ferry_sim::Report, String> {
        let report = self
            .sim
            .run(Budget::virtual_time(max_virtual))
            .map_err(|e| e.to_string())?;
        self.verify()?;
        Ok(report)
    }

    pub(crate) fn verify(&self) -> Result<(), String> {
        let client = self.client();
        if !client.delivered_all() {
            return Err(format!(
                "client did not deliver everything: outcomes {:?}, last events {:?}",
                client.inner.app.outcomes,
                client
                    .inner
                    .app
                    .log
                    .iter()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
            ));
        }
        let app = self
            .server()
            .app(client_addr(0))
            .ok_or("no server connection")?;
        for (path, bytes) in &self.files {
            match app.files.get(path) {
                Some(got) if got == bytes => {}
                Some(got) => {
                    return Err(format!(
                        "{path}: received {} bytes differing from the {} sent",
                        got.len(),
                        bytes.len()
                    ));
                }
                None => return Err(format!("{path}: not received")),
            }
        }
        Ok(())
    }

    /// UDP payload bytes both ways.
    pub(crate) fn wire_bytes(&self) -> u64 {
        let s = self.client().stats();
        let t = self.server().stats(client_addr(0)).unwrap_or_default();
        s.bytes_sent + t.bytes_sent
    }
}
