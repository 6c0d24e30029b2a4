//! An in-memory application: a tiny file store that sends, receives, resumes and answers
//! GET and LIST like the real disk layer does, so whole sessions can run without I/O.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use crate::hash::{FileHasher, hash};
use crate::session::{Event, FileMeta, RecvId, RequestId, SendId, Session};
use crate::wire::{CloseCode, ListEntry, Problem, Reason};
use crate::{CHUNK, ReadError, RequestError};

struct Sending {
    path: String,
    data: Vec<u8>,
    pos: usize,
    started: bool,
    finished: bool,
}

struct Receiving {
    path: String,
    buf: Vec<u8>,
}

/// What happened to one of our files or requests, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The peer committed it.
    Delivered,
    /// The peer refused it.
    Rejected(Reason),
    /// The peer could not commit it.
    Failed(Reason),
}

/// An in-memory file store driving one session.
#[derive(Default)]
pub struct MemApp {
    /// Published files.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Partial files kept from interrupted transfers (what resume starts from).
    pub partials: BTreeMap<String, Vec<u8>>,
    /// Paths whose commit fails (simulates a full disk).
    pub fail_commit: BTreeSet<String>,
    /// Send offers with `overwrite`.
    pub overwrite: bool,
    /// Offers still to make (path), sent as soon as the session allows.
    pub to_send: VecDeque<String>,
    /// Paths to GET from the peer.
    pub to_get: VecDeque<String>,
    /// Paths to LIST on the peer.
    pub to_list: VecDeque<String>,
    /// Do not read received chunks (a stalled disk).
    pub read_paused: bool,
    /// Hold verified files instead of committing them (a slow fsync), until cleared.
    pub hold_commits: bool,
    /// Close the session once everything above is answered.
    pub close_when_done: bool,
    /// A hostile server: answer every GET with these files of ours as well, whatever was asked.
    pub also_offer: Vec<String>,
    /// Outcome per offered path.
    pub outcomes: BTreeMap<String, Outcome>,
    /// Files this side received and committed, in order.
    pub committed: Vec<String>,
    /// Incoming files that failed (path, reason).
    pub receive_failed: Vec<(String, Reason)>,
    /// Listings received.
    pub listings: Vec<ListEntry>,
    /// Records the peer sent (format, body), acknowledged as stored.
    pub records: Vec<(crate::wire::RecordFormat, Vec<u8>)>,
    /// Requests answered (with their error, if any).
    pub requests_done: Vec<(RequestId, Option<Problem>)>,
    /// Every event seen, in order.
    pub log: Vec<Event>,
    /// Bytes of received chunks, to check bounded buffers.
    pub bytes_read: u64,
    /// Reads made (even: `read_borrowed`, odd: `read`).
    reads: u64,
    /// Writes made (even: `write_room` + `commit_write`, odd: `write`).
    writes: u64,
    sending: BTreeMap<SendId, Sending>,
    receiving: BTreeMap<RecvId, Receiving>,
    held: Vec<(RecvId, Receiving)>,
    open_requests: usize,
    closed_sent: bool,
    /// The buffer `read` copies into, allocated once (zeroing 64 KiB per pump dominated the
    /// datagram fuzz targets).
    read_buf: Vec<u8>,
}

fn bad_name(path: &str) -> bool {
    path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || path.chars().any(char::is_control)
}

impl MemApp {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a published file.
    pub fn with_file(mut self, path: &str, data: Vec<u8>) -> Self {
        self.files.insert(String::from(path), data);
        self
    }

    /// A fresh application with this one's files, partials, queued work and settings, and
    /// no history (a server's template for every new connection).
    pub fn clone_store(&self) -> MemApp {
        MemApp {
            files: self.files.clone(),
            partials: self.partials.clone(),
            fail_commit: self.fail_commit.clone(),
            overwrite: self.overwrite,
            to_send: self.to_send.clone(),
            to_get: self.to_get.clone(),
            to_list: self.to_list.clone(),
            read_paused: self.read_paused,
            hold_commits: self.hold_commits,
            close_when_done: self.close_when_done,
            also_offer: self.also_offer.clone(),
            ..MemApp::default()
        }
    }

