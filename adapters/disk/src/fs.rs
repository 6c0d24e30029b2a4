//! The filesystem store ([`FsStore`]) and the standard-output sink ([`StdoutStore`]).
//!
//! # On disk
//!
//! A file arriving as `dir/name` is written to `dir/.ferry-part.name` (mode 0600), next to a
//! small JSON sidecar `dir/.ferry-info.name` that records which offer the bytes belong to
//! (size, mtime, whole-file hash). The sidecar is replaced atomically through
//! `dir/.ferry-tmp.name`. On commit the partial gets its final length, mode and mtime, is
//! fsynced, renamed over `dir/name`, and the directory is fsynced; the sidecar is removed.
//!
//! When `.ferry-part.` plus the name would exceed [`MAX_COMPONENT_LEN`], the three names are
//! `.ferry-part-<hex>`, `.ferry-info-<hex>` and `.ferry-tmp-<hex>` instead, `<hex>` being the
//! first 16 bytes of the name's BLAKE3; the sidecar then still records the real name.
//!
//! Every such name starts with [`RESERVED_PREFIX`](crate::path::RESERVED_PREFIX): peers cannot
//! send one ([`sanitize`](crate::path::sanitize)), GET and LIST never show one.
//!
//! # Resume
//!
//! A new offer for a name whose partial and sidecar exist resumes when the sidecar matches the
//! offer exactly (size, mtime and hash, and the size is known) and the partial is not longer
//! than the size: the partial's bytes are hashed into the [`Incoming::prefix`]. Anything else
//! truncates the partial. The session checks the prefix against the sender's, and the whole
//! file against the sender's hash, so a stale or tampered partial costs a restart, never a
//! corrupt file.
//!
//! # Concurrency
//!
//! One [`FsStore`] (and its clones) lets one transfer at a time write a destination: a second
//! offer for the same name is refused with [`Reason::Denied`] until the first is committed,
//! suspended, discarded or dropped. Two processes serving the same root do not coordinate.

use std::collections::HashSet;
use std::fs::{self, File, Metadata, OpenOptions, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::{FileHasher, FileMeta, ListEntry, Mtime, Problem, Reason};
use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use crate::path::{self, MAX_COMPONENT_LEN, RelPath};
use crate::{Incoming, Outgoing, Source, Store, problem_from_io};

/// Prefix of a partial file.
const PARTIAL: &str = ".ferry-part.";
/// Prefix of a partial's sidecar.
const SIDECAR: &str = ".ferry-info.";
/// Prefix of a sidecar being written.
const TEMP: &str = ".ferry-tmp.";

/// Mode of a published file whose offer carries none (`set_permissions` ignores the umask).
const DEFAULT_MODE: u32 = 0o644;
/// Mode of partial, sidecar and temporary files.
const PRIVATE_MODE: u32 = 0o600;
/// Read size when hashing files.
const HASH_BUF: usize = 64 * 1024;
/// A sidecar larger than this is not ours: ignore it.
const MAX_SIDECAR_LEN: u64 = 64 * 1024;

/// The filesystem [`Store`]: files under one root directory. Cheap to clone; clones share the
/// set of destinations being received. See the module docs for the on-disk layout.
#[derive(Debug, Clone)]
pub struct FsStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    /// Absolute destination paths with a transfer in progress.
    in_flight: Mutex<HashSet<PathBuf>>,
}

impl Shared {
    fn in_flight(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        // The set stays consistent even if a holder panicked: inserts and removes are single
        // calls.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl FsStore {
    /// A store rooted at `root`, created (with its parents) if missing. The root is
    /// canonicalised, so later changes of the working directory do not move it.
    ///
    /// # Errors
    /// Creating or resolving the root failed, or it is not a directory.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "the store root is not a directory",
            ));
        }
        Ok(FsStore {
            shared: Arc::new(Shared {
                root,
                in_flight: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The (canonical) root directory.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// The destination's checks, in order: parents, then what is at the name itself.
    fn check_destination(
        &self,
        rel: &RelPath,
        dest: &Path,
        meta: &FileMeta,
    ) -> Result<(), Problem> {
        match parents(self.root(), rel)
            .map_err(|e| problem_from_io(&e, "cannot check the destination"))?
        {
            Parents::Dirs => {}
            Parents::Missing => return Ok(()),
            Parents::NotDir => return Err(bad_name("a parent directory is a file")),
            Parents::Symlink => return Err(bad_name("a parent directory is a symbolic link")),
        }
        let Some(md) =
            node(dest).map_err(|e| problem_from_io(&e, "cannot check the destination"))?
        else {
            return Ok(());
        };
        if md.is_dir() {
            return Err(bad_name("the destination is a directory"));
        }
        if md.is_symlink() {
            return Err(bad_name("the destination is a symbolic link"));
        }
        if !md.is_file() {
            return Err(bad_name("the destination is not a regular file"));
        }
        if let Some(want) = meta.hash
            && meta.size.is_none_or(|size| size == md.len())
        {
            let held = File::open(dest)
                .and_then(hash_stream)
                .map_err(|e| problem_from_io(&e, "cannot read the existing file"))?;
            if held.finalize() == want {
                return Err(Problem::new(
                    Reason::UpToDate,
                    "already there with the same content",
                ));
            }
        }
        if meta.overwrite {
            return Ok(());
        }
        let detail = if meta.hash.is_some() {
            "exists with different content; use --overwrite to replace it"
        } else {
            "exists; use --overwrite to replace it"
        };
        Err(Problem::new(Reason::Exists, detail))
    }

    /// Files under `dir` (recursively, sorted by path), skipping reserved names, symbolic links
    /// and names a peer could not use. With `first`, only entries directly in `dir` whose name
    /// starts with it (and everything below those) count.
    fn published(
        &self,
        dir: &Path,
        first: Option<&str>,
    ) -> Result<Vec<(RelPath, PathBuf, Metadata)>, Problem> {
        let root = self.root();
        let walk = WalkDir::new(dir)
            .follow_links(false)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| match e.file_name().to_str() {
                Some(name) => {
                    !path::is_reserved(name)
                        && (e.depth() != 1 || first.is_none_or(|f| name.starts_with(f)))
                }
                None => {
                    tracing::warn!(path = %e.path().display(), "skipping a name that is not UTF-8");
                    false
                }
            });
        let mut found = Vec::new();
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let kind = e.io_error().map_or(io::ErrorKind::Other, io::Error::kind);
                    if kind == io::ErrorKind::NotFound {
                        continue; // removed while we walked
                    }
                    // Name the directory only if a peer could have named it (no control
                    // characters from a local name reach the peer's terminal).
                    let name = e
                        .path()
                        .and_then(|p| relative(root, p))
                        .and_then(|r| path::sanitize(&r).ok())
                        .map_or_else(|| String::from("."), |r| r.to_string());
                    return Err(problem_from_io(
                        &kind.into(),
                        &format!("cannot read '{name}'"),
                    ));
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let Some(rel) = relative(root, entry.path()).and_then(|r| match path::sanitize(&r) {
                Ok(rel) => Some(rel),
                Err(p) => {
                    tracing::warn!(path = %entry.path().display(), %p, "skipping a name peers cannot use");
                    None
                }
            }) else {
                continue;
            };
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) => {
                    let kind = e.io_error().map_or(io::ErrorKind::Other, io::Error::kind);
                    if kind == io::ErrorKind::NotFound {
                        continue;
                    }
                    return Err(problem_from_io(
                        &kind.into(),
                        &format!("cannot read '{rel}'"),
                    ));
                }
            };
            found.push((rel, entry.into_path(), md));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }
}

