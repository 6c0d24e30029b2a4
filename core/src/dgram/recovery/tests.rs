//! Tests of [`Recovery`](super::Recovery): loss detection, PTO, persistent congestion,
//! recovery periods, spurious losses, MTU probes, ACK validation, pacing.

use alloc::vec::Vec;
use core::time::Duration;

use super::{AckError, Outcome, Recovery, RecoveryConfig};
use crate::dgram::{CongestionControl, Space};
use crate::time::Instant;

fn at(ms: u64) -> Instant {
    Instant::from_micros(ms * 1000)
}

fn at_us(us: u64) -> Instant {
    Instant::from_micros(us)
}

fn new_reno() -> Recovery<u64> {
    let cfg = RecoveryConfig {
        cc: CongestionControl::NewReno,
        ..RecoveryConfig::default()
    };
    Recovery::new(&cfg, at(0))
}

/// Sends data packet `pn` of `size` bytes at `t` (its info is its number).
fn send(r: &mut Recovery<u64>, t: Instant, pn: u64, size: usize) {
    r.on_packet_sent(t, Space::Data, pn, size, true, false, pn);
    r.check_invariants().unwrap();
}

/// Acknowledges `ranges` (newest first) in the data space with no ACK delay.
fn ack(r: &mut Recovery<u64>, t: Instant, ranges: &[(u64, u64)]) -> Vec<(u64, Outcome)> {
    let mut out = Vec::new();
    r.on_ack_received(
        t,
        Space::Data,
        ranges.iter().map(|&(a, b)| a..=b),
        Duration::ZERO,
        true,
        &mut out,
    )
    .unwrap();
    r.check_invariants().unwrap();
    out
}

fn lost(out: &[(u64, Outcome)]) -> Vec<u64> {
    out.iter()
        .filter(|(_, o)| *o == Outcome::Lost)
        .map(|(pn, _)| *pn)
        .collect()
}

