//! Every scripted fault hits exactly the datagrams it names.

use std::collections::BTreeSet;

use ferry_sim::{Action, Dir, Fault, LinkConfig, Sim};

use crate::common::{Blaster, Receiver, Sender, Sink, addr, blast, drain, ms};

/// 100 datagrams, one per millisecond (index k leaves at elapsed k ms), with `fault` on A→B.
fn run(fault: Fault) -> (Sim, ferry_sim::Pair) {
    let (mut sim, pair) = blast(
        0,
        Blaster::new(addr(1), addr(2), 100, 1, ms(1)),
        LinkConfig::default(),
    );
    sim.fault(pair.link(Dir::AtoB), fault);
    drain(&mut sim).unwrap();
    (sim, pair)
}

fn sink(sim: &Sim, pair: ferry_sim::Pair) -> &Sink {
    sim.node::<Sink>(pair.b)
}

#[test]
fn drop_nth() {
    let (sim, pair) = run(Fault::DropNth { n: 3 });
    assert_eq!(sink(&sim, pair).missing(100), [3]);
    assert_eq!(sim.stats(pair.ab).dropped_fault, 1);
    assert_eq!(sim.stats(pair.ba).sent, 0, "the fault is on A→B only");
}

#[test]
fn drop_range() {
    let (sim, pair) = run(Fault::DropRange { first: 5, count: 4 });
    assert_eq!(sink(&sim, pair).missing(100), [5, 6, 7, 8]);
}

#[test]
fn drop_window() {
    let (sim, pair) = run(Fault::DropWindow {
        from: ms(20),
        to: ms(30),
    });
    assert_eq!(sink(&sim, pair).missing(100), (20..30).collect::<Vec<_>>());
    assert_eq!(sim.stats(pair.ab).dropped_fault, 10);
}

#[test]
fn set_mtu() {
    let (sim, pair) = run(Fault::SetMtu {
        at: ms(50),
        mtu: 1000,
    });
    assert_eq!(sink(&sim, pair).missing(100), (50..100).collect::<Vec<_>>());
    assert_eq!(sim.stats(pair.ab).dropped_mtu, 50);
}

#[test]
fn duplicate_nth() {
    let (sim, pair) = run(Fault::DuplicateNth { n: 7 });
    let idx = sink(&sim, pair).indices();
    assert_eq!(idx.len(), 101);
    assert_eq!(idx.iter().filter(|&&i| i == 7).count(), 2);
    assert_eq!(sim.stats(pair.ab).duplicated, 1);
}

#[test]
fn delay_nth() {
    let (sim, pair) = run(Fault::DelayNth {
        n: 5,
        extra: ms(10),
    });
    let idx = sink(&sim, pair).indices();
    let mut want: Vec<u64> = (0..100).filter(|&i| i != 5).collect();
    // Sent at 5 ms, due with the one sent at 15 ms: scheduled first, so delivered just before.
    want.insert(want.iter().position(|&i| i == 15).unwrap(), 5);
    assert_eq!(idx, want);
    assert_eq!(sim.stats(pair.ab).reordered, 1);
}

#[test]
fn corrupt_nth() {
    let (sim, pair) = run(Fault::CorruptNth { n: 9 });
    let bad: Vec<usize> = sink(&sim, pair)
        .arrivals
        .iter()
        .enumerate()
        .filter(|(_, a)| a.index.is_none())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(bad, [9]);
    assert_eq!(sim.stats(pair.ab).corrupted, 1);
}

#[test]
fn drop_if_every_data_packet_once() {
    // "Drop every handshake packet once": here, the first copy of every data datagram. The
    // sender's retransmissions get through and the transfer completes.
    let mut sim = Sim::new(0);
    let a = sim.add_node(Sender::new(addr(1), addr(2), 50, 8, Some(ms(100))));
    let b = sim.add_node(Receiver::new(addr(2), 1));
    let pair = sim.connect(a, b, LinkConfig::default(), LinkConfig::default());
    let mut seen = BTreeSet::new();
    sim.fault(
        pair.ab,
        Fault::DropIf(Box::new(move |_, _, data| seen.insert(data[1..9].to_vec()))),
    );
    sim.run(ferry_sim::Budget::default()).unwrap();
    assert_eq!(sim.stats(pair.ab).dropped_fault, 50);
    assert_eq!(sim.node::<Sender>(a).retransmits, 50);
    assert_eq!(sim.node::<Receiver>(b).flows[&addr(1)].duplicates, 0);
}

#[test]
fn script_duplicates_reorders_corrupts_and_drops() {
    let (sim, pair) = run(Fault::Script(Box::new(|index, _, _| match index {
        10..15 => Action::Delay(ms(20)),
        20 => Action::Duplicate,
        30 => Action::Corrupt,
        40 => Action::Drop,
        _ => Action::Pass,
    })));
    let sink = sink(&sim, pair);
    let idx = sink.indices();
    // The delayed flight (sent at 10..15 ms) arrives with the datagrams sent at 30..35 ms,
    // each just before its partner; 30 itself is corrupted.
    let pos = |i| idx.iter().position(|&x| x == i).unwrap();
    assert!(pos(10) > pos(29) && pos(14) < pos(35));
    assert_eq!(idx.iter().filter(|&&i| i == 20).count(), 2);
    assert_eq!(
        sink.arrivals.iter().filter(|a| a.index.is_none()).count(),
        1
    );
    assert_eq!(sink.missing(100), [30, 40]);
    let s = sim.stats(pair.ab);
    assert_eq!(
        (s.reordered, s.duplicated, s.corrupted, s.dropped_fault),
        (5, 1, 1, 1)
    );
}
