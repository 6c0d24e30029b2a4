//! Short codes over UDP through the real binaries: `send --code --udp` (binary `s`) and
//! `receive --udp` (binary `c`), directly and through `relay` (which listens on UDP too).

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::code::{BURNED, Sender, assert_tree, contains, receive, receive_into, relay, tree};
use super::*;

/// A file and a directory to send.
fn tree_to_send(env: &Env) -> (Vec<u8>, Vec<u8>) {
    tree(env, 21, 300_000)
}

/// A UDP hello of the relay rendezvous: 26 bytes starting with `FRYR` 02.
fn is_hello(d: &[u8]) -> bool {
    d.len() == 26 && d.starts_with(b"FRYR\x02")
}

/// What a [`Tap`] does to the sender's datagrams (hellos excepted) on their way to the relay.
#[derive(Clone, Copy, Debug)]
pub enum Damage {
    /// Flip a bit in every one of them: no handshake can complete.
    Every,
    /// Flip a bit in the `n`-th (from 0) only.
    Nth(u64),
}

/// A UDP tap between one sender and the relay: records every datagram both ways (those the
/// relay receives from the sender, and those it forwards to it) and can damage the sender's.
pub struct Tap {
    pub addr: SocketAddr,
    pub up: Arc<Mutex<Vec<Vec<u8>>>>,
    pub down: Arc<Mutex<Vec<Vec<u8>>>>,
    pub flipped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Tap {
    pub fn start(relay: SocketAddr, damage: Option<Damage>) -> Tap {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(relay).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let sender: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let up: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let down: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let flipped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
        {
            let (sender, up, flipped, stop) =
                (sender.clone(), up.clone(), flipped.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let mut n_data = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else {
                        continue;
                    };
                    *sender.lock().unwrap() = Some(from);
                    let d = &mut buf[..n];
                    up.lock().unwrap().push(d.to_vec());
                    if !is_hello(d) {
                        let hit = match damage {
                            Some(Damage::Every) => true,
                            Some(Damage::Nth(k)) => n_data == k,
                            None => false,
                        };
                        n_data += 1;
                        if hit {
                            // Past the header: the protected part.
                            let at = n / 2;
                            d[at] ^= 0x20;
                            flipped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let _ = back.send(d);
                }
            });
        }
        {
            let (down, stop) = (down.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = back2.recv(&mut buf) else {
                        continue;
                    };
                    down.lock().unwrap().push(buf[..n].to_vec());
                    if let Some(to) = *sender.lock().unwrap() {
                        let _ = front2.send_to(&buf[..n], to);
                    }
                }
            });
        }
        Tap {
            addr,
            up,
            down,
            flipped,
            stop,
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Direct over UDP: the JSON contract (`code`, `listen`, `transport`), the other side's
/// command with `--udp`, a file and a directory byte-identical.
pub fn code_udp_round_trip(c: &str, s: &str) {
    let env = Env::new(c);
    let (a, b) = tree_to_send(&env);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "reports", "--listen", "127.0.0.1:0", "--udp"],
    );
    assert_eq!(sender.first["transport"], "udp", "{}", sender.first);
    let schema = conventions::schema();
    let errors: Vec<String> = schema
        .iter_errors(&sender.first)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{}: {errors:?}", sender.first);
    let code = sender.code();
    let command = sender.first["command"].as_str().unwrap();
    assert!(
        command.contains(&format!("receive {code} --from")) && command.ends_with("--udp"),
        "{command}"
    );
    // The sender listens on UDP only: nothing on TCP at that port.
    let to: SocketAddr = sender.listen().parse().unwrap();
    assert!(TcpStream::connect(to).is_err(), "TCP at {to}");
    let (o, out) = receive_into(c, &env, &code, &["--udp", "--from", &sender.listen()]);
    assert!(stderr(&o).contains("offered: 2 files"), "{}", stderr(&o));
    assert_tree(&out, &a, Some(&b));
    let (status, rest, err) = sender.finish();
    assert!(status.success(), "sender: {err}");
    assert_eq!(rest.matches("\"outcome\":\"sent\"").count(), 2, "{rest}");
    assert_eq!(rest.matches("\"transport\":\"udp\"").count(), 2, "{rest}");
}