fn acked(out: &[(u64, Outcome)]) -> Vec<u64> {
    let mut v: Vec<u64> = out
        .iter()
        .filter(|(_, o)| *o == Outcome::Acked)
        .map(|(pn, _)| *pn)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn an_ack_of_an_unsent_or_skipped_packet_number_is_rejected_without_effect() {
    let mut r = new_reno();
    send(&mut r, at(0), 0, 1000);
    send(&mut r, at(1), 1, 1000);
    let mut out = Vec::new();
    let e = r.on_ack_received(
        at(50),
        Space::Data,
        [0..=2].into_iter(),
        Duration::ZERO,
        true,
        &mut out,
    );
    assert_eq!(e, Err(AckError::UnsentPacket));
    // Nothing sent in the handshake space.
    let e = r.on_ack_received(
        at(50),
        Space::Handshake,
        [0..=0].into_iter(),
        Duration::ZERO,
        true,
        &mut out,
    );
    assert_eq!(e, Err(AckError::UnsentPacket));
    assert!(out.is_empty());
    assert_eq!(r.bytes_in_flight(), 2000);
    assert!(!r.rtt().has_sample());
    // A skipped number (3) is never acceptable either.
    send(&mut r, at(2), 4, 1000);
    let e = r.on_ack_received(
        at(50),
        Space::Data,
        [3..=4].into_iter(),
        Duration::ZERO,
        true,
        &mut out,
    );
    assert_eq!(e, Err(AckError::UnsentPacket));
    assert_eq!(acked(&ack(&mut r, at(50), &[(4, 4), (0, 1)])), [0, 1, 4]);
    assert_eq!(r.bytes_in_flight(), 0);
    assert_eq!(r.timer(), None);
}

#[test]
fn packet_threshold_then_time_threshold_with_the_timer_value() {
    let mut r = new_reno();
    for pn in 0..5 {
        send(&mut r, at(pn), pn, 1000);
    }
    // ACK of 3 at 50 ms: RTT 47 ms, loss delay 9/8 × 47 = 52.875 ms.
    let out = ack(&mut r, at(50), &[(3, 3)]);
    assert_eq!(acked(&out), [3]);
    // 0 is three packets behind the largest acknowledged; 1 and 2 are not, nor old enough.
    assert_eq!(lost(&out), [0]);
    assert_eq!(r.rtt().latest(), at(47) - at(0));
    assert_eq!(r.timer(), Some(at_us(53_875)));
    let mut out = Vec::new();
    r.on_timeout(at_us(53_874), &mut out);
    assert!(out.is_empty(), "early timeout is a no-op");
    r.on_timeout(at_us(53_875), &mut out);
    assert_eq!(out, [(1, Outcome::Lost)]);
    assert_eq!(r.timer(), Some(at_us(54_875)));
    assert_eq!((r.stats().packets_lost, r.stats().bytes_lost), (2, 2000));
    assert_eq!(r.bytes_in_flight(), 2000);
    r.check_invariants().unwrap();
    // ACK of 4 at 54 ms: 2 is neither 3 packets behind nor older than 9/8 × 50 ms.
    let out = ack(&mut r, at(54), &[(4, 4)]);
    assert_eq!(acked(&out), [4]);
    assert!(lost(&out).is_empty());
}

#[test]
fn a_loss_time_with_a_fraction_of_a_microsecond_declares_the_loss_when_it_fires() {
    let mut r = new_reno();
    send(&mut r, at_us(0), 0, 1000);
    send(&mut r, at_us(1), 1, 1000);
    // RTT 47 001 µs: the loss delay, 9/8 of it, is 52 876.125 µs; the timer is armed at the
    // whole microsecond 52 876.
    let out = ack(&mut r, at_us(47_002), &[(1, 1)]);
    assert!(lost(&out).is_empty());
    assert_eq!(r.timer(), Some(at_us(52_876)));
    let mut out = Vec::new();
    r.on_timeout(at_us(52_876), &mut out);
    // Comparing the elapsed time with the unrounded delay declared nothing and re-armed the
    // timer at the same instant: the caller was woken at `now` forever (ferry-sim found it).
    assert_eq!(out, [(0, Outcome::Lost)]);
    assert!(r.timer().is_none_or(|t| t > at_us(52_876)));
}

#[test]
fn pto_backs_off_grants_probes_and_does_not_reduce_the_window() {
    let mut r = new_reno();
    let cwnd = r.cwnd();
    send(&mut r, at(0), 0, 1200);
    // Initial RTT 333 ms: PTO = 333 + 4 × 166.5 = 999 ms (no max_ack_delay before
    // confirmation).
    assert_eq!(r.pto_duration(Space::Data), Duration::from_millis(999));
    assert_eq!(r.timer(), Some(at(999)));
    let mut out = Vec::new();
    r.on_timeout(at(998), &mut out);
    assert_eq!(r.probes_pending(), 0);
    r.on_timeout(at(999), &mut out);
    assert!(out.is_empty());
    assert_eq!(
        (r.probes_pending(), r.stats().pto_count_total, r.cwnd()),
        (2, 1, cwnd)
    );
    // Probes may pass the window.
    assert!(r.can_send(1_000_000));
    assert_eq!(r.oldest_unacked(Space::Data), Some(&0));
    send(&mut r, at(999), 1, 1200);
    send(&mut r, at(999), 2, 1200);
    assert_eq!(r.probes_pending(), 0);
    assert!(!r.can_send(1_000_000));
    // Backoff: the next PTO is twice as long, counted from the last probe.
    assert_eq!(r.timer(), Some(at(999 + 1998)));
    r.on_timeout(at(2997), &mut out);
    assert_eq!(
        (r.probes_pending(), r.stats().pto_count_total, r.cwnd()),
        (2, 2, cwnd)
    );
    assert_eq!(r.timer(), Some(at(999 + 4 * 999)));
    // An ACK resets the backoff.
    send(&mut r, at(3000), 3, 1200);
    send(&mut r, at(3000), 4, 1200);
    let out = ack(&mut r, at(3100), &[(3, 4)]);
    assert_eq!(acked(&out), [3, 4]);
    assert_eq!(lost(&out), [0, 1, 2]);
    assert_eq!(r.timer(), None);
    send(&mut r, at(3200), 5, 1200);
    assert_eq!(r.timer(), Some(at(3200) + r.pto_duration(Space::Data)));
    // The handshake space grants one probe.
    let mut r = new_reno();
    r.on_packet_sent(at(0), Space::Handshake, 0, 1200, true, false, 0);
    assert_eq!(r.timer(), Some(at(999)));
    r.on_timeout(at(999), &mut Vec::new());
    assert_eq!(r.probes_pending(), 1);
}

#[test]
fn ack_delay_is_capped_once_confirmed_and_ignored_for_handshake_packets() {
    let mut r = new_reno();
    send(&mut r, at(0), 0, 1000);
    send(&mut r, at(200), 1, 1000);
    r.on_packet_sent(at(200), Space::Handshake, 0, 1000, true, false, 100);
    let mut out = Vec::new();
    r.on_ack_received(
        at(100),
        Space::Data,
        [0..=0].into_iter(),
        Duration::ZERO,
        false,
        &mut out,
    )
    .unwrap();
    // 160 ms with a 100 ms reported delay, confirmed: the delay counts as 25 ms.
    r.on_ack_received(
        at(360),
        Space::Data,
        [1..=1].into_iter(),
        Duration::from_millis(100),
        true,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        r.rtt().smoothed(),
        (Duration::from_millis(100) * 7 + Duration::from_millis(135)) / 8
    );
    let srtt = r.rtt().smoothed();
    // Handshake space: the delay is ignored (sample 170 ms taken whole).
    r.on_ack_received(
        at(370),
        Space::Handshake,
        [0..=0].into_iter(),
        Duration::from_millis(40),
        true,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        r.rtt().smoothed(),
        (srtt * 7 + Duration::from_millis(170)) / 8
    );
    // Confirmed: the data-space PTO includes max_ack_delay.
    assert_eq!(
        r.pto_duration(Space::Data),
        r.pto_duration(Space::Handshake) + Duration::from_millis(25)
    );
}

#[test]
fn persistent_congestion_resets_the_window_to_the_minimum() {
    for (gap_ms, persistent) in [(100, true), (60, false)] {
        let mut r = new_reno();
        send(&mut r, at(0), 0, 800);
        ack(&mut r, at(100), &[(0, 0)]);
        // After the second sample: srtt 100, rttvar 37.5: (100 + 150 + 25) × 3 = 825 ms.
        for pn in 1..=13 {
            send(&mut r, at(100 + gap_ms * pn), pn, 800);
        }
        let last = 100 + gap_ms * 14;
        send(&mut r, at(last), 14, 800);
        let out = ack(&mut r, at(last + 100), &[(14, 14)]);
        assert_eq!(lost(&out), (1..=13).collect::<Vec<u64>>());
        // Span of the run: 12 × gap (1200 ms > 825, or 720 ms < 825).
        assert_eq!(
            r.stats().persistent_congestion,
            u64::from(persistent),
            "gap {gap_ms}"
        );
        assert_eq!(r.stats().congestion_events, 1);
        let expected = if persistent { 2 * 1200 } else { 6000 + 800 };
        assert_eq!(r.cwnd(), expected, "gap {gap_ms}");
    }
}

#[test]
fn persistent_congestion_needs_packets_sent_after_the_first_rtt_sample() {
    let mut r = new_reno();
    for pn in 0..=13 {
        send(&mut r, at(100 * pn), pn, 800);
    }
    let out = ack(&mut r, at(1500), &[(13, 13)]);
    assert_eq!(lost(&out).len(), 13);
    assert_eq!(r.stats().persistent_congestion, 0);
    assert_eq!(r.cwnd(), 6400);
}

#[test]
fn one_congestion_event_per_recovery_period() {
    let mut r = new_reno();
    for pn in 0..10 {
        send(&mut r, at(pn), pn, 1000);
    }
    ack(&mut r, at(100), &[(0, 0)]);
    // 1 and 2 lost by packet threshold at 110 ms: the recovery period starts; the window
    // (12 000 + 3 × 1000 acknowledged in slow start) halves.
    let out = ack(&mut r, at(110), &[(4, 5)]);
    assert_eq!(lost(&out), [1, 2]);
    assert_eq!((r.stats().congestion_events, r.cwnd()), (1, 7500));
    // 3 and 6 were sent before the recovery started: no second reduction (and the ACKs of
    // packets sent before it do not grow the window).
    let out = ack(&mut r, at(111), &[(9, 9), (7, 7)]);
    assert_eq!(lost(&out), [3, 6]);
    assert_eq!((r.stats().congestion_events, r.cwnd()), (1, 7500));
    assert_eq!(r.stats().packets_lost, 4);
    // A loss of a packet sent after the start of recovery: a new event.
    for pn in 10..15 {
        send(&mut r, at(110 + pn), pn, 1000);
    }
    let out = ack(&mut r, at(200), &[(13, 14)]);
    assert_eq!(lost(&out), [8, 10, 11]);
    assert_eq!((r.stats().congestion_events, r.cwnd()), (2, 3750));
}

#[test]
fn spurious_losses_are_counted_and_not_returned_again() {
    let mut r = new_reno();
    for pn in 0..5 {
        send(&mut r, at(pn), pn, 1000);
    }
    let out = ack(&mut r, at(50), &[(4, 4)]);
    assert_eq!(lost(&out), [0, 1]);
    // The "lost" packets were only late.
    let out = ack(&mut r, at(52), &[(4, 4), (0, 1)]);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        (r.stats().spurious_losses, r.stats().spurious_bytes),
        (2, 2000)
    );
    // A repeated ACK counts them once.
    ack(&mut r, at(53), &[(4, 4), (0, 1)]);
    assert_eq!(r.stats().spurious_losses, 2);
}

