//! Whole-file hashes of published files, remembered by identity and change time, so that
//! offers naming a large existing file (to tell "same content" from "different") hash it once,
//! not once per offer: a peer repeating such offers costs the server nothing after the first.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, PoisonError};

/// What identifies one version of a file's content: any write changes `ctime` (and the
/// inode's `size`/`mtime`), a replacement changes the inode.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// Hash of the plaintext of a file kept sealed at rest, or of the bytes as they are.
    sealed: bool,
}

/// Entries kept; the cache is emptied when it would grow past this (it only saves work).
const MAX_ENTRIES: usize = 4096;

static HASHES: Mutex<Option<HashMap<Version, [u8; 32]>>> = Mutex::new(None);

/// The hash of the file with metadata `md`, from the cache or from `compute` (which runs
/// without the cache's lock held).
pub(super) fn cached(
    md: &Metadata,
    sealed: bool,
    compute: impl FnOnce() -> io::Result<[u8; 32]>,
) -> io::Result<[u8; 32]> {
    let key = Version {
        dev: md.dev(),
        ino: md.ino(),
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (md.ctime(), md.ctime_nsec()),
        sealed,
    };
    let lock = || HASHES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(h) = lock().as_ref().and_then(|m| m.get(&key)) {
        return Ok(*h);
    }
    let h = compute()?;
    let mut map = lock();
    let map = map.get_or_insert_with(HashMap::new);
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, h);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_once_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let mut runs = 0;
        let hash = |runs: &mut u32| {
            let md = std::fs::symlink_metadata(&p).unwrap();
            cached(&md, false, || {
                *runs += 1;
                Ok(proto::hash(&std::fs::read(&p)?))
            })
            .unwrap()
        };
        let first = hash(&mut runs);
        assert_eq!(hash(&mut runs), first);
        assert_eq!(runs, 1, "the second lookup is cached");
        // Any write makes a new version (ctime moves even if mtime is put back).
        std::fs::write(&p, b"two").unwrap();
        let second = hash(&mut runs);
        assert_eq!(runs, 2);
        assert_ne!(second, first);
    }
}
