//! One datagram connection, client or server: the session over packets (udp.md §4).
//!
//! The driving contract is the stream session's, with datagrams in place of bytes: after any
//! input ([`Connection::handle_datagram`], [`Connection::handle_timeout`]) or request on
//! [`Connection::session_mut`], call [`Connection::poll_transmit`] until it returns `None`,
//! drain the session's `read` and `poll_event`, then wait for a datagram or
//! [`Connection::poll_timeout`], whichever comes first.

mod frames;
#[cfg(feature = "testing")]
mod hooks;
mod mtu;
mod outcomes;
mod params;
mod phase_keys;
mod pump;
mod recv;
mod send;
mod timers;

use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::ack_tracker::AckTracker;
use super::config::TransportConfig;
use super::packet::Cid;
use super::recovery::{Outcome, Recovery, RecoveryConfig};
use super::recv_stream::RecvStream;
use super::send_stream::SendStream;
use super::{MIN_MTU, Space};
use crate::config::{Config, Psk};
use crate::error::SessionError;
use crate::session::{Session, Transport};
use crate::time::Instant;
use crate::wire::CloseCode;
use mtu::Mtu;
use params::Params;
use phase_keys::{DataKeys, HandshakeKeys};

/// Transport close codes carried by the CLOSE frame.
pub(crate) mod code {
    /// Clean close: both sessions ended.
    pub(crate) const NO_ERROR: u64 = 0;
    /// The peer broke the transport protocol (a malformed frame in an authenticated packet,
    /// an acknowledgement of a packet never sent, data in the wrong space).
    pub(crate) const PROTOCOL_VIOLATION: u64 = 1;
    /// The peer sent beyond the credit it was given.
    pub(crate) const FLOW_CONTROL: u64 = 2;
    /// The session failed; the reason byte is its `CloseCode`.
    pub(crate) const SESSION: u64 = 3;
    /// The server is busy (too many connections); sent in a handshake packet.
    pub(crate) const BUSY: u64 = 4;
    /// The server runs another handshake mode (the datagram form of the stream's
    /// `MODE_REFUSAL`); the reason byte is the preamble mode byte it requires.
    pub(crate) const MODE: u64 = 5;
}

/// In-order data packets acknowledged together: an ACK is due at once after this many
/// ack-eliciting packets (RFC 9000 suggests 2; 4 halves the ACK traffic on a fast path, while
/// out-of-order arrivals and `max_ack_delay` still make ACKs immediate or bounded).
const ACK_EVERY: u64 = 4;

/// The close code of the endpoint's busy refusal.
pub(crate) const BUSY_CODE: u64 = code::BUSY;

/// What one sent packet carried that matters when it is acknowledged or lost.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sent {
    /// Size on the wire.
    size: u16,
    /// A handshake packet (else a data packet).
    handshake: bool,
    /// Key phase (data packets).
    phase: bool,
    /// Largest packet number our ACK frame in it covered.
    ack: Option<u64>,
    /// CRYPTO bytes: offset and length.
    crypto: Option<(u64, u32)>,
    /// Session-stream bytes: offset, length, FIN.
    stream: Option<(u64, u32, bool)>,
    max_data: bool,
    handshake_done: bool,
    /// A path MTU probe of this size.
    mtu_probe: Option<u16>,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Handshake packets flow; no data keys yet (or not confirmed).
    Open,
    /// This side sent CLOSE: it answers further packets with CLOSE until `until`.
    Closing { until: Instant },
    /// The peer sent CLOSE: silent until `until`.
    Draining { until: Instant },
    /// Over: drop the connection.
    Drained,
}

/// The handshake packet-number space's own state (dropped once the handshake is confirmed).
struct HandshakeSpace {
    keys: HandshakeKeys,
    send: SendStream,
    recv: RecvStream,
    /// The peer's transport parameters were read from the front of its CRYPTO stream.
    params_read: bool,
}

/// Per packet-number space.
struct PnSpace {
    next_pn: u64,
    acks: AckTracker,
}

/// Counters of one connection (see [`Connection::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Datagrams sent (each GSO segment counts).
    pub datagrams_sent: u64,
    /// UDP payload bytes sent.
    pub bytes_sent: u64,
    /// Datagrams received (all, before any check).
    pub datagrams_received: u64,
    /// UDP payload bytes received.
    pub bytes_received: u64,
    /// Datagrams dropped: not ours, failed authentication, replayed or duplicated.
    pub dropped: u64,
    /// Of those, the ones whose tag did not verify (forged, corrupted or wrong key).
    pub auth_failures: u64,
    /// Of those, replays and duplicates (a packet number seen before).
    pub duplicates: u64,
    /// Session-stream bytes sent for the first time.
    pub stream_bytes_sent: u64,
    /// Session-stream bytes sent again after a loss or as a probe.
    pub stream_bytes_retransmitted: u64,
    /// Packets declared lost.
    pub packets_lost: u64,
    /// Losses later found spurious (the packet was acknowledged after all).
    pub spurious_losses: u64,
    /// Congestion events (window reductions).
    pub congestion_events: u64,
    /// ACK frames sent.
    pub acks_sent: u64,
    /// Key updates started or followed.
    pub key_updates: u64,
    /// Congestion window now, bytes.
    pub cwnd: u64,
    /// Smoothed round-trip time now.
    pub srtt: Duration,
    /// Largest UDP payload in use now.
    pub mtu: u16,
}

