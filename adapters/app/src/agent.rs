//! The file-transfer application: what a ferry endpoint does with a session's events.
//!
//! An [`Agent`] drives one [`Session`] from a [`Store`]: as a server it answers offers, GETs and
//! LISTs; as a client it runs one [`Job`] (send files, get files, list) and closes the session
//! when the job is done. Adapters call [`Agent::pump`] after every I/O step (and whenever the
//! session may have room again); each call does a bounded amount of work (at most a few
//! chunks of file reads or writes), so an event loop serving many connections stays fair.
//! File I/O inside `pump` is blocking; an adapter that must never block hands the agent to a
//! worker thread or keeps its per-turn work small.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant as WallClock;

use proto::RecordFormat;
use proto::{
    CHUNK, CloseCode, Event, FileHasher, FileMeta, Instant, ListEntry, PeerRequestId, Problem,
    ReadError, Reason, RecvId, RequestError, RequestId, SendId, Session,
};

use crate::offload::{Done, Work, open_source};
use crate::pool::{CommitPool, Notify};
use ferry_disk::commit::{Batch, CommitDone, commit_batch};
use ferry_disk::{Incoming, Outgoing, Source, Store, problem_from_io};

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
}

/// How one file ended, or one listed entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A file this side sent was committed by the peer (or was already there).
    Sent(FileReport),
    /// A file this side received was committed here.
    Received(FileReport),
    /// A file (or a requested name) failed; the session went on.
    Failed {
        /// The file or requested name.
        name: String,
        /// Why.
        problem: Problem,
    },
    /// One line of a listing.
    Entry(ListEntry),
    /// The peer stored our record durably.
    RecordStored,
    /// A record the peer sent was stored here (its JSON line).
    RecordReceived(String),
}

/// The outcome of one finished file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// Name on the receiving side.
    pub name: String,
    /// Whole-file size.
    pub bytes: u64,
    /// Bytes the receiver already held (not sent again).
    pub resumed_from: u64,
    /// Whole-file BLAKE3 (zero when the file was skipped as up to date and not hashed here).
    pub blake3: [u8; 32],
    /// Seconds from the offer (or acceptance) to the commit.
    pub seconds: f64,
    /// The receiver already had exactly this content; nothing was transferred.
    pub up_to_date: bool,
}

/// Told about progress and outcomes (a CLI draws progress bars and prints reports; a server
/// logs). All methods have empty defaults.
pub trait Observer: Send {
    /// A file starts moving: `total` bytes if known, of which `from` are already there.
    fn started(&mut self, _name: &str, _total: Option<u64>, _from: u64) {}
    /// `n` more bytes of `name` were sent or received.
    fn advanced(&mut self, _name: &str, _n: u64) {}
    /// A file or listing entry finished.
    fn report(&mut self, _report: &Report) {}
}

/// An observer that only logs through `tracing` (servers).
pub struct LogObserver;

impl Observer for LogObserver {
    fn report(&mut self, report: &Report) {
        match report {
            Report::Sent(r) => {
                tracing::info!(name = %r.name, bytes = r.bytes, up_to_date = r.up_to_date, "sent")
            }
            Report::Received(r) => {
                tracing::info!(name = %r.name, bytes = r.bytes, resumed_from = r.resumed_from, "received")
            }
            Report::Failed { name, problem } => tracing::warn!(%name, %problem, "file failed"),
            Report::RecordReceived(line) => tracing::info!(record = %line, "record stored"),
            Report::Entry(_) | Report::RecordStored => {}
        }
    }
}

struct Sending {
    out: Outgoing,
    /// The peer's GET this file answers: its `Done` waits until every such file settled.
    request: Option<PeerRequestId>,
    reader: Option<Box<dyn Read + Send>>,
    /// Bytes handed to the session so far (the next offset).
    pos: u64,
    resumed_from: u64,
    started_at: WallClock,
    finished: bool,
    /// Read from a stream (standard input): its next read may block until more arrives.
    stream: bool,
}

struct Receiving {
    name: String,
    file: Box<dyn Incoming>,
    resumed_from: u64,
    started_at: WallClock,
    /// Set once the file was received whole.
    hash: [u8; 32],
    size: u64,
}

