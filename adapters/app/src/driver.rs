//! The driver: the one loop body every adapter runs, over TCP today and datagrams next.
//!
//! A [`Conn`] owns everything of a connection but its socket: the [`Session`], its [`Agent`],
//! the clock, and bounded input and output buffers. An adapter keeps only its way of waiting
//! (a reader thread, a readiness loop, futures) and repeats:
//!
//! 1. put socket bytes in while [`Conn::wants_input`] ([`Conn::input_room`] +
//!    [`Conn::input_filled`], or [`Conn::push_input`]); report the end of the stream with
//!    [`Conn::end_of_input`] and a failed read with [`Conn::input_failed`];
//! 2. call [`Conn::step`]: it feeds the input to the session, fires due timers, lets the agent
//!    act (bounded file work) and gathers output;
//! 3. write [`Conn::output`] and report it with [`Conn::output_sent`];
//! 4. on [`Step::Busy`] go round again at once; on [`Step::Idle`] wait for the socket, for
//!    [`Conn::deadline`] or for a command ([`Conn::request_close`]); on [`Step::Ended`] flush
//!    the last records for at most [`LINGER`], then [`Conn::finish`].
//!
//! The edge cases are decided here, once:
//! - **End of stream**: once the input is drained and nothing moves, the session is told
//!   ([`Session::handle_eof`]: clean only after the peer's FINAL record); the connection ends
//!   when the session is closed or has no timer left to wait for.
//! - **Input errors** end the connection at the next step; the outcome is that I/O error.
//! - **Streams**: while the agent sends from a stream whose next read may block (standard
//!   input), a step ends as soon as it holds output, so what the stream gave goes out first.
//! - **Last records**: a closed session's FINAL (or error `Close`) is always gathered, even
//!   past [`OUTBOX_CAP`]; the adapter writes it within [`LINGER`] and then closes the socket.
//! - **Admission** (servers): a connection made with [`Conn::gated`] asks its pass once the
//!   client's first handshake message checked out; refused, the step returns
//!   [`Step::Refused`] and the adapter answers busy ([`crate::admission::refuse`]) and ends.
//! - **Outcome**: an I/O error first, else the session's error, else success; the agent is
//!   told ([`Agent::finish`]) so unfinished files are kept for resume, except after a busy
//!   refusal (nothing started: the caller may retry with the same agent).

mod buf;

use std::io;
use std::time::Duration;

use proto::{CloseCode, Instant, MAX_RECORD, Session};

use crate::admission::Pass;
use crate::agent::Agent;
use crate::host::{Clock, RunError};
use buf::Buf;

/// Input buffered per connection before reading pauses (the session's receive window is about
/// half of it).
pub const INBOX_CAP: usize = 8 * MAX_RECORD;
/// Output gathered per connection before a step stops asking the session for more.
pub const OUTBOX_CAP: usize = 8 * MAX_RECORD;
/// Bytes of room [`Conn::input_room`] offers per read at first, and again after a quiet spell
/// (a connection whose reads never fill it, a handshake or a trickle, never takes more).
pub const READ_CHUNK: usize = 64 * 1024;
/// The most room [`Conn::input_room`] offers: a read that fills its room doubles the next one
/// up to this, so a bulk transfer makes a quarter of the reads (each a syscall and a turn of
/// the loop).
pub const READ_CHUNK_MAX: usize = 4 * READ_CHUNK;
/// Headroom for [`Conn::push_input_owned`]: the incomplete record left in the input always
/// fits it.
pub const INPUT_HEADROOM: usize = MAX_RECORD;
/// Rounds of input → agent → output in one step before the adapter gets the connection back.
const ROUNDS: usize = 8;
/// How long an ended connection may take to flush its last records to a peer that stopped
/// reading.
pub const LINGER: Duration = Duration::from_secs(10);

/// How a step left the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It still had work when its rounds ran out: do I/O without waiting, then step again.
    Busy,
    /// Nothing more until the socket, the deadline or a command: do I/O and wait.
    Idle,
    /// The connection is over: flush the output (within [`LINGER`]), then [`Conn::finish`].
    Ended,
    /// The admission refused the authenticated client: answer busy, then [`Conn::finish`].
    Refused,
}

/// One connection's state but its socket. See the module docs.
pub struct Conn {
    session: Session,
    agent: Agent,
    clock: Clock,
    inbox: Buf,
    /// The room the next read gets (see [`READ_CHUNK_MAX`]).
    read_size: usize,
    outbox: Buf,
    eof: bool,
    input_error: Option<io::Error>,
    /// The application asked to close; applied by the next step.
    close_requested: bool,
    close_applied: bool,
    /// A server connection's admission: asked once the client's first handshake message
    /// checked out, then held (it frees the slot when the connection ends).
    pass: Option<Pass>,
    authenticated: bool,
}

