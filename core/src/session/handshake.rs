//! The cleartext preamble, the mode dispatch, the Noise handshake of each mode (NNpsk0, XX,
//! XXpsk3), the hello payloads and the ferry key schedule (security.md §5.1, §5.2).
//!
//! Which hello rides in which message: NNpsk0 carries the ClientHello in message 1 and the
//! ServerHello in message 2; XX and XXpsk3 send message 1 empty (it is not encrypted), the
//! ServerHello in message 2 and the ClientHello in message 3.

use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

use crate::config::{Config, Psk};
use crate::crypto::kdf;
use crate::crypto::noise::{self, NoiseError, Pattern};
use crate::crypto::pake::Pake;
use crate::error::{HandshakeError, SessionError};
use crate::identity::Mode;
use crate::record::stream::{MAX_PLAINTEXT, MIN_PLAINTEXT};

mod code;

/// Magic at the start of every ferry connection.
pub(crate) const MAGIC: [u8; 3] = *b"FRY";
/// Protocol version carried in the preamble and both hellos.
pub(crate) const VERSION: u8 = 1;
/// Handshake mode: pre-shared key (Noise NNpsk0).
pub(crate) const MODE_PSK: u8 = 0x01;
/// Handshake mode: a short code (SPAKE2, then Noise NNpsk0 with its result; see `code.rs`).
pub(crate) const MODE_CODE: u8 = 0x02;
/// Handshake mode: static keys, the server's pinned (Noise XX).
pub(crate) const MODE_PINNED: u8 = 0x03;
/// Handshake mode: static keys and the pre-shared key (Noise XXpsk3).
pub(crate) const MODE_PINNED_PSK: u8 = 0x04;
/// Suite: X25519 / AES-256-GCM / SHA-256.
pub(crate) const SUITE_X25519_AESGCM_SHA256: u8 = 0x01;
/// What carries the session: its byte is preamble byte 6, so it is bound into the prologue and
/// a stream handshake can never be completed as a datagram one (or the other way round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A byte stream (TCP): records are sealed.
    Stream = 0,
    /// Datagrams (UDP, `crate::dgram`): packets are sealed, records only framed.
    Datagram = 1,
}

/// The preamble of a session in `mode` over `transport`.
fn preamble(transport: Transport, mode: Mode) -> [u8; 8] {
    let mut p = PREAMBLE;
    p[4] = mode.byte();
    p[6] = transport as u8;
    p
}

/// The Noise pattern of each mode (the mode dispatch).
fn pattern(mode: Mode) -> Pattern {
    match mode {
        Mode::Psk | Mode::Code => Pattern::NNpsk0,
        Mode::Pinned => Pattern::XX,
        Mode::PinnedPsk => Pattern::XXpsk3,
    }
}

/// Which hello message `i` of `pattern` carries.
fn hello_in(pattern: Pattern, i: usize) -> Hello {
    match (pattern, i) {
        (Pattern::NNpsk0, 0) => Hello::Client,
        (_, 1) => Hello::Server,
        (Pattern::XX | Pattern::XXpsk3, 2) => Hello::Client,
        _ => Hello::None,
    }
}

/// A handshake message's payload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hello {
    None,
    Client,
    Server,
}

impl Hello {
    fn len(self) -> usize {
        match self {
            Hello::None => 0,
            Hello::Client => CLIENT_HELLO_LEN,
            Hello::Server => SERVER_HELLO_LEN,
        }
    }
}

/// The cleartext preamble the client sends first (over a stream; see [`Transport::preamble`]).
pub(crate) const PREAMBLE: [u8; 8] = [
    MAGIC[0],
    MAGIC[1],
    MAGIC[2],
    VERSION,
    MODE_PSK,
    SUITE_X25519_AESGCM_SHA256,
    0,
    0,
];
/// Prologue label; the prologue is this label followed by the preamble.
const PROLOGUE_LABEL: &[u8] = b"ferry/v1 prologue";
/// Feature bit: can inflate deflated DATA chunks.
pub(crate) const FEATURE_DEFLATE: u32 = 1;