impl Store for FsStore {
    fn receive(&self, meta: &FileMeta) -> Result<Box<dyn Incoming>, Problem> {
        let rel = path::sanitize(&meta.path)?;
        let dest = rel.to_path(self.root());
        let claim = Claim::take(&self.shared, dest.clone()).ok_or_else(|| {
            Problem::new(
                Reason::Denied,
                "already being received (another transfer to this name is in progress)",
            )
        })?;
        self.check_destination(&rel, &dest, meta)?;
        make_parents(self.root(), &rel)?;
        let names = Names::new(dest, rel.file_name());
        let file = FsIncoming::open(names, rel.file_name(), meta, claim)
            .map_err(|e| problem_from_io(&e, "cannot create the partial file"))?;
        tracing::debug!(path = %rel, resume_from = file.prefix.len(), "receiving");
        Ok(Box::new(file))
    }

    fn lookup(&self, path: &str) -> Result<Vec<Outgoing>, Problem> {
        let root = self.root();
        let not_found = || Problem::new(Reason::NotFound, "no such file or directory");
        let io_problem = |e: io::Error| problem_from_io(&e, "cannot look the name up");
        let (rel, abs, md) = match path::sanitize_or_root(path)? {
            None => (
                None,
                root.to_path_buf(),
                fs::metadata(root).map_err(io_problem)?,
            ),
            Some(rel) => {
                match parents(root, &rel).map_err(io_problem)? {
                    Parents::Dirs => {}
                    Parents::Missing | Parents::NotDir => return Err(not_found()),
                    Parents::Symlink => {
                        return Err(Problem::new(
                            Reason::Denied,
                            "symbolic links are not followed",
                        ));
                    }
                }
                let abs = rel.to_path(root);
                let md = node(&abs).map_err(io_problem)?.ok_or_else(not_found)?;
                (Some(rel), abs, md)
            }
        };
        if md.is_symlink() {
            return Err(Problem::new(
                Reason::Denied,
                "symbolic links are not followed",
            ));
        }
        let files = match rel {
            _ if md.is_dir() => self.published(&abs, None)?,
            Some(rel) if md.is_file() => vec![(rel, abs, md)],
            _ => {
                return Err(Problem::new(
                    Reason::Denied,
                    "not a regular file or directory",
                ));
            }
        };
        Ok(files
            .into_iter()
            .map(|(rel, abs, md)| Outgoing {
                meta: FileMeta {
                    path: rel.as_str().to_owned(),
                    size: Some(md.len()),
                    mode: Some(md.mode() & 0o777),
                    mtime: mtime_of(&md),
                    hash: None,
                    overwrite: false,
                },
                source: Source::File(abs),
            })
            .collect())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        let root = self.root();
        let io_problem = |e: io::Error| problem_from_io(&e, "cannot look the name up");
        let found = match path::sanitize_or_root(prefix)? {
            None => self.published(root, None)?,
            Some(rel) => match parents(root, &rel).map_err(io_problem)? {
                Parents::Dirs => {
                    let abs = rel.to_path(root);
                    match node(&abs).map_err(io_problem)? {
                        Some(md) if md.is_dir() => self.published(&abs, None)?,
                        _ => {
                            let dir = abs.parent().unwrap_or(root);
                            self.published(dir, Some(rel.file_name()))?
                        }
                    }
                }
                Parents::Missing | Parents::NotDir | Parents::Symlink => Vec::new(),
            },
        };
        Ok(found
            .into_iter()
            .map(|(rel, _, md)| ListEntry {
                path: rel.as_str().to_owned(),
                size: md.len(),
                mtime: mtime_of(&md),
            })
            .collect())
    }
}

/// Holds one destination in the store's in-flight set; released on drop.
#[derive(Debug)]
struct Claim {
    shared: Arc<Shared>,
    dest: PathBuf,
}

impl Claim {
    fn take(shared: &Arc<Shared>, dest: PathBuf) -> Option<Claim> {
        shared.in_flight().insert(dest.clone()).then(|| Claim {
            shared: Arc::clone(shared),
            dest,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.shared.in_flight().remove(&self.dest);
    }
}

/// The paths that belong to one destination.
#[derive(Debug)]
struct Names {
    dir: PathBuf,
    dest: PathBuf,
    partial: PathBuf,
    sidecar: PathBuf,
    temp: PathBuf,
}

impl Names {
    fn new(dest: PathBuf, name: &str) -> Self {
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        Names {
            partial: dir.join(aux_name(PARTIAL, name)),
            sidecar: dir.join(aux_name(SIDECAR, name)),
            temp: dir.join(aux_name(TEMP, name)),
            dir,
            dest,
        }
    }
}

/// `<prefix><name>`, or `<prefix without its dot>-<hex>` when that would be too long a name.
fn aux_name(prefix: &str, name: &str) -> String {
    if prefix.len() + name.len() <= MAX_COMPONENT_LEN {
        return format!("{prefix}{name}");
    }
    let hash = proto::hash(name.as_bytes());
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", prefix.trim_end_matches('.'))
}

/// What a sidecar says: the offer a partial file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sidecar {
    /// The final file name (informative; the sidecar's own name says it unless hashed).
    name: String,
    size: u64,
    mtime: Option<Mtime>,
    /// Whole-file BLAKE3, hex.
    blake3: Option<String>,
}

impl Sidecar {
    /// `None` for an offer of unknown size: those never resume.
    fn for_offer(meta: &FileMeta, name: &str) -> Option<Self> {
        Some(Sidecar {
            name: name.to_owned(),
            size: meta.size?,
            mtime: meta.mtime,
            blake3: meta
                .hash
                .map(|h| h.iter().map(|b| format!("{b:02x}")).collect()),
        })
    }