#[test]
fn a_lost_mtu_probe_is_reported_but_is_not_a_congestion_signal() {
    for mtu_probe in [true, false] {
        let mut r = new_reno();
        r.on_packet_sent(at(0), Space::Data, 0, 1452, true, mtu_probe, 0);
        for pn in 1..4 {
            send(&mut r, at(pn), pn, 1200);
        }
        let out = ack(&mut r, at(50), &[(1, 3)]);
        assert_eq!(lost(&out), [0]);
        assert_eq!(r.stats().packets_lost, 1);
        let (events, cwnd) = if mtu_probe {
            (0, 12_000 + 3 * 1200)
        } else {
            (1, (12_000 + 3 * 1200) / 2)
        };
        assert_eq!(
            (r.stats().congestion_events, r.cwnd()),
            (events, cwnd),
            "mtu_probe {mtu_probe}"
        );
    }
}

#[test]
fn an_mtu_probe_may_pass_the_window_once_but_ordinary_packets_may_not() {
    let mut r = new_reno();
    for pn in 0..10 {
        send(&mut r, at(0), pn, 1200);
    }
    assert!(!r.can_send(1));
    r.on_packet_sent(at(0), Space::Data, 10, 1452, true, true, 10);
    r.check_invariants().unwrap();
    r.on_packet_sent(at(0), Space::Data, 11, 1200, true, false, 11);
    assert!(r.check_invariants().is_err());
}

