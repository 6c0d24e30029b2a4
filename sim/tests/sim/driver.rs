//! The driver loop end to end: transfers complete over hostile links, flows share a bottleneck,
//! and every failure mode is reported with its seed.

use std::net::SocketAddr;
use std::time::Duration;

use ferry_core::Instant;
use ferry_core::dgram::Transmit;
use ferry_sim::{
    Budget, LinkConfig, Meter, Node, Sim, SimErrorKind, check_seeds, jain, mathis_bps,
};

use crate::common::{OneShot, Receiver, Sender, Sink, addr, drain, ms};

fn hostile() -> LinkConfig {
    LinkConfig::default()
        .delay(ms(20))
        .jitter(ms(2))
        .loss(0.1)
        .duplicate(0.05)
        .reorder(0.05, ms(3))
        .corrupt(0.01)
}

/// A 300-datagram windowed transfer over `hostile()` both ways.
fn transfer(seed: u64) -> Result<ferry_sim::Report, String> {
    let mut sim = Sim::new(seed);
    let a = sim.add_node(Sender::new(addr(1), addr(2), 300, 16, Some(ms(100))));
    let b = sim.add_node(Receiver::new(addr(2), 1));
    sim.connect(a, b, hostile(), hostile());
    let report = sim
        .run(Budget::virtual_time(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let flow = &sim.node::<Receiver>(b).flows[&addr(1)];
    if flow.distinct != 300 || sim.node::<Sender>(a).acked != 300 {
        return Err(format!("incomplete: {} received", flow.distinct));
    }
    Ok(report)
}

#[test]
fn windowed_transfer_completes_over_hostile_links() {
    check_seeds(20, |seed| transfer(seed).map(|_| ()));
    let report = transfer(0).unwrap();
    assert_eq!(report, transfer(0).unwrap(), "same seed, same run");
    let s = &report.links[0];
    assert!(
        s.dropped_loss > 0 && s.duplicated > 0 && s.reordered > 0 && s.corrupted > 0,
        "{s:?}"
    );
}

#[test]
fn two_flows_share_a_bottleneck_fairly() {
    let mut sim = Sim::new(1);
    let c1 = sim.add_node(Sender::new(addr(1), addr(9), 2000, 20, Some(ms(200))));
    let c2 = sim.add_node(Sender::new(addr(2), addr(9), 2000, 20, Some(ms(200))));
    let s = sim.add_node(Receiver::new(addr(9), 2));
    let up = LinkConfig::default().rate(10_000_000, 30_000);
    let neck = sim.share_bottleneck(&[c1, c2], s, up, LinkConfig::default());
    let start = sim.now();
    sim.run(Budget::virtual_time(Duration::from_secs(60)))
        .unwrap();
    let rx = sim.node::<Receiver>(s);
    let meters: Vec<&Meter> = rx.flows.values().map(|f| &f.bytes).collect();
    // Measure while both flows run.
    let end = meters
        .iter()
        .map(|m| m.samples().last().unwrap().0)
        .min()
        .unwrap();
    let rates: Vec<f64> = meters.iter().map(|m| m.rate_bps(start, end)).collect();
    assert!(jain(&rates) >= 0.99, "{rates:?}");
    eprintln!("two flows: {rates:?} bit/s, Jain {}", jain(&rates));
    let total: f64 = rates.iter().sum();
    assert!((9.0e6..=10.0e6).contains(&total), "{rates:?}");
    let up = sim.stats(neck.up);
    let retransmits = sim.node::<Sender>(c1).retransmits + sim.node::<Sender>(c2).retransmits;
    // The two initial windows (48 KB at once) overflow the 30 KB queue.
    assert_eq!((up.sent, up.dropped_queue), (4000 + retransmits, 15));
    assert_eq!(up.delivered + up.dropped_queue, up.sent);
    assert_eq!(sim.stats(neck.down).delivered, up.delivered);
}

#[test]
fn deadlock_is_reported_with_the_seed() {
    // No retransmission timer and a link that loses everything: nothing left to happen.
    let mut sim = Sim::new(42);
    let a = sim.add_node(Sender::new(addr(1), addr(2), 10, 4, None));
    let b = sim.add_node(Receiver::new(addr(2), 1));
    sim.connect(a, b, LinkConfig::default().loss(1.0), LinkConfig::default());
    let err = sim.run(Budget::default()).unwrap_err();
    assert_eq!(err.kind, SimErrorKind::Deadlock);
    assert_eq!((err.seed, err.elapsed), (42, Duration::ZERO));
    assert!(
        err.to_string().contains("replay with FERRY_SIM_SEED=42"),
        "{err}"
    );
    assert_eq!(
        format!("{err:?}"),
        err.to_string(),
        "unwrap() shows the seed too"
    );
}

#[test]
fn step_budget_livelock_is_reported_with_the_seed() {
    // Retransmits every millisecond into a black hole, forever.
    let mut sim = Sim::new(43);
    let a = sim.add_node(Sender::new(addr(1), addr(2), 10, 4, Some(ms(1))));
    let b = sim.add_node(Receiver::new(addr(2), 1));
    sim.connect(a, b, LinkConfig::default().loss(1.0), LinkConfig::default());
    let err = sim.run(Budget::default().steps(1000)).unwrap_err();
    assert!(
        matches!(&err.kind, SimErrorKind::Livelock(why) if why.contains("step budget")),
        "{err}"
    );
    assert!(err.elapsed > ms(900), "time advanced: {err}");
    assert!(
        err.to_string().contains("replay with FERRY_SIM_SEED=43"),
        "{err}"
    );
}

/// Always wants to be woken at the instant it was last given.
struct Spinner {
    last: Instant,
}

impl Node for Spinner {
    fn addr(&self) -> SocketAddr {
        addr(1)
    }
    fn handle_datagram(&mut self, _: Instant, _: SocketAddr, _: &mut [u8]) {}
    fn poll_transmit(&mut self, _: Instant, _: &mut [u8]) -> Option<Transmit> {
        None
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.last = now;
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.last)
    }
}

#[test]
fn time_standing_still_is_a_livelock() {
    let mut sim = Sim::new(44);
    sim.add_node(Spinner {
        last: Instant::ZERO,
    });
    let err = sim.run(Budget::default()).unwrap_err();
    assert!(
        matches!(&err.kind, SimErrorKind::Livelock(why) if why.contains("without virtual time")),
        "{err}"
    );
    assert_eq!(err.elapsed, Duration::ZERO);
    assert!(
        err.to_string().contains("replay with FERRY_SIM_SEED=44"),
        "{err}"
    );
}

#[test]
fn virtual_time_budget() {
    let mut sim = Sim::new(45);
    let a = sim.add_node(Sender::new(
        addr(1),
        addr(2),
        10,
        4,
        Some(Duration::from_secs(1)),
    ));
    let b = sim.add_node(Receiver::new(addr(2), 1));
    sim.connect(a, b, LinkConfig::default().loss(1.0), LinkConfig::default());
    let err = sim
        .run(Budget::virtual_time(Duration::from_secs(5)))
        .unwrap_err();
    assert_eq!(err.kind, SimErrorKind::TimeBudget);
    assert_eq!(
        err.elapsed,
        Duration::from_secs(5),
        "the last step within budget"
    );
}

/// Sets its timer before the instant it was given.
struct PastTimer {
    timer: Instant,
}

impl Node for PastTimer {
    fn addr(&self) -> SocketAddr {
        addr(1)
    }
    fn handle_datagram(&mut self, _: Instant, _: SocketAddr, _: &mut [u8]) {}
    fn poll_transmit(&mut self, _: Instant, _: &mut [u8]) -> Option<Transmit> {
        None
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.timer = Instant::from_micros(now.as_micros() - 1000);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.timer)
    }
}

