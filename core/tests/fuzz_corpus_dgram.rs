//! The datagram fuzz corpora (`fuzz/corpus/dgram_datagram/`, `fuzz/corpus/dgram_session/`) on
//! stable, like `fuzz_corpus.rs` for the stream targets: every file goes through the target's
//! body in `ferry_core::testing::fuzz`, and the `seed-*` files are written here from the real
//! in-memory session of `fuzz::dgram_net::Net`:
//! `FERRY_WRITE_CORPUS=1 cargo test -p ferry-core --test fuzz_corpus_dgram` (re)writes them.
//!
//! Raw seeds carry datagrams recorded from that session under AES-256-GCM: the fixed seeds make
//! the target's session the same one, so they are genuine here and go deep on stable. Pooled
//! seeds name a datagram of the running session with edits: under the null AEAD of fuzz builds
//! they authenticate and go deep under the fuzzer; here they must be dropped.

use std::path::PathBuf;

use ferry_core::Event;
use ferry_core::dgram::ConnectionStats;
use ferry_core::testing::fuzz::dgram_net::{Fate, Net};
use ferry_core::testing::fuzz::{self, dgram_datagram_outcome, dgram_session_outcome};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The datagrams of the fixed session, run to its end on a faultless wire.
fn recorded() -> Vec<(bool, Vec<u8>)> {
    let mut net = Net::new();
    assert!(
        net.run_until(20_000, Net::done),
        "the recorded session ends"
    );
    net.check_files(true);
    net.pool
}

/// A raw record of `dgram_datagram`: flags (time steps, stranger bit), length, bytes.
fn raw(out: &mut Vec<u8>, flags: u8, d: &[u8]) {
    out.push(flags & !0x40);
    out.extend_from_slice(&(d.len() as u16).to_be_bytes());
    out.extend_from_slice(d);
}

/// A pooled record: the `k`-th latest genuine datagram towards the end, with XOR edits.
fn pooled(out: &mut Vec<u8>, flags: u8, k: u8, edits: &[(u16, u8)]) {
    out.push(0x40 | (flags & 0xb8) | edits.len() as u8);
    out.push(k);
    for (pos, mask) in edits {
        out.extend_from_slice(&pos.to_be_bytes());
        out.push(*mask);
    }
}

const STATES: [&str; 3] = ["fresh", "connected", "mid"];

fn datagram_seeds() -> Vec<(String, Vec<u8>)> {
    let pool = recorded();
    let mut seeds = Vec::new();
    for sel in 0u8..6 {
        let side = if sel & 1 == 1 { "server" } else { "client" };
        let name = |what: &str| format!("seed-{side}-{}-{what}", STATES[usize::from(sel >> 1)]);
        seeds.push((name("nothing"), vec![sel]));
        // What the peer really sent in this session, in order (genuine under AES-256-GCM).
        let to_server = sel & 1 == 1;
        let mut s = vec![sel];
        for (_, d) in pool.iter().filter(|(t, _)| *t == to_server).take(6) {
            raw(&mut s, 0x08, d);
        }
        seeds.push((name("recorded"), s));
        // Edited genuine datagrams: header bytes, frame bytes, the tag, from a stranger.
        let mut s = vec![sel];
        pooled(&mut s, 0, 0, &[(0, 0x80)]);
        pooled(&mut s, 0, 0, &[(30, 0x01)]);
        pooled(&mut s, 0x08, 1, &[(14, 0x04), (40, 0xff)]);
        pooled(&mut s, 0, 0, &[(0xffff, 0x01)]);
        pooled(&mut s, 0x80, 0, &[(26, 0x10)]);
        pooled(&mut s, 0x10, 2, &[]);
        seeds.push((name("edited"), s));
        // Garbage: empty, a short header, random bytes, a long header of the minimum size.
        let mut s = vec![sel];
        raw(&mut s, 0, &[]);
        raw(&mut s, 0, &[0x40, 1, 2, 3]);
        raw(
            &mut s,
            0x80,
            &(0..200u32)
                .map(|i| (i * 37 % 251) as u8)
                .collect::<Vec<_>>(),
        );
        let mut long = vec![0u8; 1200];
        long[0] = 0xc0;
        long[1..5].copy_from_slice(&0x4652_5901u32.to_be_bytes());
        raw(&mut s, 0x08, &long);
        seeds.push((name("garbage"), s));
    }
    seeds
}

