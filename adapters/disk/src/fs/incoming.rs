//! Receiving into the store: the partial file, its resume sidecar, the writer thread for
//! large files, and publishing (alone, or staged for a grouped commit).

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use proto::{FileHasher, FileMeta, Mtime, Problem, Reason};
use rustix::fs::RenameFlags;
use serde::{Deserialize, Serialize};

use super::claim::Claim;
use super::names::Names;
use super::partial::{self, OPEN_FILES, Slot};
use super::pipeline;
use super::writers::Writer;
use super::{MAX_SIDECAR_LEN, hash_stream, node, remove_if_exists, sync_dir, system_time};
use crate::{Incoming, Publish, Staged, problem_from_io};

/// What a sidecar says: the offer a partial file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Sidecar {
    /// The final file name (informative; the sidecar's own name says it unless hashed).
    pub(super) name: String,
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

    pub(super) fn read(path: &Path) -> Option<Self> {
        let mut json = Vec::new();
        let read = partial::open_ours(path).and_then(|f| {
            f.map(|f| f.take(MAX_SIDECAR_LEN).read_to_end(&mut json))
                .transpose()
        });
        match read {
            Ok(Some(_)) => {}
            Ok(None) => return None,
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
        let mut f = partial::create_private(&names.temp())?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(names.temp(), names.sidecar())
    }
}

/// Whether a file offered with `size` may get a writer thread: a large one, or one of unknown
/// size (once it reaches [`pipeline::MIN_SIZE`]).
fn pipeline_wanted(size: Option<u64>) -> bool {
    size.is_none_or(|s| s >= pipeline::MIN_SIZE)
}

/// Files smaller than this are received without resume state: an interrupted one starts
/// over (it costs less to send again than a sidecar costs on every file).
pub const RESUMABLE_SIZE: u64 = 256 * 1024;

/// A file being received into a partial next to its destination.
pub(super) struct FsIncoming {
    /// The partial, once opened: at the first data, not at the offer (an offer costs no
    /// descriptor).
    file: Option<File>,
    /// The open-file budget unit `file` holds; without one the file is closed after each write.
    slot: Option<Slot>,
    names: Names,
    /// The sidecar for this offer (`None`: unknown size, not resumable).
    sidecar: Option<Sidecar>,
    /// The sidecar is still to be written (with the first data).
    sidecar_pending: bool,
    size: Option<u64>,
    /// The published mode (umask applied).
    mode: u32,
    mtime: Option<Mtime>,
    overwrite: bool,
    pub(super) prefix: FileHasher,
    /// A write at offset 0 superseded the prefix.
    restarted: bool,
    /// The destination is ours while this holds; every write goes through it.
    claim: Claim,
    /// A write failed for lack of space: the partial is not worth keeping.
    doomed: bool,
    /// Publish the file sealed at rest under this key.
    seal_key: Option<proto::seal::SealKey>,
    /// The writer thread of a large file, while its bytes arrive in order.
    pipeline: Option<Writer>,
    /// A pipeline may still start: a large file whose first write is still to come, or one of
    /// unknown size (standard input) not yet [`pipeline::MIN_SIZE`] long.
    pipeline_allowed: bool,
    /// The partial's length as far as our writes know (saves a `set_len` at the end).
    len: u64,
    /// The partial is still to be created empty, dropping whatever is at its name (an offer
    /// that never resumes did not look).
    fresh: bool,
}

