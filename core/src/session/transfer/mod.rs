//! The transfer layer: offers, accept/resume, chunking, whole-file hashes, requests.
//!
//! It speaks [`Frame`]s only and knows nothing of records, keys or byte streams: the session
//! feeds it authenticated frames in order and asks it to fill a plaintext budget with frames.
//! A datagram record layer would do the same (it must then deliver frames reliably and in
//! order; DATA frames carry explicit offsets so that later versions can relax the order for
//! file bytes).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use crate::Instant;
use crate::compress::{Compression, Inflater};
use crate::error::Violation;
use crate::session::event::{Event, RecvId, RequestId, SendId};
use crate::wire::{
    Control, MAX_DETAIL_LEN, MAX_PATH_LEN, Mtime, Problem, Reason, RequestKind, encode_control,
};

mod data;
mod recv;
mod requests;
mod role;
mod send;

use data::{DataEncoder, Encoded};
use recv::{InState, Incoming, RecvChunk};
use requests::ReqKind;
use send::{OutState, Outgoing, SendItem};

/// Limits and negotiated capabilities the transfer layer needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// This side is the client: it serves no requests and takes only the files it asked for
    /// (see [`role`]).
    pub(crate) client: bool,
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

/// Transfer-layer state of one session.
pub(crate) struct Transfer {
    limits: Limits,
    next_send_id: u32,
    /// Boxed, like `incoming`: a file's state holds a BLAKE3 hasher (about 2 KiB), and a map
    /// of a thousand small files in flight would move kilobytes at every insert and removal.
    outgoing: BTreeMap<u32, Box<Outgoing>>,
    send_queue: VecDeque<SendItem>,
    send_queued: usize,
    control_out: VecDeque<Control>,
    incoming: BTreeMap<u32, Box<Incoming>>,
    /// Entries of `incoming` in state `Discarding` (kept as a count: `open_count` is asked at
    /// every offer).
    discarding: usize,
    recv_queue: VecDeque<RecvChunk>,
    recv_queued: usize,
    pool: Vec<Vec<u8>>,
    next_req: u32,
    my_requests: BTreeMap<u32, ReqKind>,
    /// The path each of our open GETs asked for: offers answering it must lie at or below it.
    get_scopes: BTreeMap<u32, String>,
    peer_requests: BTreeMap<u32, ReqKind>,
    /// Refusals this side makes on its own (a client refusing requests and offers it did not
    /// ask for), sent before anything else. They count as open until sent, so a peer that
    /// never reads cannot grow this queue past `our_max_open`.
    refusals: VecDeque<Control>,
    inflater: Option<Inflater>,
    /// The chunk `read_next` handed out last (its bytes stay readable until the next read).
    reading: Option<RecvChunk>,
    /// Where `read_next` inflates a deflated chunk.
    inflated: Vec<u8>,
    /// The buffer `write_room` hands out (a chunk long; its length is kept between uses).
    staged: Vec<u8>,
    /// The file and length of the room `write_room` handed out last.
    room: Option<(u32, usize)>,
    /// Compression state for the DATA frames we send.
    data: DataEncoder,
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
            discarding: 0,
            recv_queue: VecDeque::new(),
            recv_queued: 0,
            pool: Vec::new(),
            next_req: 0,
            my_requests: BTreeMap::new(),
            get_scopes: BTreeMap::new(),
            peer_requests: BTreeMap::new(),
            refusals: VecDeque::new(),
            inflater: None,
            reading: None,
            inflated: Vec::new(),
            staged: Vec::new(),
            room: None,
            data: DataEncoder::new(mode),
        }
    }

    /// Transfers and requests the peer has open towards us, as the peer counts them: a file we
    /// failed (`Discarding`) no longer counts, the peer forgot it when our `CommitFailed` came.
    pub(super) fn open_count(&self) -> usize {
        debug_assert_eq!(
            self.discarding,
            self.incoming
                .values()
                .filter(|i| i.state == InState::Discarding)
                .count()
        );
        let files = self.incoming.len() - self.discarding;
        files + self.peer_requests.len() + self.refusals.len()
    }

    /// Forget incoming file `id` (keeping the count of discarded ones).
    fn remove_incoming(&mut self, id: u32) -> Option<Box<Incoming>> {
        let inc = self.incoming.remove(&id)?;
        if inc.state == InState::Discarding {
            self.discarding -= 1;
        }
        Some(inc)
    }

    /// Transfers and requests we have open towards the peer. Each entry leaves this count no
    /// earlier than the peer's matching entry leaves its `open_count`, so respecting the
    /// peer's `max_open` here never trips its limit.
    pub(super) fn my_open_count(&self) -> usize {
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
            if let Some(inc) = self.remove_incoming(id) {
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
        self.get_scopes.clear();
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

    /// Whether frames are waiting to be sent.
    pub(crate) fn has_output(&self) -> bool {
        !self.refusals.is_empty() || !self.control_out.is_empty() || !self.send_queue.is_empty()
    }

    /// Fill `out` with as many frames as fit: control frames first, then file data in the
    /// order it was written. Returns the bytes used.
    pub(crate) fn poll_frames(&mut self, now: Instant, out: &mut [u8]) -> usize {
        let n = self.fill_frames(now, out);
        // Data left behind waits for the next record: the sender is backlogged.
        self.data.backlogged = self
            .send_queue
            .iter()
            .any(|item| matches!(item, SendItem::Data { .. }));
        n
    }

    fn fill_frames(&mut self, now: Instant, out: &mut [u8]) -> usize {
        let mut pos = 0;
        for queue in [&mut self.refusals, &mut self.control_out] {
            while let Some(msg) = queue.front() {
                match encode_control(msg, &mut out[pos..]) {
                    Ok(n) => {
                        pos += n;
                        queue.pop_front();
                    }
                    Err(_) => return pos,
                }
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
                    let rest = &buf[*start..];
                    let frame = &mut out[pos..];
                    let n = match self.data.encode(now, frame, pos == 0, *id, *offset, rest) {
                        Encoded::Frame { plain, len } => {
                            pos += len;
                            plain
                        }
                        Encoded::NextRecord => return pos,
                    };
                    *start += n;
                    *offset += n as u64;
                    self.send_queued -= n;
                    if *start == buf.len()
                        && let Some(SendItem::Data { buf, .. }) = self.send_queue.pop_front()
                        && self.pool.len() < POOL_MAX
                    {
                        // Kept at its length: whoever takes it next sizes it without zeroing.
                        self.pool.push(buf);
                    }
                }
            }
        }
        pos
    }

    /// A control frame other than the session's own (`Start`, `Ping`, `Close`).
    pub(crate) fn handle_control(
        &mut self,
        msg: Control,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        check_fields(&msg)?;
        match msg {
            Control::Offer(o) => self.on_offer(o, events),
            Control::Accept {
                id,
                resume_from,
                prefix_hash,
            } => self.on_accept(id, resume_from, prefix_hash, events),
            Control::Reject { id, problem } => self.on_reject(id, problem, events),
            Control::FileEnd { id, size, hash } => self.on_file_end(id, size, hash, events),
            Control::Ack { id } => self.on_ack(id, events),
            Control::CommitFailed { id, problem } => self.on_commit_failed(id, problem, events),
            Control::Abort { id, problem } => self.on_abort(id, problem, events),
            Control::Request { req, kind } => self.on_request(req, kind, events),
            Control::Listing { req, entries } => self.on_listing(req, entries, events),
            Control::Done { req, error } => self.on_done(req, error, events),
            // The session consumes these before calling us.
            Control::Start | Control::Ping | Control::Close { .. } => {
                Err(Violation::BadRecordContents)
            }
        }
    }
}

/// Bounds the protocol sets on fields inside messages (the frame bound alone would allow more).
fn check_fields(msg: &Control) -> Result<(), Violation> {
    let problem = |p: &Problem| p.detail.len() <= MAX_DETAIL_LEN;
    let mtime = mtime_ok;
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
        Control::Request {
            kind: RequestKind::Record { body, .. },
            ..
        } => body.0.len() <= crate::wire::MAX_RECORD_BODY,
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

/// Nanoseconds of a modification time are below one second.
fn mtime_ok(m: &Option<Mtime>) -> bool {
    m.is_none_or(|m| m.nanos < 1_000_000_000)
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
