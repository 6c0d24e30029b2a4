//! Names and housekeeping end to end, against each binary (client and server the same one):
//! deceptive characters refused, `records.jsonl` reserved, refused deep names leave no
//! directories, `serve --list-partials`.

mod common;

use std::process::Output;

use common::{Env, Server, client, stderr, tree};

const BINS: [&str; 3] = ["ferry-std", "ferry-mio", "ferry-smol"];

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed:\n{}", stderr(o));
}

fn failed(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what} should fail:\n{}",
        stderr(o)
    );
}

fn send_as(bin: &str, env: &Env, server: &Server, file: &std::path::Path, name: &str) -> Output {
    client(
        bin,
        env,
        &[
            "send",
            file.to_str().unwrap(),
            "--as",
            name,
            "--to",
            &server.to(),
        ],
    )
}

/// Every directory under `root`, relative, sorted.
fn dirs(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.push(
                    e.path()
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Bidirectional controls and zero-width characters are refused with a reason, and the error
/// the client prints shows no such character raw.
#[test]
fn deceptive_names_are_refused() {
    for bin in BINS {
        let env = Env::new(bin);
        let root = env.path("root");
        let server = Server::start(bin, &env, &root, &[]);
        let f = env.write("f.txt", b"x");
        for name in [
            "invoice\u{202e}fdp.exe",
            "a\u{2066}b",
            "zero\u{200b}width",
            "\u{feff}bom",
            "dir\u{200f}/x",
        ] {
            let o = send_as(bin, &env, &server, &f, name);
            failed(&o, name);
            let err = stderr(&o);
            assert!(
                err.contains("bidirectional control or an invisible"),
                "{bin} {name:?}: {err}"
            );
            assert!(
                !err.chars().any(ferry_disk::path::is_deceptive),
                "{bin} {name:?}: raw character in {err:?}"
            );
        }
        assert!(tree(&root).is_empty(), "{bin}: {:?}", tree(&root));
        assert!(dirs(&root).is_empty(), "{bin}: {:?}", dirs(&root));
    }
}

/// A client cannot take `records.jsonl` (as a file or a directory); `record` keeps working.
#[test]
fn the_record_log_stays_usable() {
    for bin in BINS {
        let env = Env::new(bin);
        let root = env.path("root");
        let server = Server::start(bin, &env, &root, &[]);
        let f = env.write("f.txt", b"x");
        for name in ["records.jsonl/x", "records.jsonl"] {
            let o = send_as(bin, &env, &server, &f, name);
            failed(&o, name);
            assert!(stderr(&o).contains("record log"), "{bin}: {}", stderr(&o));
        }
        assert!(dirs(&root).is_empty(), "{bin}: {:?}", dirs(&root));
        let o = client(bin, &env, &["record", "user=ana", "--to", &server.to()]);
        ok(&o, "record");
        let log = std::fs::read_to_string(root.join("records.jsonl")).unwrap();
        assert!(log.contains("\"ana\""), "{bin}: {log}");
    }
}

/// A 4 095-byte name of many components that the server cannot create leaves no directories.
#[test]
fn a_refused_deep_name_leaves_no_directories() {
    for bin in BINS {
        let env = Env::new(bin);
        let root = env.path("root");
        let server = Server::start(bin, &env, &root, &[]);
        let f = env.write("f.txt", b"x");
        let name = format!("{}xxx", "dd/".repeat(1364));
        assert_eq!(name.len(), 4095);
        let o = send_as(bin, &env, &server, &f, &name);
        failed(&o, "deep name");
        assert!(dirs(&root).is_empty(), "{bin}: {} left", dirs(&root).len());
        // The server still takes ordinary names.
        ok(&send_as(bin, &env, &server, &f, "dd/ok.txt"), "ordinary");
        assert_eq!(tree(&root), ["dd/ok.txt"]);
    }
}

/// `serve --list-partials` prints partials oldest first and exits; a server removes those past
/// `--partials-max-age` when it starts, and keeps the rest.
#[test]
fn partials_are_listed_and_expire() {
    const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
    for bin in BINS {
        let env = Env::new(bin);
        let root = env.path("root");
        env.write("root/dir/.ferry-part.big.bin", &[1; 5000]);
        env.write("root/dir/.ferry-info.big.bin", b"{}");
        let old = env.write("root/.ferry-part.old.bin", &[2; 100]);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - 8 * DAY)
            .unwrap();
        let root_arg = root.to_str().unwrap();
        let list = |json: bool| {
            let mut args = vec!["serve", "--list-partials", "--root", root_arg];
            if json {
                args.push("--json");
            }
            let o = client(bin, &env, &args);
            ok(&o, "--list-partials");
            common::stdout(&o)
        };
        let out = list(false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{bin}: {out}");
        assert!(lines[0].ends_with("  old.bin"), "{bin}: {out}");
        let fields = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            fields(lines[0]),
            ["100", "8d00h", "old.bin"],
            "{bin}: {out}"
        );
        assert!(lines[1].ends_with("  dir/big.bin"), "{bin}: {out}");
        assert_eq!(fields(lines[1])[0], "5002", "{bin}: {out}");
        let json: Vec<serde_json::Value> = list(true)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(json[1]["name"], "dir/big.bin");
        assert_eq!(json[1]["bytes"], 5002);
        assert_eq!(json[1]["receiving"], false);
        // Listing starts no server and changes nothing.
        assert_eq!(tree(&root).len(), 3, "{bin}");

        let _server = Server::start(bin, &env, &root, &["--partials-max-age", "7d"]);
        common::wait_for(10, "the old partial to expire", || !old.exists());
        assert!(root.join("dir/.ferry-part.big.bin").exists(), "{bin}");
        let out = list(false);
        assert_eq!(out.lines().count(), 1, "{bin}: {out}");
    }
}

/// A daytime server's answer is printed with bidirectional and zero-width characters escaped.
#[test]
fn daytime_answer_is_escaped() {
    for bin in BINS {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::Write as _;
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all("Mon\u{202e}day\u{200b}\r\n".as_bytes())
                .unwrap();
        });
        let o = std::process::Command::new(common::bin(bin))
            .args(["daytime", &addr.to_string(), "--timeout", "5"])
            .output()
            .unwrap();
        server.join().unwrap();
        ok(&o, "daytime");
        assert_eq!(common::stdout(&o), "Mon\\u{202e}day\\u{200b}\n", "{bin}");
    }
}