impl FsIncoming {
    /// Look at what an earlier attempt left for this offer: resume from a partial whose
    /// sidecar matches, drop anything else. Nothing is created and nothing stays open.
    pub(super) fn open(
        names: Names,
        name: &str,
        meta: &FileMeta,
        claim: Claim,
        seal_key: Option<proto::seal::SealKey>,
        resumable: bool,
        mode: u32,
    ) -> io::Result<Self> {
        let gate = claim.gate();
        let guard = gate.hold()?;
        // Small files are not worth resuming: no sidecar (and no fsync of one) for them.
        let sidecar = Sidecar::for_offer(meta, name).filter(|_| resumable);
        // A small file (known size, never resumed) looks at nothing now: what an earlier
        // attempt left at the partial's name is dropped when the partial is created
        // (`open_file`). Hundreds of them a second skip a failing `open` each.
        let fresh = !resumable && meta.size.is_some();
        let existing = match fresh {
            false => partial::open_partial(&names.partial, false)?,
            true => None,
        };
        let held = match &existing {
            Some(f) => f.metadata()?.len(),
            None => 0,
        };
        let resume = match (&sidecar, &existing) {
            (Some(want), Some(_)) => {
                held > 0
                    && held <= want.size
                    && Sidecar::read(&names.sidecar()).as_ref() == Some(want)
            }
            _ => false,
        };
        let prefix = match &existing {
            Some(f) if resume => hash_stream(f.take(held))?,
            _ => FileHasher::new(),
        };
        let found = existing.is_some();
        drop(existing);
        if !resume {
            if held > 0 {
                tracing::debug!(path = %names.partial.display(), held, "stale partial removed");
            }
            // Nothing at the partial's name (`open_partial` removed what was not ours): no
            // unlink to try. A sidecar without its partial matters only to a resumable offer
            // (and a resume is checked against the sender's prefix hash all the same).
            if found {
                remove_if_exists(&names.partial)?;
            }
            if found || sidecar.is_some() {
                remove_if_exists(&names.sidecar())?;
            }
        }
        drop(guard);
        Ok(FsIncoming {
            file: None,
            slot: None,
            names,
            sidecar_pending: sidecar.is_some() && !resume,
            sidecar,
            size: meta.size,
            mode,
            mtime: meta.mtime,
            overwrite: meta.overwrite,
            prefix,
            restarted: false,
            claim,
            doomed: false,
            seal_key,
            pipeline: None,
            pipeline_allowed: pipeline_wanted(meta.size),
            len: if resume { held } else { 0 },
            fresh,
        })
    }

