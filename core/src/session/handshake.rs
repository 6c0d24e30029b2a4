//! The cleartext preamble, the `Noise_NNpsk0_25519_AESGCM_SHA256` handshake, the hello
//! payloads and the ferry key schedule (security.md §5.1, §5.2).

use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

use crate::config::{Config, Psk};
use crate::crypto::kdf;
use crate::crypto::noise::{self, NoiseError};
use crate::crypto::pake::{self, Pake};
use crate::error::{HandshakeError, SessionError};
use crate::record::stream::{MAX_PLAINTEXT, MIN_PLAINTEXT};

mod code;
use code::refusal;

/// Magic at the start of every ferry connection.
pub(crate) const MAGIC: [u8; 3] = *b"FRY";
/// Protocol version carried in the preamble and both hellos.
pub(crate) const VERSION: u8 = 1;
/// Handshake mode: pre-shared key (Noise NNpsk0).
pub(crate) const MODE_PSK: u8 = 0x01;
/// Handshake mode: a short code (SPAKE2, then Noise NNpsk0 with its result; see `code.rs`).
pub(crate) const MODE_CODE: u8 = 0x02;
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

impl Transport {
    /// The preamble of a session over this transport.
    pub(crate) fn preamble(self) -> [u8; 8] {
        let mut p = PREAMBLE;
        p[6] = self as u8;
        p
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
/// Length of a handshake message carrying `payload` bytes: ephemeral key, payload, tag.
const fn msg_len(payload: usize) -> usize {
    32 + payload + 16
}
/// Handshake messages travel as `len u16 | message`.
const LEN_PREFIX: usize = 2;
/// What a server sends instead of message 2 when it cannot take the connection (too many
/// connections, or evicted while still in the handshake): a zero length, which no message
/// has, then `"busy"`. Plaintext and fixed, so it tells a peer nothing but "busy".
pub const BUSY_REFUSAL: [u8; 6] = *b"\0\0busy";
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
}

/// The result of a finished handshake.
pub(crate) struct Established {
    pub(crate) send_secret: Zeroizing<[u8; 32]>,
    pub(crate) recv_secret: Zeroizing<[u8; 32]>,
    pub(crate) peer: PeerHello,
}

enum Stage {
    /// Client, mode CODE: waiting for the server's SPAKE2 message.
    ClientPake,
    /// Client: waiting for message 2.
    ClientAwait,
    /// Server, mode CODE: waiting for the client's SPAKE2 message.
    ServerPake,
    /// Server: waiting for the 8-byte preamble.
    ServerPreamble,
    /// Server: waiting for message 1.
    ServerAwait,
    Done,
}

/// Handshake state of one session.
pub(crate) struct Handshake {
    client: bool,
    transport: Transport,
    stage: Stage,
    noise: Option<noise::Handshake>,
    psk: Psk,
    /// Mode CODE: the SPAKE2 exchange until it finished.
    pake: Option<Pake>,
    side: [u8; 16],
    ephemeral: Zeroizing<[u8; 32]>,
    features: u32,
    max_plaintext: usize,
    max_open: u16,
    server_id: [u8; 16],
    expected_server_id: Option<[u8; 16]>,
    /// Bytes to transmit (preamble and our message), drained by `poll_transmit`.
    pub(crate) out: Vec<u8>,
}

/// The preamble of a session over `transport` in handshake mode `mode`.
fn preamble(transport: Transport, mode: u8) -> [u8; 8] {
    let mut p = transport.preamble();
    p[4] = mode;
    p
}

/// The Noise prologue: the label, the preamble and, in mode CODE, the SPAKE2 transcript hash.
fn prologue(transport: Transport, mode: u8, transcript: Option<&[u8; 32]>) -> Vec<u8> {
    let mut p = Vec::with_capacity(PROLOGUE_LABEL.len() + PREAMBLE.len() + 32);
    p.extend_from_slice(PROLOGUE_LABEL);
    p.extend_from_slice(&preamble(transport, mode));
    p.extend_from_slice(transcript.map_or(&[][..], |t| &t[..]));
    p
}

impl Handshake {
    fn mode(&self) -> u8 {
        if self.psk.code().is_some() {
            MODE_CODE
        } else {
            MODE_PSK
        }
    }
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
        // Mode CODE: the SPAKE2 scalar is the seed's third draw.
        let pake = psk
            .code()
            .map(|c| Pake::start(client, &c.nameplate, &c.password, &mut rng));
        Handshake {
            client,
            transport,
            stage: if client {
                Stage::ClientAwait
            } else {
                Stage::ServerPreamble
            },
            noise: None,
            psk: psk.clone(),
            pake,
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
            out: Vec::new(),
        }
    }

