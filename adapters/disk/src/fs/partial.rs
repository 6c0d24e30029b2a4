//! Opening the store's own hidden files safely, and the process-wide budgets of open partials
//! and writer threads.
//!
//! # Files the server did not make
//!
//! A partial or sidecar name may hold something another local user (or an earlier attack)
//! put there: a symbolic link, a FIFO (opening it would block), a hard link to a file outside
//! the root (writing it would rewrite that file), a file of another owner. Every such name is
//! opened with `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat`: only a regular file with one
//! link, owned by us, is used; anything else is unlinked (which never touches what it pointed
//! or linked to) and replaced.
//!
//! # Budgets
//!
//! An offer costs no descriptor: the partial is opened at the first data. While at most
//! [`open_budget`] partials are open, each keeps its descriptor; beyond that a file is opened
//! for each write and closed after it (slower, but bounded). At most [`PIPELINES`] large files
//! at once get a writer thread and its buffers (an idle one is released for a file that needs
//! it, see `writers`); the others are written directly.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use proto::{Problem, Reason};
use rustix::fs::OFlags;

use super::anchor::Anchor;
use super::{DEFAULT_MODE, PRIVATE_MODE};

/// Writer threads (with their buffers, up to 4 MiB each) at once, for the whole process.
pub(crate) const PIPELINES: usize = 16;

/// Open partials that keep their descriptor, for the whole process: a quarter of the open-file
/// limit, between 16 and 4096.
pub(crate) fn open_budget() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        let quarter = nofile.map_or(usize::MAX, |n| usize::try_from(n / 4).unwrap_or(usize::MAX));
        quarter.clamp(16, 4096)
    })
}

/// A count of things in use against a limit.
pub(crate) struct Budget {
    used: AtomicUsize,
}

/// Open partials holding a descriptor.
pub(crate) static OPEN_FILES: Budget = Budget::new();
/// Running writer threads.
pub(crate) static WRITERS: Budget = Budget::new();

impl Budget {
    const fn new() -> Budget {
        Budget {
            used: AtomicUsize::new(0),
        }
    }

    /// One unit, if fewer than `limit` are in use.
    pub(crate) fn try_take(&'static self, limit: usize) -> Option<Slot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self))
    }
}

/// One unit of a [`Budget`], given back on drop.
pub(crate) struct Slot(&'static Budget);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

fn no_follow(o: &mut OpenOptions) -> &mut OpenOptions {
    // Bits of two flags that fit in an i32 on every Linux target.
    #[allow(clippy::cast_possible_wrap)]
    o.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
}

/// Whether `file` is one the store may use: a regular file with one link, owned by us.
fn is_ours(file: &File) -> io::Result<bool> {
    let md = file.metadata()?;
    Ok(md.is_file() && md.nlink() == 1 && md.uid() == rustix::process::geteuid().as_raw())
}

/// Open the partial at `path` for reading and writing, or `None` when there is none and
/// `create` is false. Anything there that is not ours (see the module docs) is removed and,
/// with `create`, replaced by a new empty file (mode 0600).
pub(crate) fn open_partial(path: &Path, create: bool) -> io::Result<Option<File>> {
    if create {
        // The usual case, a name nothing holds, in one call: a new file can only be ours.
        match create_new(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            created => return created.map(Some),
        }
    }
    let existing = no_follow(OpenOptions::new().read(true).write(true)).open(path);
    match existing {
        Ok(f) if is_ours(&f)? => {
            // A partial left readable by others is tightened when reused.
            if f.metadata()?.mode() & 0o7777 != PRIVATE_MODE {
                f.set_permissions(Permissions::from_mode(PRIVATE_MODE))?;
            }
            return Ok(Some(f));
        }
        Ok(_) => {
            tracing::warn!(path = %path.display(), "not a file the store made; replaced");
            remove(path)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        // ELOOP: a symbolic link; ENXIO: a FIFO without a reader; EACCES: not ours.
        Err(e) => {
            tracing::warn!(path = %path.display(), %e, "cannot open a partial; replaced");
            remove(path)?;
        }
    }
    if !create {
        return Ok(None);
    }
    create_new(path).map(Some)
}

/// The partial at `path`, empty, and whether something was there before: in one call when
/// nothing is (the usual case); else as [`open_partial`] makes it, cut to nothing.
pub(crate) fn create_empty(anchor: &Anchor, path: &Path) -> io::Result<(File, bool)> {
    match anchor.create_new(path, PRIVATE_MODE) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        created => return created.map(|f| (f, false)),
    }
    let file = open_partial(path, true)?
        .ok_or_else(|| io::Error::other("the partial could not be created"))?;
    file.set_len(0)?;
    Ok((file, true))
}

/// A new empty file at `path` (mode 0600), read and write; fails if anything is there.
fn create_new(path: &Path) -> io::Result<File> {
    no_follow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(PRIVATE_MODE),
    )
    .open(path)
}

/// Open the small file at `path` for reading if it is ours (a sidecar); `None` otherwise.
pub(crate) fn open_ours(path: &Path) -> io::Result<Option<File>> {
    match no_follow(OpenOptions::new().read(true)).open(path) {
        Ok(f) if is_ours(&f)? => Ok(Some(f)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Create `path` anew (mode 0600), whatever was there (a symbolic link is removed, never
/// followed).
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    remove(path)?;
    no_follow(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_MODE),
    )
    .open(path)
}

/// Unlink `path` if something is there (a directory is an error).
fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The bytes free for us on the filesystem of `dir` (`None`: it cannot tell).
pub(crate) fn free_space(dir: &Path) -> Option<u64> {
    match rustix::fs::statvfs(dir) {
        Ok(st) => Some(st.f_bavail.saturating_mul(st.f_frsize)),
        Err(e) => {
            tracing::debug!(%e, "cannot tell the free space; accepting");
            None
        }
    }
}

/// Refuse an offer of `size` bytes that cannot fit in `free` bytes (`None`: unknown, accept),
/// counting the `held` bytes a partial of it already has (`sealed`: the sealed copy needs as
/// much again).
pub(crate) fn check_space_against(
    free: Option<u64>,
    size: u64,
    held: u64,
    sealed: bool,
) -> Result<(), Problem> {
    let Some(free) = free else {
        return Ok(());
    };
    let need = size
        .saturating_sub(held)
        .saturating_add(if sealed { size } else { 0 });
    if need <= free {
        return Ok(());
    }
    Err(Problem::new(
        Reason::NoSpace,
        &format!("the file needs {need} more bytes; the receiving disk has {free} free"),
    ))
}

/// The process's file-creation mask, read without changing it (`/proc/self/status`; 022 if
/// that cannot be read).
pub(crate) fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap_or(0o022)
}

/// The mode a received file is published with: the offered permission bits (or 0644) masked
/// by `umask`, never writable by others, always readable and writable by the owner.
pub(crate) fn published_mode(offered: Option<u32>, umask: u32) -> u32 {
    (offered.unwrap_or(DEFAULT_MODE) & 0o777 & !umask & !0o002) | 0o600
}
