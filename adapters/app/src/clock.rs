//! Time for the core and for people: a [`Clock`] in the core's units, the Unix time, and fresh
//! session seeds.

use std::io;
use std::time::{Duration, Instant as WallClock};

use proto::Instant;

/// Converts wall-clock time into the core's [`Instant`] (microseconds since this clock was
/// made). One clock per process or per session; never mix origins within one session.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: WallClock,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: WallClock::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        let micros = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        Instant::from_micros(micros)
    }

    /// How long from now until `at` (zero if it has passed).
    pub fn until(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// 32 fresh random bytes from the OS for a new session (never reuse one: the session's
/// ephemeral key comes from it).
///
/// # Errors
/// The OS has no randomness to give (then no session can be made safely).
pub fn fresh_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(format!("no OS randomness: {e}")))?;
    Ok(seed)
}

/// Seconds since the Unix epoch, now (negative before 1970).
pub fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
