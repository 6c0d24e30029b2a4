//! The transfer layer: offers, accept/resume, chunking, whole-file hashes, requests.
//!
//! It speaks [`Frame`]s only and knows nothing of records, keys or byte streams: the session
//! feeds it authenticated frames in order and asks it to fill a plaintext budget with frames.
//! A datagram record layer would do the same (it must then deliver frames reliably and in
//! order; DATA frames carry explicit offsets so that later versions can relax the order for
//! file bytes).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::compress::{CHUNK, CompressPolicy, Compression, Deflater, Inflater};
use crate::error::{ReadError, RequestError, SessionError, Violation, WriteError};
use crate::hash::FileHasher;
use crate::session::event::{Chunk, Event, FileMeta, PeerRequestId, RecvId, RequestId, SendId};
use crate::wire::{
    BoundedVec, CONTROL_HEADER_LEN, Codec, Control, DATA_HEADER_LEN, DataFrame, ListEntry,
    MAX_CONTROL_LEN, MAX_DETAIL_LEN, MAX_LIST_ENTRIES, MAX_PATH_LEN, Mtime, Offer, Problem, Reason,
    RequestKind, encode_control, encode_data_header,
};

/// Limits and negotiated capabilities the transfer layer needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// We may send deflated chunks (the peer can inflate).
    pub(crate) may_deflate: bool,
    /// We accept deflated chunks.
    pub(crate) accept_deflate: bool,
    /// How we compress when allowed.
    pub(crate) compression: Compression,
    /// Open transfers + requests the peer accepts from us.
    pub(crate) peer_max_open: usize,
    /// Open transfers + requests we accept from the peer.
    pub(crate) our_max_open: usize,
    /// Bound on queued outgoing file bytes.
    pub(crate) send_buffer: usize,
    /// Bound on queued incoming encoded chunk bytes.
    pub(crate) recv_window: usize,
}

struct Outgoing {
    size: Option<u64>,
    state: OutState,
    /// Bytes handed to `write` (the next offset).
    written: u64,
    hasher: FileHasher,
    /// FileEnd has been framed: the receiver will forget the id on its own.
    end_sent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    Offered,
    Accepted {
        resume_from: u64,
        prefix_hash: [u8; 32],
    },
    Sending,
    Finished,
    /// We sent `Abort`; the receiver answers with exactly one `CommitFailed`.
    Aborted,
}

enum SendItem {
    Data {
        id: u32,
        offset: u64,
        buf: Vec<u8>,
        start: usize,
    },
    End {
        id: u32,
    },
}

struct Incoming {
    size: Option<u64>,
    state: InState,
    resume_from: u64,
    /// Next offset expected on the wire.
    wire_next: u64,
    /// Whether any DATA arrived (the first may restart at 0).
    data_seen: bool,
    /// Next offset `read` hands out, and the hash of everything before it.
    read_pos: u64,
    hasher: FileHasher,
    /// Chunks of this file waiting in the receive queue.
    queued: usize,
    end: Option<(u64, [u8; 32])>,
    /// The whole-file hash the Offer announced, if any: FileEnd must agree with it.
    offered_hash: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InState {
    Offered,
    Receiving,
    /// Verified, waiting for the application to commit.
    Verified,
    /// The application failed the file while the sender still sends: drop its DATA until
    /// FileEnd or Abort.
    Discarding,
}

struct RecvChunk {
    id: u32,
    offset: u64,
    codec: Codec,
    plain_len: u32,
    data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqKind {
    Get,
    List,
}

/// Transfer-layer state of one session.
pub(crate) struct Transfer {
    limits: Limits,
    next_send_id: u32,
    outgoing: BTreeMap<u32, Outgoing>,
    send_queue: VecDeque<SendItem>,
    send_queued: usize,
    control_out: VecDeque<Control>,
    incoming: BTreeMap<u32, Incoming>,
    recv_queue: VecDeque<RecvChunk>,
    recv_queued: usize,
    pool: Vec<Vec<u8>>,
    next_req: u32,
    my_requests: BTreeMap<u32, ReqKind>,
    peer_requests: BTreeMap<u32, ReqKind>,
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
    policy: CompressPolicy,
}

const POOL_MAX: usize = 16;

impl Transfer {
    pub(crate) fn new(limits: Limits) -> Self {
        let mode = if limits.may_deflate {
            limits.compression
        } else {
            Compression::Off
        };
        Transfer {
            limits,
            next_send_id: 0,
            outgoing: BTreeMap::new(),
            send_queue: VecDeque::new(),
            send_queued: 0,
            control_out: VecDeque::new(),
            incoming: BTreeMap::new(),
            recv_queue: VecDeque::new(),
            recv_queued: 0,
            pool: Vec::new(),
            next_req: 0,
            my_requests: BTreeMap::new(),
            peer_requests: BTreeMap::new(),
            deflater: None,
            inflater: None,
            policy: CompressPolicy::new(mode),
        }
    }

