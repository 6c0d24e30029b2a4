//! `Compression::Auto`'s rate gate: compress only while it makes the transfer faster.
//!
//! Whether deflate pays depends on the link as much as on the data: over 100 Mbit/s, text
//! compressed 4:1 moves four times faster; over loopback the compressor (a few hundred MB/s)
//! is slower than sending the bytes as they are. The core reads no clock and sees no socket,
//! but it sees how fast the adapter pulls DATA out of it: the adapter asks for records as fast
//! as the socket (or the peer's receive window, or the compressor itself) lets it, and passes
//! the time with every call. So the gate measures *goodput* (plaintext bytes handed out per
//! second) in windows, one mode at a time, and keeps the faster mode:
//!
//! 1. warm-up: one window without compression, not counted (it mostly fills socket buffers);
//! 2. two windows on, then up to twelve windows off; compress only if on was at least
//!    [`MARGIN`] faster. The "off" measurement ends after three windows if compression is
//!    already [`CLEAR_WIN`] faster (a slow link: uncompressed windows are what costs there);
//! 3. keep that mode for a number of windows (measuring it all along), then try the other mode
//!    and decide again; compression already on stays on while it is [`KEEP_MARGIN`] faster
//!    (a busy CPU slows the compressor: no flapping around one threshold). A new decision to
//!    compress is checked after [`FIRST_HOLD_ON`] windows and the hold doubles while it
//!    stands (up to [`MAX_HOLD`]); a decision not to compress is held [`MIN_HOLD`] windows
//!    (about a second), doubling while "off" stays [`CLEAR_LOSS`] faster than "on" (a fast
//!    link, where the compressor is the bottleneck and each compressed probe costs time),
//!    and only a few windows if "on" measured faster but not by the margin;
//!    but as soon as the chosen mode measures slower than the other did, probe at once (the
//!    first windows of a transfer often see only socket and router buffers filling, which
//!    makes sending uncompressed look as fast as memory; and a link that slows down shows
//!    as a slower "off").
//!
//! A window lasts at least [`WINDOW`] and [`WINDOW_BYTES`]; a pause longer than [`IDLE`] with
//! nothing to send (waiting for an accept, the application not writing) restarts it, so idle
//! time is never mistaken for a slow link. A pause with data waiting is the link itself (a
//! full socket buffer wakes its writer in bursts) and counts. Content still decides chunk by chunk (see
//! `CompressPolicy`): incompressible chunks are skipped even while the gate is open, so on
//! random data the two modes measure the same and the gate stays closed.

use core::time::Duration;

use crate::Instant;

/// Shortest measurement window.
pub(crate) const WINDOW: Duration = Duration::from_millis(25);
/// Least plaintext in a window.
pub(crate) const WINDOW_BYTES: u64 = 256 * 1024;
/// A gap between DATA chunks longer than this restarts the window.
pub(crate) const IDLE: Duration = Duration::from_millis(50);
/// Compression must be this much faster (goodput ratio) to be turned on: it costs CPU on both
/// ends, and short windows are noisy (a slow link makes it 3x faster or more).
pub(crate) const MARGIN: f64 = 2.0;
/// Compression already on stays on while it is this much faster: a busy CPU slows the
/// compressor, and over 100 Mbit/s 1.8x is still worth keeping (hysteresis: no flapping).
pub(crate) const KEEP_MARGIN: f64 = 1.25;
/// Compression at least this much faster ends a measurement of "off" early: three windows
/// of a link that slow say enough, and each uncompressed window costs time on it.
pub(crate) const CLEAR_WIN: f64 = 3.0;
/// "Off" at least this much faster than "on" is a fast link (the compressor is the
/// bottleneck): the hold before the next compressed probe doubles.
pub(crate) const CLEAR_LOSS: f64 = 1.5;
/// Windows a decision not to compress is held before the next probe (about a second); it
/// doubles while "off" stays clearly faster.
pub(crate) const MIN_HOLD: u32 = 40;
/// Windows a new decision to compress is held before it is checked; doubles while confirmed.
pub(crate) const FIRST_HOLD_ON: u32 = 40;
/// The cap of the doubling holds (10 to 20 s).
pub(crate) const MAX_HOLD: u32 = 640;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first window, not counted.
    WarmUp,
    /// Measuring compression on, then off (`done` windows so far), for the first decision.
    FirstOn {
        done: u32,
    },
    FirstOff {
        done: u32,
    },
    /// Using the chosen mode; `left` windows until the next probe.
    Hold {
        left: u32,
    },
    /// Measuring the other mode; `done` windows so far.
    Probe {
        done: u32,
    },
}

