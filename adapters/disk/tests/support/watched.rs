//! A store that notes which thread made each call for a received file (included by the
//! adapters' tests with `#[path]`: they check that a server's disk work runs on its pool).

use std::io;
use std::sync::{Arc, Mutex};

use ferry_disk::{FsStore, Incoming, Outgoing, Staged, Store};
use proto::{FileHasher, FileMeta, ListEntry, Problem};

/// Names of the threads that made the store's calls for received files.
pub(crate) type Seen = Arc<Mutex<Vec<String>>>;

fn note(seen: &Seen, what: &str) {
    let name = std::thread::current().name().unwrap_or("?").to_string();
    seen.lock().unwrap().push(format!("{what} on {name}"));
}

pub(crate) struct Watched {
    pub(crate) inner: FsStore,
    pub(crate) seen: Seen,
}

impl Store for Watched {
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        note(&self.seen, "receive");
        Ok(Box::new(WatchedIncoming {
            inner: self.inner.receive(meta)?,
            seen: self.seen.clone(),
        }))
    }

    fn lookup(&self, path: &str) -> Result<Vec<Outgoing>, Problem> {
        self.inner.lookup(path)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        self.inner.list(prefix)
    }
}

struct WatchedIncoming {
    inner: Box<dyn Incoming>,
    seen: Seen,
}

impl Incoming for WatchedIncoming {
    fn prefix(&self) -> FileHasher {
        self.inner.prefix()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, data)
    }

    fn commit(self: Box<Self>, size: u64) -> Result<(), Problem> {
        note(&self.seen, "commit");
        self.inner.commit(size)
    }

    fn stage(self: Box<Self>, size: u64) -> Staged {
        note(&self.seen, "stage");
        self.inner.stage(size)
    }

    fn suspend(self: Box<Self>) {
        self.inner.suspend();
    }

    fn discard(self: Box<Self>) {
        self.inner.discard();
    }
}

/// The calls noted in `seen` that ran elsewhere than on a thread of the disk pool.
pub(crate) fn off_the_pool(seen: &Seen) -> Vec<String> {
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().any(|s| s.starts_with("receive")),
        "no file received"
    );
    assert!(
        seen.iter().any(|s| !s.starts_with("receive")),
        "no file committed"
    );
    seen.iter()
        .filter(|s| !s.contains(" on ferry-disk-"))
        .cloned()
        .collect()
}
