//! ferry's datagram transport in the simulator: the "Done when" scenarios of issue 16 as
//! deterministic tests (handshake under loss, integrity over hostile links, throughput,
//! fairness, scripted faults). Each prints its figures (`-- --nocapture`). Heavier sweeps run
//! with `FERRY_SIM_FULL=1`; `FERRY_SIM_SEED` replays one seed.

mod fairness;
mod faults;
mod handshake;
mod integrity;
mod nodes;
mod stalls;
mod throughput;

/// Whether the full sweeps were asked for (`FERRY_SIM_FULL=1`).
pub(crate) fn full() -> bool {
    std::env::var("FERRY_SIM_FULL").is_ok_and(|v| v == "1")
}