    // ---- sending side: application calls -------------------------------------------------

    pub(crate) fn offer(
        &mut self,
        meta: FileMeta,
        request: Option<PeerRequestId>,
    ) -> Result<SendId, RequestError> {
        if meta.path.len() > MAX_PATH_LEN {
            return Err(RequestError::PathTooLong);
        }
        if let Some(r) = request
            && self.peer_requests.get(&r.0) != Some(&ReqKind::Get)
        {
            return Err(RequestError::InvalidState);
        }
        if self.my_open_count() >= self.limits.peer_max_open {
            return Err(RequestError::Busy);
        }
        let id = free_id(&mut self.next_send_id, &self.outgoing);
        self.outgoing.insert(
            id,
            Outgoing {
                size: meta.size,
                state: OutState::Offered,
                written: 0,
                hasher: FileHasher::new(),
                end_sent: false,
            },
        );
        self.control_out.push_back(Control::Offer(Offer {
            id,
            path: meta.path,
            size: meta.size,
            mode: meta.mode,
            mtime: meta.mtime,
            request: request.map(|r| r.0),
            hash: meta.hash,
            overwrite: meta.overwrite,
        }));
        Ok(SendId(id))
    }

    pub(crate) fn start(&mut self, id: SendId, prefix: FileHasher) -> Result<u64, RequestError> {
        let out = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(RequestError::InvalidState)?;
        let OutState::Accepted {
            resume_from,
            prefix_hash,
        } = out.state
        else {
            return Err(RequestError::InvalidState);
        };
        let resume = resume_from > 0
            && prefix.len() == resume_from
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                &prefix.finalize()[..],
                &prefix_hash[..],
            ));
        if resume {
            out.hasher = prefix;
            out.written = resume_from;
        } else {
            out.hasher = FileHasher::new();
            out.written = 0;
        }
        out.state = OutState::Sending;
        Ok(out.written)
    }

    /// Room left in the send buffer.
    pub(crate) fn send_capacity(&self) -> usize {
        self.limits.send_buffer.saturating_sub(self.send_queued)
    }

    pub(crate) fn write(&mut self, id: SendId, data: &[u8]) -> Result<usize, WriteError> {
        let out = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(WriteError::InvalidState)?;
        if out.state != OutState::Sending {
            return Err(WriteError::InvalidState);
        }
        if out
            .size
            .is_some_and(|size| out.written + data.len() as u64 > size)
        {
            return Err(WriteError::TooLong);
        }
        let n = data
            .len()
            .min(self.limits.send_buffer.saturating_sub(self.send_queued));
        let data = &data[..n];
        out.hasher.update(data);
        let mut offset = out.written;
        out.written += n as u64;
        self.send_queued += n;
        let mut rest = data;
        // Top up the last queued chunk of the same file, then add whole chunks.
        if let Some(SendItem::Data { id: last, buf, .. }) = self.send_queue.back_mut()
            && *last == id.0
            && buf.len() < CHUNK
        {
            let k = rest.len().min(CHUNK - buf.len());
            buf.extend_from_slice(&rest[..k]);
            rest = &rest[k..];
            offset += k as u64;
        }
        while !rest.is_empty() {
            let k = rest.len().min(CHUNK);
            let mut buf = self.pool.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(&rest[..k]);
            self.send_queue.push_back(SendItem::Data {
                id: id.0,
                offset,
                buf,
                start: 0,
            });
            rest = &rest[k..];
            offset += k as u64;
        }
        Ok(n)
    }

