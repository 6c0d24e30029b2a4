//! The end-to-end cases every binary must pass, parameterised by the client and server binary.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

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

/// send, ls, get: byte-identical files, reports in JSON, metadata kept.
pub fn round_trip(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let a = env.write("work/a.bin", &data(1, 300_000));
    let b = env.write("work/notes.txt", b"hello ferry\n".repeat(1000).as_slice());
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = client(
        c,
        &env,
        &[
            "send",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--to",
            &server.to(),
            "--json",
        ],
    );
    ok(&o, "send");
    let reports = json_lines(&o);
    assert_eq!(reports.len(), 2, "{reports:?}");
    for r in &reports {
        assert_eq!(r["event"], "file");
        assert_eq!(r["outcome"], "sent");
        assert_eq!(r["resumed_from"], 0);
    }
    let root = env.path("root");
    assert_eq!(std::fs::read(root.join("a.bin")).unwrap(), data(1, 300_000));
    assert_eq!(
        std::fs::read(root.join("notes.txt")).unwrap(),
        std::fs::read(&b).unwrap()
    );
    let mode = std::fs::metadata(root.join("notes.txt"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640, "mode preserved");
    let (m1, m2) = (
        std::fs::metadata(&b).unwrap().modified().unwrap(),
        std::fs::metadata(root.join("notes.txt"))
            .unwrap()
            .modified()
            .unwrap(),
    );
    assert_eq!(m1, m2, "mtime preserved");
    let hash_a = reports.iter().find(|r| r["name"] == "a.bin").unwrap()["blake3"].clone();
    assert_eq!(hash_a, proto_hash_hex(&data(1, 300_000)));

    let o = client(c, &env, &["ls", "--from", &server.to()]);
    ok(&o, "ls");
    let ls = stdout(&o);
    assert!(
        ls.lines()
            .any(|l| l.ends_with("a.bin") && l.contains("300000")),
        "{ls}"
    );
    assert!(ls.lines().any(|l| l.ends_with("notes.txt")), "{ls}");
    assert_eq!(ls.lines().count(), 2, "{ls}");

    let back = env.path("back");
    std::fs::create_dir_all(&back).unwrap();
    let o = client(
        c,
        &env,
        &[
            "get",
            "a.bin",
            "notes.txt",
            "--from",
            &server.to(),
            "--out",
            back.to_str().unwrap(),
        ],
    );
    ok(&o, "get");
    assert_eq!(std::fs::read(back.join("a.bin")).unwrap(), data(1, 300_000));
    assert_eq!(
        std::fs::read(back.join("notes.txt")).unwrap(),
        std::fs::read(&b).unwrap()
    );
    // Nothing but the files themselves (no partials or sidecars) on either side.
    assert_eq!(tree(&root), vec!["a.bin", "notes.txt"]);
    assert_eq!(tree(&back), vec!["a.bin", "notes.txt"]);

    // Getting them again: already here, nothing moves, success.
    let o = client(
        c,
        &env,
        &[
            "get",
            "a.bin",
            "--from",
            &server.to(),
            "--out",
            back.to_str().unwrap(),
            "--json",
        ],
    );
    ok(&o, "get again");
    assert_eq!(json_lines(&o)[0]["outcome"], "up-to-date");
    // A different local file is kept.
    std::fs::write(back.join("notes.txt"), b"local edits").unwrap();
    let o = client(
        c,
        &env,
        &[
            "get",
            "notes.txt",
            "--from",
            &server.to(),
            "--out",
            back.to_str().unwrap(),
        ],
    );
    failed(&o, "get over a different local file");
    assert_eq!(
        std::fs::read(back.join("notes.txt")).unwrap(),
        b"local edits"
    );
    std::fs::write(back.join("notes.txt"), std::fs::read(&b).unwrap()).unwrap();

    // One file to standard output.
    let o = client(
        c,
        &env,
        &["get", "notes.txt", "--from", &server.to(), "--out", "-"],
    );
    ok(&o, "get to stdout");
    let want = std::fs::read(&b).unwrap();
    assert!(
        o.stdout == want,
        "stdout has {} bytes, the file {}: {:?}",
        o.stdout.len(),
        want.len(),
        String::from_utf8_lossy(&o.stdout[..o.stdout.len().min(200)])
    );
}

fn proto_hash_hex(d: &[u8]) -> serde_json::Value {
    let h = proto::hash(d);
    serde_json::Value::String(h.iter().map(|b| format!("{b:02x}")).collect())
}

/// A directory tree goes over recursively and comes back the same.
pub fn directory_tree(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    env.write("photos/2024/a.jpg", &data(2, 10_000));
    env.write("photos/2024/b.jpg", &data(3, 70_000));
    env.write("photos/c.txt", b"c");
    env.write("photos/empty", b"");
    let o = client_in(
        c,
        &env,
        env.dir.path(),
        &["send", "photos", "--to", &server.to()],
        None,
    );
    ok(&o, "send dir");
    let root = env.path("root");
    assert_eq!(
        tree(&root),
        vec![
            "photos/2024/a.jpg",
            "photos/2024/b.jpg",
            "photos/c.txt",
            "photos/empty"
        ]
    );
    assert_eq!(
        std::fs::read(root.join("photos/2024/b.jpg")).unwrap(),
        data(3, 70_000)
    );
    let back = env.path("back");
    std::fs::create_dir_all(&back).unwrap();
    let o = client(
        c,
        &env,
        &[
            "get",
            "photos",
            "--from",
            &server.to(),
            "--out",
            back.to_str().unwrap(),
        ],
    );
    ok(&o, "get dir");
    assert_eq!(tree(&back), tree(&root));
    assert_eq!(
        std::fs::read(back.join("photos/2024/a.jpg")).unwrap(),
        data(2, 10_000)
    );
}

/// `-` sends standard input under `--as`.
pub fn standard_input(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let payload = data(4, 123_457);
    let o = client_in(
        c,
        &env,
        env.dir.path(),
        &["send", "-", "--as", "piped.bin", "--to", &server.to()],
        Some(&payload),
    );
    ok(&o, "send stdin");
    assert_eq!(std::fs::read(env.path("root/piped.bin")).unwrap(), payload);
}

/// Kill the client mid-file, rerun: it resumes from what the server holds and does not resend
/// the prefix; the result matches.
pub fn interrupted_send_resumes(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let size = 96 << 20;
    let big = env.write("big.bin", &data(5, size));
    let root = env.path("root");
    // Compression of random data slows the sender down enough to interrupt it reliably.
    let mut child = Command::new(bin(c))
        .args([
            "send",
            big.to_str().unwrap(),
            "--to",
            &server.to(),
            "--compress",
            "on",
            "--key",
        ])
        .arg(&env.key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial_len = || -> u64 {
        std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().contains("ferry-part")
                    && !e.file_name().to_string_lossy().ends_with(".json")
            })
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    wait_for(60, "a partial file of at least 4 MiB", || {
        partial_len() >= 4 << 20
    });
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the client finished before it could be interrupted"
    );
    assert!(
        !root.join("big.bin").exists(),
        "a partial file was published"
    );
    // The server notices the dead connection and keeps the partial.
    wait_for(10, "the server to keep the partial", || {
        partial_len() >= 4 << 20
    });
    // The server may still be draining the dead connection: the client offers again while
    // it is refused as busy.
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
    ok(&o, "resumed send");
    let r = &json_lines(&o)[0];
    let resumed = r["resumed_from"].as_u64().unwrap();
    // The server kept what arrived before and after the kill (buffered bytes too); the sender
    // started from there instead of resending the prefix.
    assert!(
        resumed >= 4 << 20 && resumed < size as u64,
        "resumed_from {resumed}"
    );
    assert_eq!(r["bytes"].as_u64().unwrap(), size as u64);
    assert_eq!(r["blake3"], proto_hash_hex(&data(5, size)));
    assert_eq!(std::fs::read(root.join("big.bin")).unwrap(), data(5, size));
    assert_eq!(tree(&root), vec!["big.bin"], "partial and sidecar are gone");
}