/// Fate bytes for `n` datagrams.
fn fates(s: &mut Vec<u8>, steps: usize, fate: &[u8]) {
    for _ in 0..steps {
        s.push(0x00);
        s.extend_from_slice(fate);
    }
}

fn session_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![(String::from("seed-faultless"), vec![])];
    let mut s = Vec::new();
    fates(&mut s, 40, &[0x00, 0x80, 0x00, 0x00]);
    seeds.push(("seed-drops".into(), s));
    let mut s = Vec::new();
    fates(&mut s, 60, &[0x90]);
    seeds.push(("seed-duplicates".into(), s));
    let mut s = Vec::new();
    fates(&mut s, 60, &[0xbf, 0x00, 0xa5]);
    seeds.push(("seed-reorder".into(), s));
    let mut s = Vec::new();
    fates(&mut s, 40, &[0x00, 0xc1, 0x00, 0x20, 0x00]);
    seeds.push(("seed-flips".into(), s));
    let mut s = Vec::new();
    fates(&mut s, 6, &[0x00]);
    // Edited genuine datagrams to both ends, from the peer and from a stranger; raw garbage.
    s.extend_from_slice(&[0xe5, 0, 0, 30, 0x01]);
    s.extend_from_slice(&[0xe4, 1, 0, 14, 0x04]);
    s.extend_from_slice(&[0xe7, 0, 0, 26, 0x10]);
    s.extend_from_slice(&[0xc1, 0, 4, 0x40, 1, 2, 3]);
    fates(&mut s, 20, &[0x00]);
    seeds.push(("seed-inject".into(), s));
    let mut s = Vec::new();
    fates(&mut s, 10, &[0x00]);
    s.extend_from_slice(&[0xf3, 200]);
    fates(&mut s, 10, &[0x00]);
    s.extend_from_slice(&[0xf7, 255]);
    seeds.push(("seed-time-jumps".into(), s));
    let mut s = Vec::new();
    fates(&mut s, 300, &[0x80, 0x80]);
    seeds.push(("seed-blackout".into(), s));
    seeds
}

