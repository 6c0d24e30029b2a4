//! The session: one ferry connection, client or server, as a state machine that touches
//! nothing. See the crate docs for the driving contract.

mod api;
pub(crate) mod event;
pub(crate) mod handshake;
mod timers;
pub(crate) mod transfer;
mod transport;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::config::{Config, Psk};
use crate::error::{BufferTooSmall, DecodeError, HandshakeError, SessionError, Violation};
use crate::record::keys::DirectionKeys;
use crate::record::stream::{HEADER_LEN, MIN_PLAINTEXT, OVERHEAD, RecordOpener, RecordSealer};
use crate::time::Instant;
use crate::wire::{CloseCode, Control, Frame, decode_frame, encode_control};
use zeroize::Zeroizing;

pub use event::{Chunk, Event, FileMeta, PeerRequestId, RecvId, RequestId, SendId};
pub(crate) use handshake::Transport;
pub use handshake::{BUSY_REFUSAL, MODE_REFUSAL};
use handshake::{Established, FEATURE_DEFLATE, Handshake, PeerHello};
use transfer::{Limits, Transfer};

/// The traffic secrets (send, recv) a datagram transport derives its packet keys from.
pub(crate) type PacketSecrets = (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>);

/// Bytes kept free at the end of every record for a `Close` frame.
const CLOSE_RESERVE: usize = 16;

/// Which timer `poll_timeout` reports (see [`Session::pending_timer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timer {
    /// The handshake (and the client's key confirmation) must finish.
    Handshake,
    /// Nothing authenticated arrived for the idle timeout.
    Idle,
    /// Time to send a keep-alive.
    KeepAlive,
    /// Waiting for the peer's FINAL record after ours.
    Close,
}

/// Where a session is in its life. Each phase is entered once, in this order (a fatal error
/// jumps to `Closed` from anywhere).
enum Phase {
    /// The Noise handshake is under way.
    Handshake(Box<Handshake>),
    /// Server only: keys are established, the client's `Start` has not arrived yet.
    AwaitStart,
    /// Connected: requests flow (each direction's close is tracked on its own, see
    /// `Session::own_close` and `Session::peer_final`).
    Open,
    /// `Event::Closed` was emitted.
    Closed,
}

/// Why this side's FINAL record is owed.
#[derive(Clone, Copy)]
enum OwnClose {
    /// The application called `close` with this code.
    Requested(CloseCode),
    /// The peer closed cleanly: reply `Done` once every answer owed to the peer is out.
    Reply,
}

impl OwnClose {
    fn code(self) -> CloseCode {
        match self {
            OwnClose::Requested(code) => code,
            OwnClose::Reply => CloseCode::Done,
        }
    }
}

/// One ferry session (a client or a server end of one connection).
pub struct Session {
    client: bool,
    transport: Transport,
    config: Config,
    phase: Phase,
    /// X25519 operations of the handshake (kept when it ends, for a test hook).
    dh_ops: u32,
    hs_out: Vec<u8>,
    sealer: Option<RecordSealer>,
    opener: Option<RecordOpener>,
    peer: Option<PeerHello>,
    transfer: Option<Transfer>,
    events: VecDeque<Event>,
    error: Option<SessionError>,
    /// Client: `Start` is in a sealed record.
    start_sent: bool,
    ping_pending: bool,
    /// Our FINAL record is owed (sent once `close_ready`).
    own_close: Option<OwnClose>,
    /// After a fatal error: the error `Close` still to send.
    error_close: Option<CloseCode>,
    /// The peer's FINAL record arrived with this code.
    peer_final: Option<CloseCode>,
    created: Instant,
    last_recv: Instant,
    last_send: Instant,
    final_sent_at: Option<Instant>,
    last_now: Instant,
    /// Datagram transport: the traffic secrets (send, recv) for the packet keys, until taken.
    packet_secrets: Option<PacketSecrets>,
    /// Raw frames a test wants in the next record (a malicious peer).
    #[cfg(feature = "testing")]
    injected: Vec<Vec<u8>>,
}

impl Session {
    /// A client session. Its first bytes (preamble and Noise message 1) are ready in
    /// `poll_transmit` at once.
    ///
    /// `seed` must be fresh random bytes for every session (the ephemeral key comes from it:
    /// reusing a seed reuses an ephemeral key). Adapters draw it from the OS; tests fix it.
    pub fn client(config: &Config, psk: &Psk, seed: [u8; 32], now: Instant) -> Session {
        Self::client_over(Transport::Stream, config, psk, seed, now)
    }