    pub(crate) fn finish(&mut self, id: SendId) -> Result<(), WriteError> {
        let out = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(WriteError::InvalidState)?;
        if out.state != OutState::Sending {
            return Err(WriteError::InvalidState);
        }
        if out.size.is_some_and(|size| out.written < size) {
            return Err(WriteError::TooShort);
        }
        out.state = OutState::Finished;
        self.send_queue.push_back(SendItem::End { id: id.0 });
        Ok(())
    }

    /// Give up on a file after it was accepted and before its FileEnd went out.
    pub(crate) fn abort(&mut self, id: SendId, problem: Problem) -> Result<(), RequestError> {
        let out = self
            .outgoing
            .get_mut(&id.0)
            .ok_or(RequestError::InvalidState)?;
        if matches!(out.state, OutState::Offered | OutState::Aborted) || out.end_sent {
            return Err(RequestError::InvalidState);
        }
        out.state = OutState::Aborted;
        self.purge_send_queue(id.0);
        self.control_out.push_back(Control::Abort {
            id: id.0,
            problem: bounded(problem),
        });
        Ok(())
    }

    fn purge_send_queue(&mut self, id: u32) {
        let mut freed = 0;
        self.send_queue.retain(|item| match item {
            SendItem::Data {
                id: i, buf, start, ..
            } if *i == id => {
                freed += buf.len() - start;
                false
            }
            SendItem::End { id: i } => *i != id,
            _ => true,
        });
        self.send_queued -= freed;
    }

    // ---- receiving side: application calls -----------------------------------------------

    pub(crate) fn accept(
        &mut self,
        id: RecvId,
        prefix: Option<FileHasher>,
    ) -> Result<(), RequestError> {
        let inc = self
            .incoming
            .get_mut(&id.0)
            .ok_or(RequestError::InvalidState)?;
        if inc.state != InState::Offered {
            return Err(RequestError::InvalidState);
        }
        let prefix = prefix.unwrap_or_default();
        let resume_from = prefix.len();
        if inc.size.is_some_and(|s| resume_from > s) || (inc.size.is_none() && resume_from > 0) {
            return Err(RequestError::InvalidResume);
        }
        let prefix_hash = prefix.finalize();
        inc.state = InState::Receiving;
        inc.resume_from = resume_from;
        inc.wire_next = resume_from;
        inc.read_pos = resume_from;
        inc.hasher = prefix;
        self.control_out.push_back(Control::Accept {
            id: id.0,
            resume_from,
            prefix_hash,
        });
        Ok(())
    }

    pub(crate) fn reject(&mut self, id: RecvId, problem: Problem) -> Result<(), RequestError> {
        match self.incoming.get(&id.0) {
            Some(inc) if inc.state == InState::Offered => {}
            _ => return Err(RequestError::InvalidState),
        }
        self.incoming.remove(&id.0);
        self.control_out.push_back(Control::Reject {
            id: id.0,
            problem: bounded(problem),
        });
        Ok(())
    }

    pub(crate) fn committed(&mut self, id: RecvId) -> Result<(), RequestError> {
        match self.incoming.get(&id.0) {
            Some(inc) if inc.state == InState::Verified => {}
            _ => return Err(RequestError::InvalidState),
        }
        self.incoming.remove(&id.0);
        self.control_out.push_back(Control::Ack { id: id.0 });
        Ok(())
    }

    pub(crate) fn commit_failed(
        &mut self,
        id: RecvId,
        problem: Problem,
    ) -> Result<(), RequestError> {
        let inc = self
            .incoming
            .get_mut(&id.0)
            .ok_or(RequestError::InvalidState)?;
        match inc.state {
            InState::Receiving if inc.end.is_none() => inc.state = InState::Discarding,
            InState::Receiving | InState::Verified => {
                self.incoming.remove(&id.0);
            }
            InState::Offered | InState::Discarding => return Err(RequestError::InvalidState),
        }
        self.purge_recv_queue(id.0);
        self.control_out.push_back(Control::CommitFailed {
            id: id.0,
            problem: bounded(problem),
        });
        Ok(())
    }

    fn purge_recv_queue(&mut self, id: u32) {
        let mut freed = 0;
        let pool = &mut self.pool;
        self.recv_queue.retain_mut(|c| {
            if c.id == id {
                freed += c.data.len();
                if pool.len() < POOL_MAX {
                    pool.push(core::mem::take(&mut c.data));
                }
                false
            } else {
                true
            }
        });
        self.recv_queued -= freed;
        if let Some(inc) = self.incoming.get_mut(&id) {
            inc.queued = 0;
        }
    }