#[test]
fn discarding_the_handshake_space_forgets_its_packets_without_a_congestion_signal() {
    let mut r = new_reno();
    r.on_packet_sent(at(0), Space::Handshake, 0, 1200, true, false, 100);
    r.on_packet_sent(at(1), Space::Handshake, 1, 1200, true, false, 101);
    send(&mut r, at(2), 0, 1000);
    assert_eq!(r.bytes_in_flight(), 3400);
    assert_eq!(r.timer(), Some(at(1000)));
    r.discard_space(Space::Handshake);
    r.check_invariants().unwrap();
    assert_eq!(
        (r.bytes_in_flight(), r.in_flight_packets(Space::Handshake)),
        (1000, 0)
    );
    assert_eq!(r.in_flight_packets(Space::Data), 1);
    assert_eq!(r.timer(), Some(at(1001)));
    assert_eq!(
        (
            r.stats().packets_lost,
            r.stats().congestion_events,
            r.cwnd()
        ),
        (0, 0, 12_000)
    );
}

#[test]
fn non_ack_eliciting_packets_are_not_in_flight_and_give_no_rtt_sample() {
    let mut r = new_reno();
    r.on_packet_sent(at(0), Space::Data, 0, 50, false, false, 0);
    assert_eq!((r.bytes_in_flight(), r.timer()), (0, None));
    let out = ack(&mut r, at(30), &[(0, 0)]);
    assert_eq!(acked(&out), [0]);
    assert!(!r.rtt().has_sample());
    assert_eq!(r.stats().packets_sent, 1);
}

