//! The filesystem store ([`FsStore`]) and the standard-output sink ([`StdoutStore`]).
//!
//! # On disk
//!
//! A file arriving as `dir/name` is written to `dir/.ferry-part.name` (mode 0600), next to a
//! small JSON sidecar `dir/.ferry-info.name` that records which offer the bytes belong to
//! (size, mtime, whole-file hash); both are created with the first data, not at the offer
//! (which is refused early when it cannot fit). The sidecar is replaced atomically through
//! `dir/.ferry-tmp.name`. On commit the partial gets its final length, mode (the offered one
//! masked by the umask, never writable by others) and mtime, is fsynced, renamed over
//! `dir/name`, and the directory is fsynced; the sidecar is removed. A partial whose write
//! found the disk full is removed. Names the store did not make are replaced (see `partial`).
//!
//! When `.ferry-part.` plus the name would exceed
//! [`MAX_COMPONENT_LEN`](crate::path::MAX_COMPONENT_LEN), the three names are
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
//! One process lets one transfer at a time write a destination: a second offer for the same
//! name is refused with [`Reason::Busy`] while the first is active, and takes the name over
//! when the first has written nothing for a second (its sender died, say); see `claim`. Two
//! processes serving the same root do not coordinate.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::{FileHasher, FileMeta, ListEntry, Mtime, Problem, Reason};
use walkdir::WalkDir;

use crate::path::{self, RelPath};
use claim::Claim;
use incoming::FsIncoming;
pub use incoming::RESUMABLE_SIZE;
use made_dirs::MadeDirs;
use names::Names;
pub use partials::{PartialInfo, PartialsPolicy};
pub use stdout::StdoutStore;

/// The record log in a store's root.
pub const RECORDS_FILE: &str = "records.jsonl";
use crate::{Incoming, Outgoing, Source, Store, problem_from_io};

