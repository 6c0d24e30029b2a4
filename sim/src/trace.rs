//! Optional tracing of every datagram's fate on every link, to debug a failing seed: set
//! `FERRY_SIM_TRACE=1` (with `FERRY_SIM_SEED`) to print it, or install a hook with
//! [`Sim::set_trace`](crate::Sim::set_trace).

use std::fmt;
use std::time::Duration;

use ferry_core::Instant;

use crate::link::DropReason;
use crate::node::{LinkId, NodeId};

/// Name of the environment variable that prints a trace of every datagram to stderr.
pub const TRACE_VAR: &str = "FERRY_SIM_TRACE";

/// What happened to a datagram on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// Offered to the link.
    Sent,
    /// Came out of the far end (one event per copy).
    Delivered,
    /// Dropped by the link (every copy, for a duplicated one).
    Dropped(DropReason),
}

/// One traced event.
#[derive(Debug, Clone, Copy)]
pub struct TraceEvent<'a> {
    /// Virtual time.
    pub at: Instant,
    /// Virtual time since the start.
    pub elapsed: Duration,
    /// The link.
    pub link: LinkId,
    /// The sending node.
    pub from: NodeId,
    /// The destination node.
    pub to: NodeId,
    /// What happened.
    pub kind: TraceKind,
    /// The datagram (as delivered, so possibly corrupted).
    pub data: &'a [u8],
}

impl fmt::Display for TraceEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>12?} link {} node {} -> {}: {:?}, {} bytes",
            self.elapsed,
            self.link.index(),
            self.from.index(),
            self.to.index(),
            self.kind,
            self.data.len()
        )
    }
}

/// A trace hook.
pub(crate) type Trace = Box<dyn FnMut(&TraceEvent<'_>)>;

/// The hook `FERRY_SIM_TRACE` installs, if it is set.
pub(crate) fn from_env() -> Option<Trace> {
    std::env::var_os(TRACE_VAR).map(|_| Box::new(|e: &TraceEvent<'_>| eprintln!("{e}")) as Trace)
}