    /// Room for one more record of `len` plaintext bytes in the receive window.
    pub(crate) fn can_take(&self, len: usize) -> bool {
        self.recv_queued == 0 || self.recv_queued + len <= self.limits.recv_window
    }

    pub(crate) fn read(
        &mut self,
        out: &mut [u8],
        events: &mut VecDeque<Event>,
    ) -> Result<Option<Chunk>, ReadError> {
        let Some(front) = self.recv_queue.front() else {
            return Ok(None);
        };
        let plain_len = front.plain_len as usize;
        if out.len() < plain_len {
            return Err(ReadError::BufferTooSmall(crate::error::BufferTooSmall {
                needed: plain_len,
            }));
        }
        let Some(mut chunk) = self.recv_queue.pop_front() else {
            return Ok(None);
        };
        self.recv_queued -= chunk.data.len();
        let dst = &mut out[..plain_len];
        match chunk.codec {
            Codec::Stored => dst.copy_from_slice(&chunk.data),
            Codec::Deflate => {
                let inflater = self.inflater.get_or_insert_with(Inflater::new);
                inflater.inflate(&chunk.data, dst).map_err(|e| {
                    ReadError::Session(SessionError::Protocol(Violation::Inflate(e)))
                })?;
            }
        }
        if self.pool.len() < POOL_MAX {
            chunk.data.clear();
            self.pool.push(core::mem::take(&mut chunk.data));
        }
        // Invariant: every queued chunk belongs to an open incoming file (purged otherwise).
        let Some(inc) = self.incoming.get_mut(&chunk.id) else {
            return Ok(None);
        };
        if chunk.offset != inc.read_pos {
            // Validated on arrival: the only jump is a restart from 0 after a prefix mismatch.
            inc.hasher = FileHasher::new();
        }
        inc.hasher.update(dst);
        inc.read_pos = chunk.offset + plain_len as u64;
        inc.queued -= 1;
        self.check_complete(chunk.id, events);
        Ok(Some(Chunk {
            id: RecvId(chunk.id),
            offset: chunk.offset,
            len: plain_len,
        }))
    }

    /// Emit `Received` (or fail the file) once FileEnd arrived and every byte was read.
    fn check_complete(&mut self, id: u32, events: &mut VecDeque<Event>) {
        let Some(inc) = self.incoming.get_mut(&id) else {
            return;
        };
        let Some((size, hash)) = inc.end else {
            return;
        };
        if inc.state != InState::Receiving || inc.queued > 0 || inc.read_pos != size {
            return;
        }
        // The bytes must match FileEnd, and FileEnd the hash the Offer announced (if any).
        let ok = bool::from(subtle::ConstantTimeEq::ct_eq(
            &inc.hasher.finalize()[..],
            &hash[..],
        )) && inc.offered_hash.is_none_or(|h| h == hash);
        if ok {
            inc.state = InState::Verified;
            events.push_back(Event::Received {
                id: RecvId(id),
                size,
                hash,
            });
        } else {
            self.incoming.remove(&id);
            let problem = Problem::new(Reason::HashMismatch, "whole-file hash does not match");
            self.control_out.push_back(Control::CommitFailed {
                id,
                problem: problem.clone(),
            });
            events.push_back(Event::ReceiveFailed {
                id: RecvId(id),
                problem,
            });
        }
    }

    // ---- requests ------------------------------------------------------------------------

    pub(crate) fn request(&mut self, kind: RequestKind) -> Result<RequestId, RequestError> {
        let (path, k) = match &kind {
            RequestKind::Get { path } => (path, ReqKind::Get),
            RequestKind::List { path } => (path, ReqKind::List),
        };
        if path.len() > MAX_PATH_LEN {
            return Err(RequestError::PathTooLong);
        }
        if self.my_open_count() >= self.limits.peer_max_open {
            return Err(RequestError::Busy);
        }
        let req = free_id(&mut self.next_req, &self.my_requests);
        self.my_requests.insert(req, k);
        self.control_out.push_back(Control::Request { req, kind });
        Ok(RequestId(req))
    }