    /// A client session over `transport` (the datagram transport builds its own).
    pub(crate) fn client_over(
        transport: Transport,
        config: &Config,
        psk: &Psk,
        seed: [u8; 32],
        now: Instant,
    ) -> Session {
        let config = config.clamped();
        let mut s = Self::new(true, transport, config, now);
        match Handshake::client(transport, &s.config, psk, seed) {
            Ok(mut hs) => {
                s.hs_out = core::mem::take(&mut hs.out);
                s.phase = Phase::Handshake(Box::new(hs));
            }
            Err(e) => {
                s.fail(e);
            }
        }
        s
    }

    /// A server session, waiting for a client's preamble. See [`Session::client`] on `seed`.
    pub fn server(config: &Config, psk: &Psk, seed: [u8; 32], now: Instant) -> Session {
        Self::server_over(Transport::Stream, config, psk, seed, now)
    }

    /// A server session over `transport` (the datagram transport builds its own).
    pub(crate) fn server_over(
        transport: Transport,
        config: &Config,
        psk: &Psk,
        seed: [u8; 32],
        now: Instant,
    ) -> Session {
        let config = config.clamped();
        let mut s = Self::new(false, transport, config, now);
        s.phase = Phase::Handshake(Box::new(Handshake::server(transport, &s.config, psk, seed)));
        s
    }

    fn new(client: bool, transport: Transport, config: Config, now: Instant) -> Session {
        Session {
            client,
            transport,
            config,
            // Replaced at once by the constructors (or `Closed` by a failing client).
            phase: Phase::AwaitStart,
            dh_ops: 0,
            hs_out: Vec::new(),
            sealer: None,
            opener: None,
            peer: None,
            transfer: None,
            events: VecDeque::new(),
            error: None,
            start_sent: false,
            ping_pending: false,
            own_close: None,
            error_close: None,
            peer_final: None,
            created: now,
            last_recv: now,
            last_send: now,
            final_sent_at: None,
            last_now: now,
            packet_secrets: None,
            #[cfg(feature = "testing")]
            injected: Vec::new(),
        }
    }

