//! Load test for `ferry-mio serve` (ignored by default: it is long and its figures are the
//! point, not a pass/fail timing):
//!
//! ```sh
//! cargo test --release -p ferry-cli --test load -- --ignored --nocapture
//! ```
//!
//! It measures the server's RSS per idle connection with 1000 authenticated connections that
//! then say nothing, then 1000 concurrent clients (one event-loop thread in this process) each
//! sending a 256 KiB file: wall time, every file's content on the server, and the server's peak
//! RSS. `idle_authenticated_connection_cost` gives the idle figure for all three servers.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::idle::{authenticated_idle, status_kib};
use common::*;
use ferry_app::agent::{Agent, Job, Observer};
use ferry_disk::{Outgoing, Source, StdoutStore};
use proto::{Config, FileMeta, Psk};

struct Quiet;
impl Observer for Quiet {}

#[test]
#[ignore = "load test: run explicitly, see the module docs"]
fn thousand_clients_one_thread() {
    const N: usize = 1000;
    const SIZE: usize = 256 << 10;
    let env = Env::new("ferry-mio");
    let server = Server::start(
        "ferry-mio",
        &env,
        &env.path("root"),
        &["--max-connections", "5000", "--handshake-timeout", "120"],
    );
    let pid = server.child.id();
    std::thread::sleep(Duration::from_millis(300));
    let base = status_kib(pid, "VmRSS:");

    // 1000 idle authenticated connections (silent ones beyond the handshake quota of 64 are
    // evicted, so they would measure nothing).
    let psk = Psk::from_key_bytes(&ferry_cli::keyfile::load(&env.key).unwrap());
    let idle: Vec<_> = (0..N as u64)
        .map(|i| authenticated_idle(server.addr, &psk, i))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let with_idle = status_kib(pid, "VmRSS:");
    drop(idle);
    println!(
        "idle: {N} authenticated connections: server RSS {base} KiB -> {with_idle} KiB, {:.1} KiB per connection",
        (with_idle.saturating_sub(base)) as f64 / N as f64
    );
    std::thread::sleep(Duration::from_secs(1));

    // 1000 concurrent clients, 256 KiB each.
    let files: Vec<_> = (0..N)
        .map(|i| env.write(&format!("src/f{i:04}.bin"), &data(i as u64, SIZE)))
        .collect();
    let store = std::sync::Arc::new(StdoutStore::new());
    let mut agents: Vec<Agent> = files
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let out = Outgoing {
                meta: FileMeta::new(&format!("f{i:04}.bin"), Some(SIZE as u64)),
                source: Source::File(p.clone()),
            };
            Agent::client(store.clone(), Box::new(Quiet), Job::Send(vec![out]))
        })
        .collect();
    let t = Instant::now();
    let conns: Vec<(TcpStream, &mut Agent)> = agents
        .iter_mut()
        .map(|a| (TcpStream::connect(server.addr).unwrap(), a))
        .collect();
    let results = ferry_adapter_mio::run_clients(conns, &Config::default(), &psk);
    let wall = t.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(failed, 0, "{:?}", results.iter().find(|r| r.is_err()));
    assert!(agents.iter().all(|a| a.failures() == 0));
    for i in 0..N {
        let got = std::fs::read(env.path(&format!("root/f{i:04}.bin"))).unwrap();
        assert!(got == data(i as u64, SIZE), "file {i} differs");
    }
    let peak = status_kib(pid, "VmHWM:");
    println!(
        "load: {N} clients x {} KiB in {:.2} s ({:.0} MB/s, {:.0} files/s); server peak RSS {peak} KiB",
        SIZE >> 10,
        wall.as_secs_f64(),
        (N * SIZE) as f64 / wall.as_secs_f64() / 1e6,
        N as f64 / wall.as_secs_f64()
    );
}

/// RSS per idle authenticated connection, for each server binary (figures for the README).
#[test]
#[ignore = "load test: run explicitly, see the module docs"]
fn idle_authenticated_connection_cost() {
    const N: usize = 500;
    for bin_name in ["ferry-std", "ferry-mio", "ferry-smol"] {
        let env = Env::new(bin_name);
        let args = ["--max-connections", "5000"];
        let server = Server::start(bin_name, &env, &env.path("root"), &args);
        let pid = server.child.id();
        let psk = Psk::from_key_bytes(&ferry_cli::keyfile::load(&env.key).unwrap());
        // Warm up (threads, pools, allocator) with a few, then measure N more.
        let warm: Vec<_> = (0..20)
            .map(|i| authenticated_idle(server.addr, &psk, i))
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let base = status_kib(pid, "VmRSS:");
        let conns: Vec<_> = (0..N)
            .map(|i| authenticated_idle(server.addr, &psk, 1000 + i as u64))
            .collect();
        std::thread::sleep(Duration::from_secs(3));
        let with = status_kib(pid, "VmRSS:");
        println!(
            "{bin_name}: {N} idle authenticated connections: RSS {base} KiB -> {with} KiB, {:.1} KiB each",
            with.saturating_sub(base) as f64 / N as f64
        );
        drop((warm, conns));
    }
}