/// Most windows the first measurement of sending uncompressed spans (~300 ms), and a later
/// probe of it (~150 ms): short windows catch the receiver's disk flushing and make "off" look
/// slow, and on a fast link "off" is the cheap mode to measure at length. On a slow link the
/// measurement ends after [`EARLY_WINDOWS`] (see [`CLEAR_WIN`]). (A compressed probe is one
/// window: a stall then only keeps compression off, the cheap mistake.)
const FIRST_OFF_WINDOWS: u32 = 12;
/// See [`FIRST_OFF_WINDOWS`].
const OFF_WINDOWS: u32 = 6;
/// Windows the first measurement of compressing spans (a single window on a slow link is
/// noisy: socket buffers wake the writer in bursts, and a busy CPU delays the compressor);
/// one if that window was already [`CLEAR_LOSS`] slower than the warm-up.
const FIRST_ON_WINDOWS: u32 = 2;
/// Windows a decision not to compress is held when compression measured faster, but not by
/// [`MARGIN`].
const SHORT_HOLD: u32 = 4;
/// Windows of "off" measured before [`CLEAR_WIN`] may end the measurement.
const EARLY_WINDOWS: u32 = 2;
/// Weight of a new window in the running rate of the mode being held (a horizon of about
/// eight windows, so one stalled window moves it little).
const HOLD_WEIGHT: f64 = 1.0 / 8.0;

/// Chooses between compressing and not, from measured goodput (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct RateGate {
    phase: Phase,
    /// The chosen mode (during `Hold` and after a probe).
    chosen: bool,
    /// Goodput (bytes per second) last measured with compression off and on.
    rate_off: f64,
    rate_on: f64,
    hold: u32,
    window_start: Option<Instant>,
    window_bytes: u64,
    last_data: Option<Instant>,
    /// Bytes and seconds of the completed windows of a multi-window measurement.
    acc_bytes: u64,
    acc_secs: f64,
}

impl Default for RateGate {
    fn default() -> Self {
        RateGate {
            phase: Phase::WarmUp,
            chosen: false,
            rate_off: 0.0,
            rate_on: 0.0,
            hold: MIN_HOLD,
            window_start: None,
            window_bytes: 0,
            last_data: None,
            acc_bytes: 0,
            acc_secs: 0.0,
        }
    }
}

impl RateGate {
    /// Whether the next DATA chunk, sent at `now`, may be compressed. `backlogged`: data
    /// was already waiting when the previous chunk went out, so any pause since then was the
    /// link (or the peer) holding us back, which is exactly what the gate measures.
    pub(crate) fn compress(&mut self, now: Instant, backlogged: bool) -> bool {
        if !backlogged
            && self
                .last_data
                .is_some_and(|t| now.saturating_duration_since(t) > IDLE)
        {
            // The data paused: what the window measured so far says nothing about the link.
            self.window_start = None;
            self.window_bytes = 0;
        }
        if self.window_start.is_none() {
            self.window_start = Some(now);
        }
        self.mode()
    }

