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
//! use ferry_sim::{Budget, LinkConfig, Sim};
//! let mut sim = Sim::new(ferry_sim::seed_or(7));
//! // let a = sim.add_node(client); let b = sim.add_node(server);
//! // let pair = sim.connect(a, b, LinkConfig::default().loss(0.01), LinkConfig::default());
//! // sim.run(Budget::default())?;
//! # let _ = (&mut sim, LinkConfig::default(), Budget::default());
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
