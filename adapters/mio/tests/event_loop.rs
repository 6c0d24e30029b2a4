//! The mio adapter's library API over 127.0.0.1: one loop serving several clients, the core's
//! timers firing from the loop's heap, and the commit pool waking the loop.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_adapter_mio::{ServeOptions, run_client, run_clients, serve};
use ferry_app::agent::{Agent, Job, LogObserver, Report};
use ferry_disk::{FsStore, Outgoing};
use proto::{Config, Psk};

const KEY: [u8; 32] = [7; 32];

/// A server on its own thread (it runs until the test process ends); returns its port.
fn server(root: &Path, config: Config) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = Arc::new(FsStore::new(root).unwrap());
    let opts = ServeOptions {
        max_connections: 8,
        config,
        ..Default::default()
    };
    std::thread::spawn(move || serve(listener, Psk::from_key_bytes(&KEY), store, opts));
    port
}

fn dial(port: u16) -> TcpStream {
    ferry_adapter_mio::connect("127.0.0.1", port, Duration::from_secs(5), 0).unwrap()
}

/// A client agent sending `path` as `name`.
fn sender(dir: &Path, path: &Path, name: &str) -> Agent {
    let file = Outgoing::from_file(path.to_path_buf(), name, false).unwrap();
    let store = Arc::new(FsStore::new(dir).unwrap());
    Agent::client(store, Box::new(LogObserver), Job::Send(vec![file]))
}

fn sent(agent: &Agent) -> Vec<String> {
    agent
        .reports()
        .iter()
        .filter_map(|r| match r {
            Report::Sent(f) => Some(f.name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn one_loop_serves_two_clients_at_once() {
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let port = server(root.path(), Config::default());
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    let body_a: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&a, &body_a).unwrap();
    std::fs::write(&b, b"the second client").unwrap();
    let mut agent_a = sender(work.path(), &a, "a.bin");
    let mut agent_b = sender(work.path(), &b, "b.txt");
    // Both clients on one client loop too: two connections, one thread each side.
    let results = run_clients(
        vec![(dial(port), &mut agent_a), (dial(port), &mut agent_b)],
        &Config::default(),
        &Psk::from_key_bytes(&KEY),
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // The callers got their agents back, with what happened.
    assert_eq!(sent(&agent_a), ["a.bin"]);
    assert_eq!(sent(&agent_b), ["b.txt"]);
    assert_eq!(std::fs::read(root.path().join("a.bin")).unwrap(), body_a);
    assert_eq!(
        std::fs::read(root.path().join("b.txt")).unwrap(),
        b"the second client"
    );
}

#[test]
fn a_silent_connection_is_closed_by_the_handshake_timer() {
    let root = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_millis(300);
    let port = server(root.path(), config);
    let mut silent = dial(port);
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    // The loop's timer fires and closes the socket: the read ends (0 bytes or a reset), long
    // before the generous bound.
    let mut buf = [0u8; 64];
    let ended = match silent.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(ended, "the server closed the silent connection");
    assert!(started.elapsed() < Duration::from_secs(15));
    // The loop goes on serving.
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("f");
    std::fs::write(&f, b"after the silent one").unwrap();
    let mut agent = sender(work.path(), &f, "f.txt");
    let psk = Psk::from_key_bytes(&KEY);
    run_client(dial(port), &Config::default(), &psk, &mut agent).unwrap();
    assert_eq!(sent(&agent), ["f.txt"]);
}

#[test]
fn a_commit_on_the_pool_wakes_the_loop() {
    // No timer of the server's would fire within the bound: the handshake is done and the idle
    // timeout and keepalive are far off, so only the commit pool's wake-up can get the Ack out.
    let root = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.idle_timeout = Duration::from_secs(120);
    config.keepalive_interval = Duration::from_secs(60);
    config.close_timeout = Duration::from_secs(90);
    let port = server(root.path(), config.clone());
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("f");
    std::fs::write(&f, b"committed on a pool thread").unwrap();
    let mut agent = sender(work.path(), &f, "f.txt");
    let started = Instant::now();
    run_client(dial(port), &config, &Psk::from_key_bytes(&KEY), &mut agent).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the Ack waited for a timer: {:?}",
        started.elapsed()
    );
    assert_eq!(sent(&agent), ["f.txt"]);
    assert_eq!(
        std::fs::read(root.path().join("f.txt")).unwrap(),
        b"committed on a pool thread"
    );
}