/// `FERRY_TRANSPORT=udp` picks UDP on both sides, standard input is sent, `--json` on the
/// receiving side.
pub fn code_udp_env_and_stdin(c: &str, s: &str) {
    let env = Env::new(c);
    let payload = data(6, 150_000);
    let src = env.write("piped.src", &payload);
    let mut child = Command::new(bin(s))
        .args(["--json", "send", "-", "--as", "piped.bin", "--code"])
        .args(["--listen", "127.0.0.1:0"])
        .env("FERRY_TRANSPORT", "udp")
        .stdin(std::fs::File::open(&src).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["transport"], "udp", "{first}");
    let out = env.path("got");
    let o = Command::new(bin(c))
        .args([
            "--json",
            "receive",
            "--from",
            first["listen"].as_str().unwrap(),
        ])
        .args(["--out", out.to_str().unwrap(), "--yes"])
        .env("FERRY_CODE", first["code"].as_str().unwrap())
        .env("FERRY_TRANSPORT", "udp")
        .output()
        .unwrap();
    assert!(o.status.success(), "receive: {}", stderr(&o));
    let events = json_lines(&o);
    assert_eq!(events[0]["event"], "offer", "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["outcome"] == "received" && e["transport"] == "udp"),
        "{events:?}"
    );
    assert_eq!(std::fs::read(out.join("piped.bin")).unwrap(), payload);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the sender did not exit");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
}

/// A wrong code over UDP: both sides exit 1 with the burned message, nothing is written, and
/// the right code afterwards fails too (the sender is gone).
pub fn code_udp_wrong_code_burns(c: &str, s: &str) {
    let env = Env::new(c);
    tree_to_send(&env);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "--listen", "127.0.0.1:0", "--udp"],
    );
    let code = sender.code();
    let nameplate = code.split('-').next().unwrap();
    let guess = format!("{nameplate}-acid-acorn-acre-aged");
    assert_ne!(guess, code);
    let out = env.path("got");
    let to = sender.listen();
    let args = [
        "--udp",
        "--from",
        &to,
        "--out",
        out.to_str().unwrap(),
        "--yes",
    ];
    let o = receive(c, env.dir.path(), &guess, &args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(BURNED), "receiver: {}", stderr(&o));
    let (status, _, err) = sender.finish();
    assert_eq!(status.code(), Some(1), "the sender exits");
    assert!(err.contains(BURNED), "sender: {err}");
    assert!(!out.exists(), "nothing written");
    let again = receive(c, env.dir.path(), &code, &args);
    assert_eq!(again.status.code(), Some(1), "the code is burned");
    assert!(!out.exists());
}

/// A wrong code through the relay over UDP: the sender burns it and exits 1; the receiver,
/// which heard the sender's half of the code exchange and then nothing (no ICMP comes back
/// through a relay), reports the burned code within its handshake timeout; nothing written.
pub fn code_udp_relay_wrong_code_burns(c: &str, s: &str) {
    let env = Env::new(c);
    tree_to_send(&env);
    let r = relay(s);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "--relay", &r.to(), "--udp"],
    );
    let code = sender.code();
    let guess = format!("{}-acid-acorn-acre-aged", code.split('-').next().unwrap());
    assert_ne!(guess, code);
    let out = env.path("got");
    let t0 = Instant::now();
    let o = receive(
        c,
        env.dir.path(),
        &guess,
        &[
            "--udp",
            "--relay",
            &r.to(),
            "--out",
            out.to_str().unwrap(),
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(BURNED), "receiver: {}", stderr(&o));
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let (status, _, err) = sender.finish();
    assert_eq!(status.code(), Some(1), "the sender exits");
    assert!(err.contains(BURNED), "sender: {err}");
    assert!(!out.exists(), "nothing written");
}