#[test]
fn a_timer_in_the_past_breaks_an_invariant() {
    let mut sim = Sim::new(46);
    let id = sim.add_node(PastTimer {
        timer: Instant::ZERO,
    });
    let err = sim.run(Budget::default()).unwrap_err();
    let SimErrorKind::Invariant { node, message } = &err.kind else {
        panic!("{err}")
    };
    assert_eq!(*node, id);
    assert!(message.contains("1ms in the past"), "{err}");
}

/// A sink whose invariant breaks at the third datagram.
struct Grumpy(Sink);

impl Node for Grumpy {
    fn addr(&self) -> SocketAddr {
        self.0.addr()
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &mut [u8]) {
        self.0.handle_datagram(now, from, data);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.0.poll_transmit(now, buf)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn check_invariants(&self, _: Instant) -> Result<(), String> {
        if self.0.arrivals.len() >= 3 {
            Err("three is too many".into())
        } else {
            Ok(())
        }
    }
}

#[test]
fn a_node_invariant_stops_the_run_at_once() {
    let mut sim = Sim::new(47);
    let a = sim.add_node(crate::common::Blaster::new(addr(1), addr(2), 10, 1, ms(1)));
    let b = sim.add_node(Grumpy(Sink::new(addr(2))));
    sim.connect(a, b, LinkConfig::default(), LinkConfig::default());
    let err = sim.run(Budget::default()).unwrap_err();
    assert_eq!(
        err.kind,
        SimErrorKind::Invariant {
            node: b,
            message: "three is too many".into()
        }
    );
    assert_eq!(
        err.elapsed,
        ms(12),
        "the third datagram arrives at 2 + 10 ms"
    );
    assert!(
        err.to_string().contains("node 1: three is too many"),
        "{err}"
    );
}

#[test]
fn unroutable_datagrams_are_counted() {
    let mut sim = Sim::new(0);
    let transmits = [
        (addr(7), vec![1; 100], None),
        (addr(7), vec![2; 300], Some(100)),
    ];
    sim.add_node(OneShot {
        addr: addr(1),
        transmits: transmits.into(),
    });
    let report = drain(&mut sim).unwrap();
    assert_eq!(report.unroutable, 4);
}

#[test]
fn run_for_lets_idle_time_pass() {
    let mut sim = Sim::new(0);
    sim.add_node(Sink::new(addr(1)));
    let report = sim
        .run_for(Duration::from_secs(5), Budget::default())
        .unwrap();
    assert_eq!(report.elapsed, Duration::from_secs(5));
    assert_eq!(sim.now(), ferry_sim::DEFAULT_START + Duration::from_secs(5));
}

#[test]
fn check_seeds_names_the_failing_seed() {
    if std::env::var(ferry_sim::SEED_VAR).is_ok() {
        return; // Replaying one seed: this test is about the 0..n sweep.
    }
    let panic = std::panic::catch_unwind(|| {
        check_seeds(10, |seed| {
            if seed == 3 {
                Err("boom".into())
            } else {
                Ok(())
            }
        })
    })
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("seed 3 failed: boom"), "{message}");
    assert!(
        message.contains("replay with FERRY_SIM_SEED=3"),
        "{message}"
    );
}