/// A client with another key: clear error, nothing written, the server serves the next one.
pub fn wrong_key(c: &str, s: &str) {
    let env = Env::new(c);
    let other = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let f = env.write("f.txt", b"secret");
    let o = client(
        c,
        &other,
        &["send", f.to_str().unwrap(), "--to", &server.to()],
    );
    failed(&o, "send with the wrong key");
    let err = stderr(&o);
    assert!(err.contains("does not share this key"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(tree(&env.path("root")).is_empty());
    let o = client(
        c,
        &env,
        &["send", f.to_str().unwrap(), "--to", &server.to()],
    );
    ok(&o, "send with the right key");
    assert_eq!(std::fs::read(env.path("root/f.txt")).unwrap(), b"secret");
}

/// Names that climb out, are absolute or hold control characters are refused; nothing is
/// written outside the root; the rest of the session goes on.
pub fn bad_names(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("srv/root");
    let server = Server::start(s, &env, &root, &[]);
    let f = env.write("f.txt", b"x");
    for name in [
        "../escape.txt",
        "/etc/evil",
        "a/../../b",
        "bad\u{1}name",
        ".ferry-part.f.txt",
    ] {
        let o = client(
            c,
            &env,
            &[
                "send",
                f.to_str().unwrap(),
                "--as",
                name,
                "--to",
                &server.to(),
            ],
        );
        failed(&o, name);
        let err = stderr(&o);
        assert!(err.to_lowercase().contains("name"), "{name}: {err}");
    }
    assert!(tree(&root).is_empty(), "{:?}", tree(&root));
    assert_eq!(tree(&env.path("srv")), Vec::<String>::new());
    assert!(!env.path("escape.txt").exists() && !env.path("srv/escape.txt").exists());
    // GET with a climbing name is refused too.
    let o = client(
        c,
        &env,
        &[
            "get",
            "../key",
            "--from",
            &server.to(),
            "--out",
            env.path("got").to_str().unwrap(),
        ],
    );
    failed(&o, "get ../key");
}

/// Same content: up to date; different: kept unless --overwrite.
pub fn exists_rules(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let f = env.write("doc.txt", b"version 1");
    ok(
        &client(
            c,
            &env,
            &["send", f.to_str().unwrap(), "--to", &server.to()],
        ),
        "first send",
    );
    let o = client(
        c,
        &env,
        &["send", f.to_str().unwrap(), "--to", &server.to(), "--json"],
    );
    ok(&o, "same content again");
    assert_eq!(json_lines(&o)[0]["outcome"], "up-to-date");
    std::fs::write(&f, b"version 2").unwrap();
    let o = client(
        c,
        &env,
        &["send", f.to_str().unwrap(), "--to", &server.to()],
    );
    failed(&o, "different content");
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(env.path("root/doc.txt")).unwrap(),
        b"version 1"
    );
    ok(
        &client(
            c,
            &env,
            &[
                "send",
                f.to_str().unwrap(),
                "--to",
                &server.to(),
                "--overwrite",
            ],
        ),
        "overwrite",
    );
    assert_eq!(
        std::fs::read(env.path("root/doc.txt")).unwrap(),
        b"version 2"
    );
}

/// 1 MiB of random bytes instead of a handshake: dropped, the server keeps serving.
pub fn garbage_client(c: &str, s: &str) {
    let env = Env::new(c);
    let mut server = Server::start(s, &env, &env.path("root"), &[]);
    let mut conn = raw(&server);
    let junk = data(6, 1 << 20);
    // The server hangs up early; a write error on our side is the expected outcome.
    let _ = conn.write_all(&junk);
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server answered garbage");
    assert!(server.alive());
    let f = env.write("after.txt", b"still serving");
    ok(
        &client(
            c,
            &env,
            &["send", f.to_str().unwrap(), "--to", &server.to()],
        ),
        "send after garbage",
    );
}

/// A connection that never speaks is closed after the handshake timeout.
pub fn idle_connection_closed(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &["--handshake-timeout", "1"]);
    let mut conn = raw(&server);
    // Held open at first (the server waits for a handshake) ...
    std::thread::sleep(Duration::from_millis(200));
    assert!(still_open(&conn), "closed before the handshake timeout");
    // ... then closed by the server's handshake timer, without a word.
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        conn.read(&mut buf).unwrap_or(1),
        0,
        "not closed by the server"
    );
    let f = env.write("f", b"1");
    ok(
        &client(
            c,
            &env,
            &["send", f.to_str().unwrap(), "--to", &server.to()],
        ),
        "send after idle",
    );
}

