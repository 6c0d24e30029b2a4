//! Directories of many small files (issue 18, item 3): they all arrive, whole, with the
//! server's memory bounded, and a server killed in the middle of a group commit never shows a
//! half file nor loses one it reported done.

use std::io::Read;
use std::process::{Command, Stdio};

use super::*;

/// Files of the big directory.
const MANY: usize = 10_000;

/// A generous bound on the server's peak resident memory for [`MANY`] files (the issue's
/// target is 64 MiB for 100 000 files of a release build; this is a debug build).
const RSS_BOUND_KIB: u64 = 160 * 1024;

/// Bytes of small file `i`: 1 KiB and a bit, different for every file.
fn small(i: usize) -> Vec<u8> {
    data(i as u64 + 1, 1000 + i % 97)
}

/// Write [`MANY`] (or `n`) small files into `dir` of the env's directory.
fn write_many(env: &Env, dir: &str, n: usize) -> PathBuf {
    let base = env.path(dir);
    std::fs::create_dir_all(&base).unwrap();
    for i in 0..n {
        std::fs::write(base.join(format!("f{i:05}")), small(i)).unwrap();
    }
    base
}

/// The server's peak resident set (VmHWM) in KiB.
fn peak_rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Every published file under `root/dir` is whole: named `fNNNNN` with exactly the bytes
/// of that file. Returns how many there are.
fn all_whole(root: &Path, dir: &str) -> usize {
    let names = tree(&root.join(dir));
    for name in &names {
        assert!(
            !name.contains(".ferry-"),
            "only published names are looked at here: {name}"
        );
        let i: usize = name
            .strip_prefix('f')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        let got = std::fs::read(root.join(dir).join(name)).unwrap();
        assert!(got == small(i), "{name} is not whole ({} bytes)", got.len());
    }
    names.len()
}

/// One `send` of a directory of 10 000 small files: every file arrives whole, nothing but
/// them is left in the root, and the server's peak memory stays bounded.
pub fn many_small_files(c: &str, s: &str) {
    let env = Env::new(c);
    let root = env.path("root");
    let server = Server::start(s, &env, &root, &[]);
    write_many(&env, "many", MANY);
    let o = client_in(
        c,
        &env,
        env.dir.path(),
        &["send", "many", "--to", &server.to()],
        None,
    );
    assert!(o.status.success(), "send failed: {}", stderr(&o));
    let names = tree(&root);
    assert_eq!(names.len(), MANY, "every file and nothing else");
    assert_eq!(all_whole(&root, "many"), MANY);
    let rss = peak_rss_kib(&server);
    eprintln!("{s}: server peak RSS for {MANY} files: {rss} KiB");
    assert!(
        rss <= RSS_BOUND_KIB,
        "server peak RSS {rss} KiB for {MANY} small files (bound {RSS_BOUND_KIB} KiB)"
    );
}

/// The server is killed (SIGKILL) while a directory of small files arrives, in the middle of
/// its group commits: every file the client was told is done is there and whole, no published
/// file is a half file, and a second `send` completes the directory.
pub fn kill_mid_batch_loses_nothing_reported(c: &str, s: &str) {
    const N: usize = 4000;
    let env = Env::new(c);
    let root = env.path("root");
    let mut server = Server::start(s, &env, &root, &[]);
    write_many(&env, "batch", N);
    let mut child = Command::new(bin(c))
        .current_dir(env.dir.path())
        .args(["send", "batch", "--to", &server.to(), "--json", "--key"])
        .arg(&env.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read the reports as they come (the pipe must never fill).
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let published = || std::fs::read_dir(root.join("batch")).map_or(0, |d| d.count());
    wait_for(60, "some files published", || published() >= 200);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let client_status = child.wait().unwrap();
    let reports = reader.join().unwrap();
    let done: Vec<String> = reports
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "file" && v["outcome"] == "sent")
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    // Published files are whole; partials may stay (hidden), never under a final name.
    let whole = tree(&root)
        .iter()
        .filter(|n| !n.contains(".ferry-"))
        .count();
    let in_dir = all_whole_published(&root);
    assert_eq!(whole, in_dir);
    for name in &done {
        let rel = name.strip_prefix("batch/").unwrap_or(name);
        let i: usize = rel.trim_start_matches('f').parse().unwrap();
        let got = std::fs::read(root.join("batch").join(rel))
            .unwrap_or_else(|e| panic!("{name} was reported done but is not there: {e}"));
        assert!(got == small(i), "{name} was reported done but is not whole");
    }
    if client_status.success() {
        eprintln!("the send finished before the kill: nothing was interrupted this time");
    }
    // A new server on the same root; the same send completes the directory.
    let server = Server::start(s, &env, &root, &[]);
    let o = client_in(
        c,
        &env,
        env.dir.path(),
        &["send", "batch", "--to", &server.to()],
        None,
    );
    assert!(o.status.success(), "second send failed: {}", stderr(&o));
    assert_eq!(all_whole_published(&root), N);
    assert!(
        tree(&root).iter().all(|n| !n.contains(".ferry-part")),
        "no partial is left once every file arrived"
    );
}

/// [`all_whole`] over the published names of `root/batch` only (hidden partials skipped).
fn all_whole_published(root: &Path) -> usize {
    let dir = root.join("batch");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".ferry-") {
            continue;
        }
        let i: usize = name
            .strip_prefix('f')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        let got = std::fs::read(e.path()).unwrap();
        assert!(got == small(i), "{name} is published but not whole");
        n += 1;
    }
    n
}
