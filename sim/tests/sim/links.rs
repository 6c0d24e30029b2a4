//! Each link feature does what its configuration says, deterministically.

use std::time::Duration;

use ferry_core::Instant;
use ferry_sim::{GilbertElliott, LinkConfig, Sim};

use crate::common::{Blaster, OneShot, Sink, addr, blast, drain, ms};

fn sink(sim: &Sim, pair: ferry_sim::Pair) -> &Sink {
    sim.node::<Sink>(pair.b)
}

/// Lengths of the runs of consecutive missing indices.
fn loss_runs(missing: &[u64]) -> Vec<u64> {
    let mut runs: Vec<u64> = Vec::new();
    for (k, &i) in missing.iter().enumerate() {
        if k > 0 && missing[k - 1] + 1 == i {
            *runs.last_mut().unwrap() += 1;
        } else {
            runs.push(1);
        }
    }
    runs
}

fn hostile() -> LinkConfig {
    LinkConfig::default()
        .loss(0.1)
        .jitter(ms(1))
        .duplicate(0.05)
        .reorder(0.05, ms(3))
        .corrupt(0.02)
        .rate(20_000_000, 30_000)
}

#[test]
fn same_seed_same_run_other_seed_other_losses() {
    let run = |seed| {
        let (mut sim, pair) = blast(
            seed,
            Blaster::new(addr(1), addr(2), 2000, 10, ms(1)),
            hostile(),
        );
        let report = drain(&mut sim).unwrap();
        let sink = sink(&sim, pair);
        (report, sink.arrivals.clone(), sink.missing(2000))
    };
    let (r1, a1, m1) = run(1);
    let (r1b, a1b, m1b) = run(1);
    assert_eq!(r1, r1b);
    assert_eq!(a1, a1b);
    assert_eq!(m1, m1b);
    let (r2, _, m2) = run(2);
    assert_ne!(m1, m2, "another seed loses other datagrams");
    assert_ne!(r1.links[0], r2.links[0]);
    // Every feature fired.
    let s = &r1.links[0];
    assert!(
        s.dropped_loss > 0 && s.duplicated > 0 && s.reordered > 0 && s.corrupted > 0,
        "{s:?}"
    );
}

#[test]
fn loss_rate_matches_config_over_100k_datagrams() {
    let n = 100_000;
    let (mut sim, pair) = blast(
        3,
        Blaster::new(addr(1), addr(2), n, 1000, ms(1)).sizes(&[32]),
        LinkConfig::default().loss(0.1),
    );
    drain(&mut sim).unwrap();
    let s = sim.stats(pair.ab).clone();
    assert_eq!(s.sent, n);
    // Binomial: sd = sqrt(n p (1-p)) ~ 95, so +-500 is over 5 sd.
    assert!((9_500..=10_500).contains(&s.dropped_loss), "{s:?}");
    assert_eq!(s.delivered, n - s.dropped_loss);
    assert_eq!(sink(&sim, pair).arrivals.len() as u64, s.delivered);
}

#[test]
fn rate_limit_serialises_at_the_configured_rate() {
    // 1250 bytes at 10 Mbit/s take exactly 1 ms each; all 100 offered at once.
    let link = LinkConfig::default()
        .delay(ms(10))
        .rate(10_000_000, 1 << 20);
    let (mut sim, pair) = blast(
        0,
        Blaster::new(addr(1), addr(2), 100, 100, ms(1)).sizes(&[1250]),
        link,
    );
    let start = sim.now();
    drain(&mut sim).unwrap();
    let times: Vec<Instant> = sink(&sim, pair).arrivals.iter().map(|a| a.at).collect();
    let want: Vec<Instant> = (1..=100).map(|k| start + ms(10) + ms(k)).collect();
    assert_eq!(times, want);
    assert_eq!(sim.stats(pair.ab).max_queue_bytes, 100 * 1250);
}