/// ClientHello: version | side[16] | features u32 | max_plaintext u32 | max_open u16.
const CLIENT_HELLO_LEN: usize = 1 + 16 + 4 + 4 + 2;
/// ServerHello: version | side[16] | server_id[16] | features u32 | max_plaintext u32 | max_open u16.
const SERVER_HELLO_LEN: usize = 1 + 16 + 16 + 4 + 4 + 2;
/// Longest handshake message of any mode (XX message 2: e, encrypted s, ServerHello, tag).
const MAX_MSG_LEN: usize = 32 + 48 + SERVER_HELLO_LEN + 16;
/// Handshake messages travel as `len u16 | message`.
const LEN_PREFIX: usize = 2;
/// What a server sends instead of message 2 when it cannot take the connection (too many
/// connections, or evicted while still in the handshake): a zero length, which no message
/// has, then `"busy"`. Plaintext and fixed, so it tells a peer nothing but "busy".
pub const BUSY_REFUSAL: [u8; 6] = *b"\0\0busy";
/// What a server sends instead of its first handshake message when the client asked for
/// another mode: a zero length, `"mode"`, then the preamble mode byte the server requires.
/// Plaintext, like [`BUSY_REFUSAL`], so that an old or misconfigured client hears why
/// instead of waiting. It proves nothing (anyone on the path can forge it): a client only
/// reports it, and never weakens its own mode because of it.
pub const MODE_REFUSAL: [u8; 6] = *b"\0\0mode";
/// What a server in mode CODE sends instead of message 2 when message 1 failed its tag: the
/// codes differ (or the exchange was tampered with). The code is burned either way.
pub(crate) const CODE_REFUSAL: [u8; 6] = *b"\0\0code";

/// What the peer announced in its hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerHello {
    pub(crate) side: [u8; 16],
    pub(crate) server_id: Option<[u8; 16]>,
    pub(crate) features: u32,
    pub(crate) max_plaintext: usize,
    pub(crate) max_open: usize,
    /// The peer's static public key (PINNED modes), authenticated by the handshake.
    pub(crate) static_key: Option<[u8; 32]>,
}

/// The result of a finished handshake.
pub(crate) struct Established {
    pub(crate) send_secret: Zeroizing<[u8; 32]>,
    pub(crate) recv_secret: Zeroizing<[u8; 32]>,
    pub(crate) peer: PeerHello,
}

enum Stage {
    /// Server: waiting for the 8-byte preamble.
    ServerPreamble,
    /// Mode CODE: waiting for the peer's SPAKE2 message.
    Pake,
    /// Waiting for the peer's next handshake message (or writing ours).
    Messages,
    Done,
}

/// Handshake state of one session.
pub(crate) struct Handshake {
    client: bool,
    transport: Transport,
    mode: Mode,
    stage: Stage,
    noise: Option<noise::Handshake>,
    psk: Psk,
    /// Our long-term private key in the PINNED modes (a client without an identity: a fresh
    /// one from the seed).
    static_secret: Zeroizing<[u8; 32]>,
    /// Its public key, when it is an identity's (which keeps it).
    static_public: Option<[u8; 32]>,
    side: [u8; 16],
    ephemeral: Zeroizing<[u8; 32]>,
    features: u32,
    max_plaintext: usize,
    max_open: u16,
    server_id: [u8; 16],
    expected_server_id: Option<[u8; 16]>,
    /// The peer's hello, once read.
    peer: Option<PeerHello>,
    /// Handshake messages written or read so far.
    done: usize,
    /// Mode CODE: the SPAKE2 exchange until it finished, then its PSK and transcript hash.
    pake: Option<Pake>,
    pake_psk: Option<Zeroizing<[u8; 32]>>,
    transcript: Option<[u8; 32]>,
    /// Bytes to transmit (preamble and our messages), drained by `poll_transmit`.
    pub(crate) out: Vec<u8>,
}

fn prologue(transport: Transport, mode: Mode) -> [u8; PROLOGUE_LABEL.len() + PREAMBLE.len()] {
    let mut p = [0u8; PROLOGUE_LABEL.len() + PREAMBLE.len()];
    p[..PROLOGUE_LABEL.len()].copy_from_slice(PROLOGUE_LABEL);
    p[PROLOGUE_LABEL.len()..].copy_from_slice(&preamble(transport, mode));
    p
}

