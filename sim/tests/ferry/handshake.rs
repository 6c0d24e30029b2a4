//! Handshake under 5 % loss each way on a 20 ms RTT link: always completes, p99 ≤ 2.5 s.

use std::time::{Duration, Instant as Wall};

use ferry_core::Config;
use ferry_core::dgram::TransportConfig;
use ferry_core::testing::MemApp;
use ferry_sim::{Budget, LinkConfig, Sim, check_seeds};

use crate::nodes::{Client, Server, ms};

/// Virtual time from the start until both sessions are connected.
fn handshake_time(seed: u64) -> Result<Duration, String> {
    let transport = TransportConfig::default();
    let mut sim = Sim::new(seed);
    let start = sim.now();
    let c = sim.add_node(Client::new(
        &Config::default(),
        &transport,
        seed,
        0,
        start,
        MemApp::new(),
    ));
    let s = sim.add_node(Server::new(&Config::default(), &transport, seed, 1));
    let link = LinkConfig::default().delay(ms(10)).loss(0.05);
    sim.connect(c, s, link.clone(), link);
    sim.run_until(
        |sim| {
            sim.node::<Client>(c).connected_at.is_some()
                && sim.node::<Server>(s).connected_at.is_some()
        },
        Budget::virtual_time(Duration::from_secs(60)),
    )
    .map_err(|e| e.to_string())?;
    let done = sim
        .node::<Client>(c)
        .connected_at
        .max(sim.node::<Server>(s).connected_at);
    Ok(done.expect("both connected") - start)
}

#[test]
fn handshake_under_5_percent_loss() {
    let n = 10_000;
    let wall = Wall::now();
    let times = std::cell::RefCell::new(Vec::with_capacity(n));
    check_seeds(n as u64, |seed| {
        times.borrow_mut().push(handshake_time(seed)?);
        Ok(())
    });
    let mut times = times.into_inner();
    times.sort();
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    let (p50, p99, max) = (pick(0.5), pick(0.99), times[times.len() - 1]);
    eprintln!(
        "handshake, 5 % loss each way, 20 ms RTT, {} seeds: all completed; p50 {p50:?}, p99 {p99:?}, max {max:?} (wall {:?})",
        times.len(),
        wall.elapsed()
    );
    assert!(p99 <= Duration::from_millis(2500), "p99 {p99:?} > 2.5 s");
}
