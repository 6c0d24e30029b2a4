//! The receiver's view of one packet-number space: which packet numbers arrived (duplicate and
//! replay detection), which ranges to report in ACK frames, and when an ACK is owed
//! (RFC 9000 §13.2, `shared/research/udp.md` §4.4).
#![allow(dead_code)]

use core::ops::Range;
use core::time::Duration;

use super::ranges::RangeSet;
use crate::time::Instant;

/// Most ranges of received packet numbers kept. Beyond this, the oldest range is forgotten and
/// the replay floor rises past it: the window of packet numbers in which a late packet is
/// still accepted spans the newest `MAX_RANGES` ranges; anything older counts as a duplicate
/// (never applied twice; if it was a genuinely late first copy, the sender's loss detection
/// resends its frames).
pub(crate) const MAX_RANGES: usize = 64;

/// What [`AckTracker::on_packet`] made of a packet number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// First time seen: process the packet.
    New,
    /// Seen before, or below the replay floor: drop the packet without processing it.
    Duplicate,
}

/// Received packet numbers of one space and the ACK schedule.
#[derive(Debug, Clone)]
pub(crate) struct AckTracker {
    max_ack_delay: Duration,
    /// Ack-eliciting packets that make an ACK due at once (RFC 9000's default is 2).
    threshold: u64,
    /// Packet numbers received at or above `floor`.
    received: RangeSet,
    /// Replay floor: every packet number below it counts as a duplicate.
    floor: u64,
    /// Packet numbers below this are no longer reported (the peer has our ACK for them).
    report_floor: u64,
    /// Largest packet number received and when.
    largest: Option<(u64, Instant)>,
    /// Ack-eliciting packets received since the last ACK was sent.
    unacked_eliciting: u64,
    /// Arrival of the first of them.
    first_unacked: Option<Instant>,
    /// An ack-eliciting packet arrived out of order since the last ACK.
    out_of_order: bool,
}

impl AckTracker {
    /// A tracker that delays ACKs by at most `max_ack_delay`. With `Duration::ZERO` every
    /// ack-eliciting packet is acknowledged at once (the handshake space).
    /// Acknowledge at once only every `n`-th in-order ack-eliciting packet (at least 2): fewer
    /// ACKs on a fast path, where the delay timer and out-of-order arrivals still bound how
    /// late an ACK can be.
    pub(crate) fn with_threshold(mut self, n: u64) -> Self {
        self.threshold = n.max(2);
        self
    }

    pub(crate) fn new(max_ack_delay: Duration) -> Self {
        AckTracker {
            max_ack_delay,
            threshold: 2,
            received: RangeSet::new(),
            floor: 0,
            report_floor: 0,
            largest: None,
            unacked_eliciting: 0,
            first_unacked: None,
            out_of_order: false,
        }
    }

    /// Records the packet number of an authenticated packet. Call it for every datagram of a
    /// receive batch, then ask [`ack_due`](Self::ack_due).
    pub(crate) fn on_packet(&mut self, pn: u64, ack_eliciting: bool, now: Instant) -> Received {
        if pn < self.floor || !self.received.insert_one(pn) {
            return Received::Duplicate;
        }
        if pn < self.report_floor {
            // A late packet below what the peer knows we acknowledged: report it too, rather
            // than have the sender resend its frames.
            self.report_floor = pn;
        }
        let expected = self.largest.map_or(0, |(l, _)| l.saturating_add(1));
        if self.largest.is_none_or(|(l, _)| pn > l) {
            self.largest = Some((pn, now));
        }
        if ack_eliciting {
            if pn != expected {
                // A gap appeared, or this packet fills one: tell the sender at once.
                self.out_of_order = true;
            }
            self.unacked_eliciting += 1;
            self.first_unacked.get_or_insert(now);
        }
        while self.received.len() > MAX_RANGES {
            if let Some(oldest) = self.received.pop_min() {
                self.floor = oldest.end;
            }
        }
        Received::New
    }