    /// Open the partial (creating it, and the sidecar, at the first data) if it is not open.
    /// The caller holds the claim.
    fn open_file(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            let file = if self.fresh {
                let (file, stale) = partial::create_empty(&self.names.anchor, &self.names.partial)?;
                if stale {
                    tracing::debug!(path = %self.names.partial.display(), "stale partial emptied");
                    remove_if_exists(&self.names.sidecar())?;
                }
                self.fresh = false;
                file
            } else {
                partial::open_partial(&self.names.partial, true)?
                    .ok_or_else(|| io::Error::other("the partial could not be created"))?
            };
            if self.sidecar_pending
                && let Some(s) = &self.sidecar
            {
                s.write(&self.names)?;
            }
            self.sidecar_pending = false;
            if self.slot.is_none() {
                self.slot = OPEN_FILES.try_take(partial::open_budget());
            }
            self.file = Some(file);
        }
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("the partial is not open"))
    }

    /// Over the open-file budget: close the partial until the next write.
    fn release_if_over_budget(&mut self) {
        if self.slot.is_none() && self.pipeline.is_none() {
            self.file = None;
        }
    }

    /// The file's final length, mode and mtime (no flush). A file to be sealed keeps its
    /// private mode: only the sealed copy gets the final one.
    fn finish(&self, file: &File, size: u64) -> Result<(), Problem> {
        let fail = |what: &'static str| move |e: io::Error| problem_from_io(&e, what);
        if self.size.is_some_and(|s| s != size) {
            tracing::debug!(offered = ?self.size, size, "committing a size other than offered");
        }
        if self.len != size {
            file.set_len(size)
                .map_err(fail("cannot set the file size"))?;
        }
        if self.seal_key.is_some() {
            return Ok(());
        }
        file.set_permissions(Permissions::from_mode(self.mode))
            .map_err(fail("cannot set the file mode"))?;
        set_mtime(file, self.mtime);
        Ok(())
    }

    fn publish(&self, file: &File, size: u64) -> Result<(), Problem> {
        let fail = |what: &'static str| move |e: io::Error| problem_from_io(&e, what);
        self.finish(file, size)?;
        file.sync_all()
            .map_err(fail("cannot flush the file to disk"))?;
        // Sealed at rest: the plaintext partial (0600) is sealed into a temporary file beside
        // it, which is what gets published (with the mode and mtime); the partial goes away
        // after. A failed seal leaves no copy behind.
        let published = match &self.seal_key {
            None => self.names.partial.clone(),
            Some(key) => {
                let sealed = self.seal(file, size, key);
                if sealed.is_err() {
                    self.remove_sealing();
                }
                sealed?;
                self.names.sealing()
            }
        };
        let placed = rename_into_place(
            &self.names,
            &published,
            self.overwrite,
            self.sidecar.is_some(),
        );
        if placed.is_err() && self.seal_key.is_some() {
            self.remove_sealing();
        }
        placed?;
        (self.names.anchor.sync_dir(&self.names.dir))
            .map_err(fail("cannot flush the directory to disk"))
    }

    /// Seal the partial's first `size` bytes into the sealing name (mode and mtime included).
    fn seal(&self, file: &File, size: u64, key: &proto::seal::SealKey) -> Result<(), Problem> {
        let fail = |what: &'static str| move |e: io::Error| problem_from_io(&e, what);
        let mut out = partial::create_private(&self.names.sealing())
            .map_err(fail("cannot create the sealed file"))?;
        let mut src = file;
        io::Seek::seek(&mut src, io::SeekFrom::Start(0))
            .map_err(fail("cannot read the received file"))?;
        let mut w = BufWriter::with_capacity(256 * 1024, &mut out);
        crate::sealed::seal_into(&mut src.take(size), &mut w, key)
            .map_err(fail("cannot seal the file"))?;
        w.flush().map_err(fail("cannot seal the file"))?;
        drop(w);
        out.set_permissions(Permissions::from_mode(self.mode))
            .map_err(fail("cannot set the file mode"))?;
        set_mtime(&out, self.mtime);
        out.sync_all()
            .map_err(fail("cannot flush the file to disk"))
    }

    fn remove_sealing(&self) {
        let sealing = self.names.sealing();
        if let Err(e) = remove_if_exists(&sealing) {
            tracing::warn!(path = %sealing.display(), %e, "cannot remove");
        }
    }

    /// Wait for the pipeline's writes (if any) and cut the file where its data ends (the last
    /// block was written padded).
    fn drain_pipeline(&mut self) -> io::Result<()> {
        let Some(p) = self.pipeline.take() else {
            return Ok(());
        };
        let end = p.finish()?;
        let gate = self.claim.gate();
        let _held = gate.hold()?;
        self.open_file()?.set_len(end)?;
        self.len = end;
        Ok(())
    }

    fn remove_partial(&self) {
        for p in [&self.names.partial, &self.names.sidecar()] {
            if let Err(e) = remove_if_exists(p) {
                tracing::warn!(path = %p.display(), %e, "cannot remove");
            }
        }
    }

    fn write_inner(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|end| self.size.is_some_and(|size| end > size)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past the offered size",
            ));
        }
        if let Some(p) = &self.pipeline {
            // The writer thread holds the claim for each write; here it is only checked
            // (holding it while the pipeline waits for the writer would deadlock).
            drop(self.claim.hold()?);
            if let Some(written) = p.write(offset, data) {
                return written;
            }
            // Out of order (a restart), or released while idle: finish it, go on without.
            self.drain_pipeline()?;
        }
        let gate = self.claim.gate();
        let held = gate.hold()?;
        let restart = offset == 0 && !self.prefix.is_empty() && !self.restarted;
        let file = self.open_file()?;
        if restart {
            // The sender restarted: drop what was held so a suspend now keeps only new bytes.
            file.set_len(0)?;
            self.len = 0;
            self.restarted = true;
            self.pipeline_allowed = pipeline_wanted(self.size);
        }
        // A writer thread for a large file written in order from an aligned offset, while the
        // budgets allow (else written directly, for the rest of this file). A file of unknown
        // size gets one once it has proved large: its first MIN_SIZE bytes go directly.
        let aligned = offset.is_multiple_of(pipeline::ALIGN as u64);
        let due = self.size.is_some() || (offset >= pipeline::MIN_SIZE && aligned);
        if due && std::mem::take(&mut self.pipeline_allowed) && aligned && self.slot.is_some() {
            drop(held);
            let gate = self.claim.gate();
            let file = self.open_file()?;
            if let Some(p) = Writer::start(file, offset, gate)? {
                let written = p.write(offset, data).unwrap_or_else(|| {
                    Err(io::Error::other(
                        "a new writer thread refused its first write",
                    ))
                });
                self.pipeline = Some(p);
                return written;
            }
            return self.write_direct(offset, data);
        }
        drop(held);
        self.write_direct(offset, data)
    }

    /// Write without a writer thread.
    fn write_direct(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let gate = self.claim.gate();
        let _held = gate.hold()?;
        self.open_file()?.write_all_at(data, offset)?;
        self.len = self.len.max(offset + data.len() as u64);
        self.release_if_over_budget();
        Ok(())
    }

    fn commit_inner(&mut self, size: u64) -> Result<(), Problem> {
        let dest = self.names.dest.clone();
        let fail = |e: io::Error| {
            let problem = problem_from_io(&e, "cannot write");
            tracing::warn!(path = %dest.display(), %problem, "commit failed");
            problem
        };
        self.drain_pipeline().map_err(fail)?;
        let gate = self.claim.gate();
        let held = gate.hold().map_err(fail)?;
        self.open_file().map_err(fail)?;
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| fail(io::Error::other("not open")))?;
        let published = self.publish(file, size);
        drop(held);
        match published {
            Ok(()) => {
                tracing::debug!(path = %self.names.dest.display(), size, "published");
                Ok(())
            }
            Err(p) => {
                // Keep the partial (and its sidecar) for a later attempt.
                tracing::warn!(path = %self.names.dest.display(), %p, "commit failed; partial kept");
                if let Err(e) = file.sync_data() {
                    tracing::warn!(path = %self.names.partial.display(), %e, "cannot flush the partial");
                }
                Err(p)
            }
        }
    }
}

