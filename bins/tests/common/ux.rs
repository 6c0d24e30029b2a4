//! What a person sees at the edges (issue 21, part 1): one-reason errors naming the side and
//! the fix, SIGINT/SIGTERM with the resume hint, `--retries` reconnecting a dropped session,
//! progress under a pseudo-terminal, and what directory sends skip.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::*;

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// The largest partial file under `root` (the server's resume state), in bytes.
fn partial_len(root: &Path) -> u64 {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.contains("ferry-part") && !n.ends_with(".json")
                })
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Wait until the partial under `root` grew by 2 MiB past `from`: the client is sending.
fn wait_for_growth(root: &Path, from: u64) {
    wait_for(60, "a partial file to grow", || {
        partial_len(root) >= from + (2 << 20)
    });
}

/// A `send` of `file` with `--compress on` (slow enough to interrupt), stderr piped.
fn slow_send(c: &str, env: &Env, file: &Path, to: &str, extra: &[&str]) -> Child {
    Command::new(bin(c))
        .args([
            "send",
            file.to_str().unwrap(),
            "--to",
            to,
            "--compress",
            "on",
        ])
        .args(extra)
        .arg("--key")
        .arg(&env.key)
        .env_remove("FERRY_TRANSPORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig}");
}

/// Every quoted message of the issue is replaced by one naming the side, the cause and the
/// fix; each text is asserted here.
pub fn errors_name_side_cause_fix(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &[]);
    let a = env.write("a.txt", b"server copy");
    let o = client(
        c,
        &env,
        &["send", a.to_str().unwrap(), "--to", &server.to()],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // get: the local side holds a different file.
    env.write("out/a.txt", b"local copy");
    let out = env.path("out");
    let get = [
        "get",
        "a.txt",
        "--from",
        &server.to(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = client(c, &env, &get);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.trim(),
        format!(
            "error: a.txt: a different file of this name is already in {}: add --overwrite to \
             replace it",
            out.display()
        )
    );
    let mut with = get.to_vec();
    with.push("--overwrite");
    let o = client(c, &env, &with);
    assert!(o.status.success(), "get --overwrite: {}", stderr(&o));
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"server copy");

    // send: the server holds a different file; the same one reason in --json.
    let a = env.write("a.txt", b"newer copy");
    let o = client(
        c,
        &env,
        &["send", a.to_str().unwrap(), "--to", &server.to(), "--json"],
    );
    assert_eq!(code(&o), Some(1));
    let want = "the server already has a different file of this name: add --overwrite to \
                replace it";
    assert_eq!(json_lines(&o)[0]["error"], want);
    assert_eq!(stderr(&o).trim(), format!("error: a.txt: {want}"));

    // A URL where HOST[:PORT] belongs.
    let url = format!("http://{}/", server.to());
    let o = client(c, &env, &["ls", "--from", &url]);
    assert_eq!(code(&o), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "is a URL; give HOST[:PORT] instead, e.g. `{}`",
            server.to()
        )),
        "{}",
        stderr(&o)
    );

    // A port that is not a ferry server: it answers garbage.
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_addr = http.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in http.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
        }
    });
    let o = client(c, &env, &["ls", "--from", &http_addr.to_string()]);
    assert_eq!(code(&o), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "error: {http_addr} answered, but not as a ferry server (handshake message has \
             the wrong length): is this a ferry server? check the host and port"
        )
    );

    // A silent port: the peer and the phase are named (and nothing is retried).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let o = client(c, &env, &["ls", "--from", &silent_addr.to_string()]);
    assert_eq!(code(&o), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "error: no answer from {silent_addr} during the handshake within 10 s: is this a \
             ferry server, and is the port right?"
        )
    );

    // daytime against a silent port: no EAGAIN.
    let o = client(
        c,
        &env,
        &["daytime", &silent_addr.to_string(), "--timeout", "1"],
    );
    assert_eq!(code(&o), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no whole answer within 1s (is a daytime server running there?"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    drop(silent);

    // serve --root naming a file.
    let o = client(
        c,
        &env,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--root",
            a.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), Some(1));
    assert!(
        stderr(&o).contains("it is a file, not a directory (give --root a directory"),
        "{}",
        stderr(&o)
    );

    // A name that does not resolve is not retried.
    let started = Instant::now();
    let o = client(
        c,
        &env,
        &["ls", "--from", "no-such-host.invalid", "--retries", "3"],
    );
    assert_eq!(code(&o), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot resolve no-such-host.invalid: no such host"),
        "{err}"
    );
    assert!(!err.contains("retrying"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");

    // open -o - into a pipe closed early: a quiet exit, as coreutils do.
    let big = env.write("big.bin", &data(3, 1 << 20));
    let sealed = env.path("big.fsealed");
    let o = client(
        c,
        &env,
        &[
            "seal",
            big.to_str().unwrap(),
            "-o",
            sealed.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut open = Command::new(bin(c))
        .args(["open", sealed.to_str().unwrap(), "-o", "-", "--key"])
        .arg(&env.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(open.stdout.take());
    let o = open.wait_with_output().unwrap();
    assert_eq!(code(&o), Some(141), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "quiet on a closed pipe");
}

/// SIGINT and SIGTERM mid-send: the session is closed as cancelled, the resume hint, 130 and
/// 143; rerunning resumes. A server stopped with SIGTERM says so and exits 0.
pub fn interrupt_hints_and_resumes(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &[]);
    let size = 48 << 20;
    let big = env.write("big.bin", &data(7, size));
    for (sig, want) in [("-INT", 130), ("-TERM", 143)] {
        let before = partial_len(&root);
        let child = slow_send(c, &env, &big, &server.to(), &[]);
        wait_for_growth(&root, before);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), Some(want), "{sig}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim(),
            "interrupted: rerun the same command to resume",
            "{sig}"
        );
    }
    let o = client(
        c,
        &env,
        &[
            "send",
            big.to_str().unwrap(),
            "--to",
            &server.to(),
            "--json",
        ],
    );
    assert!(o.status.success(), "rerun: {}", stderr(&o));
    let r = &json_lines(&o)[0];
    assert!(r["resumed_from"].as_u64().unwrap() >= 2 << 20, "{r}");
    assert_eq!(std::fs::read(root.join("big.bin")).unwrap(), data(7, size));

    let mut srv = server;
    let pid = srv.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = srv.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let log = srv.stop();
    assert!(log.contains("stopping on SIGTERM"), "{log}");
    // The interrupted clients closed their sessions (not a cut connection).
    assert!(log.contains("Cancelled: peer closed the session"), "{log}");
}

/// A server stopped mid-send (SIGTERM: it closes the session; SIGKILL: the connection is cut)
/// and restarted on the same port: `--retries 3` reconnects and resumes without help, saying
/// so at normal verbosity.
pub fn retries_reconnect_a_dropped_session(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let mut server = Server::start(s, &env, &root, &[]);
    let addr = server.to();
    let size = 32 << 20;
    for (seed, sig) in [(9, "-TERM"), (10, "-KILL")] {
        let name = format!("big{seed}.bin");
        let big = env.write(&name, &data(seed, size));
        let before = partial_len(&root);
        let child = slow_send(c, &env, &big, &addr, &["--retries", "3", "--json"]);
        wait_for_growth(&root, before);
        signal(&server.child, sig);
        let end = Instant::now() + Duration::from_secs(10);
        while server.alive() {
            assert!(Instant::now() < end, "the server outlived {sig}");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(server);
        server = Server::start_listen(s, &env, &root, &addr, &[]);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert!(o.status.success(), "{sig}: the retrying send failed: {err}");
        assert!(
            err.contains(&format!(
                "the connection to {addr} dropped; retrying in 1 s (1/3)"
            )),
            "{sig}: {err}"
        );
        let lines = json_lines(&o);
        assert_eq!(lines.len(), 1, "{sig}: {lines:?}");
        assert!(
            lines[0]["resumed_from"].as_u64().unwrap() > 0,
            "{sig}: {lines:?}"
        );
        assert_eq!(std::fs::read(root.join(&name)).unwrap(), data(seed, size));
    }
}

/// Strip ANSI escape sequences (CSI `ESC [ ... letter`, and lone `ESC x`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(ch) = it.next() {
        if ch != '\u{1b}' {
            out.push(ch);
            continue;
        }
        if it.peek() == Some(&'[') {
            it.next();
            for c in it.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            it.next();
        }
    }
    out
}

/// 1 000 small files under a pseudo-terminal of 80 columns: one aggregate bar, nothing wider
/// than the terminal, less than 64 KiB written, and a summary line.
pub fn progress_under_a_terminal(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &[]);
    for i in 0..1000 {
        env.write(
            &format!("many/d{}/f{i:04}.txt", i % 10),
            format!("file {i}\n").as_bytes(),
        );
    }
    let cmd = format!(
        "stty cols 80 rows 24; exec {} send {} --to {} --key {}",
        bin(c).display(),
        env.path("many").display(),
        server.to(),
        env.key.display()
    );
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env_remove("FERRY_TRANSPORT")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("`script` (util-linux) runs the client under a pseudo-terminal");
    let raw = stdout(&o);
    assert!(o.status.success(), "{raw}\n{}", stderr(&o));
    assert_eq!(tree(&root).len(), 1000);
    assert!(
        raw.len() < 64 << 10,
        "{} bytes of terminal output",
        raw.len()
    );
    let text = strip_ansi(&raw);
    let segments: Vec<&str> = text.split(['\r', '\n']).collect();
    for seg in &segments {
        assert!(seg.chars().count() <= 80, "wider than 80 columns: {seg:?}");
    }
    assert!(
        segments
            .iter()
            .any(|l| l.starts_with("1000 files, ") && l.contains(" in ")),
        "no summary line: {text}"
    );
    assert!(
        segments.iter().any(|l| l.contains("/1000 files [")),
        "no aggregate bar: {text}"
    );
    // One aggregate bar and no per-file bars for tiny files.
    assert!(
        !segments.iter().any(|l| l.contains("f0500.txt [")),
        "{text}"
    );
    let listed = segments.iter().filter(|l| l.starts_with("sent ")).count();
    assert!(listed <= 10, "{listed} result lines on a terminal");
}