    /// Keep the bytes of every unfinished incoming file as partial files (a crash).
    pub fn interrupt(&mut self) {
        for r in core::mem::take(&mut self.receiving).into_values() {
            if !r.buf.is_empty() {
                self.partials.insert(r.path, r.buf);
            }
        }
        self.sending.clear();
        self.open_requests = 0;
        self.closed_sent = false;
    }

    /// Fail the `pick`-th (modulo) incoming file still being received, as a disk error
    /// before its end would (`commit_failed`), and forget it.
    pub fn fail_incoming(&mut self, s: &mut Session, pick: usize) {
        let Some(id) = self
            .receiving
            .keys()
            .copied()
            .nth(pick % self.receiving.len().max(1))
        else {
            return;
        };
        if s.commit_failed(id, Problem::new(Reason::Io, "disk error"))
            .is_ok()
            && let Some(r) = self.receiving.remove(&id)
        {
            self.receive_failed.push((r.path, Reason::Io));
        }
    }

    /// Abort the `pick`-th (modulo) outgoing file (as when it cannot be read any more).
    pub fn abort_outgoing(&mut self, s: &mut Session, pick: usize) {
        let Some(id) = self
            .sending
            .keys()
            .copied()
            .nth(pick % self.sending.len().max(1))
        else {
            return;
        };
        if s.abort(id, Problem::new(Reason::Io, "read error")).is_ok()
            && let Some(f) = self.sending.remove(&id)
        {
            self.outcomes
                .insert(f.path, Outcome::Failed(Reason::Cancelled));
        }
    }

    /// Whether all queued work is answered.
    pub fn idle(&self) -> bool {
        self.to_send.is_empty()
            && self.to_get.is_empty()
            && self.to_list.is_empty()
            && self.sending.is_empty()
            && self.receiving.is_empty()
            && self.held.is_empty()
            && self.open_requests == 0
    }

    fn meta(&self, path: &str, data: &[u8]) -> FileMeta {
        let mut m = FileMeta::new(path, Some(data.len() as u64));
        m.mode = Some(0o644);
        m.hash = Some(hash(data));
        m.overwrite = self.overwrite;
        m
    }

    /// Make requests, write file bytes, read chunks and react to events until nothing
    /// changes. Returns whether anything happened.
    pub fn pump(&mut self, s: &mut Session) -> bool {
        let mut progress = false;
        loop {
            let mut again = false;
            if s.is_connected() {
                again |= self.make_requests(s);
                again |= self.write_files(s);
            }
            if !self.read_paused {
                again |= self.read_chunks(s);
            }
            if !self.hold_commits {
                for (id, r) in core::mem::take(&mut self.held) {
                    self.commit(s, id, r);
                    again = true;
                }
            }
            while let Some(ev) = s.poll_event() {
                self.log.push(ev.clone());
                self.on_event(s, ev);
                again = true;
            }
            if self.close_when_done && self.idle() && s.is_connected() && !self.closed_sent {
                s.close(crate::Instant::ZERO, CloseCode::Done);
                self.closed_sent = true;
                again = true;
            }
            if !again {
                return progress;
            }
            progress = true;
        }
    }

    fn make_requests(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        while let Some(path) = self.to_send.front().cloned() {
            let data = self.files.get(&path).cloned().unwrap_or_default();
            match s.offer(self.meta(&path, &data)) {
                Ok(id) => {
                    self.to_send.pop_front();
                    self.sending.insert(
                        id,
                        Sending {
                            path,
                            data,
                            pos: 0,
                            started: false,
                            finished: false,
                        },
                    );
                    any = true;
                }
                Err(RequestError::Busy) | Err(RequestError::NotOpen) => break,
                Err(e) => panic!("offer failed: {e}"),
            }
        }
        while let Some(path) = self.to_get.front().cloned() {
            match s.get(&path) {
                Ok(_) => {
                    self.to_get.pop_front();
                    self.open_requests += 1;
                    any = true;
                }
                Err(_) => break,
            }
        }
        while let Some(path) = self.to_list.front().cloned() {
            match s.list(&path) {
                Ok(_) => {
                    self.to_list.pop_front();
                    self.open_requests += 1;
                    any = true;
                }
                Err(_) => break,
            }
        }
        any
    }