impl Conn {
    /// A connection for `session` (made with `clock`'s time) and its agent.
    pub fn new(session: Session, agent: Agent, clock: Clock) -> Conn {
        Conn {
            session,
            agent,
            clock,
            inbox: Buf::default(),
            read_size: READ_CHUNK,
            outbox: Buf::default(),
            eof: false,
            input_error: None,
            close_requested: false,
            close_applied: false,
            pass: None,
            authenticated: false,
        }
    }

    /// A server connection under `pass` (see [`Pass::authenticate`]).
    pub fn gated(mut self, pass: Pass) -> Conn {
        self.pass = Some(pass);
        self
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The agent (reports so far, whether a client's job is done).
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Run the agent's disk work on `pool` (see [`Agent::use_commit_pool`]); `notify` must wake
    /// whoever steps this connection. Call before the first step.
    pub fn use_commit_pool(&mut self, pool: crate::pool::CommitPool, notify: crate::pool::Notify) {
        self.agent.use_commit_pool(pool, notify);
    }

    /// The clock this connection's times come from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    // ---- input ----------------------------------------------------------------------------

    /// Whether to read from the socket now: the stream has not ended, the inbox has room and
    /// the session takes input (back-pressure while the agent is behind).
    pub fn wants_input(&self) -> bool {
        !self.eof && self.inbox.len() < INBOX_CAP && self.session.wants_input()
    }

    /// Bytes of input buffered and not yet taken by the session.
    pub fn input_pending(&self) -> usize {
        self.inbox.len()
    }

    /// Room to read socket bytes into; report what was filled with [`Conn::input_filled`].
    pub fn input_room(&mut self) -> &mut [u8] {
        self.inbox.room(self.read_size)
    }

    /// `n` bytes of [`Conn::input_room`] were read from the socket.
    pub fn input_filled(&mut self, n: usize) {
        self.inbox.commit(n);
        if n >= self.read_size {
            self.read_size = (self.read_size * 2).min(READ_CHUNK_MAX);
        }
    }

    /// Bytes read from the socket elsewhere (a reader thread).
    pub fn push_input(&mut self, bytes: &[u8]) {
        self.inbox.room(bytes.len()).copy_from_slice(bytes);
        self.inbox.commit(bytes.len());
    }

    /// Bytes read from the socket elsewhere into `data[at..end]`, with `at` bytes of headroom
    /// in front (the reader thread's buffer): taken without copying when what is still buffered
    /// fits the headroom (see [`INPUT_HEADROOM`]). Returns a buffer for the next read.
    pub fn push_input_owned(&mut self, data: Vec<u8>, at: usize, end: usize) -> Vec<u8> {
        self.inbox.adopt(data, at, end)
    }

    /// The peer closed its side of the stream.
    pub fn end_of_input(&mut self) {
        self.eof = true;
    }

    /// Reading failed: the connection ends at the next step with this error.
    pub fn input_failed(&mut self, e: io::Error) {
        self.eof = true;
        self.input_error.get_or_insert(e);
    }

    /// Close the session (`CloseCode::Cancelled`) at the next step: transfers in flight fail,
    /// received partial files are kept for a resume.
    pub fn request_close(&mut self) {
        self.close_requested = true;
    }

    // ---- output ---------------------------------------------------------------------------

    /// Bytes to write to the socket.
    pub fn output(&self) -> &[u8] {
        self.outbox.pending()
    }

    /// Whether bytes wait to be written.
    pub fn has_output(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// `n` bytes of [`Conn::output`] were written.
    pub fn output_sent(&mut self, n: usize) {
        self.outbox.consume(n);
    }

    /// When the next timer is due (step then, even if the socket is quiet).
    pub fn deadline(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// How long from now until [`Conn::deadline`], if any.
    pub fn until_deadline(&self) -> Option<Duration> {
        self.deadline().map(|at| self.clock.until(at))
    }

    /// Give buffer memory back while the connection is quiet (an idle connection holds no
    /// I/O buffer).
    pub fn release_idle_buffers(&mut self) {
        self.inbox.release_if_empty();
        self.read_size = READ_CHUNK;
        self.outbox.release_if_empty();
    }

    /// Whether either buffer holds memory.
    pub fn holds_buffers(&self) -> bool {
        self.inbox.is_allocated() || self.outbox.is_allocated()
    }

    /// Whether the input buffer holds memory (a quiet connection waits for readability before
    /// it asks for [`Conn::input_room`]).
    pub fn holds_input_buffer(&self) -> bool {
        self.inbox.is_allocated()
    }

    // ---- the step -------------------------------------------------------------------------

    /// The sans-IO half of a round, with the agent's bounded file work, at the clock's time.
    pub fn step(&mut self) -> Step {
        self.step_at(self.clock.now())
    }

    /// [`Conn::step`] at `now` (a test harness drives a virtual clock).
    pub fn step_at(&mut self, now: Instant) -> Step {
        if self.input_error.is_some() {
            return Step::Ended;
        }
        let mut progress = false;
        for _ in 0..ROUNDS {
            progress = false;
            if self.close_requested && !self.close_applied {
                // Files in flight stop here (the receiver keeps what arrived), then the close.
                self.agent.cancel(&mut self.session);
                self.session.close(now, CloseCode::Cancelled);
                self.close_applied = true;
                progress = true;
            }
            if !self.inbox.is_empty() && self.session.wants_input() {
                // A fatal error is sticky and closes the session; it is reported at the end.
                if let Ok(n) = self.session.handle_input(now, self.inbox.pending_mut()) {
                    self.inbox.consume(n);
                    progress |= n > 0;
                }
            }
            if !self.admitted() {
                // The server's message 2 is never sent.
                return Step::Refused;
            }
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
            }
            progress |= self.agent.pump(&mut self.session, now);
            progress |= self.gather(now);
            if self.session.is_closed() {
                return Step::Ended;
            }
            // A stream's next read may block: what it gave goes out first.
            let stream_waits = !self.outbox.is_empty() && self.agent.reads_stream();
            if !progress || self.outbox.len() >= OUTBOX_CAP || stream_waits {
                break;
            }
        }
        if self.eof && !progress {
            // Whatever is still buffered can never complete a record: clean only after FINAL.
            let _ = self.session.handle_eof(now);
            let more = self.agent.pump(&mut self.session, now) | self.gather(now);
            if self.session.is_closed() || (!more && self.session.poll_timeout().is_none()) {
                return Step::Ended;
            }
            return if more { Step::Busy } else { Step::Idle };
        }
        if progress && self.outbox.len() < OUTBOX_CAP {
            Step::Busy
        } else {
            Step::Idle
        }
    }

    /// Whether the admission (if any) still lets this connection go on.
    fn admitted(&mut self) -> bool {
        if self.authenticated {
            return true;
        }
        let Some(pass) = &mut self.pass else {
            return true;
        };
        if self.session.peer_side().is_none() {
            if !self.inbox.is_empty() {
                pass.heard();
            }
            return true;
        }
        self.authenticated = pass.authenticate();
        self.authenticated
    }

    /// Ask the session for output until it has none or `OUTBOX_CAP` bytes wait (a closed
    /// session's last records are always taken). Returns whether anything was added.
    fn gather(&mut self, now: Instant) -> bool {
        // A quiet connection allocates no output buffer.
        if !self.outbox.is_allocated() && !self.session.has_transmit() {
            return false;
        }
        let mut any = false;
        while self.outbox.len() < OUTBOX_CAP || self.session.is_closed() {
            // MAX_RECORD bytes always suffice.
            let n = self
                .session
                .poll_transmit(now, self.outbox.room(MAX_RECORD))
                .unwrap_or(0);
            self.outbox.commit(n);
            if n == 0 {
                break;
            }
            any = true;
        }
        any
    }

    /// The connection is over (or its socket failed with `output_error`): tell the agent how
    /// the session ended and hand it back with the outcome.
    pub fn finish(mut self, output_error: Option<io::Error>) -> (Agent, Result<(), RunError>) {
        let error = self.session.error();
        if !crate::host::is_busy(error.as_ref()) {
            self.agent.finish(error.as_ref());
        }
        let result = match (output_error.or(self.input_error.take()), error) {
            (Some(e), _) => Err(RunError::Io(e)),
            (None, Some(e)) => Err(RunError::Session(e)),
            (None, None) => Ok(()),
        };
        (self.agent, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::LogObserver;
    use std::sync::Arc;

    fn conn() -> Conn {
        let clock = Clock::new();
        let psk = proto::Psk::from_key_bytes(&[1; 32]);
        let session = Session::client(&proto::Config::default(), &psk, [2; 32], clock.now());
        let store = Arc::new(ferry_disk::StdoutStore::new());
        Conn::new(session, Agent::server(store, Box::new(LogObserver)), clock)
    }

    /// Reads that fill their room get a larger one, up to [`READ_CHUNK_MAX`]; shorter reads
    /// keep it; a quiet spell (the buffers released) brings it back to [`READ_CHUNK`].
    #[test]
    fn reads_grow_while_they_fill_their_room() {
        let mut c = conn();
        let mut sizes = Vec::new();
        for _ in 0..4 {
            let n = c.input_room().len();
            sizes.push(n);
            c.input_filled(n);
            c.inbox.consume(n);
        }
        assert_eq!(
            sizes,
            [READ_CHUNK, 2 * READ_CHUNK, READ_CHUNK_MAX, READ_CHUNK_MAX]
        );
        // Most of the room: the size holds.
        assert_eq!(c.input_room().len(), READ_CHUNK_MAX);
        c.input_filled(READ_CHUNK_MAX - 1);
        assert_eq!(c.input_room().len(), READ_CHUNK_MAX);
        c.input_filled(100);
        c.inbox.consume(c.inbox.len());
        assert_eq!(c.input_room().len(), READ_CHUNK_MAX);
        c.release_idle_buffers();
        assert_eq!(c.input_room().len(), READ_CHUNK);
        // A trickle never grows it.
        for _ in 0..100 {
            c.input_filled(1_000);
        }
        c.inbox.consume(c.inbox.len());
        assert_eq!(c.input_room().len(), READ_CHUNK);
    }
}
