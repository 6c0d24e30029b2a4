//! Idle datagram connections on `ferry-mio serve` (issue 17): 1 000 connections past the
//! handshake that then say nothing cost at most 64 KiB of server memory each and do not slow
//! a real transfer over UDP.

mod common;

use std::time::{Duration, Instant};

use common::idle::status_kib;
use common::udp::udp_idle;
use common::*;
use proto::Psk;

/// One `send --udp` of `file`; its wall time.
fn timed_send(env: &Env, server: &Server, file: &std::path::Path, name: &str) -> Duration {
    let started = Instant::now();
    let o = client(
        "ferry-mio",
        env,
        &[
            "send",
            file.to_str().unwrap(),
            "--as",
            name,
            "--to",
            &server.to(),
            "--udp",
        ],
    );
    assert!(o.status.success(), "send {name}: {}", stderr(&o));
    started.elapsed()
}

#[test]
fn thousand_idle_udp_connections_are_cheap_and_do_not_slow_a_transfer() {
    const N: usize = 1000;
    const SIZE: usize = 32 << 20;
    let env = Env::new("ferry-mio");
    let server = Server::start(
        "ferry-mio",
        &env,
        &env.path("root"),
        &["--max-connections", "5000", "--handshake-timeout", "120"],
    );
    let pid = server.child.id();
    let psk = Psk::from_key_bytes(&ferry_cli::keyfile::load(&env.key).unwrap());
    let body = data(7, SIZE);
    let file = env.write("big.bin", &body);
    // Warm up (allocator, buffers of a transfer), then the reference transfer.
    let warm: Vec<_> = (0..20).map(|i| udp_idle(server.addr, &psk, i)).collect();
    let alone = timed_send(&env, &server, &file, "alone.bin");
    std::thread::sleep(Duration::from_millis(500));
    let base = status_kib(pid, "VmRSS:");
    let started = Instant::now();
    let idle: Vec<_> = (0..N as u64)
        .map(|i| udp_idle(server.addr, &psk, 1000 + i))
        .collect();
    let handshakes = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let with_idle = status_kib(pid, "VmRSS:");
    let per_conn = with_idle.saturating_sub(base) as f64 / N as f64;
    let beside = timed_send(&env, &server, &file, "beside.bin");
    eprintln!(
        "{N} idle UDP connections ({handshakes:?} to open): server RSS {base} KiB -> {with_idle} KiB, {per_conn:.1} KiB each; a {} MiB send took {alone:?} alone, {beside:?} beside them",
        SIZE >> 20
    );
    assert!(per_conn <= 64.0, "{per_conn:.1} KiB per idle connection");
    // Generous: the machine is shared and noisy; a server that walked every connection per
    // datagram would be many times slower.
    assert!(
        beside <= alone * 2 + Duration::from_secs(2),
        "{beside:?} beside idle connections, {alone:?} alone"
    );
    for name in ["alone.bin", "beside.bin"] {
        assert!(std::fs::read(env.path(&format!("root/{name}"))).unwrap() == body);
    }
    drop((warm, idle));
}