    pub(crate) fn send_listing(
        &mut self,
        req: PeerRequestId,
        entries: Vec<ListEntry>,
    ) -> Result<(), RequestError> {
        if self.peer_requests.get(&req.0) != Some(&ReqKind::List) {
            return Err(RequestError::InvalidState);
        }
        if entries.iter().any(|e| e.path.len() > MAX_PATH_LEN) {
            return Err(RequestError::PathTooLong);
        }
        // Split into messages that fit a CONTROL frame (an entry's path is at most
        // MAX_PATH_LEN bytes, so one entry always fits).
        let mut scratch = alloc::vec![0u8; MAX_CONTROL_LEN + CONTROL_HEADER_LEN];
        let mut rest = &entries[..];
        while !rest.is_empty() {
            let mut take = rest.len().min(MAX_LIST_ENTRIES);
            loop {
                let msg = Control::Listing {
                    req: req.0,
                    entries: BoundedVec(rest[..take].to_vec()),
                };
                if take == 1 || encode_control(&msg, &mut scratch).is_ok() {
                    self.control_out.push_back(msg);
                    rest = &rest[take..];
                    break;
                }
                take /= 2;
            }
        }
        Ok(())
    }

    pub(crate) fn finish_request(
        &mut self,
        req: PeerRequestId,
        error: Option<Problem>,
    ) -> Result<(), RequestError> {
        if self.peer_requests.remove(&req.0).is_none() {
            return Err(RequestError::InvalidState);
        }
        self.control_out.push_back(Control::Done {
            req: req.0,
            error: error.map(bounded),
        });
        Ok(())
    }

    // ---- frames from the peer ------------------------------------------------------------

    /// Transfers and requests the peer has open towards us, as the peer counts them: a file we
    /// failed (`Discarding`) no longer counts, the peer forgot it when our `CommitFailed` came.
    fn open_count(&self) -> usize {
        let files = self
            .incoming
            .values()
            .filter(|i| i.state != InState::Discarding)
            .count();
        files + self.peer_requests.len()
    }

    /// Transfers and requests we have open towards the peer. Each entry leaves this count no
    /// earlier than the peer's matching entry leaves its `open_count`, so respecting the
    /// peer's `max_open` here never trips its limit.
    fn my_open_count(&self) -> usize {
        self.outgoing.len() + self.my_requests.len()
    }