/// One datagram connection: a [`Session`] carried over UDP.
pub struct Connection {
    client: bool,
    session: Session,
    cfg: TransportConfig,
    peer: SocketAddr,
    local_cid: Cid,
    remote_cid: Cid,
    /// The client's first destination id (the server routes retransmitted first packets).
    initial_dcid: Cid,
    hs: Option<HandshakeSpace>,
    data_keys: Option<DataKeys>,
    spaces: [PnSpace; 2],
    stream_send: SendStream,
    stream_recv: RecvStream,
    /// Highest session-stream offset sent so far (what lies below is a retransmission).
    stream_sent_max: u64,
    /// The peer's flow-control limit on our session stream.
    peer_max_data: u64,
    recovery: Recovery<Sent>,
    peer_params: Option<Params>,
    /// Server: the client proved it receives at its address (anti-amplification ends).
    validated: bool,
    amp_received: u64,
    amp_sent: u64,
    /// The handshake is confirmed: handshake keys and space are gone.
    confirmed: bool,
    handshake_done_owed: bool,
    max_data_owed: bool,
    /// DATA_BLOCKED was sent for this limit.
    blocked_sent: Option<u64>,
    mtu: Mtu,
    state: State,
    /// The CLOSE frame this side sends: transport code and reason byte.
    close_code: u64,
    close_reason: [u8; 1],
    close_owed: bool,
    close_answers: u8,
    /// Last authenticated packet received, or first ack-eliciting packet sent after it.
    last_activity: Instant,
    sent_eliciting_since_recv: bool,
    /// The pacer asked to wait until then.
    pacing_until: Option<Instant>,
    last_now: Instant,
    stats: ConnectionStats,
    outcomes: Vec<(Sent, Outcome)>,
}

impl Connection {
    /// A client connection to `peer`. Its first datagram (the padded handshake) is ready in
    /// `poll_transmit` at once. `seed` must be fresh random bytes for every connection.
    pub fn client(
        config: &Config,
        transport: &TransportConfig,
        psk: &Psk,
        seed: [u8; 32],
        now: Instant,
        peer: SocketAddr,
    ) -> Connection {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let (mut local_cid, mut initial_dcid, mut session_seed) = ([0; 8], [0; 8], [0; 32]);
        rng.fill_bytes(&mut local_cid);
        rng.fill_bytes(&mut initial_dcid);
        rng.fill_bytes(&mut session_seed);
        let session = Session::client_over(Transport::Datagram, config, psk, session_seed, now);
        let keys = HandshakeKeys::new(psk.bytes(), &initial_dcid, true);
        Self::new(
            true,
            session,
            transport,
            keys,
            now,
            peer,
            local_cid,
            initial_dcid,
            initial_dcid,
        )
    }

