//! Loss detection (RFC 9002 §6.1), persistent congestion (§7.6) and congestion signals of
//! [`Recovery`].

use alloc::vec::Vec;

use super::rtt::GRANULARITY;
use super::{
    LOST_MEMORY, LOST_MEMORY_PTOS, Outcome, PACKET_THRESHOLD, PERSISTENT_CONGESTION_THRESHOLD,
    Recovery, Space,
};
use crate::time::Instant;

impl<T> Recovery<T> {
    /// RFC 9002 §6.1: declares lost the outstanding packets below the largest acknowledged one
    /// that cross the packet or time threshold, arms `loss_time` for the others, and signals
    /// congestion.
    pub(super) fn detect_lost(&mut self, now: Instant, space: Space, out: &mut Vec<(T, Outcome)>) {
        let loss_delay = (self.rtt.latest().max(self.rtt.smoothed()) * 9 / 8).max(GRANULARITY);
        let st = &mut self.spaces[space.index()];
        st.loss_time = None;
        let Some(largest_acked) = st.largest_acked else {
            return;
        };
        let mut lost = Vec::new();
        for (&pn, p) in st.sent.range(..largest_acked) {
            // Compared as `loss_time` is armed below (Instant + Duration truncates to whole
            // microseconds), else a loss time at `now` fires without declaring anything.
            if p.time + loss_delay <= now || largest_acked >= pn + PACKET_THRESHOLD {
                lost.push(pn);
            } else {
                let t = p.time + loss_delay;
                st.loss_time = Some(st.loss_time.map_or(t, |l| l.min(t)));
            }
        }
        if lost.is_empty() {
            return;
        }
        let pc_duration =
            (self.rtt.pto_base() + self.max_ack_delay) * PERSISTENT_CONGESTION_THRESHOLD;
        let mut cc_bytes = 0;
        let mut newest_lost: Option<Instant> = None;
        let mut persistent = false;
        // Persistent congestion: a run of consecutive lost packets whose ack-eliciting ones
        // span more than `pc_duration`, all sent after the first RTT sample.
        let mut run: Option<(u64, Instant)> = None;
        for pn in lost {
            let Some(p) = self.spaces[space.index()].sent.remove(&pn) else {
                continue;
            };
            if p.ack_eliciting {
                let st = &mut self.spaces[space.index()];
                st.ack_eliciting_in_flight -= 1;
                st.lost.insert(pn, (p.size, now));
                self.bytes_in_flight -= p.size;
                self.stats.packets_lost += 1;
                self.stats.bytes_lost += p.size;
                if !p.mtu_probe {
                    cc_bytes += p.size;
                    newest_lost = Some(newest_lost.map_or(p.time, |t| t.max(p.time)));
                    if self.first_rtt_sample.is_some_and(|first| p.time > first) {
                        match run {
                            Some((prev, start)) if prev + 1 == pn => {
                                persistent |= p.time - start > pc_duration;
                                run = Some((pn, start));
                            }
                            _ => run = Some((pn, p.time)),
                        }
                    } else {
                        run = None;
                    }
                } else if let Some((prev, start)) = run {
                    run = (prev + 1 == pn).then_some((pn, start));
                }
            } else if let Some((prev, start)) = run {
                run = (prev + 1 == pn).then_some((pn, start));
            }
            out.push((p.info, Outcome::Lost));
        }
        if cc_bytes == 0 {
            return;
        }
        self.cc.on_loss(now, cc_bytes);
        let newest_lost = newest_lost.unwrap_or(now);
        let new_period = self.recovery_start.is_none_or(|start| newest_lost > start);
        if new_period {
            self.stats.congestion_events += 1;
            self.recovery_start = Some(now);
        }
        if persistent {
            self.stats.persistent_congestion += 1;
            self.recovery_start = None;
        }
        if new_period || persistent {
            self.cc
                .on_congestion_event(now, newest_lost, persistent, cc_bytes);
        }
    }

    /// Forgets lost packet numbers beyond the memory bounds.
    pub(super) fn prune_lost(&mut self, now: Instant) {
        let keep = self.rtt.pto_base() * LOST_MEMORY_PTOS;
        for st in &mut self.spaces {
            while st.lost.len() > LOST_MEMORY
                || st
                    .lost
                    .first_key_value()
                    .is_some_and(|(_, &(_, t))| now - t > keep)
            {
                st.lost.pop_first();
            }
        }
    }
}
