//! The sending side of a file: offer, accept/resume, writes, FileEnd, and the receiver's
//! answers.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::error::{RequestError, Violation, WriteError};
use crate::hash::FileHasher;
use crate::record::stream::grow;
use crate::session::event::{Event, FileMeta, PeerRequestId, SendId};
use crate::wire::CHUNK;
use crate::wire::{Control, MAX_PATH_LEN, Offer, Problem, Reason};

use super::requests::ReqKind;
use super::{Transfer, bounded, free_id};

pub(super) struct Outgoing {
    pub(super) size: Option<u64>,
    pub(super) state: OutState,
    /// Bytes handed to `write` (the next offset).
    pub(super) written: u64,
    pub(super) hasher: FileHasher,
    /// FileEnd has been framed: the receiver will forget the id on its own.
    pub(super) end_sent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutState {
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

pub(super) enum SendItem {
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

impl Transfer {
    pub(crate) fn offer(
        &mut self,
        meta: FileMeta,
        request: Option<PeerRequestId>,
    ) -> Result<SendId, RequestError> {
        if meta.path.len() > MAX_PATH_LEN {
            return Err(RequestError::PathTooLong);
        }
        if !super::mtime_ok(&meta.mtime) {
            return Err(RequestError::InvalidField);
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
            Box::new(Outgoing {
                size: meta.size,
                state: OutState::Offered,
                written: 0,
                hasher: FileHasher::new(),
                end_sent: false,
            }),
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

    /// The outgoing file `id`, if it is started and not finished.
    fn sending(&mut self, id: SendId) -> Result<&mut Outgoing, WriteError> {
        match self.outgoing.get_mut(&id.0) {
            Some(out) if out.state == OutState::Sending => Ok(out),
            _ => Err(WriteError::InvalidState),
        }
    }

    pub(crate) fn write(&mut self, id: SendId, data: &[u8]) -> Result<usize, WriteError> {
        let send_buffer = self.limits.send_buffer;
        let send_queued = self.send_queued;
        let out = self.sending(id)?;
        if out
            .size
            .is_some_and(|size| out.written + data.len() as u64 > size)
        {
            return Err(WriteError::TooLong);
        }
        let n = data.len().min(send_buffer.saturating_sub(send_queued));
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

    /// Room to read the next bytes of file `id` into, at most `max` (and a chunk, the send
    /// buffer's room and what is left of the file): fill a prefix, then [`Transfer::commit_write`].
    pub(crate) fn write_room(&mut self, id: SendId, max: usize) -> Result<&mut [u8], WriteError> {
        let cap = self.send_capacity();
        let out = self.sending(id)?;
        let left = out.size.map_or(u64::MAX, |s| s.saturating_sub(out.written));
        let n = max
            .min(CHUNK)
            .min(cap)
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        if self.staged.is_empty() {
            self.staged = self.pool.pop().unwrap_or_default();
        }
        self.room = Some((id.0, n));
        // Zero-filled only where a buffer first grows (a small file's room is its size, not a
        // whole chunk).
        Ok(grow(&mut self.staged, n))
    }

    /// Queue the first `n` bytes of [`Transfer::write_room`]'s room as the file's next bytes
    /// (they are not copied again before they are framed). Returns `n`.
    pub(crate) fn commit_write(&mut self, id: SendId, n: usize) -> Result<usize, WriteError> {
        let cap = self.send_capacity();
        let room = self
            .room
            .take()
            .filter(|(of, _)| *of == id.0)
            .map_or(0, |r| r.1);
        let out = match self.outgoing.get_mut(&id.0) {
            Some(out) if out.state == OutState::Sending => out,
            _ => return Err(WriteError::InvalidState),
        };
        if out.size.is_some_and(|size| out.written + n as u64 > size) {
            return Err(WriteError::TooLong);
        }
        if n > cap || n > room {
            // More than the room handed out: nothing is taken.
            return Ok(0);
        }
        if n == 0 {
            return Ok(0);
        }
        let mut buf = core::mem::take(&mut self.staged);
        buf.truncate(n);
        out.hasher.update(&buf);
        let offset = out.written;
        out.written += n as u64;
        self.send_queued += n;
        self.send_queue.push_back(SendItem::Data {
            id: id.0,
            offset,
            buf,
            start: 0,
        });
        Ok(n)
    }

    pub(crate) fn finish(&mut self, id: SendId) -> Result<(), WriteError> {
        let out = self.sending(id)?;
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

    pub(super) fn purge_send_queue(&mut self, id: u32) {
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

    /// The receiver accepted one of our files.
    pub(super) fn on_accept(
        &mut self,
        id: u32,
        resume_from: u64,
        prefix_hash: [u8; 32],
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
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
        Ok(())
    }

    /// The receiver refused one of our files.
    pub(super) fn on_reject(
        &mut self,
        id: u32,
        problem: Problem,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
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
        Ok(())
    }

    /// The receiver committed one of our files.
    pub(super) fn on_ack(
        &mut self,
        id: u32,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        let out = self.take_finished(id)?;
        events.push_back(Event::Delivered {
            id: SendId(id),
            size: out.written,
            hash: out.hasher.finalize(),
        });
        Ok(())
    }

    pub(super) fn take_finished(&mut self, id: u32) -> Result<Box<Outgoing>, Violation> {
        match self.outgoing.get(&id) {
            Some(o) if o.end_sent => {}
            Some(_) => return Err(Violation::SizeMismatch(id)),
            None => return Err(Violation::UnknownId(id)),
        }
        self.outgoing.remove(&id).ok_or(Violation::UnknownId(id))
    }

    /// The receiver could not commit one of our files.
    pub(super) fn on_commit_failed(
        &mut self,
        id: u32,
        problem: Problem,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
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
        Ok(())
    }
}