    /// A server connection for a client whose first packet named `initial_dcid` and `scid`
    /// (the endpoint picked `local_cid`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn server(
        config: &Config,
        transport: &TransportConfig,
        psk: &Psk,
        seed: [u8; 32],
        now: Instant,
        peer: SocketAddr,
        initial_dcid: Cid,
        client_cid: Cid,
        local_cid: Cid,
    ) -> Connection {
        let session = Session::server_over(Transport::Datagram, config, psk, seed, now);
        let keys = HandshakeKeys::new(psk.bytes(), &initial_dcid, false);
        Self::new(
            false,
            session,
            transport,
            keys,
            now,
            peer,
            local_cid,
            client_cid,
            initial_dcid,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        client: bool,
        session: Session,
        transport: &TransportConfig,
        keys: HandshakeKeys,
        now: Instant,
        peer: SocketAddr,
        local_cid: Cid,
        remote_cid: Cid,
        initial_dcid: Cid,
    ) -> Connection {
        let cfg = transport.clamped();
        let mut hs = HandshakeSpace {
            keys,
            send: SendStream::new(16 * 1024),
            recv: RecvStream::new(16 * 1024, 16 * 1024),
            params_read: false,
        };
        let params = Params {
            idle_timeout: cfg.idle_timeout,
            max_ack_delay: cfg.max_ack_delay,
            initial_max_data: cfg.initial_window,
        };
        hs.send.write(&params.encode());
        let recovery = Recovery::new(
            &RecoveryConfig {
                initial_rtt: cfg.initial_rtt,
                max_ack_delay: cfg.max_ack_delay,
                cc: cfg.congestion,
                mtu: MIN_MTU,
            },
            now,
        );
        let mut c = Connection {
            client,
            session,
            peer,
            local_cid,
            remote_cid,
            initial_dcid,
            hs: Some(hs),
            data_keys: None,
            // Handshake packets are acknowledged at once.
            spaces: [
                PnSpace::new(AckTracker::new(Duration::ZERO)),
                PnSpace::new(AckTracker::new(cfg.max_ack_delay).with_threshold(ACK_EVERY)),
            ],
            stream_send: SendStream::new(cfg.send_buffer),
            stream_recv: RecvStream::new(cfg.initial_window, cfg.max_window),
            stream_sent_max: 0,
            peer_max_data: 0,
            recovery,
            peer_params: None,
            validated: client,
            amp_received: 0,
            amp_sent: 0,
            confirmed: false,
            handshake_done_owed: false,
            max_data_owed: false,
            blocked_sent: None,
            mtu: Mtu::new(cfg.mtu_discovery, cfg.max_mtu),
            state: State::Open,
            close_code: code::NO_ERROR,
            close_reason: [0],
            close_owed: false,
            close_answers: 0,
            last_activity: now,
            sent_eliciting_since_recv: false,
            pacing_until: None,
            last_now: now,
            stats: ConnectionStats::default(),
            outcomes: Vec::new(),
            cfg,
        };
        c.pull_session(now);
        c
    }

    fn observe(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    // ---- the session ------------------------------------------------------------------

    /// The session: requests (`offer`, `get`, `accept`, `write`, `read`, `close`...) and
    /// events (`poll_event`) exactly as over a stream. Do not call its `handle_input`,
    /// `handle_eof`, `poll_transmit` or `handle_timeout`: the connection does.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// See [`Connection::session`].
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    // ---- state ------------------------------------------------------------------------

    /// Whether the connection is over: nothing more will be sent or accepted, drop it.
    /// The session's `Closed` event says how it ended.
    pub fn is_drained(&self) -> bool {
        self.state == State::Drained
    }

    /// Whether the connection is closing: CLOSE was sent or received (or it drained). Once
    /// the session is closed too, nothing of the transfer is left to send.
    pub fn is_closing(&self) -> bool {
        self.state != State::Open
    }

    /// The peer's address (the latest one an authenticated packet came from).
    pub fn remote(&self) -> SocketAddr {
        self.peer
    }

    /// This side's connection id (what the peer puts in its packets).
    pub fn local_cid(&self) -> [u8; 8] {
        self.local_cid
    }

    /// Counters and the path's current estimates.
    pub fn stats(&self) -> ConnectionStats {
        let mut s = self.stats.clone();
        let r = self.recovery.stats();
        s.packets_lost = r.packets_lost;
        s.spurious_losses = r.spurious_losses;
        s.congestion_events = r.congestion_events;
        s.cwnd = self.recovery.cwnd();
        s.srtt = self.recovery.rtt().smoothed();
        s.mtu = self.mtu.current();
        s.key_updates = self.data_keys.as_ref().map_or(0, DataKeys::updates);
        s
    }

    /// The probe timeout now (un-backed-off), for the closing and idle periods.
    fn pto(&self) -> Duration {
        self.recovery.pto_duration(Space::Data)
    }

    /// The idle timeout in effect: the smaller advertised value, never under 3 PTOs.
    fn idle_timeout(&self) -> Duration {
        let ours = self.cfg.idle_timeout;
        let t = self.peer_params.map_or(ours, |p| p.idle_timeout.min(ours));
        t.max(3 * self.pto())
    }
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("client", &self.client)
            .field("peer", &self.peer)
            .field("state", &self.state)
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

impl PnSpace {
    fn new(acks: AckTracker) -> Self {
        PnSpace { next_pn: 0, acks }
    }
}

/// The byte a failed session's CLOSE carries: the `CloseCode` its error `Close` would have.
fn session_close_code(e: SessionError) -> u8 {
    match e {
        SessionError::TimedOut => 3,
        SessionError::KeysExhausted => 4,
        _ => 2,
    }
}

/// The `CloseCode` a CLOSE reason byte names (0 done, 1 cancelled, 2 protocol error,
/// 3 timed out, 4 internal error; anything else reads as a protocol error).
fn close_code_from_byte(b: u8) -> CloseCode {
    match b {
        0 => CloseCode::Done,
        1 => CloseCode::Cancelled,
        3 => CloseCode::TimedOut,
        4 => CloseCode::InternalError,
        _ => CloseCode::ProtocolError,
    }
}