    /// Whether an ACK frame is owed now: [`immediate`](Self::immediate), or the
    /// [`deadline`](Self::deadline) passed.
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.immediate() || self.deadline().is_some_and(|d| now >= d)
    }

    /// Delay ACKs at most `d` from now on (the connection shortens it on short paths, see
    /// `conn::recv`).
    pub(crate) fn set_max_delay(&mut self, d: Duration) {
        self.max_ack_delay = d;
    }

    /// When the delayed-ACK timer fires: `max_ack_delay` after the first ack-eliciting packet
    /// not yet acknowledged. None when only non-ack-eliciting packets (or none) are pending.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.first_unacked.map(|t| t + self.max_ack_delay)
    }

    /// Whether an ACK is owed without waiting: an ack-eliciting packet arrived out of order, or
    /// two or more ack-eliciting packets are unacknowledged.
    pub(crate) fn immediate(&self) -> bool {
        self.out_of_order || self.unacked_eliciting >= self.threshold
    }

    /// Whether there is anything to report in an ACK frame.
    pub(crate) fn has_ranges(&self) -> bool {
        self.received.max().is_some_and(|m| m >= self.report_floor)
    }

    /// The ranges to report in an ACK frame, newest first (the frame takes as many as fit).
    pub(crate) fn ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        let floor = self.report_floor;
        self.received
            .iter_rev()
            .map_while(move |r| (r.end > floor).then(|| r.start.max(floor)..r.end))
    }

    /// The largest packet number received and its arrival time (the ACK delay is measured
    /// from it).
    pub(crate) fn largest(&self) -> Option<(u64, Instant)> {
        self.largest
    }

    /// An ACK frame left (built from [`ranges`](Self::ranges)): nothing is owed any more.
    pub(crate) fn on_ack_sent(&mut self, _now: Instant) {
        self.unacked_eliciting = 0;
        self.first_unacked = None;
        self.out_of_order = false;
    }

    /// The peer acknowledged a packet carrying our ACK frame whose largest acknowledged was
    /// `largest_acked`: ranges below it are no longer reported (unless a late packet arrives
    /// below it). Duplicate detection still remembers them.
    pub(crate) fn on_ack_acked(&mut self, largest_acked: u64) {
        self.report_floor = self.report_floor.max(largest_acked);
    }

    /// The replay floor: packet numbers below it count as duplicates.
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    const DELAY: Duration = Duration::from_millis(25);

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    fn ranges(t: &AckTracker) -> Vec<Range<u64>> {
        t.ranges().collect()
    }

    #[test]
    fn every_second_ack_eliciting_packet_is_acked_at_once() {
        let mut t = AckTracker::new(DELAY);
        assert_eq!(t.on_packet(0, true, at(1)), Received::New);
        assert!(!t.immediate());
        assert!(!t.ack_due(at(1)));
        assert_eq!(t.deadline(), Some(at(26)));
        assert_eq!(t.on_packet(1, true, at(2)), Received::New);
        assert!(t.immediate() && t.ack_due(at(2)));
        assert_eq!(t.largest(), Some((1, at(2))));
        assert_eq!(ranges(&t), vec![0..2]);
        t.on_ack_sent(at(2));
        assert!(!t.ack_due(at(100)));
        assert_eq!(t.deadline(), None);
        assert!(t.has_ranges());
    }

    #[test]
    fn a_lone_packet_is_acked_after_max_ack_delay() {
        let mut t = AckTracker::new(DELAY);
        t.on_packet(0, true, at(10));
        assert!(!t.ack_due(at(34)));
        assert!(t.ack_due(at(35)));
        // A later packet does not push the timer back.
        t.on_packet(1, false, at(20));
        assert_eq!(t.deadline(), Some(at(35)));
        assert!(!t.immediate());
    }

    #[test]
    fn zero_delay_acks_every_packet_at_once() {
        let mut t = AckTracker::new(Duration::ZERO);
        t.on_packet(0, false, at(5));
        assert!(!t.ack_due(at(5)));
        t.on_packet(1, true, at(5));
        assert!(t.ack_due(at(5)) && !t.immediate());
    }

    #[test]
    fn non_ack_eliciting_packets_alone_are_never_acked() {
        let mut t = AckTracker::new(DELAY);
        for pn in [0, 1, 2, 5, 3] {
            assert_eq!(t.on_packet(pn, false, at(pn)), Received::New);
        }
        assert!(!t.ack_due(at(10_000)));
        assert_eq!(t.deadline(), None);
        assert_eq!(ranges(&t), [5..6, 0..4]);
    }

    #[test]
    fn a_gap_or_a_filled_gap_is_acked_at_once() {
        let mut t = AckTracker::new(DELAY);
        t.on_packet(0, true, at(0));
        t.on_ack_sent(at(0));
        t.on_packet(2, true, at(1)); // gap: 1 missing
        assert!(t.immediate() && t.ack_due(at(1)));
        assert_eq!(ranges(&t), [2..3, 0..1]);
        t.on_ack_sent(at(1));
        t.on_packet(1, true, at(2)); // fills the gap
        assert!(t.immediate());
        assert_eq!(ranges(&t), vec![0..3]);
        assert_eq!(t.largest(), Some((2, at(1))));
        t.on_ack_sent(at(2));
        t.on_packet(3, true, at(3)); // in order again
        assert!(!t.immediate());
        // The first packet of a space is expected to be 0.
        let mut t = AckTracker::new(DELAY);
        t.on_packet(1, true, at(0));
        assert!(t.immediate());
    }

    #[test]
    fn duplicates_and_replays_are_detected() {
        let mut t = AckTracker::new(DELAY);
        assert_eq!(t.on_packet(7, true, at(0)), Received::New);
        assert_eq!(t.on_packet(7, true, at(1)), Received::Duplicate);
        t.on_ack_sent(at(1));
        assert_eq!(t.on_packet(7, true, at(2)), Received::Duplicate);
        assert!(!t.ack_due(at(1000)), "a duplicate owes nothing");
        assert_eq!(t.on_packet(u64::MAX, true, at(3)), Received::Duplicate);
        // Acknowledged ACKs stop being reported but are still remembered.
        t.on_packet(8, true, at(3));
        t.on_packet(10, true, at(3));
        t.on_ack_acked(8);
        assert_eq!(ranges(&t), [10..11, 8..9]);
        t.on_ack_acked(11);
        assert!(!t.has_ranges());
        assert_eq!(ranges(&t), []);
        assert_eq!(t.on_packet(7, true, at(4)), Received::Duplicate);
        assert_eq!(t.on_packet(8, true, at(4)), Received::Duplicate);
        t.on_ack_acked(3); // never lowers the report floor
        assert!(!t.has_ranges());
        // A late packet below the report floor is reported (with what follows it).
        assert_eq!(t.on_packet(9, true, at(4)), Received::New);
        assert_eq!(ranges(&t), vec![9..11]);
    }

    #[test]
    fn the_oldest_ranges_are_dropped_and_become_the_replay_floor() {
        let mut t = AckTracker::new(DELAY);
        for i in 0..(MAX_RANGES as u64 + 10) {
            assert_eq!(t.on_packet(i * 2, true, at(i)), Received::New);
        }
        let r = ranges(&t);
        assert_eq!(r.len(), MAX_RANGES);
        assert_eq!(r.last(), Some(&(20..21)));
        assert_eq!(t.floor(), 19);
        assert_eq!(t.on_packet(17, true, at(100)), Received::Duplicate);
        assert_eq!(t.on_packet(18, true, at(100)), Received::Duplicate);
        assert_eq!(t.on_packet(19, true, at(100)), Received::New);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Under any packet-number pattern: no panic, at most `MAX_RANGES` ranges, every
        /// packet number is New at most once, and reported ranges are newest first and
        /// only cover packets that arrived.
        #[test]
        fn bounded_and_never_new_twice(
            pns in proptest::collection::vec(
                prop_oneof![0u64..300, any::<u64>(), (0u64..40).prop_map(|x| x * 7)], 0..400),
            acked in proptest::collection::vec((0usize..400, 0u64..300), 0..8),
        ) {
            let mut t = AckTracker::new(DELAY);
            let mut seen = BTreeSet::new();
            for (i, &pn) in pns.iter().enumerate() {
                let r = t.on_packet(pn, i % 3 != 0, at(i as u64));
                if r == Received::New {
                    prop_assert!(seen.insert(pn), "pn {} New twice", pn);
                }
                prop_assert!(t.received.len() <= MAX_RANGES);
                for &(when, n) in &acked {
                    if when == i {
                        t.on_ack_acked(n);
                    }
                }
                if i % 5 == 0 && t.ack_due(at(i as u64)) {
                    t.on_ack_sent(at(i as u64));
                }
                let rs: Vec<_> = t.ranges().collect();
                for w in rs.windows(2) {
                    prop_assert!(w[1].end < w[0].start);
                }
                for r in &rs {
                    prop_assert!(r.start < r.end);
                    prop_assert!(seen.contains(&r.start) && seen.contains(&(r.end - 1)));
                }
                prop_assert_eq!(t.has_ranges(), !rs.is_empty());
            }
        }
    }

    #[test]
    fn a_higher_threshold_acks_every_nth_in_order_packet() {
        let t0 = Instant::from_micros(1_000);
        let mut a = AckTracker::new(Duration::from_millis(25)).with_threshold(4);
        for pn in 0..3 {
            a.on_packet(pn, true, t0);
            assert!(!a.immediate(), "{pn}");
        }
        a.on_packet(3, true, t0);
        assert!(a.immediate());
        a.on_ack_sent(t0);
        // A gap still makes it due at once.
        a.on_packet(5, true, t0);
        assert!(a.immediate());
    }
}
