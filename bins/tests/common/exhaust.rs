//! Exhaustion end to end: an authenticated client that opens many transfers and sends nothing
//! must not take the server's file descriptors or memory from everyone else.

use super::hostile::flood_offers;
use super::*;

/// Open file descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 8 connections × 1 000 offers of 1 000 bytes, no data: the server's descriptors stay few, and
/// another client's `ls` and `send` succeed within 2 s while the flood holds ([`SLOW`] allowed under load).
pub fn offer_flood_leaves_room(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let pid = server.child.id();
    let before = fds(pid);
    let flood: Vec<_> = (0..8)
        .map(|i| {
            let (addr, key) = (server.addr, env.key.clone());
            std::thread::spawn(move || {
                flood_offers(
                    addr,
                    &key,
                    &format!("flood{i}"),
                    1_000,
                    Duration::from_secs(6),
                )
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let during = fds(pid);
    let rss = rss_kib(pid);
    let f = env.write("real.txt", b"a real file");
    for args in [
        vec!["ls", "--from", &server.to()],
        vec!["send", f.to_str().unwrap(), "--to", &server.to()],
    ] {
        let started = Instant::now();
        let o = client(c, &env, &args);
        let took = started.elapsed();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(took < SLOW, "{args:?} took {took:?}");
        println!("{c}: {} took {took:?} amid the flood", args[0]);
    }
    assert!(
        during < before + 100,
        "8 000 offers without data hold {during} descriptors (from {before})"
    );
    assert!(rss < 256 * 1024, "server RSS {rss} KiB under the flood");
    for f in flood {
        f.join().unwrap();
    }
    assert_eq!(
        std::fs::read(env.path("root/real.txt")).unwrap(),
        b"a real file"
    );
}
