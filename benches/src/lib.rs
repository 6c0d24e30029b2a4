//! Shared helpers of ferry's criterion benches (`benches/benches/*.rs`, run by `cargo bench`).
//!
//! Deterministic inputs ([`random_bytes`], [`english_text`]) and a minimal driver for two
//! in-memory sessions ([`Pipe`], [`Duplex`]) with none of the test harness's link emulation:
//! the benches measure the core, not the harness.
//!
//! | bench | what |
//! |---|---|
//! | `record` | seal + open of a 64 KiB record, next to bare `aes-gcm` on the same buffer |
//! | `compress` | deflate / inflate of one 64 KiB chunk, random and text |
//! | `decode` | `wire::decode_frame` on a 64 KiB DATA frame and an Offer |
//! | `handshake` | a whole client + server handshake and close |
//! | `receive` | what a receiver does per 64 KiB record: open + inflate + BLAKE3 (text), open + BLAKE3 (random), BLAKE3 alone |
//! | `transfer` | a whole 256 MiB in-memory transfer |
//! | `dgram` | protect + unprotect of a 1 400-byte datagram packet next to bare `aes-gcm`; a whole 64 MiB in-memory datagram transfer |

use proto::testing::bench::RECORD_OVERHEAD;
use proto::{CHUNK, Config, Instant, MAX_RECORD, Psk, Session, SessionError};

/// The plaintext length of the record benches: one full chunk (64 KiB).
pub const RECORD_PLAIN: usize = CHUNK;

/// A record buffer with room for [`RECORD_PLAIN`] bytes of plaintext.
pub const RECORD_BUF: usize = RECORD_PLAIN + RECORD_OVERHEAD;

/// `len` pseudo-random bytes (splitmix64 from `seed`): incompressible, and the same every run.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Common English words, roughly by frequency: the first ones are drawn most often.
const WORDS: &str = "\
    the of and to a in is it that for was on with as be at by this had not are but from or \
    have an they which one you were all her she there would their we him been has when who \
    will no more if out so up said what its about than into them can only other time new \
    some could these two may first then do any like my now over such our man me even most \
    made after also did many off before must well back through years much where your way \
    down should because each just those people how too little state good very make world \
    still see own men work long here get both between life being under never day same \
    another know while last might great old year come since against go came right used take \
    three ferry river harbour crossing passengers morning evening weather captain water \
    island journey across quietly transfer files boat shore light wind tide north south \
    station ticket bridge";

/// `len` bytes of deterministic English-like text: words drawn with a skew towards the
/// common ones, sentences of 5 to 24 words with a capital and a full stop, commas, and a
/// line break every dozen sentences. Deflate level 1 gets about 2.1:1 on it, near what it
/// gets on prose, unlike on a repeated pattern.
pub fn english_text(len: usize, seed: u64) -> Vec<u8> {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 64);
    let mut sentences = 0u32;
    while out.len() < len {
        let r = splitmix64(&mut state);
        let count = 5 + (r % 20) as usize;
        for w in 0..count {
            let r = splitmix64(&mut state);
            // Square a uniform draw: small indices (common words) come up far more often.
            let u = (r >> 40) as f64 / (1u64 << 24) as f64;
            let word = words[((u * u) * words.len() as f64) as usize % words.len()];
            if w == 0 {
                let (first, rest) = word.split_at(1);
                out.extend_from_slice(first.to_ascii_uppercase().as_bytes());
                out.extend_from_slice(rest.as_bytes());
            } else {
                out.push(b' ');
                out.extend_from_slice(word.as_bytes());
                if r.is_multiple_of(11) && w + 1 < count {
                    out.push(b',');
                }
            }
        }
        out.push(b'.');
        sentences += 1;
        out.push(if sentences.is_multiple_of(12) {
            b'\n'
        } else {
            b' '
        });
    }
    out.truncate(len);
    out
}

/// One direction of an in-memory connection: a fixed buffer, like a socket's, that a session
/// transmits into and its peer consumes from in place. No copy beyond the sessions' own:
/// `poll_transmit` seals straight into the pipe, `handle_input` opens there.
pub struct Pipe {
    buf: Vec<u8>,
    head: usize,
    tail: usize,
}

impl Pipe {
    /// A pipe holding up to `capacity` bytes (at least [`MAX_RECORD`]).
    pub fn new(capacity: usize) -> Self {
        Pipe {
            buf: vec![0; capacity.max(MAX_RECORD)],
            head: 0,
            tail: 0,
        }
    }

