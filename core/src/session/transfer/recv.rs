//! The receiving side of a file: accept/reject, DATA into the bounded window, lazy inflate in
//! `read`, whole-file verification, commit answers.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::ops::Range;

use crate::compress::Inflater;
use crate::error::{ReadError, RequestError, SessionError, Violation};
use crate::hash::FileHasher;
use crate::record::stream::grow;
use crate::session::event::{Chunk, Event, FileMeta, RecvId, RequestId};
use crate::wire::{Codec, Control, DataFrame, Offer, Problem, Reason};

use super::requests::ReqKind;
use super::{POOL_MAX, Transfer, bounded};

pub(super) struct Incoming {
    pub(super) size: Option<u64>,
    pub(super) state: InState,
    pub(super) resume_from: u64,
    /// Next offset expected on the wire.
    pub(super) wire_next: u64,
    /// Whether any DATA arrived (the first may restart at 0).
    pub(super) data_seen: bool,
    /// Next offset `read` hands out, and the hash of everything before it.
    pub(super) read_pos: u64,
    pub(super) hasher: FileHasher,
    /// Chunks of this file waiting in the receive queue.
    pub(super) queued: usize,
    pub(super) end: Option<(u64, [u8; 32])>,
    /// The whole-file hash the Offer announced, if any: FileEnd must agree with it.
    pub(super) offered_hash: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InState {
    Offered,
    Receiving,
    /// Verified, waiting for the application to commit.
    Verified,
    /// The application failed the file while the sender still sends: drop its DATA until
    /// FileEnd or Abort.
    Discarding,
}

pub(super) struct RecvChunk {
    pub(super) id: u32,
    pub(super) offset: u64,
    pub(super) codec: Codec,
    pub(super) plain_len: u32,
    /// The encoded body is `data[body]`: `data` is the record it arrived in (or a copy of the
    /// body alone), attached once the record's frames are handled (empty until then).
    pub(super) data: Vec<u8>,
    pub(super) body: Range<usize>,
    pub(super) attached: bool,
}

impl RecvChunk {
    /// The encoded body.
    pub(super) fn body(&self) -> &[u8] {
        self.data.get(self.body.clone()).unwrap_or(&[])
    }
}

impl Transfer {
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
        self.remove_incoming(id.0);
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
        self.remove_incoming(id.0);
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
            InState::Receiving if inc.end.is_none() => {
                inc.state = InState::Discarding;
                self.discarding += 1;
            }
            InState::Receiving | InState::Verified => {
                self.remove_incoming(id.0);
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

    pub(super) fn purge_recv_queue(&mut self, id: u32) {
        let mut freed = 0;
        let pool = &mut self.pool;
        self.recv_queue.retain_mut(|c| {
            if c.id == id {
                freed += c.body.len();
                if pool.len() < POOL_MAX && c.attached {
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
        self.recycle_reading();
        let Some(front) = self.recv_queue.front() else {
            return Ok(None);
        };
        let plain_len = front.plain_len as usize;
        if out.len() < plain_len {
            return Err(ReadError::BufferTooSmall(crate::error::BufferTooSmall {
                needed: plain_len,
            }));
        }
        let Some(chunk) = self.recv_queue.pop_front() else {
            return Ok(None);
        };
        self.recv_queued -= chunk.body.len();
        let dst = &mut out[..plain_len];
        match chunk.codec {
            Codec::Stored => dst.copy_from_slice(chunk.body()),
            Codec::Deflate => self.inflate(chunk.body(), dst)?,
        }
        let (id, offset) = (chunk.id, chunk.offset);
        self.recycle(chunk);
        Ok(self.account(id, offset, dst, events))
    }

    /// [`Transfer::read`] without the copy: the chunk is taken off the queue and kept (a stored
    /// chunk's bytes where they arrived, a deflated one inflated into `inflated`) until the
    /// next read; [`Transfer::reading`] then shows its bytes.
    pub(crate) fn read_next(
        &mut self,
        events: &mut VecDeque<Event>,
    ) -> Result<Option<Chunk>, ReadError> {
        self.recycle_reading();
        let Some(chunk) = self.recv_queue.pop_front() else {
            return Ok(None);
        };
        self.recv_queued -= chunk.body.len();
        let plain_len = chunk.plain_len as usize;
        let (id, offset) = (chunk.id, chunk.offset);
        let bytes = match chunk.codec {
            Codec::Stored => chunk.body(),
            Codec::Deflate => {
                // Grown (and zero-filled) once; never longer than CHUNK.
                let mut out = core::mem::take(&mut self.inflated);
                if out.len() < plain_len {
                    out.resize(plain_len, 0);
                }
                let r = self.inflate(chunk.body(), &mut out[..plain_len]);
                self.inflated = out;
                r?;
                &self.inflated[..plain_len]
            }
        };
        let got = account(&mut self.incoming, id, offset, bytes);
        self.reading = Some(chunk);
        if got.is_some() {
            self.check_complete(id, events);
        }
        Ok(got)
    }

    /// The bytes of the chunk [`Transfer::read_next`] returned last.
    pub(crate) fn reading(&self) -> &[u8] {
        match &self.reading {
            Some(c) if c.codec == Codec::Deflate => &self.inflated[..c.plain_len as usize],
            Some(c) => c.body(),
            None => &[],
        }
    }

    fn inflate(&mut self, data: &[u8], dst: &mut [u8]) -> Result<(), ReadError> {
        let inflater = self.inflater.get_or_insert_with(Inflater::new);
        inflater
            .inflate(data, dst)
            .map_err(|e| ReadError::Session(SessionError::Protocol(Violation::Inflate(e))))
    }

    /// The chunk handed out by the last `read_next` is done with: its buffer goes back to the
    /// pool.
    fn recycle_reading(&mut self) {
        if let Some(c) = self.reading.take() {
            self.recycle(c);
        }
    }

    /// A buffer whose length is kept (records are opened into it without zero-filling it
    /// again; the sending side clears what it takes).
    fn recycle(&mut self, mut chunk: RecvChunk) {
        if self.pool.len() < POOL_MAX {
            self.pool.push(core::mem::take(&mut chunk.data));
        }
    }

    /// A buffer to open the next record into (see [`Transfer::attach_record`]).
    pub(crate) fn record_buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    /// The record whose frames were just handled: it becomes the storage of the DATA chunks
    /// it carried. The last of them keeps the record itself if its body is at least half of
    /// it (so memory stays within twice the receive window); the others get a copy of their
    /// body. A record that carried no DATA goes back to the pool.
    pub(crate) fn attach_record(&mut self, record: Vec<u8>) {
        let queued = self.recv_queue.len();
        let first = queued
            - self
                .recv_queue
                .iter()
                .rev()
                .take_while(|c| !c.attached)
                .count();
        let owner = (first..queued)
            .max_by_key(|&i| self.recv_queue[i].body.len())
            .filter(|&i| self.recv_queue[i].body.len() * 2 >= record.len());
        for i in first..queued {
            let c = &mut self.recv_queue[i];
            c.attached = true;
            if Some(i) == owner {
                continue;
            }
            let body = record.get(c.body.clone()).unwrap_or(&[]);
            let mut copy = self.pool.pop().unwrap_or_default();
            // The pooled buffer keeps its length (the next record opened into it is not
            // zero-filled again); only the body's range of it is read.
            grow(&mut copy, body.len()).copy_from_slice(body);
            c.body = 0..body.len();
            c.data = copy;
        }
        match owner {
            Some(i) => self.recv_queue[i].data = record,
            None if self.pool.len() < POOL_MAX => self.pool.push(record),
            None => {}
        }
    }

    /// Hash the bytes of a chunk that was read, then raise `Verified` if the file is complete.
    fn account(
        &mut self,
        id: u32,
        offset: u64,
        bytes: &[u8],
        events: &mut VecDeque<Event>,
    ) -> Option<Chunk> {
        let got = account(&mut self.incoming, id, offset, bytes);
        if got.is_some() {
            self.check_complete(id, events);
        }
        got
    }

    /// Emit `Verified` (or fail the file) once FileEnd arrived and every byte was read.
    pub(super) fn check_complete(&mut self, id: u32, events: &mut VecDeque<Event>) {
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
            events.push_back(Event::Verified {
                id: RecvId(id),
                size,
                hash,
            });
        } else {
            self.remove_incoming(id);
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

    /// DATA whose body is `body` of the record being handled.
    pub(crate) fn handle_data(
        &mut self,
        d: &DataFrame<'_>,
        body: Range<usize>,
    ) -> Result<(), Violation> {
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
        self.recv_queued += body.len();
        // The bytes stay where the record was opened (see `attach_record`).
        self.recv_queue.push_back(RecvChunk {
            id: d.file_id,
            offset: d.offset,
            codec: d.codec,
            plain_len: d.plain_len,
            data: Vec::new(),
            body,
            attached: false,
        });
        Ok(())
    }

    /// Bytes of encoded chunks waiting for `read` (for a test hook).
    #[cfg(feature = "testing")]
    pub(crate) fn recv_queued(&self) -> usize {
        self.recv_queued
    }

    /// Chunks waiting for `read`.
    pub(crate) fn has_readable(&self) -> bool {
        !self.recv_queue.is_empty()
    }

    /// The peer offers a file.
    pub(super) fn on_offer(
        &mut self,
        o: Offer,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        if self.incoming.contains_key(&o.id) {
            return Err(Violation::DuplicateId(o.id));
        }
        if self.open_count() >= self.limits.our_max_open {
            return Err(Violation::TooManyOpen);
        }
        let request = match o.request {
            Some(r) if self.my_requests.get(&r) == Some(&ReqKind::Get) => Some(RequestId(r)),
            Some(r) => return Err(Violation::UnknownId(r)),
            None => None,
        };
        if self.client_refuses_offer(&o) {
            return Ok(());
        }
        self.incoming.insert(
            o.id,
            Box::new(Incoming {
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
            }),
        );
        events.push_back(Event::Offered {
            id: RecvId(o.id),
            meta: FileMeta {
                path: o.path,
                size: o.size,
                mode: o.mode,
                mtime: o.mtime,
                hash: o.hash,
                // A client decides that itself (see `role`).
                overwrite: o.overwrite && !self.limits.client,
            },
            request,
        });
        Ok(())
    }

    /// All DATA of an incoming file was sent.
    pub(super) fn on_file_end(
        &mut self,
        id: u32,
        size: u64,
        hash: [u8; 32],
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        let inc = self.incoming.get_mut(&id).ok_or(Violation::UnknownId(id))?;
        match inc.state {
            InState::Offered => return Err(Violation::DataBeforeAccept(id)),
            InState::Verified => return Err(Violation::DuplicateId(id)),
            InState::Discarding => {
                self.remove_incoming(id);
                return Ok(());
            }
            InState::Receiving => {}
        }
        if inc.end.is_some() || size != inc.wire_next || inc.size.is_some_and(|s| s != size) {
            return Err(Violation::SizeMismatch(id));
        }
        inc.end = Some((size, hash));
        self.check_complete(id, events);
        Ok(())
    }

    /// The sender gave up on an incoming file.
    pub(super) fn on_abort(
        &mut self,
        id: u32,
        problem: Problem,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
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
        self.remove_incoming(id);
        self.purge_recv_queue(id);
        Ok(())
    }
}

/// The hash and read position of file `id` after `bytes` were read at `offset`.
fn account(
    incoming: &mut alloc::collections::BTreeMap<u32, Box<Incoming>>,
    id: u32,
    offset: u64,
    bytes: &[u8],
) -> Option<Chunk> {
    // Invariant: every queued chunk belongs to an open incoming file (purged otherwise).
    let inc = incoming.get_mut(&id)?;
    if offset != inc.read_pos {
        // Validated on arrival: the only jump is a restart from 0 after a prefix mismatch.
        inc.hasher = FileHasher::new();
    }
    inc.hasher.update(bytes);
    inc.read_pos = offset + bytes.len() as u64;
    inc.queued -= 1;
    Some(Chunk {
        id: RecvId(id),
        offset,
        len: bytes.len(),
    })
}
