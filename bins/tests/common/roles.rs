//! Roles end to end: a client serves its server nothing and takes only what it asked for
//! (against [`super::hostile::HostileServer`]); `get --overwrite` is the local user's choice.

use std::os::unix::fs::PermissionsExt;

use super::hostile::{HostileServer, PLANTED, flood_hash_checks};
use super::*;

const REPORT: &[u8] = b"the quarterly report\n";

/// `get report.txt` from a hostile server, run from a directory that holds keys and dotfiles
/// (as `--out .` from `$HOME` would): the server's LIST, GETs and RECORD are refused, its
/// planted and unsolicited files are refused, nothing local changes but the requested file.
pub fn hostile_server_get(c: &str, _s: &str) {
    let env = Env::new(c);
    let home = env.path("home");
    env.write("home/.ssh/id_ed25519", b"PRIVATE KEY");
    env.write("home/.bashrc", b"# mine\n");
    let server = HostileServer::start(&env.key, REPORT);
    let to = server.addr.to_string();
    let o = client_in(
        c,
        &env,
        &home,
        &["get", "report.txt", "--from", &to, "--out", "."],
        None,
    );
    let seen = server.finish();
    assert!(
        o.status.success(),
        "the requested file arrives: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(home.join("report.txt")).unwrap(), REPORT);
    let mode = std::fs::metadata(home.join("report.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o002, 0, "never world-writable: {mode:o}");

    // Nothing of the client's left it.
    assert!(seen.offered_to_us.is_empty(), "{seen:?}");
    assert!(seen.listed.is_empty(), "{seen:?}");
    assert_eq!(seen.requests_answered.len(), 4, "{seen:?}");
    for (what, answer) in &seen.requests_answered {
        let p = answer
            .as_ref()
            .unwrap_or_else(|| panic!("{what} was served"));
        assert_eq!(p.reason, proto::Reason::Denied, "{what}: {p}");
    }
    // Nothing the client did not ask for arrived.
    assert_eq!(std::fs::read(home.join(".bashrc")).unwrap(), b"# mine\n");
    assert!(!home.join("evil").exists());
    assert!(!home.join(".profile").exists());
    for (name, answer) in &seen.offers {
        match name.as_str() {
            "report.txt" => assert!(answer.is_ok(), "{answer:?}"),
            other => {
                assert!(
                    PLANTED.iter().any(|(p, _)| *p == other) || other == ".profile",
                    "{other}"
                );
                let p = answer.as_ref().expect_err("a planted file was taken");
                assert_eq!(p.reason, proto::Reason::Denied, "{other}: {p}");
            }
        }
    }
    assert_eq!(seen.offers.len(), 1 + PLANTED.len() + 1, "{seen:?}");
    assert_eq!(
        tree(&home),
        [".bashrc", ".ssh/id_ed25519", "report.txt"],
        "nothing else appeared"
    );
}

/// `send` and `ls` clients never take (or print) a file the server pushes at them.
pub fn hostile_server_send_and_ls(c: &str, _s: &str) {
    let env = Env::new(c);
    let f = env.write("mine.txt", b"mine");
    for args in [
        vec!["ls", "--from"],
        vec!["send", f.to_str().unwrap(), "--to"],
    ] {
        let server = HostileServer::start(&env.key, REPORT);
        let to = server.addr.to_string();
        let mut args = args.clone();
        args.push(&to);
        let o = client(c, &env, &args);
        let seen = server.finish();
        assert!(
            !stdout(&o).contains("evil"),
            "{args:?} printed a pushed file"
        );
        assert!(
            !o.stdout.contains(&0x1b),
            "no escape sequence reaches the terminal"
        );
        let profile = seen.offers.iter().find(|(n, _)| n == ".profile");
        let (_, answer) = profile.expect("the server pushed .profile");
        assert_eq!(
            answer.as_ref().map_err(|p| p.reason),
            Err(proto::Reason::Denied),
            "{args:?}"
        );
        assert!(seen.listed.is_empty() && !seen.requests_answered.is_empty());
        for (what, answer) in &seen.requests_answered {
            assert!(answer.is_some(), "{args:?}: {what} was served");
        }
    }
}

/// A local file that differs from the server's is kept by `get` unless `--overwrite`.
pub fn get_overwrite(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    env.write("root/doc.txt", b"server version");
    let out = env.path("out");
    env.write("out/doc.txt", b"local version");
    let get = |extra: &[&str]| {
        let mut args = vec!["get", "doc.txt", "--from", &server.addr.to_string()]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(["--out".into(), out.to_str().unwrap().into()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        client(c, &env, &args)
    };
    let o = get(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(out.join("doc.txt")).unwrap(),
        b"local version"
    );
    let o = get(&["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(out.join("doc.txt")).unwrap(),
        b"server version"
    );
}

/// While an authenticated client keeps offering a large existing file with a wrong hash (each
/// offer makes the server compare contents), another client's `ls` is answered within 2 s ([`SLOW`] under load): no
/// hash runs where it stalls other connections (the mio loop thread, say), and the same file is
/// hashed once per version, not once per offer.
pub fn hash_checks_do_not_stall_others(c: &str, s: &str) {
    const SIZE: u64 = 128 << 20;
    let env = Env::new(c);
    let root = env.path("root");
    std::fs::create_dir_all(&root).unwrap();
    let big = std::fs::File::create(root.join("big.bin")).unwrap();
    big.set_len(SIZE).unwrap();
    drop(big);
    let server = Server::start(s, &env, &root, &[]);
    let flood: Vec<_> = (0..2)
        .map(|_| {
            let (addr, key) = (server.addr, env.key.clone());
            std::thread::spawn(move || {
                flood_hash_checks(addr, &key, "big.bin", SIZE, Duration::from_secs(6))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..3 {
        let started = Instant::now();
        let o = client(c, &env, &["ls", "--from", &server.to()]);
        let took = started.elapsed();
        assert!(o.status.success(), "ls {round}: {}", stderr(&o));
        assert!(stdout(&o).contains("big.bin"), "{}", stdout(&o));
        assert!(took < SLOW, "ls {round} took {took:?}");
        println!("{c}: ls {round} took {took:?} amid the hash checks");
    }
    for f in flood {
        f.join().unwrap();
    }
}
