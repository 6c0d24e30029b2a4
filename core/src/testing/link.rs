//! A one-way in-memory byte link that splits, delays and coalesces what crosses it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use crate::time::Instant;

/// A small deterministic PRNG (xorshift64*), so every run with the same seed is identical.
#[derive(Debug, Clone)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        TestRng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// 32 random bytes (for session seeds).
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        for c in s.chunks_mut(8) {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        s
    }
}

/// How a link mangles timing and segmentation (never content: the record layer's job is to
/// catch content changes, and hostile-input tests mutate recorded streams directly).
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Base one-way delay.
    pub latency: Duration,
    /// Extra random delay up to this much per segment (order is preserved, as on TCP).
    pub jitter: Duration,
    /// Segments are cut at random sizes in `1..=max_segment`.
    pub max_segment: usize,
    /// Bytes in flight plus bytes waiting unconsumed at the receiver, at most (a TCP window):
    /// the sender stops transmitting while the link is full.
    pub window: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(3),
            max_segment: 1500,
            window: 256 * 1024,
        }
    }
}

/// One direction of an in-memory connection.
#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    rng: TestRng,
    queue: VecDeque<(Instant, Vec<u8>)>,
    last_at: Instant,
    /// Every byte ever sent, in order (a recording of the session for replay tests).
    pub log: Vec<u8>,
}

impl Link {
    /// An empty link.
    pub fn new(cfg: LinkConfig, seed: u64) -> Self {
        Link {
            cfg,
            rng: TestRng::new(seed),
            queue: VecDeque::new(),
            last_at: Instant::ZERO,
            log: Vec::new(),
        }
    }

    /// Send `bytes` at `now`: cut into random segments, each due after latency plus jitter,
    /// never before the previous segment.
    pub fn send(&mut self, now: Instant, bytes: &[u8]) {
        self.log.extend_from_slice(bytes);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = 1 + self.rng.below(self.cfg.max_segment as u64) as usize;
            let n = n.min(rest.len());
            let jitter = self.rng.below(self.cfg.jitter.as_micros() as u64 + 1);
            let at = (now + self.cfg.latency + Duration::from_micros(jitter)).max(self.last_at);
            self.last_at = at;
            self.queue.push_back((at, rest[..n].to_vec()));
            rest = &rest[n..];
        }
    }

    /// Move every segment due at `now` into `inbox` (coalescing them).
    pub fn deliver(&mut self, now: Instant, inbox: &mut Vec<u8>) -> bool {
        let mut moved = false;
        while let Some((at, _)) = self.queue.front() {
            if *at > now {
                break;
            }
            if let Some((_, seg)) = self.queue.pop_front() {
                inbox.extend_from_slice(&seg);
                moved = true;
            }
        }
        moved
    }

    /// When the next segment is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _)| *at)
    }

    /// Bytes in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.iter().map(|(_, s)| s.len()).sum()
    }

    /// The configured window.
    pub fn window(&self) -> usize {
        self.cfg.window
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