    fn read(path: &Path) -> Option<Self> {
        let mut json = Vec::new();
        match File::open(path).and_then(|f| f.take(MAX_SIDECAR_LEN).read_to_end(&mut json)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::debug!(path = %path.display(), %e, "unreadable sidecar");
                return None;
            }
        }
        serde_json::from_slice(&json)
            .inspect_err(|e| tracing::debug!(path = %path.display(), %e, "invalid sidecar"))
            .ok()
    }

    /// Write through the temporary name and rename, so a crash leaves the old or the new one.
    fn write(&self, names: &Names) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        remove_if_exists(&names.temp)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_MODE)
            .open(&names.temp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&names.temp, &names.sidecar)
    }
}

/// A file being received into a partial next to its destination.
struct FsIncoming {
    file: File,
    names: Names,
    /// The sidecar for this offer (`None`: unknown size, not resumable).
    sidecar: Option<Sidecar>,
    size: Option<u64>,
    mode: u32,
    mtime: Option<Mtime>,
    overwrite: bool,
    prefix: FileHasher,
    /// A write at offset 0 superseded the prefix.
    restarted: bool,
    _claim: Claim,
}

impl FsIncoming {
    fn open(names: Names, name: &str, meta: &FileMeta, claim: Claim) -> io::Result<Self> {
        // A partial name that is not a regular file is not ours to reuse: never write through a
        // symbolic link somebody left there.
        if node(&names.partial)?.is_some_and(|md| !md.is_file()) {
            fs::remove_file(&names.partial)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_MODE)
            .open(&names.partial)?;
        file.set_permissions(Permissions::from_mode(PRIVATE_MODE))?;
        let sidecar = Sidecar::for_offer(meta, name);
        let held = file.metadata()?.len();
        let resume = match &sidecar {
            Some(want) => {
                held > 0
                    && held <= want.size
                    && Sidecar::read(&names.sidecar).as_ref() == Some(want)
            }
            None => false,
        };
        let prefix = if resume {
            hash_stream((&file).take(held))?
        } else {
            if held > 0 {
                tracing::debug!(path = %names.partial.display(), held, "stale partial truncated");
            }
            file.set_len(0)?;
            FileHasher::new()
        };
        match &sidecar {
            Some(s) => s.write(&names)?,
            None => remove_if_exists(&names.sidecar)?,
        }
        Ok(FsIncoming {
            file,
            names,
            sidecar,
            size: meta.size,
            mode: meta.mode.map_or(DEFAULT_MODE, |m| (m & 0o777) | 0o600),
            mtime: meta.mtime,
            overwrite: meta.overwrite,
            prefix,
            restarted: false,
            _claim: claim,
        })
    }

    fn publish(&self, size: u64) -> Result<(), Problem> {
        let fail = |what: &'static str| move |e: io::Error| problem_from_io(&e, what);
        if self.size.is_some_and(|s| s != size) {
            tracing::debug!(offered = ?self.size, size, "committing a size other than offered");
        }
        self.file
            .set_len(size)
            .map_err(fail("cannot set the file size"))?;
        self.file
            .set_permissions(Permissions::from_mode(self.mode))
            .map_err(fail("cannot set the file mode"))?;
        // A time the filesystem cannot hold is not worth losing the file over.
        match self.mtime.map(|m| (m, system_time(m))) {
            None => {}
            Some((m, None)) => tracing::warn!(?m, "modification time out of range; not set"),
            Some((m, Some(t))) => {
                if let Err(e) = self.file.set_modified(t) {
                    tracing::warn!(?m, %e, "cannot set the modification time");
                }
            }
        }
        self.file
            .sync_all()
            .map_err(fail("cannot flush the file to disk"))?;
        if !self.overwrite
            && node(&self.names.dest)
                .map_err(fail("cannot check the destination"))?
                .is_some()
        {
            return Err(Problem::new(
                Reason::Exists,
                "appeared while receiving; use --overwrite to replace it",
            ));
        }
        fs::rename(&self.names.partial, &self.names.dest)
            .map_err(fail("cannot publish the file"))?;
        if let Err(e) = remove_if_exists(&self.names.sidecar) {
            tracing::warn!(path = %self.names.sidecar.display(), %e, "cannot remove a sidecar");
        }
        sync_dir(&self.names.dir).map_err(fail("cannot flush the directory to disk"))
    }

    fn remove_partial(&self) {
        for p in [&self.names.partial, &self.names.sidecar] {
            if let Err(e) = remove_if_exists(p) {
                tracing::warn!(path = %p.display(), %e, "cannot remove");
            }
        }
    }
}

impl Incoming for FsIncoming {
    fn prefix(&self) -> FileHasher {
        self.prefix.clone()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|end| self.size.is_some_and(|size| end > size)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past the offered size",
            ));
        }
        if offset == 0 && !self.prefix.is_empty() && !self.restarted {
            // The sender restarted: drop what was held so a suspend now keeps only new bytes.
            self.file.set_len(0)?;
            self.restarted = true;
        }
        self.file.write_all_at(data, offset)
    }

    fn commit(self: Box<Self>, size: u64) -> Result<(), Problem> {
        match self.publish(size) {
            Ok(()) => {
                tracing::debug!(path = %self.names.dest.display(), size, "published");
                Ok(())
            }
            Err(p) => {
                // Keep the partial (and its sidecar) for a later attempt.
                tracing::warn!(path = %self.names.dest.display(), %p, "commit failed; partial kept");
                if let Err(e) = self.file.sync_data() {
                    tracing::warn!(path = %self.names.partial.display(), %e, "cannot flush the partial");
                }
                Err(p)
            }
        }
    }

    fn suspend(self: Box<Self>) {
        let Some(sidecar) = &self.sidecar else {
            // Unknown size: the bytes can never be resumed, keeping them only wastes space.
            self.remove_partial();
            return;
        };
        let kept = self
            .file
            .sync_data()
            .and_then(|()| sidecar.write(&self.names))
            .and_then(|()| sync_dir(&self.names.dir));
        match kept {
            Ok(()) => {
                tracing::debug!(path = %self.names.partial.display(), "partial kept for resume")
            }
            Err(e) => {
                tracing::warn!(path = %self.names.partial.display(), %e, "cannot keep the partial durably")
            }
        }
    }

    fn discard(self: Box<Self>) {
        self.remove_partial();
        tracing::debug!(path = %self.names.partial.display(), "partial discarded");
    }
}

