//! The standard-output sink: a [`Store`] for `get --out -`.

use std::io::{self, BufWriter, Write};
use std::sync::{Mutex, PoisonError};

use proto::{FileHasher, FileMeta, ListEntry, Problem, Reason};

use crate::{Incoming, Outgoing, Store, problem_from_io};

/// A [`Store`] for `get --out -`: the one received file goes to standard output, in order.
/// No resume, no serving.
pub struct StdoutStore {
    /// Taken by the first `receive`.
    sink: Mutex<Option<Box<dyn Write + Send>>>,
}

impl StdoutStore {
    /// A store writing to this process's standard output.
    pub fn new() -> Self {
        Self::with_writer(Box::new(io::stdout()))
    }

    pub(super) fn with_writer(w: Box<dyn Write + Send>) -> Self {
        StdoutStore {
            sink: Mutex::new(Some(w)),
        }
    }
}

impl Default for StdoutStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Store for StdoutStore {
    fn receive(&self, _meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        let sink = self
            .sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| {
                Problem::new(Reason::Denied, "only one file can go to standard output")
            })?;
        Ok(Box::new(StdoutIncoming {
            out: BufWriter::new(sink),
            written: 0,
        }))
    }

    fn lookup(&self, _path: &str) -> Result<Vec<Outgoing>, Problem> {
        Err(Problem::new(
            Reason::Unsupported,
            "standard output serves no files",
        ))
    }

    fn list(&self, _prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        Err(Problem::new(
            Reason::Unsupported,
            "standard output serves no files",
        ))
    }
}

struct StdoutIncoming {
    out: BufWriter<Box<dyn Write + Send>>,
    written: u64,
}

impl Incoming for StdoutIncoming {
    fn prefix(&self) -> FileHasher {
        FileHasher::new()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset != self.written {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "standard output is written in order: expected offset {}, got {offset}",
                    self.written
                ),
            ));
        }
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>, size: u64) -> Result<(), Problem> {
        if self.written != size {
            return Err(Problem::new(
                Reason::Io,
                &format!(
                    "wrote {} bytes to standard output, expected {size}",
                    self.written
                ),
            ));
        }
        self.out
            .flush()
            .map_err(|e| problem_from_io(&e, "cannot write to standard output"))
    }

    fn suspend(mut self: Box<Self>) {
        if let Err(e) = self.out.flush() {
            tracing::warn!(%e, "cannot write to standard output");
        }
    }

    fn discard(mut self: Box<Self>) {
        tracing::warn!("the file written to standard output failed verification");
        if let Err(e) = self.out.flush() {
            tracing::warn!(%e, "cannot write to standard output");
        }
    }
}
