//! Identities end to end (issue 20): pinning the server's key, client keys with rights and
//! folders, revocation, and the mode refusal an old client hears.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::proxy::Proxy;
use super::*;

/// `keygen --identity --out PATH`: the one stdout line, the public key.
fn keygen_identity(c: &str, env: &Env, name: &str) -> String {
    let path = env.path(name);
    let o = Command::new(bin(c))
        .args(["keygen", "--identity", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let mode = std::fs::metadata(&path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    lines[0].to_string()
}

/// A client command with `HOME` at `home` (its known_hosts).
fn run(c: &str, env: &Env, home: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(home).unwrap();
    client_with(
        c,
        env,
        env.dir.path(),
        args,
        None,
        &[("HOME", Some(home.to_str().unwrap()))],
    )
}

/// The fingerprint the server printed (`identity FP (mode ...)`).
fn server_fingerprint(server: &Server) -> String {
    let mut fp = String::new();
    wait_for(10, "the identity line", || {
        let lines = server.stdout.lock().unwrap();
        match lines.iter().find_map(|l| l.strip_prefix("identity ")) {
            Some(rest) => {
                fp = rest.split_whitespace().next().unwrap().to_string();
                true
            }
            None => false,
        }
    });
    fp
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", stderr(o));
}

fn exit1(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(o));
}

/// First contact pins the server's identity and says so; a server with another identity
/// at the same address is refused (exit 1) with both fingerprints named; `--fingerprint`
/// pins explicitly and a wrong one is refused.
pub fn pin_on_first_use(c: &str, s: &str) {
    let env = Env::new(c);
    let home = env.path("home");
    let root = env.path("root");
    let id = env.path("server.id");
    let server = Server::start(s, &env, &root, &["--identity", id.to_str().unwrap()]);
    let fp1 = server_fingerprint(&server);
    let f = env.write("f.txt", b"pinned");
    let o = run(
        c,
        &env,
        &home,
        &["send", f.to_str().unwrap(), "--to", &server.to()],
    );
    ok(&o, "first send");
    assert!(stderr(&o).contains("pinned"), "{}", stderr(&o));
    let known = std::fs::read_to_string(home.join(".config/ferry/known_hosts")).unwrap();
    assert!(known.contains(&fp1), "{known}");
    assert_eq!(std::fs::read(root.join("f.txt")).unwrap(), b"pinned");
    // Again: no new pin, same entry.
    let o = run(c, &env, &home, &["ls", "--from", &server.to()]);
    ok(&o, "ls");
    assert!(!stderr(&o).contains("pinned"));
    // A wrong --fingerprint is refused.
    let o = run(
        c,
        &env,
        &home,
        &[
            "ls",
            "--from",
            &server.to(),
            "--fingerprint",
            "aaaaa-bbbbb-ccccc-ddddd-eeeee",
        ],
    );
    exit1(&o, "wrong --fingerprint");
    assert!(stderr(&o).contains(&fp1), "{}", stderr(&o));
    // Another identity at the same address.
    let addr = server.to();
    drop(server);
    let other = env.path("other.id");
    let server = Server::start_listen(
        s,
        &env,
        &root,
        &addr,
        &["--identity", other.to_str().unwrap()],
    );
    let fp2 = server_fingerprint(&server);
    assert_ne!(fp1, fp2);
    let g = env.write("g.txt", b"must not arrive");
    let o = run(
        c,
        &env,
        &home,
        &["send", g.to_str().unwrap(), "--to", &addr],
    );
    exit1(&o, "changed host key");
    let err = stderr(&o);
    assert!(err.contains(&fp1) && err.contains(&fp2), "{err}");
    assert!(err.contains("known_hosts"), "{err}");
    assert!(!root.join("g.txt").exists(), "sent to a changed server");
    // --fingerprint with the new one is explicit trust: it works and replaces the pin.
    let o = run(
        c,
        &env,
        &home,
        &[
            "send",
            g.to_str().unwrap(),
            "--to",
            &addr,
            "--fingerprint",
            &fp2,
        ],
    );
    ok(&o, "explicit pin");
    let known = std::fs::read_to_string(home.join(".config/ferry/known_hosts")).unwrap();
    assert!(known.contains(&fp2) && !known.contains(&fp1), "{known}");
}

/// The same over UDP.
pub fn udp_pin_on_first_use(c: &str, s: &str) {
    over_udp(|| pin_on_first_use(c, s));
}

/// An allow list: a put-only client confined to `alice/` cannot get, list, overwrite or
/// reach outside its folder by any name; an unlisted client is refused before the server
/// does any disk work.
pub fn rights_and_confinement(c: &str, s: &str) {
    let env = Env::new(c);
    let home = env.path("home");
    let root = env.path("root");
    std::fs::create_dir_all(root.join("bob")).unwrap();
    std::fs::write(root.join("bob/secret"), b"bob's").unwrap();
    let alice = keygen_identity(c, &env, "alice.id");
    let _mallory = keygen_identity(c, &env, "mallory.id");
    let carol = keygen_identity(c, &env, "carol.id");
    let list = env.write(
        "clients",
        format!("# who\nalice {alice} put alice\ncarol {carol} all carol # reads too\n").as_bytes(),
    );
    let id = env.path("server.id");
    let server = Server::start(
        s,
        &env,
        &root,
        &[
            "--identity",
            id.to_str().unwrap(),
            "--clients",
            list.to_str().unwrap(),
        ],
    );
    let to = server.to();
    let alice_id = env.path("alice.id");
    let me = ["--identity", alice_id.to_str().unwrap()];
    let f = env.write("f.txt", b"from alice");
    let with = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&me);
        run(c, &env, &home, &v)
    };
    // The unlisted client first, before alice's folder exists: refused, nothing touched.
    let before = tree(&root);
    let mallory_id = env.path("mallory.id");
    let o = run(
        c,
        &env,
        &home,
        &[
            "send",
            f.to_str().unwrap(),
            "--to",
            &to,
            "--identity",
            mallory_id.to_str().unwrap(),
        ],
    );
    exit1(&o, "unlisted client");
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
    assert_eq!(
        tree(&root),
        before,
        "the server did disk work for an unlisted client"
    );
    assert!(!root.join("alice").exists());
    // Put works, into alice/.
    ok(&with(&["send", f.to_str().unwrap(), "--to", &to]), "put");
    assert_eq!(
        std::fs::read(root.join("alice/f.txt")).unwrap(),
        b"from alice"
    );
    // No get, no list, no overwrite.
    let out = env.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = with(&[
        "get",
        "f.txt",
        "--from",
        &to,
        "--out",
        out.to_str().unwrap(),
    ]);
    exit1(&o, "get");
    assert!(stderr(&o).contains("no right to get"), "{}", stderr(&o));
    let o = with(&["ls", "--from", &to]);
    exit1(&o, "ls");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let f2 = env.write("f2/f.txt", b"changed");
    let o = with(&["send", f2.to_str().unwrap(), "--to", &to, "--overwrite"]);
    exit1(&o, "overwrite");
    assert_eq!(
        std::fs::read(root.join("alice/f.txt")).unwrap(),
        b"from alice"
    );
    // Out of alice/ by name: `..`, absolute, through a symbolic link.
    std::os::unix::fs::symlink(root.join("bob"), root.join("alice/link")).unwrap();
    for name in ["../bob/x", "/bob/x", "link/x", "link"] {
        let o = with(&["send", f.to_str().unwrap(), "--to", &to, "--as", name]);
        exit1(&o, name);
    }
    assert_eq!(tree(&root.join("bob")), vec!["secret"]);
    assert!(!root.join("x").exists() && !root.join("bob/x").exists());
    // A client with every right, confined to carol/, reads nothing outside it either.
    std::fs::create_dir_all(root.join("carol")).unwrap();
    std::fs::write(root.join("carol/mine"), b"carol's").unwrap();
    std::os::unix::fs::symlink(root.join("bob"), root.join("carol/link")).unwrap();
    std::os::unix::fs::symlink(root.join("bob/secret"), root.join("carol/file-link")).unwrap();
    let carol_id = env.path("carol.id");
    let as_carol = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(&["--identity", carol_id.to_str().unwrap()]);
        run(c, &env, &home, &v)
    };
    let o = as_carol(&["ls", "--from", &to]);
    ok(&o, "carol ls");
    assert!(
        stdout(&o).contains("mine") && !stdout(&o).contains("secret"),
        "{}",
        stdout(&o)
    );
    let dest = env.path("carol-out");
    std::fs::create_dir_all(&dest).unwrap();
    for name in [
        "../bob/secret",
        "/bob/secret",
        "link/secret",
        "link",
        "file-link",
    ] {
        let o = as_carol(&["get", name, "--from", &to, "--out", dest.to_str().unwrap()]);
        exit1(&o, name);
    }
    assert!(tree(&dest).is_empty(), "{:?}", tree(&dest));
    let o = as_carol(&[
        "get",
        "mine",
        "--from",
        &to,
        "--out",
        dest.to_str().unwrap(),
    ]);
    ok(&o, "carol get");
    assert_eq!(std::fs::read(dest.join("mine")).unwrap(), b"carol's");
}