    fn observe(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    /// Record a fatal error (the first one sticks), queue an error `Close` if keys exist,
    /// and emit `Closed`.
    fn fail(&mut self, e: SessionError) -> SessionError {
        if let Some(first) = self.error {
            return first;
        }
        self.error = Some(e);
        let code = match e {
            SessionError::TimedOut => CloseCode::TimedOut,
            SessionError::KeysExhausted => CloseCode::InternalError,
            _ => CloseCode::ProtocolError,
        };
        let may_send = !matches!(
            e,
            SessionError::ClosedByPeer(_) | SessionError::KeysExhausted
        );
        if may_send && self.sealer.as_ref().is_some_and(|s| !s.is_finished()) {
            self.error_close = Some(code);
        }
        if !self.is_closed() {
            self.enter(Phase::Closed);
            self.events.push_back(Event::Closed { result: Err(e) });
        }
        e
    }

    /// Move to the next phase (the handshake's DH count is kept for the test hook).
    fn enter(&mut self, phase: Phase) {
        if let Phase::Handshake(hs) = &self.phase {
            self.dh_ops = hs.dh_count();
        }
        self.phase = phase;
    }

    fn establish(&mut self, est: Established) {
        let interval = self.config.rekey_interval();
        let Established {
            send_secret,
            recv_secret,
            peer,
            ..
        } = est;
        match self.transport {
            Transport::Stream => {
                self.sealer = Some(RecordSealer::new(DirectionKeys::new(
                    *send_secret,
                    interval,
                )));
                self.opener = Some(RecordOpener::new(
                    DirectionKeys::new(*recv_secret, interval),
                    self.config.max_plaintext,
                ));
            }
            Transport::Datagram => {
                // The packets are sealed with keys from these secrets; records are only framed.
                self.sealer = Some(RecordSealer::framed());
                self.opener = Some(RecordOpener::framed(self.config.max_plaintext));
                self.packet_secrets = Some((send_secret, recv_secret));
            }
        }
        self.transfer = Some(Transfer::new(Limits {
            client: self.client,
            may_deflate: peer.features & FEATURE_DEFLATE != 0,
            accept_deflate: self.config.accept_compression,
            compression: self.config.compression,
            peer_max_open: peer.max_open,
            our_max_open: usize::from(self.config.max_open),
            send_buffer: self.config.send_buffer,
            recv_window: self.config.recv_window,
        }));
        self.peer = Some(peer);
        self.last_recv = self.last_now;
        if self.client {
            self.enter(Phase::Open);
            self.events.push_back(Event::Connected);
        } else {
            self.enter(Phase::AwaitStart);
        }
    }

    // ---- input --------------------------------------------------------------------------

    /// Feed bytes received from the peer. Returns how many bytes were consumed: the caller
    /// drops exactly that prefix and calls again with more bytes appended. Records are opened
    /// in place, which is why `input` is mutable.
    ///
    /// Consuming stops early when the receive window or the event queue is full (explicit
    /// back-pressure, see [`Session::wants_input`]): drain `read` and `poll_event`, then call
    /// again with the remaining bytes.
    ///
    /// # Errors
    /// A fatal [`SessionError`]; sticky.
    pub fn handle_input(&mut self, now: Instant, input: &mut [u8]) -> Result<usize, SessionError> {
        self.observe(now);
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut used = 0;
        if let Phase::Handshake(hs) = &mut self.phase {
            match hs.handle_input(input) {
                Err(e) => {
                    // A refusal the peer should hear (another mode required) goes out first.
                    self.hs_out.append(&mut hs.out);
                    return Err(self.fail(e));
                }
                Ok((n, est)) => {
                    used += n;
                    self.hs_out.append(&mut hs.out);
                    match est {
                        Some(est) => self.establish(est),
                        None => return Ok(used),
                    }
                }
            }
        }
        loop {
            let rest = &mut input[used..];
            if rest.is_empty() {
                break;
            }
            if self.peer_final.is_some() || self.is_closed() {
                return Err(self.fail(SessionError::TrailingData));
            }
            let (Some(opener), Some(transfer)) = (&mut self.opener, &mut self.transfer) else {
                break;
            };
            let header = match opener.peek(rest) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            };
            if rest.len() < header.total {
                break;
            }
            if self.events.len() >= self.config.max_events || !transfer.can_take(header.total) {
                break;
            }
            // Opened into a buffer of the transfer layer's, which keeps it as the storage of
            // the DATA it carries: the plaintext is written once, by the decryption.
            let mut record = transfer.record_buf();
            let (len, fin, consumed) = match opener.open_into(rest, &mut record) {
                Ok(Some(o)) => o,
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            };
            used += consumed;
            self.last_recv = now;
            let r = self.process_record(&record[..len], fin);
            if let Some(t) = &mut self.transfer {
                t.attach_record(record);
            }
            if let Err(e) = r {
                return Err(self.fail(e));
            }
        }
        Ok(used)
    }

    fn process_record(&mut self, pt: &[u8], fin: bool) -> Result<(), SessionError> {
        let mut pos = 0;
        while pos < pt.len() {
            let (frame, n) = decode_frame(&pt[pos..])?.ok_or(DecodeError::IncompleteFrame)?;
            pos += n;
            let last = pos == pt.len();
            if self.peer_final.is_some() {
                return Err(Violation::AfterClose.into());
            }
            if matches!(self.phase, Phase::AwaitStart) {
                if frame != Frame::Control(Control::Start) {
                    return Err(Violation::ExpectedStart.into());
                }
                self.enter(Phase::Open);
                self.events.push_back(Event::Connected);
                continue;
            }
            let transfer = self
                .transfer
                .as_mut()
                .ok_or(SessionError::Protocol(Violation::BadRecordContents))?;
            match frame {
                Frame::Control(Control::Start) => return Err(Violation::WrongRole.into()),
                Frame::Control(Control::Ping) => {}
                Frame::Control(Control::Close { code }) => {
                    if !fin || !last {
                        return Err(Violation::BadClose.into());
                    }
                    self.peer_final = Some(code);
                }
                // A DATA frame ends with its body.
                Frame::Data(d) => transfer.handle_data(&d, pos - d.body.len()..pos)?,
                Frame::Control(msg) => transfer.handle_control(msg, &mut self.events)?,
            }
        }
        if fin {
            let Some(code) = self.peer_final else {
                return Err(Violation::BadClose.into());
            };
            match code {
                CloseCode::Done | CloseCode::Cancelled => {
                    if let Some(t) = &mut self.transfer {
                        t.on_peer_closed(&mut self.events);
                    }
                    if self.own_close.is_none() {
                        // Reply with our own Close once the answers we owe are out.
                        self.own_close = Some(OwnClose::Reply);
                    }
                    self.check_closed();
                }
                other => return Err(SessionError::ClosedByPeer(other)),
            }
        }
        Ok(())
    }

