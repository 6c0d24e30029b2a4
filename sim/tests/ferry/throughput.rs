//! Goodput, overhead, loss tolerance and fairness on rate-limited links.

use std::time::{Duration, Instant as Wall};

use ferry_core::dgram::{CongestionControl, TransportConfig};
use ferry_core::{Config, Instant};
use ferry_sim::{Budget, LinkConfig, Meter, Sim, jain, mathis_bps, seed_or};

use crate::nodes::{Client, Scenario, Server, client_addr, data, ms, sender};

const MBIT: u64 = 1_000_000;
/// The default controller at 1 % loss, as a fraction of the Mathis rate (the target).
const MATHIS_FLOOR: f64 = 1.0;
/// BBR on the 500 Mbit/s, 200 ms, 2 % path, bits per second, after STARTUP: the issue's
/// target. Seeds 1 to 20 measure 424 to 475 (seed 4: 464); before the fixes of the session's
/// write-ahead bound, the receive window's growth behind holes and BBR's STARTUP exit, seeds
/// 1 to 12 measured 369 to 487, the low ones never leaving STARTUP (an application-limited
/// flight) and overflowing the bottleneck queue.
const LONG_FAT_FLOOR: f64 = 400e6;
/// ... while its retransmissions stay near the path's 2 % random loss: STARTUP does not
/// overflow the one-BDP bottleneck queue much (seeds 1 to 20: 2.0 to 3.6 % of the bytes
/// sent; with a window gain of 2.885 in STARTUP: 7 %).
const LONG_FAT_RETX: f64 = 0.05;

/// A bottleneck of `rate` bits per second with a tail-drop queue of one BDP for `rtt`, half
/// the RTT each way, and random `loss`.
pub(crate) fn link(rate: u64, rtt: Duration, loss: f64) -> LinkConfig {
    let bdp = (rate as f64 / 8.0 * rtt.as_secs_f64()) as usize;
    LinkConfig::default()
        .delay(rtt / 2)
        .loss(loss)
        .rate(rate, bdp.max(64 * 1452))
}

/// The time the meter first reached `total`.
fn reached(m: &Meter, total: u64) -> Option<Instant> {
    m.samples().iter().find(|s| s.1 >= total).map(|s| s.0)
}

struct Run {
    goodput: f64,
    /// Goodput from the start (handshake and slow start included).
    whole: f64,
    /// Headers, tags, ACKs: wire bytes both ways minus file and retransmitted bytes, over
    /// file bytes.
    overhead: f64,
    /// All wire bytes both ways minus file bytes, over file bytes.
    with_retx: f64,
    stats: ferry_core::dgram::ConnectionStats,
    elapsed: Duration,
}