/// Whether every directory above `rel` is a real directory (not a symbolic link).
#[derive(Debug, PartialEq, Eq)]
enum Parents {
    /// All exist and are directories.
    Dirs,
    /// One is missing (those before it are directories).
    Missing,
    /// One is neither a directory nor a symbolic link.
    NotDir,
    /// One is a symbolic link.
    Symlink,
}

fn parents(root: &Path, rel: &RelPath) -> io::Result<Parents> {
    let mut dir = root.to_path_buf();
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        if components.peek().is_none() {
            break;
        }
        dir.push(c);
        match node(&dir)? {
            None => return Ok(Parents::Missing),
            Some(md) if md.is_dir() => {}
            Some(md) if md.is_symlink() => return Ok(Parents::Symlink),
            Some(_) => return Ok(Parents::NotDir),
        }
    }
    Ok(Parents::Dirs)
}

/// Create the missing directories above `rel`, refusing to go through anything but a directory.
fn make_parents(root: &Path, rel: &RelPath) -> Result<(), Problem> {
    let fail = |e: io::Error| problem_from_io(&e, "cannot create the directory");
    let mut dir = root.to_path_buf();
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        if components.peek().is_none() {
            break;
        }
        dir.push(c);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !node(&dir).map_err(fail)?.is_some_and(|md| md.is_dir()) {
                    return Err(bad_name("a parent directory is not a directory"));
                }
            }
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(())
}

