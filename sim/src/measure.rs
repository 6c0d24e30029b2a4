//! Measurement helpers for performance scenarios (`shared/research/udp.md` §6.3 point 8).

use std::time::Duration;

use ferry_core::Instant;

/// Bits per second for `bytes` moved in `interval` (0 for an empty interval).
pub fn goodput_bps(bytes: u64, interval: Duration) -> f64 {
    let secs = interval.as_secs_f64();
    if secs == 0.0 {
        0.0
    } else {
        bytes as f64 * 8.0 / secs
    }
}

/// Jain's fairness index of `rates`: `(Σx)² / (n·Σx²)`, 1 when all are equal, `1/n` when one
/// flow takes everything. An empty or all-zero slice gives 1.
pub fn jain(rates: &[f64]) -> f64 {
    let sum: f64 = rates.iter().sum();
    let squares: f64 = rates.iter().map(|x| x * x).sum();
    if squares == 0.0 {
        1.0
    } else {
        sum * sum / (rates.len() as f64 * squares)
    }
}

/// The Mathis et al. steady-state rate of a TCP-fair flow in bits per second:
/// `MSS / RTT · C / √p` with `C = √(3/2)`, for a segment of `mss` bytes and loss rate `p`.
pub fn mathis_bps(mss: usize, rtt: Duration, p: f64) -> f64 {
    let rtt = rtt.as_secs_f64();
    if rtt == 0.0 || p <= 0.0 {
        return f64::INFINITY;
    }
    mss as f64 * 8.0 / rtt * (1.5f64).sqrt() / p.sqrt()
}

/// A time series of a growing byte count (for instance bytes received by a node), to measure
/// goodput over an interval after the fact, such as "after slow start".
#[derive(Debug, Clone, Default)]
pub struct Meter {
    samples: Vec<(Instant, u64)>,
}

impl Meter {
    /// An empty series.
    pub fn new() -> Self {
        Meter::default()
    }

    /// Records that the count was `total` at `now` (times must not go back; a sample at the
    /// same time as the previous one replaces it).
    pub fn record(&mut self, now: Instant, total: u64) {
        match self.samples.last_mut() {
            Some(last) if last.0 == now => last.1 = total,
            _ => {
                debug_assert!(
                    self.samples.last().is_none_or(|s| s.0 < now),
                    "time went back"
                );
                self.samples.push((now, total));
            }
        }
    }

    /// The count at `t`: the last sample at or before it (0 before the first).
    pub fn at(&self, t: Instant) -> u64 {
        let i = self.samples.partition_point(|s| s.0 <= t);
        if i == 0 { 0 } else { self.samples[i - 1].1 }
    }

    /// Bytes added from `from` to `to`.
    pub fn bytes_between(&self, from: Instant, to: Instant) -> u64 {
        self.at(to).saturating_sub(self.at(from))
    }

    /// Goodput from `from` to `to`, in bits per second.
    pub fn rate_bps(&self, from: Instant, to: Instant) -> f64 {
        goodput_bps(self.bytes_between(from, to), to - from)
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> &[(Instant, u64)] {
        &self.samples
    }
}
