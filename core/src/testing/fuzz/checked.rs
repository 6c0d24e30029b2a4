//! A session under test, driven by a [`MemApp`], with the session invariants checked after
//! every call.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use crate::record::stream::{TYPE_FINAL, TYPE_NORMAL};
use crate::testing::MemApp;
use crate::{Event, FileMeta, Instant, MAX_RECORD, ReadError, RequestError, Session, SessionError};

/// Most `poll_transmit` calls one drain may take before it is a hang.
const TRANSMIT_LIMIT: usize = 4096;

/// `FileEnd`s the peer sent, per file id: (size, hash). A `Verified` must match one of them.
pub(super) type FileEnds = BTreeMap<u32, Vec<(u64, [u8; 32])>>;

/// A session, its application and its unconsumed input, with the invariants checked.
pub(super) struct Checked {
    pub(super) s: Session,
    pub(super) app: MemApp,
    pub(super) now: Instant,
    pub(super) inbox: Vec<u8>,
    /// Give `handle_input` one record at a time (the application reacts between records, as
    /// it would live); otherwise everything waiting.
    pub(super) one_record: bool,
    /// Bytes of handshake input before the first record.
    handshake_in: usize,
    consumed: usize,
    recv_window: usize,
    error: Option<SessionError>,
    records_after_error: usize,
    log_seen: usize,
    closed_seen: bool,
    out: Vec<u8>,
}

impl Checked {
    /// `recv_window` as configured (the session clamps it to at least `MAX_RECORD`).
    pub(super) fn new(s: Session, app: MemApp, now: Instant, recv_window: usize) -> Self {
        let handshake_in = if s.is_client() { 2 + 91 } else { 8 + 2 + 75 };
        Checked {
            s,
            app,
            now,
            inbox: Vec::new(),
            one_record: true,
            handshake_in,
            consumed: 0,
            recv_window: recv_window.max(MAX_RECORD),
            error: None,
            records_after_error: 0,
            log_seen: 0,
            closed_seen: false,
            // Larger than any record: `poll_transmit` must still write at most MAX_RECORD.
            out: vec![0u8; MAX_RECORD + 4096],
        }
    }

    /// How much of the inbox to offer `handle_input` now.
    fn limit(&self) -> usize {
        let len = self.inbox.len();
        if !self.one_record {
            return len;
        }
        if self.consumed < self.handshake_in {
            return len.min(self.handshake_in - self.consumed);
        }
        if len < 4 {
            return len;
        }
        let body = u32::from_be_bytes([0, self.inbox[1], self.inbox[2], self.inbox[3]]) as usize;
        len.min(4 + body)
    }

    /// One `handle_input` call on what is waiting. Returns whether it consumed or failed.
    pub(super) fn input(&mut self) -> bool {
        if self.inbox.is_empty() {
            return false;
        }
        if let Some(e) = self.error {
            let r = self.s.handle_input(self.now, &mut self.inbox);
            assert_eq!(r, Err(e), "a fatal error did not stay fatal");
            self.inbox.clear();
            return false;
        }
        let limit = self.limit();
        let r = self.s.handle_input(self.now, &mut self.inbox[..limit]);
        let progress = match r {
            Ok(n) => {
                assert!(n <= limit, "handle_input consumed {n} of {limit} bytes");
                self.inbox.drain(..n);
                self.consumed += n;
                n > 0
            }
            Err(e) => {
                self.fail(e);
                self.inbox.clear();
                true
            }
        };
        self.observe();
        self.check_bounds();
        progress
    }

    /// Note an error a call returned: it must be the first one, or the same as before.
    fn fail(&mut self, e: SessionError) {
        match self.error {
            Some(first) => assert_eq!(e, first, "the fatal error changed"),
            None => self.error = Some(e),
        }
        assert_eq!(
            self.s.error(),
            Some(e),
            "returned error is not the session's error"
        );
        assert!(self.s.is_closed(), "failed session is not closed");
    }

    /// Pick up an error that surfaced without a return value (timers, `read` inside the app).
    fn observe(&mut self) {
        if let Some(e) = self.s.error() {
            match self.error {
                Some(first) => assert_eq!(e, first, "the fatal error changed"),
                None => self.error = Some(e),
            }
            assert!(self.s.is_closed(), "failed session is not closed");
        }
    }

    /// The application acts (reads, answers, writes) until nothing changes.
    pub(super) fn pump(&mut self, file_ends: Option<&FileEnds>) -> bool {
        let progress = self.app.pump(&mut self.s);
        self.observe();
        self.check_events(file_ends);
        self.check_bounds();
        progress
    }