#[test]
fn tail_drop_when_the_queue_is_full() {
    // A 10-datagram queue gets two bursts of 100, a second apart (the queue drains between).
    let link = LinkConfig::default().rate(10_000_000, 10 * 1250);
    let (mut sim, pair) = blast(
        0,
        Blaster::new(addr(1), addr(2), 200, 100, Duration::from_secs(1)).sizes(&[1250]),
        link,
    );
    drain(&mut sim).unwrap();
    let s = sim.stats(pair.ab);
    assert_eq!((s.sent, s.delivered, s.dropped_queue), (200, 20, 180));
    assert_eq!(s.max_queue_bytes, 10 * 1250);
    let idx = sink(&sim, pair).indices();
    assert_eq!(
        idx,
        (0..10).chain(100..110).collect::<Vec<_>>(),
        "the head of each burst gets in"
    );
}

#[test]
fn datagrams_above_the_mtu_are_dropped() {
    let blaster = Blaster::new(addr(1), addr(2), 100, 4, ms(1)).sizes(&[1452, 1453, 1200, 9000]);
    let (mut sim, pair) = blast(0, blaster, LinkConfig::default());
    drain(&mut sim).unwrap();
    assert_eq!(sim.stats(pair.ab).dropped_mtu, 50);
    let lens: Vec<usize> = sink(&sim, pair).arrivals.iter().map(|a| a.len).collect();
    assert_eq!(lens.len(), 50);
    assert!(lens.iter().all(|&l| l == 1452 || l == 1200));
}

#[test]
fn gilbert_elliott_loses_in_bursts() {
    let n = 100_000;
    let model = GilbertElliott::bursts(0.05, 10.0);
    assert!((model.mean_loss() - 0.05).abs() < 1e-9);
    let run = |link: LinkConfig| {
        let (mut sim, pair) = blast(
            5,
            Blaster::new(addr(1), addr(2), n, 1000, ms(1)).sizes(&[32]),
            link,
        );
        drain(&mut sim).unwrap();
        let runs = loss_runs(&sink(&sim, pair).missing(n));
        let lost: u64 = runs.iter().sum();
        (lost as f64 / n as f64, lost as f64 / runs.len() as f64)
    };
    let (rate, mean_run) = run(LinkConfig::default().burst(model));
    assert!((0.035..0.065).contains(&rate), "GE loss rate {rate}");
    assert!((7.0..13.0).contains(&mean_run), "GE mean burst {mean_run}");
    let (rate, mean_run) = run(LinkConfig::default().loss(0.05));
    assert!((0.045..0.055).contains(&rate), "Bernoulli loss rate {rate}");
    assert!(mean_run < 1.2, "Bernoulli mean burst {mean_run}");
}

#[test]
fn duplication_delivers_extra_copies() {
    let n = 10_000;
    let (mut sim, pair) = blast(
        6,
        Blaster::new(addr(1), addr(2), n, 100, ms(1)),
        LinkConfig::default().duplicate(0.1),
    );
    drain(&mut sim).unwrap();
    let s = sim.stats(pair.ab).clone();
    assert!((850..=1150).contains(&s.duplicated), "{s:?}");
    let idx = sink(&sim, pair).indices();
    assert_eq!(idx.len() as u64, n + s.duplicated);
    assert_eq!(s.delivered, n + s.duplicated);
    assert!(sink(&sim, pair).missing(n).is_empty());
}

#[test]
fn reordering_holds_back_the_configured_share() {
    let n = 5_000;
    let link = LinkConfig::default().reorder(0.1, ms(5));
    let (mut sim, pair) = blast(7, Blaster::new(addr(1), addr(2), n, 1, ms(1)), link);
    drain(&mut sim).unwrap();
    let s = sim.stats(pair.ab).clone();
    assert!((400..=600).contains(&s.reordered), "{s:?}");
    // A held-back datagram arrives after one sent later: count those.
    let mut max = None;
    let mut late = 0;
    for i in sink(&sim, pair).indices() {
        if max.is_some_and(|m| i < m) {
            late += 1;
        }
        max = max.max(Some(i));
    }
    assert_eq!(late, s.reordered);
}