/// IPv6 loopback works end to end (skipped where the host has no ::1).
pub fn ipv6(c: &str, s: &str) {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    let env = Env::new(c);
    let mut server = Server::start_listen(s, &env, &env.path("root"), "[::1]:0", &[]);
    assert!(server.addr.is_ipv6());
    let f = env.write("v6.txt", b"over ipv6");
    ok(
        &client(
            c,
            &env,
            &["send", f.to_str().unwrap(), "--to", &server.to()],
        ),
        "send over ::1",
    );
    assert_eq!(
        std::fs::read(env.path("root/v6.txt")).unwrap(),
        b"over ipv6"
    );
    assert!(server.alive());
}

/// `--max-connections` counts authenticated connections only: with one held by a real client,
/// another real client hears "server busy" (not a key problem), while a connection still in
/// the handshake is not refused; once the slot is free the client gets in.
pub fn connection_limit(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &["--max-connections", "1"]);
    // A real client holds the one slot: a send from a pipe we keep open.
    let mut held = Command::new(bin(c))
        .args([
            "send",
            "-",
            "--as",
            "held.bin",
            "--to",
            &server.to(),
            "--key",
        ])
        .arg(&env.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pipe = held.stdin.take().unwrap();
    pipe.write_all(&data(3, 1000)).unwrap();
    wait_for(10, "the held send's partial file", || {
        std::fs::read_dir(&root).is_ok_and(|mut d| d.next().is_some())
    });
    let waiting = raw(&server);
    let f = env.write("f", b"after the limit");
    let send = [
        "send",
        f.to_str().unwrap(),
        "--to",
        &server.to(),
        "--retries",
        "0",
    ];
    let o = client(c, &env, &send);
    failed(&o, "send while the only slot is held");
    let err = stderr(&o);
    assert!(err.contains("server busy"), "{err}");
    assert!(
        !err.contains("key"),
        "a busy server is not a key problem: {err}"
    );
    assert!(
        still_open(&waiting),
        "a handshake does not count against the limit"
    );
    // With `--retries` a client backs off and gets in once the slot is free.
    let mut retrying = Command::new(bin(c))
        .args(&send[..4])
        .args(["--retries", "5", "-v", "--key"])
        .arg(&env.key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The slot stays held until the pipe closes: it must hear "busy" first.
    let mut log = BufReader::new(retrying.stderr.take().unwrap()).lines();
    let busy = log
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("server busy; retrying"));
    assert!(busy, "the retrying client did not hear busy");
    drop(pipe);
    let status = held.wait().unwrap();
    assert!(status.success(), "the held send");
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    assert!(
        retrying.wait().unwrap().success(),
        "send retried once a slot is free: {rest:?}"
    );
}

