//! The free-space check of an offer, without a `statfs` per small file.
//!
//! Every offer of known size is refused early when it cannot fit (see
//! [`check_space_against`](super::partial::check_space_against)). A directory of thousands of small files
//! would pay a `statfs` per file for an answer that does not change: an offer of at most
//! [`SMALL`] bytes is accepted without asking the filesystem again while the last answer is
//! younger than [`FRESH`] and the small offers accepted since then, this one included, fit in
//! half of the space it reported. Anything else (a larger offer, a sealed store, an old or
//! used-up answer) asks the filesystem. A disk that fills up meanwhile is still noticed: the
//! write fails with "no space" and the partial is removed, as it would be after any check.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use proto::Problem;

use super::partial;

/// Offers up to this size may be accepted on an earlier answer.
pub(crate) const SMALL: u64 = 1024 * 1024;

/// How long an answer about the free space is used for small offers.
pub(crate) const FRESH: Duration = Duration::from_secs(1);

/// The last answer about a filesystem's free space, and what small offers took from it since.
#[derive(Debug, Default)]
pub(crate) struct SpaceCache {
    state: Mutex<Option<Answer>>,
    /// Filesystem queries made (tests count them).
    #[cfg(test)]
    pub(crate) asked: std::sync::atomic::AtomicUsize,
}

#[derive(Debug)]
struct Answer {
    at: Instant,
    free: u64,
    /// Bytes of small offers accepted on this answer.
    taken: u64,
}

impl SpaceCache {
    /// Refuse an offer of `size` bytes that cannot fit on the filesystem of `dir` (see
    /// [`partial::check_space_against`] for `held` and `sealed`).
    pub(crate) fn check(
        &self,
        dir: &Path,
        size: u64,
        held: u64,
        sealed: bool,
    ) -> Result<(), Problem> {
        let need = size.saturating_sub(held);
        let small = !sealed && size <= SMALL;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if small
            && let Some(a) = state.as_mut()
            && a.at.elapsed() < FRESH
            && a.taken.saturating_add(need) <= a.free / 2
        {
            a.taken += need;
            return Ok(());
        }
        #[cfg(test)]
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let free = partial::free_space(dir);
        *state = free.map(|free| Answer {
            at: Instant::now(),
            free,
            taken: if small { need } else { 0 },
        });
        drop(state);
        partial::check_space_against(free, size, held, sealed)
    }
}