/// One client sends `size` bytes over `up`/`down`; goodput is measured from `skip` after the
/// handshake completed (the client's session connected) to the arrival of the last byte. From
/// the handshake, not the first datagram: a lost first flight costs the initial probe timeout
/// (about 1 s from the 333 ms initial RTT, RFC 9002), which is no part of slow start.
fn one_flow(
    seed: u64,
    cc: CongestionControl,
    size: usize,
    up: LinkConfig,
    down: LinkConfig,
    skip: Duration,
) -> Run {
    let mut transport = TransportConfig::default();
    transport.congestion = cc;
    let files = vec![("big".to_string(), data(seed, size))];
    let mut s = Scenario::new(seed, &transport, files, up, down);
    let start = s.sim.now();
    let wall = Wall::now();
    let report = s.run(Duration::from_secs(300)).unwrap();
    let m = &s.server().received;
    let end = reached(m, size as u64).expect("all bytes arrived");
    let from = s.client().connected_at.expect("connected") + skip;
    assert!(end > from, "the transfer ended within the skipped {skip:?}");
    let goodput = m.rate_bps(from, end);
    // FERRY_SIM_TIMELINE=1 prints the in-order goodput per 100 ms (holes show as stalls).
    if std::env::var_os("FERRY_SIM_TIMELINE").is_some() {
        let mut t = start;
        while t < end {
            let n = t + ms(100);
            eprintln!(
                "R {:.1} {:.0}",
                (t - start).as_secs_f64(),
                m.rate_bps(t, n) / 1e6
            );
            t = n;
        }
    }
    let whole = m.rate_bps(start, end);
    let stats = s.client().stats();
    // Headers, tags, ACKs and control frames: every UDP payload byte both ways that is neither
    // a file byte nor a retransmitted stream byte (those are counted apart).
    let overhead =
        (s.wire_bytes() - size as u64 - stats.stream_bytes_retransmitted) as f64 / size as f64;
    let back = s.server().stats(client_addr(0)).unwrap_or_default();
    eprintln!(
        "  client: {} datagrams, {} bytes; server: {} datagrams, {} bytes, {} acks",
        stats.datagrams_sent,
        stats.bytes_sent,
        back.datagrams_sent,
        back.bytes_sent,
        back.acks_sent
    );
    eprintln!(
        "  seed {seed}: {size} bytes in {:?} virtual ({:?} wall): goodput {:.1} Mbit/s after {skip:?} from the handshake ({:.1} from the start), overhead {:.2} %, sent {} retx {} lost {} spurious {} cc events {} srtt {:?} mtu {} queue drops {}",
        report.elapsed,
        wall.elapsed(),
        goodput / 1e6,
        m.rate_bps(start + skip, end) / 1e6,
        overhead * 100.0,
        stats.stream_bytes_sent,
        stats.stream_bytes_retransmitted,
        stats.packets_lost,
        stats.spurious_losses,
        stats.congestion_events,
        stats.srtt,
        stats.mtu,
        report.links[s.pair.ab.index()].dropped_queue,
    );
    let with_retx = (s.wire_bytes() - size as u64) as f64 / size as f64;
    Run {
        goodput,
        whole,
        overhead,
        with_retx,
        stats,
        elapsed: report.elapsed,
    }
}

#[test]
fn clean_100_mbit_link_goodput_and_overhead() {
    let l = link(100 * MBIT, ms(20), 0.0);
    let r = one_flow(
        seed_or(1),
        CongestionControl::default(),
        30 << 20,
        l.clone(),
        l,
        ms(1000),
    );
    eprintln!(
        "100 Mbit/s, 20 ms RTT, 0 % loss, default controller: goodput {:.1} Mbit/s (target >= 90), wire overhead (headers, tags, ACKs) {:.2} % (target <= 4 %), {:.2} % with retransmissions (slow-start overshoot: {} bytes), {:?}",
        r.goodput / 1e6,
        r.overhead * 100.0,
        r.with_retx * 100.0,
        r.stats.stream_bytes_retransmitted,
        r.elapsed
    );
    assert!(r.goodput >= 90e6, "goodput {:.1} Mbit/s", r.goodput / 1e6);
    assert!(r.overhead <= 0.04, "overhead {:.2} %", r.overhead * 100.0);
}

#[test]
fn lossy_100_mbit_link_default_controller_beats_mathis() {
    let l = link(100 * MBIT, ms(20), 0.01);
    let mathis = mathis_bps(1452, ms(20), 0.01);
    let r = one_flow(
        seed_or(2),
        CongestionControl::default(),
        20 << 20,
        l.clone(),
        l,
        ms(1000),
    );
    let s = &r.stats;
    let retx = s.stream_bytes_retransmitted as f64 / s.stream_bytes_sent as f64;
    let spurious = s.spurious_losses as f64 / s.packets_lost.max(1) as f64;
    eprintln!(
        "100 Mbit/s, 20 ms RTT, 1 % loss, default controller: goodput {:.1} Mbit/s = {:.2} x Mathis ({:.1} Mbit/s; target >= 1.0), retransmitted {:.2} % of sent (target <= 2 %), spurious {:.2} % of losses (target <= 0.5 %)",
        r.goodput / 1e6,
        r.goodput / mathis,
        mathis / 1e6,
        retx * 100.0,
        spurious * 100.0
    );
    // The target is 1.0 x Mathis; CUBIC measures 0.96 since ACKs went to every 4th
    // packet (see the report). This floor catches regressions until that is settled.
    assert!(
        r.goodput >= MATHIS_FLOOR * mathis,
        "below {MATHIS_FLOOR} x Mathis"
    );
    assert!(retx <= 0.02, "retransmitted {:.2} %", retx * 100.0);
    assert!(spurious <= 0.005, "spurious {:.2} %", spurious * 100.0);
}

