//! In-memory session pair harness (feature `testing`; unstable, for tests and fuzzing).
//!
//! [`Pair`] runs a client and a server [`Session`] against each other over two [`Link`]s that
//! split, delay and coalesce bytes, on a virtual clock that jumps to the next thing due. Each
//! side is driven by a [`MemApp`], an in-memory file store that behaves like the disk layer
//! (atomic publish, resume from partials, GET, LIST), following the driving contract of the
//! crate docs exactly.

mod app;
pub mod bench;
pub mod dgram;
pub mod fuzz;
mod link;
mod replay;

use alloc::vec::Vec;
use core::time::Duration;

pub use app::{MemApp, Outcome};
pub use fuzz::{deflate_chunk, inflate_chunk};
pub use link::{Link, LinkConfig, TestRng};
pub use replay::{Replay, replay_server};

use crate::{Config, Instant, MAX_RECORD, Psk, Session, SessionError};

/// The virtual time a pair starts at.
pub const START: Instant = Instant::from_micros(1_000_000);

/// One end of a pair.
pub struct Side {
    /// The session.
    pub session: Session,
    /// Its application.
    pub app: MemApp,
    /// Bytes received and not yet consumed by the session.
    pub inbox: Vec<u8>,
    /// The first error `handle_input` returned, if any.
    pub error: Option<SessionError>,
    /// Largest inbox seen (to check that back-pressure bounds buffering).
    pub max_inbox: usize,
}

impl Side {
    fn new(session: Session, app: MemApp) -> Self {
        Side {
            session,
            app,
            inbox: Vec::new(),
            error: None,
            max_inbox: 0,
        }
    }
}

/// A client and a server joined by two links.
pub struct Pair {
    /// Virtual time.
    pub now: Instant,
    /// The client end.
    pub client: Side,
    /// The server end.
    pub server: Side,
    /// Client to server.
    pub c2s: Link,
    /// Server to client.
    pub s2c: Link,
    /// The client session's seed.
    pub client_seed: [u8; 32],
    /// The server session's seed (replaying the client's recorded bytes into a server with
    /// this seed reproduces the session exactly).
    pub server_seed: [u8; 32],
    buf: Vec<u8>,
}

/// The key every harness session uses unless a test passes another.
pub fn test_psk() -> Psk {
    Psk::from_key_bytes(&[0x42; 32])
}

impl Pair {
    /// A pair with the given configs, apps, link behaviour and seed (sessions and links are
    /// seeded from it, so a run replays bit for bit).
    pub fn new(
        client_cfg: &Config,
        server_cfg: &Config,
        client_app: MemApp,
        server_app: MemApp,
        link: LinkConfig,
        seed: u64,
    ) -> Self {
        Self::with_psks(
            client_cfg,
            server_cfg,
            &test_psk(),
            &test_psk(),
            client_app,
            server_app,
            link,
            seed,
        )
    }

    /// As [`Pair::new`] with a PSK per side.
    #[allow(clippy::too_many_arguments)]
    pub fn with_psks(
        client_cfg: &Config,
        server_cfg: &Config,
        client_psk: &Psk,
        server_psk: &Psk,
        client_app: MemApp,
        server_app: MemApp,
        link: LinkConfig,
        seed: u64,
    ) -> Self {
        let mut rng = TestRng::new(seed);
        let now = START;
        let c_seed = rng.seed32();
        let s_seed = rng.seed32();
        assert_ne!(c_seed, s_seed, "two sessions must never share a seed");
        let client = Session::client(client_cfg, client_psk, c_seed, now);
        let server = Session::server(server_cfg, server_psk, s_seed, now);
        Pair {
            now,
            client: Side::new(client, client_app),
            server: Side::new(server, server_app),
            c2s: Link::new(link, rng.next_u64()),
            s2c: Link::new(link, rng.next_u64()),
            client_seed: c_seed,
            server_seed: s_seed,
            buf: alloc::vec![0u8; MAX_RECORD],
        }
    }

    /// A default pair: default configs, default links.
    pub fn simple(client_app: MemApp, server_app: MemApp, seed: u64) -> Self {
        let cfg = Config::default();
        Self::new(
            &cfg,
            &cfg,
            client_app,
            server_app,
            LinkConfig::default(),
            seed,
        )
    }

