//! A deterministic in-memory harness for the application: two [`Conn`]s (real sessions, real
//! agents, [`MemStore`]s) joined by two [`Link`]s on a virtual clock, driven exactly as an
//! adapter drives a socket (input while `wants_input`, `step_at`, output into the link, the end
//! of the stream once the peer ended and everything it sent arrived). No wall clock, no
//! threads, no sleeping: a run with the same seed is the same run.

mod store;

use std::time::Duration;

use ferry_app::agent::{Agent, Job, Observer, Report};
use ferry_app::driver::{Conn, READ_CHUNK, Step};
use ferry_app::host::{Clock, RunError};
use proto::testing::{Link, LinkConfig, START, TestRng, test_psk};
use proto::{Config, Instant, Psk, Session};

pub use store::{MemStore, State, reader_file};

/// An observer that tells nobody (reports stay readable on the agent).
pub struct Quiet;

impl Observer for Quiet {}

/// A client agent on `store` running `job`.
pub fn client(store: &MemStore, job: Job) -> Agent {
    Agent::client(store.shared(), Box::new(Quiet), job)
}

/// A server agent on `store`.
pub fn server(store: &MemStore) -> Agent {
    Agent::server(store.shared(), Box::new(Quiet))
}

/// One end: its connection while it runs, its outcome once finished.
pub struct End {
    conn: Option<Conn>,
    outcome: Option<(Agent, Result<(), RunError>)>,
    /// Bytes the link delivered that the connection did not take yet (a socket's receive
    /// buffer).
    pub pending: Vec<u8>,
    /// The end of the stream was given to the connection.
    eof_given: bool,
    /// Neither stepped nor fed (a process that stopped reading and writing).
    pub paused: bool,
    /// Steps taken.
    pub steps: usize,
    /// Most bytes seen waiting in the connection's output at once.
    pub max_output: usize,
    /// Most bytes seen in `pending` at once.
    pub max_pending: usize,
}

impl End {
    fn new(conn: Conn) -> Self {
        End {
            conn: Some(conn),
            outcome: None,
            pending: Vec::new(),
            eof_given: false,
            paused: false,
            steps: 0,
            max_output: 0,
            max_pending: 0,
        }
    }

    /// The agent (running or finished).
    pub fn agent(&self) -> &Agent {
        match (&self.conn, &self.outcome) {
            (Some(c), _) => c.agent(),
            (None, Some((a, _))) => a,
            (None, None) => unreachable!("an end is running or finished"),
        }
    }

    /// Reports so far.
    pub fn reports(&self) -> &[Report] {
        self.agent().reports()
    }

    /// The running connection.
    pub fn conn(&mut self) -> Option<&mut Conn> {
        self.conn.as_mut()
    }

    /// The session (running only).
    pub fn session(&self) -> Option<&Session> {
        self.conn.as_ref().map(Conn::session)
    }

    /// Whether the connection finished.
    pub fn finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The outcome, once finished.
    pub fn result(&self) -> Option<&Result<(), RunError>> {
        self.outcome.as_ref().map(|(_, r)| r)
    }

    /// Finished successfully.
    pub fn ok(&self) -> bool {
        matches!(self.result(), Some(Ok(())))
    }
}

/// A client and a server connection joined by two links.
pub struct AppPair {
    /// Virtual time.
    pub now: Instant,
    /// The client end.
    pub client: End,
    /// The server end.
    pub server: End,
    /// Client to server.
    pub c2s: Link,
    /// Server to client.
    pub s2c: Link,
    link: LinkConfig,
    rng: TestRng,
    /// Rounds run so far.
    pub rounds: usize,
}

/// Rounds a [`AppPair::run`] may take before it gives up.
pub const MAX_ROUNDS: usize = 200_000;

impl AppPair {
    /// Default configs and links.
    pub fn new(client: Agent, server: Agent, seed: u64) -> Self {
        let cfg = Config::default();
        Self::with(&cfg, &cfg, LinkConfig::default(), client, server, seed)
    }

    /// Given configs and link behaviour; the sessions and links are seeded from `seed`.
    pub fn with(
        client_cfg: &Config,
        server_cfg: &Config,
        link: LinkConfig,
        client: Agent,
        server: Agent,
        seed: u64,
    ) -> Self {
        let keys = (test_psk(), test_psk());
        Self::with_keys(client_cfg, server_cfg, &keys, link, client, server, seed)
    }