    /// A DATA chunk of `plain` bytes went out at `now` (after [`compress`](Self::compress)).
    pub(crate) fn sent(&mut self, now: Instant, plain: usize) {
        self.last_data = Some(now);
        self.window_bytes += plain as u64;
        let Some(start) = self.window_start else {
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < WINDOW || self.window_bytes < WINDOW_BYTES {
            return;
        }
        let measured_on = self.mode();
        self.acc_bytes += self.window_bytes;
        self.acc_secs += elapsed.as_secs_f64();
        self.window_start = None;
        self.window_bytes = 0;
        // A multi-window measurement of "off" goes on, unless compression already clearly
        // wins (a slow link: every uncompressed window there is expensive).
        // A second window of "on" only where "on" may win: not when it was already clearly
        // slower than the warm-up's "off" (a fast link, where every compressed window costs).
        if let Phase::FirstOn { done } = self.phase
            && done + 1 < FIRST_ON_WINDOWS
            && self.acc_bytes as f64 / self.acc_secs * CLEAR_LOSS > self.rate_off
        {
            self.phase = Phase::FirstOn { done: done + 1 };
            return;
        }
        let off_windows = match self.phase {
            Phase::FirstOff { done } => Some((done + 1, FIRST_OFF_WINDOWS)),
            Phase::Probe { done } if self.chosen => Some((done + 1, OFF_WINDOWS)),
            _ => None,
        };
        if let Some((done, most)) = off_windows {
            let so_far = self.acc_bytes as f64 / self.acc_secs;
            let clear = done >= EARLY_WINDOWS && self.rate_on > so_far * CLEAR_WIN;
            if done < most && !clear {
                self.phase = match self.phase {
                    Phase::FirstOff { .. } => Phase::FirstOff { done },
                    _ => Phase::Probe { done },
                };
                return;
            }
        }
        let rate = self.acc_bytes as f64 / self.acc_secs;
        self.acc_bytes = 0;
        self.acc_secs = 0.0;
        if self.phase == Phase::WarmUp {
            // Not counted: socket and router buffers filling (kept only as a hint for
            // the first measurement of "on", which replaces it).
            self.rate_off = rate;
            self.phase = Phase::FirstOn { done: 0 };
            return;
        }
        // While holding, smooth: one window that caught a stall (a disk flush at the other
        // end, a scheduling hiccup) must not trigger a probe on its own.
        let holding = matches!(self.phase, Phase::Hold { .. });
        let slot = if measured_on {
            &mut self.rate_on
        } else {
            &mut self.rate_off
        };
        *slot = if holding {
            *slot + (rate - *slot) * HOLD_WEIGHT
        } else {
            rate
        };
        self.phase = match self.phase {
            Phase::WarmUp => self.phase,
            Phase::FirstOn { .. } => Phase::FirstOff { done: 0 },
            Phase::Hold { left } => {
                // The chosen mode got slow enough that the other would win: the link changed
                // (or the first measurements only saw socket buffers filling). Probe now.
                // (The decision rule with the latest figures: the other mode's are from its
                // last probe.)
                if left > 1 && self.prefers_on() == self.chosen {
                    Phase::Hold { left: left - 1 }
                } else {
                    Phase::Probe { done: 0 }
                }
            }
            Phase::FirstOff { .. } | Phase::Probe { .. } => {
                let choose = self.prefers_on();
                // A new decision to compress is checked soon; a standing one backs off its
                // probes. Holding off, the probes stay about a second apart unless "off" is
                // clearly faster (a fast link: the compressor is the bottleneck, and every
                // compressed probe costs time there), while a wrong "off" on a slow one
                // (buffers that made sending uncompressed look fast) would cost a lot.
                let clearly_off = self.rate_off >= self.rate_on * CLEAR_LOSS;
                self.hold = match (self.chosen, choose) {
                    (true, true) => (self.hold * 2).min(MAX_HOLD),
                    (false, true) => FIRST_HOLD_ON,
                    (false, false) if clearly_off => (self.hold * 2).min(MAX_HOLD),
                    // Compression measured faster, only not by the margin: a noisy window
                    // on a slow link, or a link about as fast as the compressor. Look again
                    // soon (cheap there: "on" costs little more than "off").
                    (_, false) if self.rate_on > self.rate_off => SHORT_HOLD,
                    (_, false) => MIN_HOLD,
                };
                self.chosen = choose;
                Phase::Hold { left: self.hold }
            }
        };
    }

    /// The decision rule on the latest figures: turning compression on takes [`MARGIN`],
    /// keeping it on [`KEEP_MARGIN`].
    fn prefers_on(&self) -> bool {
        let margin = if self.chosen { KEEP_MARGIN } else { MARGIN };
        self.rate_on > self.rate_off * margin
    }

    /// The mode of the current window.
    fn mode(&self) -> bool {
        match self.phase {
            Phase::WarmUp | Phase::FirstOff { .. } => false,
            Phase::FirstOn { .. } => true,
            Phase::Hold { .. } => self.chosen,
            Phase::Probe { .. } => !self.chosen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A sender pushing `total` plaintext bytes in 64 KiB chunks through a link of
    /// `link` wire bytes/s, with a compressor of `deflate` plaintext bytes/s and ratio `ratio`
    /// (plaintext/wire) when compressing. Returns the seconds taken and the share of chunks
    /// compressed.
    fn run(total: u64, link: f64, deflate: f64, ratio: f64) -> (f64, f64) {
        let chunk = 65_536u64;
        let mut gate = RateGate::default();
        let mut t = 0.0f64;
        let mut sent = 0;
        let mut compressed = 0u64;
        let mut chunks = 0u64;
        while sent < total {
            let now = Instant::from_micros((t * 1e6) as u64);
            let on = gate.compress(now, true);
            // One chunk costs the slower of producing it and pushing it through the link.
            let cost = if on {
                compressed += 1;
                (chunk as f64 / deflate).max(chunk as f64 / ratio / link)
            } else {
                chunk as f64 / link
            };
            t += cost;
            gate.sent(Instant::from_micros((t * 1e6) as u64), chunk as usize);
            sent += chunk;
            chunks += 1;
        }
        (t, compressed as f64 / chunks as f64)
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn slow_link_compresses() {
        // 100 Mbit/s, compressor 200 MB/s, 4:1 text.
        let (t_auto, share) = run(256 * MIB, 12.5e6, 200e6, 4.0);
        let t_off = (256 * MIB) as f64 / 12.5e6;
        assert!(share > 0.9, "compressed {share}");
        assert!(t_off / t_auto > 3.5, "auto {t_auto} s, off {t_off} s");
    }

    #[test]
    fn fast_link_does_not_compress() {
        // Loopback at 1 GB/s, compressor 200 MB/s, 4:1 text: compressing would be 5x slower.
        let (t_auto, share) = run(1024 * MIB, 1e9, 200e6, 4.0);
        let t_off = (1024 * MIB) as f64 / 1e9;
        assert!(share < 0.05, "compressed {share}");
        assert!(t_off / t_auto > 0.95, "auto {t_auto} s, off {t_off} s");
    }

    #[test]
    fn stalls_on_a_fast_link_do_not_turn_compression_on() {
        // Loopback with a receiver whose disk stalls 60 ms every ~10 MB (writeback): whichever
        // mode a window catches the stall in looks slow for that window.
        let mut gate = RateGate::default();
        let chunk = 65_536usize;
        let (mut t, mut on_chunks, total) = (0.0f64, 0, 16_384);
        for i in 0..total {
            let on = gate.compress(Instant::from_micros((t * 1e6) as u64), true);
            t += if on {
                on_chunks += 1;
                chunk as f64 / 200e6
            } else {
                chunk as f64 / 1e9
            };
            if i % 150 == 149 {
                t += 0.060;
            }
            gate.sent(Instant::from_micros((t * 1e6) as u64), chunk);
        }
        let share = f64::from(on_chunks) / f64::from(total);
        assert!(share < 0.15, "compressed {share} of the chunks");
    }

    #[test]
    fn follows_a_link_that_changes() {
        let mut gate = RateGate::default();
        let chunk = 65_536usize;
        let mut t = 0.0f64;
        let mut step = |gate: &mut RateGate, link: f64| {
            let on = gate.compress(Instant::from_micros((t * 1e6) as u64), true);
            t += if on {
                (chunk as f64 / 200e6).max(chunk as f64 / 4.0 / link)
            } else {
                chunk as f64 / link
            };
            gate.sent(Instant::from_micros((t * 1e6) as u64), chunk);
            on
        };
        for _ in 0..20_000 {
            step(&mut gate, 1e9);
        }
        assert!(!step(&mut gate, 1e9), "fast link: off");
        // The link slows down: within a few holds the gate opens.
        let mut opened = false;
        for _ in 0..20_000 {
            opened = step(&mut gate, 12.5e6);
        }
        assert!(opened, "slow link: on");
    }

    /// A sender handing 64 KiB chunks to a link of `link` wire bytes/s behind a buffer of
    /// `buffer` bytes (socket buffers, a router queue) that takes data at once while it has
    /// room; a writer blocked on a full buffer is woken once `wake` bytes are free (0: as soon
    /// as the chunk fits). Compressing produces `deflate` plaintext bytes/s at `ratio`.
    struct BufferedLink {
        link: f64,
        buffer: f64,
        wake: f64,
        deflate: f64,
        ratio: f64,
        t: f64,
        queued: f64,
    }

    impl BufferedLink {
        const CHUNK: f64 = 65_536.0;

        fn new(link: f64, buffer: f64, wake: f64, deflate: f64, ratio: f64) -> Self {
            BufferedLink {
                link,
                buffer,
                wake,
                deflate,
                ratio,
                t: 0.0,
                queued: 0.0,
            }
        }

        fn now(&self) -> Instant {
            Instant::from_micros((self.t * 1e6) as u64)
        }

        /// Make one chunk and hand it over; `sent` sees the moment it was handed over, then
        /// the writer waits for room if the buffer is full.
        fn send(&mut self, on: bool, sent: impl FnOnce(Instant)) {
            let (work, wire) = if on {
                (Self::CHUNK / self.deflate, Self::CHUNK / self.ratio)
            } else {
                (Self::CHUNK / 4e9, Self::CHUNK)
            };
            // Producing the chunk takes `work`; meanwhile the link drains the queue.
            self.t += work;
            self.queued = (self.queued - work * self.link).max(0.0) + wire;
            sent(self.now());
            if self.queued > self.buffer {
                let wait = (self.queued - (self.buffer - self.wake)) / self.link;
                self.t += wait;
                self.queued -= wait * self.link;
            }
        }

        /// `chunks` chunks, compressed as `gate` says (always, without one). Returns the
        /// seconds until the last byte left and the share of chunks compressed.
        fn run(self, chunks: u64, gate: Option<RateGate>) -> (f64, f64) {
            let (t, modes) = self.run_traced(chunks, gate);
            let on = modes.iter().filter(|&&(_, on)| on).count();
            (t, on as f64 / chunks as f64)
        }

        /// [`run`](Self::run), with when each chunk was made and whether it was compressed.
        fn run_traced(
            mut self,
            chunks: u64,
            mut gate: Option<RateGate>,
        ) -> (f64, Vec<(f64, bool)>) {
            let mut modes = Vec::new();
            for _ in 0..chunks {
                let on = gate.as_mut().is_none_or(|g| g.compress(self.now(), true));
                modes.push((self.t, on));
                self.send(on, |now| {
                    if let Some(g) = &mut gate {
                        g.sent(now, Self::CHUNK as usize);
                    }
                });
            }
            (self.t + self.queued / self.link, modes)
        }
    }

    #[test]
    fn buffers_cost_at_most_their_size_uncompressed() {
        // 100 Mbit/s behind 4 MB of buffers (a socket buffer): uncompressed data looks free
        // until they fill, then the gate must notice the link and compress.
        let total = 256 * MIB;
        let link = || BufferedLink::new(12.5e6, 4e6, 0.0, 150e6, 3.5);
        let (t_auto, _) = link().run(total / 65_536, Some(RateGate::default()));
        let (t_on, _) = link().run(total / 65_536, None);
        // The price of measuring: the buffer's worth and the first ~300 ms sent uncompressed,
        // and the probes that check the decision (fewer and fewer).
        assert!(t_auto < t_on * 1.15, "auto {t_auto} s, always on {t_on} s");
        assert!(total as f64 / 12.5e6 / t_auto > 3.0, "auto {t_auto} s");
        // Without noticing, it would have sent everything uncompressed.
        assert!(t_auto * 2.0 < total as f64 / 12.5e6);
    }

    #[test]
    fn a_socket_that_wakes_its_writer_in_bursts_still_measures() {
        // 100 Mbit/s behind a 4 MB socket buffer that wakes the writer only once 1.3 MB are
        // free: ~100 ms pauses between bursts, longer than IDLE, with data waiting.
        let link = BufferedLink::new(12.5e6, 4e6, 1.3e6, 150e6, 3.5);
        let (_, share) = link.run(4096, Some(RateGate::default()));
        assert!(share > 0.8, "compressed {share} of the chunks");
    }

    #[test]
    fn idle_time_is_not_counted() {
        let mut gate = RateGate::default();
        let mut now = 0u64;
        // Bursts of 64 KiB at memory speed separated by long pauses: never a full window, so
        // the gate stays in its warm-up and never compresses.
        for _ in 0..100 {
            assert!(!gate.compress(Instant::from_micros(now), false));
            now += 10;
            gate.sent(Instant::from_micros(now), 65_536);
            now += 100_000;
        }
        assert_eq!(gate.phase, Phase::WarmUp);
    }

    /// `chunks` chunks of 64 KiB through a link of `link` wire bytes/s, compressed (when the
    /// gate says so) at `deflate(t)` plaintext bytes/s and `ratio`; no buffers. Returns the
    /// gate, the seconds taken, and when each chunk was made and whether it was compressed.
    fn drive(
        chunks: u64,
        link: f64,
        ratio: f64,
        deflate: impl Fn(f64) -> f64,
    ) -> (RateGate, f64, Vec<(f64, bool)>) {
        let chunk = 65_536.0;
        let mut gate = RateGate::default();
        let mut t = 0.0f64;
        let mut modes = Vec::new();
        for _ in 0..chunks {
            let on = gate.compress(Instant::from_micros((t * 1e6) as u64), true);
            modes.push((t, on));
            t += if on {
                (chunk / deflate(t)).max(chunk / ratio / link)
            } else {
                chunk / link
            };
            gate.sent(Instant::from_micros((t * 1e6) as u64), chunk as usize);
        }
        (gate, t, modes)
    }

    #[test]
    fn fast_link_probes_back_off() {
        // Loopback: ferry moves 400 MB/s uncompressed, the compressor 150 MB/s at 3.6:1. Every
        // compressed probe window costs time, so once "off" is clearly faster they back off:
        // over a long transfer the probes cost under 1 % (a probe a second cost ~1.5 %).
        let chunks = (4096 * MIB) / 65_536;
        let (gate, t_auto, modes) = drive(chunks, 400e6, 3.6, |_| 150e6);
        let t_off = (4096 * MIB) as f64 / 400e6;
        assert!(t_auto < t_off * 1.01, "auto {t_auto} s, off {t_off} s");
        assert!(!gate.chosen && !modes.last().is_some_and(|&(_, on)| on));
        // A 1 GiB transfer: under 5 %.
        let (_, t_auto, _) = drive(chunks / 4, 400e6, 3.6, |_| 150e6);
        assert!(t_auto < t_off / 4.0 * 1.05, "auto {t_auto} s");
    }

    #[test]
    fn slow_link_opens_within_a_second_and_stays_open() {
        // 100 Mbit/s behind a 4 MB socket buffer, compressor 150 MB/s at 3.6:1 (level 2 on
        // log text): the gate opens early (the "off" measurement ends as soon as compression
        // clearly wins) and stays open; its probes of "off" cost little.
        let total = 256 * MIB;
        let link = || BufferedLink::new(12.5e6, 4e6, 0.0, 150e6, 3.6);
        let (t_auto, modes) = link().run_traced(total / 65_536, Some(RateGate::default()));
        let (t_on, _) = link().run(total / 65_536, None);
        let opened = modes.iter().position(|&(_, on)| on).expect("opens");

        let open_at = modes[opened].0;
        assert!(open_at < 1.0, "opened at {open_at} s");
        // Apart from its first on window, uncompressed: the warm-up (the buffer's worth) and
        // at most a few windows of "off".
        let first_off = modes[opened..].iter().position(|&(_, on)| !on).unwrap_or(0) + opened;
        let hold_at = modes[first_off..]
            .iter()
            .position(|&(_, on)| on)
            .unwrap_or(0)
            + first_off;
        let decided_at = modes[hold_at].0;
        assert!(decided_at < 1.0, "compressing for good at {decided_at} s");
        let off_before = modes[..hold_at].iter().filter(|&&(_, on)| !on).count();
        assert!(
            off_before * 65_536 < 6_000_000,
            "{off_before} chunks uncompressed first"
        );
        let off_after = modes[hold_at..].iter().filter(|&&(_, on)| !on).count();
        assert!(
            off_after * 100 < modes.len(),
            "{off_after} chunks uncompressed later"
        );
        // The price: the buffer's worth sent uncompressed (~4 %) and the probes.
        assert!(t_auto < t_on * 1.08, "auto {t_auto} s, always on {t_on} s");
    }

    #[test]
    fn compression_stays_on_while_the_compressor_slows() {
        // 100 Mbit/s; after 2 s the CPU gets busy and the compressor drops from 150 to
        // 22 MB/s: still 1.76x faster than sending uncompressed, so compression stays on
        // (below the 2x needed to turn it on, above the 1.25x to keep it).
        let (gate, t, modes) = drive(256 * MIB / 65_536, 12.5e6, 3.6, |t| {
            if t < 2.0 { 150e6 } else { 22e6 }
        });
        let late: Vec<bool> = modes.iter().filter(|m| m.0 > 3.0).map(|m| m.1).collect();
        let on = late.iter().filter(|&&on| on).count();
        assert!(
            on * 100 > late.len() * 95,
            "{on} of {} compressed",
            late.len()
        );
        assert!(gate.chosen, "ends compressing");
        assert!(t < (256 * MIB) as f64 / 12.5e6 / 1.6, "{t} s");
    }

    #[test]
    fn a_slow_first_compressed_window_is_looked_at_again_soon() {
        // 100 Mbit/s, and the first compressed windows are slow (a busy CPU, a cold start):
        // 20 MB/s, faster than the link's 12.5 but not 2x. The gate stays off at first, but
        // looks again within a few windows, not a second later, and then compresses.
        let (gate, _, modes) = drive(64 * MIB / 65_536, 12.5e6, 3.6, |t| {
            if t < 0.1 { 20e6 } else { 150e6 }
        });
        assert!(gate.chosen);
        let first_on_for_good = modes
            .windows(40)
            .position(|w| w.iter().all(|&(_, on)| on))
            .map_or(f64::MAX, |i| modes[i].0);
        assert!(
            first_on_for_good < 0.6,
            "compressing for good at {first_on_for_good} s"
        );
    }

    #[test]
    fn fast_link_measures_compression_for_one_window() {
        // Loopback, 256 MiB (0.7 s): the one compressed window of the first measurement is
        // most of what auto costs there, so a second one is skipped (~2 % each).
        let (gate, t_auto, _) = drive(256 * MIB / 65_536, 400e6, 3.6, |_| 150e6);
        let t_off = (256 * MIB) as f64 / 400e6;
        assert!(t_auto < t_off * 1.03, "auto {t_auto} s, off {t_off} s");
        assert!(!gate.chosen);
    }
}
