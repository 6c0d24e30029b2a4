//! `--bwlimit RATE`: a token bucket on the bytes a client sends. The driver calls
//! [`Bucket::take`] after handing each chunk of file data to the session; when the bucket is
//! empty it sleeps until the chunk is paid for, so the file data leaves at most at `rate`
//! bytes per second on average (counted before compression), with bursts of at most
//! [`Bucket::burst`] bytes.

use std::time::{Duration, Instant};

/// A token bucket of `rate` bytes per second.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A bucket for `rate` bytes per second (> 0), starting empty: the first second is
    /// throttled too.
    #[must_use]
    pub fn new(rate: u64) -> Self {
        let rate = rate.max(1) as f64;
        Bucket {
            rate,
            // A quarter of a second of data, at least 16 KiB: smooth without sleeping on
            // every small chunk.
            burst: (rate / 4.0).max(16_384.0),
            tokens: 0.0,
            last: Instant::now(),
        }
    }

    /// The largest burst, in bytes.
    #[must_use]
    pub fn burst(&self) -> u64 {
        self.burst as u64
    }

    /// How long to wait before `n` more bytes may go, having taken them.
    pub fn debit(&mut self, n: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Take `n` bytes, sleeping as long as the rate asks.
    pub fn take(&mut self, n: u64) {
        let wait = self.debit(n, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pays_for_what_exceeds_the_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100_000);
        // Empty at first: 50 000 bytes cost half a second.
        assert_eq!(b.debit(50_000, t0), Duration::from_millis(500));
        // A second later the 50 000 owed are paid and the bucket holds only the burst
        // (25 000): 50 000 more cost the other 25 000, a quarter of a second.
        let w = b.debit(50_000, t0 + Duration::from_secs(1));
        assert_eq!(w, Duration::from_millis(250));
        // Long idle: the burst is free.
        assert_eq!(
            b.debit(25_000, t0 + Duration::from_secs(60)),
            Duration::ZERO
        );
    }
}