    /// The peer closed its direction: it will send nothing more. Incoming files without their
    /// FileEnd and open peer requests can never complete and are dropped; our outgoing files and
    /// requests can no longer be answered and fail.
    pub(crate) fn on_peer_closed(&mut self, events: &mut VecDeque<Event>) {
        let dead: Vec<u32> = self
            .incoming
            .iter()
            .filter(|(_, i)| i.end.is_none() || i.state == InState::Discarding)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            if let Some(inc) = self.incoming.remove(&id) {
                self.purge_recv_queue(id);
                if inc.state != InState::Discarding {
                    events.push_back(Event::ReceiveFailed {
                        id: RecvId(id),
                        problem: Problem::new(Reason::Cancelled, "peer closed the session"),
                    });
                }
            }
        }
        self.peer_requests.clear();
        for (id, out) in core::mem::take(&mut self.outgoing) {
            if out.state != OutState::Aborted {
                events.push_back(Event::DeliveryFailed {
                    id: SendId(id),
                    problem: Problem::new(Reason::Cancelled, "peer closed the session"),
                });
            }
        }
        self.send_queue.clear();
        self.send_queued = 0;
        for (req, _) in core::mem::take(&mut self.my_requests) {
            events.push_back(Event::RequestDone {
                req: RequestId(req),
                error: Some(Problem::new(Reason::Cancelled, "peer closed the session")),
            });
        }
    }

    /// Answers the peer is still owed: files whose FileEnd arrived but that are not yet read,
    /// verified and committed (their `Ack` or `CommitFailed` must still go out).
    pub(crate) fn owes_answers(&self) -> bool {
        !self.incoming.is_empty()
    }

    pub(crate) fn handle_data(&mut self, d: &DataFrame<'_>) -> Result<(), Violation> {
        let inc = self
            .incoming
            .get_mut(&d.file_id)
            .ok_or(Violation::UnknownId(d.file_id))?;
        match inc.state {
            InState::Offered => return Err(Violation::DataBeforeAccept(d.file_id)),
            InState::Verified => return Err(Violation::SizeMismatch(d.file_id)),
            InState::Discarding => return Ok(()),
            InState::Receiving => {}
        }
        if d.codec == Codec::Deflate && !self.limits.accept_deflate {
            return Err(Violation::CompressionNotNegotiated);
        }
        if inc.end.is_some() {
            return Err(Violation::SizeMismatch(d.file_id));
        }
        let restart = !inc.data_seen && d.offset == 0 && inc.resume_from > 0;
        if d.offset != inc.wire_next && !restart {
            return Err(Violation::NonContiguous(d.file_id));
        }
        let end = d.offset + u64::from(d.plain_len);
        if inc.size.is_some_and(|s| end > s) {
            return Err(Violation::SizeMismatch(d.file_id));
        }
        inc.data_seen = true;
        inc.wire_next = end;
        inc.queued += 1;
        let mut data = self.pool.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(d.body);
        self.recv_queued += data.len();
        self.recv_queue.push_back(RecvChunk {
            id: d.file_id,
            offset: d.offset,
            codec: d.codec,
            plain_len: d.plain_len,
            data,
        });
        Ok(())
    }

    /// A control frame other than the session's own (`Start`, `Ping`, `Close`).
    pub(crate) fn handle_control(
        &mut self,
        msg: Control,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        check_fields(&msg)?;
        match msg {
            Control::Offer(o) => {
                if self.incoming.contains_key(&o.id) {
                    return Err(Violation::DuplicateId(o.id));
                }
                if self.open_count() >= self.limits.our_max_open {
                    return Err(Violation::TooManyOpen);
                }
                let request = match o.request {
                    Some(r) if self.my_requests.get(&r) == Some(&ReqKind::Get) => {
                        Some(RequestId(r))
                    }
                    Some(r) => return Err(Violation::UnknownId(r)),
                    None => None,
                };
                self.incoming.insert(
                    o.id,
                    Incoming {
                        size: o.size,
                        state: InState::Offered,
                        resume_from: 0,
                        wire_next: 0,
                        data_seen: false,
                        read_pos: 0,
                        hasher: FileHasher::new(),
                        queued: 0,
                        end: None,
                        offered_hash: o.hash,
                    },
                );
                events.push_back(Event::Offered {
                    id: RecvId(o.id),
                    meta: FileMeta {
                        path: o.path,
                        size: o.size,
                        mode: o.mode,
                        mtime: o.mtime,
                        hash: o.hash,
                        overwrite: o.overwrite,
                    },
                    request,
                });
            }
            Control::Accept {
                id,
                resume_from,
                prefix_hash,
            } => {
                let out = self.outgoing.get_mut(&id).ok_or(Violation::UnknownId(id))?;
                if out.state != OutState::Offered {
                    return Err(Violation::DuplicateId(id));
                }
                let too_far = match out.size {
                    Some(s) => resume_from > s,
                    None => resume_from > 0,
                };
                if too_far {
                    return Err(Violation::SizeMismatch(id));
                }
                out.state = OutState::Accepted {
                    resume_from,
                    prefix_hash,
                };
                events.push_back(Event::Accepted {
                    id: SendId(id),
                    resume_from,
                });
            }
            Control::Reject { id, problem } => {
                match self.outgoing.get(&id) {
                    Some(o) if o.state == OutState::Offered => {}
                    Some(_) => return Err(Violation::DuplicateId(id)),
                    None => return Err(Violation::UnknownId(id)),
                }
                self.outgoing.remove(&id);
                events.push_back(Event::Rejected {
                    id: SendId(id),
                    problem,
                });
            }
            Control::FileEnd { id, size, hash } => {
                let inc = self.incoming.get_mut(&id).ok_or(Violation::UnknownId(id))?;
                match inc.state {
                    InState::Offered => return Err(Violation::DataBeforeAccept(id)),
                    InState::Verified => return Err(Violation::DuplicateId(id)),
                    InState::Discarding => {
                        self.incoming.remove(&id);
                        return Ok(());
                    }
                    InState::Receiving => {}
                }
                if inc.end.is_some() || size != inc.wire_next || inc.size.is_some_and(|s| s != size)
                {
                    return Err(Violation::SizeMismatch(id));
                }
                inc.end = Some((size, hash));
                self.check_complete(id, events);
            }
            Control::Ack { id } => {
                self.take_finished(id)?;
                events.push_back(Event::Delivered { id: SendId(id) });
            }
            Control::CommitFailed { id, problem } => {
                let out = self.outgoing.get(&id).ok_or(Violation::UnknownId(id))?;
                let (state, end_sent) = (out.state, out.end_sent);
                if state == OutState::Offered {
                    return Err(Violation::DataBeforeAccept(id));
                }
                self.outgoing.remove(&id);
                if state != OutState::Aborted {
                    self.purge_send_queue(id);
                    if !end_sent {
                        let p = Problem::new(Reason::Cancelled, "receiver failed the file");
                        self.control_out
                            .push_back(Control::Abort { id, problem: p });
                    }
                    events.push_back(Event::DeliveryFailed {
                        id: SendId(id),
                        problem,
                    });
                }
            }
            Control::Abort { id, problem } => {
                let inc = self.incoming.get(&id).ok_or(Violation::UnknownId(id))?;
                match inc.state {
                    InState::Offered => return Err(Violation::DataBeforeAccept(id)),
                    InState::Verified => return Err(Violation::DuplicateId(id)),
                    InState::Discarding => {}
                    InState::Receiving => {
                        let p = Problem::new(Reason::Cancelled, "sender aborted");
                        self.control_out
                            .push_back(Control::CommitFailed { id, problem: p });
                        events.push_back(Event::ReceiveFailed {
                            id: RecvId(id),
                            problem,
                        });
                    }
                }
                self.incoming.remove(&id);
                self.purge_recv_queue(id);
            }
            Control::Request { req, kind } => {
                if self.peer_requests.contains_key(&req) {
                    return Err(Violation::DuplicateId(req));
                }
                if self.open_count() >= self.limits.our_max_open {
                    return Err(Violation::TooManyOpen);
                }
                let (k, ev) = match kind {
                    RequestKind::Get { path } => (
                        ReqKind::Get,
                        Event::GetRequested {
                            req: PeerRequestId(req),
                            path,
                        },
                    ),
                    RequestKind::List { path } => (
                        ReqKind::List,
                        Event::ListRequested {
                            req: PeerRequestId(req),
                            path,
                        },
                    ),
                };
                self.peer_requests.insert(req, k);
                events.push_back(ev);
            }
            Control::Listing { req, entries } => {
                if self.my_requests.get(&req) != Some(&ReqKind::List) {
                    return Err(Violation::UnknownId(req));
                }
                events.push_back(Event::Listing {
                    req: RequestId(req),
                    entries: entries.0,
                });
            }
            Control::Done { req, error } => {
                self.my_requests
                    .remove(&req)
                    .ok_or(Violation::UnknownId(req))?;
                events.push_back(Event::RequestDone {
                    req: RequestId(req),
                    error,
                });
            }
            // The session consumes these before calling us.
            Control::Start | Control::Ping | Control::Close { .. } => {
                return Err(Violation::BadRecordContents);
            }
        }
        Ok(())
    }

    fn take_finished(&mut self, id: u32) -> Result<Outgoing, Violation> {
        match self.outgoing.get(&id) {
            Some(o) if o.end_sent => {}
            Some(_) => return Err(Violation::SizeMismatch(id)),
            None => return Err(Violation::UnknownId(id)),
        }
        self.outgoing.remove(&id).ok_or(Violation::UnknownId(id))
    }

    // ---- frames to the peer --------------------------------------------------------------

    /// Whether frames are waiting to be sent.
    pub(crate) fn has_output(&self) -> bool {
        !self.control_out.is_empty() || !self.send_queue.is_empty()
    }

    /// Fill `out` with as many frames as fit: control frames first, then file data in the
    /// order it was written. Returns the bytes used.
    pub(crate) fn poll_frames(&mut self, out: &mut [u8]) -> usize {
        let mut pos = 0;
        while let Some(msg) = self.control_out.front() {
            match encode_control(msg, &mut out[pos..]) {
                Ok(n) => {
                    pos += n;
                    self.control_out.pop_front();
                }
                Err(_) => return pos,
            }
        }
        while let Some(item) = self.send_queue.front_mut() {
            match item {
                SendItem::End { id } => {
                    let id = *id;
                    let Some(o) = self.outgoing.get_mut(&id) else {
                        self.send_queue.pop_front();
                        continue;
                    };
                    let msg = Control::FileEnd {
                        id,
                        size: o.written,
                        hash: o.hasher.finalize(),
                    };
                    match encode_control(&msg, &mut out[pos..]) {
                        Ok(n) => {
                            pos += n;
                            o.end_sent = true;
                            self.send_queue.pop_front();
                        }
                        Err(_) => return pos,
                    }
                }
                SendItem::Data {
                    id,
                    offset,
                    buf,
                    start,
                } => {
                    let room = out.len() - pos;
                    if room <= DATA_HEADER_LEN {
                        return pos;
                    }
                    let n = (buf.len() - *start).min(room - DATA_HEADER_LEN);
                    let plain = &buf[*start..*start + n];
                    let slot = &mut out[pos + DATA_HEADER_LEN..pos + DATA_HEADER_LEN + n];
                    let mut codec = Codec::Stored;
                    let mut body_len = n;
                    if self.policy.should_try() {
                        let d = self.deflater.get_or_insert_with(|| Deflater::new(1));
                        let r = d.compress(plain, slot);
                        self.policy.record(n, r);
                        if let Some(m) = r {
                            codec = Codec::Deflate;
                            body_len = m;
                        }
                    }
                    if codec == Codec::Stored {
                        slot.copy_from_slice(plain);
                    }
                    // n and body_len are at most CHUNK, the header fits (checked above).
                    let _ = encode_data_header(
                        &mut out[pos..],
                        *id,
                        *offset,
                        codec,
                        n as u32,
                        body_len as u32,
                    );
                    pos += DATA_HEADER_LEN + body_len;
                    *start += n;
                    *offset += n as u64;
                    self.send_queued -= n;
                    if *start == buf.len()
                        && let Some(SendItem::Data { mut buf, .. }) = self.send_queue.pop_front()
                        && self.pool.len() < POOL_MAX
                    {
                        buf.clear();
                        self.pool.push(buf);
                    }
                }
            }
        }
        pos
    }

    /// Bytes of encoded chunks waiting for `read`.
    pub(crate) fn recv_queued(&self) -> usize {
        self.recv_queued
    }

    /// Chunks waiting for `read`.
    pub(crate) fn has_readable(&self) -> bool {
        !self.recv_queue.is_empty()
    }
}

