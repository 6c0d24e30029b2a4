//! The store root, held open: the calls made for every received file (the look at its parent
//! directories and destination, the partial's creation, the rename into place) resolve their
//! names from the root's descriptor (`fstatat`, `openat`, `renameat2`), not from `/`. A
//! directory of small files costs a walk of the name below the root per call, not of the
//! root's whole path; and a store whose root directory is renamed keeps receiving into it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RenameFlags};

/// The open root of a store (cheap to clone). Paths under the root are resolved from it;
/// any other path from the working directory, as before.
#[derive(Clone)]
pub(crate) struct Anchor(Arc<Inner>);

struct Inner {
    root: PathBuf,
    fd: OwnedFd,
}

impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Anchor({})", self.0.root.display())
    }
}

impl Anchor {
    /// Hold the directory `root` (canonical) open.
    pub(crate) fn open(root: &Path) -> io::Result<Anchor> {
        let fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Anchor(Arc::new(Inner {
            root: root.to_path_buf(),
            fd,
        })))
    }

    /// Where to resolve `path` from: the root's descriptor and the rest of the path when it
    /// lies under the root (`.` for the root itself), else the working directory and the path.
    ///
    /// The root is compared byte by byte (`Path::strip_prefix` compares component by
    /// component, a cost paid several times per received file): the store's paths are the
    /// root joined with a name, so they match; a path spelled otherwise (`root/./x`) resolves
    /// from the working directory, to the same file.
    fn split<'a>(&'a self, path: &'a Path) -> (BorrowedFd<'a>, &'a Path) {
        use std::os::unix::ffi::OsStrExt as _;
        let root = self.0.root.as_os_str().as_bytes();
        let rest = path.as_os_str().as_bytes().strip_prefix(root);
        match rest {
            // The root itself, with or without a trailing slash.
            Some([] | [b'/']) => (self.0.fd.as_fd(), Path::new(".")),
            Some([b'/', rel @ ..]) if rel[0] != b'/' => (
                self.0.fd.as_fd(),
                Path::new(std::ffi::OsStr::from_bytes(rel)),
            ),
            _ => (CWD, path),
        }
    }

    /// The type of what is at `path` (a symbolic link is not followed); `None`: nothing.
    pub(crate) fn kind(&self, path: &Path) -> io::Result<Option<FileType>> {
        let (dir, rel) = self.split(path);
        match rustix::fs::statat(dir, rel, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A new empty file at `path` with `mode`, read and write; fails if anything is there
    /// (a symbolic link is never followed).
    pub(crate) fn create_new(&self, path: &Path, mode: u32) -> io::Result<File> {
        let (dir, rel) = self.split(path);
        let flags = OFlags::RDWR
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, rel, flags, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Flush the directory at `path` (its entries) to disk.
    pub(crate) fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let (dir, rel) = self.split(path);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        File::from(rustix::fs::openat(dir, rel, flags, Mode::empty())?).sync_all()
    }

    /// Rename `from` to `to`, with `flags` (`RENAME_NOREPLACE`...).
    pub(crate) fn rename(&self, from: &Path, to: &Path, flags: RenameFlags) -> io::Result<()> {
        let (from_dir, from_rel) = self.split(from);
        let (to_dir, to_rel) = self.split(to);
        rustix::fs::renameat_with(from_dir, from_rel, to_dir, to_rel, flags)
            .map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths under the root resolve from its descriptor, even after the root was renamed;
    /// others from the working directory.
    #[test]
    fn names_under_the_root_resolve_from_its_descriptor() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let anchor = Anchor::open(&root).unwrap();
        std::fs::rename(&root, tmp.path().join("moved")).unwrap();
        let f = root.join("f");
        assert!(anchor.kind(&f).unwrap().is_none());
        drop(anchor.create_new(&f, 0o600).unwrap());
        assert_eq!(anchor.kind(&f).unwrap(), Some(FileType::RegularFile));
        let e = anchor.create_new(&f, 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        anchor
            .rename(&f, &root.join("g"), RenameFlags::NOREPLACE)
            .unwrap();
        assert!(tmp.path().join("moved/g").is_file());
        assert!(!root.exists(), "the old path was used");
        // Outside the root: the path as given.
        let outside = tmp.path().join("outside");
        assert!(anchor.kind(&outside).unwrap().is_none());
        drop(anchor.create_new(&outside, 0o600).unwrap());
        assert!(outside.is_file());
        // A sibling whose name starts with the root's is outside too.
        let sibling = tmp.path().join("rootx");
        drop(anchor.create_new(&sibling, 0o600).unwrap());
        assert!(sibling.is_file() && !tmp.path().join("moved/x").exists());
        assert_eq!(anchor.kind(&root).unwrap(), Some(FileType::Directory));
        let mut slashed = root.clone().into_os_string();
        slashed.push("/");
        assert_eq!(
            anchor.kind(Path::new(&slashed)).unwrap(),
            Some(FileType::Directory)
        );
        anchor.sync_dir(&root).unwrap();
    }
}
