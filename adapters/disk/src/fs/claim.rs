//! Who may write a destination: one claim per destination path, for the whole process, that a
//! newer transfer can take over from an idle one.
//!
//! A transfer whose sender died (`kill -9`, a host gone without a FIN) keeps its claim until its
//! connection is noticed dead, which can take the whole idle timeout. The rerun that should
//! resume it must not wait that long: an offer for a claimed name takes the claim over when the
//! holder has written nothing for [`IDLE`] and is not publishing. The old holder is not asked:
//! every write to the partial, its sidecar or its publication happens under the holder's lock
//! ([`Claim::hold`], [`Gate::hold`], also in the writer thread), which fails once the claim is
//! revoked, so from the takeover on the old transfer cannot touch the files any more (it sees
//! an error on its next write and its suspend or discard does nothing). The new holder resumes
//! from the partial's bytes; the session verifies them against the sender's prefix hash.
//!
//! An offer for a name whose holder is active is refused with [`Reason::Busy`]: the sender may
//! retry shortly.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use proto::{Problem, Reason};

/// A holder that has written nothing for this long may be taken over.
pub(crate) const IDLE: Duration = Duration::from_secs(1);

/// Destination paths with a transfer in progress, for the whole process: two stores over the
/// same directory (a client making one store per call, say) must not interleave on one
/// destination either. Keyed by the path's bytes: every destination is built the same way
/// from a sanitized name (no `.`, `..` or doubled `/`), so equal bytes are equal paths, and a
/// byte comparison costs a fraction of `Path`'s component-wise one (thousands of small files
/// in flight look the table up at every offer).
static CLAIMS: Mutex<BTreeMap<OsString, Arc<Gate>>> = Mutex::new(BTreeMap::new());

/// The table type of [`claims`].
pub(crate) type Table = BTreeMap<OsString, Arc<Gate>>;

/// The claim table, locked: while it is held no claim is taken or released.
pub(crate) fn claims() -> MutexGuard<'static, Table> {
    // The map stays consistent even if a holder panicked: inserts and removes are single calls.
    CLAIMS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lock every write of one holder goes through.
#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// A newer transfer took the destination over: write nothing more.
    revoked: bool,
    /// The end of the holder's last write (or its start).
    last_active: Instant,
    /// Publishing (staged for a grouped commit): never taken over.
    pinned: bool,
}

/// Proof that the holder still owns the destination, for as long as it lives; dropping it
/// counts as activity.
pub(crate) struct Held<'a>(MutexGuard<'a, State>);

impl Held<'_> {
    /// Never take this holder over (it is publishing).
    pub(crate) fn pin(&mut self) {
        self.0.pinned = true;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.last_active = Instant::now();
    }
}

impl Gate {
    /// A gate of its own, not in the claim table (tests of the writer thread).
    pub(crate) fn unclaimed() -> Arc<Gate> {
        Arc::new(Gate {
            state: Mutex::new(State {
                revoked: false,
                last_active: Instant::now(),
                pinned: false,
            }),
        })
    }

    /// Lock the gate for one write; fails once the claim was taken over.
    ///
    /// # Errors
    /// `ResourceBusy`: another transfer owns the destination now.
    pub(crate) fn hold(&self) -> io::Result<Held<'_>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.revoked {
            return Err(revoked());
        }
        Ok(Held(state))
    }

    /// Revoke the holder if it is idle. A holder in the middle of a write or a flush holds
    /// its lock, so it is not idle.
    fn revoke_if_idle(&self, now: Instant) -> bool {
        let mut state = match self.state.try_lock() {
            Ok(s) => s,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        if state.revoked {
            return true;
        }
        if state.pinned || now.saturating_duration_since(state.last_active) < IDLE {
            return false;
        }
        state.revoked = true;
        true
    }
}

/// The error an old holder's writes get after a takeover.
pub(crate) fn revoked() -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        "a newer transfer of this name took it over",
    )
}

/// Holds one destination in the claim table; released on drop (unless taken over).
#[derive(Debug)]
pub(crate) struct Claim {
    dest: PathBuf,
    gate: Arc<Gate>,
}

impl Claim {
    /// Claim `dest`, taking it over from an idle holder.
    ///
    /// # Errors
    /// [`Reason::Busy`] while another transfer is actively writing it.
    pub(crate) fn take(dest: PathBuf) -> Result<Claim, Problem> {
        let mut table = claims();
        if let Some(old) = table.get(dest.as_os_str()) {
            if !old.revoke_if_idle(Instant::now()) {
                return Err(Problem::new(
                    Reason::Busy,
                    "another transfer to this name is in progress; retry shortly",
                ));
            }
            tracing::info!(path = %dest.display(), "took over the claim of an idle transfer");
        }
        let gate = Gate::unclaimed();
        table.insert(dest.as_os_str().to_owned(), Arc::clone(&gate));
        Ok(Claim { dest, gate })
    }

    /// Lock the claim for one write (see [`Gate::hold`]).
    ///
    /// # Errors
    /// `ResourceBusy` once the claim was taken over.
    pub(crate) fn hold(&self) -> io::Result<Held<'_>> {
        self.gate.hold()
    }

    /// The gate, for a writer thread.
    pub(crate) fn gate(&self) -> Arc<Gate> {
        Arc::clone(&self.gate)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut table = claims();
        // After a takeover the entry is the new holder's.
        if table
            .get(self.dest.as_os_str())
            .is_some_and(|g| Arc::ptr_eq(g, &self.gate))
        {
            table.remove(self.dest.as_os_str());
        }
    }
}

/// Make the holder of `dest` look idle for [`IDLE`] already (tests need not sleep).
#[cfg(test)]
pub(crate) fn backdate(dest: &std::path::Path) {
    let table = claims();
    let gate = table.get(dest.as_os_str()).expect("a claim on this path");
    let mut state = gate.state.lock().unwrap_or_else(PoisonError::into_inner);
    state.last_active = Instant::now()
        .checked_sub(IDLE)
        .expect("a monotonic clock past IDLE");
}
