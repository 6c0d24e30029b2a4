//! The datagram transport (UDP mode): the same session, carried in encrypted packets with
//! acknowledgements, loss recovery, congestion control, pacing and flow control
//! (`shared/research/udp.md` §4; wire format in `docs/PROTOCOL.md`, "Datagram transport").
//!
//! Layering: the stream [`Session`](crate::Session) keeps its handshake, requests and events;
//! over datagrams its records are framed but not sealed (each packet is sealed instead), and
//! travel on one reliable ordered stream. Handshake messages travel as CRYPTO frames in
//! handshake packets.

pub(crate) mod ack_tracker;
mod config;
mod conn;
mod endpoint;
pub(crate) mod frame;
pub(crate) mod keys;
pub(crate) mod packet;
pub(crate) mod ranges;
pub(crate) mod recovery;
pub(crate) mod recv_stream;
pub(crate) mod send_stream;
pub(crate) mod varint;

use core::net::SocketAddr;

pub use config::TransportConfig;
pub use conn::{Connection, ConnectionStats};
pub use endpoint::{ConnHandle, DatagramEvent, Endpoint, EndpointStats};

/// Smallest UDP payload the transport sends during the handshake and assumes every path
/// carries (RFC 9000 §14).
pub const MIN_MTU: u16 = 1200;
/// Largest UDP payload probed for (1500 - 40 IPv6 - 8 UDP).
pub const MAX_MTU: u16 = 1452;

/// A packet-number space: handshake packets and data packets are numbered, acknowledged and
/// recovered separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Space {
    /// Long-header packets carrying the Noise handshake (CRYPTO frames).
    Handshake = 0,
    /// Short-header packets carrying the session stream.
    Data = 1,
}

impl Space {
    /// Both spaces, in order.
    pub(crate) const ALL: [Space; 2] = [Space::Handshake, Space::Data];

    /// Index into per-space arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One datagram, or a batch of equal-size datagrams for UDP GSO, written by `poll_transmit`
/// into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Bytes written to the buffer.
    pub size: usize,
    /// `Some(s)`: the buffer holds `size / s` datagrams of `s` bytes (the last may be
    /// shorter); send them with GSO or one by one. `None`: one datagram.
    pub segment_size: Option<usize>,
}

/// The congestion controller a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CongestionControl {
    /// CUBIC (RFC 9438): TCP-fair, the default.
    #[default]
    Cubic,
    /// NewReno (RFC 9002 §7): TCP-fair, the reference controller.
    NewReno,
    /// A BBR-style model of bottleneck bandwidth and round-trip time, for dedicated or lossy
    /// long paths: random loss is not read as congestion. Not loss-fair; opt-in.
    Bbr,
}