fn noise_err(e: NoiseError) -> SessionError {
    match e {
        NoiseError::Authentication => SessionError::Authentication,
        NoiseError::NonContributory => HandshakeError::NonContributory.into(),
        NoiseError::BadLength
        | NoiseError::BufferTooSmall
        | NoiseError::OutOfOrder
        | NoiseError::NonceExhausted => HandshakeError::BadLength.into(),
    }
}

impl Handshake {
    fn new(client: bool, transport: Transport, config: &Config, psk: &Psk, seed: [u8; 32]) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut ephemeral[..]);
        let mut side = [0u8; 16];
        rng.fill_bytes(&mut side);
        let mut static_secret = Zeroizing::new([0u8; 32]);
        match &config.identity {
            Some(id) => static_secret.copy_from_slice(id.secret_bytes()),
            None => rng.fill_bytes(&mut static_secret[..]),
        }
        // Mode CODE: the code decides the mode; the SPAKE2 scalar is the seed's next draw.
        let pake = psk
            .code()
            .map(|c| Pake::start(client, &c.nameplate, &c.password, &mut rng));
        Handshake {
            client,
            transport,
            mode: if pake.is_some() {
                Mode::Code
            } else {
                config.mode
            },
            stage: if client {
                Stage::Messages
            } else {
                Stage::ServerPreamble
            },
            noise: None,
            psk: psk.clone(),
            static_secret,
            static_public: config.identity.as_ref().map(crate::Identity::public_key),
            side,
            ephemeral,
            features: if config.accept_compression {
                FEATURE_DEFLATE
            } else {
                0
            },
            max_plaintext: config.max_plaintext,
            max_open: config.max_open,
            server_id: config.server_id,
            expected_server_id: config.expected_server_id,
            peer: None,
            done: 0,
            pake,
            pake_psk: None,
            transcript: None,
            out: Vec::new(),
        }
    }

    /// The Noise state machine of our mode.
    fn start_noise(&mut self) {
        let keys = noise::Keys {
            psk: self.pake_psk.as_deref().unwrap_or(self.psk.bytes()),
            static_secret: &self.static_secret,
            static_public: self.static_public,
            ephemeral_secret: *self.ephemeral,
        };
        let mut prologue = prologue(self.transport, self.mode).to_vec();
        prologue.extend_from_slice(self.transcript.as_ref().map_or(&[][..], |t| &t[..]));
        self.noise = Some(noise::Handshake::new(
            pattern(self.mode),
            self.client,
            &prologue,
            &keys,
        ));
    }

    /// A client handshake; the preamble and message 1 are queued at once.
    pub(crate) fn client(
        transport: Transport,
        config: &Config,
        psk: &Psk,
        seed: [u8; 32],
    ) -> Result<Self, SessionError> {
        let mut hs = Self::new(true, transport, config, psk, seed);
        hs.out.extend_from_slice(&preamble(transport, hs.mode));
        if hs.send_pake() {
            return Ok(hs);
        }
        hs.start_noise();
        hs.write_next()?;
        Ok(hs)
    }

    /// A server handshake, waiting for the client's preamble.
    pub(crate) fn server(transport: Transport, config: &Config, psk: &Psk, seed: [u8; 32]) -> Self {
        Self::new(false, transport, config, psk, seed)
    }

    /// X25519 operations done so far (a wrong PSK must cost the server none).
    pub(crate) fn dh_count(&self) -> u32 {
        self.noise.as_ref().map_or(0, noise::Handshake::dh_count)
    }

    /// Write our next message (with its hello) to `out` while it is our turn; when the
    /// handshake is then complete, return the result.
    fn write_next(&mut self) -> Result<Option<Established>, SessionError> {
        let limits = self.limits();
        let noise = self.noise.as_mut().ok_or(HandshakeError::BadLength)?;
        if noise.is_write_turn() {
            let mut payload = [0u8; SERVER_HELLO_LEN];
            let hello = hello_in(pattern(self.mode), self.done);
            let payload = &mut payload[..hello.len()];
            match hello {
                Hello::None => {}
                Hello::Client => {
                    payload[0] = VERSION;
                    payload[1..17].copy_from_slice(&self.side);
                    payload[17..27].copy_from_slice(&limits);
                }
                Hello::Server => {
                    payload[0] = VERSION;
                    payload[1..17].copy_from_slice(&self.side);
                    payload[17..33].copy_from_slice(&self.server_id);
                    payload[33..43].copy_from_slice(&limits);
                }
            }
            let mut msg = [0u8; MAX_MSG_LEN];
            let n = noise.write_message(payload, &mut msg).map_err(noise_err)?;
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
            self.out.extend_from_slice(&msg[..n]);
            self.done += 1;
        }
        self.finish_if_done()
    }

    /// `features | max_plaintext | max_open`, the tail of both hellos.
    fn limits(&self) -> [u8; 10] {
        let mut t = [0u8; 10];
        t[..4].copy_from_slice(&self.features.to_be_bytes());
        t[4..8].copy_from_slice(&(self.max_plaintext as u32).to_be_bytes());
        t[8..].copy_from_slice(&self.max_open.to_be_bytes());
        t
    }

    /// The keys, once the last message is through.
    fn finish_if_done(&mut self) -> Result<Option<Established>, SessionError> {
        if !self
            .noise
            .as_ref()
            .is_some_and(noise::Handshake::is_finished)
        {
            return Ok(None);
        }
        let noise = self.noise.take().ok_or(HandshakeError::BadLength)?;
        let mut peer = self.peer.ok_or(HandshakeError::BadHello)?;
        peer.static_key = noise.remote_static();
        let split = noise.split().map_err(noise_err)?;
        let (c2s, s2c) = schedule(&split);
        self.stage = Stage::Done;
        let (send_secret, recv_secret) = if self.client { (c2s, s2c) } else { (s2c, c2s) };
        Ok(Some(Established {
            send_secret,
            recv_secret,
            peer,
        }))
    }

    /// Read the peer's message `msg` (its hello, if it carries one), then write ours.
    fn read_next(&mut self, msg: &[u8]) -> Result<Option<Established>, SessionError> {
        let noise = self.noise.as_mut().ok_or(HandshakeError::BadLength)?;
        let hello = hello_in(pattern(self.mode), self.done);
        let mut payload = [0u8; SERVER_HELLO_LEN];
        let payload = &mut payload[..hello.len()];
        noise.read_message(msg, payload).map_err(noise_err)?;
        self.done += 1;
        match hello {
            Hello::None => {}
            Hello::Client => {
                self.peer = Some(parse_hello(&payload[..1], &payload[1..17], &payload[17..])?);
            }
            Hello::Server => {
                let peer = parse_hello(&payload[..1], &payload[1..17], &payload[33..])?;
                let mut server_id = [0u8; 16];
                server_id.copy_from_slice(&payload[17..33]);
                if self.expected_server_id.is_some_and(|id| id != server_id) {
                    return Err(HandshakeError::WrongServer.into());
                }
                self.peer = Some(PeerHello {
                    server_id: Some(server_id),
                    ..peer
                });
            }
        }
        self.write_next()
    }

    /// Check the client's preamble; a client asking for another mode hears
    /// [`MODE_REFUSAL`] and the mode this server requires.
    fn check_preamble(&mut self, p: &[u8]) -> Result<(), SessionError> {
        if p[3] != VERSION {
            return Err(HandshakeError::UnsupportedVersion(p[3]).into());
        }
        if p[5] != SUITE_X25519_AESGCM_SHA256 || p[7] != 0 {
            return Err(HandshakeError::UnsupportedSuite(p[5]).into());
        }
        if p[6] != self.transport as u8 {
            return Err(HandshakeError::WrongTransport(p[6]).into());
        }
        if p[4] != self.mode.byte() {
            self.out.extend_from_slice(&MODE_REFUSAL);
            self.out.push(self.mode.byte());
            return Err(HandshakeError::UnsupportedMode(p[4]).into());
        }
        Ok(())
    }

    /// A zero length in place of the server's message: its busy or mode refusal, as an
    /// error once complete (`Ok` while more bytes are needed).
    fn refusal(rest: &[u8]) -> Result<(), SessionError> {
        let n = rest.len().min(BUSY_REFUSAL.len());
        if rest[..n] == BUSY_REFUSAL[..n] {
            if n < BUSY_REFUSAL.len() {
                return Ok(());
            }
            return Err(HandshakeError::Busy.into());
        }
        if let Some(e) = code::refusal(rest) {
            return e;
        }
        if rest[..n] == MODE_REFUSAL[..n] {
            return match rest.get(MODE_REFUSAL.len()) {
                None => Ok(()),
                Some(&m) => Err(HandshakeError::ModeRequired(m).into()),
            };
        }
        Err(HandshakeError::BadLength.into())
    }

    /// Consume handshake bytes from the front of `input`. Returns the bytes used and, when
    /// the handshake is complete, the traffic secrets.
    pub(crate) fn handle_input(
        &mut self,
        input: &[u8],
    ) -> Result<(usize, Option<Established>), SessionError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.stage {
                Stage::Done => return Ok((used, None)),
                Stage::ServerPreamble => {
                    // Reject a foreign protocol as early as its first bytes allow.
                    let n = rest.len().min(MAGIC.len());
                    if rest[..n] != MAGIC[..n] {
                        return Err(HandshakeError::NotFerry.into());
                    }
                    if rest.len() < PREAMBLE.len() {
                        return Ok((used, None));
                    }
                    self.check_preamble(&rest[..PREAMBLE.len()])?;
                    used += PREAMBLE.len();
                    if self.pake.is_some() {
                        self.stage = Stage::Pake;
                        continue;
                    }
                    self.start_noise();
                    self.stage = Stage::Messages;
                }
                Stage::Pake => match self.code_step(rest)? {
                    0 => return Ok((used, None)),
                    n => used += n,
                },
                Stage::Messages => {
                    let noise = self.noise.as_ref().ok_or(HandshakeError::BadLength)?;
                    let hello = hello_in(pattern(self.mode), self.done);
                    let expected = noise.next_message_len(hello.len());
                    if rest.len() < LEN_PREFIX {
                        return Ok((used, None));
                    }
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if self.client && len == 0 && self.done == 1 {
                        // A refusal in place of the server's first message.
                        Self::refusal(rest)?;
                        return Ok((used, None));
                    }
                    if len != expected {
                        return Err(HandshakeError::BadLength.into());
                    }
                    if rest.len() < LEN_PREFIX + len {
                        return Ok((used, None));
                    }
                    let msg = &rest[LEN_PREFIX..LEN_PREFIX + len];
                    used += LEN_PREFIX + len;
                    if let Some(est) = self.read_next(msg).map_err(|e| self.burn_code(e))? {
                        return Ok((used, Some(est)));
                    }
                }
            }
        }
    }
}