#[test]
fn without_jitter_or_reordering_the_link_is_fifo() {
    // Bursts of 50 delivered at the same instant keep their order (sequence tiebreak).
    let (mut sim, pair) = blast(
        8,
        Blaster::new(addr(1), addr(2), 1000, 50, ms(1)),
        LinkConfig::default(),
    );
    drain(&mut sim).unwrap();
    assert_eq!(sink(&sim, pair).indices(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn jitter_stays_within_bounds() {
    let link = LinkConfig::default().delay(ms(10)).jitter(ms(2));
    let (mut sim, pair) = blast(9, Blaster::new(addr(1), addr(2), 1000, 1, ms(1)), link);
    drain(&mut sim).unwrap();
    let sent = sim.node::<Blaster>(pair.a).sent.clone();
    let mut delays: Vec<Duration> = sink(&sim, pair)
        .arrivals
        .iter()
        .map(|a| a.at - sent[a.index.unwrap() as usize].1)
        .collect();
    assert!(delays.iter().all(|d| (ms(10)..=ms(12)).contains(d)));
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 100, "jitter varies the delay");
}

#[test]
fn corruption_flips_bits_the_receiver_detects() {
    let n = 10_000;
    let (mut sim, pair) = blast(
        10,
        Blaster::new(addr(1), addr(2), n, 100, ms(1)),
        LinkConfig::default().corrupt(0.05),
    );
    drain(&mut sim).unwrap();
    let s = sim.stats(pair.ab).clone();
    assert!((400..=600).contains(&s.corrupted), "{s:?}");
    let bad = sink(&sim, pair)
        .arrivals
        .iter()
        .filter(|a| a.index.is_none())
        .count() as u64;
    assert_eq!(bad, s.corrupted);
}

#[test]
fn a_new_link_does_not_perturb_another_links_losses() {
    let lost = |extra: bool| {
        let mut sim = Sim::new(11);
        let a = sim.add_node(Blaster::new(addr(1), addr(2), 2000, 10, ms(1)));
        let b = sim.add_node(Sink::new(addr(2)));
        let pair = sim.connect(a, b, LinkConfig::default().loss(0.1), LinkConfig::default());
        if extra {
            let c = sim.add_node(Blaster::new(addr(3), addr(4), 2000, 10, ms(1)));
            let d = sim.add_node(Sink::new(addr(4)));
            sim.connect(
                c,
                d,
                LinkConfig::default().loss(0.3).duplicate(0.2),
                LinkConfig::default(),
            );
        }
        drain(&mut sim).unwrap();
        sim.node::<Sink>(pair.b).missing(2000)
    };
    assert_eq!(lost(false), lost(true));
}

#[test]
fn gso_batches_are_split_into_segments() {
    let mut sim = Sim::new(0);
    let data: Vec<u8> = (0..4900u32).map(|i| i as u8).collect();
    let a = sim.add_node(OneShot {
        addr: addr(1),
        transmits: [(addr(2), data.clone(), Some(1000))].into(),
    });
    let b = sim.add_node(Sink::new(addr(2)));
    let pair = sim.connect(a, b, LinkConfig::default(), LinkConfig::default());
    drain(&mut sim).unwrap();
    let lens: Vec<usize> = sim.node::<Sink>(b).arrivals.iter().map(|a| a.len).collect();
    assert_eq!(lens, [1000, 1000, 1000, 1000, 900]);
    assert_eq!(sim.stats(pair.ab).sent, 5);
}

#[test]
fn multi_hop_routes_cross_every_link() {
    let mut sim = Sim::new(0);
    let a = sim.add_node(Blaster::new(addr(1), addr(2), 10, 10, ms(1)).sizes(&[1250]));
    let b = sim.add_node(Sink::new(addr(2)));
    let access = sim.add_link(LinkConfig::with_delay(ms(5)));
    let core = sim.add_link(LinkConfig::with_delay(ms(7)).rate(10_000_000, 1 << 20));
    sim.route(a, b, &[access, core]);
    let start = sim.now();
    drain(&mut sim).unwrap();
    let times: Vec<Instant> = sim.node::<Sink>(b).arrivals.iter().map(|a| a.at).collect();
    assert_eq!(
        times,
        (1..=10).map(|k| start + ms(12) + ms(k)).collect::<Vec<_>>()
    );
    assert_eq!(sim.stats(access).delivered, 10);
    assert_eq!(sim.stats(core).delivered, 10);
}
