//! One-way links: propagation delay, jitter, random and bursty loss, duplication, reordering,
//! corruption, an MTU, and a rate-limited bottleneck with a tail-drop queue.

use std::collections::VecDeque;
use std::time::Duration;

use ferry_core::Instant;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::fault::{self, Fault};

/// The Gilbert-Elliott two-state loss model: the link flips between a good and a bad state
/// before each datagram, and loses it with the probability of the state it is in. Losses come
/// in bursts whose mean length is about `1 / p_bad_to_good` when `loss_in_bad` is 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from the good state to the bad one, per datagram.
    pub p_good_to_bad: f64,
    /// Probability of moving from the bad state back to the good one, per datagram.
    pub p_bad_to_good: f64,
    /// Loss probability in the bad state.
    pub loss_in_bad: f64,
    /// Loss probability in the good state.
    pub loss_in_good: f64,
}

impl GilbertElliott {
    /// The simple Gilbert model: everything is lost in the bad state and nothing in the good
    /// one, with the given long-run loss rate (`0 <= mean_loss < 1`) and mean burst length in
    /// datagrams (`>= 1`).
    pub fn bursts(mean_loss: f64, mean_burst: f64) -> Self {
        let p_bad_to_good = 1.0 / mean_burst.max(1.0);
        let p_good_to_bad = mean_loss * p_bad_to_good / (1.0 - mean_loss);
        GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_in_bad: 1.0,
            loss_in_good: 0.0,
        }
    }

    /// The long-run loss rate: time in the bad state weighted by each state's loss.
    pub fn mean_loss(&self) -> f64 {
        let total = self.p_good_to_bad + self.p_bad_to_good;
        if total == 0.0 {
            return self.loss_in_good;
        }
        let bad = self.p_good_to_bad / total;
        bad * self.loss_in_bad + (1.0 - bad) * self.loss_in_good
    }
}

/// The model of one direction of a path. `Default`: 10 ms one way, no loss, MTU 1452, no rate
/// limit (so the queue never fills). Fields are public; the methods are builder-style setters.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay, added after serialisation.
    pub delay: Duration,
    /// Each datagram gets an extra delay uniform in `[0, jitter]` (this can reorder, as netem
    /// does; with 0 the link is FIFO).
    pub jitter: Duration,
    /// Independent loss probability per datagram (ignored when `burst` is set).
    pub loss: f64,
    /// Bursty loss, replacing `loss` when set.
    pub burst: Option<GilbertElliott>,
    /// Probability a datagram is delivered twice (the copy also crosses the queue).
    pub duplicate: f64,
    /// Probability a datagram is held back by `reorder_gap`, so datagrams sent after it within
    /// that gap overtake it.
    pub reorder: f64,
    /// Extra delay of a reordered datagram.
    pub reorder_gap: Duration,
    /// Bottleneck rate in bits per second (`None`: infinitely fast, no queueing).
    pub rate_bps: Option<u64>,
    /// Capacity of the bottleneck's tail-drop queue in bytes, counting the datagram being
    /// serialised. A datagram that would exceed it is dropped.
    pub queue_bytes: usize,
    /// Largest datagram carried (UDP payload bytes); larger ones are dropped.
    pub mtu: usize,
    /// Probability one random bit of a datagram is flipped.
    pub corrupt: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_gap: Duration::from_millis(5),
            rate_bps: None,
            queue_bytes: 1 << 20,
            mtu: 1452,
            corrupt: 0.0,
        }
    }
}

impl LinkConfig {
    /// A link that is perfect apart from its `delay`.
    pub fn with_delay(delay: Duration) -> Self {
        LinkConfig {
            delay,
            ..LinkConfig::default()
        }
    }

    /// Sets the one-way delay.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the independent loss probability.
    pub fn loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }

    /// Sets bursty loss.
    pub fn burst(mut self, model: GilbertElliott) -> Self {
        self.burst = Some(model);
        self
    }

    /// Sets the duplication probability.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Sets the reordering probability and the extra delay of a reordered datagram.
    pub fn reorder(mut self, p: f64, gap: Duration) -> Self {
        self.reorder = p;
        self.reorder_gap = gap;
        self
    }

    /// Makes the link a bottleneck: `rate_bps` bits per second behind a `queue_bytes` queue.
    pub fn rate(mut self, rate_bps: u64, queue_bytes: usize) -> Self {
        self.rate_bps = Some(rate_bps);
        self.queue_bytes = queue_bytes;
        self
    }

    /// Sets the MTU.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }

    /// Sets the bit-flip probability.
    pub fn corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }
}

/// Counters of one link. Every datagram offered ends in exactly one of `delivered`, a
/// `dropped_*` counter or in flight; a duplicate counts as one more datagram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams offered to the link (after GSO splitting).
    pub sent: u64,
    /// Bytes offered.
    pub bytes_sent: u64,
    /// Datagrams that came out of the far end.
    pub delivered: u64,
    /// Bytes that came out of the far end.
    pub bytes_delivered: u64,
    /// Dropped by random or bursty loss.
    pub dropped_loss: u64,
    /// Dropped because the bottleneck queue was full.
    pub dropped_queue: u64,
    /// Dropped for exceeding the MTU.
    pub dropped_mtu: u64,
    /// Dropped by a scripted [`Fault`].
    pub dropped_fault: u64,
    /// Extra copies made (random or scripted).
    pub duplicated: u64,
    /// Datagrams with a flipped bit.
    pub corrupted: u64,
    /// Datagrams held back to reorder them (random or scripted).
    pub reordered: u64,
    /// Largest queue occupancy seen, in bytes.
    pub max_queue_bytes: u64,
}