#[test]
fn lossy_100_mbit_link_bbr() {
    let l = link(100 * MBIT, ms(20), 0.01);
    let r = one_flow(
        seed_or(3),
        CongestionControl::Bbr,
        20 << 20,
        l.clone(),
        l,
        ms(1000),
    );
    eprintln!(
        "100 Mbit/s, 20 ms RTT, 1 % loss, BBR: goodput {:.1} Mbit/s (target >= 50)",
        r.goodput / 1e6
    );
    assert!(r.goodput >= 50e6, "goodput {:.1} Mbit/s", r.goodput / 1e6);
}

#[test]
fn long_fat_lossy_path_bbr() {
    // 200 MiB: 3.4 s at 500 Mbit/s once STARTUP is over. On a 200 ms path the session's
    // first exchange (a round trip) and STARTUP (about 10 round trips from a 10-packet
    // window to the 12.5 MB bandwidth-delay product, then rounds to see the pipe full) take
    // about 2.8 s after the handshake, which the measurement skips; it includes the tail
    // (the last holes' repair).
    let size = 200 << 20;
    let l = link(500 * MBIT, ms(200), 0.02);
    let r = one_flow(
        seed_or(4),
        CongestionControl::Bbr,
        size,
        l.clone(),
        l,
        ms(2800),
    );
    eprintln!(
        "500 Mbit/s, 200 ms RTT, 2 % loss, BBR: goodput {:.1} Mbit/s after STARTUP (target >= 400), {:.1} Mbit/s from the first packet, cwnd {} (the invariants bound the receive buffer by max_window)",
        r.goodput / 1e6,
        r.whole / 1e6,
        r.stats.cwnd
    );
    assert!(
        r.goodput >= LONG_FAT_FLOOR,
        "goodput {:.1} Mbit/s",
        r.goodput / 1e6
    );
    let retx = r.stats.stream_bytes_retransmitted as f64 / r.stats.stream_bytes_sent as f64;
    assert!(retx <= LONG_FAT_RETX, "retransmitted {:.2} %", retx * 100.0);
}

#[test]
fn two_flows_share_a_bottleneck_fairly() {
    let seed = seed_or(5);
    let transport = TransportConfig::default();
    let size = 25 << 20;
    let mut sim = Sim::new(seed);
    let start = sim.now();
    let clients: Vec<_> = (0..2u8)
        .map(|i| {
            let files = vec![(format!("f{i}"), data(seed + u64::from(i), size))];
            sim.add_node(Client::new(
                &Config::default(),
                &transport,
                seed,
                i,
                start,
                sender(&files),
            ))
        })
        .collect();
    let server = sim.add_node(Server::new(&Config::default(), &transport, seed, 2));
    let l = link(100 * MBIT, ms(20), 0.0);
    sim.share_bottleneck(&clients, server, l.clone(), l);
    let report = sim
        .run(Budget::virtual_time(Duration::from_secs(300)))
        .unwrap();
    for &c in &clients {
        assert!(sim.node::<Client>(c).delivered_all());
    }
    let srv = sim.node::<Server>(server);
    let meters: Vec<&Meter> = (0..2u8)
        .map(|i| {
            &srv.per_client
                .iter()
                .find(|(a, _)| *a == client_addr(i))
                .unwrap()
                .1
        })
        .collect();
    // The common interval: from 1 s after the start until the first flow ends.
    let from = start + ms(1000);
    let to = meters
        .iter()
        .map(|m| reached(m, size as u64).unwrap())
        .min()
        .unwrap();
    let rates: Vec<f64> = meters.iter().map(|m| m.rate_bps(from, to)).collect();
    let j = jain(&rates);
    eprintln!(
        "two flows, one 100 Mbit/s tail-drop bottleneck, 20 ms RTT: {:.1} and {:.1} Mbit/s over {:?}, Jain {j:.4} (target >= 0.95), total {:?}",
        rates[0] / 1e6,
        rates[1] / 1e6,
        to - from,
        report.elapsed
    );
    assert!(j >= 0.95, "Jain {j}");
}
