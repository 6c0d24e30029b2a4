//! The acceptance cases over UDP (`--udp`), parameterised by the client and server binary: the
//! TCP cases run as they are with every client command given `--udp` ([`over_udp`]), plus what
//! only UDP has (no answer instead of a refusal, `--no-udp`, stray datagrams, a lossy link).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::relay::{Faults, Relay};
use super::*;

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

fn failed(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what} should fail with 1:\n{}",
        stderr(o)
    );
}

/// The `error:` lines of a client's stderr, joined (a kernel that caps socket buffers adds a
/// warning line that is not the client's verdict).
fn error_lines(err: &str) -> String {
    err.lines()
        .filter(|l| l.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn hash_hex(d: &[u8]) -> serde_json::Value {
    serde_json::Value::String(proto::hash(d).iter().map(|b| format!("{b:02x}")).collect())
}

/// The client's handshake timeout (TCP and UDP clients alike), and a bound on a client that
/// gets no answer.
const HANDSHAKE: Duration = Duration::from_secs(10);
const NO_ANSWER_BOUND: Duration = Duration::from_secs(14);

pub fn udp_round_trip(c: &str, s: &str) {
    over_udp(|| cases::round_trip(c, s));
}

pub fn udp_directory_tree(c: &str, s: &str) {
    over_udp(|| cases::directory_tree(c, s));
}

pub fn udp_standard_input(c: &str, s: &str) {
    over_udp(|| cases::standard_input(c, s));
}

pub fn udp_bad_names(c: &str, s: &str) {
    over_udp(|| cases::bad_names(c, s));
}

pub fn udp_exists_rules(c: &str, s: &str) {
    over_udp(|| cases::exists_rules(c, s));
}

pub fn udp_records(c: &str, s: &str) {
    over_udp(|| cases::records(c, s));
}

/// `send --udp` killed with SIGKILL mid-file (through a relay that holds it to 2 MiB/s), then
/// rerun directly: the server still holds the dead connection (UDP has no FIN), the rerun takes
/// the name over and resumes from the verified prefix; the result matches.
pub fn udp_interrupted_send_resumes(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &[]);
    let size = 6 << 20;
    let body = data(5, size);
    let big = env.write("big.bin", &body);
    let relay = Relay::start(
        server.addr,
        Faults {
            rate: 2 << 20,
            ..Faults::default()
        },
    );
    let mut child = Command::new(bin(c))
        .args(["send", big.to_str().unwrap(), "--to", &relay.to(), "--udp"])
        .arg("--key")
        .arg(&env.key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial_len = || -> u64 {
        std::fs::read_dir(&root)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.contains("ferry-part") && !n.ends_with(".json")
                    })
                    .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    wait_for(15, "a partial file of at least 1 MiB", || {
        partial_len() >= 1 << 20
    });
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the client finished before it was killed"
    );
    drop(relay);
    assert!(
        !root.join("big.bin").exists(),
        "a partial file was published"
    );
    let started = Instant::now();
    let o = client(
        c,
        &env,
        &[
            "send",
            big.to_str().unwrap(),
            "--to",
            &server.to(),
            "--json",
            "--udp",
        ],
    );
    ok(&o, "resumed send");
    let r = &json_lines(&o)[0];
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert!(
        resumed > 0 && resumed < size as u64,
        "resumed_from {resumed} (after {:?})",
        started.elapsed()
    );
    assert_eq!(r["transport"], "udp");
    assert_eq!(r["bytes"].as_u64().unwrap(), size as u64);
    assert_eq!(r["blake3"], hash_hex(&body));
    assert!(std::fs::read(root.join("big.bin")).unwrap() == body);
    assert_eq!(tree(&root), vec!["big.bin"], "partial and sidecar are gone");
}