#[test]
fn window_growth_stops_while_application_limited() {
    let mut r = new_reno();
    r.set_app_limited(true, false);
    send(&mut r, at(0), 0, 1200);
    ack(&mut r, at(50), &[(0, 0)]);
    assert_eq!(r.cwnd(), 12_000);
    r.set_app_limited(false, false);
    send(&mut r, at(60), 1, 1200);
    ack(&mut r, at(110), &[(1, 1)]);
    assert_eq!(r.cwnd(), 13_200);
}

#[test]
fn pacing_uses_the_initial_rtt_then_the_window_over_srtt() {
    let mut r = new_reno();
    // 1.25 × 12 000 / 0.333 s = 45 045 B/s; burst floor 10 datagrams.
    for pn in 0..10 {
        assert_eq!(r.pacing_delay(at(0), 1200), None);
        send(&mut r, at(0), pn, 1200);
    }
    // 1200 bytes at 45 045 B/s: 26 640.03 µs, rounded up.
    assert_eq!(r.pacing_delay(at(0), 1200), Some(at_us(26_641)));
    assert_eq!(r.pacing_delay(at_us(26_641), 1200), None);
    // After a 30 ms sample and 10 acknowledged packets: 1.25 × 24 000 / 0.03 = 1 MB/s, so
    // at most the 10-datagram burst leaves at once, then one datagram per 1.2 ms.
    let out = ack(&mut r, at(30), &[(0, 9)]);
    assert_eq!(acked(&out).len(), 10);
    assert_eq!(r.cwnd(), 24_000);
    let mut sent = 0;
    let wait = loop {
        match r.pacing_delay(at(30), 1200) {
            None => send(&mut r, at(30), 10 + sent, 1200),
            Some(t) => break t,
        }
        sent += 1;
        assert!(sent <= 10, "the burst is bounded");
    };
    assert!(
        wait > at(30) && wait <= at(30) + Duration::from_micros(1200),
        "{wait:?}"
    );
}

#[test]
fn ack_only_packets_never_acknowledged_are_forgotten_after_three_ptos() {
    let mut r = new_reno();
    for pn in 0..1000 {
        r.on_packet_sent(at(10 * pn), Space::Data, pn, 50, false, false, pn);
    }
    r.check_invariants().unwrap();
    // 3 × 999 ms at one packet per 10 ms: about 300 remembered.
    assert!(r.spaces[1].sent.len() <= 301, "{}", r.spaces[1].sent.len());
    assert_eq!((r.bytes_in_flight(), r.timer()), (0, None));
    // An ACK of a forgotten one is a duplicate, not an error.
    let out = ack(&mut r, at(10_000), &[(999, 999), (0, 5)]);
    assert_eq!(acked(&out), [999]);
}

