//! Short-code transfers through the real binaries: `send --code` (the sender, binary `s`) and
//! `receive` (the receiver, binary `c`), directly and through `relay`; no key file anywhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

pub const BURNED: &str =
    "wrong code, or someone tried to guess it: the code is now burned; start again";

/// A running `send --code --json`, its first stdout line parsed.
pub struct Sender {
    child: Child,
    pub first: serde_json::Value,
    /// How long the first line took from the spawn.
    pub first_after: Duration,
    rest: Option<thread::JoinHandle<String>>,
    err: Option<thread::JoinHandle<String>>,
}

impl Sender {
    pub fn start(bin_name: &str, cwd: &Path, args: &[&str]) -> Sender {
        let started = Instant::now();
        let mut child = Command::new(bin(bin_name))
            .current_dir(cwd)
            .args(["--json", "send"])
            .args(args)
            .arg("--code")
            .env_remove("FERRY_CODE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("send --code printed nothing").unwrap();
        let first_after = started.elapsed();
        let first: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("first line {line:?} is not JSON: {e}"));
        let rest =
            thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
        let mut e = child.stderr.take().unwrap();
        let err = thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        });
        Sender {
            child,
            first,
            first_after,
            rest: Some(rest),
            err: Some(err),
        }
    }

    pub fn code(&self) -> String {
        self.first["code"].as_str().expect("a \"code\"").to_string()
    }

    pub fn listen(&self) -> String {
        self.first["listen"]
            .as_str()
            .expect("a \"listen\"")
            .to_string()
    }

    /// Wait (bounded) for the sender to exit: status, the rest of stdout, stderr.
    pub fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the sender did not exit");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let rest = self.rest.take().unwrap().join().unwrap();
        (status, rest, self.err.take().unwrap().join().unwrap())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `receive` with the code in FERRY_CODE.
pub fn receive(bin_name: &str, cwd: &Path, code: &str, args: &[&str]) -> Output {
    Command::new(bin(bin_name))
        .current_dir(cwd)
        .arg("receive")
        .args(args)
        .env("FERRY_CODE", code)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A running `relay --listen 127.0.0.1:0`.
pub fn relay(bin_name: &str) -> Server {
    let mut cmd = Command::new(bin(bin_name));
    cmd.args(["relay", "--listen", "127.0.0.1:0", "--wait", "30"]);
    Server::spawn(cmd, Path::new("."))
}

/// What a [`Tap`] does to the bytes going up, at a byte offset of the stream.
#[derive(Clone, Copy, Debug)]
pub enum Tamper {
    /// Flip one bit of the byte at this offset.
    Flip(usize),
    /// Leave out `len` bytes from this offset on.
    Drop(usize, usize),
    /// Swap the `k` bytes at this offset with the `k` after them (reordering).
    Swap(usize, usize),
}

impl Tamper {
    /// The stream range the tamper rewrites.
    fn window(self) -> std::ops::Range<usize> {
        match self {
            Tamper::Flip(at) => at..at + 1,
            Tamper::Drop(at, len) => at..at + len,
            Tamper::Swap(at, k) => at..at + 2 * k,
        }
    }

    /// What goes out instead of the bytes of [`Self::window`].
    fn apply(self, mut w: Vec<u8>) -> Vec<u8> {
        match self {
            Tamper::Flip(_) => {
                w[0] ^= 0x20;
                w
            }
            Tamper::Drop(..) => Vec::new(),
            Tamper::Swap(_, k) => {
                w.rotate_left(k);
                w
            }
        }
    }
}

/// A TCP tap for one connection to `upstream`: records the bytes going up, and can tamper
/// with them.
pub struct Tap {
    pub addr: SocketAddr,
    pub up: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    pub fn start(upstream: SocketAddr, tamper: Option<Tamper>) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(Mutex::new(Vec::new()));
        let rec = up.clone();
        thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let server = TcpStream::connect(upstream).unwrap();
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || copy(s2, c2, None, None));
            copy(client, server, Some(rec), tamper);
        });
        Tap { addr, up }
    }
}

