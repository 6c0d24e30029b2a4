//! Scripted faults: lost flights, tail loss, blackouts, MTU black holes, idle timeout.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ferry_core::dgram::TransportConfig;
use ferry_core::{Event, SessionError};
use ferry_sim::{Fault, LinkConfig, LinkId, TraceKind, seed_or};

use crate::nodes::{Scenario, data, ms};

const MBIT: u64 = 1_000_000;

/// 10 ms each way, 20 Mbit/s with a generous queue: a transfer of `size` bytes.
fn scenario(seed: u64, size: usize) -> Scenario {
    let link = LinkConfig::default()
        .delay(ms(10))
        .rate(20 * MBIT, 256 * 1024);
    let files = vec![("f".to_string(), data(seed, size))];
    Scenario::new(seed, &TransportConfig::default(), files, link.clone(), link)
}

/// Runs `s` to a verified end and prints `what` with the virtual time it took.
fn finish(mut s: Scenario, what: &str) -> Scenario {
    let report = s.run(Duration::from_secs(120)).unwrap();
    let c = s.client().stats();
    eprintln!(
        "{what}: completed byte-identical in {:?} virtual (client: {} packets lost, {} retransmitted bytes, mtu {})",
        report.elapsed, c.packets_lost, c.stream_bytes_retransmitted, c.mtu
    );
    s
}

#[test]
fn lost_first_flight() {
    let mut s = scenario(seed_or(10), 100_000);
    // The client's first datagram (its whole first flight) never arrives.
    s.sim.fault(s.pair.ab, Fault::DropNth { n: 0 });
    let s = finish(s, "client's first flight lost");
    assert_eq!(s.sim.stats(s.pair.ab).dropped_fault, 1);
}

#[test]
fn lost_server_flight_under_anti_amplification() {
    let mut s = scenario(seed_or(11), 100_000);
    // The server's first flight (one datagram) is lost. Until the client's address is
    // validated the server may send only 3x what it received (the invariant checked after
    // every step), so the client's PTO retransmission is what brings the flight back.
    s.sim.fault(s.pair.ba, Fault::DropNth { n: 0 });
    let s = finish(s, "server's first flight lost (anti-amplification)");
    assert_eq!(s.sim.stats(s.pair.ba).dropped_fault, 1);
}

#[test]
fn server_flight_lost_three_times() {
    let mut s = scenario(seed_or(11), 100_000);
    // The server's answer is lost three times in a row: the client's PTO backs off
    // (1, 2, 4 s) and the fourth attempt goes through.
    s.sim
        .fault(s.pair.ba, Fault::DropRange { first: 0, count: 3 });
    let s = finish(s, "server's first flight lost three times");
    assert_eq!(s.sim.stats(s.pair.ba).dropped_fault, 3);
}

#[test]
fn lost_server_flight_and_client_retransmission() {
    let mut s = scenario(seed_or(12), 100_000);
    // The server's first flight and the client's retransmission are both lost.
    s.sim.fault(s.pair.ba, Fault::DropNth { n: 0 });
    s.sim.fault(s.pair.ab, Fault::DropNth { n: 1 });
    finish(
        s,
        "server's first flight and the client's second datagram lost",
    );
}

/// The indices of the client's datagrams larger than 1 000 bytes (data) in a fault-free run.
fn data_datagrams(seed: u64, size: usize, link: fn(&Scenario) -> LinkId) -> Vec<u64> {
    let mut s = scenario(seed, size);
    let watched = link(&s);
    let seen = Rc::new(RefCell::new((0u64, Vec::new())));
    let sink = seen.clone();
    s.sim.set_trace(move |e| {
        if e.link == watched && e.kind == TraceKind::Sent {
            let mut st = sink.borrow_mut();
            if e.data.len() > 1_000 {
                let i = st.0;
                st.1.push(i);
            }
            st.0 += 1;
        }
    });
    s.run(Duration::from_secs(120)).unwrap();
    seen.take().1
}

#[test]
fn tail_loss() {
    let seed = seed_or(13);
    let size = 200_000;
    let big = data_datagrams(seed, size, |s| s.pair.ab);
    // The same run (deterministic up to the first drop), with the last 3 data datagrams lost:
    // no later packet acknowledges past them, so only the PTO (probing with the oldest
    // unacknowledged data) repairs the tail.
    let tail = big[big.len() - 3];
    let mut s = scenario(seed, size);
    s.sim.fault(
        s.pair.ab,
        Fault::DropRange {
            first: tail,
            count: 3,
        },
    );
    let s = finish(s, "last 3 data datagrams lost");
    assert_eq!(s.sim.stats(s.pair.ab).dropped_fault, 3);
}

#[test]
fn two_second_blackout_server_to_client() {
    let mut s = scenario(seed_or(14), 8 << 20);
    // 8 MiB at 20 Mbit/s takes ~3.4 s: everything from the server (ACKs, MAX_DATA) is lost
    // from 1 s to 3 s. The client's PTO backs off and probes; the transfer must resume.
    s.sim.fault(
        s.pair.ba,
        Fault::DropWindow {
            from: ms(1000),
            to: ms(3000),
        },
    );
    let s = finish(s, "server-to-client blackout 1-3 s");
    assert!(s.sim.stats(s.pair.ba).dropped_fault > 0);
}

#[test]
fn mtu_shrinks_mid_transfer() {
    let mut s = scenario(seed_or(15), 4 << 20);
    // The path carries 1452-byte datagrams (discovered), then from 1 s only 1280: every
    // full-size packet is black-holed until the connection falls back.
    s.sim.fault(
        s.pair.ab,
        Fault::SetMtu {
            at: ms(1000),
            mtu: 1280,
        },
    );
    let s = finish(s, "MTU 1452 -> 1280 at 1 s");
    let mtu_drops = s.sim.stats(s.pair.ab).dropped_mtu;
    assert!(mtu_drops > 0, "the shrink hit full-size packets");
    assert!(s.client().stats().mtu <= 1280, "fell back");
}

#[test]
fn idle_timeout_under_total_loss() {
    let mut transport = TransportConfig::default();
    transport.idle_timeout = Duration::from_secs(5);
    let link = LinkConfig::default()
        .delay(ms(10))
        .rate(20 * MBIT, 256 * 1024);
    let files = vec![("f".to_string(), data(16, 8 << 20))];
    let mut s = Scenario::new(seed_or(16), &transport, files, link.clone(), link);
    // From 500 ms on nothing gets through either way: both ends must give up on their own.
    for l in [s.pair.ab, s.pair.ba] {
        s.sim.fault(
            l,
            Fault::DropWindow {
                from: ms(500),
                to: Duration::from_secs(3600),
            },
        );
    }
    let report = s
        .sim
        .run(ferry_sim::Budget::virtual_time(Duration::from_secs(60)))
        .unwrap();
    let client = s.client();
    assert!(client.inner.conn.is_drained());
    assert!(
        client.inner.app.log.contains(&Event::Closed {
            result: Err(SessionError::TimedOut)
        }),
        "{:?}",
        client.inner.app.log.last()
    );
    eprintln!(
        "total loss from 500 ms, 5 s idle timeout: both ends timed out and drained at {:?}",
        report.elapsed
    );
    assert!(report.elapsed < Duration::from_secs(12));
}