/// Validate the common hello fields: `version`, `side`, then `features | max_plaintext | max_open`.
fn parse_hello(version: &[u8], side: &[u8], tail: &[u8]) -> Result<PeerHello, SessionError> {
    if version != [VERSION] {
        return Err(HandshakeError::BadHello.into());
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(side);
    let features = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let max_plaintext = u32::from_be_bytes([tail[4], tail[5], tail[6], tail[7]]) as usize;
    let max_open = usize::from(u16::from_be_bytes([tail[8], tail[9]]));
    if !(MIN_PLAINTEXT..=MAX_PLAINTEXT).contains(&max_plaintext) || max_open == 0 {
        return Err(HandshakeError::BadHello.into());
    }
    Ok(PeerHello {
        side: s,
        server_id: None,
        features,
        max_plaintext,
        max_open,
        static_key: None,
    })
}

/// ferry's traffic secrets from Noise's split keys, bound to the handshake hash.
fn schedule(split: &noise::Split) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut c2s = Zeroizing::new([0u8; 32]);
    let mut s2c = Zeroizing::new([0u8; 32]);
    kdf::expand(
        &split.k1,
        &[b"ferry/v1 c2s", &split.handshake_hash],
        &mut c2s[..],
    );
    kdf::expand(
        &split.k2,
        &[b"ferry/v1 s2c", &split.handshake_hash],
        &mut s2c[..],
    );
    (c2s, s2c)
}
