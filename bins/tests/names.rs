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
