//! `ferry-sim`: a deterministic network simulator for ferry's datagram transport
//! (`shared/research/udp.md` §6.3).
//!
//! A [`Sim`] joins sans-IO [`Node`]s (the shape of `ferry_core::dgram`'s connection API) by
//! one-way links ([`LinkConfig`]: delay, jitter, random or bursty loss, duplication,
//! reordering, corruption, MTU, a rate-limited tail-drop bottleneck) plus scripted
//! [`Fault`]s, and drives them on a virtual clock that jumps from one event to the next. All
//! randomness derives from one seed, each link drawing from its own stream; a failure
//! ([`SimError`]) prints `replay with FERRY_SIM_SEED=<seed>`, and [`seed_or`] /
//! [`check_seeds`] read that variable back.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use ferry_core::{Instant, dgram::Transmit};
//! use ferry_sim::{Budget, LinkConfig, Node, Sim};
//!
//! /// Sends one datagram to `peer` (if any) and is done once a datagram comes back; echoes
//! /// whatever it receives.
//! struct Ping { addr: SocketAddr, peer: Option<SocketAddr>, out: Vec<(SocketAddr, Vec<u8>)>, got: bool }
//!
//! impl Node for Ping {
//!     fn addr(&self) -> SocketAddr { self.addr }
//!     fn handle_datagram(&mut self, _: Instant, from: SocketAddr, data: &mut [u8]) {
//!         self.got = true;
//!         if self.peer.is_none() { self.out.push((from, data.to_vec())) }
//!     }
//!     fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<Transmit> {
//!         let (destination, data) = self.out.pop()?;
//!         buf[..data.len()].copy_from_slice(&data);
//!         Some(Transmit { destination, size: data.len(), segment_size: None })
//!     }
//!     fn handle_timeout(&mut self, _: Instant) {}
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//!     fn done(&self) -> bool { self.peer.is_none() || self.got }
//! }
//!
//! let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
//! let mut sim = Sim::new(ferry_sim::seed_or(7));
//! let client = sim.add_node(Ping { addr: a, peer: Some(b), out: vec![(b, b"hi".to_vec())], got: false });
//! let server = sim.add_node(Ping { addr: b, peer: None, out: Vec::new(), got: false });
//! let link = LinkConfig::default().delay(Duration::from_millis(15));
//! let pair = sim.connect(client, server, link.clone(), link);
//! let report = sim.run(Budget::default()).expect("the ping comes back");
//! assert_eq!(report.elapsed, Duration::from_millis(30));
//! assert_eq!(sim.stats(pair.ab).delivered, 1);
//! assert!(sim.node::<Ping>(client).got);
//! ```

mod fault;
mod link;
mod measure;
mod net;
mod node;
mod report;
mod trace;

pub use fault::{Action, DropFilter, Fault, ScriptFn};
pub use link::{DropReason, GilbertElliott, LinkConfig, LinkStats};
pub use measure::{Meter, goodput_bps, jain, mathis_bps};
pub use net::{DEFAULT_START, Sim};
pub use node::{Bottleneck, Dir, LinkId, Node, NodeId, Pair};
pub use report::{Budget, Report, SimError, SimErrorKind};
pub use trace::{TRACE_VAR, TraceEvent, TraceKind};

/// Name of the environment variable that replays one seed.
pub const SEED_VAR: &str = "FERRY_SIM_SEED";

/// The seed from `FERRY_SIM_SEED` (decimal, or hex with `0x`) when it is set, else `default`.
/// Panics if the variable is set but not a number.
pub fn seed_or(default: u64) -> u64 {
    env_seed().unwrap_or(default)
}

fn env_seed() -> Option<u64> {
    let text = std::env::var(SEED_VAR).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{SEED_VAR}={text:?} is not a u64")))
}

/// Runs `f` for seeds `0..n`, or only for `FERRY_SIM_SEED` when it is set; panics on the first
/// failure with its seed and message.
pub fn check_seeds(n: u64, f: impl Fn(u64) -> Result<(), String>) {
    let seeds = match env_seed() {
        Some(seed) => seed..seed + 1,
        None => 0..n,
    };
    for seed in seeds {
        if let Err(message) = f(seed) {
            panic!("seed {seed} failed: {message}\nreplay with {SEED_VAR}={seed}");
        }
    }
}

/// A seed for stream `stream` of `seed` (for nodes that need their own RNG): distinct streams
/// give unrelated seeds, and the same inputs always give the same seed.
pub fn sub_seed(seed: u64, stream: u64) -> u64 {
    // SplitMix64 finaliser over the pair.
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