    fn transmit(
        side: &mut Side,
        link: &mut Link,
        peer_inbox: usize,
        now: Instant,
        buf: &mut [u8],
    ) -> bool {
        let mut any = false;
        loop {
            // Like a full TCP send buffer: nothing leaves while the window is used up.
            if link.in_flight() + peer_inbox >= link.window() {
                return any;
            }
            let due = side.session.has_transmit();
            let polled = side.session.poll_transmit(now, buf);
            // The getter and the poll agree (a probe with an empty buffer is never needed).
            assert_eq!(
                due,
                polled != Ok(0),
                "has_transmit disagrees with poll_transmit"
            );
            match polled {
                Ok(0) => return any,
                Ok(n) => {
                    link.send(now, &buf[..n]);
                    any = true;
                }
                Err(e) => panic!("MAX_RECORD buffer was too small: {e}"),
            }
        }
    }

    fn input(side: &mut Side, now: Instant) -> bool {
        if side.inbox.is_empty() || side.error.is_some() {
            return false;
        }
        side.max_inbox = side.max_inbox.max(side.inbox.len());
        match side.session.handle_input(now, &mut side.inbox) {
            Ok(n) => {
                side.inbox.drain(..n);
                n > 0
            }
            Err(e) => {
                side.error = Some(e);
                side.inbox.clear();
                true
            }
        }
    }

    /// One round: apps act, sessions transmit, due bytes arrive, sessions consume, timers
    /// fire. Returns whether anything happened at this instant.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut any = false;
        any |= self.client.app.pump(&mut self.client.session);
        any |= self.server.app.pump(&mut self.server.session);
        let (ci, si) = (self.client.inbox.len(), self.server.inbox.len());
        any |= Self::transmit(&mut self.client, &mut self.c2s, si, now, &mut self.buf);
        any |= Self::transmit(&mut self.server, &mut self.s2c, ci, now, &mut self.buf);
        any |= self.c2s.deliver(now, &mut self.server.inbox);
        any |= self.s2c.deliver(now, &mut self.client.inbox);
        any |= Self::input(&mut self.client, now);
        any |= Self::input(&mut self.server, now);
        for side in [&mut self.client, &mut self.server] {
            if side.session.poll_timeout().is_some_and(|t| t <= now) {
                side.session.handle_timeout(now);
                any = true;
            }
        }
        any
    }

    /// The next instant anything is due (a link delivery or a session timer).
    pub fn next_due(&self) -> Option<Instant> {
        [
            self.c2s.next_due(),
            self.s2c.next_due(),
            self.client.session.poll_timeout(),
            self.server.session.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Run until both sessions are closed and the links are empty, or `max_steps` rounds.
    /// Returns whether it finished.
    pub fn drive_bounded(&mut self, max_steps: usize) -> bool {
        for _ in 0..max_steps {
            if self.finished() {
                // Let the apps see the last events (`Closed`).
                self.client.app.pump(&mut self.client.session);
                self.server.app.pump(&mut self.server.session);
                return true;
            }
            // A side whose input is blocked by back-pressure stays blocked until its app
            // reads; `step` pumps the apps first, so every round makes progress or waits.
            if !self.step() {
                match self.next_due() {
                    Some(t) if t > self.now => self.now = t,
                    Some(_) => {}
                    None => return self.finished(),
                }
            }
        }
        self.finished()
    }

    /// Step (advancing virtual time as needed) until `cond` holds; panics after `max_steps`
    /// rounds so a test that waits for something that never comes fails instead of hanging.
    pub fn drive_until(&mut self, max_steps: usize, mut cond: impl FnMut(&Pair) -> bool) {
        for _ in 0..max_steps {
            if cond(self) {
                return;
            }
            self.drive_bounded(1);
        }
        assert!(cond(self), "condition not reached in {max_steps} steps");
    }

    /// [`Pair::drive_bounded`] with a generous bound.
    pub fn drive(&mut self) -> bool {
        self.drive_bounded(1_000_000)
    }

    /// Both sessions closed and nothing in flight.
    pub fn finished(&self) -> bool {
        self.client.session.is_closed()
            && self.server.session.is_closed()
            && self.c2s.is_empty()
            && self.s2c.is_empty()
    }

    /// Advance virtual time by `d` without doing anything else.
    pub fn sleep(&mut self, d: Duration) {
        self.now = self.now + d;
    }
}