    /// Our FINAL record may go out: nothing is queued, and a reply to the peer's close also
    /// waits for the acknowledgements the application still owes.
    fn close_ready(&self) -> bool {
        let reply = matches!(self.own_close, Some(OwnClose::Reply));
        self.transfer
            .as_ref()
            .is_none_or(|t| !(t.has_output() || (reply && t.owes_answers())))
    }

    fn check_closed(&mut self) {
        let sent = self.sealer.as_ref().is_some_and(RecordSealer::is_finished);
        if !self.is_closed() && self.peer_final.is_some() && sent {
            self.enter(Phase::Closed);
            self.events.push_back(Event::Closed { result: Ok(()) });
        }
    }

    /// The transport reached end of stream. Clean only after the peer's FINAL record.
    ///
    /// # Errors
    /// [`SessionError::Truncated`] if the peer's FINAL `Close` did not arrive (sticky).
    pub fn handle_eof(&mut self, now: Instant) -> Result<(), SessionError> {
        self.observe(now);
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.peer_final.is_some() {
            return Ok(());
        }
        if self.client && matches!(self.phase, Phase::Handshake(_)) {
            // Servers close without a word when message 1 fails (wrong key): say so.
            return Err(self.fail(SessionError::Handshake(HandshakeError::Refused)));
        }
        Err(self.fail(SessionError::Truncated))
    }

    // ---- output -------------------------------------------------------------------------