/// Through the relay over UDP: a file and a directory arrive, and neither what the relay
/// receives from the sender nor what it forwards to it holds plaintext, a file name or a word
/// of the code.
pub fn code_udp_relay_round_trip(c: &str, s: &str) {
    let env = Env::new(c);
    let (a, b) = tree_to_send(&env);
    let r = relay(s);
    let tap = Tap::start(r.addr, None);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &[
            "photo.bin",
            "reports",
            "--relay",
            &tap.addr.to_string(),
            "--udp",
        ],
    );
    assert_eq!(sender.first["transport"], "udp");
    assert!(sender.first["command"].as_str().unwrap().ends_with("--udp"));
    let code = sender.code();
    let (_, out) = receive_into(c, &env, &code, &["--udp", "--relay", &r.to()]);
    assert_tree(&out, &a, Some(&b));
    let (status, _, err) = sender.finish();
    assert!(status.success(), "sender: {err}");
    let up: Vec<u8> = tap.up.lock().unwrap().concat();
    let down: Vec<u8> = tap.down.lock().unwrap().concat();
    assert!(up.len() > 300_000, "the file went through the relay");
    assert!(!down.is_empty(), "the receiver's datagrams came back");
    for (what, seen) in [("to the relay", &up), ("from the relay", &down)] {
        for name in [&b"quarterly"[..], b"photo.bin", b"reports"] {
            assert!(!contains(seen, name), "a file name went {what}");
        }
        assert!(!contains(seen, b"the quarterly report"), "plaintext {what}");
        assert!(!contains(seen, &a[1000..1032]), "plaintext {what}");
        for word in code.split('-').skip(1) {
            assert!(
                !contains(seen, word.as_bytes()),
                "the word {word} went {what}"
            );
        }
    }
}

