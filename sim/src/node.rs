//! What the simulator connects: the [`Node`] trait and the ids of nodes and links.

use std::net::SocketAddr;

use ferry_core::Instant;
use ferry_core::dgram::Transmit;

#[cfg(doc)]
use crate::{Report, Sim, SimErrorKind};

/// A sans-IO endpoint the simulator drives: the shape of the datagram connection's API.
pub trait Node {
    /// The node's address: datagrams sent to it are routed here, and its datagrams arrive
    /// from it. Must not change.
    fn addr(&self) -> SocketAddr;
    /// A datagram from `from` arrived at `now`.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]);
    /// The next datagram (or GSO batch, split at `segment_size`) to send, written to `buf`.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// The timer returned by [`poll_timeout`](Node::poll_timeout) expired.
    fn handle_timeout(&mut self, now: Instant);
    /// When the node next wants [`handle_timeout`](Node::handle_timeout); never earlier than
    /// the last `now` it was given (equal is allowed: it is woken again at once).
    fn poll_timeout(&self) -> Option<Instant>;
    /// Checked after every step; an `Err` stops the run with [`SimErrorKind::Invariant`].
    fn check_invariants(&self, _now: Instant) -> Result<(), String> {
        Ok(())
    }
    /// Whether the node's goal is met: [`Sim::run`] stops once every node is done.
    fn done(&self) -> bool {
        false
    }
}

/// A node of a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    /// Position in the order of [`Sim::add_node`] calls.
    pub fn index(self) -> usize {
        self.0
    }
}

/// A one-way link of a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub(crate) usize);

impl LinkId {
    /// Position in the order of creation: the index into [`Report::links`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// A direction between the two nodes of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From `a` to `b`.
    AtoB,
    /// From `b` to `a`.
    BtoA,
}

/// Two nodes joined by two one-way links ([`Sim::connect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The first node.
    pub a: NodeId,
    /// The second node.
    pub b: NodeId,
    /// The link from `a` to `b`.
    pub ab: LinkId,
    /// The link from `b` to `a`.
    pub ba: LinkId,
}

impl Pair {
    /// The link carrying `dir`.
    pub fn link(&self, dir: Dir) -> LinkId {
        match dir {
            Dir::AtoB => self.ab,
            Dir::BtoA => self.ba,
        }
    }
}

/// The two shared links of [`Sim::share_bottleneck`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bottleneck {
    /// Every client's datagrams to the server cross this link.
    pub up: LinkId,
    /// Every datagram from the server to a client crosses this link.
    pub down: LinkId,
}
