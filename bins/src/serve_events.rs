//! `serve --json`: one object per received file. A [`Store`] wrapper sees every offer the
//! server decides and every commit, and reports them through [`Output`]:
//! `{"event":"file","outcome":"received"|"up-to-date",...}` once a file is durable, and
//! `{"event":"error","name":..,"reason":..}` for an offer refused or a commit that failed.

use std::sync::Arc;
use std::time::Instant;

use ferry_disk::{Incoming, Outgoing, Publish, Staged, Store};
use proto::{FileHasher, FileMeta, ListEntry, Problem, Reason};

use crate::output::{FileReport, Output};

/// `inner`, reporting received files to `out`.
pub struct Reporting {
    inner: Arc<dyn Store>,
    out: Output,
    print_records: bool,
}

impl Reporting {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>, out: Output) -> Self {
        Self {
            inner,
            out,
            print_records: false,
        }
    }

    /// `serve --print`: each stored record as `{"event":"record","stored":true,"record":..}`.
    #[must_use]
    pub fn print_records(mut self, on: bool) -> Self {
        self.print_records = on;
        self
    }
}

/// What is known of a file being received, to report it once committed.
struct Pending {
    out: Output,
    name: String,
    hash: Option<[u8; 32]>,
    resumed_from: u64,
    started: Instant,
    /// The bytes written so far in order (`None` once a write came out of order).
    hasher: Option<FileHasher>,
}

impl Pending {
    fn done(&self, size: u64, outcome: &'static str) {
        let hash = match &self.hasher {
            Some(h) if h.len() == size => Some(h.finalize()),
            _ => self.hash,
        };
        self.out.file_done(&FileReport {
            name: self.name.clone(),
            bytes: size,
            resumed_from: self.resumed_from,
            blake3: hash
                .map(|h| blake3::Hash::from_bytes(h).to_hex().to_string())
                .unwrap_or_default(),
            seconds: self.started.elapsed().as_secs_f64(),
            outcome,
        });
    }

    fn failed(&self, p: &Problem) {
        self.out
            .file_failed(&self.name, crate::json::problem_reason(p.reason), &p.detail);
    }

    fn report(&self, size: u64, r: &Result<(), Problem>) {
        match r {
            Ok(()) => self.done(size, FileReport::RECEIVED),
            Err(p) => self.failed(p),
        }
    }
}

impl Store for Reporting {
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        let pending = Pending {
            out: self.out.clone(),
            name: meta.path.clone(),
            hash: meta.hash,
            resumed_from: 0,
            started: Instant::now(),
            hasher: None,
        };
        match self.inner.receive(meta) {
            Ok(inner) => {
                let prefix = inner.prefix();
                Ok(Box::new(Reported {
                    inner,
                    pending: Pending {
                        resumed_from: prefix.len(),
                        hasher: Some(prefix),
                        ..pending
                    },
                }))
            }
            Err(p) => {
                match p.reason {
                    Reason::UpToDate => {
                        pending.done(meta.size.unwrap_or(0), FileReport::UP_TO_DATE)
                    }
                    // Without a hash the sender offers again with one (same content: up to
                    // date): not a failure yet.
                    Reason::Exists if meta.hash.is_none() => {}
                    _ => pending.failed(&p),
                }
                Err(p)
            }
        }
    }

    fn lookup(&self, path: &str) -> Result<Vec<Outgoing>, Problem> {
        self.inner.lookup(path)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        self.inner.list(prefix)
    }

    fn append_record(&self, line: &str) -> Result<(), Problem> {
        self.inner.append_record(line)?;
        if self.print_records
            && let Ok(record) = serde_json::from_str::<serde_json::Value>(line)
        {
            let event = serde_json::json!({"event": "record", "stored": true, "record": record});
            self.out.json_event(&event);
        }
        Ok(())
    }
}

struct Reported {
    inner: Box<dyn Incoming>,
    pending: Pending,
}

impl Incoming for Reported {
    fn prefix(&self) -> FileHasher {
        self.inner.prefix()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if offset == 0 {
            // The sender restarted: nothing held was reused.
            self.pending.resumed_from = 0;
            self.pending.hasher = Some(FileHasher::new());
        }
        match &mut self.pending.hasher {
            Some(h) if h.len() == offset => h.update(data),
            _ => self.pending.hasher = None,
        }
        self.inner.write_at(offset, data)
    }

    fn commit(self: Box<Self>, size: u64) -> Result<(), Problem> {
        let r = self.inner.commit(size);
        self.pending.report(size, &r);
        r
    }

    fn stage(self: Box<Self>, size: u64) -> Staged {
        match self.inner.stage(size) {
            Staged::Done(r) => {
                self.pending.report(size, &r);
                Staged::Done(r)
            }
            Staged::Pending(p) => Staged::Pending(Box::new(ReportedPublish {
                inner: p,
                pending: self.pending,
                size,
            })),
        }
    }

    fn suspend(self: Box<Self>) {
        self.inner.suspend();
    }

    fn discard(self: Box<Self>) {
        self.inner.discard();
    }
}

struct ReportedPublish {
    inner: Box<dyn Publish>,
    pending: Pending,
    size: u64,
}

impl Publish for ReportedPublish {
    fn handle(&self) -> &std::fs::File {
        self.inner.handle()
    }

    fn device(&self) -> u64 {
        self.inner.device()
    }

    fn publish(self: Box<Self>) -> Result<(), Problem> {
        let r = self.inner.publish();
        self.pending.report(self.size, &r);
        r
    }
}