    fn write_files(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        for (id, f) in self.sending.iter_mut() {
            if !f.started || f.finished {
                continue;
            }
            while f.pos < f.data.len() {
                // Alternate `write` (a copy of our bytes) and `write_room` + `commit_write`
                // (bytes put straight into the session's buffer), so every test runs both.
                self.writes += 1;
                let written = if self.writes.is_multiple_of(2) {
                    match s.write_room(*id, usize::MAX) {
                        Ok(room) => {
                            let n = room.len().min(f.data.len() - f.pos);
                            room[..n].copy_from_slice(&f.data[f.pos..f.pos + n]);
                            s.commit_write(*id, n)
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    s.write(*id, &f.data[f.pos..])
                };
                match written {
                    Ok(0) => return any,
                    Ok(n) => {
                        f.pos += n;
                        any = true;
                    }
                    Err(_) => return any,
                }
            }
            if s.finish(*id).is_ok() {
                f.finished = true;
                any = true;
            }
        }
        any
    }

    /// Reads alternate between `read` (a copy into our buffer) and `read_borrowed` (the
    /// session's own bytes), so every test runs both and their interleaving.
    fn read_chunks(&mut self, s: &mut Session) -> bool {
        let mut buf = core::mem::take(&mut self.read_buf);
        buf.resize(CHUNK, 0);
        let any = self.read_chunks_into(s, &mut buf);
        self.read_buf = buf;
        any
    }

    fn read_chunks_into(&mut self, s: &mut Session, buf: &mut [u8]) -> bool {
        let mut any = false;
        loop {
            self.reads += 1;
            let got = if self.reads.is_multiple_of(2) {
                s.read_borrowed()
                    .map(|c| c.map(|(c, bytes)| (c, bytes.to_vec())))
            } else {
                s.read(buf).map(|c| c.map(|c| (c, buf[..c.len].to_vec())))
            };
            match got {
                Ok(Some((c, bytes))) => {
                    assert_eq!(bytes.len(), c.len);
                    let r = self
                        .receiving
                        .get_mut(&c.id)
                        .expect("chunk for a file this app accepted");
                    let end = c.offset as usize + c.len;
                    if r.buf.len() < end {
                        r.buf.resize(end, 0);
                    }
                    r.buf[c.offset as usize..end].copy_from_slice(&bytes);
                    self.bytes_read += c.len as u64;
                    any = true;
                }
                Ok(None) => return any,
                Err(ReadError::BufferTooSmall(_)) => unreachable!("CHUNK always suffices"),
                Err(ReadError::Session(_)) => return any,
            }
        }
    }

    fn commit(&mut self, s: &mut Session, id: RecvId, r: Receiving) {
        if self.fail_commit.contains(&r.path) {
            let _ = s.commit_failed(id, Problem::new(Reason::NoSpace, "disk full"));
            self.partials.insert(r.path, r.buf);
        } else {
            self.committed.push(r.path.clone());
            self.files.insert(r.path, r.buf);
            let _ = s.committed(id);
        }
    }

    fn on_event(&mut self, s: &mut Session, ev: Event) {
        match ev {
            Event::Offered { id, meta, .. } => {
                let problem = if bad_name(&meta.path) {
                    Some(Problem::new(Reason::BadName, "invalid name"))
                } else if let Some(existing) = self.files.get(&meta.path) {
                    if meta.hash == Some(hash(existing)) {
                        Some(Problem::new(Reason::UpToDate, "identical"))
                    } else if !meta.overwrite {
                        Some(Problem::new(Reason::Exists, "exists"))
                    } else {
                        None
                    }
                } else {
                    None
                };
                if let Some(p) = problem {
                    let _ = s.reject(id, p);
                    return;
                }
                let mut buf = Vec::new();
                let mut prefix = None;
                if let Some(part) = self.partials.remove(&meta.path)
                    && meta.size.is_some_and(|size| part.len() as u64 <= size)
                {
                    let mut h = FileHasher::new();
                    h.update(&part);
                    prefix = Some(h);
                    buf = part;
                }
                let _ = s.accept(id, prefix);
                self.receiving.insert(
                    id,
                    Receiving {
                        path: meta.path,
                        buf,
                    },
                );
            }
            Event::Accepted { id, resume_from } => {
                let Some(f) = self.sending.get_mut(&id) else {
                    return;
                };
                let mut h = FileHasher::new();
                if let Some(prefix) = f.data.get(..resume_from as usize) {
                    h.update(prefix);
                }
                if let Ok(offset) = s.start(id, h) {
                    f.pos = offset as usize;
                    f.started = true;
                }
            }
            Event::Rejected { id, problem } => {
                if let Some(f) = self.sending.remove(&id) {
                    self.outcomes
                        .insert(f.path, Outcome::Rejected(problem.reason));
                }
            }
            Event::Delivered { id, .. } => {
                if let Some(f) = self.sending.remove(&id) {
                    self.outcomes.insert(f.path, Outcome::Delivered);
                }
            }
            Event::DeliveryFailed { id, problem } => {
                if let Some(f) = self.sending.remove(&id) {
                    self.outcomes
                        .insert(f.path, Outcome::Failed(problem.reason));
                }
            }
            Event::Verified { id, size, hash: h } => {
                let Some(mut r) = self.receiving.remove(&id) else {
                    return;
                };
                r.buf.truncate(size as usize);
                assert_eq!(hash(&r.buf), h, "Received must mean the bytes match");
                if self.hold_commits {
                    self.held.push((id, r));
                } else {
                    self.commit(s, id, r);
                }
            }
            Event::ReceiveFailed { id, problem } => {
                if let Some(r) = self.receiving.remove(&id) {
                    self.receive_failed.push((r.path, problem.reason));
                }
            }
            Event::GetRequested { req, path } => {
                let prefix = alloc::format!("{path}/");
                let matches: Vec<(String, Vec<u8>)> = self
                    .files
                    .iter()
                    .filter(|(p, _)| {
                        **p == path || p.starts_with(&prefix) || self.also_offer.contains(p)
                    })
                    .map(|(p, d)| (p.clone(), d.clone()))
                    .collect();
                if matches.is_empty() {
                    let _ = s.finish_request(req, Some(Problem::new(Reason::NotFound, &path)));
                    return;
                }
                for (p, data) in matches {
                    if let Ok(id) = s.offer_for(req, self.meta(&p, &data)) {
                        self.sending.insert(
                            id,
                            Sending {
                                path: p,
                                data,
                                pos: 0,
                                started: false,
                                finished: false,
                            },
                        );
                    }
                }
                let _ = s.finish_request(req, None);
            }
            Event::ListRequested { req, path } => {
                let entries = self
                    .files
                    .iter()
                    .filter(|(p, _)| path.is_empty() || p.starts_with(path.as_str()))
                    .map(|(p, d)| ListEntry {
                        path: p.clone(),
                        size: d.len() as u64,
                        mtime: None,
                    })
                    .collect();
                let _ = s.send_listing(req, entries);
                let _ = s.finish_request(req, None);
            }
            Event::RecordReceived { req, format, body } => {
                self.records.push((format, body));
                let _ = s.finish_request(req, None);
            }
            Event::Listing { entries, .. } => self.listings.extend(entries),
            Event::RequestDone { req, error } => {
                self.open_requests = self.open_requests.saturating_sub(1);
                self.requests_done.push((req, error));
            }
            Event::Connected | Event::Closed { .. } => {}
        }
    }
}