/// Revoking a client (edit the list, SIGHUP) ends its transfer in progress: nothing is
/// published, the partial stays; listed again, the client resumes.
pub fn revocation_mid_transfer(c: &str, s: &str) {
    let env = Env::new(c);
    let home = env.path("home");
    let root = env.path("root");
    let alice = keygen_identity(c, &env, "alice.id");
    let entry = format!("alice {alice} put alice\n");
    let list = env.write("clients", entry.as_bytes());
    let id = env.path("server.id");
    let server = Server::start(
        s,
        &env,
        &root,
        &[
            "--identity",
            id.to_str().unwrap(),
            "--clients",
            list.to_str().unwrap(),
        ],
    );
    let size = 8 << 20;
    let big = env.write("big.bin", &data(9, size));
    let proxy = Proxy::start(server.addr, 2 << 20);
    std::fs::create_dir_all(&home).unwrap();
    let alice_id = env.path("alice.id");
    let mut child = Command::new(bin(c))
        .args([
            "send",
            big.to_str().unwrap(),
            "--to",
            &proxy.to(),
            "--identity",
        ])
        .arg(&alice_id)
        .arg("--key")
        .arg(&env.key)
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = root.join("alice");
    let partial = || -> u64 {
        std::fs::read_dir(&dir)
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
    wait_for(30, "a partial of 1 MiB", || partial() >= 1 << 20);
    std::fs::write(&list, "# alice revoked\n").unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    let mut status = None;
    wait_for(20, "the client to end", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.unwrap().code(), Some(1), "{err}");
    assert!(!dir.join("big.bin").exists(), "published after revocation");
    wait_for(10, "the partial kept", || partial() >= 1 << 20);
    drop(proxy);
    // Listed again (the file changes: the watcher reloads without a signal), then resume.
    std::fs::write(&list, entry.as_bytes()).unwrap();
    let _ = std::io::stdout().flush();
    let mut resumed = 0;
    wait_for(20, "a resumed send", || {
        let o = run(
            c,
            &env,
            &home,
            &[
                "send",
                big.to_str().unwrap(),
                "--to",
                &server.to(),
                "--json",
                "--identity",
                alice_id.to_str().unwrap(),
            ],
        );
        if !o.status.success() {
            std::thread::sleep(Duration::from_millis(200));
            return false;
        }
        resumed = json_lines(&o)[0]["resumed_from"].as_u64().unwrap();
        true
    });
    assert!(resumed >= 1 << 20, "resumed_from {resumed}");
    assert_eq!(std::fs::read(dir.join("big.bin")).unwrap(), data(9, size));
}

/// An old client (PSK mode) against a server with an identity hears which mode the server
/// requires, in plaintext, at once; a pinned client never downgrades to a PSK-only server.
pub fn mode_refusal(c: &str, s: &str) {
    let env = Env::new(c);
    let home = env.path("home");
    let id = env.path("server.id");
    let server = Server::start(
        s,
        &env,
        &env.path("root"),
        &["--identity", id.to_str().unwrap()],
    );
    let mut t = raw(&server);
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The PSK-mode preamble of every ferry client before identities, and a message 1.
    t.write_all(b"FRY\x01\x01\x01\x00\x00").unwrap();
    t.write_all(&[0, 75]).unwrap();
    t.write_all(&[0u8; 75]).unwrap();
    let mut got = Vec::new();
    let _ = t.read_to_end(&mut got);
    assert_eq!(got, b"\0\0mode\x04", "PINNED+PSK required");
    // A PSK-only server and a client that pins: refused with the mode named, exit 1.
    let psk_server = Server::start(s, &env, &env.path("root2"), &[]);
    let f = env.write("f.txt", b"x");
    let o = run(
        c,
        &env,
        &home,
        &[
            "send",
            f.to_str().unwrap(),
            "--to",
            &psk_server.to(),
            "--fingerprint",
            "aaaaa-bbbbb-ccccc-ddddd-eeeee",
        ],
    );
    exit1(&o, "pinned client, PSK server");
    assert!(
        stderr(&o).contains("this server requires"),
        "{}",
        stderr(&o)
    );
    assert!(!env.path("root2/f.txt").exists());
}

/// `serve --json` wraps the store to report each received file; the wrapper still hands each
/// client its own folder (an allow list behind `--json` confines exactly as without it), and
/// the server's `key` and `file` objects follow `listening on`.
pub fn clients_behind_serve_json(c: &str, s: &str) {
    let env = Env::new(c);
    let home = env.path("home");
    let root = env.path("root");
    let alice = keygen_identity(c, &env, "alice.id");
    let list = env.write("clients", format!("alice {alice} put alice\n").as_bytes());
    let id = env.path("server.id");
    let server = Server::start(
        s,
        &env,
        &root,
        &[
            "--json",
            "--identity",
            id.to_str().unwrap(),
            "--clients",
            list.to_str().unwrap(),
        ],
    );
    let f = env.write("f.txt", b"from alice");
    let alice_id = env.path("alice.id");
    let o = run(
        c,
        &env,
        &home,
        &[
            "send",
            f.to_str().unwrap(),
            "--to",
            &server.to(),
            "--identity",
            alice_id.to_str().unwrap(),
        ],
    );
    ok(&o, "alice sends");
    assert_eq!(
        std::fs::read(root.join("alice/f.txt")).unwrap(),
        b"from alice"
    );
    assert!(
        !root.join("f.txt").exists(),
        "confined to alice/, not the root"
    );
    wait_for(10, "the server's file object", || {
        server
            .stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(r#""event":"file""#) && l.contains("f.txt"))
    });
    let lines = server.stdout.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""event":"key""#) && l.contains("public_key")),
        "{lines:?}"
    );
}