fn set_mtime(file: &File, mtime: Option<Mtime>) {
    // A time the filesystem cannot hold is not worth losing the file over.
    match mtime.map(|m| (m, system_time(m))) {
        None => {}
        Some((m, None)) => tracing::warn!(?m, "modification time out of range; not set"),
        Some((m, Some(t))) => {
            if let Err(e) = file.set_modified(t) {
                tracing::warn!(?m, %e, "cannot set the modification time");
            }
        }
    }
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

impl Incoming for FsIncoming {
    fn prefix(&self) -> FileHasher {
        self.prefix.clone()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let written = self.write_inner(offset, data);
        if let Err(e) = &written
            && is_no_space(e)
        {
            self.doomed = true;
        }
        written
    }

    fn commit(mut self: Box<Self>, size: u64) -> Result<(), Problem> {
        let committed = self.commit_inner(size);
        if committed
            .as_ref()
            .is_err_and(|p| p.reason == Reason::NoSpace)
        {
            self.doomed = true;
        }
        if committed.is_err() && self.doomed && self.claim.hold().is_ok() {
            self.remove_partial();
        }
        committed
    }

    fn stage(mut self: Box<Self>, size: u64) -> Staged {
        if self.seal_key.is_some() {
            // Sealing reads the file back and writes a copy: not worth grouping.
            return Staged::Done(self.commit(size));
        }
        let gate = self.claim.gate();
        let staged = match self.drain_pipeline().and_then(|()| gate.hold()) {
            Ok(mut held) => {
                // Waiting for the group's sync is not idleness: never taken over from here.
                held.pin();
                match self.open_file() {
                    Ok(_) => {
                        let file = self.file.take();
                        let finished = match &file {
                            Some(f) => self.finish(f, size).and_then(|()| {
                                f.metadata()
                                    .map(|md| md.dev())
                                    .map_err(|e| problem_from_io(&e, "cannot write"))
                            }),
                            None => Err(Problem::new(Reason::Io, "the partial is not open")),
                        };
                        finished.map(|dev| (file, dev))
                    }
                    Err(e) => Err(problem_from_io(&e, "cannot write")),
                }
            }
            Err(e) => Err(problem_from_io(&e, "cannot write")),
        };
        match staged {
            Ok((Some(file), dev)) => Staged::Pending(Box::new(FsStaged {
                file,
                _slot: self.slot.take(),
                dev,
                names: self.names,
                overwrite: self.overwrite,
                sidecar: self.sidecar.is_some(),
                claim: self.claim,
            })),
            Ok((None, _)) => Staged::Done(Err(Problem::new(Reason::Io, "the partial is not open"))),
            Err(p) => {
                tracing::warn!(path = %self.names.dest.display(), %p, "commit failed");
                if (p.reason == Reason::NoSpace || self.doomed) && gate.hold().is_ok() {
                    self.remove_partial();
                }
                Staged::Done(Err(p))
            }
        }
    }

    fn suspend(mut self: Box<Self>) {
        if let Err(e) = self.drain_pipeline() {
            tracing::warn!(path = %self.names.partial.display(), %e, "cannot finish writing the partial");
        }
        let gate = self.claim.gate();
        let Ok(_held) = gate.hold() else {
            tracing::debug!(path = %self.names.dest.display(), "taken over; the partial is the new transfer's");
            return;
        };
        if self.doomed || self.sidecar.is_none() {
            // The disk filled up (a partial kept now would keep it full for every later send),
            // or an unknown or small size (never resumed: keeping the bytes only wastes space).
            self.remove_partial();
            return;
        }
        if self.sidecar_pending {
            // No data came: there is nothing to keep.
            return;
        }
        let kept = self
            .open_file()
            .and_then(File::sync_data)
            .and_then(|()| match &self.sidecar {
                Some(s) => s.write(&self.names),
                None => Ok(()),
            })
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

    fn discard(mut self: Box<Self>) {
        // Stopping the pipeline joins its thread: no write lands after the removal.
        if let Some(p) = self.pipeline.take() {
            p.stop();
        }
        let Ok(_held) = self.claim.hold() else {
            return;
        };
        self.remove_partial();
        tracing::debug!(path = %self.names.partial.display(), "partial discarded");
    }
}

/// Publish `published` (the partial, or its sealed copy) under the destination name, unless
/// the name appeared meanwhile and `overwrite` is off; then drop the partial and the sidecar.
fn rename_into_place(
    names: &Names,
    published: &Path,
    overwrite: bool,
    sidecar: bool,
) -> Result<(), Problem> {
    let fail = |what: &'static str| move |e: io::Error| problem_from_io(&e, what);
    let appeared = || {
        Problem::new(
            Reason::Exists,
            "appeared while receiving; use --overwrite to replace it",
        )
    };
    if overwrite {
        (names
            .anchor
            .rename(published, &names.dest, RenameFlags::empty()))
        .map_err(fail("cannot publish the file"))?;
    } else {
        match rename_no_replace(names, published) {
            Ok(true) => {}
            Ok(false) => return Err(appeared()),
            // The filesystem cannot refuse a replacement itself: look first.
            Err(e) if matches!(e.raw_os_error(), Some(EINVAL | ENOSYS | EOPNOTSUPP)) => {
                if node(&names.dest)
                    .map_err(fail("cannot check the destination"))?
                    .is_some()
                {
                    return Err(appeared());
                }
                fs::rename(published, &names.dest).map_err(fail("cannot publish the file"))?;
            }
            Err(e) => return Err(fail("cannot publish the file")(e)),
        }
    }
    if published != names.partial
        && let Err(e) = remove_if_exists(&names.partial)
    {
        tracing::warn!(path = %names.partial.display(), %e, "cannot remove a partial");
    }
    // (A stale sidecar was removed when the partial was opened: only ours can exist.)
    if sidecar && let Err(e) = remove_if_exists(&names.sidecar()) {
        tracing::warn!(path = %names.sidecar().display(), %e, "cannot remove a sidecar");
    }
    Ok(())
}

const EINVAL: i32 = rustix::io::Errno::INVAL.raw_os_error();
const ENOSYS: i32 = rustix::io::Errno::NOSYS.raw_os_error();
const EOPNOTSUPP: i32 = rustix::io::Errno::OPNOTSUPP.raw_os_error();

/// Rename `from` to the destination unless something is there, in one step (`renameat2` with
/// `RENAME_NOREPLACE`, so a name that appears at the last moment is never replaced), resolved
/// from the store's root (see `anchor`). `Ok(false)`: the destination exists.
fn rename_no_replace(names: &Names, from: &Path) -> io::Result<bool> {
    match names
        .anchor
        .rename(from, &names.dest, RenameFlags::NOREPLACE)
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// A received file in a grouped commit, written and closed, waiting for the group's sync.
struct FsStaged {
    file: File,
    /// The open-file budget unit `file` holds, if any.
    _slot: Option<Slot>,
    dev: u64,
    names: Names,
    overwrite: bool,
    /// A sidecar was written for this file (to remove once published).
    sidecar: bool,
    /// The destination stays ours until it is published.
    claim: Claim,
}

impl Publish for FsStaged {
    fn handle(&self) -> &File {
        &self.file
    }

    fn device(&self) -> u64 {
        self.dev
    }

    fn publish(self: Box<Self>) -> Result<(), Problem> {
        let _held = self
            .claim
            .hold()
            .map_err(|e| problem_from_io(&e, "cannot publish the file"))?;
        rename_into_place(
            &self.names,
            &self.names.partial,
            self.overwrite,
            self.sidecar,
        )?;
        tracing::debug!(path = %self.names.dest.display(), "published (grouped)");
        Ok(())
    }
}