/// Why a link dropped a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Random or bursty loss.
    Loss,
    /// The bottleneck queue was full.
    Queue,
    /// Larger than the MTU.
    Mtu,
    /// A scripted [`Fault`].
    Fault,
}

/// A datagram leaving the link at `at`.
#[derive(Debug)]
pub(crate) struct Departure {
    pub(crate) at: Instant,
    pub(crate) data: Vec<u8>,
}

/// The state of one one-way link.
pub(crate) struct Link {
    pub(crate) config: LinkConfig,
    pub(crate) stats: LinkStats,
    pub(crate) faults: Vec<Fault>,
    rng: ChaCha8Rng,
    in_bad_state: bool,
    /// When the serialiser finishes the last accepted datagram, in nanoseconds.
    busy_until_ns: u64,
    /// `(finish_ns, size)` of the datagrams queued or being serialised.
    queue: VecDeque<(u64, usize)>,
    queued_bytes: usize,
}

impl Link {
    /// A link whose random draws come from its own ChaCha8 stream: `seed` selects the
    /// simulation, `stream` the link, so links do not perturb one another.
    pub(crate) fn new(config: LinkConfig, seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Link {
            config,
            stats: LinkStats::default(),
            faults: Vec::new(),
            rng,
            in_bad_state: false,
            busy_until_ns: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits as a float in [0, 1).
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.rng.next_u64() % n }
    }

    fn lost(&mut self) -> bool {
        match self.config.burst {
            Some(ge) => {
                let flip = if self.in_bad_state {
                    ge.p_bad_to_good
                } else {
                    ge.p_good_to_bad
                };
                if self.chance(flip) {
                    self.in_bad_state = !self.in_bad_state;
                }
                let p = if self.in_bad_state {
                    ge.loss_in_bad
                } else {
                    ge.loss_in_good
                };
                self.chance(p)
            }
            None => {
                let p = self.config.loss;
                self.chance(p)
            }
        }
    }

    /// Offers a datagram at `now` (`elapsed` since the start); pushes what will come out of
    /// the far end, and when, to `out`. Returns why, when nothing will.
    pub(crate) fn offer(
        &mut self,
        now: Instant,
        elapsed: Duration,
        mut data: Vec<u8>,
        out: &mut Vec<Departure>,
    ) -> Option<DropReason> {
        let index = self.stats.sent;
        self.stats.sent += 1;
        self.stats.bytes_sent += data.len() as u64;
        let verdict = fault::judge(&mut self.faults, index, now, elapsed, &data);
        if verdict.drop {
            self.stats.dropped_fault += 1;
            return Some(DropReason::Fault);
        }
        if data.len() > verdict.mtu.unwrap_or(self.config.mtu) {
            self.stats.dropped_mtu += 1;
            return Some(DropReason::Mtu);
        }
        if self.lost() {
            self.stats.dropped_loss += 1;
            return Some(DropReason::Loss);
        }
        let mut copies = 1 + verdict.extra_copies;
        let dup = self.config.duplicate;
        if self.chance(dup) {
            copies += 1;
        }
        self.stats.duplicated += u64::from(copies - 1);
        let mut departed = false;
        for copy in 0..copies {
            let last = copy + 1 == copies;
            let mut bytes = if last {
                std::mem::take(&mut data)
            } else {
                data.clone()
            };
            let Some(done) = self.serialise(now, bytes.len()) else {
                self.stats.dropped_queue += 1;
                continue;
            };
            let corrupt = self.config.corrupt;
            if (verdict.corrupt && copy == 0 || self.chance(corrupt)) && !bytes.is_empty() {
                let bit = self.below(bytes.len() as u64 * 8);
                bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
                self.stats.corrupted += 1;
            }
            let mut delay = self.config.delay;
            let jitter = self.config.jitter.as_micros() as u64;
            if jitter > 0 {
                delay += Duration::from_micros(self.below(jitter + 1));
            }
            let reorder = self.config.reorder;
            let mut held = false;
            if copy == 0 && verdict.extra_delay > Duration::ZERO {
                delay += verdict.extra_delay;
                held = true;
            }
            if self.chance(reorder) {
                delay += self.config.reorder_gap;
                held = true;
            }
            self.stats.reordered += u64::from(held);
            out.push(Departure {
                at: done + delay,
                data: bytes,
            });
            departed = true;
        }
        (!departed).then_some(DropReason::Queue)
    }

    /// Queues `len` bytes at `now` on the serialiser; returns when the last bit leaves, or
    /// `None` when the tail-drop queue is full.
    fn serialise(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let Some(rate) = self.config.rate_bps.filter(|&r| r > 0) else {
            return Some(now);
        };
        let now_ns = now.as_micros().saturating_mul(1000);
        while let Some(&(finish, size)) = self.queue.front() {
            if finish > now_ns {
                break;
            }
            self.queue.pop_front();
            self.queued_bytes -= size;
        }
        if self.queued_bytes + len > self.config.queue_bytes {
            return None;
        }
        let tx_ns = ((len as u128 * 8 * 1_000_000_000).div_ceil(u128::from(rate))) as u64;
        let finish = self.busy_until_ns.max(now_ns).saturating_add(tx_ns);
        self.busy_until_ns = finish;
        self.queue.push_back((finish, len));
        self.queued_bytes += len;
        self.stats.max_queue_bytes = self.stats.max_queue_bytes.max(self.queued_bytes as u64);
        Some(Instant::from_micros(finish.div_ceil(1000)))
    }
}
