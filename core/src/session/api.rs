//! The application's side of a session: requests (offer, get, list), answers (accept,
//! reject, commit), file bytes (write, read) and close.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::transfer::Transfer;
use super::{Chunk, FileMeta, OwnClose, PeerRequestId, RecvId, RequestId, SendId, Session};
use crate::error::{ReadError, RequestError, WriteError};
use crate::hash::FileHasher;
use crate::record::stream::RecordSealer;
use crate::time::Instant;
use crate::wire::{CloseCode, ListEntry, Problem, RecordBody, RecordFormat, RequestKind};

impl Session {
    // ---- application requests -----------------------------------------------------------

    fn open_transfer(&mut self, new_work: bool) -> Result<&mut Transfer, RequestError> {
        if !self.is_connected() {
            return Err(RequestError::NotOpen);
        }
        if new_work && self.own_close.is_some() {
            return Err(RequestError::NotOpen);
        }
        if self.sealer.as_ref().is_some_and(RecordSealer::is_finished) {
            return Err(RequestError::NotOpen);
        }
        self.transfer.as_mut().ok_or(RequestError::NotOpen)
    }

    /// Offer a file to the peer (a PUT). Answered by `Accepted` or `Rejected`.
    ///
    /// # Errors
    /// `Busy` when the peer's limit on open transfers is reached; `NotOpen`; `PathTooLong`.
    pub fn offer(&mut self, meta: FileMeta) -> Result<SendId, RequestError> {
        self.open_transfer(true)?.offer(meta, None)
    }

    /// Offer a file in answer to the peer's GET request `req`.
    ///
    /// # Errors
    /// As [`Session::offer`]; `InvalidState` if `req` is not an open GET.
    pub fn offer_for(
        &mut self,
        req: PeerRequestId,
        meta: FileMeta,
    ) -> Result<SendId, RequestError> {
        self.open_transfer(false)?.offer(meta, Some(req))
    }

    /// After `Accepted { resume_from }`: hand over the hash state of this side's first
    /// `resume_from` bytes (a fresh [`FileHasher`] if it cannot or will not resume). Returns the
    /// offset to send from: `resume_from` if the prefix matches the receiver's, else 0.
    ///
    /// # Errors
    /// `InvalidState` if the file is not accepted.
    pub fn start(&mut self, id: SendId, prefix: FileHasher) -> Result<u64, RequestError> {
        self.open_transfer(false)?.start(id, prefix)
    }

    /// Room in the send buffer: how many bytes `write` takes now.
    pub fn send_capacity(&self) -> usize {
        self.transfer.as_ref().map_or(0, Transfer::send_capacity)
    }

    /// Queue the next bytes of a started file; returns how many were taken (back-pressure by
    /// return value: 0 when the send buffer is full).
    ///
    /// # Errors
    /// `NotOpen`, `InvalidState` (not started or finished), `TooLong` past the offered size.
    pub fn write(&mut self, id: SendId, data: &[u8]) -> Result<usize, WriteError> {
        self.open_transfer(false)
            .map_err(|_| WriteError::NotOpen)?
            .write(id, data)
    }

    /// [`Session::write`] without the copy: room inside the session (at most `max` bytes, a
    /// [`CHUNK`](crate::CHUNK) and the send buffer's room) to read the file's next bytes into;
    /// then [`Session::commit_write`] the prefix that was filled. Empty when the send buffer is
    /// full or the file is complete.
    ///
    /// # Errors
    /// `NotOpen`, `InvalidState` (not started or finished).
    pub fn write_room(&mut self, id: SendId, max: usize) -> Result<&mut [u8], WriteError> {
        self.open_transfer(false)
            .map_err(|_| WriteError::NotOpen)?
            .write_room(id, max)
    }

    /// Queue the first `n` bytes of the room [`Session::write_room`] gave as the file's next
    /// bytes. Returns how many were taken: `n`, or 0 if `n` is more than that room.
    ///
    /// # Errors
    /// `NotOpen`, `InvalidState`, `TooLong` past the offered size.
    pub fn commit_write(&mut self, id: SendId, n: usize) -> Result<usize, WriteError> {
        self.open_transfer(false)
            .map_err(|_| WriteError::NotOpen)?
            .commit_write(id, n)
    }

    /// All bytes of the file were written: queue its `FileEnd` with the whole-file hash.
    ///
    /// # Errors
    /// `TooShort` if fewer bytes than offered were written.
    pub fn finish(&mut self, id: SendId) -> Result<(), WriteError> {
        self.open_transfer(false)
            .map_err(|_| WriteError::NotOpen)?
            .finish(id)
    }

    /// Give up on an accepted file before `finish` (for example, it cannot be read).
    ///
    /// # Errors
    /// `InvalidState` if it was not accepted or `finish` was already called.
    pub fn abort(&mut self, id: SendId, problem: Problem) -> Result<(), RequestError> {
        self.open_transfer(false)?.abort(id, problem)
    }

    /// Accept an offered file. `prefix` is the hash state of bytes already held (a partial
    /// file from an earlier attempt) to resume after them; `None` to receive it whole.
    ///
    /// # Errors
    /// `InvalidState` if `id` is not an open offer; `InvalidResume` if the prefix is longer
    /// than the file.
    pub fn accept(&mut self, id: RecvId, prefix: Option<FileHasher>) -> Result<(), RequestError> {
        self.open_transfer(false)?.accept(id, prefix)
    }

    /// Refuse an offered file; the session goes on.
    ///
    /// # Errors
    /// `InvalidState` if `id` is not an open offer.
    pub fn reject(&mut self, id: RecvId, problem: Problem) -> Result<(), RequestError> {
        self.open_transfer(false)?.reject(id, problem)
    }

