//! The two stores of a short-code transfer.
//!
//! - [`Offered`]: the sending side serves exactly the files named on its command line and
//!   nothing else (no receive, no records); nothing is opened or hashed before the receiver
//!   asks for it.
//! - [`Deferred`]: the receiving side's `--out` directory, created (like everything else in
//!   it) only when the first accepted file arrives.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use ferry_disk::{FsStore, Incoming, Outgoing, Source, Store};
use proto::{FileMeta, ListEntry, Problem, Reason};

/// One offered file: its name for the receiver, and where it is (`None`: standard input).
struct Entry {
    meta: FileMeta,
    path: Option<PathBuf>,
}

/// The files a `send --code` offers (see the module docs).
pub(crate) struct Offered {
    entries: Vec<Entry>,
    /// Standard input can be sent once.
    stdin: Mutex<Option<Outgoing>>,
}

impl Offered {
    pub(crate) fn new(files: Vec<Outgoing>) -> Self {
        let mut entries = Vec::new();
        let mut stdin = None;
        for f in files {
            let path = match &f.source {
                Source::File(p) => Some(p.clone()),
                _ => None,
            };
            entries.push(Entry {
                meta: f.meta.clone(),
                path: path.clone(),
            });
            if path.is_none() {
                stdin = Some(f);
            }
        }
        Offered {
            entries,
            stdin: Mutex::new(stdin),
        }
    }

    /// How many files are offered.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn outgoing(&self, e: &Entry) -> Result<Outgoing, Problem> {
        match &e.path {
            Some(p) => Outgoing::from_file(p.clone(), &e.meta.path, e.meta.overwrite)
                .map_err(|err| Problem::new(Reason::Io, &err.to_string())),
            None => self
                .stdin
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .ok_or_else(|| Problem::new(Reason::NotFound, "standard input was sent already")),
        }
    }
}

impl Store for Offered {
    fn receive(&self, _meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        Err(Problem::new(
            Reason::Denied,
            "the sending side takes no files",
        ))
    }

    fn lookup(&self, path: &str) -> Result<Vec<Outgoing>, Problem> {
        let within = |name: &str| {
            path.is_empty()
                || name == path
                || name.strip_prefix(path).is_some_and(|r| r.starts_with('/'))
        };
        let found: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| within(&e.meta.path))
            .collect();
        if found.is_empty() {
            return Err(Problem::new(Reason::NotFound, "not offered"));
        }
        found.into_iter().map(|e| self.outgoing(e)).collect()
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        let mut out: Vec<ListEntry> = self
            .entries
            .iter()
            .filter(|e| e.meta.path.starts_with(prefix))
            .map(|e| ListEntry {
                path: e.meta.path.clone(),
                size: e.meta.size.unwrap_or(0),
                mtime: e.meta.mtime,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// The receiver's `--out` directory, made only when the first file is accepted.
pub(crate) struct Deferred {
    root: PathBuf,
    store: OnceLock<FsStore>,
}

impl Deferred {
    pub(crate) fn new(root: PathBuf) -> Self {
        Deferred {
            root,
            store: OnceLock::new(),
        }
    }

    fn store(&self) -> Result<&FsStore, Problem> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let s = FsStore::new(&self.root).map_err(|e| {
            Problem::new(
                Reason::Io,
                &format!("cannot write into {}: {e}", self.root.display()),
            )
        })?;
        Ok(self.store.get_or_init(|| s))
    }
}

impl Store for Deferred {
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        self.store()?.receive(meta)
    }

    fn lookup(&self, _path: &str) -> Result<Vec<Outgoing>, Problem> {
        Err(Problem::new(
            Reason::Denied,
            "the receiving side serves nothing",
        ))
    }

    fn list(&self, _prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        Err(Problem::new(
            Reason::Denied,
            "the receiving side serves nothing",
        ))
    }
}
