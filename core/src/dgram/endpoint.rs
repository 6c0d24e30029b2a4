//! The server side of one UDP socket: routes datagrams to connections by destination
//! connection id, creates a connection for a valid first packet, and drops everything else
//! statelessly, before any AEAD work where the header already says it cannot be ours.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::config::TransportConfig;
use super::conn::Connection;
use super::frame::{self, Frame, Frames};
use super::keys::{self, PacketKey};
use super::packet::{self, Cid, Header, LONG_HEADER_LEN};
use super::{MIN_MTU, Transmit};
use crate::config::{Config, Psk};
use crate::time::Instant;

/// A connection's handle in the endpoint (the adapter keeps connections by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnHandle(pub u64);

/// What to do with a datagram the endpoint looked at.
#[derive(Debug)]
pub enum DatagramEvent {
    /// It belongs to this connection: pass it to its `handle_datagram`.
    Known(ConnHandle),
    /// A new client: the connection already processed the datagram. Keep it and drive it.
    New(ConnHandle, alloc::boxed::Box<Connection>),
    /// Send this answer (written into the `response` buffer): the busy refusal.
    Respond(Transmit),
    /// Not ours, garbage, or a forgery: dropped.
    Dropped,
}

/// Counters of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Datagrams dropped on the header alone (not ferry, unknown id, too short).
    pub dropped_header: u64,
    /// First packets whose tag did not verify (another key, or forged).
    pub dropped_auth: u64,
    /// Connections created.
    pub accepted: u64,
    /// First packets refused as busy.
    pub refused_busy: u64,
}

/// The datagram server endpoint.
pub struct Endpoint {
    config: Config,
    transport: TransportConfig,
    psk: Psk,
    rng: ChaCha20Rng,
    routes: BTreeMap<Cid, ConnHandle>,
    cids: BTreeMap<ConnHandle, Vec<Cid>>,
    next: u64,
    max_connections: usize,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint serving `psk`; at most `max_connections` at once (more first packets get
    /// the busy refusal). `seed` must be fresh random bytes (connection ids and per-connection
    /// seeds come from it).
    pub fn new(
        config: &Config,
        transport: &TransportConfig,
        psk: &Psk,
        seed: [u8; 32],
        max_connections: usize,
    ) -> Self {
        Endpoint {
            config: config.clone(),
            transport: transport.clone(),
            psk: psk.clone(),
            rng: ChaCha20Rng::from_seed(seed),
            routes: BTreeMap::new(),
            cids: BTreeMap::new(),
            next: 0,
            max_connections: max_connections.max(1),
            stats: EndpointStats::default(),
        }
    }

    /// Route one datagram from `from`. `response` receives the bytes of a
    /// [`DatagramEvent::Respond`] (at least 1 200 bytes).
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &mut [u8],
        response: &mut [u8],
    ) -> DatagramEvent {
        let Ok(header) = packet::parse_header(data) else {
            self.stats.dropped_header += 1;
            return DatagramEvent::Dropped;
        };
        if let Some(h) = self.routes.get(&header.dcid()) {
            return DatagramEvent::Known(*h);
        }
        let Header::Long { dcid, scid, pn } = header else {
            self.stats.dropped_header += 1;
            return DatagramEvent::Dropped;
        };
        // A first packet is padded to the minimum size and numbered from 0 (a later
        // retransmission of it has a small number too).
        if data.len() < usize::from(MIN_MTU) || pn > 64 {
            self.stats.dropped_header += 1;
            return DatagramEvent::Dropped;
        }
        // Trial-open a copy: only a packet sealed with this PSK's handshake keys for its own
        // destination id and starting the handshake stream is a new client.
        let (c2s, s2c) = keys::handshake_secrets(self.psk.bytes(), &dcid);
        let mut copy = data.to_vec();
        let Ok(range) = keys::open_packet(
            &PacketKey::from_secret(&c2s),
            u64::from(pn),
            &mut copy,
            LONG_HEADER_LEN,
        ) else {
            self.stats.dropped_auth += 1;
            return DatagramEvent::Dropped;
        };
        let starts =
            Frames::new(&copy[range]).any(|f| matches!(f, Ok(Frame::Crypto { offset: 0, .. })));
        if !starts {
            self.stats.dropped_header += 1;
            return DatagramEvent::Dropped;
        }
        if self.cids.len() >= self.max_connections {
            self.stats.refused_busy += 1;
            return match busy_refusal(&PacketKey::from_secret(&s2c), scid, &mut self.rng, response)
            {
                Some(size) => DatagramEvent::Respond(Transmit {
                    destination: from,
                    size,
                    segment_size: None,
                }),
                None => DatagramEvent::Dropped,
            };
        }
        let local = self.fresh_cid();
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let mut conn = Connection::server(
            &self.config,
            &self.transport,
            &self.psk,
            seed,
            now,
            from,
            dcid,
            scid,
            local,
        );
        conn.handle_datagram(now, from, data);
        let h = ConnHandle(self.next);
        self.next += 1;
        self.routes.insert(dcid, h);
        self.routes.insert(local, h);
        self.cids.insert(h, alloc::vec![dcid, local]);
        self.stats.accepted += 1;
        DatagramEvent::New(h, alloc::boxed::Box::new(conn))
    }

    /// A connection ended (it is drained and the adapter dropped it): forget its ids.
    pub fn forget(&mut self, h: ConnHandle) {
        for cid in self.cids.remove(&h).unwrap_or_default() {
            self.routes.remove(&cid);
        }
    }

    /// Connections the endpoint routes to.
    pub fn connections(&self) -> usize {
        self.cids.len()
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    fn fresh_cid(&mut self) -> Cid {
        loop {
            let mut cid = [0u8; 8];
            self.rng.fill_bytes(&mut cid);
            if !self.routes.contains_key(&cid) {
                return cid;
            }
        }
    }
}

/// A handshake packet carrying only CLOSE(busy), sealed with the server's handshake key.
fn busy_refusal(
    key: &PacketKey,
    dcid: Cid,
    rng: &mut ChaCha20Rng,
    out: &mut [u8],
) -> Option<usize> {
    let mut scid = [0u8; 8];
    rng.fill_bytes(&mut scid);
    let header = Header::Long { dcid, scid, pn: 0 };
    let h = header.write(out)?;
    let n = frame::encode_close(super::conn::BUSY_CODE, b"busy", &mut out[h..])?;
    let end = h + n + packet::TAG_LEN;
    if out.len() < end {
        return None;
    }
    Some(keys::seal_packet(key, 0, out, h, n))
}