/// A relay that damages datagrams over UDP. Every handshake datagram of the sender damaged:
/// no session, both sides exit 1, nothing written. One data datagram damaged: the receiver
/// drops it (its tag fails), the sender resends, and the file arrives byte-identical.
pub fn code_udp_relay_tampering(c: &str, s: &str) {
    let env = Env::new(c);
    let (a, _) = tree_to_send(&env);
    let r = relay(s);

    let tap = Tap::start(r.addr, Some(Damage::Every));
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "--relay", &tap.addr.to_string(), "--udp"],
    );
    let out = env.path("got");
    let args = [
        "--udp",
        "--relay",
        &r.to(),
        "--out",
        out.to_str().unwrap(),
        "--yes",
    ];
    let t0 = Instant::now();
    let o = receive(c, env.dir.path(), &sender.code(), &args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(t0.elapsed() < Duration::from_secs(40));
    assert!(tap.flipped.load(Ordering::Relaxed) > 0);
    assert!(!out.exists(), "nothing written: {}", stderr(&o));
    let (status, _, err) = sender.finish();
    assert_eq!(status.code(), Some(1), "the sender fails too: {err}");
    drop(tap);

    // The 40th datagram of the sender is well into the file (the handshake takes a few).
    let tap = Tap::start(r.addr, Some(Damage::Nth(40)));
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "--relay", &tap.addr.to_string(), "--udp"],
    );
    let o = Command::new(bin(c))
        .current_dir(env.dir.path())
        .arg("receive")
        .args(args)
        .env("FERRY_CODE", sender.code())
        .env("FERRY_UDP_STATS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(tap.flipped.load(Ordering::Relaxed), 1);
    assert!(
        stderr(&o).contains("auth_failures: 1,"),
        "the damaged datagram was dropped: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(out.join("photo.bin")).unwrap(), a);
    assert!(sender.finish().0.success());
}

/// The UDP relay's rendezvous against raw datagrams: no answer to what is not a hello, a
/// hello without the token gets only the token (fewer bytes than it sent, and nothing
/// parked), the echoed token parks, the same role on the same number is refused, a parked
/// side is sent away after `--wait`, and `--per-ip` caps one address.
pub fn relay_udp_bounds(c: &str, s: &str) {
    let _ = c;
    let mut cmd = Command::new(bin(s));
    cmd.args([
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--wait",
        "2",
        "--per-ip",
        "2",
    ]);
    let r = Server::spawn(cmd, Path::new("."));
    let side = || {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.connect(r.addr).unwrap();
        u.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        u
    };
    let hello = |role: u8, n: u32, token: &[u8]| {
        let mut h = b"FRYR\x02".to_vec();
        h.push(role);
        h.extend_from_slice(&n.to_be_bytes());
        h.extend_from_slice(token);
        assert_eq!(h.len(), 26);
        h
    };
    let ask = |u: &UdpSocket, d: &[u8]| -> Option<Vec<u8>> {
        u.send(d).unwrap();
        let mut b = [0u8; 2048];
        u.recv(&mut b).ok().map(|n| b[..n].to_vec())
    };
    // Checked in: the token, then parked ('W').
    let check_in = |u: &UdpSocket, role: u8, n: u32| -> Vec<u8> {
        let t = ask(u, &hello(role, n, &[0; 16])).expect("a token");
        assert!(t.len() < 26 && t.starts_with(b"FRYR\x02T"), "{t:?}");
        ask(u, &hello(role, n, &t[6..])).expect("an answer")
    };

    let garbage = side();
    assert_eq!(
        ask(&garbage, &[0x40; 1200]),
        None,
        "no answer to non-hellos"
    );
    assert_eq!(ask(&garbage, &hello(b'S', 5, &[7; 16])[..20]), None);
    // A wrong token: only a token back, never more bytes than were sent.
    let t = ask(&garbage, &hello(b'S', 5, &[7; 16])).unwrap();
    assert_eq!(&t[..6], b"FRYR\x02T");
    assert!(t.len() < 26);

    let first = side();
    assert_eq!(check_in(&first, b'S', 42), b"FRYR\x02W", "parked");
    let same = side();
    assert_eq!(
        check_in(&same, b'S', 42),
        b"FRYR\x02X",
        "the number is taken"
    );
    // --per-ip 2: 127.0.0.1 holds one parked side; a second is fine, a third is refused.
    let second = side();
    assert_eq!(check_in(&second, b'R', 43), b"FRYR\x02W");
    let third = side();
    assert_eq!(check_in(&third, b'R', 44), b"FRYR\x02X", "per-IP limit");
    // Sent away after --wait 2 (the parked side keeps saying hello, as clients do).
    let t0 = Instant::now();
    let token = {
        let t = ask(&first, &hello(b'S', 42, &[0; 16])).unwrap();
        t[6..].to_vec()
    };
    let gone = loop {
        let a = ask(&first, &hello(b'S', 42, &token));
        if a.as_deref() == Some(b"FRYR\x02X") {
            break true;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            break false;
        }
        thread::sleep(Duration::from_millis(300));
    };
    assert!(gone, "a parked side is sent away after --wait");

    // Paired: what one side sends reaches the other as it is (once `second`, silent since
    // parked, is gone too: past --wait, swept each second).
    drop(second);
    thread::sleep(Duration::from_millis(2500));
    let (snd, rcv) = (side(), side());
    assert_eq!(check_in(&snd, b'S', 77), b"FRYR\x02W");
    assert_eq!(check_in(&rcv, b'R', 77), b"FRYR\x02P");
    let mut b = [0u8; 64];
    let n = snd.recv(&mut b).unwrap();
    assert_eq!(&b[..n], b"FRYR\x02P", "the parked side is told");
    rcv.send(b"hello through the relay").unwrap();
    let n = snd.recv(&mut b).unwrap();
    assert_eq!(&b[..n], b"hello through the relay");
    drop(r);

    // --no-udp: TCP only.
    let mut cmd = Command::new(bin(s));
    cmd.args(["relay", "--listen", "127.0.0.1:0", "--no-udp"]);
    let r = Server::spawn(cmd, Path::new("."));
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.connect(r.addr).unwrap();
    u.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    u.send(&hello(b'S', 9, &[0; 16])).unwrap();
    assert!(u.recv(&mut b).is_err(), "no UDP relay with --no-udp");
}