/// A full disk on the server is a clear per-file error for the client; nothing is published and
/// the server keeps serving. Needs root to mount a small tmpfs; skipped (with a message) elsewhere.
pub fn disk_full(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("small");
    std::fs::create_dir_all(&root).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&root)
        .status()
        .map(|st| st.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?); skipping the disk-full case");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(root.clone());
    let mut server = Server::start(s, &env, &root, &[]);
    let big = env.write("big.bin", &data(7, 3 << 20));
    let o = client(
        c,
        &env,
        &["send", big.to_str().unwrap(), "--to", &server.to()],
    );
    failed(&o, "send to a full disk");
    let err = stderr(&o);
    assert!(err.contains("big.bin") && err.contains("no space"), "{err}");
    assert!(
        !root.join("big.bin").exists(),
        "a partial file was published"
    );
    assert!(server.alive());
    // Refused before any byte moved (or its partial removed): the server still answers.
    let o = client(c, &env, &["ls", "--from", &server.to()]);
    ok(&o, "ls after disk full");
    assert_eq!(stdout(&o), "", "nothing was published");
    for e in std::fs::read_dir(&root).unwrap().flatten() {
        std::fs::remove_file(e.path()).unwrap();
    }
    let small = env.write("small.txt", b"fits");
    ok(
        &client(
            c,
            &env,
            &["send", small.to_str().unwrap(), "--to", &server.to()],
        ),
        "send after disk full",
    );
    assert_eq!(std::fs::read(root.join("small.txt")).unwrap(), b"fits");
    drop(server);
}