    /// Whether bytes are waiting for the receiver.
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Let `from` transmit until it has nothing more to send or the pipe has no room for a
    /// largest record. Returns whether anything was sent.
    ///
    /// # Panics
    /// Never with a pipe of at least [`MAX_RECORD`] bytes (`poll_transmit` cannot run short).
    pub fn transmit(&mut self, from: &mut Session, now: Instant) -> bool {
        let mut any = false;
        loop {
            if self.buf.len() - self.tail < MAX_RECORD && self.head > 0 {
                // Bytes the receiver left unconsumed move to the front (rare: only while its
                // receive window is full).
                self.buf.copy_within(self.head..self.tail, 0);
                self.tail -= self.head;
                self.head = 0;
            }
            if self.buf.len() - self.tail < MAX_RECORD {
                return any;
            }
            let n = from
                .poll_transmit(now, &mut self.buf[self.tail..])
                .expect("a MAX_RECORD buffer always suffices");
            if n == 0 {
                return any;
            }
            self.tail += n;
            any = true;
        }
    }

    /// Feed the waiting bytes to `to`; what it does not consume stays. Returns whether it
    /// consumed anything.
    ///
    /// # Errors
    /// The session's fatal error.
    pub fn deliver(&mut self, to: &mut Session, now: Instant) -> Result<bool, SessionError> {
        if self.is_empty() {
            return Ok(false);
        }
        let n = to.handle_input(now, &mut self.buf[self.head..self.tail])?;
        self.head += n;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        Ok(n > 0)
    }
}

/// A client and a server session joined by two [`Pipe`]s, on a clock that never moves (no
/// timer fires while the benches run).
pub struct Duplex {
    /// The client.
    pub client: Session,
    /// The server.
    pub server: Session,
    /// Client to server.
    pub c2s: Pipe,
    /// Server to client.
    pub s2c: Pipe,
    /// The time every call is given.
    pub now: Instant,
}

/// The key both ends of a [`Duplex`] share.
pub const BENCH_PSK: [u8; 32] = [0x42; 32];

impl Duplex {
    /// Fresh sessions with default configs and fixed seeds; pipes of four largest records
    /// (a socket buffer's worth).
    pub fn new() -> Self {
        let cfg = Config::default();
        let psk = Psk::from_key_bytes(&BENCH_PSK);
        let now = Instant::from_micros(1_000_000);
        Duplex {
            client: Session::client(&cfg, &psk, [1; 32], now),
            server: Session::server(&cfg, &psk, [2; 32], now),
            c2s: Pipe::new(4 * MAX_RECORD),
            s2c: Pipe::new(4 * MAX_RECORD),
            now,
        }
    }

    /// One round: the client transmits, the server consumes, the server transmits, the
    /// client consumes. Returns whether any byte moved.
    ///
    /// # Panics
    /// On a session error (the benches run only clean sessions).
    pub fn exchange(&mut self) -> bool {
        let now = self.now;
        let mut any = self.c2s.transmit(&mut self.client, now);
        any |= self
            .c2s
            .deliver(&mut self.server, now)
            .expect("server session failed");
        any |= self.s2c.transmit(&mut self.server, now);
        any |= self
            .s2c
            .deliver(&mut self.client, now)
            .expect("client session failed");
        any
    }

    /// Run rounds until both sessions are closed and nothing is in flight. Each round
    /// [`Duplex::exchange`]s bytes, then `app` plays both applications (reads chunks, drains
    /// events, makes requests) and returns whether it did anything.
    ///
    /// # Panics
    /// When a round neither moves a byte nor lets `app` act (the sessions stalled), or on a
    /// session error.
    pub fn drive(&mut self, mut app: impl FnMut(&mut Duplex) -> bool) {
        while !self.finished() {
            let moved = self.exchange();
            let acted = app(self);
            assert!(moved || acted, "the sessions stalled");
        }
    }

    /// Both sessions closed and nothing in flight.
    pub fn finished(&self) -> bool {
        self.client.is_closed()
            && self.server.is_closed()
            && self.c2s.is_empty()
            && self.s2c.is_empty()
    }
}

impl Default for Duplex {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_deterministic_and_shaped() {
        assert_eq!(random_bytes(1000, 7), random_bytes(1000, 7));
        assert_ne!(random_bytes(1000, 7), random_bytes(1000, 8));
        let text = english_text(CHUNK, 1);
        assert_eq!(text.len(), CHUNK);
        assert!(text.is_ascii());
        let distinct = text.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct > 30, "only {distinct} distinct bytes");
    }
}
