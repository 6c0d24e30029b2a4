//! What the store's unit tests share: a store in a temp dir, offers, and checks.

use std::path::Path;

use proto::{FileMeta, Mtime, Problem};
use walkdir::WalkDir;

use super::{FsStore, relative};
use crate::{Incoming, Store};

pub(super) const MTIME: Mtime = Mtime {
    secs: 1_600_000_000,
    nanos: 123_456_789,
};

/// A store in a fresh temp dir, keeping resume state for every size (the tests use small
/// files).
pub(super) fn store() -> (tempfile::TempDir, FsStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsStore::new(tmp.path().join("root"))
        .unwrap()
        .resumable_from(0);
    (tmp, store)
}

/// An offer of `data` as `path` (mode 0640, a fixed mtime, with its hash).
pub(super) fn offer(path: &str, data: &[u8]) -> FileMeta {
    FileMeta {
        path: path.to_owned(),
        size: Some(data.len() as u64),
        mode: Some(0o640),
        mtime: Some(MTIME),
        hash: Some(proto::hash(data)),
        overwrite: false,
    }
}

pub(super) fn refused(r: Result<Box<dyn Incoming>, Problem>) -> Problem {
    match r {
        Ok(_) => panic!("accepted"),
        Err(p) => p,
    }
}

pub(super) fn accepted(r: Result<Box<dyn Incoming>, Problem>) -> Box<dyn Incoming> {
    r.unwrap_or_else(|p| panic!("refused: {p}"))
}

/// Receive `data` in one write and commit it.
pub(super) fn put(store: &FsStore, meta: &FileMeta, data: &[u8]) -> Result<(), Problem> {
    let mut f = store.receive(meta)?;
    f.write_at(0, data).unwrap();
    f.commit(data.len() as u64)
}

/// Every name under `dir`, hidden ones and directories included, relative and sorted.
pub(super) fn tree(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| relative(dir, e.unwrap().path()).unwrap())
        .collect();
    names.sort();
    names
}
