//! What a run returns: a [`Report`] on success, a [`SimError`] naming the seed on failure, and
//! the [`Budget`] bounding it.

use std::fmt;
use std::time::Duration;

use ferry_core::Instant;

use crate::LinkStats;
use crate::node::NodeId;

/// Bounds on one run, so a livelock or a stall fails fast instead of hanging the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Virtual time the run may take (from the moment it starts).
    pub max_virtual: Duration,
    /// Steps (wake-ups of the driver loop) the run may take.
    pub max_steps: u64,
    /// Consecutive steps allowed at the same virtual instant (a node that keeps asking to be
    /// woken "now", or two nodes ping-ponging over zero-delay links).
    pub max_same_instant: u64,
}

impl Default for Budget {
    /// 10 virtual minutes, 10 million steps, 10 000 steps at one instant.
    fn default() -> Self {
        Budget {
            max_virtual: Duration::from_secs(600),
            max_steps: 10_000_000,
            max_same_instant: 10_000,
        }
    }
}

impl Budget {
    /// The default budget with `max_virtual` set.
    pub fn virtual_time(max_virtual: Duration) -> Self {
        Budget {
            max_virtual,
            ..Budget::default()
        }
    }

    /// Sets the step budget.
    pub fn steps(mut self, max_steps: u64) -> Self {
        self.max_steps = max_steps;
        self
    }
}

/// The outcome of a successful run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The master seed.
    pub seed: u64,
    /// Virtual time at the end.
    pub now: Instant,
    /// Virtual time since the simulation started.
    pub elapsed: Duration,
    /// Steps taken since the simulation started.
    pub steps: u64,
    /// Counters of every link, indexed by [`LinkId::index`](crate::LinkId::index).
    pub links: Vec<LinkStats>,
    /// Datagrams sent to an address no route leads to (dropped).
    pub unroutable: u64,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimErrorKind {
    /// Nothing is scheduled (no datagram in flight, no timer) and the goal is not met.
    Deadlock,
    /// The step budget ran out, or time stopped advancing; the string says which.
    Livelock(String),
    /// The virtual-time budget ran out before the goal was met.
    TimeBudget,
    /// A node broke one of its invariants, or a rule of the simulator (a timer in the past, a
    /// transmit larger than its buffer).
    Invariant {
        /// The node at fault.
        node: NodeId,
        /// What went wrong.
        message: String,
    },
}

/// A failed run, with what is needed to replay it. `Debug` prints the same as `Display`, so
/// that `sim.run(..).unwrap()` shows the seed to replay.
#[derive(Clone, PartialEq, Eq)]
pub struct SimError {
    /// What went wrong.
    pub kind: SimErrorKind,
    /// The master seed: `FERRY_SIM_SEED=<seed>` replays the run.
    pub seed: u64,
    /// Virtual time of the failure.
    pub now: Instant,
    /// Virtual time since the simulation started.
    pub elapsed: Duration,
    /// Steps taken since the simulation started.
    pub steps: u64,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SimErrorKind::Deadlock => f.write_str("deadlock: nothing scheduled, goal not met")?,
            SimErrorKind::Livelock(why) => write!(f, "livelock: {why}")?,
            SimErrorKind::TimeBudget => f.write_str("virtual-time budget exhausted")?,
            SimErrorKind::Invariant { node, message } => {
                write!(f, "invariant broken by node {}: {message}", node.index())?
            }
        }
        write!(
            f,
            " at t={:?} (virtual, step {}); replay with FERRY_SIM_SEED={}",
            self.elapsed, self.steps, self.seed
        )
    }
}

impl fmt::Debug for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for SimError {}