/// Mode of a published file whose offer carries none (before the umask).
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
    /// The root held open: per-file calls resolve names from it.
    anchor: anchor::Anchor,
    /// Serialises appends to the record log.
    records: Mutex<()>,
    /// Also print each stored record on standard output (`serve --print`).
    echo_records: bool,
    /// Keep published files sealed at rest under this key (`serve --store-sealed`).
    seal_key: Option<proto::seal::SealKey>,
    /// Files at least this large keep resume state (see [`RESUMABLE_SIZE`]).
    resumable_size: u64,
    /// Expiry of partials, and when it last ran.
    housekeeping: partials::Housekeeping,
    /// The process's umask when the store was made: published modes are masked by it.
    umask: u32,
    /// The free space last seen, for small offers.
    space: space::SpaceCache,
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
                anchor: anchor::Anchor::open(&root)?,
                root,
                records: Mutex::new(()),
                echo_records: false,
                seal_key: None,
                resumable_size: RESUMABLE_SIZE,
                housekeeping: partials::Housekeeping::default(),
                umask: partial::umask(),
                space: space::SpaceCache::default(),
            }),
        })
    }

    /// Keep every received file sealed at rest under `key` (the ferry sealed-file format);
    /// served files are decrypted on the fly and listed with their plaintext sizes.
    pub fn sealed(self, key: proto::seal::SealKey) -> Self {
        self.configure(|s| s.seal_key = Some(key))
    }

    /// Keep resume state for received files of at least `bytes` (default
    /// [`RESUMABLE_SIZE`]; 0: every file with a known size).
    pub fn resumable_from(self, bytes: u64) -> Self {
        self.configure(|s| s.resumable_size = bytes)
    }

    /// The same store with changed settings (stores are configured before use).
    fn configure(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            root: self.shared.root.clone(),
            anchor: self.shared.anchor.clone(),
            records: Mutex::new(()),
            echo_records: self.shared.echo_records,
            seal_key: self.shared.seal_key.clone(),
            resumable_size: self.shared.resumable_size,
            housekeeping: partials::Housekeeping::new(self.shared.housekeeping.policy),
            umask: self.shared.umask,
            space: space::SpaceCache::default(),
        };
        change(&mut shared);
        FsStore {
            shared: Arc::new(shared),
        }
    }

    /// The plaintext size of a published file with metadata `md`.
    fn plain_size(&self, md: &Metadata) -> u64 {
        match &self.shared.seal_key {
            Some(_) => crate::sealed::plaintext_len(md.len()).unwrap_or(0),
            None => md.len(),
        }
    }

    /// Read a published file's plaintext.
    fn open_published(&self, path: &Path) -> io::Result<Box<dyn Read>> {
        let f = File::open(path)?;
        Ok(match &self.shared.seal_key {
            Some(key) => Box::new(crate::sealed::SealedReader::new(f, key)?),
            None => Box::new(f),
        })
    }

    /// Also print every record on standard output as it is stored (one JSON line each).
    pub fn echo_records(self, on: bool) -> Self {
        self.configure(|s| s.echo_records = on)
    }

    /// The record log: `records.jsonl` in the root.
    pub fn records_path(&self) -> PathBuf {
        self.shared.root.join(RECORDS_FILE)
    }

    /// The (canonical) root directory.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// The destination's checks, in order: parents, then what is at the name itself. `Ok`
    /// says whether every parent directory exists already (else they are to be created).
    fn check_destination(
        &self,
        rel: &RelPath,
        dest: &Path,
        meta: &FileMeta,
    ) -> Result<bool, Problem> {
        if is_records_log(rel) {
            return Err(bad_name(
                "'records.jsonl' in the root is kept for the record log",
            ));
        }
        match parents(&self.shared.anchor, self.root(), rel)
            .map_err(|e| problem_from_io(&e, "cannot check the destination"))?
        {
            Parents::Dirs => {}
            Parents::Missing => return Ok(false),
            Parents::NotDir => return Err(bad_name("a parent directory is a file")),
            Parents::Symlink => return Err(bad_name("a parent directory is a symbolic link")),
        }
        let check = |e: io::Error| problem_from_io(&e, "cannot check the destination");
        // Usually nothing is there: one look from the root's descriptor says so.
        if self.shared.anchor.kind(dest).map_err(check)?.is_none() {
            return Ok(true);
        }
        let Some(md) = node(dest).map_err(check)? else {
            return Ok(true);
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
            && meta.size.is_none_or(|size| size == self.plain_size(&md))
        {
            let held = hashes::cached(&md, self.shared.seal_key.is_some(), || {
                Ok(self.open_published(dest).and_then(hash_stream)?.finalize())
            })
            .map_err(|e| problem_from_io(&e, "cannot read the existing file"))?;
            if held == want {
                return Err(Problem::new(
                    Reason::UpToDate,
                    "already there with the same content",
                ));
            }
        }
        if meta.overwrite {
            return Ok(true);
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
        self.sweep_partials_soon();
        let rel = path::sanitize(&meta.path)?;
        let dest = rel.to_path(self.root());
        let claim = Claim::take(dest.clone())?;
        let parents_exist = self.check_destination(&rel, &dest, meta)?;
        let names = Names::new(dest, rel.file_name(), self.shared.anchor.clone());
        if names.too_long() {
            // Found out here, not at the first write, so no directory is made for it.
            return Err(bad_name(
                "the partial file's path would be too long for this filesystem",
            ));
        }
        let made = match parents_exist {
            true => MadeDirs::default(),
            false => make_parents(self.root(), &rel)?,
        };
        let seal_key = self.shared.seal_key.clone();
        let resumable = meta.size.is_some_and(|s| s >= self.shared.resumable_size);
        let mode = partial::published_mode(meta.mode, self.shared.umask);
        let file = FsIncoming::open(
            names,
            rel.file_name(),
            meta,
            claim,
            seal_key,
            resumable,
            mode,
        )
        .map_err(|e| problem_from_io(&e, "cannot open the partial file"))?;
        if let Some(size) = meta.size {
            // What a partial held is resumed (counted as there) or was removed (space freed).
            let held = file.prefix.len();
            let sealed = self.shared.seal_key.is_some();
            self.shared.space.check(self.root(), size, held, sealed)?;
        }
        made.keep();
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
                match parents(&self.shared.anchor, root, &rel).map_err(io_problem)? {
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
                    size: Some(self.plain_size(&md)),
                    mode: Some(md.mode() & 0o777),
                    mtime: mtime_of(&md),
                    hash: None,
                    overwrite: false,
                },
                source: Source::Served {
                    path: abs,
                    dev: md.dev(),
                    ino: md.ino(),
                    sealed: self.shared.seal_key.clone(),
                },
            })
            .collect())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ListEntry>, Problem> {
        let root = self.root();
        let io_problem = |e: io::Error| problem_from_io(&e, "cannot look the name up");
        let found = match path::sanitize_or_root(prefix)? {
            None => self.published(root, None)?,
            Some(rel) => match parents(&self.shared.anchor, root, &rel).map_err(io_problem)? {
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
                size: self.plain_size(&md),
                mtime: mtime_of(&md),
            })
            .collect())
    }

    fn append_record(&self, line: &str) -> Result<(), Problem> {
        let _guard = self
            .shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        append_line(&self.records_path(), line)
            .map_err(|e| problem_from_io(&e, "cannot store the record"))?;
        if self.shared.echo_records {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        Ok(())
    }
}

