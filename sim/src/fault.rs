//! Scripted faults: deterministic events attached to one link, applied on top of its random
//! model (`shared/research/udp.md` §6.3 point 5).

use core::fmt;
use core::time::Duration;

use ferry_core::Instant;

/// A predicate deciding whether to drop a datagram: `(index, now, bytes) -> drop?`, where
/// `index` counts the datagrams offered to the link from 0.
pub type DropFilter = Box<dyn FnMut(u64, Instant, &[u8]) -> bool>;

/// What a [`Fault::Script`] does to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave it to the link's random model.
    Pass,
    /// Drop it.
    Drop,
    /// Deliver it twice.
    Duplicate,
    /// Hold it back by this much.
    Delay(Duration),
    /// Flip one random bit.
    Corrupt,
}

/// A script deciding the fate of each datagram: `(index, now, bytes) -> action`.
pub type ScriptFn = Box<dyn FnMut(u64, Instant, &[u8]) -> Action>;

/// One scripted fault on a link. Datagram indices count the datagrams offered to the link
/// (after GSO splitting, before any drop), starting at 0. Times are virtual time elapsed since
/// the simulation started ([`Sim::elapsed`](crate::Sim::elapsed)).
pub enum Fault {
    /// Drop the datagram with index `n` (0 is the first).
    DropNth {
        /// Index of the datagram to drop.
        n: u64,
    },
    /// Drop `count` consecutive datagrams starting at index `first` (a whole flight).
    DropRange {
        /// Index of the first datagram dropped.
        first: u64,
        /// How many are dropped.
        count: u64,
    },
    /// Drop every datagram offered while `from <= elapsed < to` (a blackout).
    DropWindow {
        /// Start of the blackout.
        from: Duration,
        /// End of the blackout (exclusive).
        to: Duration,
    },
    /// From `at` on, the link's MTU is `mtu` (a path change or an MTU black hole).
    SetMtu {
        /// When the MTU changes.
        at: Duration,
        /// The new MTU, in bytes of UDP payload.
        mtu: usize,
    },
    /// Deliver the datagram with index `n` twice.
    DuplicateNth {
        /// Index of the datagram duplicated.
        n: u64,
    },
    /// Hold the datagram with index `n` back by `extra`, so later ones overtake it.
    DelayNth {
        /// Index of the datagram delayed.
        n: u64,
        /// Extra one-way delay.
        extra: Duration,
    },
    /// Flip one random bit of the datagram with index `n`.
    CorruptNth {
        /// Index of the datagram corrupted.
        n: u64,
    },
    /// Drop every datagram the predicate selects (for instance "every handshake packet, once").
    DropIf(DropFilter),
    /// Any of the above, decided per datagram by a script (for instance "duplicate and
    /// reorder this flight").
    Script(ScriptFn),
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::DropNth { n } => write!(f, "DropNth({n})"),
            Fault::DropRange { first, count } => write!(f, "DropRange({first}, {count})"),
            Fault::DropWindow { from, to } => write!(f, "DropWindow({from:?}..{to:?})"),
            Fault::SetMtu { at, mtu } => write!(f, "SetMtu({mtu} at {at:?})"),
            Fault::DuplicateNth { n } => write!(f, "DuplicateNth({n})"),
            Fault::DelayNth { n, extra } => write!(f, "DelayNth({n}, {extra:?})"),
            Fault::CorruptNth { n } => write!(f, "CorruptNth({n})"),
            Fault::DropIf(_) => f.write_str("DropIf(..)"),
            Fault::Script(_) => f.write_str("Script(..)"),
        }
    }
}

/// What the scripted faults decided for one datagram.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Dropped by a fault.
    pub(crate) drop: bool,
    /// MTU override in force, if any.
    pub(crate) mtu: Option<usize>,
    /// Extra copies to deliver.
    pub(crate) extra_copies: u32,
    /// Extra delay.
    pub(crate) extra_delay: Duration,
    /// Flip a bit.
    pub(crate) corrupt: bool,
}

/// Applies every fault to the datagram with index `index`, offered at `now` (`elapsed` since
/// the start).
pub(crate) fn judge(
    faults: &mut [Fault],
    index: u64,
    now: Instant,
    elapsed: Duration,
    data: &[u8],
) -> Verdict {
    let mut v = Verdict::default();
    for fault in faults.iter_mut() {
        match fault {
            Fault::DropNth { n } => v.drop |= index == *n,
            Fault::DropRange { first, count } => {
                v.drop |= index >= *first && index - *first < *count;
            }
            Fault::DropWindow { from, to } => v.drop |= elapsed >= *from && elapsed < *to,
            Fault::SetMtu { at, mtu } => {
                if elapsed >= *at {
                    v.mtu = Some(*mtu);
                }
            }
            Fault::DuplicateNth { n } => v.extra_copies += u32::from(index == *n),
            Fault::DelayNth { n, extra } => {
                if index == *n {
                    v.extra_delay += *extra;
                }
            }
            Fault::CorruptNth { n } => v.corrupt |= index == *n,
            Fault::DropIf(pred) => v.drop |= pred(index, now, data),
            Fault::Script(script) => match script(index, now, data) {
                Action::Pass => {}
                Action::Drop => v.drop = true,
                Action::Duplicate => v.extra_copies += 1,
                Action::Delay(extra) => v.extra_delay += extra,
                Action::Corrupt => v.corrupt = true,
            },
        }
    }
    v
}
