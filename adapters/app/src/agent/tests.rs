//! The agent through the driver, on a virtual clock.

use std::sync::Arc;

use ferry_disk::{FsStore, Outgoing};
use proto::{Config, Instant, Psk, Session};

use super::{Agent, FileReport, Job, LogObserver, Report};
use crate::driver::Conn;
use crate::host::Clock;

/// Send one file from a client to a server agent, both driven with `step_at` on a clock that
/// moves one virtual second per round, and return both sides' reports.
fn transfer_on_a_virtual_clock() -> (Vec<Report>, Vec<Report>) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    std::fs::write(&src, vec![7u8; 200_000]).unwrap();
    let store = |name: &str| Arc::new(FsStore::new(dir.path().join(name)).unwrap());
    let job = Job::Send(vec![Outgoing::from_file(src, "f", false).unwrap()]);
    let client = Agent::client(store("local"), Box::new(LogObserver), job);
    let server = Agent::server(store("root"), Box::new(LogObserver));
    let (config, psk) = (Config::default(), Psk::from_key_bytes(&[5; 32]));
    let mut now = Instant::from_micros(1_000_000);
    let mut c = Conn::new(
        Session::client(&config, &psk, [1; 32], now),
        client,
        Clock::new(),
    );
    let mut s = Conn::new(
        Session::server(&config, &psk, [2; 32], now),
        server,
        Clock::new(),
    );
    for _ in 0..100 {
        now = Instant::from_micros(now.as_micros() + 1_000_000);
        c.step_at(now);
        s.step_at(now);
        carry(&mut c, &mut s);
        carry(&mut s, &mut c);
        if c.agent().is_done() && !s.agent().reports().is_empty() {
            break;
        }
    }
    (c.agent().reports().to_vec(), s.agent().reports().to_vec())
}

/// Move everything `from` has to send into `to`.
fn carry(from: &mut Conn, to: &mut Conn) {
    let bytes = from.output().to_vec();
    to.push_input(&bytes);
    from.output_sent(bytes.len());
}

#[test]
fn report_times_come_from_the_drivers_clock() {
    let (sent, received) = transfer_on_a_virtual_clock();
    let file = |r: &[Report], sent: bool| -> FileReport {
        match r {
            [Report::Sent(f)] if sent => f.clone(),
            [Report::Received(f)] if !sent => f.clone(),
            other => panic!("unexpected reports: {other:?}"),
        }
    };
    for f in [file(&sent, true), file(&received, false)] {
        assert_eq!(f.bytes, 200_000);
        // Whole virtual seconds (the wall clock would give a few milliseconds, never a whole
        // number of seconds), and at least one round went by.
        assert!(f.seconds >= 1.0, "{f:?}");
        assert_eq!(f.seconds.fract(), 0.0, "{f:?}");
    }
}

/// A client whose cancel flag is set mid-file closes its session as cancelled: both sessions
/// end cleanly, the server reports the file cancelled by the peer's close (its partial is kept
/// for resume), and nothing is committed.
#[test]
fn a_cancelled_client_closes_its_session() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f");
    std::fs::write(&src, vec![7u8; 8 << 20]).unwrap();
    let store = |name: &str| Arc::new(FsStore::new(dir.path().join(name)).unwrap());
    let job = Job::Send(vec![Outgoing::from_file(src, "f", false).unwrap()]);
    let mut client = Agent::client(store("local"), Box::new(LogObserver), job);
    let flag = Arc::new(AtomicBool::new(false));
    client.cancel_on(flag.clone());
    let server = Agent::server(store("root"), Box::new(LogObserver));
    let (config, psk) = (Config::default(), Psk::from_key_bytes(&[5; 32]));
    let mut now = Instant::from_micros(1_000_000);
    let mut c = Conn::new(
        Session::client(&config, &psk, [1; 32], now),
        client,
        Clock::new(),
    );
    let mut s = Conn::new(
        Session::server(&config, &psk, [2; 32], now),
        server,
        Clock::new(),
    );
    for round in 0..100 {
        if round == 4 {
            flag.store(true, Ordering::Relaxed);
        }
        now = Instant::from_micros(now.as_micros() + 1_000);
        c.step_at(now);
        s.step_at(now);
        carry(&mut c, &mut s);
        carry(&mut s, &mut c);
        if c.session().is_closed() && s.session().is_closed() {
            break;
        }
    }
    assert!(c.session().is_closed() && s.session().is_closed());
    let cancelled = s.agent().reports().iter().any(|r| {
        matches!(r, Report::Failed { problem, .. }
            if problem.reason == proto::Reason::Cancelled
                && problem.detail == "peer closed the session")
    });
    assert!(cancelled, "{:?}", s.agent().reports());
    assert!(!dir.path().join("root/f").exists(), "nothing committed");
}

/// A directory of small files to a server whose disk work runs on a pool: the offers are
/// looked at in batches, so the pool wakes the loop a few times per batch, not once per file.
#[test]
fn offers_reach_the_pool_in_batches() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const FILES: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<Outgoing> = (0..FILES)
        .map(|i| {
            let src = dir.path().join(format!("f{i}"));
            std::fs::write(&src, vec![i as u8; 100 + i]).unwrap();
            Outgoing::from_file(src, &format!("d/f{i}"), false).unwrap()
        })
        .collect();
    let store = |name: &str| Arc::new(FsStore::new(dir.path().join(name)).unwrap());
    let client = Agent::client(store("local"), Box::new(LogObserver), Job::Send(files));
    let mut server = Agent::server(store("root"), Box::new(LogObserver));
    let wakes = Arc::new(AtomicUsize::new(0));
    let counted = wakes.clone();
    server.use_commit_pool(
        crate::pool::CommitPool::new(2).unwrap(),
        Arc::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
        }),
    );
    let (config, psk) = (Config::default(), Psk::from_key_bytes(&[5; 32]));
    let mut now = Instant::from_micros(1_000_000);
    let mut c = Conn::new(
        Session::client(&config, &psk, [1; 32], now),
        client,
        Clock::new(),
    );
    let mut s = Conn::new(
        Session::server(&config, &psk, [2; 32], now),
        server,
        Clock::new(),
    );
    for _ in 0..20_000 {
        now = Instant::from_micros(now.as_micros() + 1_000);
        c.step_at(now);
        s.step_at(now);
        carry(&mut c, &mut s);
        carry(&mut s, &mut c);
        if c.agent().is_done() {
            break;
        }
        // The pool answers on its own threads.
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    assert!(c.agent().is_done(), "the send did not finish");
    let sent = c.agent().reports().iter();
    assert_eq!(sent.filter(|r| matches!(r, Report::Sent(_))).count(), FILES);
    assert_eq!(c.agent().failures(), 0);
    for i in [0, FILES / 2, FILES - 1] {
        let got = std::fs::read(dir.path().join(format!("root/d/f{i}"))).unwrap();
        assert_eq!(got, vec![i as u8; 100 + i]);
    }
    // Per file this would be FILES wakes for the offers alone (plus the commits').
    let wakes = wakes.load(Ordering::Relaxed);
    assert!(
        wakes < FILES / 4,
        "{wakes} wakes of the loop for {FILES} offers"
    );
}