/// Whether `rel` is the record log or below it (any letter case, for case-insensitive
/// filesystems): peers may not create either, or `record` would stop working.
fn is_records_log(rel: &RelPath) -> bool {
    rel.components()
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case(RECORDS_FILE))
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

fn parents(anchor: &anchor::Anchor, root: &Path, rel: &RelPath) -> io::Result<Parents> {
    use rustix::fs::FileType;
    let mut dir = root.to_path_buf();
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        if components.peek().is_none() {
            break;
        }
        dir.push(c);
        match anchor.kind(&dir)? {
            None => return Ok(Parents::Missing),
            Some(FileType::Directory) => {}
            Some(FileType::Symlink) => return Ok(Parents::Symlink),
            Some(_) => return Ok(Parents::NotDir),
        }
    }
    Ok(Parents::Dirs)
}

/// Create the missing directories above `rel`, refusing to go through anything but a directory.
/// On failure the directories this call created are removed again (those still empty); on
/// success the caller [keeps](MadeDirs::keep) them once the file is under way, or they go too.
fn make_parents(root: &Path, rel: &RelPath) -> Result<MadeDirs, Problem> {
    let fail = |e: io::Error| problem_from_io(&e, "cannot create the directory");
    let mut made = MadeDirs::default();
    let mut dir = root.to_path_buf();
    let mut components = rel.components().peekable();
    while let Some(c) = components.next() {
        if components.peek().is_none() {
            break;
        }
        dir.push(c);
        match fs::create_dir(&dir) {
            Ok(()) => made.0.push(dir.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !node(&dir).map_err(fail)?.is_some_and(|md| md.is_dir()) {
                    return Err(bad_name("a parent directory is not a directory"));
                }
            }
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(made)
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

pub(crate) fn mtime_of(md: &Metadata) -> Option<Mtime> {
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

/// Append `line` and a newline to the log at `path` in one write, then fsync (and fsync the
/// directory when the log is new). A torn last line left by a crash is cut off first, so the
/// log only ever holds whole lines.
fn append_line(path: &Path, line: &str) -> io::Result<()> {
    debug_assert!(!line.contains('\n'));
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.read_exact_at(&mut last, len - 1)?;
        if last[0] != b'\n' {
            // Find the end of the last whole line and drop what follows it.
            let mut end = len;
            let mut buf = vec![0u8; 64 * 1024];
            let mut keep = 0;
            while end > 0 {
                let start = end.saturating_sub(buf.len() as u64);
                let chunk = &mut buf[..(end - start) as usize];
                f.read_exact_at(chunk, start)?;
                if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
                    keep = start + i as u64 + 1;
                    break;
                }
                end = start;
            }
            tracing::warn!(
                dropped = len - keep,
                "record log ended in a torn line; cut it off"
            );
            f.set_len(keep)?;
        }
    }
    let mut record = Vec::with_capacity(line.len() + 1);
    record.extend_from_slice(line.as_bytes());
    record.push(b'\n');
    f.write_all(&record)?;
    f.sync_all()?;
    if !existed && let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

mod anchor;
mod claim;
mod hashes;
#[cfg(test)]
mod housekeeping_tests;
mod incoming;
mod made_dirs;
mod names;
mod partial;
mod partials;
mod pipeline;
mod space;
mod stdout;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_serve;
#[cfg(test)]
mod tests_small;
#[cfg(test)]
mod tests_writer;
mod writers;