fn copy(
    mut from: TcpStream,
    mut to: TcpStream,
    rec: Option<Arc<Mutex<Vec<u8>>>>,
    tamper: Option<Tamper>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0usize;
    let window = tamper.map_or(0..0, Tamper::window);
    let mut held = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(r) = &rec {
            r.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let mut out = Vec::with_capacity(n);
        for (i, &b) in buf[..n].iter().enumerate() {
            if !window.contains(&(seen + i)) {
                out.push(b);
                continue;
            }
            held.push(b);
            if held.len() == window.len()
                && let Some(t) = tamper
            {
                out.extend(t.apply(std::mem::take(&mut held)));
            }
        }
        seen += n;
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A small tree to send: a file and a directory.
fn tree_to_send(env: &Env) -> (Vec<u8>, Vec<u8>) {
    tree(env, 11, 200_000)
}

/// A tree under `src/`: `photo.bin` (`len` bytes of seed `seed`) and `reports/quarterly.txt`;
/// returns both contents.
pub fn tree(env: &Env, seed: u64, len: usize) -> (Vec<u8>, Vec<u8>) {
    let a = data(seed, len);
    let b = b"the quarterly report, in plain words\n".repeat(3000);
    env.write("src/photo.bin", &a);
    env.write("src/reports/quarterly.txt", &b);
    (a, b)
}

/// `receive` (code in FERRY_CODE) with `args` then `--out DIR --yes`, in `env`'s directory;
/// asserts it succeeded and returns its output and DIR.
pub fn receive_into(c: &str, env: &Env, code: &str, args: &[&str]) -> (Output, PathBuf) {
    let out = env.path("got");
    let mut all = args.to_vec();
    all.extend(["--out", out.to_str().unwrap(), "--yes"]);
    let o = receive(c, env.dir.path(), code, &all);
    assert!(o.status.success(), "receive: {}", stderr(&o));
    (o, out)
}

/// The tree of [`tree`] arrived under `out`, byte-identical (`b`: `None` when only the file
/// was sent).
pub fn assert_tree(out: &Path, a: &[u8], b: Option<&[u8]>) {
    assert_eq!(std::fs::read(out.join("photo.bin")).unwrap(), a);
    if let Some(b) = b {
        assert_eq!(std::fs::read(out.join("reports/quarterly.txt")).unwrap(), b);
    }
}

/// Direct: the JSON contract (`code`, `listen` first), a file and a directory, byte-identical.
pub fn code_round_trip(c: &str, s: &str) {
    let env = Env::new(c);
    let (a, b) = tree_to_send(&env);
    let src = env.path("src");
    let sender = Sender::start(
        s,
        &src,
        &["photo.bin", "reports", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(sender.first["event"], "code");
    let code = sender.code();
    assert!(
        sender.first["command"]
            .as_str()
            .unwrap()
            .contains(&format!("receive {code} --from"))
    );
    let (o, out) = receive_into(c, &env, &code, &["--from", &sender.listen()]);
    assert!(stderr(&o).contains("offered: 2 files"), "{}", stderr(&o));
    assert_tree(&out, &a, Some(&b));
    let (status, rest, err) = sender.finish();
    assert!(status.success(), "sender: {err}");
    assert_eq!(rest.matches("\"outcome\":\"sent\"").count(), 2, "{rest}");
}

/// Standard input and `--json` on the receiving side too.
pub fn code_standard_input(c: &str, s: &str) {
    let env = Env::new(c);
    let payload = data(5, 100_000);
    let mut child = Command::new(bin(s))
        .args([
            "--json",
            "send",
            "-",
            "--as",
            "piped.bin",
            "--code",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sink = child.stdin.take().unwrap();
    let p = payload.clone();
    thread::spawn(move || {
        let _ = sink.write_all(&p);
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let out = env.path("got");
    let o = receive(
        c,
        env.dir.path(),
        first["code"].as_str().unwrap(),
        &[
            "--json",
            "--from",
            first["listen"].as_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--yes",
        ],
    );
    assert!(o.status.success(), "receive: {}", stderr(&o));
    let events = json_lines(&o);
    assert_eq!(events[0]["event"], "offer", "{events:?}");
    assert_eq!(events[0]["files"], 1);
    assert!(
        events.iter().any(|e| e["outcome"] == "received"),
        "{events:?}"
    );
    assert_eq!(std::fs::read(out.join("piped.bin")).unwrap(), payload);
    assert!(child.wait().unwrap().success());
}

/// A wrong code: both sides exit 1 with the burned message, nothing is written, and the right
/// code afterwards fails too (the sender is gone).
pub fn code_wrong_code_burns(c: &str, s: &str) {
    let env = Env::new(c);
    tree_to_send(&env);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "--listen", "127.0.0.1:0"],
    );
    let code = sender.code();
    let nameplate = code.split('-').next().unwrap();
    let guess = format!("{nameplate}-acid-acorn-acre-aged");
    assert_ne!(guess, code);
    let out = env.path("got");
    let to = sender.listen();
    let o = receive(
        c,
        env.dir.path(),
        &guess,
        &["--from", &to, "--out", out.to_str().unwrap(), "--yes"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(BURNED), "receiver: {}", stderr(&o));
    let (status, _, err) = sender.finish();
    assert_eq!(status.code(), Some(1), "the sender exits");
    assert!(err.contains(BURNED), "sender: {err}");
    assert!(!out.exists(), "nothing written");
    let again = receive(
        c,
        env.dir.path(),
        &code,
        &["--from", &to, "--out", out.to_str().unwrap(), "--yes"],
    );
    assert_eq!(again.status.code(), Some(1), "the code is burned");
    assert!(!out.exists());
}

/// A code on the command line works but warns that `ps` shows it.
pub fn code_on_argv_warns(c: &str, s: &str) {
    let env = Env::new(c);
    tree_to_send(&env);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "--listen", "127.0.0.1:0"],
    );
    let out = env.path("got");
    let o = Command::new(bin(c))
        .args([
            "receive",
            &sender.code(),
            "--from",
            &sender.listen(),
            "--out",
            out.to_str().unwrap(),
            "--yes",
        ])
        .env_remove("FERRY_CODE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("visible to other local users"),
        "{}",
        stderr(&o)
    );
    assert!(sender.finish().0.success());
}

/// `send --code` on a huge (sparse) file prints its code at once: nothing is read or hashed
/// before a receiver joined.
pub fn code_huge_file_prints_at_once(c: &str, s: &str) {
    let env = Env::new(c);
    let p = env.path("huge.bin");
    std::fs::File::create(&p)
        .unwrap()
        .set_len(10 << 30)
        .unwrap();
    let sender = Sender::start(s, env.dir.path(), &["huge.bin", "--listen", "127.0.0.1:0"]);
    // Reading and hashing 10 GiB takes seconds; the bound is generous for a loaded machine.
    assert!(
        sender.first_after < Duration::from_secs(2),
        "{:?}",
        sender.first_after
    );
    eprintln!("code printed after {:?}", sender.first_after);
    drop(sender);
}

/// Through a relay: the transfer works, and what the relay receives from the sender (recorded
/// by a tap in front of it) holds no plaintext, no file name and no word of the code.
pub fn relay_round_trip_sees_no_plaintext(c: &str, s: &str) {
    let env = Env::new(c);
    let (a, b) = tree_to_send(&env);
    let r = relay(s);
    let tap = Tap::start(r.addr, None);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "reports", "--relay", &tap.addr.to_string()],
    );
    let code = sender.code();
    let (_, out) = receive_into(c, &env, &code, &["--relay", &r.to()]);
    assert_tree(&out, &a, Some(&b));
    assert!(sender.finish().0.success());
    let seen = tap.up.lock().unwrap().clone();
    assert!(seen.len() > 200_000, "the file went through the relay");
    assert!(
        !contains(&seen, b"quarterly"),
        "a file name reached the relay"
    );
    assert!(
        !contains(&seen, b"the quarterly report"),
        "plaintext reached the relay"
    );
    assert!(
        !contains(&seen, &a[1000..1032]),
        "plaintext reached the relay"
    );
    for word in code.split('-').skip(1) {
        assert!(
            !contains(&seen, word.as_bytes()),
            "the word {word} reached the relay"
        );
    }
}

/// A relay that flips, drops or reorders bytes of the sender's stream (past the handshake):
/// the receiver rejects the session, exit 1, and publishes nothing.
pub fn relay_tampering_is_rejected(c: &str, s: &str) {
    for tamper in [
        // Well before the end of the 200 KB file, so the stream goes on past the damage and
        // the receiver fails at once (a gap in the last record would leave it waiting).
        Tamper::Flip(150_000),
        Tamper::Drop(20_000, 1),
        Tamper::Drop(20_000, 5_000),
        Tamper::Swap(20_000, 700),
    ] {
        let env = Env::new(c);
        tree_to_send(&env);
        let r = relay(s);
        let tap = Tap::start(r.addr, Some(tamper));
        let sender = Sender::start(
            s,
            &env.path("src"),
            &["photo.bin", "--relay", &tap.addr.to_string()],
        );
        let out = env.path("got");
        let o = receive(
            c,
            env.dir.path(),
            &sender.code(),
            &["--relay", &r.to(), "--out", out.to_str().unwrap(), "--yes"],
        );
        assert_eq!(o.status.code(), Some(1), "{tamper:?}: {}", stderr(&o));
        assert!(
            !out.join("photo.bin").exists(),
            "{tamper:?}: nothing published"
        );
        // Rejected for the damage, not for anything else (the offer was seen first).
        assert!(
            stderr(&o).contains("authentication failed"),
            "{tamper:?}: {}",
            stderr(&o)
        );
        drop(sender);
    }
}

/// Two pairs through one relay at once, each gets its own files.
pub fn relay_two_pairs_at_once(c: &str, s: &str) {
    let env = Env::new(c);
    let one = data(1, 300_000);
    let two = data(2, 300_000);
    env.write("one/file.bin", &one);
    env.write("two/file.bin", &two);
    let r = relay(s);
    let s1 = Sender::start(s, &env.path("one"), &["file.bin", "--relay", &r.to()]);
    let s2 = Sender::start(s, &env.path("two"), &["file.bin", "--relay", &r.to()]);
    let (c1, c2) = (s1.code(), s2.code());
    let (rt, e1, e2) = (r.to(), env.path("got1"), env.path("got2"));
    let (bin1, bin2) = (c.to_string(), c.to_string());
    let dir = env.dir.path().to_path_buf();
    let dir2 = dir.clone();
    let rt2 = rt.clone();
    let (o1, o2) = (
        thread::spawn(move || {
            receive(
                &bin1,
                &dir,
                &c1,
                &["--relay", &rt, "--out", e1.to_str().unwrap(), "--yes"],
            )
        }),
        thread::spawn(move || {
            receive(
                &bin2,
                &dir2,
                &c2,
                &["--relay", &rt2, "--out", e2.to_str().unwrap(), "--yes"],
            )
        }),
    );
    let (o1, o2) = (o1.join().unwrap(), o2.join().unwrap());
    assert!(
        o1.status.success() && o2.status.success(),
        "{} / {}",
        stderr(&o1),
        stderr(&o2)
    );
    assert_eq!(std::fs::read(env.path("got1/file.bin")).unwrap(), one);
    assert_eq!(std::fs::read(env.path("got2/file.bin")).unwrap(), two);
    assert!(s1.finish().0.success());
    assert!(s2.finish().0.success());
}

/// The relay's bounds: a side nobody joins is sent away after `--wait`, a second side of the
/// same role and number is refused, and `--per-ip` caps one address's connections.
pub fn relay_bounds(c: &str, s: &str) {
    let _ = c;
    let mut cmd = Command::new(bin(s));
    cmd.args([
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--wait",
        "1",
        "--per-ip",
        "3",
    ]);
    let r = Server::spawn(cmd, Path::new("."));
    let hello = |role: u8, n: u32| {
        let mut t = TcpStream::connect(r.addr).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut h = b"FRYR\x01".to_vec();
        h.push(role);
        h.extend_from_slice(&n.to_be_bytes());
        t.write_all(&h).unwrap();
        t
    };
    let byte = |t: &mut TcpStream| {
        let mut b = [0u8; 1];
        match t.read(&mut b) {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    };
    let mut first = hello(b'S', 42);
    assert_eq!(byte(&mut first), Some(b'W'), "parked");
    let mut same = hello(b'S', 42);
    assert_eq!(
        byte(&mut same),
        Some(b'X'),
        "the number is taken by a sender"
    );
    drop(same);
    // Sent away after --wait 1.
    let t0 = Instant::now();
    assert_eq!(byte(&mut first), Some(b'X'));
    assert!(t0.elapsed() < Duration::from_secs(5));
    drop(first);
    thread::sleep(Duration::from_millis(200));
    // Three idle connections from 127.0.0.1 are the limit: the fourth is refused at once.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(r.addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut fourth = hello(b'R', 7);
    assert_eq!(byte(&mut fourth), Some(b'X'), "per-IP limit");
    drop(idle);
    drop(r);
    // The cap over all addresses.
    let mut cmd = Command::new(bin(s));
    cmd.args(["relay", "--listen", "127.0.0.1:0", "--max-connections", "2"]);
    let r = Server::spawn(cmd, Path::new("."));
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(r.addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(r.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut b = [0u8; 1];
    assert_eq!(third.read(&mut b).unwrap(), 1);
    assert_eq!(b[0], b'X', "--max-connections");
    drop(idle);
}

/// A relay holding many idle connections (up to its per-address limit) still pairs a real
/// transfer.
pub fn relay_pairs_under_idle_load(c: &str, s: &str) {
    let env = Env::new(c);
    let payload = data(9, 500_000);
    env.write("src/f.bin", &payload);
    let mut cmd = Command::new(bin(s));
    cmd.args(["relay", "--listen", "127.0.0.1:0", "--per-ip", "2000"]);
    let r = Server::spawn(cmd, Path::new("."));
    // 1 000 idle connections (the test process raises its descriptor limit for them).
    ferry_app::host::raise_open_file_limit();
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(r.addr).unwrap())
        .collect();
    let sender = Sender::start(s, &env.path("src"), &["f.bin", "--relay", &r.to()]);
    let out = env.path("got");
    let o = receive(
        c,
        env.dir.path(),
        &sender.code(),
        &["--relay", &r.to(), "--out", out.to_str().unwrap(), "--yes"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("f.bin")).unwrap(), payload);
    assert!(sender.finish().0.success());
    drop(idle);
}

/// Without `--yes` the receiver asks on its terminal (here a pseudo-terminal from `script`):
/// answering no fetches nothing and writes nothing, and both sides exit 1.
pub fn code_declined_writes_nothing(c: &str, s: &str) {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to give the receiver a terminal");
        return;
    }
    let env = Env::new(c);
    tree_to_send(&env);
    let sender = Sender::start(
        s,
        &env.path("src"),
        &["photo.bin", "--listen", "127.0.0.1:0"],
    );
    let out = env.path("got");
    let cmd = format!(
        "{} receive --from {} --out {}",
        bin(c).display(),
        sender.listen(),
        out.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("FERRY_CODE", sender.code())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(shown.contains("accept? [y/N]"), "{shown}");
    assert!(shown.contains("offered: 1 file"), "{shown}");
    assert!(shown.contains("declined"), "{shown}");
    assert!(!out.exists(), "nothing written");
    let (status, _, err) = sender.finish();
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("declined"), "{err}");
}
