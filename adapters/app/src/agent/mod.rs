//! The file-transfer application: what a ferry endpoint does with a session's events.
//!
//! An [`Agent`] drives one [`Session`] from a [`Store`]: as a server it answers offers, GETs and
//! LISTs; as a client it runs one [`Job`] (send files, get files, list) and closes the session
//! when the job is done. Adapters call [`Agent::pump`] after every I/O step (and whenever the
//! session may have room again); each call does a bounded amount of work (at most a few
//! chunks of file reads or writes), so an event loop serving many connections stays fair.
//! File I/O inside `pump` is blocking; an adapter that must never block hands the agent to a
//! worker thread or keeps its per-turn work small.
//!
//! By direction, like the core's transfer: `send.rs` (offers, opening, file bytes out),
//! `recv.rs` (offers answered, file bytes in), `commit.rs` (group commit of received files),
//! `disk.rs` (disk work, on a pool or inline), [`report`](Report) (what the user is told) and
//! `record.rs` ([`record_job`], [`record_outcome`]). Report times are on the driver's clock:
//! the `now` that [`Agent::pump`] receives.

mod commit;
mod disk;
mod record;
mod recv;
mod report;
mod send;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use proto::RecordFormat;
use proto::{
    CloseCode, Event, Instant, PeerRequestId, Problem, Reason, RecvId, RequestError, RequestId,
    SendId, Session,
};

use crate::offload::{Done, Work};
use crate::pool::{CommitPool, Notify};
use commit::Commits;
use ferry_disk::commit::CommitDone;
use ferry_disk::{Incoming, Outgoing, Store};
use recv::Receiving;
use send::Sending;

pub use record::{record_job, record_outcome};
pub use report::{FileReport, LogObserver, Observer, Report};

/// What a client connection is for.
pub enum Job {
    /// Offer these files (pipelined: all offers go out at once, within the peer's limit).
    Send(Vec<Outgoing>),
    /// Fetch these names (files or directories) into the agent's store.
    Get {
        /// Names on the peer.
        names: Vec<String>,
        /// Replace local files with different content (the local user's `--overwrite`; the
        /// peer's offers never decide this).
        overwrite: bool,
    },
    /// List the peer's files under this prefix.
    List(String),
    /// Store one record (already encoded, see [`crate::records`]) on the peer.
    Record(RecordFormat, Vec<u8>),
    /// List everything the peer offers, let `confirm` decide on the whole listing, then get
    /// it all into the agent's store (`receive` with a short code: nothing is fetched, and
    /// nothing written, before the user accepted).
    Fetch {
        /// As in [`Job::Get`].
        overwrite: bool,
        /// Sees the complete listing; `true` fetches everything, `false` ends the session.
        confirm: Confirm,
    },
}

/// The decision of a [`Job::Fetch`] on the peer's listing.
pub type Confirm = Box<dyn FnMut(&[proto::ListEntry]) -> bool + Send>;

/// Drives one session from a store. See the module docs.
pub struct Agent {
    store: Arc<dyn Store>,
    observer: Box<dyn Observer>,
    client: bool,
    /// A client replaces local files that differ from what it fetches (`get --overwrite`).
    overwrite_local: bool,
    /// The driver's clock at the latest `pump`.
    now: Instant,
    /// Files to offer (client send, or server answers to GETs with their request).
    to_offer: VecDeque<(Outgoing, Option<PeerRequestId>)>,
    to_get: VecDeque<String>,
    to_list: Option<String>,
    to_record: Option<(RecordFormat, Vec<u8>)>,
    /// A [`Job::Fetch`] waiting for its listing: the decision and the entries so far.
    fetch: Option<(Confirm, Vec<proto::ListEntry>)>,
    sending: BTreeMap<SendId, Sending>,
    /// The files of `sending` that have bytes to read (open, not finished): what `write_files`
    /// and `reads_stream` look at, so a thousand offers in flight cost no scan per pump. An id
    /// may outlive its file here (it is dropped at the next look).
    writing: BTreeSet<SendId>,
    /// The files of `writing` read from a stream (what `reads_stream` looks at: a step asks
    /// it every round, and a thousand open files cost no scan).
    streams: BTreeSet<SendId>,
    receiving: BTreeMap<RecvId, Receiving>,
    my_requests: BTreeMap<RequestId, String>,
    /// Offers still to make for each peer GET before its `Done` may go out.
    answering: BTreeMap<PeerRequestId, usize>,
    reports: Vec<Report>,
    failures: usize,
    close_sent: bool,
    /// Commits run on a pool instead of inline, with their answers coming back here.
    pool: Option<PoolLink>,
    /// Files received whole, waiting to be committed or for their commit's answer.
    commits: Commits,
    /// Pieces of disk work on the pool whose answer has not come back (in at most one job per
    /// agent, so one connection can never take every pool thread), and what waits behind it.
    pending: usize,
    disk_queue: VecDeque<Work>,
    /// Refused files waiting for their whole-file hash before they are offered again.
    hashing: BTreeMap<u64, Sending>,
    next_token: u64,
    /// Once set (a client's user interrupted), or after [`shut_down_all`], the session is
    /// closed as `Cancelled`: nothing more is offered or written; the peer keeps what arrived.
    cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The session was ended on purpose (server not trusted, client refused or revoked):
    /// nothing more is started. Holds why.
    halted: Option<String>,
}