/// Bounds the protocol sets on fields inside messages (the frame bound alone would allow more).
fn check_fields(msg: &Control) -> Result<(), Violation> {
    let problem = |p: &Problem| p.detail.len() <= MAX_DETAIL_LEN;
    let mtime = |m: &Option<Mtime>| m.is_none_or(|m| m.nanos < 1_000_000_000);
    let ok = match msg {
        Control::Offer(o) => {
            if o.path.len() > MAX_PATH_LEN {
                return Err(Violation::PathTooLong);
            }
            mtime(&o.mtime)
        }
        Control::Request {
            kind: RequestKind::Get { path } | RequestKind::List { path },
            ..
        } => {
            if path.len() > MAX_PATH_LEN {
                return Err(Violation::PathTooLong);
            }
            true
        }
        Control::Listing { entries, .. } => {
            if entries.0.iter().any(|e| e.path.len() > MAX_PATH_LEN) {
                return Err(Violation::PathTooLong);
            }
            entries.0.iter().all(|e| mtime(&e.mtime))
        }
        Control::Reject { problem: p, .. }
        | Control::CommitFailed { problem: p, .. }
        | Control::Abort { problem: p, .. } => problem(p),
        Control::Done { error, .. } => error.as_ref().is_none_or(problem),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Violation::InvalidField)
    }
}

/// A problem as the protocol allows it (detail cut to `MAX_DETAIL_LEN`).
fn bounded(p: Problem) -> Problem {
    if p.detail.len() <= MAX_DETAIL_LEN {
        p
    } else {
        Problem::new(p.reason, &p.detail)
    }
}

/// Next id not in use (ids wrap; an id is reused only once its transfer is gone).
fn free_id<V>(next: &mut u32, used: &BTreeMap<u32, V>) -> u32 {
    loop {
        let id = *next;
        *next = next.wrapping_add(1);
        if !used.contains_key(&id) {
            return id;
        }
    }
}