    /// A client handshake; the preamble and message 1 are queued at once.
    pub(crate) fn client(
        transport: Transport,
        config: &Config,
        psk: &Psk,
        seed: [u8; 32],
    ) -> Result<Self, SessionError> {
        let mut hs = Self::new(true, transport, config, psk, seed);
        hs.out.extend_from_slice(&preamble(transport, hs.mode()));
        if let Some(pake) = &hs.pake {
            hs.out
                .extend_from_slice(&(pake::MSG_LEN as u16).to_be_bytes());
            hs.out.extend_from_slice(pake.message());
            hs.stage = Stage::ClientPake;
            return Ok(hs);
        }
        let prologue = prologue(transport, MODE_PSK, None);
        let psk = Zeroizing::new(*hs.psk.bytes());
        hs.write_message_1(&prologue, &psk)?;
        Ok(hs)
    }

    /// Queue Noise message 1 (the client's hello).
    fn write_message_1(&mut self, prologue: &[u8], psk: &[u8; 32]) -> Result<(), SessionError> {
        let hs = self;
        let mut noise = noise::Handshake::initiator(prologue, psk, *hs.ephemeral);
        let mut hello = [0u8; CLIENT_HELLO_LEN];
        hello[0] = VERSION;
        hello[1..17].copy_from_slice(&hs.side);
        hello[17..21].copy_from_slice(&hs.features.to_be_bytes());
        hello[21..25].copy_from_slice(&(hs.max_plaintext as u32).to_be_bytes());
        hello[25..27].copy_from_slice(&hs.max_open.to_be_bytes());
        let len = msg_len(CLIENT_HELLO_LEN);
        let mut msg = [0u8; msg_len(SERVER_HELLO_LEN)];
        let n = noise
            .write_message(&hello, &mut msg[..len])
            .map_err(noise_err)?;
        hs.out.extend_from_slice(&(n as u16).to_be_bytes());
        hs.out.extend_from_slice(&msg[..n]);
        hs.noise = Some(noise);
        Ok(())
    }

    /// A server handshake, waiting for the client's preamble.
    pub(crate) fn server(transport: Transport, config: &Config, psk: &Psk, seed: [u8; 32]) -> Self {
        Self::new(false, transport, config, psk, seed)
    }