struct PoolLink {
    pool: CommitPool,
    notify: Notify,
    done_tx: std::sync::mpsc::Sender<CommitDone>,
    done_rx: std::sync::mpsc::Receiver<CommitDone>,
    /// Answers of the other disk work (see [`crate::offload`]).
    disk_tx: std::sync::mpsc::Sender<Done>,
    disk_rx: std::sync::mpsc::Receiver<Done>,
}

/// Set by [`shut_down_all`].
static SHUTDOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Every agent of the process closes its session as `Cancelled` at its next [`Agent::pump`] and
/// starts nothing more (a server stopping on a signal): receivers keep what arrived as partials,
/// so the peers resume when they reconnect.
pub fn shut_down_all() {
    SHUTDOWN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The name a record's outcome is reported under.
const RECORD_NAME: &str = "record";

/// Chunks of file I/O one `pump` call may do in each direction.
const CHUNKS_PER_PUMP: usize = 8;

/// Session events one `pump` call acts on (each may cost a store call: an offer looked at).
const EVENTS_PER_PUMP: usize = 32;

impl Agent {
    /// Take the agent out of `slot` for a driver to own while it runs, leaving an inert agent
    /// (no job, a store that takes nothing it is not sent); put the real one back afterwards.
    pub fn take(slot: &mut Agent) -> Agent {
        let inert = Agent::server(
            Arc::new(ferry_disk::StdoutStore::new()),
            Box::new(LogObserver),
        );
        std::mem::replace(slot, inert)
    }

    /// A server agent answering the peer from `store`.
    pub fn server(store: Arc<dyn Store>, observer: Box<dyn Observer>) -> Self {
        Self::new(store, observer, false)
    }

    /// A client agent running `job`; received files (GET) go to `store`.
    pub fn client(store: Arc<dyn Store>, observer: Box<dyn Observer>, job: Job) -> Self {
        let mut a = Self::new(store, observer, true);
        match job {
            Job::Send(files) => a.to_offer.extend(files.into_iter().map(|f| (f, None))),
            Job::Get { names, overwrite } => {
                a.to_get.extend(names);
                a.overwrite_local = overwrite;
            }
            Job::List(prefix) => a.to_list = Some(prefix),
            Job::Record(format, body) => a.to_record = Some((format, body)),
            Job::Fetch { overwrite, confirm } => {
                a.to_list = Some(String::new());
                a.overwrite_local = overwrite;
                a.fetch = Some((confirm, Vec::new()));
            }
        }
        a
    }

    fn new(store: Arc<dyn Store>, observer: Box<dyn Observer>, client: bool) -> Self {
        Agent {
            store,
            observer,
            client,
            overwrite_local: false,
            now: Instant::ZERO,
            to_offer: VecDeque::new(),
            to_get: VecDeque::new(),
            to_list: None,
            to_record: None,
            fetch: None,
            sending: BTreeMap::new(),
            writing: BTreeSet::new(),
            streams: BTreeSet::new(),
            receiving: BTreeMap::new(),
            my_requests: BTreeMap::new(),
            answering: BTreeMap::new(),
            reports: Vec::new(),
            failures: 0,
            close_sent: false,
            pool: None,
            commits: Commits::new(),
            pending: 0,
            disk_queue: VecDeque::new(),
            hashing: BTreeMap::new(),
            next_token: 0,
            cancel: None,
            halted: None,
        }
    }

    /// Make received files durable on `pool` instead of inside [`Agent::pump`] (an event loop
    /// must not wait for a disk flush), and run there too every store call that may hash or walk
    /// the disk and every open or hash of a file to send; `notify` runs on a pool thread when
    /// such work is done, after which `pump` acts on it.
    pub fn use_commit_pool(&mut self, pool: CommitPool, notify: Notify) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (disk_tx, disk_rx) = std::sync::mpsc::channel();
        self.pool = Some(PoolLink {
            pool,
            notify,
            done_tx,
            done_rx,
            disk_tx,
            disk_rx,
        });
    }

    /// Close the session (`Cancelled`) at the next [`Agent::pump`] once `flag` is set (a
    /// client's user interrupt); see the `cancel` field.
    pub fn cancel_on(&mut self, flag: Arc<std::sync::atomic::AtomicBool>) {
        self.cancel = Some(flag);
    }

    fn cancelled(&self) -> bool {
        SHUTDOWN.load(std::sync::atomic::Ordering::Relaxed)
            || self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Reports so far (files finished, failures, listing entries), in order.
    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// Files or names that failed so far.
    pub fn failures(&self) -> usize {
        self.failures
    }

    /// A client whose job is complete (everything answered); the session is closing.
    pub fn is_done(&self) -> bool {
        self.client && self.idle()
    }

    fn idle(&self) -> bool {
        self.to_offer.is_empty()
            && self.to_get.is_empty()
            && self.to_list.is_none()
            && self.to_record.is_none()
            && self.sending.is_empty()
            && self.receiving.is_empty()
            && self.commits.is_empty()
            && self.my_requests.is_empty()
            && self.pending == 0
            && self.disk_queue.is_empty()
            && self.hashing.is_empty()
    }

    /// React to everything the session has for us and move file bytes, a bounded amount.
    /// Returns whether anything happened (call again, then drain `poll_transmit`, while true).
    pub fn pump(&mut self, s: &mut Session, now: Instant) -> bool {
        self.now = now;
        let mut progress = self.collect_commits(s);
        progress |= self.collect_disk(s);
        // A bounded number of events per pump: the answers to a burst of offers go out while
        // the rest of the burst is still being looked at (the driver transmits between pumps).
        for _ in 0..EVENTS_PER_PUMP {
            let Some(ev) = s.poll_event() else { break };
            self.on_event(s, ev);
            progress = true;
        }
        if !self.client && self.halted.is_none() && self.store.revoked() {
            self.halt(s, CloseCode::Refused, "access revoked".into());
            progress = true;
        }
        progress |= self.read_chunks(s);
        let cancelled = self.cancelled();
        if cancelled && !self.close_sent && s.is_connected() {
            s.close(now, CloseCode::Cancelled);
            self.close_sent = true;
            progress = true;
        }
        if s.is_connected() && !cancelled && self.halted.is_none() {
            progress |= self.make_offers(s);
            progress |= self.make_requests(s);
            progress |= self.write_files(s);
        }
        if self.client && !self.close_sent && s.is_connected() && self.idle() {
            s.close(now, CloseCode::Done);
            self.close_sent = true;
            progress = true;
        }
        progress |= self.commit_if_due(s, progress);
        progress
    }

    /// The session ended (cleanly or not): keep every unfinished incoming file as a partial
    /// for resume, and count unfinished outgoing files and requests as failed.
    pub fn finish(&mut self, error: Option<&proto::SessionError>) {
        let why = match error {
            Some(e) => e.to_string(),
            None => String::from("session closed before the file completed"),
        };
        self.commit_at_end();
        for (_, r) in std::mem::take(&mut self.receiving) {
            r.file.suspend();
            self.fail(r.name, Problem::new(Reason::Cancelled, &why));
        }
        // Files and requests in flight failed with the session; what was never offered or
        // asked is covered by the session's own error, which the caller reports once.
        let in_flight: Vec<String> = std::mem::take(&mut self.sending)
            .into_values()
            .chain(std::mem::take(&mut self.hashing).into_values())
            .map(|s| s.out.meta.path)
            .chain(std::mem::take(&mut self.my_requests).into_values())
            .collect();
        for name in in_flight {
            self.fail(name, Problem::new(Reason::Cancelled, &why));
        }
        self.to_offer.clear();
        self.to_get.clear();
    }

    /// Why the session was ended on purpose (see [`Observer::connected`] and
    /// [`Store::for_peer`]), if it was.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// End the session on purpose: nothing more is offered or asked; what is in flight
    /// fails with the session (incoming files stay partials).
    fn halt(&mut self, s: &mut Session, code: CloseCode, why: String) {
        tracing::info!(%why, "ending the session");
        self.halted = Some(why);
        self.to_offer.clear();
        self.to_get.clear();
        self.to_list = None;
        self.to_record = None;
        if !self.close_sent {
            s.close(self.now, code);
            self.close_sent = true;
        }
    }

    /// The session is established: a client checks the server's key, a server asks its
    /// store what this client may use (before any of its requests is looked at).
    fn on_connected(&mut self, s: &mut Session) {
        let peer = s.peer_static();
        if self.client {
            if let Err(why) = self.observer.connected(peer) {
                self.halt(s, CloseCode::Cancelled, why);
            }
            return;
        }
        match self.store.for_peer(peer.as_ref()) {
            Ok(None) => {}
            Ok(Some(store)) => self.store = store,
            Err(problem) => self.halt(s, CloseCode::Refused, problem.to_string()),
        }
    }

    fn on_event(&mut self, s: &mut Session, ev: Event) {
        if self.client && self.client_refuses(s, &ev) {
            return;
        }
        if ev == Event::Connected {
            self.on_connected(s);
            return;
        }
        if self.halted.is_some() {
            // Nothing from a refused or revoked peer is acted upon.
            return;
        }
        match ev {
            // Files out.
            Event::Accepted { id, resume_from } => self.start(s, id, resume_from),
            Event::Rejected { id, problem } => self.on_rejected(s, id, problem),
            Event::Delivered { id, size, hash } => self.on_delivered(s, id, size, hash),
            Event::DeliveryFailed { id, problem } => self.on_delivery_failed(s, id, problem),
            // Files in.
            Event::Offered { id, mut meta, .. } => {
                if self.client {
                    meta.overwrite = self.overwrite_local;
                }
                self.disk(s, Work::Receive { id, meta });
            }
            Event::Verified { id, size, hash } => self.on_received(id, size, hash),
            Event::ReceiveFailed { id, problem } => self.on_receive_failed(id, problem),
            // The peer's requests (a server's work), answered from the store.
            Event::GetRequested { req, path } => self.disk(s, Work::Lookup { req, path }),
            Event::ListRequested { req, path } => self.disk(s, Work::List { req, path }),
            Event::RecordReceived { req, format, body } => {
                self.disk(s, Work::Record { req, format, body })
            }
            // Answers to our requests.
            Event::Listing { entries, .. } => match &mut self.fetch {
                Some((_, seen)) => seen.extend(entries),
                None => {
                    for e in entries {
                        self.report(Report::Entry(e));
                    }
                }
            },
            Event::RequestDone { req, error } => {
                if let Some(name) = self.my_requests.remove(&req) {
                    let listed = error.is_none();
                    match error {
                        Some(problem) => self.fail(name, problem),
                        None if name == RECORD_NAME => self.report(Report::RecordStored),
                        None => {}
                    }
                    // A fetch's listing is complete: ask, then get everything (or nothing).
                    if let Some((mut confirm, seen)) = self.fetch.take()
                        && listed
                        && confirm(&seen)
                    {
                        self.to_get.push_back(String::new());
                    }
                }
            }
            Event::Connected | Event::Closed { .. } => {}
            _ => {}
        }
    }

    /// A client serves nothing: its session already refuses the peer's requests and every
    /// offer that answers none of our GETs (see `ferry_core`'s `Event::Offered`); this is the
    /// same rule again, so that no session configuration can make a client serve its peer.
    fn client_refuses(&mut self, s: &mut Session, ev: &Event) -> bool {
        let denied = || Problem::new(Reason::Denied, "a client serves no requests");
        match ev {
            Event::GetRequested { req, .. }
            | Event::ListRequested { req, .. }
            | Event::RecordReceived { req, .. } => {
                let _ = s.finish_request(*req, Some(denied()));
                true
            }
            Event::Offered {
                id, request: None, ..
            } => {
                let _ = s.reject(*id, denied());
                true
            }
            _ => false,
        }
    }

    /// A client's GETs, record and listing, as far as the session takes them.
    fn make_requests(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        while let Some(name) = self.to_get.front() {
            match s.get(name) {
                Ok(req) => {
                    let name = self.to_get.pop_front().unwrap_or_default();
                    self.my_requests.insert(req, name);
                    any = true;
                }
                Err(RequestError::Busy) | Err(RequestError::NotOpen) => break,
                Err(e) => {
                    let name = self.to_get.pop_front().unwrap_or_default();
                    self.fail(name, Problem::new(Reason::Other, &e.to_string()));
                    any = true;
                }
            }
        }
        if let Some((format, body)) = &self.to_record {
            match s.send_record(*format, body.clone()) {
                Ok(req) => {
                    self.to_record = None;
                    self.my_requests.insert(req, String::from(RECORD_NAME));
                    any = true;
                }
                Err(RequestError::Busy) | Err(RequestError::NotOpen) => {}
                Err(e) => {
                    self.to_record = None;
                    self.fail(
                        RECORD_NAME.into(),
                        Problem::new(Reason::Other, &e.to_string()),
                    );
                    any = true;
                }
            }
        }
        if let Some(prefix) = &self.to_list {
            match s.list(prefix) {
                Ok(req) => {
                    let prefix = self.to_list.take().unwrap_or_default();
                    self.my_requests.insert(req, prefix);
                    any = true;
                }
                Err(RequestError::Busy) | Err(RequestError::NotOpen) => {}
                Err(e) => {
                    let prefix = self.to_list.take().unwrap_or_default();
                    self.fail(prefix, Problem::new(Reason::Other, &e.to_string()));
                    any = true;
                }
            }
        }
        any
    }
}

#[cfg(test)]
mod tests;
