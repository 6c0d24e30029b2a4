//! Per-client access on a server with identities: the allow list (`serve --clients FILE`),
//! what each client may do (its rights) and where (its folder), and revocation.
//!
//! The allow list has one client a line, whitespace-separated `NAME PUBLIC-KEY RIGHTS DIR`:
//! `PUBLIC-KEY` is the client's key as `keygen --identity` prints it (64 hex digits),
//! `RIGHTS` a comma list of `put`, `get`, `list`, `overwrite`, `record`, or `all`, `DIR` a
//! folder relative to the server's root (`.` for all of it); `#` starts a comment.
//!
//! [`AccessStore`] is the server's [`Store`]: a connection whose client key is not listed is
//! refused before any file work ([`Store::for_peer`]); a listed one gets a [`ClientStore`],
//! the root store of its folder (so the store's own path rules confine it: no `..`, no
//! symbolic link out) that refuses, request by request, what its rights do not allow. A
//! reload ([`AccessStore::reload`]) that drops or changes a client revokes the stores it was
//! given: their sessions end, and nothing they were receiving is published.

mod list;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ferry_disk::{Incoming, Outgoing, Staged, Store};
use proto::{FileHasher, FileMeta, ListEntry, Problem, Reason};

pub use list::{AllowList, Client, ParseError, Rights, decode_key, encode_key};

/// Opens the store of a client's folder (an `FsStore` rooted at `root/DIR`, with the
/// server's options).
pub type OpenStore = Box<dyn Fn(&Path) -> io::Result<Arc<dyn Store>> + Send + Sync>;

/// The server's store when it has an allow list. See the module docs.
pub struct AccessStore {
    list: RwLock<AllowList>,
    open: OpenStore,
    /// One store per folder, opened on a client's first connection.
    folders: Mutex<BTreeMap<PathBuf, Arc<dyn Store>>>,
    /// The revocation flag of each client's grants, by key, for the current list.
    grants: Mutex<BTreeMap<[u8; 32], Arc<AtomicBool>>>,
}

impl AccessStore {
    /// A store answering the clients of `list`, each from the store `open` gives for its
    /// folder.
    pub fn new(list: AllowList, open: OpenStore) -> Self {
        AccessStore {
            list: RwLock::new(list),
            open,
            folders: Mutex::new(BTreeMap::new()),
            grants: Mutex::new(BTreeMap::new()),
        }
    }

    /// Replace the allow list. Clients no longer listed, or listed with other rights or
    /// another folder, are revoked: their open sessions end. Returns the names revoked.
    pub fn reload(&self, list: AllowList) -> Vec<String> {
        let mut old = self.list.write().unwrap_or_else(|e| e.into_inner());
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let mut revoked = Vec::new();
        grants.retain(|key, flag| {
            let keep = old.get(key).is_some_and(|c| list.get(key) == Some(c));
            if !keep {
                flag.store(true, Ordering::SeqCst);
                if let Some(c) = old.get(key) {
                    revoked.push(c.name.clone());
                }
            }
            keep
        });
        *old = list;
        revoked
    }

    fn refuse(what: &str) -> Problem {
        Problem::new(Reason::Denied, what)
    }
}

impl Store for AccessStore {
    fn receive(&self, _meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        Err(Self::refuse(
            "this server needs a client key from its allow list",
        ))
    }

    fn lookup(&self, _path: &str) -> Result<Vec<Outgoing>, Problem> {
        Err(Self::refuse(
            "this server needs a client key from its allow list",
        ))
    }

    fn list(&self, _prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        Err(Self::refuse(
            "this server needs a client key from its allow list",
        ))
    }

    fn for_peer(&self, peer: Option<&[u8; 32]>) -> Result<Option<Arc<dyn Store>>, Problem> {
        let client = {
            let list = self.list.read().unwrap_or_else(|e| e.into_inner());
            peer.and_then(|k| list.get(k)).cloned()
        };
        let (Some(key), Some(client)) = (peer, client) else {
            return Err(Self::refuse("this client's key is not on the allow list"));
        };
        let store = {
            let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
            match folders.get(&client.dir) {
                Some(s) => s.clone(),
                None => {
                    let s = (self.open)(&client.dir).map_err(|e| {
                        ferry_disk::problem_from_io(&e, "cannot open the client's folder")
                    })?;
                    folders.insert(client.dir.clone(), s.clone());
                    s
                }
            }
        };
        let revoked = self
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(*key)
            .or_default()
            .clone();
        tracing::info!(client = %client.name, "client admitted");
        Ok(Some(Arc::new(ClientStore {
            name: client.name,
            rights: client.rights,
            inner: store,
            revoked,
        })))
    }
}

/// What one admitted client may do, on the store of its folder.
pub struct ClientStore {
    name: String,
    rights: Rights,
    inner: Arc<dyn Store>,
    revoked: Arc<AtomicBool>,
}

impl ClientStore {
    fn need(&self, right: Rights, what: &str) -> Result<(), Problem> {
        if self.revoked() {
            return Err(Problem::new(Reason::Denied, "access revoked"));
        }
        if self.rights.contains(right) {
            Ok(())
        } else {
            Err(Problem::new(
                Reason::Denied,
                &format!("client {} has no right to {what}", self.name),
            ))
        }
    }
}

impl Store for ClientStore {
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        self.need(Rights::PUT, "put")?;
        if meta.overwrite {
            self.need(Rights::OVERWRITE, "overwrite")?;
        }
        let inner = self.inner.receive(meta)?;
        Ok(Box::new(Guarded {
            inner,
            revoked: self.revoked.clone(),
        }))
    }

    fn lookup(&self, path: &str) -> Result<Vec<Outgoing>, Problem> {
        self.need(Rights::GET, "get")?;
        self.inner.lookup(path)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        self.need(Rights::LIST, "list")?;
        self.inner.list(prefix)
    }

    fn append_record(&self, line: &str) -> Result<(), Problem> {
        self.need(Rights::RECORD, "record")?;
        self.inner.append_record(line)
    }

    fn revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }
}

/// A file a client is sending: not published once the client is revoked (it stays a
/// partial, resumable if the client is listed again).
struct Guarded {
    inner: Box<dyn Incoming>,
    revoked: Arc<AtomicBool>,
}

impl Guarded {
    fn revoked_problem() -> Problem {
        Problem::new(Reason::Denied, "access revoked")
    }
}

impl Incoming for Guarded {
    fn prefix(&self) -> FileHasher {
        self.inner.prefix()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.revoked.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "access revoked",
            ));
        }
        self.inner.write_at(offset, data)
    }

    fn commit(self: Box<Self>, size: u64) -> Result<(), Problem> {
        if self.revoked.load(Ordering::SeqCst) {
            self.inner.suspend();
            return Err(Self::revoked_problem());
        }
        self.inner.commit(size)
    }

    fn stage(self: Box<Self>, size: u64) -> Staged {
        if self.revoked.load(Ordering::SeqCst) {
            self.inner.suspend();
            return Staged::Done(Err(Self::revoked_problem()));
        }
        self.inner.stage(size)
    }

    fn suspend(self: Box<Self>) {
        self.inner.suspend();
    }

    fn discard(self: Box<Self>) {
        self.inner.discard();
    }
}

#[cfg(test)]
mod tests;