    /// X25519 operations done so far (a wrong PSK must cost the server none).
    pub(crate) fn dh_count(&self) -> u32 {
        self.noise.as_ref().map_or(0, noise::Handshake::dh_count)
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
                    let p = &rest[..PREAMBLE.len()];
                    if p[3] != VERSION {
                        return Err(HandshakeError::UnsupportedVersion(p[3]).into());
                    }
                    if p[4] != self.mode() {
                        return Err(HandshakeError::UnsupportedMode(p[4]).into());
                    }
                    if p[5] != SUITE_X25519_AESGCM_SHA256 || p[7] != 0 {
                        return Err(HandshakeError::UnsupportedSuite(p[5]).into());
                    }
                    if p[6] != self.transport as u8 {
                        return Err(HandshakeError::WrongTransport(p[6]).into());
                    }
                    used += PREAMBLE.len();
                    if self.pake.is_some() {
                        self.stage = Stage::ServerPake;
                        continue;
                    }
                    self.noise = Some(noise::Handshake::responder(
                        &prologue(self.transport, MODE_PSK, None),
                        self.psk.bytes(),
                        *self.ephemeral,
                    ));
                    self.stage = Stage::ServerAwait;
                }
                Stage::ClientPake | Stage::ServerPake => match self.code_step(rest)? {
                    0 => return Ok((used, None)),
                    n => used += n,
                },
                Stage::ServerAwait | Stage::ClientAwait => {
                    let payload_len = if self.client {
                        SERVER_HELLO_LEN
                    } else {
                        CLIENT_HELLO_LEN
                    };
                    let expected = msg_len(payload_len);
                    if rest.len() < LEN_PREFIX {
                        return Ok((used, None));
                    }
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if self.client && len == 0 {
                        // The server's refusal (`BUSY_REFUSAL`, `CODE_REFUSAL`) in place of
                        // message 2.
                        return match refusal(rest)? {
                            None => Ok((used, None)),
                            Some(e) => Err(e),
                        };
                    }
                    if len != expected {
                        return Err(HandshakeError::BadLength.into());
                    }
                    if rest.len() < LEN_PREFIX + len {
                        return Ok((used, None));
                    }
                    let msg = &rest[LEN_PREFIX..LEN_PREFIX + len];
                    used += LEN_PREFIX + len;
                    let est = if self.client {
                        self.client_finish(msg)?
                    } else {
                        self.server_reply(msg).map_err(|e| self.burn_code(e))?
                    };
                    self.stage = Stage::Done;
                    return Ok((used, Some(est)));
                }
            }
        }
    }

    fn client_finish(&mut self, msg: &[u8]) -> Result<Established, SessionError> {
        let mut noise = self.noise.take().ok_or(HandshakeError::BadLength)?;
        let mut hello = [0u8; SERVER_HELLO_LEN];
        noise.read_message(msg, &mut hello).map_err(noise_err)?;
        let peer = parse_hello(&hello[..1], &hello[1..17], &hello[33..])?;
        let mut server_id = [0u8; 16];
        server_id.copy_from_slice(&hello[17..33]);
        if self.expected_server_id.is_some_and(|id| id != server_id) {
            return Err(HandshakeError::WrongServer.into());
        }
        let peer = PeerHello {
            server_id: Some(server_id),
            ..peer
        };
        let split = noise.split().map_err(noise_err)?;
        let (c2s, s2c) = schedule(&split);
        Ok(Established {
            send_secret: c2s,
            recv_secret: s2c,
            peer,
        })
    }

    fn server_reply(&mut self, msg: &[u8]) -> Result<Established, SessionError> {
        let mut noise = self.noise.take().ok_or(HandshakeError::BadLength)?;
        let mut hello = [0u8; CLIENT_HELLO_LEN];
        noise.read_message(msg, &mut hello).map_err(noise_err)?;
        let peer = parse_hello(&hello[..1], &hello[1..17], &hello[17..])?;
        let mut reply = [0u8; SERVER_HELLO_LEN];
        reply[0] = VERSION;
        reply[1..17].copy_from_slice(&self.side);
        reply[17..33].copy_from_slice(&self.server_id);
        reply[33..37].copy_from_slice(&self.features.to_be_bytes());
        reply[37..41].copy_from_slice(&(self.max_plaintext as u32).to_be_bytes());
        reply[41..43].copy_from_slice(&self.max_open.to_be_bytes());
        let mut out = [0u8; msg_len(SERVER_HELLO_LEN)];
        let n = noise.write_message(&reply, &mut out).map_err(noise_err)?;
        self.out.extend_from_slice(&(n as u16).to_be_bytes());
        self.out.extend_from_slice(&out[..n]);
        let split = noise.split().map_err(noise_err)?;
        let (c2s, s2c) = schedule(&split);
        Ok(Established {
            send_secret: s2c,
            recv_secret: c2s,
            peer,
        })
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