/// What is at `path`, without following a final symbolic link; `None` when nothing is.
fn node(path: &Path) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn hash_stream(mut r: impl Read) -> io::Result<FileHasher> {
    let mut h = FileHasher::new();
    let mut buf = vec![0; HASH_BUF];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(h),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `path` relative to `root`, `/`-separated, if it is UTF-8.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

fn mtime_of(md: &Metadata) -> Option<Mtime> {
    Some(Mtime {
        secs: md.mtime(),
        nanos: u32::try_from(md.mtime_nsec()).ok()?,
    })
}

fn system_time(m: Mtime) -> Option<SystemTime> {
    if m.nanos >= 1_000_000_000 {
        return None;
    }
    let secs = Duration::from_secs(m.secs.unsigned_abs());
    let whole = if m.secs >= 0 {
        UNIX_EPOCH.checked_add(secs)
    } else {
        UNIX_EPOCH.checked_sub(secs)
    };
    whole?.checked_add(Duration::from_nanos(u64::from(m.nanos)))
}

fn bad_name(detail: &str) -> Problem {
    Problem::new(Reason::BadName, detail)
}

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

    fn with_writer(w: Box<dyn Write + Send>) -> Self {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::sync::Arc;

    use super::*;

    const MTIME: Mtime = Mtime {
        secs: 1_600_000_000,
        nanos: 123_456_789,
    };

    fn store() -> (tempfile::TempDir, FsStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = FsStore::new(tmp.path().join("root")).unwrap();
        (tmp, store)
    }

    fn offer(path: &str, data: &[u8]) -> FileMeta {
        FileMeta {
            path: path.to_owned(),
            size: Some(data.len() as u64),
            mode: Some(0o640),
            mtime: Some(MTIME),
            hash: Some(proto::hash(data)),
            overwrite: false,
        }
    }

    fn refused(r: Result<Box<dyn Incoming>, Problem>) -> Problem {
        match r {
            Ok(_) => panic!("accepted"),
            Err(p) => p,
        }
    }

    fn accepted(r: Result<Box<dyn Incoming>, Problem>) -> Box<dyn Incoming> {
        r.unwrap_or_else(|p| panic!("refused: {p}"))
    }

    /// Receive `data` in one write and commit it.
    fn put(store: &FsStore, meta: &FileMeta, data: &[u8]) -> Result<(), Problem> {
        let mut f = store.receive(meta)?;
        f.write_at(0, data).unwrap();
        f.commit(data.len() as u64)
    }

    /// Every name under `dir`, hidden ones included, relative and sorted.
    fn tree(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .map(|e| relative(dir, e.unwrap().path()).unwrap())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// Whether this process ignores file permissions (root, or CAP_DAC_OVERRIDE): then
    /// permission failures cannot be provoked.
    fn permissions_are_bypassed(tmp: &Path) -> bool {
        let dir = tmp.join("probe");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();
        let bypassed = File::create(dir.join("x")).is_ok();
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        bypassed
    }

    #[test]
    fn fresh_receive_publishes_content_mode_and_mtime() {
        let (_tmp, store) = store();
        let data = b"hello, ferry";
        let mut f = accepted(store.receive(&offer("a/b/c.txt", data)));
        assert!(f.prefix().is_empty());
        f.write_at(0, &data[..5]).unwrap();
        f.write_at(5, &data[5..]).unwrap();
        f.commit(data.len() as u64).unwrap();

        let dest = store.root().join("a/b/c.txt");
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert_eq!(mode(&dest), 0o640);
        let md = fs::metadata(&dest).unwrap();
        assert_eq!(mtime_of(&md), Some(MTIME));
        assert_eq!(tree(store.root()), ["a", "a/b", "a/b/c.txt"]);
    }

    #[test]
    fn mode_is_masked_and_keeps_owner_rw() {
        let (_tmp, store) = store();
        for (i, (offered, want)) in [
            (Some(0o755), 0o755),
            (Some(0o4755), 0o755),
            (Some(0o7777), 0o777),
            (Some(0o000), 0o600),
            (Some(0o444), 0o644),
            (None, DEFAULT_MODE),
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("f{i}");
            let mut meta = offer(&name, b"x");
            meta.mode = offered;
            put(&store, &meta, b"x").unwrap();
            assert_eq!(mode(&store.root().join(&name)), want, "{offered:?}");
        }
    }

    #[test]
    fn mtime_conversion() {
        for m in [
            MTIME,
            Mtime { secs: 0, nanos: 0 },
            Mtime {
                secs: -1,
                nanos: 500_000_000,
            },
            Mtime {
                secs: -86_400,
                nanos: 0,
            },
        ] {
            let t = system_time(m).unwrap();
            let back = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_nanos() as i128,
                Err(e) => -(e.duration().as_nanos() as i128),
            };
            assert_eq!(
                back,
                i128::from(m.secs) * 1_000_000_000 + i128::from(m.nanos),
                "{m:?}"
            );
        }
        assert_eq!(
            system_time(Mtime {
                secs: 0,
                nanos: 1_000_000_000
            }),
            None
        );

        // Times the filesystem cannot hold do not fail the commit.
        let (_tmp, store) = store();
        for (i, secs) in [i64::MAX, i64::MIN, 1 << 40].into_iter().enumerate() {
            let mut meta = offer(&format!("f{i}"), b"x");
            meta.mtime = Some(Mtime { secs, nanos: 5 });
            put(&store, &meta, b"x").unwrap_or_else(|p| panic!("{secs}: {p}"));
        }

        // Before the epoch, through a real file.
        let mut meta = offer("old", b"x");
        meta.mtime = Some(Mtime {
            secs: -1,
            nanos: 250,
        });
        put(&store, &meta, b"x").unwrap();
        let md = fs::metadata(store.root().join("old")).unwrap();
        assert_eq!(mtime_of(&md), meta.mtime);
    }

    #[test]
    fn same_content_with_hash_is_up_to_date() {
        let (_tmp, store) = store();
        let data = vec![7u8; 3 * HASH_BUF + 17]; // several hashing reads
        put(&store, &offer("f", &data), &data).unwrap();
        let p = refused(store.receive(&offer("f", &data)));
        assert_eq!(p.reason, Reason::UpToDate);
        // Even with --overwrite: nothing to do.
        let mut meta = offer("f", &data);
        meta.overwrite = true;
        assert_eq!(refused(store.receive(&meta)).reason, Reason::UpToDate);
        assert_eq!(tree(store.root()), ["f"], "nothing left behind");
    }

    #[test]
    fn different_or_unknown_content_exists_without_overwrite() {
        let (_tmp, store) = store();
        put(&store, &offer("f", b"old"), b"old").unwrap();
        let p = refused(store.receive(&offer("f", b"new")));
        assert_eq!(p.reason, Reason::Exists);
        assert!(p.detail.contains("--overwrite"), "{}", p.detail);
        // Same size, different content: hashed, still different.
        assert_eq!(
            refused(store.receive(&offer("f", b"odd"))).reason,
            Reason::Exists
        );
        // No hash: cannot tell, so it exists.
        let mut meta = offer("f", b"old");
        meta.hash = None;
        let p = refused(store.receive(&meta));
        assert_eq!(p.reason, Reason::Exists);
        assert!(p.detail.contains("--overwrite"), "{}", p.detail);
        assert_eq!(fs::read(store.root().join("f")).unwrap(), b"old");
        assert_eq!(tree(store.root()), ["f"]);
    }

    #[test]
    fn overwrite_replaces() {
        let (_tmp, store) = store();
        put(&store, &offer("f", b"old content"), b"old content").unwrap();
        let mut meta = offer("f", b"new");
        meta.overwrite = true;
        meta.mode = Some(0o600);
        put(&store, &meta, b"new").unwrap();
        assert_eq!(fs::read(store.root().join("f")).unwrap(), b"new");
        assert_eq!(mode(&store.root().join("f")), 0o600);
        assert_eq!(tree(store.root()), ["f"]);
    }

    #[test]
    fn resume_after_suspend() {
        let (_tmp, store) = store();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let meta = offer("d/big", &data);
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, &data[..40_000]).unwrap();
        f.suspend();
        assert_eq!(
            tree(store.root()),
            ["d", "d/.ferry-info.big", "d/.ferry-part.big"]
        );

        let mut f = accepted(store.receive(&meta));
        let prefix = f.prefix();
        assert_eq!(prefix.len(), 40_000);
        assert_eq!(prefix.finalize(), proto::hash(&data[..40_000]));
        f.write_at(40_000, &data[40_000..]).unwrap();
        f.commit(data.len() as u64).unwrap();
        assert_eq!(fs::read(store.root().join("d/big")).unwrap(), data);
        assert_eq!(tree(store.root()), ["d", "d/big"]);
    }

    #[test]
    fn dropped_transfer_is_still_resumable() {
        // A crash (here: a drop without suspend) keeps the sidecar written at creation.
        let (_tmp, store) = store();
        let data = b"0123456789";
        let mut f = accepted(store.receive(&offer("f", data)));
        f.write_at(0, &data[..4]).unwrap();
        drop(f);
        let f = accepted(store.receive(&offer("f", data)));
        assert_eq!(f.prefix().len(), 4);
    }

    #[test]
    fn changed_offer_does_not_resume() {
        let data = b"0123456789";
        type Change = fn(&mut FileMeta, &Names);
        let cases: &[(&str, Change)] = &[
            ("size", |m, _| m.size = Some(11)),
            ("mtime", |m, _| m.mtime = Some(Mtime { secs: 1, nanos: 0 })),
            ("no mtime", |m, _| m.mtime = None),
            ("hash", |m, _| m.hash = Some([0; 32])),
            ("no hash", |m, _| m.hash = None),
            ("unknown size", |m, _| m.size = None),
            ("sidecar lost", |_, n| fs::remove_file(&n.sidecar).unwrap()),
            ("sidecar garbled", |_, n| {
                fs::write(&n.sidecar, b"{not json").unwrap()
            }),
            ("partial longer than the file", |_, n| {
                fs::write(&n.partial, b"0123456789ab").unwrap();
            }),
        ];
        for (what, change) in cases {
            let (_tmp, store) = store();
            let mut meta = offer("f", data);
            let mut f = accepted(store.receive(&meta));
            f.write_at(0, &data[..6]).unwrap();
            f.suspend();
            change(&mut meta, &Names::new(store.root().join("f"), "f"));
            let mut f = accepted(store.receive(&meta));
            assert!(f.prefix().is_empty(), "{what}: resumed");
            let partial = store.root().join(".ferry-part.f");
            assert_eq!(
                fs::metadata(&partial).unwrap().len(),
                0,
                "{what}: not truncated"
            );
            // And the fresh transfer still works.
            f.write_at(0, data).unwrap();
            f.commit(data.len() as u64).unwrap();
            assert_eq!(fs::read(store.root().join("f")).unwrap(), data, "{what}");
        }
    }

    #[test]
    fn restart_at_zero_after_a_prefix() {
        let (_tmp, store) = store();
        let old = b"AAAAAAAAAAAAAAAAAAAA"; // 20 bytes held
        let new = b"bbbbbbbbbbbbbbbbbbbb";
        let meta = offer("f", new);
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, old).unwrap();
        f.suspend();
        let mut f = accepted(store.receive(&meta));
        assert_eq!(f.prefix().len(), 20);
        // The sender's prefix differed: it starts over, and is interrupted halfway.
        f.write_at(0, &new[..8]).unwrap();
        f.suspend();
        let mut f = accepted(store.receive(&meta));
        assert_eq!(f.prefix().len(), 8, "only the new bytes are held");
        assert_eq!(f.prefix().finalize(), proto::hash(&new[..8]));
        // Another restart, this time to the end.
        f.write_at(0, &new[..10]).unwrap();
        f.write_at(10, &new[10..]).unwrap();
        f.commit(new.len() as u64).unwrap();
        assert_eq!(fs::read(store.root().join("f")).unwrap(), new);
    }

    #[test]
    fn commit_truncates_to_size() {
        let (_tmp, store) = store();
        let data = b"short";
        let mut meta = offer("f", data);
        meta.size = None; // a stream: no size to check writes against
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, b"short and then some").unwrap();
        f.commit(5).unwrap();
        assert_eq!(fs::read(store.root().join("f")).unwrap(), data);
    }

    #[test]
    fn write_past_the_offered_size_is_refused() {
        let (_tmp, store) = store();
        let mut f = accepted(store.receive(&offer("f", b"1234")));
        f.write_at(0, b"1234").unwrap();
        let e = f.write_at(2, b"345").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = f.write_at(u64::MAX, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn discard_removes_partial_and_sidecar() {
        let (_tmp, store) = store();
        let mut f = accepted(store.receive(&offer("d/f", b"data")));
        f.write_at(0, b"da").unwrap();
        assert_eq!(
            tree(store.root()),
            ["d", "d/.ferry-info.f", "d/.ferry-part.f"]
        );
        f.discard();
        assert_eq!(tree(store.root()), ["d"]);
        // And the name is free again.
        drop(accepted(store.receive(&offer("d/f", b"data"))));
    }

    #[test]
    fn unknown_size_never_resumes_and_keeps_nothing() {
        let (_tmp, store) = store();
        let mut meta = offer("f", b"stream");
        meta.size = None;
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, b"str").unwrap();
        assert_eq!(
            tree(store.root()),
            [".ferry-part.f"],
            "no sidecar for a stream"
        );
        f.suspend();
        assert!(tree(store.root()).is_empty());
    }

    #[test]
    fn concurrent_receives_of_one_path_are_denied_until_released() {
        type End = fn(Box<dyn Incoming>);
        let ends: &[(&str, End)] = &[
            ("drop", drop),
            ("suspend", |f| f.suspend()),
            ("discard", |f| f.discard()),
            ("commit", |mut f| {
                f.write_at(0, b"x").unwrap();
                f.commit(1).unwrap();
            }),
        ];
        for (how, end) in ends {
            let (_tmp, store) = store();
            let mut meta = offer("a/f", b"x");
            meta.overwrite = true;
            let first = accepted(store.receive(&meta));
            // Through a clone too: clones share the set. Another name is not affected.
            let other = store.clone();
            let p = refused(other.receive(&meta));
            assert_eq!(p.reason, Reason::Denied, "{how}");
            assert!(
                p.detail.contains("already being received"),
                "{how}: {}",
                p.detail
            );
            let mut equivalent = meta.clone();
            equivalent.path = String::from("./a//f");
            assert_eq!(
                refused(store.receive(&equivalent)).reason,
                Reason::Denied,
                "{how}"
            );
            drop(accepted(store.receive(&offer("a/g", b"x"))));
            end(first);
            let second = other.receive(&meta);
            match second {
                Ok(_) => {}
                // After a commit of the same content the answer is "up to date", not "busy".
                Err(p) => assert_eq!(p.reason, Reason::UpToDate, "{how}"),
            }
        }
    }

    #[test]
    fn concurrent_receives_from_threads() {
        let (_tmp, store) = store();
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let meta = offer("f", b"x");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (store, meta, barrier) = (store.clone(), meta.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    match store.receive(&meta) {
                        Ok(f) => {
                            std::thread::sleep(Duration::from_millis(20));
                            drop(f);
                            true
                        }
                        Err(p) => {
                            assert_eq!(p.reason, Reason::Denied);
                            false
                        }
                    }
                })
            })
            .collect();
        let won = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count();
        assert!(won >= 1);
        assert!(store.shared.in_flight().is_empty());
    }

    #[test]
    fn bad_names_are_rejected_and_nothing_is_created() {
        let (tmp, store) = store();
        for name in [
            "",
            ".",
            "/etc/passwd",
            "../escape",
            "a/../../escape",
            "a/..",
            "C:/escape",
            "\\\\host\\share",
            "a\\..\\..\\escape",
            "a\0b",
            "a\nb",
            ".ferry-part.x",
            "d/.ferry-info.x",
            ".FERRY-TMP.x",
        ] {
            let mut meta = offer(name, b"x");
            meta.overwrite = true;
            let p = refused(store.receive(&meta));
            assert_eq!(p.reason, Reason::BadName, "{name:?}");
        }
        assert!(tree(store.root()).is_empty());
        assert_eq!(tree(tmp.path()), ["root"]);
    }

    #[test]
    fn destination_must_be_a_file_under_directories() {
        let (tmp, store) = store();
        let root = store.root();
        fs::create_dir(root.join("dir")).unwrap();
        fs::write(root.join("file"), b"x").unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        symlink(tmp.path().join("outside"), root.join("link-dir")).unwrap();
        symlink(tmp.path().join("outside/target"), root.join("link-file")).unwrap();
        for (name, detail) in [
            ("dir", "is a directory"),
            ("file/x", "parent directory is a file"),
            ("file/x/y", "parent directory is a file"),
            ("link-dir/x", "symbolic link"),
            ("link-file", "symbolic link"),
        ] {
            let mut meta = offer(name, b"data");
            meta.overwrite = true;
            let p = refused(store.receive(&meta));
            assert_eq!(p.reason, Reason::BadName, "{name}");
            assert!(p.detail.contains(detail), "{name}: {}", p.detail);
        }
        assert!(tree(&tmp.path().join("outside")).is_empty());
        assert_eq!(tree(root), ["dir", "file", "link-dir", "link-file"]);
    }

    #[test]
    fn partial_is_private() {
        let (_tmp, store) = store();
        let mut meta = offer("f", b"secret");
        meta.mode = Some(0o644);
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, b"sec").unwrap();
        assert_eq!(mode(&store.root().join(".ferry-part.f")), 0o600);
        assert_eq!(mode(&store.root().join(".ferry-info.f")), 0o600);
        f.suspend();
        // A partial left world-readable is tightened when reused.
        let partial = store.root().join(".ferry-part.f");
        fs::set_permissions(&partial, Permissions::from_mode(0o666)).unwrap();
        let f = accepted(store.receive(&meta));
        assert_eq!(f.prefix().len(), 3);
        assert_eq!(mode(&partial), 0o600);
    }

    #[test]
    fn partial_symlink_is_not_written_through() {
        let (tmp, store) = store();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        symlink(&victim, store.root().join(".ferry-part.f")).unwrap();
        let mut f = accepted(store.receive(&offer("f", b"data")));
        f.write_at(0, b"data").unwrap();
        f.commit(4).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(store.root().join("f")).unwrap(), b"data");
    }

    #[test]
    fn long_names_use_hashed_partials() {
        let (_tmp, store) = store();
        let name = "n".repeat(MAX_COMPONENT_LEN);
        let data = b"long";
        let mut f = accepted(store.receive(&offer(&name, data)));
        f.write_at(0, &data[..2]).unwrap();
        f.suspend();
        let held = tree(store.root());
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(
            held.iter().all(|n| n.len() < 64 && path::is_reserved(n)),
            "{held:?}"
        );
        let sidecar = Sidecar::read(&store.root().join(&held[0])).unwrap();
        assert_eq!(sidecar.name, name);
        let mut f = accepted(store.receive(&offer(&name, data)));
        assert_eq!(f.prefix().len(), 2);
        f.write_at(2, &data[2..]).unwrap();
        f.commit(4).unwrap();
        assert_eq!(tree(store.root()), [name]);
        // Two long names get different partials.
        assert_ne!(
            aux_name(PARTIAL, &"a".repeat(250)),
            aux_name(PARTIAL, &"b".repeat(250))
        );
    }

    #[test]
    fn commit_failure_keeps_the_partial() {
        let (_tmp, store) = store();
        let data = b"data";
        let mut meta = offer("f", data);
        meta.overwrite = true;
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, data).unwrap();
        // A directory (with something in it) takes the name before the commit.
        fs::create_dir_all(store.root().join("f/inner")).unwrap();
        let p = f.commit(4).unwrap_err();
        assert_eq!(p.reason, Reason::Io, "{p}");
        assert!(p.detail.contains("cannot publish"), "{}", p.detail);
        assert_eq!(
            tree(store.root()),
            [".ferry-info.f", ".ferry-part.f", "f", "f/inner"]
        );
        // The name is released and the bytes resume once the obstacle is gone.
        fs::remove_dir_all(store.root().join("f")).unwrap();
        let f = accepted(store.receive(&meta));
        assert_eq!(f.prefix().len(), 4);
        f.commit(4).unwrap();
        assert_eq!(fs::read(store.root().join("f")).unwrap(), data);
    }

    #[test]
    fn commit_does_not_replace_a_file_that_appeared() {
        let (_tmp, store) = store();
        let mut f = accepted(store.receive(&offer("f", b"mine")));
        f.write_at(0, b"mine").unwrap();
        fs::write(store.root().join("f"), b"theirs").unwrap();
        let p = f.commit(4).unwrap_err();
        assert_eq!(p.reason, Reason::Exists);
        assert_eq!(fs::read(store.root().join("f")).unwrap(), b"theirs");
        assert!(store.root().join(".ferry-part.f").exists());
    }

    #[test]
    fn read_only_directory_is_denied() {
        let (tmp, store) = store();
        if permissions_are_bypassed(tmp.path()) {
            eprintln!("skipped: this process ignores file permissions (root?)");
            return;
        }
        let dir = store.root().join("ro");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();
        let p = refused(store.receive(&offer("ro/f", b"x")));
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        assert_eq!(p.reason, Reason::Denied, "{p}");
        assert!(tree(&dir).is_empty());
    }

    #[test]
    fn commit_in_a_directory_made_read_only_is_denied() {
        let (tmp, store) = store();
        if permissions_are_bypassed(tmp.path()) {
            eprintln!("skipped: this process ignores file permissions (root?)");
            return;
        }
        let dir = store.root().join("d");
        let mut f = accepted(store.receive(&offer("d/f", b"x")));
        f.write_at(0, b"x").unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();
        let r = f.commit(1);
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        assert_eq!(r.unwrap_err().reason, Reason::Denied);
        assert!(dir.join(".ferry-part.f").exists());
        assert!(!dir.join("f").exists());
    }

    /// A tree with files, a partial, a symlink out of the root and an empty directory.
    fn populated() -> (tempfile::TempDir, FsStore) {
        let (tmp, store) = store();
        let root = store.root();
        for (name, data) in [
            ("top.txt", &b"top"[..]),
            ("photos/b.jpg", b"bb"),
            ("photos/a.jpg", b"a"),
            ("photos/2024/c.jpg", b"ccc"),
            ("photos2/d.jpg", b"dddd"),
            ("photo-notes.txt", b"n"),
        ] {
            put(&store, &offer(name, data), data).unwrap();
        }
        let mut f = accepted(store.receive(&offer("photos/partial.jpg", b"pppp")));
        f.write_at(0, b"pp").unwrap();
        f.suspend();
        fs::create_dir(root.join("empty")).unwrap();
        fs::write(tmp.path().join("secret"), b"s").unwrap();
        symlink(tmp.path().join("secret"), root.join("photos/link.jpg")).unwrap();
        symlink(tmp.path(), root.join("outside")).unwrap();
        fs::write(root.join("photos/bad\\name"), b"x").unwrap();
        (tmp, store)
    }

    fn outgoing_names(v: &[Outgoing]) -> Vec<&str> {
        v.iter().map(|o| o.meta.path.as_str()).collect()
    }

    #[test]
    fn lookup_a_file() {
        let (_tmp, store) = populated();
        let found = store.lookup("photos//./b.jpg").unwrap();
        assert_eq!(outgoing_names(&found), ["photos/b.jpg"]);
        let o = &found[0];
        assert_eq!(o.meta.size, Some(2));
        assert_eq!(o.meta.mode, Some(0o640));
        assert_eq!(o.meta.mtime, Some(MTIME));
        assert_eq!(o.meta.hash, None);
        assert!(!o.meta.overwrite);
        assert!(matches!(&o.source, Source::File(p) if *p == store.root().join("photos/b.jpg")));
    }

    #[test]
    fn lookup_a_directory() {
        let (_tmp, store) = populated();
        let found = store.lookup("photos").unwrap();
        assert_eq!(
            outgoing_names(&found),
            ["photos/2024/c.jpg", "photos/a.jpg", "photos/b.jpg"]
        );
        for o in &found {
            let Source::File(p) = &o.source else {
                panic!("not a file source")
            };
            assert_eq!(fs::read(p).unwrap().len() as u64, o.meta.size.unwrap());
        }
        let all = store.lookup("").unwrap();
        assert_eq!(store.lookup(".").unwrap().len(), all.len());
        assert_eq!(
            outgoing_names(&all),
            [
                "photo-notes.txt",
                "photos/2024/c.jpg",
                "photos/a.jpg",
                "photos/b.jpg",
                "photos2/d.jpg",
                "top.txt"
            ]
        );
        assert!(store.lookup("empty").unwrap().is_empty());
    }

    #[test]
    fn lookup_refusals() {
        let (_tmp, store) = populated();
        for (name, reason) in [
            ("missing", Reason::NotFound),
            ("photos/missing.jpg", Reason::NotFound),
            ("top.txt/x", Reason::NotFound),
            ("photos/partial.jpg", Reason::NotFound),
            ("photos/.ferry-part.partial.jpg", Reason::BadName),
            ("../root", Reason::BadName),
            ("/etc", Reason::BadName),
            ("outside", Reason::Denied),
            ("outside/secret", Reason::Denied),
            ("photos/link.jpg", Reason::Denied),
        ] {
            match store.lookup(name) {
                Ok(v) => panic!("{name}: found {:?}", outgoing_names(&v)),
                Err(p) => assert_eq!(p.reason, reason, "{name}: {p}"),
            }
        }
    }

    #[test]
    fn list_filters_and_never_shows_partials() {
        let (_tmp, store) = populated();
        let names = |prefix: &str| -> Vec<String> {
            store
                .list(prefix)
                .unwrap()
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        let all = [
            "photo-notes.txt",
            "photos/2024/c.jpg",
            "photos/a.jpg",
            "photos/b.jpg",
            "photos2/d.jpg",
            "top.txt",
        ];
        assert_eq!(names(""), all);
        assert_eq!(names("."), all);
        assert_eq!(
            names("photos"),
            ["photos/2024/c.jpg", "photos/a.jpg", "photos/b.jpg"]
        );
        assert_eq!(names("photos/"), names("photos"));
        assert_eq!(
            names("photo"),
            [
                "photo-notes.txt",
                "photos/2024/c.jpg",
                "photos/a.jpg",
                "photos/b.jpg",
                "photos2/d.jpg"
            ]
        );
        assert_eq!(names("photos/2"), ["photos/2024/c.jpg"]);
        assert_eq!(names("photos/b"), ["photos/b.jpg"]);
        assert_eq!(names("top.txt"), ["top.txt"]);
        assert!(names("nothing").is_empty());
        assert!(names("nothing/deeper").is_empty());
        assert!(names("top.txt/x").is_empty());
        assert!(names("outside").is_empty());
        assert!(names("outside/secret").is_empty());
        assert!(names("photos/partial").is_empty());
        assert_eq!(store.list("../x").unwrap_err().reason, Reason::BadName);
        assert_eq!(
            store.list(".ferry-part.x").unwrap_err().reason,
            Reason::BadName
        );

        let e = &store.list("photos/b.jpg").unwrap()[0];
        assert_eq!((e.size, e.mtime), (2, Some(MTIME)));
    }

    #[test]
    fn root_is_created_and_canonical() {
        let tmp = tempfile::tempdir().unwrap();
        let canonical = tmp.path().canonicalize().unwrap();
        let store = FsStore::new(tmp.path().join("x/y/../z")).unwrap();
        assert_eq!(store.root(), canonical.join("x/z"));
        let store = FsStore::new(tmp.path().join("a/b")).unwrap();
        assert!(store.root().is_dir());
        assert_eq!(store.root(), canonical.join("a/b"));
        fs::write(tmp.path().join("file"), b"").unwrap();
        assert!(FsStore::new(tmp.path().join("file")).is_err());
    }

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stdout_takes_one_file_in_order() {
        let out = Captured::default();
        let store = StdoutStore::with_writer(Box::new(out.clone()));
        let meta = offer("anything", b"hello world");
        let mut f = accepted(store.receive(&meta));
        assert!(f.prefix().is_empty());
        let p = refused(store.receive(&meta));
        assert_eq!(p.reason, Reason::Denied);
        assert!(p.detail.contains("only one file"), "{}", p.detail);
        f.write_at(0, b"hello").unwrap();
        assert_eq!(
            f.write_at(0, b"hello").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            f.write_at(6, b"world").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        f.write_at(5, b" world").unwrap();
        f.commit(11).unwrap();
        assert_eq!(out.0.lock().unwrap().as_slice(), b"hello world");
        // Still only one, even after the first is done.
        assert_eq!(refused(store.receive(&meta)).reason, Reason::Denied);
    }

    #[test]
    fn stdout_commit_checks_the_size_and_serves_nothing() {
        let store = StdoutStore::with_writer(Box::new(Captured::default()));
        let mut f = accepted(store.receive(&offer("x", b"abc")));
        f.write_at(0, b"ab").unwrap();
        assert_eq!(f.commit(3).unwrap_err().reason, Reason::Io);
        assert_eq!(
            store.lookup("x").map(|_| ()).unwrap_err().reason,
            Reason::Unsupported
        );
        assert_eq!(store.list("").unwrap_err().reason, Reason::Unsupported);
    }
}
