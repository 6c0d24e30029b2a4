//! Session configuration and the pre-shared key.

use core::time::Duration;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::compress::Compression;
use crate::crypto::kdf;
use crate::identity::{Identity, Mode};
use crate::record::keys::REKEY_INTERVAL;
use crate::record::stream::{MAX_PLAINTEXT, MAX_RECORD, MIN_PLAINTEXT};

/// Knobs of a session. Every buffer the core keeps is bounded by one of these.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Whether this side deflates the DATA chunks it sends (when the peer can inflate).
    pub compression: Compression,
    /// Whether this side accepts deflated chunks (advertised in the hello).
    pub accept_compression: bool,
    /// Largest record plaintext this side accepts (advertised; clamped to the protocol range).
    pub max_plaintext: usize,
    /// Most transfers and requests the peer may have open towards this side at once.
    pub max_open: u16,
    /// Bound on file bytes queued by `write` and not yet sealed.
    pub send_buffer: usize,
    /// Bound on received, still-encoded chunk bytes not yet taken by `read`.
    pub recv_window: usize,
    /// `handle_input` stops consuming while this many events wait in `poll_event`.
    pub max_events: usize,
    /// The handshake (and, on the server, the client's key confirmation) must finish within this.
    pub handshake_timeout: Duration,
    /// The session fails when nothing authenticated arrives for this long.
    pub idle_timeout: Duration,
    /// A keep-alive is sent when this side has sent nothing for this long.
    pub keepalive_interval: Duration,
    /// After sending its FINAL record, how long this side waits for the peer's, counted from
    /// the peer's last record. Keep it above the peer's keep-alive interval (15 s by default):
    /// a peer still committing files pings while it works.
    pub close_timeout: Duration,
    /// The server's persistent 16-byte id, sent in its hello (server side).
    pub server_id: [u8; 16],
    /// The server id the client insists on, if pinned (client side).
    pub expected_server_id: Option<[u8; 16]>,
    /// The handshake mode: a client asks for it, a server requires it.
    pub mode: Mode,
    /// This side's long-term key in the PINNED modes (a server needs one; a client without
    /// one uses a fresh anonymous key from its seed).
    pub identity: Option<Identity>,
    /// Unstable test hook (feature `testing`): records per key epoch (both sides must
    /// agree). Not part of the public API; the protocol value is 2^20.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub _internal_rekey_interval: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            compression: Compression::Off,
            accept_compression: true,
            max_plaintext: MAX_PLAINTEXT,
            max_open: 1024,
            send_buffer: 4 * MAX_RECORD,
            recv_window: 4 * MAX_RECORD,
            max_events: 1024,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(15),
            close_timeout: Duration::from_secs(30),
            server_id: [0; 16],
            expected_server_id: None,
            mode: Mode::Psk,
            identity: None,
            #[cfg(feature = "testing")]
            _internal_rekey_interval: REKEY_INTERVAL,
        }
    }
}

impl Config {
    /// Records per key epoch: the protocol's 2^20 (tests may shorten it).
    pub(crate) fn rekey_interval(&self) -> u64 {
        #[cfg(feature = "testing")]
        return self._internal_rekey_interval;
        #[cfg(not(feature = "testing"))]
        REKEY_INTERVAL
    }

    /// The values the session really uses: limits clamped into the ranges the protocol allows.
    pub(crate) fn clamped(&self) -> Config {
        let mut c = self.clone();
        c.max_plaintext = c.max_plaintext.clamp(MIN_PLAINTEXT, MAX_PLAINTEXT);
        c.max_open = c.max_open.max(1);
        c.send_buffer = c.send_buffer.max(1);
        c.recv_window = c.recv_window.max(MAX_RECORD);
        c.max_events = c.max_events.max(16);
        c
    }
}

/// The Noise pre-shared key, derived from a key file's 32 random bytes, or a short code whose
/// PSK the handshake first agrees on with SPAKE2 (mode CODE, [`Code::psk`](crate::Code::psk)). Zeroized on
/// drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Psk {
    key: [u8; 32],
    code: Option<CodeSecret>,
}

/// A short code's two parts: the nameplate (routes; not secret) and the words (the password).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct CodeSecret {
    pub(crate) nameplate: alloc::vec::Vec<u8>,
    pub(crate) password: alloc::vec::Vec<u8>,
}

impl Psk {
    /// Derive the PSK from key-file bytes: `HKDF-SHA256(salt = "ferry/v1 psk", ikm = key,
    /// info = "noise psk")`, so the raw key is never used as a key anywhere else.
    pub fn from_key_bytes(key: &[u8; 32]) -> Psk {
        let mut psk = [0u8; 32];
        kdf::extract_expand(b"ferry/v1 psk", key, &[b"noise psk"], &mut psk);
        Psk {
            key: psk,
            code: None,
        }
    }

    /// A code's nameplate and words: the handshake runs SPAKE2 over the words and uses its
    /// result as the PSK. `key` (what [`Psk::bytes`] returns) is then derived from the
    /// nameplate alone and is not secret: only the datagram transport's handshake packet
    /// protection uses it, as QUIC's Initial keys.
    pub(crate) fn with_code(nameplate: &[u8], password: &[u8]) -> Psk {
        let mut key = [0u8; 32];
        kdf::extract_expand(
            b"ferry/v1 code initial",
            nameplate,
            &[b"noise psk"],
            &mut key,
        );
        Psk {
            key,
            code: Some(CodeSecret {
                nameplate: nameplate.to_vec(),
                password: password.to_vec(),
            }),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The code, in mode CODE.
    pub(crate) fn code(&self) -> Option<&CodeSecret> {
        self.code.as_ref()
    }
}

impl core::fmt::Debug for Psk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Psk(..)")
    }
}