    /// Drain `poll_transmit`; returns what it wrote, one entry per call.
    pub(super) fn transmit(&mut self) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        for _ in 0..TRANSMIT_LIMIT {
            match self.s.poll_transmit(self.now, &mut self.out) {
                Ok(0) => {
                    self.observe();
                    self.check_timer();
                    return sent;
                }
                Ok(n) => {
                    assert!(n <= MAX_RECORD, "poll_transmit wrote {n} bytes");
                    // Handshake bytes queued before the failure may still leave; of
                    // records, only the one carrying the error Close.
                    let record = matches!(self.out[0], TYPE_NORMAL | TYPE_FINAL);
                    if self.error.is_some() && record {
                        self.records_after_error += 1;
                        assert!(
                            self.records_after_error <= 1,
                            "more than one record after a fatal error"
                        );
                    }
                    sent.push(self.out[..n].to_vec());
                }
                Err(e) => panic!("poll_transmit with {} bytes: {e}", self.out.len()),
            }
            self.observe();
        }
        panic!("poll_transmit did not reach 0 in {TRANSMIT_LIMIT} calls");
    }

    /// Let `d` pass and fire what is due (an early call must be harmless).
    pub(super) fn advance(&mut self, d: Duration) {
        self.s.handle_timeout(self.now);
        self.now = self.now + d;
        self.s.handle_timeout(self.now);
        self.observe();
        self.check_bounds();
    }

    /// The transport ended.
    pub(super) fn eof(&mut self) {
        let r = self.s.handle_eof(self.now);
        match (self.error, r) {
            (Some(e), r) => assert_eq!(r, Err(e), "a fatal error did not stay fatal"),
            (None, Err(e)) => self.fail(e),
            (None, Ok(())) => {}
        }
        self.observe();
    }

    fn check_bounds(&self) {
        let queued = self.s._internal_recv_queued();
        assert!(
            queued <= self.recv_window,
            "receive window holds {queued} > {} bytes",
            self.recv_window
        );
        if let Some(t) = self.s.poll_timeout() {
            assert!(t >= self.now, "poll_timeout in the past");
        }
    }

    /// Once output is drained (the driving contract's step 1), an open session has a timer.
    /// Not before: a keep-alive that `handle_timeout` made due is output, not a timer, until
    /// `poll_transmit` takes it.
    fn check_timer(&self) {
        if self.s.poll_timeout().is_none() {
            assert!(self.s.is_closed(), "an open session has no timer");
        }
    }

    fn check_events(&mut self, file_ends: Option<&FileEnds>) {
        for ev in &self.app.log[self.log_seen..] {
            match ev {
                Event::Closed { result } => {
                    assert!(!self.closed_seen, "two Closed events");
                    self.closed_seen = true;
                    if let Err(e) = result {
                        assert_eq!(Some(*e), self.s.error(), "Closed carries another error");
                    }
                }
                // MemApp itself asserts that the bytes it read hash to `hash`.
                Event::Verified { id, size, hash } => {
                    if let Some(ends) = file_ends {
                        let sent = ends.get(&id.0).is_some_and(|v| v.contains(&(*size, *hash)));
                        assert!(sent, "Verified {id:?} without a matching FileEnd");
                    }
                }
                _ => {}
            }
        }
        self.log_seen = self.app.log.len();
    }

    /// How the session ended, for tests of the seeds.
    pub(super) fn outcome(self) -> super::Outcome {
        super::Outcome {
            error: self.error,
            closed: self.s.is_closed(),
            app: self.app,
        }
    }

    /// After a fatal error every entry point answers with it, and nothing new can start.
    pub(super) fn check_sticky(&mut self) {
        self.observe();
        let Some(e) = self.error else {
            return;
        };
        assert_eq!(self.s.error(), Some(e));
        assert!(self.s.is_closed() && !self.s.is_connected() && !self.s.wants_input());
        assert_eq!(self.s.handle_input(self.now, &mut []), Err(e));
        let mut junk = [0x17, 0, 0, 0x14, 1, 2, 3];
        assert_eq!(self.s.handle_input(self.now, &mut junk), Err(e));
        let mut buf = vec![0u8; crate::CHUNK];
        assert_eq!(self.s.read(&mut buf), Err(ReadError::Session(e)));
        assert_eq!(self.s.handle_eof(self.now), Err(e));
        assert_eq!(
            self.s.offer(FileMeta::new("x", Some(1))),
            Err(RequestError::NotOpen)
        );
        self.s.handle_timeout(self.now + Duration::from_secs(3600));
        assert_eq!(self.s.error(), Some(e));
        assert_eq!(self.s.poll_timeout(), None);
    }
}