    /// [`AppPair::with`] with a key per side (client's, server's).
    pub fn with_keys(
        client_cfg: &Config,
        server_cfg: &Config,
        (client_psk, server_psk): &(Psk, Psk),
        link: LinkConfig,
        client: Agent,
        server: Agent,
        seed: u64,
    ) -> Self {
        let mut rng = TestRng::new(seed);
        let c = Session::client(client_cfg, client_psk, rng.seed32(), START);
        let s = Session::server(server_cfg, server_psk, rng.seed32(), START);
        let c2s = Link::new(link, rng.next_u64());
        let s2c = Link::new(link, rng.next_u64());
        AppPair {
            now: START,
            // The clock is only read by `Conn::step`; the harness always steps at `now`.
            client: End::new(Conn::new(c, client, Clock::new())),
            server: End::new(Conn::new(s, server, Clock::new())),
            c2s,
            s2c,
            link,
            rng,
            rounds: 0,
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(START)
    }

    /// One end's turn at `now`: take delivered bytes, step, send output. Returns whether it
    /// did anything.
    fn turn(
        now: Instant,
        me: &mut End,
        inbound: &mut Link,
        outbound: &mut Link,
        peer: &End,
    ) -> bool {
        let mut any = inbound.deliver(now, &mut me.pending);
        me.max_pending = me.max_pending.max(me.pending.len());
        if me.paused {
            return any;
        }
        let Some(conn) = me.conn.as_mut() else {
            me.pending.clear();
            return any;
        };
        while conn.wants_input() && !me.pending.is_empty() {
            let n = me.pending.len().min(READ_CHUNK);
            conn.push_input(&me.pending[..n]);
            me.pending.drain(..n);
            any = true;
        }
        // The peer's side of the stream ended and everything it sent is in.
        if !me.eof_given && peer.conn.is_none() && inbound.is_empty() && me.pending.is_empty() {
            conn.end_of_input();
            me.eof_given = true;
            any = true;
        }
        let step = conn.step_at(now);
        me.steps += 1;
        me.max_output = me.max_output.max(conn.output().len());
        let ended = matches!(step, Step::Ended | Step::Refused);
        // A TCP window: nothing leaves while the link and the peer's buffer hold `window`
        // bytes; an ended connection's last records always go (the driver's linger).
        let room = outbound
            .window()
            .saturating_sub(outbound.in_flight() + peer.pending.len());
        let n = if ended {
            conn.output().len()
        } else {
            conn.output().len().min(room)
        };
        if n > 0 {
            outbound.send(now, &conn.output()[..n]);
            conn.output_sent(n);
            any = true;
        }
        if ended {
            let conn = me.conn.take().expect("running");
            me.outcome = Some(conn.finish(None));
            return true;
        }
        any | (step == Step::Busy)
    }

    /// One round at the current instant. Returns whether anything happened.
    pub fn round(&mut self) -> bool {
        self.rounds += 1;
        let now = self.now;
        let a = Self::turn(
            now,
            &mut self.client,
            &mut self.s2c,
            &mut self.c2s,
            &self.server,
        );
        let b = Self::turn(
            now,
            &mut self.server,
            &mut self.c2s,
            &mut self.s2c,
            &self.client,
        );
        a | b
    }

    /// The next instant something is due: a delivery or a running connection's timer.
    pub fn next_due(&self) -> Option<Instant> {
        let timers = [&self.client, &self.server]
            .into_iter()
            .filter(|e| !e.paused)
            .filter_map(|e| e.conn.as_ref().and_then(Conn::deadline));
        [self.c2s.next_due(), self.s2c.next_due()]
            .into_iter()
            .flatten()
            .chain(timers)
            .min()
    }

    /// A round, or, when nothing happened, a jump of virtual time to the next thing due.
    /// Returns false when nothing is left to happen.
    pub fn tick(&mut self) -> bool {
        if self.round() {
            return true;
        }
        match self.next_due() {
            Some(t) if t > self.now => {
                self.now = t;
                true
            }
            // Due now but nothing moved: give the timer a round of its own.
            Some(_) => self.round(),
            None => false,
        }
    }

    /// Run until both ends finished (or nothing is left to happen, or [`MAX_ROUNDS`]).
    /// Returns whether both finished.
    pub fn run(&mut self) -> bool {
        self.run_until(|p| p.client.finished() && p.server.finished());
        self.client.finished() && self.server.finished()
    }

    /// Run until `cond` holds; panics if it never does.
    pub fn run_until(&mut self, mut cond: impl FnMut(&AppPair) -> bool) {
        for _ in 0..MAX_ROUNDS {
            if cond(self) {
                return;
            }
            if !self.tick() {
                break;
            }
        }
        assert!(
            cond(self),
            "condition not reached (t = {:?})",
            self.elapsed()
        );
    }

    /// Run for `d` of virtual time (or until nothing is left to happen).
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        for _ in 0..MAX_ROUNDS {
            if self.now >= until {
                return;
            }
            if !self.round() {
                match self.next_due() {
                    Some(t) if t > self.now => self.now = t.min(until),
                    Some(_) => {}
                    None => self.now = until,
                }
            }
        }
    }

    /// Cut the connection: what is in flight is lost and both ends see their stream end.
    pub fn cut(&mut self) {
        self.c2s = Link::new(self.link, self.rng.next_u64());
        self.s2c = Link::new(self.link, self.rng.next_u64());
        for end in [&mut self.client, &mut self.server] {
            end.pending.clear();
            if let Some(conn) = end.conn.as_mut() {
                conn.end_of_input();
                end.eof_given = true;
            }
        }
    }

    /// Both ends' reports so far (client's, server's).
    pub fn reports(&self) -> (&[Report], &[Report]) {
        (self.client.reports(), self.server.reports())
    }
}
