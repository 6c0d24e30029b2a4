//! ferry's store: where received files go and where served files come from. The application
//! that drives a session from it is `ferry-app`.
//!
//! - [`Store`] is where received files go and served files come from. [`FsStore`] is the
//!   filesystem implementation: received bytes go to a partial file inside the destination
//!   directory, which is fsynced, renamed into place and followed by a directory fsync before
//!   the session is told the file is committed; an interrupted file stays as a partial plus a
//!   small sidecar for resume. Another sink (object storage, say) implements the same trait.
//! - [`path::sanitize`] turns a peer's path into a safe relative path or a reason the peer sees.
//! - [`commit::commit_batch`] makes a group of received files durable with two filesystem syncs.

pub mod commit;
pub mod fs;
pub mod path;
pub mod sealed;

use std::io;
use std::path::PathBuf;

use proto::{FileHasher, FileMeta, ListEntry, Problem, Reason};

pub use fs::{FsStore, PartialInfo, PartialsPolicy, StdoutStore};

/// Where received files go and where served files come from. Shared by every connection of a
/// server (hence `Sync`); implementations serialise what must be serialised themselves.
pub trait Store: Send + Sync {
    /// Decide on a file the peer offers. `meta.path` is the peer's claim and must be
    /// validated ([`path::sanitize`]). On success the returned file knows the bytes already
    /// held from an earlier attempt (its [`Incoming::prefix`]).
    ///
    /// # Errors
    /// The problem the peer sees: `BadName`, `UpToDate` (same content already there, judged by
    /// `meta.hash`), `Exists` (different or unknown content and `meta.overwrite` is false),
    /// `Denied`, `NoSpace`, `Io`...
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem>;

    /// The files to send for a GET of `path`: the file itself, or every file under a directory
    /// (names relative to the store root, like the request).
    ///
    /// # Errors
    /// `BadName`, `NotFound`, `Denied`, `Io`.
    fn lookup(&self, path: &str) -> Result<Vec<Outgoing>, Problem>;

    /// The published files under `prefix` (a directory or a name prefix; empty for all), sorted
    /// by path. Partial and temporary files are never listed.
    ///
    /// # Errors
    /// `BadName`, `Denied`, `Io`.
    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem>;

    /// Append one record (a validated JSON object serialised on one line, without the
    /// newline) durably to the store's record log; return only once it is durable.
    ///
    /// # Errors
    /// `Unsupported` for stores that keep no records (the default); `NoSpace`, `Io`...
    fn append_record(&self, line: &str) -> Result<(), Problem> {
        let _ = line;
        Err(Problem::new(
            Reason::Unsupported,
            "this side keeps no records",
        ))
    }

    /// The store a connected peer may use, given its authenticated long-term key (`None` in
    /// the PSK mode): `Ok(None)` for this store itself (the default), `Ok(Some(..))` for a
    /// narrower one (a client's rights and folder), `Err` to refuse the peer before any file
    /// work. Asked once per connection, when it is established.
    ///
    /// # Errors
    /// The refusal (the session is closed).
    fn for_peer(
        &self,
        peer: Option<&[u8; 32]>,
    ) -> Result<Option<std::sync::Arc<dyn Store>>, Problem> {
        let _ = peer;
        Ok(None)
    }

    /// The peer's access was revoked meanwhile: its sessions end (partials kept, nothing
    /// more published). Never true by default.
    fn revoked(&self) -> bool {
        false
    }
}

/// A file being received.
pub trait Incoming: Send {
    /// Hash state of the bytes already held from an earlier attempt (empty when starting
    /// fresh); pass it to `Session::accept`.
    fn prefix(&self) -> FileHasher;

    /// Write received bytes at `offset`. A chunk at offset 0 after a non-empty prefix means
    /// the sender restarted: what was held is superseded.
    ///
    /// # Errors
    /// The I/O error; the caller reports it with [`problem_from_io`].
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Every byte arrived and matches the sender's whole-file hash: make the file durable and
    /// publish it under its final name with its mode and mtime (file fsync, rename, directory
    /// fsync). Only after this returns `Ok` may the session be told `committed`.
    ///
    /// # Errors
    /// The problem the peer sees (`NoSpace`, `Denied`, `Io`...); what arrived is kept as a partial.
    fn commit(self: Box<Self>, size: u64) -> Result<(), Problem>;