#[test]
fn forgetting_the_ack_only_packet_a_loss_time_waits_for_disarms_it() {
    // Found by the dgram_session fuzz target: a closing connection still sends (CLOSE) but no
    // longer runs the loss timer, so the packet the timer waited for aged out under it.
    let mut r = new_reno();
    r.on_packet_sent(at(0), Space::Data, 0, 50, false, false, 0);
    send(&mut r, at(1), 1, 1000);
    ack(&mut r, at(100), &[(1, 1)]);
    assert!(r.spaces[1].loss_time.is_some(), "armed for packet 0");
    // No `on_timeout`; long after 3 PTOs another ACK-only packet leaves and packet 0 goes.
    r.on_packet_sent(at(5_000), Space::Data, 2, 50, false, false, 2);
    assert!(!r.spaces[1].sent.contains_key(&0));
    r.check_invariants().unwrap();
    assert_eq!(r.timer(), None);
}

/// A controller that records the delivery-rate samples it gets (fixed window).
#[derive(Debug)]
struct Recorder(alloc::sync::Arc<core::sync::atomic::AtomicU64>);

impl super::Controller for Recorder {
    fn on_sent(&mut self, _: Instant, _: u64, _: u64) {}
    fn on_ack(
        &mut self,
        _: Instant,
        _: Instant,
        _: u64,
        _: bool,
        _: &super::RttEstimator,
        sample: Option<&super::DeliverySample>,
    ) {
        if let Some(s) = sample {
            // Rate in the low bits, the app-limited mark in the top bit.
            let v = s.delivery_rate | (u64::from(s.is_app_limited) << 63);
            self.0.store(v, core::sync::atomic::Ordering::Relaxed);
        }
    }
    fn on_congestion_event(&mut self, _: Instant, _: Instant, _: bool, _: u64) {}
    fn on_mtu_update(&mut self, _: u16) {}
    fn window(&self) -> u64 {
        1_000_000
    }
    fn pacing_rate(&self, _: &super::RttEstimator) -> Option<u64> {
        None
    }
    fn initial_window(&self) -> u64 {
        1_000_000
    }
}

#[test]
fn delivery_rate_samples_span_the_longer_of_the_send_and_ack_phases_and_mark_app_limited() {
    use core::sync::atomic::Ordering;
    let seen = alloc::sync::Arc::new(core::sync::atomic::AtomicU64::new(u64::MAX));
    let mut r = new_reno();
    r.cc = alloc::boxed::Box::new(Recorder(seen.clone()));
    let mut pn = 0;
    for round in 0..3u64 {
        if round == 2 {
            r.set_app_limited(true, false);
        }
        // Ten packets over 9 ms, all acknowledged 100 ms after the first: 10 kB in 100 ms.
        let start = 100 * round;
        for i in 0..10 {
            send(&mut r, at(start + i), pn, 1000);
            pn += 1;
        }
        ack(&mut r, at(start + 100), &[(pn - 10, pn - 1)]);
        let v = seen.load(Ordering::Relaxed);
        assert_eq!(v & !(1 << 63), 100_000, "round {round}");
        assert_eq!(v >> 63 == 1, round == 2, "round {round}");
    }
    // The app-limited mark clears once the data in flight at the time is delivered.
    r.set_app_limited(false, false);
    send(&mut r, at(300), pn, 1000);
    ack(&mut r, at(400), &[(pn, pn)]);
    assert_eq!(seen.load(Ordering::Relaxed) >> 63, 0);
}

#[test]
fn a_sender_held_by_flow_control_credit_is_not_app_limited_for_rate_samples() {
    // Marking these samples app-limited hid every round of a long lossy path from BBR's
    // full-pipe check (the receiver's credit lags while holes are repaired), so BBR never
    // left STARTUP and overflowed the bottleneck queue.
    use core::sync::atomic::Ordering;
    let seen = alloc::sync::Arc::new(core::sync::atomic::AtomicU64::new(u64::MAX));
    let mut r = new_reno();
    r.cc = alloc::boxed::Box::new(Recorder(seen.clone()));
    r.set_app_limited(true, true);
    for i in 0..10 {
        send(&mut r, at(i), i, 1000);
    }
    ack(&mut r, at(100), &[(0, 9)]);
    let v = seen.load(Ordering::Relaxed);
    assert_eq!(v & !(1 << 63), 100_000);
    assert_eq!(v >> 63, 0, "receiver-limited is not app-limited");
}