/// A client with another key hears nothing over UDP (the server cannot authenticate its
/// handshake): exit 1 within the handshake timeout, one line saying what may be wrong; the
/// server serves the next client.
pub fn udp_wrong_key(c: &str, s: &str) {
    let env = Env::new(c);
    let other = Env::new(c);
    let mut server = Server::start(s, &env, &env.path("root"), &[]);
    let f = env.write("f.txt", b"secret");
    let started = Instant::now();
    let o = client(
        c,
        &other,
        &[
            "send",
            f.to_str().unwrap(),
            "--to",
            &server.to(),
            "--udp",
            "--retries",
            "0",
        ],
    );
    let took = started.elapsed();
    failed(&o, "send with the wrong key");
    let err = stderr(&o);
    assert_eq!(
        error_lines(&err),
        format!(
            "error: no answer from {} over UDP within {} s: no ferry server there, UDP blocked, \
             or a different key",
            server.to(),
            HANDSHAKE.as_secs()
        )
    );
    assert!(
        took >= HANDSHAKE - Duration::from_millis(500),
        "gave up after {took:?}"
    );
    assert!(took < NO_ANSWER_BOUND, "took {took:?}");
    assert!(tree(&env.path("root")).is_empty());
    assert!(server.alive());
    let o = over_udp(|| {
        client(
            c,
            &env,
            &["send", f.to_str().unwrap(), "--to", &server.to()],
        )
    });
    ok(&o, "send with the right key");
    assert_eq!(std::fs::read(env.path("root/f.txt")).unwrap(), b"secret");
}

/// `--json` names the transport; `FERRY_TRANSPORT` picks it, `--udp` wins; every `--cc` moves
/// files (with each `--compress` mode).
pub fn udp_json_and_env(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let to = server.to();
    let transport = |o: &Output| {
        ok(o, "client");
        let lines = json_lines(o);
        assert!(!lines.is_empty(), "no JSON: {}", stderr(o));
        lines[0]["transport"].clone()
    };
    for (i, cc) in ["cubic", "newreno", "bbr"].into_iter().enumerate() {
        let name = format!("{cc}.bin");
        let f = env.write(&name, &data(40 + i as u64, 200_000));
        let o = client(
            c,
            &env,
            &[
                "send",
                f.to_str().unwrap(),
                "--to",
                &to,
                "--udp",
                "--cc",
                cc,
                "--compress",
                ["on", "off", "auto"][i],
                "--json",
            ],
        );
        assert_eq!(transport(&o), "udp", "{cc}");
        assert_eq!(json_lines(&o)[0]["outcome"], "sent");
        assert!(
            std::fs::read(env.path("root").join(&name)).unwrap() == data(40 + i as u64, 200_000)
        );
    }
    let ls = |udp: bool, var: Option<&str>| {
        let mut args = vec!["ls", "--from", &to, "--json"];
        if udp {
            args.push("--udp");
        }
        client_with(
            c,
            &env,
            env.dir.path(),
            &args,
            None,
            &[("FERRY_TRANSPORT", var)],
        )
    };
    assert_eq!(transport(&ls(false, None)), "tcp");
    assert_eq!(transport(&ls(false, Some("tcp"))), "tcp");
    assert_eq!(transport(&ls(false, Some("udp"))), "udp");
    assert_eq!(transport(&ls(true, Some("tcp"))), "udp");
    let o = ls(false, Some("carrier-pigeon"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("FERRY_TRANSPORT"), "{}", stderr(&o));
    let o = client(c, &env, &["record", "k=v", "--to", &to, "--udp", "--json"]);
    assert_eq!(transport(&o), "udp");
    assert_eq!(json_lines(&o)[0]["event"], "record");
}

/// `serve --no-udp` listens on TCP only: a UDP client (by flag or by `FERRY_TRANSPORT`) fails
/// at once with exit 1 and says the port is unreachable; TCP still works.
pub fn udp_no_udp_server(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &["--no-udp"]);
    let to = server.to();
    for var in [None, Some("udp")] {
        let mut args = vec!["ls", "--from", &to, "--retries", "0"];
        if var.is_none() {
            args.push("--udp");
        }
        let started = Instant::now();
        let o = client_with(
            c,
            &env,
            env.dir.path(),
            &args,
            None,
            &[("FERRY_TRANSPORT", var)],
        );
        let took = started.elapsed();
        failed(&o, "ls over UDP from a TCP-only server");
        assert!(o.stdout.is_empty(), "{}", stdout(&o));
        assert_eq!(
            error_lines(&stderr(&o)),
            format!("error: no ferry server on UDP {to} (port unreachable)")
        );
        assert!(took < NO_ANSWER_BOUND, "took {took:?}");
    }
    let o = client(
        c,
        &env,
        &["ls", "--from", &to, "--udp", "--retries", "0", "--json"],
    );
    failed(&o, "ls --json over UDP from a TCP-only server");
    assert_eq!(
        json_lines(&o),
        vec![serde_json::json!({
            "event": "error",
            "name": null,
            "reason": "refused",
            "error": format!("no ferry server on UDP {to} (port unreachable)"),
            "transport": "udp",
        })]
    );
    ok(&client(c, &env, &["ls", "--from", &to]), "ls over TCP");
}