    /// [`commit`](Incoming::commit) as part of a group ([`commit::commit_batch`]): do
    /// everything but the flush and the rename, and return what is left. The group then makes
    /// the data of all its files durable with one filesystem sync, publishes each, and syncs
    /// once more for the renames, so a crash can never publish a partial or unverified file.
    /// The default commits alone, right away.
    fn stage(self: Box<Self>, size: u64) -> Staged {
        Staged::Done(self.commit(size))
    }

    /// The transfer stopped before the end (connection lost, sender aborted): keep what
    /// arrived, durably, for a later resume.
    fn suspend(self: Box<Self>);

    /// The bytes failed verification: throw them away (no partial is kept).
    fn discard(self: Box<Self>);
}

/// A file half-way through a grouped commit (see [`Incoming::stage`]).
pub enum Staged {
    /// Committed (or failed) on its own already.
    Done(Result<(), Problem>),
    /// Written and closed; durable once its filesystem is synced, then published by
    /// [`Publish::publish`].
    Pending(Box<dyn Publish>),
}

/// The second half of a grouped commit.
pub trait Publish: Send {
    /// An open handle on the file: the group syncs the filesystem it lives on.
    fn handle(&self) -> &std::fs::File;

    /// The device (`st_dev`) of that filesystem: each is synced once per group.
    fn device(&self) -> u64;

    /// The file's data is durable: rename it to its final name. The group syncs the
    /// filesystem again afterwards, for the directory entries.
    ///
    /// # Errors
    /// The problem the peer sees (`Exists` if the name appeared meanwhile, `Io`...); the
    /// partial is kept.
    fn publish(self: Box<Self>) -> Result<(), Problem>;
}

/// A file to send, with the name and metadata the receiver will see.
pub struct Outgoing {
    /// What the offer says (`path` is the name on the receiving side).
    pub meta: FileMeta,
    /// Where the bytes come from.
    pub source: Source,
}

impl Outgoing {
    /// A local regular file to send as `name`, with its size, permission bits and mtime.
    ///
    /// # Errors
    /// The file cannot be read, or is not a regular file.
    pub fn from_file(path: PathBuf, name: &str, overwrite: bool) -> io::Result<Outgoing> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(&path)?;
        if !md.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a regular file", path.display()),
            ));
        }
        let mut meta = FileMeta::new(name, Some(md.len()));
        meta.mode = Some(md.mode() & 0o777);
        meta.mtime = fs::mtime_of(&md);
        meta.overwrite = overwrite;
        Ok(Outgoing {
            meta,
            source: Source::File(path),
        })
    }
}

/// Where an outgoing file's bytes come from.
pub enum Source {
    /// A file the local user named (read from the start, or after a verified prefix when
    /// resuming).
    File(PathBuf),
    /// A file under a served root as [`Store::lookup`] found it: opened only if it is still that
    /// file (same device and inode), so a symlink or another file swapped in between the lookup
    /// and the open is refused instead of served.
    Served {
        /// Where it is.
        path: PathBuf,
        /// Its device at lookup time.
        dev: u64,
        /// Its inode at lookup time.
        ino: u64,
        /// Set when the store keeps files sealed at rest: decrypt while reading.
        sealed: Option<proto::seal::SealKey>,
    },
    /// A stream of unknown length, read once (standard input): no resume.
    Reader(Box<dyn io::Read + Send>),
}

impl Source {
    /// The same file source again (a stream cannot be reopened: `None`).
    pub fn reopenable(&self) -> Option<Source> {
        match self {
            Source::File(path) => Some(Source::File(path.clone())),
            Source::Served {
                path,
                dev,
                ino,
                sealed,
            } => Some(Source::Served {
                path: path.clone(),
                dev: *dev,
                ino: *ino,
                sealed: sealed.clone(),
            }),
            Source::Reader(_) => None,
        }
    }
}

/// The problem a peer sees for a local I/O error, naming `what` failed.
pub fn problem_from_io(e: &io::Error, what: &str) -> Problem {
    let reason = match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Reason::NoSpace,
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => Reason::Denied,
        io::ErrorKind::NotFound => Reason::NotFound,
        _ => Reason::Io,
    };
    Problem::new(reason, &format!("{what}: {e}"))
}