    /// Write the next bytes to send into `out` and return their length; 0 when there is
    /// nothing to send. Call until it returns 0 after every input, timeout or request.
    ///
    /// # Errors
    /// [`BufferTooSmall`] when `out` cannot hold the next handshake message or a minimal
    /// record; nothing is consumed. [`MAX_RECORD`](crate::MAX_RECORD) bytes always suffice.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        self.observe(now);
        if !self.hs_out.is_empty() {
            let n = self.hs_out.len();
            let dst = out.get_mut(..n).ok_or(BufferTooSmall { needed: n })?;
            dst.copy_from_slice(&self.hs_out);
            self.hs_out.clear();
            self.last_send = now;
            return Ok(n);
        }
        if !self.record_due() {
            return Ok(0);
        }
        let Some(peer) = &self.peer else {
            return Ok(0);
        };
        let budget = peer.max_plaintext.min(out.len().saturating_sub(OVERHEAD));
        let start_due = self.client && !self.start_sent;
        if budget < MIN_PLAINTEXT {
            return Err(BufferTooSmall {
                needed: MIN_PLAINTEXT + OVERHEAD,
            });
        }
        let pt = &mut out[HEADER_LEN..HEADER_LEN + budget];
        let mut pos = 0;
        let mut close = self.error_close.take();
        if close.is_none() {
            if start_due {
                pos += encode_control(&Control::Start, pt).unwrap_or(0);
                self.start_sent = true;
            }
            if self.ping_pending {
                pos += encode_control(&Control::Ping, &mut pt[pos..]).unwrap_or(0);
                self.ping_pending = false;
            }
            if let Some(t) = &mut self.transfer {
                pos += t.poll_frames(now, &mut pt[pos..budget - CLOSE_RESERVE]);
                // Injected frames go after the regular ones (a peer that sends data right
                // behind its offer, without waiting for the accept).
                #[cfg(feature = "testing")]
                for raw in self.injected.drain(..) {
                    let n = raw.len().min(budget - CLOSE_RESERVE - pos);
                    pt[pos..pos + n].copy_from_slice(&raw[..n]);
                    pos += n;
                }
            }
            if self.own_close.is_some() && self.close_ready() {
                close = self.own_close.map(OwnClose::code);
            }
        }
        let fin = close.is_some();
        if let Some(code) = close {
            pos += encode_control(&Control::Close { code }, &mut pt[pos..]).unwrap_or(0);
            self.final_sent_at = Some(now);
        }
        if pos == 0 {
            return Ok(0);
        }
        let Some(sealer) = &mut self.sealer else {
            return Ok(0);
        };
        match sealer.seal(out, pos, fin) {
            Ok(n) => {
                self.last_send = now;
                if fin {
                    self.check_closed();
                }
                Ok(n)
            }
            Err(_) => {
                self.fail(SessionError::KeysExhausted);
                Ok(0)
            }
        }
    }

    /// Whether [`Session::poll_transmit`] has bytes to write now (a handshake message or a
    /// record). Adapters use it to decide whether to get an output buffer ready; it changes
    /// only on calls that take `&mut self`.
    pub fn has_transmit(&self) -> bool {
        !self.hs_out.is_empty() || self.record_due()
    }

    /// A record is owed: keys exist, our FINAL record is not out yet, and something waits
    /// (the error `Close` only, after a fatal error).
    fn record_due(&self) -> bool {
        let (Some(sealer), Some(_)) = (&self.sealer, &self.peer) else {
            return false;
        };
        if sealer.is_finished() {
            return false;
        }
        if self.error.is_some() {
            return self.error_close.is_some();
        }
        #[cfg(feature = "testing")]
        let injected_due = !self.injected.is_empty();
        #[cfg(not(feature = "testing"))]
        let injected_due = false;
        (self.client && !self.start_sent)
            || injected_due
            || self.ping_pending
            || (self.own_close.is_some() && self.close_ready())
            || self.transfer.as_ref().is_some_and(Transfer::has_output)
    }

    /// The next event, if any. Drain after every input, timeout, `read` or request.
    pub fn poll_event(&mut self) -> Option<Event> {
        let was_blocked = self.input_blocked();
        let ev = self.events.pop_front();
        self.note_unblocked(was_blocked);
        ev
    }

    /// The receive window or the event queue is full: input waits for the application.
    fn input_blocked(&self) -> bool {
        let window = self
            .transfer
            .as_ref()
            .is_some_and(|t| !t.can_take(crate::MAX_RECORD));
        window || self.events.len() >= self.config.max_events
    }

    /// The application drained what blocked input: the idle timer starts afresh.
    fn note_unblocked(&mut self, was_blocked: bool) {
        if was_blocked && !self.input_blocked() {
            self.last_recv = self.last_now;
        }
    }

    // ---- state --------------------------------------------------------------------------

    /// Whether this is the client end.
    pub fn is_client(&self) -> bool {
        self.client
    }

    /// Whether the session is connected and may carry requests (see [`Event::Connected`]).
    pub fn is_connected(&self) -> bool {
        // A clean close (no error) happens only after the session was connected.
        matches!(self.phase, Phase::Open | Phase::Closed) && self.error.is_none()
    }

    /// Whether the session is over (the `Closed` event was emitted). Drain `poll_transmit`
    /// once more, then drop the connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The fatal error, if the session failed.
    pub fn error(&self) -> Option<SessionError> {
        self.error
    }

    /// Whether `handle_input` would consume another record now: false while the receive
    /// window or the event queue is full, and after the session ended. Adapters stop reading
    /// the socket while it is false (that is how a slow disk pushes back on the sender).
    pub fn wants_input(&self) -> bool {
        !(self.is_closed() || self.peer_final.is_some() || self.input_blocked())
    }

    /// The peer's random side id from its hello (after the handshake).
    pub fn peer_side(&self) -> Option<[u8; 16]> {
        self.peer.map(|p| p.side)
    }

    /// The server's id from its hello (client side, after the handshake).
    pub fn server_id(&self) -> Option<[u8; 16]> {
        self.peer.and_then(|p| p.server_id)
    }

    /// The peer's long-term public key, authenticated by the handshake (modes PINNED and
    /// PINNED+PSK; `None` in mode PSK). Available from [`Event::Connected`] on, before any
    /// request is acted upon: a client compares it with the key it pinned, a server looks it
    /// up in its allow list, and either closes the session when it does not match.
    pub fn peer_static(&self) -> Option<[u8; 32]> {
        self.peer.and_then(|p| p.static_key)
    }

    /// Unstable test hook (feature `testing`): X25519 operations this session's handshake
    /// performed.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn _internal_dh_count(&self) -> u32 {
        match &self.phase {
            Phase::Handshake(hs) => hs.dh_count(),
            _ => self.dh_ops,
        }
    }

    /// Unstable test hook (feature `testing`): bytes of received chunks waiting for `read`.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn _internal_recv_queued(&self) -> usize {
        self.transfer.as_ref().map_or(0, Transfer::recv_queued)
    }

    /// Unstable test hook (feature `testing`): put these raw frame bytes into the next
    /// record, as a malicious or buggy peer would. They are sealed like any other frame.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn _internal_inject_frame(&mut self, frame: Vec<u8>) {
        self.injected.push(frame);
    }
}