/// Seed files (name, bytes) per target.
type Seeds = Vec<(&'static str, Vec<(String, Vec<u8>)>)>;

fn all_seeds() -> Seeds {
    vec![
        ("dgram_datagram", datagram_seeds()),
        ("dgram_session", session_seeds()),
    ]
}

#[test]
fn seeds_are_up_to_date() {
    let write = std::env::var_os("FERRY_WRITE_CORPUS").is_some_and(|v| v == "1");
    let seeds = all_seeds();
    assert_eq!(seeds.len(), fuzz::DGRAM_TARGETS.len());
    for (target, files) in &seeds {
        let dir = corpus_dir(target);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for old in std::fs::read_dir(&dir).unwrap() {
                let p = old.unwrap().path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
                {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        for (name, bytes) in files {
            let path = dir.join(name);
            if write {
                std::fs::write(&path, bytes).unwrap();
            } else {
                let committed = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (FERRY_WRITE_CORPUS=1 writes it)", path.display())
                });
                assert!(
                    committed == *bytes,
                    "{} differs (FERRY_WRITE_CORPUS=1 rewrites it)",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn replay_every_corpus_file() {
    for (target, body) in fuzz::DGRAM_TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {target}");
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            let run = std::panic::catch_unwind(|| body(&bytes));
            assert!(
                run.is_ok(),
                "{target}: {} breaks an invariant",
                file.display()
            );
        }
        eprintln!("{target}: {} corpus files", files.len());
    }
}

/// The recorded datagrams are genuine in the target's session: replayed raw into a fresh
/// client they are accepted (not dropped). (The session may then fail: what they carry was
/// recorded on another schedule, as if the same keys had sealed two sessions.)
#[test]
fn recorded_datagrams_are_genuine_on_stable() {
    let seeds = datagram_seeds();
    let (_, s) = seeds
        .iter()
        .find(|(n, _)| n == "seed-client-fresh-recorded")
        .unwrap();
    let net = dgram_datagram_outcome(s);
    let stats = net.client.conn.stats();
    assert!(stats.datagrams_received > stats.dropped + 2, "{stats:?}");
    assert_eq!(stats.auth_failures, 0);
    assert!(net.client.conn.session().is_connected() || net.client.conn.session().is_closed());
}

/// Under AES-256-GCM every edit is an authentication failure, dropped: the session completes
/// (the target asserts it) and the failures were counted.
#[test]
fn edited_datagrams_fail_authentication_on_stable() {
    for (name, s) in datagram_seeds()
        .iter()
        .filter(|(n, _)| n.ends_with("-edited"))
    {
        let net = dgram_datagram_outcome(s);
        assert!(net.done(), "{name}");
        net.check_files(true);
        if name.starts_with("seed-client-") && !name.contains("fresh") {
            assert!(
                net.client.conn.stats().auth_failures >= 4,
                "{name}: {:?}",
                net.client.conn.stats()
            );
        }
    }
}

/// Session seeds: with faults but no forgery accepted, both ends drain; the faultless,
/// duplicated, reordered and flipped ones (flips fail authentication here) deliver both files.
#[test]
fn session_seeds_finish() {
    for (name, s) in session_seeds() {
        let net = dgram_session_outcome(&s);
        assert!(!net.forged_accepted, "{name}: a forgery was accepted");
        assert!(net.done(), "{name}");
        let complete = [
            "faultless",
            "drops",
            "duplicates",
            "reorder",
            "flips",
            "inject",
        ];
        net.check_files(complete.iter().any(|c| name.ends_with(c)));
        let stats = net.client.conn.stats();
        match name.as_str() {
            "seed-drops" => assert!(stats.stream_bytes_retransmitted > 0, "{stats:?}"),
            "seed-duplicates" => assert!(stats.duplicates > 0, "{stats:?}"),
            "seed-flips" => assert!(stats.auth_failures > 0, "{stats:?}"),
            _ => {}
        }
    }
}

/// The fault ops do something: a blackout ends both sides without the files.
#[test]
fn blackout_ends_without_files() {
    let seeds = session_seeds();
    let (_, s) = seeds.iter().find(|(n, _)| n == "seed-blackout").unwrap();
    let net = dgram_session_outcome(s);
    assert!(net.done());
    assert!(!net.client.app.files.contains_key("down.bin"));
    let _ = Fate::Deliver;
}

/// What `Net::fire_timers` skips when no timer is due (the ends' timeouts and the checks)
/// changes nothing: every corpus file ends in the same state as with every timeout run and
/// everything checked after every clock move (as before that speed-up): same datagrams sent,
/// same clock, same counters, events and files on both sides.
#[test]
fn skipping_idle_timers_changes_no_outcome() {
    /// A target: name, its fixed session, its body.
    type Target = (&'static str, fn() -> Net, fn(Net, &[u8]) -> Net);
    let targets: [Target; 2] = [
        ("dgram_datagram", Net::new, fuzz::dgram_datagram_on),
        ("dgram_session", Net::for_session, fuzz::dgram_session_on),
    ];
    let mut compared = 0;
    for (target, new, run) in targets {
        for entry in std::fs::read_dir(corpus_dir(target)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let lazy = run(new(), &bytes);
            let mut eager = new();
            eager.eager_timers = true;
            let eager = run(eager, &bytes);
            assert!(lazy.pool == eager.pool, "{target}: other datagrams");
            assert_eq!(lazy.now, eager.now, "{target}");
            assert_eq!(lazy.client.conn.stats(), eager.client.conn.stats());
            assert_eq!(lazy.client.app.log, eager.client.app.log);
            assert_eq!(lazy.client.app.files, eager.client.app.files);
            fn server(n: &Net) -> Vec<(ConnectionStats, &Vec<Event>)> {
                let ended = n
                    .server
                    .finished
                    .iter()
                    .map(|(_, c, a)| (c.stats(), &a.log));
                let live = n.server.conns.values().map(|(c, a)| (c.stats(), &a.log));
                ended.chain(live).collect()
            }
            assert_eq!(server(&lazy), server(&eager), "{target}");
            compared += 1;
        }
    }
    assert!(compared >= 30, "{compared} corpus files");
}
