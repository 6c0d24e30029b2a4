//! Files going out: offers (a client's files, or a server's answers to the peer's GETs), the
//! source opened and its prefix checked once the peer accepts, file bytes written a bounded
//! amount per pump, and each file's end.

use std::io::{self, Read};
use std::ops::Bound::{Excluded, Unbounded};

use proto::{
    CHUNK, FileHasher, Instant, PeerRequestId, Problem, Reason, RequestError, SendId, Session,
};

use super::report::{FileReport, Report};
use super::{Agent, CHUNKS_PER_PUMP};
use crate::offload::{Work, open_source};
use ferry_disk::{Outgoing, Source, problem_from_io};

/// A file offered to the peer.
pub(super) struct Sending {
    pub(super) out: Outgoing,
    /// The peer's GET this file answers: its `Done` waits until every such file settled.
    pub(super) request: Option<PeerRequestId>,
    reader: Option<Box<dyn Read + Send>>,
    /// Bytes handed to the session so far (the next offset).
    pos: u64,
    resumed_from: u64,
    started_at: Instant,
    finished: bool,
    /// Read from a stream (standard input): its next read may block until more arrives.
    stream: bool,
}

impl Agent {
    /// Offer the files waiting, as many as the session takes.
    pub(super) fn make_offers(&mut self, s: &mut Session) -> bool {
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
                            started_at: self.now,
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
        any
    }

    /// One offer for a peer GET went out; `Done` follows the last one.
    pub(super) fn answered_one(&mut self, s: &mut Session, req: PeerRequestId) {
        if let Some(n) = self.answering.get_mut(&req) {
            *n -= 1;
            if *n == 0 {
                self.answering.remove(&req);
                let _ = s.finish_request(req, None);
            }
        }
    }

    /// After `Accepted`: open the source and hash the prefix the receiver holds (disk work).
    pub(super) fn start(&mut self, s: &mut Session, id: SendId, resume_from: u64) {
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
    pub(super) fn opened(
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
        let now = self.now;
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
                self.writing.insert(id);
                if f.stream {
                    self.streams.insert(id);
                }
                f.started_at = now;
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

    /// Hand file bytes to the session, a bounded amount.
    pub(super) fn write_files(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        let mut budget = CHUNKS_PER_PUMP;
        // Only the files with bytes to read (not every file in flight), in order, and only as
        // many as the budget reaches (a pump costs no scan of a thousand open files); ids
        // whose file went away or finished are dropped when met.
        let sending = &self.sending;
        (self.streams).retain(|id| {
            sending
                .get(id)
                .is_some_and(|f| f.reader.is_some() && !f.finished)
        });
        let mut after: Option<SendId> = None;
        while budget > 0 {
            let next = match after {
                None => self.writing.first().copied(),
                Some(a) => self.writing.range((Excluded(a), Unbounded)).next().copied(),
            };
            let Some(id) = next else {
                break;
            };
            after = Some(id);
            if !self
                .sending
                .get(&id)
                .is_some_and(|f| f.reader.is_some() && !f.finished)
            {
                self.writing.remove(&id);
                continue;
            }
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
                .min(CHUNK);
                let n = if want == 0 {
                    0
                } else {
                    let Some(reader) = f.reader.as_mut() else {
                        break;
                    };
                    // Read straight into the session's buffer (no copy here).
                    let Ok(room) = s.write_room(id, want) else {
                        let problem = Problem::new(Reason::Other, "session refused file bytes");
                        self.abort(s, id, problem);
                        break;
                    };
                    match reader.read(room) {
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
                        self.writing.remove(&id);
                    }
                    break;
                }
                match s.commit_write(id, n) {
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
    pub(super) fn settled(&mut self, s: &mut Session, f: &Sending) {
        if let Some(req) = f.request {
            self.answered_one(s, req);
        }
    }

    /// The peer committed a file we sent.
    pub(super) fn on_delivered(&mut self, s: &mut Session, id: SendId, size: u64, hash: [u8; 32]) {
        if let Some(f) = self.sending.remove(&id) {
            self.settled(s, &f);
            let seconds = self.seconds_since(f.started_at);
            self.report(Report::Sent(FileReport {
                name: f.out.meta.path,
                bytes: size,
                resumed_from: f.resumed_from,
                blake3: hash,
                seconds,
                up_to_date: false,
            }));
        }
    }

    /// The peer could not commit a file we sent.
    pub(super) fn on_delivery_failed(&mut self, s: &mut Session, id: SendId, problem: Problem) {
        if let Some(f) = self.sending.remove(&id) {
            self.settled(s, &f);
            self.fail(f.out.meta.path, problem);
        }
    }

    /// A refused offer: an existing file offered without a hash gets one more try with its
    /// hash, so the receiver can tell "same content" from "different content".
    pub(super) fn on_rejected(&mut self, s: &mut Session, id: SendId, problem: Problem) {
        let Some(f) = self.sending.remove(&id) else {
            return;
        };
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
        let seconds = self.seconds_since(f.started_at);
        let out = f.out;
        if problem.reason == Reason::UpToDate {
            self.report(Report::Sent(FileReport {
                name: out.meta.path,
                bytes: out.meta.size.unwrap_or(0),
                resumed_from: out.meta.size.unwrap_or(0),
                blake3: out.meta.hash.unwrap_or_default(),
                seconds,
                up_to_date: true,
            }));
            return;
        }
        self.fail(out.meta.path, problem);
    }

    /// The whole-file hash of a refused file is known: offer it again with it.
    pub(super) fn hashed(&mut self, s: &mut Session, token: u64, result: io::Result<[u8; 32]>) {
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

impl Agent {
    /// The session is being cancelled: abort every file still being sent (the receiver keeps
    /// what arrived as a partial for a resume) and offer or ask nothing more.
    pub fn cancel(&mut self, s: &mut Session) {
        let problem = Problem::new(Reason::Cancelled, "cancelled");
        let ids: Vec<SendId> = self.sending.keys().copied().collect();
        for id in ids {
            self.abort(s, id, problem.clone());
        }
        // What was never offered or asked is covered by the session's own outcome.
        self.to_offer.clear();
        self.to_get.clear();
        self.to_list = None;
        self.to_record = None;
    }

    /// Whether a file is being sent from a stream (standard input) whose next read may block
    /// until more arrives: a driver should write the output it holds before pumping again.
    pub fn reads_stream(&self) -> bool {
        self.streams.iter().any(|id| {
            self.sending
                .get(id)
                .is_some_and(|f| f.stream && f.reader.is_some() && !f.finished)
        })
    }
}
