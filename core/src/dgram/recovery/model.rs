//! A closed-loop model of one bottleneck, for the controllers' tests: a sender with unlimited
//! data driven by [`Recovery`], a fixed-rate link with a tail-drop queue and random loss, a
//! receiver that acknowledges every second packet (at once on a gap, else within 25 ms), and
//! an uncongested return path. Virtual time; deterministic for a seed.

use alloc::collections::{BTreeMap, BinaryHeap};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::ops::RangeInclusive;
use core::time::Duration;

use super::{Outcome, Recovery, RecoveryConfig, RecoveryStats};
use crate::dgram::{CongestionControl, Space};
use crate::time::Instant;

const SIZE: usize = 1200;
const MAX_ACK_DELAY: Duration = Duration::from_millis(25);
/// ACK ranges per frame (newest first), as a real ACK frame would carry.
const ACK_RANGES: usize = 32;

/// The path.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    /// Bottleneck rate, bits per second.
    pub(super) bits_per_second: u64,
    /// Round-trip propagation delay.
    pub(super) rtt: Duration,
    /// Queue size in bytes.
    pub(super) queue: u64,
    /// Random loss, per million packets.
    pub(super) loss_ppm: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub(super) struct Report {
    /// Bits per second received after the warm-up.
    pub(super) goodput: u64,
    pub(super) stats: RecoveryStats,
    /// Packets the link dropped (queue overflow and random loss).
    pub(super) dropped: u64,
}

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A data packet reaches the receiver.
    Arrive(u64),
    /// The receiver's delayed-ACK timer (armed at that arrival count).
    AckTimer(u64),
    /// An ACK frame (index into the frames) reaches the sender.
    Ack(usize),
}

/// Runs `cc` over `link` for `duration`, measuring goodput after `warmup`.
pub(super) fn run(
    cc: CongestionControl,
    link: Link,
    duration: Duration,
    warmup: Duration,
    seed: u64,
) -> Report {
    let t0 = Instant::ZERO;
    let cfg = RecoveryConfig {
        cc,
        ..RecoveryConfig::default()
    };
    let mut rec: Recovery<u64> = Recovery::new(&cfg, t0);
    let mut rng = Rng(seed | 1);
    let one_way = link.rtt / 2;
    // Serialisation time in nanoseconds (instants are microseconds: keep the link exact).
    let per_packet_ns = SIZE as u64 * 8 * 1_000_000_000 / link.bits_per_second;
    let mut events: BinaryHeap<Reverse<(Instant, Event)>> = BinaryHeap::new();
    let mut frames: Vec<(Vec<RangeInclusive<u64>>, Duration)> = Vec::new();
    // Receiver: ranges received (start → end), unacknowledged arrivals, first pending arrival.
    let mut received: BTreeMap<u64, u64> = BTreeMap::new();
    let mut pending = 0u64;
    let mut pending_since: Option<Instant> = None;
    let mut arrivals = 0u64;
    // When the link finishes sending its queue, in nanoseconds.
    let mut link_free_ns = 0u64;
    let (mut next_pn, mut goodput_bytes, mut dropped) = (0u64, 0u64, 0u64);
    let mut out = Vec::new();
    let end = t0 + duration;
    let mut now = t0;
    let mut steps = 0u64;
    while now < end {
        steps += 1;
        assert!(steps < 50_000_000, "model did not progress");
        while let Some(&Reverse((t, ev))) = events.peek() {
            if t > now {
                break;
            }
            events.pop();
            match ev {
                Event::Arrive(pn) => {
                    if now >= t0 + warmup {
                        goodput_bytes += SIZE as u64;
                    }
                    let in_order = received.last_key_value().is_none_or(|(_, &e)| e + 1 == pn);
                    insert(&mut received, pn);
                    arrivals += 1;
                    pending += 1;
                    pending_since.get_or_insert(now);
                    if pending >= 2 || !in_order {
                        send_ack(
                            now,
                            one_way,
                            &received,
                            &mut pending,
                            &mut pending_since,
                            &mut frames,
                            &mut events,
                        );
                    } else {
                        events.push(Reverse((now + MAX_ACK_DELAY, Event::AckTimer(arrivals))));
                    }
                }
                Event::AckTimer(at) => {
                    if at == arrivals && pending > 0 {
                        send_ack(
                            now,
                            one_way,
                            &received,
                            &mut pending,
                            &mut pending_since,
                            &mut frames,
                            &mut events,
                        );
                    }
                }
                Event::Ack(i) => {
                    let (ranges, delay) = core::mem::take(&mut frames[i]);
                    out.clear();
                    rec.on_ack_received(
                        now,
                        Space::Data,
                        ranges.into_iter(),
                        delay,
                        true,
                        &mut out,
                    )
                    .unwrap();
                    debug_assert!(
                        out.iter()
                            .all(|(_, o)| matches!(o, Outcome::Acked | Outcome::Lost))
                    );
                }
            }
        }
        if rec.timer().is_some_and(|t| t <= now) {
            out.clear();
            rec.on_timeout(now, &mut out);
        }
        // Send while the window and the pacer allow (probes go at once).
        let mut next_send = None;
        while rec.can_send(SIZE) {
            let paced = if rec.probes_pending() == 0 {
                rec.pacing_delay(now, SIZE)
            } else {
                None
            };
            if let Some(t) = paced {
                next_send = Some(t);
                break;
            }
            rec.on_packet_sent(now, Space::Data, next_pn, SIZE, true, false, next_pn);
            let now_ns = now.as_micros() * 1000;
            let queued =
                link_free_ns.saturating_sub(now_ns) * link.bits_per_second / 8 / 1_000_000_000;
            if queued + SIZE as u64 > link.queue || rng.next() % 1_000_000 < link.loss_ppm {
                dropped += 1;
            } else {
                link_free_ns = link_free_ns.max(now_ns) + per_packet_ns;
                let arrive = Instant::from_micros(link_free_ns.div_ceil(1000)) + one_way;
                events.push(Reverse((arrive, Event::Arrive(next_pn))));
            }
            next_pn += 1;
        }
        if steps.is_multiple_of(4096) {
            assert_eq!(rec.check_invariants(), Ok(()));
        }
        let next = [events.peek().map(|e| e.0.0), rec.timer(), next_send]
            .into_iter()
            .flatten()
            .min();
        now = match next {
            Some(t) => t.max(now + Duration::from_micros(1)).min(end),
            None => end,
        };
    }
    let measured = (duration - warmup).as_secs_f64();
    Report {
        goodput: (goodput_bytes as f64 * 8.0 / measured) as u64,
        stats: rec.stats().clone(),
        dropped,
    }
}