/// Garbage datagrams from several addresses (every first byte, every size up to 1 500, some
/// 1 200-byte ones) before and during a real transfer: the server keeps serving, the file
/// arrives intact, and no garbage sender gets back more than 3 times what it sent.
pub fn udp_garbage_datagrams(c: &str, s: &str) {
    let env = Env::new(c);
    let mut server = Server::start(s, &env, &env.path("root"), &[]);
    let target = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spammers: Vec<_> = (0..4u64)
        .map(|k| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                let junk = data(70 + k, 1 << 20);
                let (mut sent, mut i) = (0usize, 0usize);
                while i < 4000 || (!stop.load(std::sync::atomic::Ordering::Relaxed) && i < 40_000) {
                    let len = if i % 5 == 0 {
                        1200
                    } else {
                        1 + (i * 7919) % 1500
                    };
                    let at = (i * 4099) % (junk.len() - len);
                    let mut d = junk[at..at + len].to_vec();
                    d[0] = i as u8;
                    if sock.send_to(&d, target).is_ok() {
                        sent += len;
                    }
                    i += 1;
                    if i % 64 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
                sock.set_nonblocking(true).unwrap();
                let mut got = 0;
                let mut buf = [0u8; 65536];
                while let Ok(n) = sock.recv(&mut buf) {
                    got += n;
                }
                (sent, got)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let body = data(8, 2 << 20);
    let f = env.write("real.bin", &body);
    let o = over_udp(|| {
        client(
            c,
            &env,
            &["send", f.to_str().unwrap(), "--to", &server.to()],
        )
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ok(&o, "send amid garbage datagrams");
    assert!(std::fs::read(env.path("root/real.bin")).unwrap() == body);
    for t in spammers {
        let (sent, got) = t.join().unwrap();
        assert!(got <= 3 * sent, "garbage drew {got} bytes for {sent}");
    }
    assert!(server.alive());
    let o = over_udp(|| client(c, &env, &["ls", "--from", &server.to()]));
    ok(&o, "ls after garbage");
}

/// Through a relay that drops 5 %, duplicates 2 %, reorders 2 % and flips a bit in 1 % of the
/// datagrams each way, a send and a get end byte-identical.
pub fn udp_lossy_link(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let faults = Faults {
        drop: 50,
        dup: 20,
        reorder: 20,
        flip: 10,
        rate: 0,
        seed: 7,
    };
    let body = data(9, 3 << 20);
    let f = env.write("lossy.bin", &body);
    let relay = Relay::start(server.addr, faults);
    let o = over_udp(|| client(c, &env, &["send", f.to_str().unwrap(), "--to", &relay.to()]));
    ok(&o, "send through the lossy relay");
    assert!(std::fs::read(env.path("root/lossy.bin")).unwrap() == body);
    let flipped = relay
        .counts
        .flipped
        .load(std::sync::atomic::Ordering::Relaxed);
    let dropped = relay
        .counts
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        flipped > 0 && dropped > 0,
        "the relay did nothing: {:?}",
        relay.counts
    );
    drop(relay);
    let relay = Relay::start(server.addr, Faults { seed: 8, ..faults });
    let back = env.path("back");
    std::fs::create_dir_all(&back).unwrap();
    let o = over_udp(|| {
        client(
            c,
            &env,
            &[
                "get",
                "lossy.bin",
                "--from",
                &relay.to(),
                "--out",
                back.to_str().unwrap(),
            ],
        )
    });
    ok(&o, "get through the lossy relay");
    assert!(std::fs::read(back.join("lossy.bin")).unwrap() == body);
}

/// `--retries` over UDP: a client started before its server (the port unreachable at first)
/// tries again with back-off and gets through once the server is up.
pub fn udp_retries_until_the_server_is_up(c: &str, s: &str) {
    let env = Env::new(c);
    // A port free for TCP and UDP alike, released for the server to take.
    let addr = {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = t.local_addr().unwrap();
        drop(UdpSocket::bind(a).unwrap());
        a
    };
    let f = env.write("early.bin", &data(12, 100_000));
    let started = Instant::now();
    let early = Command::new(bin(c))
        .args(["send", f.to_str().unwrap(), "--to", &addr.to_string()])
        .args(["--udp", "--retries", "4", "--key"])
        .arg(&env.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let _server = Server::start_listen(s, &env, &env.path("root"), &addr.to_string(), &[]);
    let o = early.wait_with_output().unwrap();
    ok(&o, "send retried until the server was up");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(std::fs::read(env.path("root/early.bin")).unwrap() == data(12, 100_000));
}

/// A datagram connection past the handshake that then says nothing: driven by hand over its
/// own socket until its session is connected (and its last flight sent); the returned socket
/// and connection keep it open on the server until the server's idle timeout.
pub fn udp_idle(
    addr: SocketAddr,
    psk: &proto::Psk,
    i: u64,
) -> (UdpSocket, proto::dgram::Connection) {
    use proto::dgram::{Connection, MAX_MTU, TransportConfig};
    let clock = ferry_app::host::Clock::new();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    let transport = TransportConfig::default();
    let mut conn = Connection::client(
        &proto::Config::default(),
        &transport,
        psk,
        seed,
        clock.now(),
        addr,
    );
    let (mut out, mut buf) = (vec![0u8; MAX_MTU.into()], vec![0u8; 2048]);
    let deadline = Instant::now() + HANDSHAKE;
    let mut connected_rounds = 0;
    loop {
        while let Some(t) = conn.poll_transmit(clock.now(), &mut out) {
            sock.send(&out[..t.size]).unwrap();
        }
        if conn.session().is_connected() {
            // One more round: the server's last handshake flight is acknowledged.
            connected_rounds += 1;
            if connected_rounds > 1 {
                return (sock, conn);
            }
        }
        assert!(
            Instant::now() < deadline,
            "idle connection {i}: no handshake"
        );
        match sock.recv(&mut buf) {
            Ok(n) => conn.handle_datagram(clock.now(), addr, &mut buf[..n]),
            Err(_) => conn.handle_timeout(clock.now()),
        }
    }
}

/// A UDP client of a server at its `--max-connections` limit hears the busy refusal: "server
/// busy" (not a key problem), exit 1, well within the handshake timeout.
pub fn udp_busy(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &["--max-connections", "1"]);
    let psk = proto::Psk::from_key_bytes(&ferry_cli::keyfile::load(&env.key).unwrap());
    let held = udp_idle(server.addr, &psk, 1);
    let f = env.write("f.txt", b"after the limit");
    let send = [
        "send",
        f.to_str().unwrap(),
        "--to",
        &server.to(),
        "--udp",
        "--retries",
        "0",
    ];
    let started = Instant::now();
    let o = client(c, &env, &send);
    failed(&o, "send over UDP while the only slot is held");
    let err = stderr(&o);
    assert!(error_lines(&err).contains("server busy"), "{err}");
    assert!(
        !err.contains("key"),
        "a busy server is not a key problem: {err}"
    );
    assert!(
        started.elapsed() < HANDSHAKE,
        "took {:?}",
        started.elapsed()
    );
    assert!(tree(&env.path("root")).is_empty());
    drop(held);
}
