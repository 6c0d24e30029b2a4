//! Path MTU discovery (RFC 8899 style, as udp.md §4.8 describes): start at [`MIN_MTU`], probe
//! upward with padded PING packets once the handshake is done (a lost probe is not a
//! congestion signal), binary search between what worked and what did not, re-probe every
//! 10 minutes, and fall back to [`MIN_MTU`] on a black hole.

use core::time::Duration;

use crate::dgram::MIN_MTU;
use crate::time::Instant;

/// Attempts per probe size before it counts as too big.
const PROBE_ATTEMPTS: u8 = 3;
/// The search stops when the bounds are this close.
const SEARCH_DONE: u16 = 16;
/// How often a finished search starts again (the path may have changed).
const REPROBE: Duration = Duration::from_secs(600);

/// Discovery state of one path.
#[derive(Debug, Clone)]
pub(crate) struct Mtu {
    enabled: bool,
    current: u16,
    max: u16,
    /// Smallest size known not to work (`max + 1` while unknown).
    too_big: u16,
    /// The probe in flight.
    probing: Option<u16>,
    /// The size being tried and how many probes of it were sent.
    attempt: (u16, u8),
    /// A probe may go out at or after this time (`None`: not now, e.g. before the handshake).
    next: Option<Instant>,
    /// The last time a packet larger than [`MIN_MTU`] was acknowledged.
    last_large_ack: Option<Instant>,
}

impl Mtu {
    pub(crate) fn new(enabled: bool, max: u16) -> Self {
        Mtu {
            enabled: enabled && max > MIN_MTU,
            current: MIN_MTU,
            max,
            too_big: max + 1,
            probing: None,
            attempt: (0, 0),
            next: None,
            last_large_ack: None,
        }
    }

    /// The largest datagram to send now.
    pub(crate) fn current(&self) -> u16 {
        self.current
    }

    /// The handshake is confirmed: probing may start.
    pub(crate) fn start(&mut self, now: Instant) {
        if self.enabled && self.next.is_none() && self.probing.is_none() {
            self.next = Some(now);
        }
    }

    /// When a probe is due (a timer), if one is waiting.
    pub(crate) fn next_probe(&self) -> Option<Instant> {
        if self.probing.is_some() {
            return None;
        }
        self.next
    }

    /// The probe size to send now, if one is due.
    pub(crate) fn probe_due(&self, now: Instant) -> Option<u16> {
        if self.probing.is_some() || self.next.is_none_or(|t| now < t) {
            return None;
        }
        Some(self.candidate())
    }

    fn candidate(&self) -> u16 {
        if self.too_big > self.max {
            // Most paths carry the largest size: try it first.
            self.max
        } else {
            self.current + (self.too_big - self.current) / 2
        }
    }

    /// A probe of `size` left.
    pub(crate) fn on_probe_sent(&mut self, size: u16) {
        self.attempt = match self.attempt {
            (s, a) if s == size => (s, a + 1),
            _ => (size, 1),
        };
        self.probing = Some(size);
        self.next = None;
    }

    /// A probe was acknowledged: the path carries `size`. Returns whether the MTU grew.
    pub(crate) fn on_probe_acked(&mut self, now: Instant, size: u16) -> bool {
        self.probing = None;
        self.attempt = (0, 0);
        let grew = size > self.current;
        if grew {
            self.current = size;
            self.last_large_ack = Some(now);
        }
        self.schedule(now);
        grew
    }

    /// A probe was lost: try again, or record that the size is too big.
    pub(crate) fn on_probe_lost(&mut self, now: Instant, size: u16) {
        self.probing = None;
        if self.attempt.0 != size || self.attempt.1 >= PROBE_ATTEMPTS {
            self.attempt = (0, 0);
            self.too_big = self.too_big.min(size);
            self.schedule(now);
        } else {
            // The same size again, at once (one loss may be chance).
            self.next = Some(now);
        }
    }

    fn schedule(&mut self, now: Instant) {
        if self.too_big.saturating_sub(self.current) <= SEARCH_DONE || self.current >= self.max {
            // Done for now; start over later.
            self.too_big = self.max + 1;
            self.next = if self.current >= self.max {
                None
            } else {
                Some(now + REPROBE)
            };
        } else {
            self.next = Some(now);
        }
    }

    /// A regular packet of `size` was acknowledged.
    pub(crate) fn on_packet_acked(&mut self, now: Instant, size: u16) {
        if size > MIN_MTU {
            self.last_large_ack = Some(now);
        }
    }

    /// A regular packet of `size` was lost. Returns true on a black hole: large packets have
    /// been lost and none acknowledged for `window` (3 PTOs): the MTU falls back to
    /// [`MIN_MTU`], and discovery starts over later.
    pub(crate) fn on_packet_lost(&mut self, now: Instant, size: u16, window: Duration) -> bool {
        if size <= MIN_MTU || self.current <= MIN_MTU {
            return false;
        }
        let since = self.last_large_ack.unwrap_or(now);
        if now.saturating_duration_since(since) < window {
            return false;
        }
        self.current = MIN_MTU;
        self.too_big = self.max + 1;
        self.probing = None;
        self.attempt = (0, 0);
        self.last_large_ack = None;
        self.next = self.enabled.then(|| now + REPROBE);
        true
    }
}
