//! Files coming in: the peer's offers answered from the store, file bytes written as they
//! arrive, and each file's end (received whole, then committed; or failed).

use proto::{FileMeta, Instant, Problem, Reason, RecvId, Session};

use super::commit::Received;
use super::report::{FileReport, Report};
use super::{Agent, CHUNKS_PER_PUMP, Incoming};
use ferry_disk::problem_from_io;

/// A file being received.
pub(super) struct Receiving {
    pub(super) name: String,
    pub(super) file: Box<dyn Incoming>,
    resumed_from: u64,
    started_at: Instant,
}

impl Agent {
    /// The peer offers a file: take it into the store (resuming what it holds) or refuse it.
    pub(super) fn on_offered(
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
                            started_at: self.now,
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

    /// Write the file bytes that arrived, a bounded amount.
    pub(super) fn read_chunks(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        for _ in 0..CHUNKS_PER_PUMP {
            // The bytes are written from where the session holds them (no copy here).
            let (chunk, bytes) = match s.read_borrowed() {
                Ok(Some(c)) => c,
                // A session error surfaces through the adapter.
                Ok(None) | Err(_) => break,
            };
            any = true;
            let Some(r) = self.receiving.get_mut(&chunk.id) else {
                continue;
            };
            match r.file.write_at(chunk.offset, bytes) {
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

    /// A file arrived whole and verified: commit it with the files right behind it (see
    /// [`commit`](super::commit)).
    pub(super) fn on_received(&mut self, id: RecvId, size: u64, hash: [u8; 32]) {
        let Some(r) = self.receiving.remove(&id) else {
            return;
        };
        let received = Received {
            name: r.name,
            resumed_from: r.resumed_from,
            started_at: r.started_at,
            hash,
            size,
        };
        self.gather(id, received, r.file, size);
    }

    /// A file failed on its way in: keep what arrived for a resume, unless it is corrupt.
    pub(super) fn on_receive_failed(&mut self, id: RecvId, problem: Problem) {
        if let Some(r) = self.receiving.remove(&id) {
            if problem.reason == Reason::HashMismatch {
                r.file.discard();
            } else {
                r.file.suspend();
            }
            self.fail(r.name, problem);
        }
    }
}