/// 500 connections that never speak do not keep a real client out: the handshake quota (64
/// here) keeps the newest of them, the older ones are evicted with the busy answer, and the
/// real client is served at once.
pub fn silent_crowd(c: &str, s: &str) {
    let env = Env::new(c);
    let args = ["--max-connections", "256", "--handshake-timeout", "60"];
    let server = Server::start(s, &env, &env.path("root"), &args);
    let crowd: Vec<_> = (0..500).map(|_| raw(&server)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let f = env.write("real.bin", &data(8, 1 << 20));
    let send = ["send", f.to_str().unwrap(), "--to", &server.to()];
    ok(&client(c, &env, &send), "send amid a silent crowd");
    assert!(std::fs::read(env.path("root/real.bin")).unwrap() == data(8, 1 << 20));
    let open = crowd.iter().filter(|c| still_open(c)).count();
    assert!(
        (32..=64).contains(&open),
        "{open} silent connections kept; the handshake quota is 64"
    );
    let mut oldest = &crowd[0];
    oldest
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    oldest.read_to_end(&mut got).unwrap();
    assert_eq!(
        got, b"\0\0busy",
        "the oldest was evicted with the busy answer"
    );
}

/// The peer has neither sent anything nor closed (a non-blocking peek would block).
fn still_open(conn: &TcpStream) -> bool {
    conn.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!(conn.peek(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    conn.set_nonblocking(false).unwrap();
    open
}

/// Records: nested values, unicode and large numbers round-trip exactly in both encodings, from
/// a file, standard input and key=value pairs; bad input is refused before anything is sent;
/// `serve --print` shows each record.
pub fn records(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &["--print"]);
    let text = r#"{"name":"ferry ⛴ naïve","big":123456789012345678901234567890,"pi":3.141592653589793238462643,
        "neg":-1e-30,"list":[1,[2,[3,{"deep":null}]],true,false],"empty":{},"s":"tab\tquote\""}"#;
    let want: serde_json::Value = serde_json::from_str(text).unwrap();
    let f = env.write("rec.json", text.as_bytes());
    for format in ["postcard", "json"] {
        let o = client(
            c,
            &env,
            &[
                "record",
                f.to_str().unwrap(),
                "--to",
                &server.to(),
                "--format",
                format,
            ],
        );
        ok(&o, format);
    }
    let o = client_in(
        c,
        &env,
        env.dir.path(),
        &["record", "-", "--to", &server.to(), "--json"],
        Some(text.as_bytes()),
    );
    ok(&o, "record from stdin");
    assert_eq!(json_lines(&o)[0]["event"], "record");
    ok(
        &client(
            c,
            &env,
            &[
                "record",
                "user=ana",
                "n:=42",
                "tags:=[\"a\"]",
                "--to",
                &server.to(),
            ],
        ),
        "pairs",
    );
    let log = std::fs::read_to_string(env.path("root/records.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{log}");
    for got in &lines[..3] {
        assert_eq!(got, &want);
    }
    assert!(
        log.contains("123456789012345678901234567890"),
        "digits kept: {log}"
    );
    assert_eq!(
        lines[3],
        serde_json::json!({"user": "ana", "n": 42, "tags": ["a"]})
    );
    // Bad input: a clear error, nothing sent.
    let not_obj = env.write("arr.json", b"[1,2]");
    let bad_json = env.write("bad.json", b"{\"a\":");
    for (args, msg) in [
        (
            vec!["record", not_obj.to_str().unwrap()],
            "must be a JSON object",
        ),
        (vec!["record", bad_json.to_str().unwrap()], "not valid JSON"),
        (
            vec!["record", f.to_str().unwrap(), "--max-size", "20"],
            "limit",
        ),
        (vec!["record", "a=1", "novalue"], "key=value"),
        (vec!["record", "missing.json"], "cannot read missing.json"),
    ] {
        let to = server.to();
        let mut a = args.clone();
        a.extend(["--to", &to]);
        let o = client(c, &env, &a);
        failed(&o, msg);
        assert!(stderr(&o).contains(msg), "{msg}: {}", stderr(&o));
    }
    assert_eq!(
        std::fs::read_to_string(env.path("root/records.jsonl")).unwrap(),
        log,
        "nothing was stored"
    );
    // `--print` showed every record as it was stored.
    wait_for(10, "the printed records", || {
        server.stdout.lock().unwrap().len() >= 4
    });
    let printed: Vec<serde_json::Value> = server
        .stdout
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed, lines);
}

/// Daytime (RFC 867) over TCP and UDP: this binary's client against the other's server, and a
/// plain `nc` as the client where it is installed.
pub fn daytime(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::daytime(s);
    let year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952;
    for udp in [false, true] {
        let to = server.to();
        let mut args = vec!["daytime", &to[..]];
        if udp {
            args.push("--udp");
        }
        let o = Command::new(bin(c)).args(&args).output().unwrap();
        ok(
            &o,
            if udp {
                "daytime over UDP"
            } else {
                "daytime over TCP"
            },
        );
        let line = stdout(&o);
        let line = line.trim_end();
        assert!(
            line.ends_with("-UTC") && line.contains(&year.to_string()),
            "{line:?}"
        );
        assert_eq!(line.lines().count(), 1);
    }
    // A server that is not there: a clear error, exit 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = Command::new(bin(c))
        .args(["daytime", &closed.to_string(), "--timeout", "2"])
        .output()
        .unwrap();
    failed(&o, "daytime from nowhere");
    assert!(stderr(&o).contains("no daytime answer"), "{}", stderr(&o));
    // A server trickling one byte every 300 ms: `--timeout 1` bounds the whole answer, not
    // each read (before, this held the client for 300 ms per byte, up to 513 bytes).
    let trickle = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let trickle_addr = trickle.local_addr().unwrap();
    let feeder = std::thread::spawn(move || {
        let (mut s, _) = trickle.accept().unwrap();
        for _ in 0..40 {
            if s.write_all(b"M").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let started = Instant::now();
    let o = Command::new(bin(c))
        .args(["daytime", &trickle_addr.to_string(), "--timeout", "1"])
        .output()
        .unwrap();
    let took = started.elapsed();
    failed(&o, "daytime from a trickling server");
    assert!(stderr(&o).contains("within 1s"), "{}", stderr(&o));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    feeder.join().unwrap();
    // nc, if installed, reads the same line.
    if let Ok(o) = Command::new("nc")
        .args(["-w", "5", "127.0.0.1", &server.addr.port().to_string()])
        .stdin(Stdio::null())
        .output()
    {
        if o.status.success() {
            let line = stdout(&o);
            assert!(line.ends_with("-UTC\r\n"), "{line:?}");
        } else {
            eprintln!("nc failed ({:?}); skipped", o.status);
        }
    } else {
        eprintln!("nc is not installed; skipped");
    }
    drop(env);
}

/// Send a file of just over the resume threshold through a proxy limited to 256 KiB/s, `kill
/// -9` the sender once bytes have landed, `lose` the link (`cut`: the server sees the
/// connection close; `freeze`: it sees nothing, as when a host vanishes), and rerun directly
/// at once: the rerun resumes from what landed and the file verifies.
fn kill_and_rerun(c: &str, env: &Env, server: &Server, seed: u64, lose: fn(&proxy::Proxy)) {
    let size = (256 << 10) + 50_000;
    let name = format!("f{seed}.bin");
    let body = data(100 + seed, size);
    let file = env.write(&name, &body);
    let partial = server.root.join(format!(".ferry-part.{name}"));
    let via = proxy::Proxy::start(server.addr, 256 << 10);
    let mut child = Command::new(bin(c))
        .args(["send", file.to_str().unwrap(), "--to", &via.to(), "--key"])
        .arg(&env.key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(20, "bytes in the partial", || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    });
    child.kill().unwrap();
    let _ = child.wait();
    lose(&via);
    let started = Instant::now();
    let o = client(
        c,
        env,
        &[
            "send",
            file.to_str().unwrap(),
            "--to",
            &server.to(),
            "--json",
        ],
    );
    ok(&o, &format!("rerun {seed} after kill -9"));
    assert_eq!(stderr(&o), "", "nothing scary while the server lets go");
    let r = &json_lines(&o)[0];
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert!(
        resumed > 0 && resumed < size as u64,
        "try {seed}: resumed_from {resumed} (after {:?})",
        started.elapsed()
    );
    assert_eq!(r["bytes"].as_u64().unwrap(), size as u64);
    assert_eq!(r["blake3"], proto_hash_hex(&body));
    assert_eq!(std::fs::read(server.root.join(&name)).unwrap(), body);
    assert!(!partial.exists(), "the partial is gone once published");
}

/// `kill -9` of a sender mid-file, its connection closed, and a rerun at once: it resumes,
/// every time (issue 14: 20 consecutive tries).
pub fn resume_right_after_kill(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    for seed in 0..20 {
        kill_and_rerun(c, &env, &server, seed, proxy::Proxy::cut);
    }
}

/// The same when the sender's host vanished without a FIN: the server still holds the old
/// connection (until its idle timeout), and the rerun takes the name over from it. Each try
/// waits out the 1 s takeover delay, so CI runs 3; `FERRY_VANISH_TRIES=20` runs the issue's 20.
pub fn resume_after_the_sender_vanished(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let tries = std::env::var("FERRY_VANISH_TRIES")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(3u64);
    for seed in 0..tries {
        kill_and_rerun(c, &env, &server, seed, proxy::Proxy::freeze);
    }
}

/// Run a client, killing it if it has not finished within `secs`.
fn client_within(c: &str, env: &Env, args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(bin(c))
        .current_dir(env.dir.path())
        .args(args)
        .arg("--key")
        .arg(&env.key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Files the server did not make at the hidden names: a FIFO at a sidecar name (beside a
/// partial, so it would be read) must not block the server, a hard link at a partial name must
/// not make it rewrite the linked file outside the root.
pub fn planted_files(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    std::fs::create_dir_all(&root).unwrap();
    let server = Server::start(s, &env, &root, &[]);
    let size = (256 << 10) + 1000;
    let big = env.write("big.bin", &data(31, size));
    std::fs::write(root.join(".ferry-part.big.bin"), &data(31, size)[..1000]).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(root.join(".ferry-info.big.bin"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let o = client_within(
        c,
        &env,
        &["send", big.to_str().unwrap(), "--to", &server.to()],
        20,
    );
    ok(&o, "send beside a planted FIFO");
    let o = client_within(c, &env, &["ls", "--from", &server.to()], 10);
    ok(&o, "ls after a planted FIFO");
    assert_eq!(std::fs::read(root.join("big.bin")).unwrap(), data(31, size));

    let outside = env.write("outside.txt", b"precious, not the server's");
    std::fs::hard_link(&outside, root.join(".ferry-part.small.txt")).unwrap();
    let small = env.write("small.txt", b"received");
    let o = client_within(
        c,
        &env,
        &["send", small.to_str().unwrap(), "--to", &server.to()],
        20,
    );
    ok(&o, "send over a planted hard link");
    assert_eq!(
        std::fs::read(&outside).unwrap(),
        b"precious, not the server's"
    );
    assert_eq!(std::fs::read(root.join("small.txt")).unwrap(), b"received");
}

/// The published mode is the sender's masked by the receiver's umask and never
/// world-writable, on a server and on a GET client alike.
pub fn modes_are_masked(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &[]);
    let open = env.write("open.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    ok(
        &client(
            c,
            &env,
            &["send", open.to_str().unwrap(), "--to", &server.to()],
        ),
        "send a 0777 file",
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let served = mode(&root.join("open.sh"));
    assert_eq!(served & 0o002, 0, "published {served:o}");
    assert_eq!(served & 0o100, 0o100, "the owner keeps what was offered");
    let out = env.path("got");
    ok(
        &client(
            c,
            &env,
            &[
                "get",
                "open.sh",
                "--from",
                &server.to(),
                "--out",
                out.to_str().unwrap(),
            ],
        ),
        "get it back",
    );
    let got = mode(&out.join("open.sh"));
    assert_eq!(got & 0o002, 0, "fetched {got:o}");
}
