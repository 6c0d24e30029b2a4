//! Hostile crowds against every server binary: keyless slowloris churn, and running out of
//! file descriptors. Each case runs against `ferry-std`, `ferry-mio` and `ferry-smol`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

macro_rules! per_binary {
    ($($case:ident),*) => {
        $(
            mod $case {
                #[test]
                fn std() {
                    super::$case("ferry-std");
                }
                #[test]
                fn mio() {
                    super::$case("ferry-mio");
                }
                #[test]
                fn smol() {
                    super::$case("ferry-smol");
                }
            }
        )*
    };
}

per_binary!(slowloris_churn, out_of_descriptors, idle_memory, keepalive);

/// `n` keyless connections that each send one byte and idle, re-opened whenever the server
/// drops them, until the returned flag is set. Returns the flag, how many connections were
/// opened in all, and the threads.
fn slowloris(
    addr: SocketAddr,
    n: usize,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
    Vec<thread::JoinHandle<()>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let threads = (0..n)
        .map(|_| {
            let (stop, opened) = (stop.clone(), opened.clone());
            thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                        else {
                            thread::sleep(Duration::from_millis(20));
                            continue;
                        };
                        opened.fetch_add(1, Ordering::Relaxed);
                        let _ = s.write_all(b"F");
                        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                        let mut buf = [0u8; 16];
                        // Idle until the server drops us (or we are told to stop).
                        while !stop.load(Ordering::Relaxed) {
                            match s.read(&mut buf) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    (stop, opened, threads)
}

/// The target is 2 s (measured here on an idle machine: see the README); the test
/// allows [`SLOW`] so that a loaded CI machine (the whole suite runs in parallel on two cores)
/// does not fail it, while a client shut out or stalled behind the attack still does.
const SLOW: Duration = Duration::from_secs(5);

/// While 300 keyless slowloris connections churn (each re-opened as soon as the server drops
/// it), a real `ls` and `send` from another client each succeed within 2 s.
fn slowloris_churn(bin_name: &str) {
    let env = Env::new(bin_name);
    let server = Server::start(bin_name, &env, &env.path("root"), &[]);
    let (stop, opened, threads) = slowloris(server.addr, 300);
    // Let the crowd fill every handshake slot first.
    wait_for(20, "300 slowloris connections", || {
        opened.load(Ordering::Relaxed) >= 300
    });
    thread::sleep(Duration::from_millis(500));
    let f = env.write("real.bin", &data(9, 200_000));
    for round in 0..3 {
        let t = Instant::now();
        let o = client(bin_name, &env, &["ls", "--from", &server.to()]);
        let ls_took = t.elapsed();
        assert!(o.status.success(), "ls {round}: {}", stderr(&o));
        let t = Instant::now();
        let o = client(
            bin_name,
            &env,
            &[
                "send",
                f.to_str().unwrap(),
                "--to",
                &server.to(),
                "--overwrite",
            ],
        );
        let send_took = t.elapsed();
        assert!(o.status.success(), "send {round}: {}", stderr(&o));
        assert!(
            ls_took < SLOW && send_took < SLOW,
            "round {round}: ls {ls_took:?}, send {send_took:?} amid the churn"
        );
        println!("{bin_name} round {round}: ls {ls_took:?}, send {send_took:?} amid the churn");
    }
    assert!(std::fs::read(env.path("root/real.bin")).unwrap() == data(9, 200_000));
    let peak = idle::status_kib(server.child.id(), "VmHWM:");
    println!("{bin_name}: server peak RSS {peak} KiB amid the churn");
    assert!(
        peak < 128 << 10,
        "server peak RSS {peak} KiB (README: under 128 MiB)"
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let log = server.stop();
    println!(
        "{bin_name}: {} slowloris connections opened in all; the server logged {} lines",
        opened.load(Ordering::Relaxed),
        log.lines().count()
    );
    assert!(
        log.lines().count() < 100,
        "keyless connections flood the log:\n{}",
        log.lines().take(20).collect::<Vec<_>>().join("\n")
    );
}

/// A server limited to 64 descriptors runs out of them (idle connections); it stays up, and
/// once they are freed a client that connected meanwhile (waiting in the listen backlog, with
/// no new connection to wake the server) and a fresh one are both served.
fn out_of_descriptors(bin_name: &str) {
    let env = Env::new(bin_name);
    let root = env.path("root");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=64:64")
        .arg(bin(bin_name))
        .args(["serve", "--listen", "127.0.0.1:0", "--root"])
        .arg(&root)
        .arg("--key")
        .arg(&env.key)
        .args(["--handshake-timeout", "60"]);
    let mut server = Server::spawn(cmd, &root);
    let idle: Vec<TcpStream> = (0..100).map(|_| raw(&server)).collect();
    thread::sleep(Duration::from_millis(500));
    // This one waits in the backlog behind the idle ones.
    let waiting = Command::new(bin(bin_name))
        .args(["ls", "--from", &server.to(), "--key"])
        .arg(&env.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Longer than 100 failed accepts 50 ms apart (where servers used to give up).
    thread::sleep(Duration::from_millis(5500));
    assert!(server.alive(), "the server exited when out of descriptors");
    drop(idle);
    let o = waiting.wait_with_output().unwrap();
    assert!(o.status.success(), "the waiting ls: {}", stderr(&o));
    let o = client(bin_name, &env, &["ls", "--from", &server.to()]);
    assert!(o.status.success(), "a fresh ls: {}", stderr(&o));
    // The UDP side took no descriptor after `listening on` (it used to bind a waker socket,
    // and exited the server when the crowd had taken them all): it serves too.
    let o = client(bin_name, &env, &["ls", "--from", &server.to(), "--udp"]);
    assert!(o.status.success(), "a fresh ls over UDP: {}", stderr(&o));
    assert!(server.alive());
    let log = server.stop();
    let warnings = log.matches("accept failed").count();
    assert!(
        (1..=10).contains(&warnings),
        "one warning per burst of failed accepts, got {warnings}:\n{log}"
    );
}

/// An idle authenticated connection holds no I/O buffers: 200 of them cost the server less
/// than 100 KiB each (std: two threads' stacks; mio and smol: a few KiB; before, std held
/// about 280 KiB of buffers and smol about 140 KiB).
fn idle_memory(bin_name: &str) {
    use common::idle::{authenticated_idle, status_kib};
    const N: usize = 200;
    let env = Env::new(bin_name);
    let server = Server::start(
        bin_name,
        &env,
        &env.path("root"),
        &["--max-connections", "1000"],
    );
    let pid = server.child.id();
    let key = ferry_cli::keyfile::load(&env.key).unwrap();
    let psk = proto::Psk::from_key_bytes(&key);
    let warm: Vec<_> = (0..10)
        .map(|i| authenticated_idle(server.addr, &psk, i))
        .collect();
    thread::sleep(Duration::from_millis(500));
    let base = status_kib(pid, "VmRSS:");
    let conns: Vec<_> = (0..N as u64)
        .map(|i| authenticated_idle(server.addr, &psk, 100 + i))
        .collect();
    thread::sleep(Duration::from_secs(1));
    let each = status_kib(pid, "VmRSS:").saturating_sub(base) / N as u64;
    println!("{bin_name}: {each} KiB per idle authenticated connection");
    assert!(each < 100, "{each} KiB per idle authenticated connection");
    drop((warm, conns));
}

/// The server turns TCP keepalive on for the connections it accepts (`ss` shows the timer), so
/// a peer that vanished without a FIN is noticed within seconds. Skipped without `ss`.
fn keepalive(bin_name: &str) {
    let env = Env::new(bin_name);
    let server = Server::start(bin_name, &env, &env.path("root"), &[]);
    let conn = raw(&server);
    thread::sleep(Duration::from_millis(300));
    let filter = format!("( sport = :{} )", server.addr.port());
    let Ok(o) = Command::new("ss")
        .args(["-tno", "state", "established", &filter])
        .output()
    else {
        eprintln!("no ss here; skipping");
        return;
    };
    let table = String::from_utf8_lossy(&o.stdout);
    let line = table
        .lines()
        .find(|l| l.contains(&conn.local_addr().unwrap().to_string()))
        .unwrap_or_else(|| panic!("the server's socket is not listed:\n{table}"));
    assert!(line.contains("keepalive"), "no keepalive timer: {line}");
}

/// Start `serve` (an adapter's, with a 2 s idle timeout) on a thread; returns its address and
/// key. The thread runs until the test process ends.
fn serve_with_idle_timeout(
    serve: fn(std::net::TcpListener, proto::Psk, Arc<dyn ferry_disk::Store>, proto::Config),
) -> (SocketAddr, proto::Psk, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ferry_disk::Store> =
        Arc::new(ferry_disk::FsStore::new(dir.path().join("root")).unwrap());
    let psk = proto::Psk::from_key_bytes(&[7; 32]);
    let mut config = proto::Config::default();
    config.idle_timeout = Duration::from_secs(2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_psk = psk.clone();
    thread::spawn(move || serve(listener, server_psk, store, config));
    (addr, psk, dir)
}

/// An authenticated peer that went silent (no keep-alive pings: dead) is closed by the
/// server's idle timeout (2 s here), in every adapter.
fn idle_timeout_closes_a_dead_peer(
    serve: fn(std::net::TcpListener, proto::Psk, Arc<dyn ferry_disk::Store>, proto::Config),
) {
    let (addr, psk, _dir) = serve_with_idle_timeout(serve);
    let (mut conn, _session) = idle::authenticated_idle(addr, &psk, 1);
    let t = Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut sink = Vec::new();
    let _ = conn.read_to_end(&mut sink);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "closed after {took:?} (idle timeout 2 s)"
    );
}

#[test]
fn idle_timeout_std() {
    idle_timeout_closes_a_dead_peer(|l, psk, store, config| {
        let opts = ferry_adapter_std::ServeOptions {
            max_connections: 8,
            config,
            ..Default::default()
        };
        let _ = ferry_adapter_std::serve(l, psk, store, opts);
    });
}

#[test]
fn idle_timeout_mio() {
    idle_timeout_closes_a_dead_peer(|l, psk, store, config| {
        let opts = ferry_adapter_mio::ServeOptions {
            max_connections: 8,
            config,
            ..Default::default()
        };
        let _ = ferry_adapter_mio::serve(l, psk, store, opts);
    });
}

#[test]
fn idle_timeout_smol() {
    idle_timeout_closes_a_dead_peer(|l, psk, store, config| {
        let opts = ferry_adapter_smol::ServeOptions {
            max_connections: 8,
            config,
            ..Default::default()
        };
        let _ = ferry_adapter_smol::serve(l, psk, store, opts);
    });
}