/// Stands in for a file whose `Incoming` went to the commit pool.
struct Committing;

impl Incoming for Committing {
    fn prefix(&self) -> FileHasher {
        FileHasher::new()
    }
    fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("file is being committed"))
    }
    fn commit(self: Box<Self>, _: u64) -> Result<(), Problem> {
        Ok(())
    }
    fn suspend(self: Box<Self>) {}
    fn discard(self: Box<Self>) {}
}

/// Drives one session from a store. See the module docs.
pub struct Agent {
    store: Arc<dyn Store>,
    observer: Box<dyn Observer>,
    client: bool,
    /// A client replaces local files that differ from what it fetches (`get --overwrite`).
    overwrite_local: bool,
    /// Files to offer (client send, or server answers to GETs with their request).
    to_offer: VecDeque<(Outgoing, Option<PeerRequestId>)>,
    to_get: VecDeque<String>,
    to_list: Option<String>,
    to_record: Option<(RecordFormat, Vec<u8>)>,
    sending: BTreeMap<SendId, Sending>,
    receiving: BTreeMap<RecvId, Receiving>,
    my_requests: BTreeMap<RequestId, String>,
    /// Offers still to make for each peer GET before its `Done` may go out.
    answering: BTreeMap<PeerRequestId, usize>,
    reports: Vec<Report>,
    failures: usize,
    close_sent: bool,
    buf: Vec<u8>,
    /// Commits run on a pool instead of inline, with their answers coming back here.
    pool: Option<PoolLink>,
    /// Files received whole, waiting for their commit's answer (queued in `to_commit`, or
    /// on the pool).
    committing: BTreeMap<RecvId, Receiving>,
    /// Files received whole, to commit as one group.
    to_commit: Batch,
    /// Files of the group on the pool whose answer has not come back.
    on_pool: usize,
    /// When the oldest file in `to_commit` was received (as far as `pump` saw).
    to_commit_since: Option<Instant>,
    /// Disk work on the pool whose answer has not come back (at most one per agent, so one
    /// connection can never take every pool thread), and what waits behind it.
    pending: usize,
    disk_queue: VecDeque<Work>,
    /// Refused files waiting for their whole-file hash before they are offered again.
    hashing: BTreeMap<u64, Sending>,
    next_token: u64,
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

/// The name a record's outcome is reported under.
const RECORD_NAME: &str = "record";

/// Most files committed as one group.
const COMMIT_GROUP: usize = 256;

/// Longest a received file waits for its group while other files are still arriving (checked
/// whenever the agent is pumped).
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Chunks of file I/O one `pump` call may do in each direction.
const CHUNKS_PER_PUMP: usize = 8;

impl Agent {
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
        }
        a
    }

    fn new(store: Arc<dyn Store>, observer: Box<dyn Observer>, client: bool) -> Self {
        Agent {
            store,
            observer,
            client,
            overwrite_local: false,
            to_offer: VecDeque::new(),
            to_get: VecDeque::new(),
            to_list: None,
            to_record: None,
            sending: BTreeMap::new(),
            receiving: BTreeMap::new(),
            my_requests: BTreeMap::new(),
            answering: BTreeMap::new(),
            reports: Vec::new(),
            failures: 0,
            close_sent: false,
            buf: Vec::new(),
            pool: None,
            committing: BTreeMap::new(),
            to_commit: Vec::new(),
            on_pool: 0,
            to_commit_since: None,
            pending: 0,
            disk_queue: VecDeque::new(),
            hashing: BTreeMap::new(),
            next_token: 0,
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

    /// Reports so far (files finished, failures, listing entries), in order.
    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// Whether a file is being sent from a stream (standard input) whose next read may block
    /// until more arrives: a driver should write the output it holds before pumping again.
    pub fn reads_stream(&self) -> bool {
        self.sending
            .values()
            .any(|f| f.stream && f.reader.is_some() && !f.finished)
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
            && self.committing.is_empty()
            && self.my_requests.is_empty()
            && self.pending == 0
            && self.disk_queue.is_empty()
            && self.hashing.is_empty()
    }

    fn report(&mut self, r: Report) {
        if matches!(r, Report::Failed { .. }) {
            self.failures += 1;
        }
        self.observer.report(&r);
        self.reports.push(r);
    }

    fn fail(&mut self, name: String, problem: Problem) {
        self.report(Report::Failed { name, problem });
    }

    /// React to everything the session has for us and move file bytes, a bounded amount.
    /// Returns whether anything happened (call again, then drain `poll_transmit`, while true).
    pub fn pump(&mut self, s: &mut Session, now: Instant) -> bool {
        // The chunk buffer exists only while files move: an idle connection holds none.
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK];
        }
        let mut progress = self.pump_inner(s, now);
        // Received files wait to be committed together (group commit, so a flush is never paid
        // per file): until no other file is on its way and nothing else is ready, the group is
        // large, or its first file waited COMMIT_DELAY. With a pool, one group at a time: what
        // arrives meanwhile forms the next group.
        let since = *self.to_commit_since.get_or_insert(now);
        if !self.to_commit.is_empty()
            && self.on_pool == 0
            && ((!progress && self.receiving.is_empty())
                || self.to_commit.len() >= COMMIT_GROUP
                || now.saturating_duration_since(since) >= COMMIT_DELAY)
        {
            progress |= self.flush_commits(s);
        }
        if self.to_commit.is_empty() {
            self.to_commit_since = None;
        }
        if self.sending.is_empty() && self.receiving.is_empty() && !s.has_readable() {
            self.buf = Vec::new();
        }
        progress
    }

    fn pump_inner(&mut self, s: &mut Session, now: Instant) -> bool {
        let mut progress = self.collect_commits(s);
        progress |= self.collect_disk(s);
        while let Some(ev) = s.poll_event() {
            self.on_event(s, ev);
            progress = true;
        }
        progress |= self.read_chunks(s);
        if s.is_connected() {
            progress |= self.make_requests(s);
            progress |= self.write_files(s);
        }
        if self.client && !self.close_sent && s.is_connected() && self.idle() {
            s.close(now, CloseCode::Done);
            self.close_sent = true;
            progress = true;
        }
        progress
    }

    /// The session ended (cleanly or not): keep every unfinished incoming file as a partial
    /// for resume, and count unfinished outgoing files and requests as failed.
    pub fn finish(&mut self, error: Option<&proto::SessionError>) {
        let why = match error {
            Some(e) => e.to_string(),
            None => String::from("session closed before the file completed"),
        };
        // Files received whole and verified are committed even though nobody will hear of it.
        for (id, result) in commit_batch(std::mem::take(&mut self.to_commit)) {
            if let Some(r) = self.committing.remove(&id) {
                self.report_commit(r, result);
            }
        }
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

    // ---- requests out ---------------------------------------------------------------------

    fn make_requests(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        while let Some((out, req)) = self.to_offer.front() {
            let r = match req {
                Some(req) => s.offer_for(*req, out.meta.clone()),
                None => s.offer(out.meta.clone()),
            };
            match r {
                Ok(id) => {
                    let Some((out, req)) = self.to_offer.pop_front() else {
                        break;
                    };
                    self.sending.insert(
                        id,
                        Sending {
                            out,
                            request: req,
                            reader: None,
                            pos: 0,
                            resumed_from: 0,
                            started_at: WallClock::now(),
                            finished: false,
                            stream: false,
                        },
                    );
                    any = true;
                }
                Err(RequestError::Busy) | Err(RequestError::NotOpen) => break,
                Err(e) => {
                    let Some((out, req)) = self.to_offer.pop_front() else {
                        break;
                    };
                    self.fail(out.meta.path, Problem::new(Reason::Other, &e.to_string()));
                    if let Some(req) = req {
                        self.answered_one(s, req);
                    }
                    any = true;
                }
            }
        }
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

    /// One offer for a peer GET went out; `Done` follows the last one.
    fn answered_one(&mut self, s: &mut Session, req: PeerRequestId) {
        if let Some(n) = self.answering.get_mut(&req) {
            *n -= 1;
            if *n == 0 {
                self.answering.remove(&req);
                let _ = s.finish_request(req, None);
            }
        }
    }

    // ---- file bytes out -------------------------------------------------------------------

    fn write_files(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        let mut budget = CHUNKS_PER_PUMP;
        let ids: Vec<SendId> = self
            .sending
            .iter()
            .filter(|(_, f)| f.reader.is_some() && !f.finished)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            while budget > 0 {
                let cap = s.send_capacity();
                if cap == 0 {
                    return any;
                }
                let Some(f) = self.sending.get_mut(&id) else {
                    break;
                };
                let want = match f.out.meta.size {
                    Some(size) => (size - f.pos).min(cap as u64) as usize,
                    None => cap,
                }
                .min(self.buf.len());
                let n = if want == 0 {
                    0
                } else {
                    let Some(reader) = f.reader.as_mut() else {
                        break;
                    };
                    match reader.read(&mut self.buf[..want]) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let problem = problem_from_io(&e, "read failed");
                            self.abort(s, id, problem);
                            any = true;
                            break;
                        }
                    }
                };
                budget -= 1;
                any = true;
                if n == 0 {
                    if f.out.meta.size.is_some_and(|size| f.pos < size) {
                        let problem = Problem::new(Reason::Io, "file shrank while being sent");
                        self.abort(s, id, problem);
                    } else if s.finish(id).is_ok() {
                        f.finished = true;
                        f.reader = None;
                    }
                    break;
                }
                match s.write(id, &self.buf[..n]) {
                    Ok(k) if k == n => {
                        f.pos += n as u64;
                        self.observer.advanced(&f.out.meta.path, n as u64);
                        if f.stream {
                            // The next read may wait for the stream: let what it gave go out
                            // first (the driver transmits before pumping again).
                            break;
                        }
                    }
                    // `send_capacity` said there was room for `n`: anything else is a bug.
                    Ok(_) | Err(_) => {
                        let problem = Problem::new(Reason::Other, "session refused file bytes");
                        self.abort(s, id, problem);
                        break;
                    }
                }
            }
        }
        any
    }

    fn abort(&mut self, s: &mut Session, id: SendId, problem: Problem) {
        if let Some(f) = self.sending.remove(&id) {
            let _ = s.abort(id, problem.clone());
            self.settled(s, &f);
            self.fail(f.out.meta.path, problem);
        }
    }

    /// An outgoing file reached its end (delivered, refused, failed): a GET it answered may
    /// now be complete.
    fn settled(&mut self, s: &mut Session, f: &Sending) {
        if let Some(req) = f.request {
            self.answered_one(s, req);
        }
    }

    /// After `Accepted`: open the source and hash the prefix the receiver holds (disk work).
    fn start(&mut self, s: &mut Session, id: SendId, resume_from: u64) {
        let Some(f) = self.sending.get_mut(&id) else {
            return;
        };
        if let Some(source) = f.out.source.reopenable() {
            self.disk(
                s,
                Work::Open {
                    id,
                    source,
                    resume_from,
                },
            );
            return;
        }
        // A stream: nothing to open, nothing to resume.
        f.stream = true;
        let stream = std::mem::replace(&mut f.out.source, Source::File(Default::default()));
        let opened = match stream {
            Source::Reader(r) => Ok((r, FileHasher::new())),
            _ => Err(io::Error::other("not a stream")),
        };
        self.opened(s, id, resume_from, opened);
    }

    /// The source is open and our prefix hashed: verify it against the receiver's and send.
    fn opened(
        &mut self,
        s: &mut Session,
        id: SendId,
        resume_from: u64,
        opened: io::Result<(Box<dyn Read + Send>, FileHasher)>,
    ) {
        let (mut reader, prefix) = match opened {
            Ok(x) => x,
            Err(e) => {
                let problem = problem_from_io(&e, "cannot read the file");
                // Accepted but never started: finish nothing, tell the peer we give up.
                if let Some(f) = self.sending.remove(&id) {
                    let _ = s.start(id, FileHasher::new());
                    let _ = s.abort(id, problem.clone());
                    self.settled(s, &f);
                    self.fail(f.out.meta.path, problem);
                }
                return;
            }
        };
        let Some(f) = self.sending.get_mut(&id) else {
            return;
        };
        match s.start(id, prefix) {
            Ok(offset) => {
                if offset > 0 {
                    // The prefix matched: the reader stands right after it.
                    f.resumed_from = offset;
                } else if resume_from > 0 {
                    // Mismatch: start over from the beginning.
                    if let Ok(file) = open_source(&f.out.source) {
                        reader = file;
                    }
                }
                f.pos = offset;
                f.reader = Some(reader);
                f.started_at = WallClock::now();
                self.observer
                    .started(&f.out.meta.path, f.out.meta.size, offset);
            }
            Err(_) => {
                if let Some(f) = self.sending.remove(&id) {
                    self.settled(s, &f);
                }
            }
        }
    }

    // ---- file bytes in --------------------------------------------------------------------

    fn read_chunks(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        for _ in 0..CHUNKS_PER_PUMP {
            let chunk = match s.read(&mut self.buf) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                // CHUNK bytes always suffice; a session error surfaces through the adapter.
                Err(ReadError::BufferTooSmall(_)) | Err(_) => break,
            };
            any = true;
            let Some(r) = self.receiving.get_mut(&chunk.id) else {
                continue;
            };
            match r.file.write_at(chunk.offset, &self.buf[..chunk.len]) {
                Ok(()) => self.observer.advanced(&r.name, chunk.len as u64),
                Err(e) => {
                    let problem = problem_from_io(&e, "cannot write");
                    if let Some(r) = self.receiving.remove(&chunk.id) {
                        r.file.suspend();
                        let _ = s.commit_failed(chunk.id, problem.clone());
                        self.fail(r.name, problem);
                    }
                }
            }
        }
        any
    }

    // ---- events ---------------------------------------------------------------------------

    fn on_event(&mut self, s: &mut Session, ev: Event) {
        if self.client && self.client_refuses(s, &ev) {
            return;
        }
        match ev {
            Event::Offered { id, mut meta, .. } => {
                if self.client {
                    meta.overwrite = self.overwrite_local;
                }
                self.disk(s, Work::Receive { id, meta });
            }
            Event::Accepted { id, resume_from } => self.start(s, id, resume_from),
            Event::Rejected { id, problem } => {
                let Some(f) = self.sending.remove(&id) else {
                    return;
                };
                self.on_rejected(s, f, problem);
            }
            Event::Delivered { id, size, hash } => {
                if let Some(f) = self.sending.remove(&id) {
                    self.settled(s, &f);
                    let blake3 = hash;
                    self.report(Report::Sent(FileReport {
                        name: f.out.meta.path,
                        bytes: size,
                        resumed_from: f.resumed_from,
                        blake3,
                        seconds: f.started_at.elapsed().as_secs_f64(),
                        up_to_date: false,
                    }));
                }
            }
            Event::DeliveryFailed { id, problem } => {
                if let Some(f) = self.sending.remove(&id) {
                    self.settled(s, &f);
                    self.fail(f.out.meta.path, problem);
                }
            }
            Event::Verified { id, size, hash } => {
                let Some(r) = self.receiving.remove(&id) else {
                    return;
                };
                let Receiving {
                    name,
                    file,
                    resumed_from,
                    started_at,
                    ..
                } = r;
                let done = Receiving {
                    name,
                    file: Box::new(Committing),
                    resumed_from,
                    started_at,
                    hash,
                    size,
                };
                // Committed in a group with the files that arrive right behind it (see
                // `flush_commits`).
                self.committing.insert(id, done);
                self.to_commit.push((id, file, size));
            }
            Event::ReceiveFailed { id, problem } => {
                if let Some(r) = self.receiving.remove(&id) {
                    if problem.reason == Reason::HashMismatch {
                        r.file.discard();
                    } else {
                        r.file.suspend();
                    }
                    self.fail(r.name, problem);
                }
            }
            Event::GetRequested { req, path } => self.disk(s, Work::Lookup { req, path }),
            Event::ListRequested { req, path } => self.disk(s, Work::List { req, path }),
            Event::Listing { entries, .. } => {
                for e in entries {
                    self.report(Report::Entry(e));
                }
            }
            Event::RequestDone { req, error } => {
                if let Some(name) = self.my_requests.remove(&req) {
                    match error {
                        Some(problem) => self.fail(name, problem),
                        None if name == RECORD_NAME => self.report(Report::RecordStored),
                        None => {}
                    }
                }
            }
            Event::RecordReceived { req, format, body } => {
                self.disk(s, Work::Record { req, format, body })
            }
            Event::Connected | Event::Closed { .. } => {}
            _ => {}
        }
    }

    /// The peer offers a file: take it into the store (resuming what it holds) or refuse it.
    fn on_offered(
        &mut self,
        s: &mut Session,
        id: RecvId,
        meta: FileMeta,
        decision: Result<Box<dyn Incoming>, Problem>,
    ) {
        match decision {
            Ok(file) => {
                let prefix = file.prefix();
                let resumed_from = prefix.len();
                let prefix = (!prefix.is_empty()).then_some(prefix);
                if s.accept(id, prefix).is_ok() {
                    self.observer.started(&meta.path, meta.size, resumed_from);
                    self.receiving.insert(
                        id,
                        Receiving {
                            name: meta.path,
                            file,
                            resumed_from,
                            started_at: WallClock::now(),
                            hash: [0; 32],
                            size: 0,
                        },
                    );
                } else {
                    file.suspend();
                }
            }
            Err(problem) => {
                let _ = s.reject(id, problem.clone());
                match problem.reason {
                    // Already here: a success, nothing had to move.
                    Reason::UpToDate => self.report(Report::Received(FileReport {
                        name: meta.path,
                        bytes: meta.size.unwrap_or(0),
                        resumed_from: meta.size.unwrap_or(0),
                        blake3: meta.hash.unwrap_or_default(),
                        seconds: 0.0,
                        up_to_date: true,
                    })),
                    // Without a hash the sender asks again with one (see `on_rejected`).
                    Reason::Exists if meta.hash.is_none() => {}
                    // Refused here (bad name, disk full...): it did not arrive.
                    _ => self.fail(meta.path, problem),
                }
            }
        }
    }

    /// Do disk work: on the pool when there is one (its answer comes back through
    /// `collect_disk`; one job at a time per agent, in order), else right here.
    fn disk(&mut self, s: &mut Session, work: Work) {
        if self.pool.is_some() {
            self.disk_queue.push_back(work);
            self.next_disk_job();
            return;
        }
        let done = work.run(&*self.store);
        self.on_disk(s, done);
    }

    /// Hand the next queued disk job to the pool unless one is there already.
    fn next_disk_job(&mut self) {
        if self.pending > 0 {
            return;
        }
        if let Some(link) = &self.pool
            && let Some(work) = self.disk_queue.pop_front()
        {
            let store = self.store.clone();
            let (tx, notify) = (link.disk_tx.clone(), link.notify.clone());
            let job: crate::pool::Job = Box::new(move || {
                let _ = tx.send(work.run(&*store));
                notify();
            });
            self.pending += 1;
            if let Err(job) = link.pool.run(job) {
                // The pool is gone: do it here; the answer is collected all the same.
                job();
            }
        }
    }

    /// Answers of disk work done on the pool.
    fn collect_disk(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        while let Some(link) = &self.pool
            && let Ok(done) = link.disk_rx.try_recv()
        {
            self.pending = self.pending.saturating_sub(1);
            self.on_disk(s, done);
            self.next_disk_job();
            any = true;
        }
        any
    }

    /// Act on finished disk work.
    fn on_disk(&mut self, s: &mut Session, done: Done) {
        match done {
            Done::Received { id, meta, result } => self.on_offered(s, id, meta, result),
            Done::Looked { req, result } => match result {
                Ok(files) if !files.is_empty() => {
                    self.answering.insert(req, files.len());
                    self.to_offer
                        .extend(files.into_iter().map(|f| (f, Some(req))));
                }
                Ok(_) => {
                    let _ = s.finish_request(req, None);
                }
                Err(problem) => {
                    let _ = s.finish_request(req, Some(problem));
                }
            },
            Done::Listed { req, result } => match result {
                Ok(entries) => {
                    let _ = s.send_listing(req, entries);
                    let _ = s.finish_request(req, None);
                }
                Err(problem) => {
                    let _ = s.finish_request(req, Some(problem));
                }
            },
            Done::Recorded { req, result } => match result {
                Ok(line) => {
                    let _ = s.finish_request(req, None);
                    self.report(Report::RecordReceived(line));
                }
                Err(problem) => {
                    let _ = s.finish_request(req, Some(problem));
                }
            },
            Done::Opened {
                id,
                resume_from,
                result,
            } => self.opened(s, id, resume_from, result.map(|b| *b)),
            Done::Hashed { token, result } => {
                let Some(f) = self.hashing.remove(&token) else {
                    return;
                };
                match result {
                    Ok(h) => {
                        // Asked again, still answering the same GET (its `Done` keeps waiting).
                        let mut out = f.out;
                        out.meta.hash = Some(h);
                        self.to_offer.push_front((out, f.request));
                    }
                    Err(e) => {
                        self.settled(s, &f);
                        let problem = problem_from_io(&e, "cannot read the file");
                        self.fail(f.out.meta.path, problem);
                    }
                }
            }
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

    /// Answer the session for a commit that finished (inline or on the pool).
    fn committed(
        &mut self,
        s: &mut Session,
        id: RecvId,
        r: Receiving,
        result: Result<(), Problem>,
    ) {
        let _ = match &result {
            Ok(()) => s.committed(id),
            Err(problem) => s.commit_failed(id, problem.clone()),
        };
        self.report_commit(r, result);
    }

    /// Report a finished commit.
    fn report_commit(&mut self, r: Receiving, result: Result<(), Problem>) {
        match result {
            Ok(()) => {
                self.report(Report::Received(FileReport {
                    name: r.name,
                    bytes: r.size,
                    resumed_from: r.resumed_from,
                    blake3: r.hash,
                    seconds: r.started_at.elapsed().as_secs_f64(),
                    up_to_date: false,
                }));
            }
            Err(problem) => self.fail(r.name, problem),
        }
    }

    /// Commit the files waiting in `to_commit` as one group: on the pool, or here.
    fn flush_commits(&mut self, s: &mut Session) -> bool {
        let batch = std::mem::take(&mut self.to_commit);
        let batch = match &self.pool {
            Some(link) => {
                let (tx, notify) = (link.done_tx.clone(), link.notify.clone());
                let files = batch.len();
                match link.pool.submit(batch, tx, notify) {
                    Ok(()) => {
                        self.on_pool = files;
                        return false;
                    }
                    // The pool is gone: commit here.
                    Err(batch) => batch,
                }
            }
            None => batch,
        };
        for (id, result) in commit_batch(batch) {
            if let Some(r) = self.committing.remove(&id) {
                self.committed(s, id, r, result);
            }
        }
        true
    }

    /// Answers from the commit pool.
    fn collect_commits(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        while let Some(link) = &self.pool
            && let Ok((id, result)) = link.done_rx.try_recv()
        {
            self.on_pool = self.on_pool.saturating_sub(1);
            if let Some(r) = self.committing.remove(&id) {
                self.committed(s, id, r, result);
                any = true;
            }
        }
        any
    }

    /// A refused offer: an existing file offered without a hash gets one more try with its
    /// hash, so the receiver can tell "same content" from "different content".
    fn on_rejected(&mut self, s: &mut Session, f: Sending, problem: Problem) {
        if problem.reason == Reason::Exists
            && f.out.meta.hash.is_none()
            && let Some(source) = f.out.source.reopenable()
        {
            let token = self.next_token;
            self.next_token += 1;
            self.hashing.insert(token, f);
            self.disk(s, Work::Hash { token, source });
            return;
        }
        self.settled(s, &f);
        let out = f.out;
        if problem.reason == Reason::UpToDate {
            self.report(Report::Sent(FileReport {
                name: out.meta.path,
                bytes: out.meta.size.unwrap_or(0),
                resumed_from: out.meta.size.unwrap_or(0),
                blake3: out.meta.hash.unwrap_or_default(),
                seconds: f.started_at.elapsed().as_secs_f64(),
                up_to_date: true,
            }));
            return;
        }
        self.fail(out.meta.path, problem);
    }
}