    /// Take the next received chunk: decoded into `out[..chunk.len]`, to be written at
    /// `chunk.offset` of file `chunk.id`. `Ok(None)` when nothing is waiting.
    ///
    /// # Errors
    /// `BufferTooSmall` (nothing consumed; [`CHUNK`](crate::CHUNK) bytes always suffice), or
    /// the fatal error of a chunk that does not decode.
    pub fn read(&mut self, out: &mut [u8]) -> Result<Option<Chunk>, ReadError> {
        if let Some(e) = self.error {
            return Err(ReadError::Session(e));
        }
        let was_blocked = self.input_blocked();
        let Some(t) = &mut self.transfer else {
            return Ok(None);
        };
        let r = match t.read(out, &mut self.events) {
            Err(ReadError::Session(e)) => Err(ReadError::Session(self.fail(e))),
            other => other,
        };
        self.note_unblocked(was_blocked);
        r
    }

    /// [`Session::read`] without copying: the next received chunk and its decoded bytes,
    /// which stay borrowed from the session until the next call of `read` or `read_borrowed`.
    /// `Ok(None)` when nothing is waiting.
    ///
    /// # Errors
    /// The fatal error of a chunk that does not decode.
    pub fn read_borrowed(&mut self) -> Result<Option<(Chunk, &[u8])>, ReadError> {
        if let Some(e) = self.error {
            return Err(ReadError::Session(e));
        }
        let was_blocked = self.input_blocked();
        let Some(t) = &mut self.transfer else {
            return Ok(None);
        };
        let r = match t.read_next(&mut self.events) {
            Err(ReadError::Session(e)) => Err(ReadError::Session(self.fail(e))),
            other => other,
        };
        self.note_unblocked(was_blocked);
        match (r?, &self.transfer) {
            (Some(chunk), Some(t)) => Ok(Some((chunk, t.reading()))),
            _ => Ok(None),
        }
    }

    /// Whether `read` has a chunk waiting.
    pub fn has_readable(&self) -> bool {
        self.transfer.as_ref().is_some_and(Transfer::has_readable)
    }

    /// After `Verified`: the file is durable and published. Sends the `Ack`.
    ///
    /// # Errors
    /// `InvalidState` unless `id` had a `Verified` event and was not answered yet.
    pub fn committed(&mut self, id: RecvId) -> Result<(), RequestError> {
        self.open_transfer(false)?.committed(id)
    }

    /// The file could not be written or committed (disk full, permission...). The sender
    /// sees `problem`; the session goes on.
    ///
    /// # Errors
    /// `InvalidState` if `id` is not an accepted incoming file.
    pub fn commit_failed(&mut self, id: RecvId, problem: Problem) -> Result<(), RequestError> {
        self.open_transfer(false)?.commit_failed(id, problem)
    }

    /// Ask the peer for a file or directory (a GET). Answered by `Offered` events carrying this
    /// request id, then `RequestDone`.
    ///
    /// # Errors
    /// `Busy`, `NotOpen`, `PathTooLong`.
    pub fn get(&mut self, path: &str) -> Result<RequestId, RequestError> {
        let path = String::from(path);
        self.open_transfer(true)?.request(RequestKind::Get { path })
    }

    /// Ask the peer for a listing. Answered by `Listing` events, then `RequestDone`.
    ///
    /// # Errors
    /// `Busy`, `NotOpen`, `PathTooLong`.
    pub fn list(&mut self, path: &str) -> Result<RequestId, RequestError> {
        let path = String::from(path);
        self.open_transfer(true)?
            .request(RequestKind::List { path })
    }

    /// Send one structured record for the peer to store (a RECORD request). Answered by
    /// `RequestDone` once the peer stored it (or with the reason it could not).
    ///
    /// # Errors
    /// `TooLarge` beyond [`MAX_RECORD_BODY`](crate::wire::MAX_RECORD_BODY) bytes; `Busy`,
    /// `NotOpen`.
    pub fn send_record(
        &mut self,
        format: RecordFormat,
        body: Vec<u8>,
    ) -> Result<RequestId, RequestError> {
        self.open_transfer(true)?.request(RequestKind::Record {
            format,
            body: RecordBody(body),
        })
    }

    /// Answer a LIST request with entries (split into as many messages as needed).
    ///
    /// # Errors
    /// `InvalidState` if `req` is not an open LIST request.
    pub fn send_listing(
        &mut self,
        req: PeerRequestId,
        entries: Vec<ListEntry>,
    ) -> Result<(), RequestError> {
        self.open_transfer(false)?.send_listing(req, entries)
    }

    /// Complete the answer to a peer request (`None` for success).
    ///
    /// # Errors
    /// `InvalidState` if `req` is not open.
    pub fn finish_request(
        &mut self,
        req: PeerRequestId,
        error: Option<Problem>,
    ) -> Result<(), RequestError> {
        self.open_transfer(false)?.finish_request(req, error)
    }

    /// Close this side: queued output is flushed, then `Close { code }` goes out in a FINAL
    /// record. The session ends (`Closed`) when the peer's FINAL record arrives.
    pub fn close(&mut self, now: Instant, code: CloseCode) {
        self.observe(now);
        if self.own_close.is_none() && self.error.is_none() {
            self.own_close = Some(OwnClose::Requested(code));
        }
    }

    /// The configured idle timeout (adapters use it for socket-level timeouts).
    pub fn idle_timeout(&self) -> Duration {
        self.config.idle_timeout
    }
}