/// Directory sends say what they skip, refuse two PATHs landing on one name before sending
/// anything, and send the rest when a PATH is missing (exit 1 naming it).
pub fn directory_sends_report(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &[]);
    let dir = env.path("tree");
    env.write("tree/a.txt", b"a");
    std::os::unix::fs::symlink(dir.join("a.txt"), dir.join("link")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let fifo = dir.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let o = client(
        c,
        &env,
        &["send", dir.to_str().unwrap(), "--to", &server.to()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    for want in [
        format!(
            "skipped {}: a symbolic link (not followed)",
            dir.join("link").display()
        ),
        format!(
            "skipped {}: a FIFO (ferry sends regular files only)",
            fifo.display()
        ),
        format!(
            "skipped {}: an empty directory (ferry sends files only)",
            dir.join("empty").display()
        ),
    ] {
        assert!(err.contains(&want), "missing {want:?} in {err}");
    }
    assert_eq!(tree(&root), vec!["tree/a.txt"]);

    // Two sources, one destination name: refused before anything is sent.
    env.write("p1/same/x", b"one");
    env.write("p2/same/x", b"two");
    let (p1, p2) = (env.path("p1/same"), env.path("p2/same"));
    let o = client(
        c,
        &env,
        &[
            "send",
            p1.to_str().unwrap(),
            p2.to_str().unwrap(),
            "--to",
            &server.to(),
        ],
    );
    assert_eq!(code(&o), Some(1));
    assert!(
        stderr(&o).contains("would both be sent as same/x"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&root), vec!["tree/a.txt"], "nothing was sent");

    // A missing PATH: the rest goes, exit 1 naming it.
    let one = env.write("one.txt", b"1");
    let two = env.write("two.txt", b"2");
    let gone = env.path("gone.txt");
    let o = client(
        c,
        &env,
        &[
            "send",
            one.to_str().unwrap(),
            gone.to_str().unwrap(),
            two.to_str().unwrap(),
            "--to",
            &server.to(),
        ],
    );
    assert_eq!(code(&o), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "error: {}: cannot read it: No such file",
            gone.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&root), vec!["one.txt", "tree/a.txt", "two.txt"]);
}
