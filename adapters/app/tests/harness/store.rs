//! An in-memory [`Store`]: published files, partials kept for resume, records, and failures a
//! test can inject.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferry_disk::{Incoming, Outgoing, Source, Store, path};
use proto::{FileHasher, FileMeta, ListEntry, Problem, Reason};

/// What a [`MemStore`] holds and how it misbehaves.
#[derive(Default, Debug)]
pub struct State {
    /// Published files by name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Partial files kept for a resume, by name.
    pub partials: BTreeMap<String, Vec<u8>>,
    /// Stored records (JSON lines), in order.
    pub records: Vec<String>,
    /// Names in the order they were committed.
    pub commits: Vec<String>,
    /// Commits of these names fail with `NoSpace` (what arrived stays a partial).
    pub fail_commit: BTreeSet<String>,
    /// Offers of these names are refused with `Denied`.
    pub refuse: BTreeSet<String>,
    /// Largest file held in memory while receiving (bytes).
    pub largest_write: usize,
}

/// An in-memory store (clones share their state).
#[derive(Clone, Default)]
pub struct MemStore(Arc<Mutex<State>>);

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `files`.
    pub fn with_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let s = Self::new();
        for (name, data) in files {
            s.put(name, data);
        }
        s
    }

    /// The state, to inspect or to set failures.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publish a file directly.
    pub fn put(&self, name: &str, data: &[u8]) {
        self.state().files.insert(name.to_owned(), data.to_vec());
    }

    /// A published file's content.
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.state().files.get(name).cloned()
    }

    /// A partial file's content.
    pub fn partial(&self, name: &str) -> Option<Vec<u8>> {
        self.state().partials.get(name).cloned()
    }

    /// The store as an agent takes it.
    pub fn shared(&self) -> Arc<dyn Store> {
        Arc::new(self.clone())
    }
}

fn not_found() -> Problem {
    Problem::new(Reason::NotFound, "no such file")
}

impl Store for MemStore {
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        let name = path::sanitize(&meta.path)?.as_str().to_owned();
        let mut st = self.state();
        if st.refuse.contains(&name) {
            return Err(Problem::new(Reason::Denied, "refused by the test"));
        }
        if let Some(existing) = st.files.get(&name) {
            if meta.hash == Some(proto::hash(existing)) {
                return Err(Problem::new(Reason::UpToDate, "same content already here"));
            }
            if !meta.overwrite {
                return Err(Problem::new(Reason::Exists, "a different file is there"));
            }
        }
        // A partial longer than the offered file cannot be its prefix.
        let held = st
            .partials
            .remove(&name)
            .filter(|p| meta.size.is_some_and(|size| p.len() as u64 <= size))
            .unwrap_or_default();
        Ok(Box::new(MemIncoming {
            store: self.clone(),
            name,
            data: held,
        }))
    }

    fn lookup(&self, name: &str) -> Result<Vec<Outgoing>, Problem> {
        let st = self.state();
        let found: Vec<(String, Vec<u8>)> = match st.files.get(name) {
            Some(data) => vec![(name.to_owned(), data.clone())],
            None => {
                let dir = format!("{}/", name.trim_end_matches('/'));
                st.files
                    .iter()
                    .filter(|(n, _)| name.is_empty() || n.starts_with(&dir))
                    .map(|(n, d)| (n.clone(), d.clone()))
                    .collect()
            }
        };
        if found.is_empty() {
            return Err(not_found());
        }
        Ok(found
            .into_iter()
            .map(|(n, d)| served_file(&n, &d))
            .collect())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        Ok(self
            .state()
            .files
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, d)| ListEntry {
                path: n.clone(),
                size: d.len() as u64,
                mtime: None,
            })
            .collect())
    }

    fn append_record(&self, line: &str) -> Result<(), Problem> {
        self.state().records.push(line.to_owned());
        Ok(())
    }
}

/// A file to send from memory (a stream: no resume, no re-offer with a hash).
pub fn reader_file(name: &str, data: &[u8]) -> Outgoing {
    Outgoing {
        meta: FileMeta::new(name, Some(data.len() as u64)),
        source: Source::Reader(Box::new(io::Cursor::new(data.to_vec()))),
    }
}

/// A served file: a stream cannot be reopened to be hashed after `Exists`, so the store
/// offers it with its hash up front (the receiver tells same from different content).
fn served_file(name: &str, data: &[u8]) -> Outgoing {
    let mut out = reader_file(name, data);
    out.meta.hash = Some(proto::hash(data));
    out
}

struct MemIncoming {
    store: MemStore,
    name: String,
    data: Vec<u8>,
}

impl Incoming for MemIncoming {
    fn prefix(&self) -> FileHasher {
        let mut h = FileHasher::new();
        h.update(&self.data);
        h
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let offset = usize::try_from(offset).map_err(io::Error::other)?;
        self.data.resize(offset, 0);
        self.data.extend_from_slice(data);
        let mut st = self.store.state();
        st.largest_write = st.largest_write.max(self.data.len());
        Ok(())
    }

    fn commit(self: Box<Self>, size: u64) -> Result<(), Problem> {
        let mut st = self.store.state();
        assert_eq!(self.data.len() as u64, size, "committed size");
        if st.fail_commit.contains(&self.name) {
            st.partials.insert(self.name, self.data);
            return Err(Problem::new(Reason::NoSpace, "disk full (test)"));
        }
        st.commits.push(self.name.clone());
        st.files.insert(self.name, self.data);
        Ok(())
    }

    fn suspend(self: Box<Self>) {
        let mut st = self.store.state();
        st.partials.insert(self.name, self.data);
    }

    fn discard(self: Box<Self>) {}
}
