//! Requests: GET and LIST, the answers to them, and `Done`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::error::{RequestError, Violation};
use crate::session::event::{Event, PeerRequestId, RequestId};
use crate::wire::{
    BoundedVec, CONTROL_HEADER_LEN, Control, ListEntry, MAX_CONTROL_LEN, MAX_LIST_ENTRIES,
    MAX_PATH_LEN, MAX_RECORD_BODY, Problem, RequestKind, encode_control,
};

use super::{Transfer, bounded, free_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReqKind {
    Get,
    List,
    Record,
}

impl Transfer {
    pub(crate) fn request(&mut self, kind: RequestKind) -> Result<RequestId, RequestError> {
        let k = match &kind {
            RequestKind::Get { path } | RequestKind::List { path } if path.len() > MAX_PATH_LEN => {
                return Err(RequestError::PathTooLong);
            }
            RequestKind::Record { body, .. } if body.0.len() > MAX_RECORD_BODY => {
                return Err(RequestError::TooLarge);
            }
            RequestKind::Get { .. } => ReqKind::Get,
            RequestKind::List { .. } => ReqKind::List,
            RequestKind::Record { .. } => ReqKind::Record,
        };
        if self.my_open_count() >= self.limits.peer_max_open {
            return Err(RequestError::Busy);
        }
        let req = free_id(&mut self.next_req, &self.my_requests);
        self.my_requests.insert(req, k);
        if let RequestKind::Get { path } = &kind {
            self.scope_get(req, path);
        }
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
        if !entries.iter().all(|e| super::mtime_ok(&e.mtime)) {
            return Err(RequestError::InvalidField);
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

    /// The peer made a request.
    pub(super) fn on_request(
        &mut self,
        req: u32,
        kind: RequestKind,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        if self.peer_requests.contains_key(&req) {
            return Err(Violation::DuplicateId(req));
        }
        if self.open_count() >= self.limits.our_max_open {
            return Err(Violation::TooManyOpen);
        }
        if self.client_refuses_request(req) {
            return Ok(());
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
            RequestKind::Record { format, body } => (
                ReqKind::Record,
                Event::RecordReceived {
                    req: PeerRequestId(req),
                    format,
                    body: body.0,
                },
            ),
        };
        self.peer_requests.insert(req, k);
        events.push_back(ev);
        Ok(())
    }

    /// Part of the answer to our LIST.
    pub(super) fn on_listing(
        &mut self,
        req: u32,
        entries: BoundedVec<ListEntry>,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        if self.my_requests.get(&req) != Some(&ReqKind::List) {
            return Err(Violation::UnknownId(req));
        }
        events.push_back(Event::Listing {
            req: RequestId(req),
            entries: entries.0,
        });
        Ok(())
    }

    /// Our request is answered.
    pub(super) fn on_done(
        &mut self,
        req: u32,
        error: Option<Problem>,
        events: &mut VecDeque<Event>,
    ) -> Result<(), Violation> {
        self.my_requests
            .remove(&req)
            .ok_or(Violation::UnknownId(req))?;
        self.get_scopes.remove(&req);
        events.push_back(Event::RequestDone {
            req: RequestId(req),
            error,
        });
        Ok(())
    }
}