#[test]
fn sub_seeds_are_stable_and_distinct() {
    use ferry_sim::sub_seed;
    assert_eq!(sub_seed(1, 2), sub_seed(1, 2));
    let all: std::collections::BTreeSet<u64> = (0..100)
        .flat_map(|s| (0..10).map(move |k| sub_seed(s, k)))
        .collect();
    assert_eq!(all.len(), 1000);
}

#[test]
fn measurement_helpers() {
    assert_eq!(jain(&[3.0, 3.0, 3.0]), 1.0);
    assert_eq!(jain(&[1.0, 0.0]), 0.5);
    assert_eq!(jain(&[]), 1.0);
    // 1460 B over 20 ms at 1 % loss: 584 kbit/s x sqrt(1.5) / 0.1 = 7.1525 Mbit/s.
    let m = mathis_bps(1460, ms(20), 0.01);
    assert!((m - 7_152_510.0).abs() < 1.0, "{m}");
    assert_eq!(
        ferry_sim::goodput_bps(1_000_000, Duration::from_secs(2)),
        4e6
    );
    let mut meter = Meter::new();
    let t = |s: u64| Instant::from_micros(s * 1_000_000);
    meter.record(t(1), 100);
    meter.record(t(2), 1100);
    meter.record(t(2), 1200);
    meter.record(t(4), 2200);
    assert_eq!(meter.at(t(0)), 0);
    assert_eq!(meter.at(t(3)), 1200);
    assert_eq!(meter.bytes_between(t(1), t(4)), 2100);
    assert_eq!(meter.rate_bps(t(2), t(4)), 4000.0);
}

#[test]
fn the_trace_sees_every_datagram_the_stats_count() {
    use ferry_sim::{DropReason, Fault, TraceKind};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;
    let mut sim = Sim::new(12);
    let blaster =
        crate::common::Blaster::new(addr(1), addr(2), 2000, 10, ms(1)).sizes(&[1200, 1500]);
    let a = sim.add_node(blaster);
    let b = sim.add_node(Sink::new(addr(2)));
    let link = LinkConfig::default().loss(0.1).rate(30_000_000, 20_000);
    let pair = sim.connect(a, b, link, LinkConfig::default());
    sim.fault(
        pair.ab,
        Fault::DropWindow {
            from: ms(50),
            to: ms(60),
        },
    );
    let counts: Rc<RefCell<BTreeMap<String, u64>>> = Rc::default();
    let sink_counts = counts.clone();
    sim.set_trace(move |e| {
        assert_eq!((e.link, e.from, e.to), (pair.ab, a, b));
        *sink_counts
            .borrow_mut()
            .entry(format!("{:?}", e.kind))
            .or_default() += 1;
    });
    drain(&mut sim).unwrap();
    let counts = counts.borrow();
    let get = |k: TraceKind| counts.get(&format!("{k:?}")).copied().unwrap_or(0);
    let s = sim.stats(pair.ab);
    assert_eq!(get(TraceKind::Sent), s.sent);
    assert_eq!(get(TraceKind::Delivered), s.delivered);
    assert_eq!(get(TraceKind::Dropped(DropReason::Loss)), s.dropped_loss);
    assert_eq!(get(TraceKind::Dropped(DropReason::Queue)), s.dropped_queue);
    assert_eq!(get(TraceKind::Dropped(DropReason::Mtu)), s.dropped_mtu);
    assert_eq!(get(TraceKind::Dropped(DropReason::Fault)), s.dropped_fault);
    assert!(
        s.dropped_loss > 0 && s.dropped_queue > 0 && s.dropped_mtu > 0 && s.dropped_fault > 0,
        "{s:?}"
    );
    assert_eq!(
        s.sent,
        s.delivered + s.dropped_loss + s.dropped_queue + s.dropped_mtu + s.dropped_fault
    );
}