/// Adds `pn` to the received ranges, merging neighbours.
fn insert(ranges: &mut BTreeMap<u64, u64>, pn: u64) {
    let (mut start, mut end) = (pn, pn);
    if let Some((&s, &e)) = ranges.range(..=pn).next_back() {
        if e >= pn {
            return;
        }
        if e + 1 == pn {
            start = s;
            ranges.remove(&s);
        }
    }
    if let Some(e) = ranges.remove(&(pn + 1)) {
        end = e;
    }
    ranges.insert(start, end);
}

#[allow(clippy::too_many_arguments)]
fn send_ack(
    now: Instant,
    one_way: Duration,
    received: &BTreeMap<u64, u64>,
    pending: &mut u64,
    pending_since: &mut Option<Instant>,
    frames: &mut Vec<(Vec<RangeInclusive<u64>>, Duration)>,
    events: &mut BinaryHeap<Reverse<(Instant, Event)>>,
) {
    let ranges = received
        .iter()
        .rev()
        .take(ACK_RANGES)
        .map(|(&s, &e)| s..=e)
        .collect();
    let delay = pending_since.take().map_or(Duration::ZERO, |t| now - t);
    *pending = 0;
    frames.push((ranges, delay));
    events.push(Reverse((now + one_way, Event::Ack(frames.len() - 1))));
}

/// A link of `mbit` Mbit/s with a `rtt_ms` round trip, a queue of one bandwidth-delay product
/// and `loss_ppm` random loss.
pub(super) fn link(mbit: u64, rtt_ms: u64, loss_ppm: u64) -> Link {
    let bits_per_second = mbit * 1_000_000;
    Link {
        bits_per_second,
        rtt: Duration::from_millis(rtt_ms),
        queue: bits_per_second / 8 * rtt_ms / 1000,
        loss_ppm,
    }
}

/// The Mathis bound 1.22 × MSS / (RTT × sqrt(p)) in bits per second, for this model's
/// 1200-byte packets.
pub(super) fn mathis(rtt: Duration, loss_ppm: u64) -> f64 {
    let p = loss_ppm as f64 / 1e6;
    // sqrt by Newton's method (`core` has no `f64::sqrt`).
    let mut s = p.max(1e-12);
    for _ in 0..60 {
        s = (s + p / s) / 2.0;
    }
    1.22 * (SIZE as f64 * 8.0) / (rtt.as_secs_f64() * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_link_delivers_at_its_rate_and_mathis_matches_its_formula() {
        // NewReno or CUBIC on a clean link: every packet sent is received or dropped.
        let r = run(
            CongestionControl::NewReno,
            link(10, 20, 0),
            Duration::from_secs(4),
            Duration::from_secs(1),
            1,
        );
        assert!(r.goodput <= 10_000_000, "{}", r.goodput);
        assert!(r.stats.packets_lost <= r.dropped);
        // 1.22 × 9600 bits / (0.02 s × 0.1) = 5.856 Mbit/s.
        assert!((mathis(Duration::from_millis(20), 10_000) - 5_856_000.0).abs() < 1.0);
    }
}
