//! The agent's disk work other than file bytes and commits: store calls that may hash or walk
//! the disk (an offer checked against an existing file, a GET or LIST walking a directory, a
//! record appended durably) and opening or hashing a file to send. Each is a [`Work`] value
//! whose [`Work::run`] gives a [`Done`]; the agent runs it inline, or on its pool when it has
//! one (the mio adapter: its one loop thread must never wait for a disk).

use std::fs::File;
use std::io::{self, Read};

use proto::RecordFormat;
use proto::{
    CHUNK, FileHasher, FileMeta, ListEntry, PeerRequestId, Problem, Reason, RecvId, SendId,
};

use ferry_disk::{Incoming, Outgoing, Source, Store};

/// Disk work to do for a session.
pub(crate) enum Work {
    /// Decide on an offered file ([`Store::receive`]).
    Receive { id: RecvId, meta: FileMeta },
    /// Find the files a GET asks for ([`Store::lookup`]).
    Lookup { req: PeerRequestId, path: String },
    /// List the files under a prefix ([`Store::list`]).
    List { req: PeerRequestId, path: String },
    /// Store a record durably ([`Store::append_record`]).
    Record {
        req: PeerRequestId,
        format: RecordFormat,
        body: Vec<u8>,
    },
    /// Open a file to send and hash its first `resume_from` bytes (the receiver's prefix).
    Open {
        id: SendId,
        source: Source,
        resume_from: u64,
    },
    /// Hash a whole file to send (the receiver asked for its hash); `token` names the waiting
    /// file on the agent's side.
    Hash { token: u64, source: Source },
}

/// What came of a [`Work`].
pub(crate) enum Done {
    Received {
        id: RecvId,
        meta: FileMeta,
        result: Result<Box<dyn Incoming>, Problem>,
    },
    Looked {
        req: PeerRequestId,
        result: Result<Vec<Outgoing>, Problem>,
    },
    Listed {
        req: PeerRequestId,
        result: Result<Vec<ListEntry>, Problem>,
    },
    Recorded {
        req: PeerRequestId,
        /// The stored JSON line.
        result: Result<String, Problem>,
    },
    Opened {
        id: SendId,
        resume_from: u64,
        /// The reader, positioned after the prefix, and the prefix's hash state (boxed: a
        /// hasher is large).
        result: io::Result<Box<(Box<dyn Read + Send>, FileHasher)>>,
    },
    Hashed {
        token: u64,
        result: io::Result<[u8; 32]>,
    },
}

impl Work {
    /// Do it (blocking).
    pub(crate) fn run(self, store: &dyn Store) -> Done {
        match self {
            Work::Receive { id, meta } => {
                let result = store.receive(&meta);
                Done::Received { id, meta, result }
            }
            Work::Lookup { req, path } => Done::Looked {
                req,
                result: store.lookup(&path),
            },
            Work::List { req, path } => Done::Listed {
                req,
                result: store.list(&path),
            },
            Work::Record { req, format, body } => {
                let result = crate::records::decode(&body, format)
                    .map_err(|e| Problem::new(Reason::Other, &e.to_string()))
                    .and_then(|value| {
                        let line = value.to_string();
                        store.append_record(&line).map(|()| line)
                    });
                Done::Recorded { req, result }
            }
            Work::Open {
                id,
                source,
                resume_from,
            } => {
                // A buffer only for a prefix to hash (most opens have none: no 64 KiB to zero
                // per small file).
                let mut buf = if resume_from > 0 {
                    vec![0; CHUNK]
                } else {
                    Vec::new()
                };
                let result = open_source(&source).and_then(|mut reader| {
                    let prefix = hash_prefix(&mut reader, resume_from, &mut buf)?;
                    Ok(Box::new((reader, prefix)))
                });
                Done::Opened {
                    id,
                    resume_from,
                    result,
                }
            }
            Work::Hash { token, source } => {
                let mut buf = vec![0; CHUNK];
                let result = open_source(&source)
                    .and_then(|mut f| Ok(hash_prefix(&mut f, u64::MAX, &mut buf)?.finalize()));
                Done::Hashed { token, result }
            }
        }
    }
}

/// Hash the first `n` bytes of `file` (fewer if it is shorter), leaving it positioned after them.
fn hash_prefix(file: &mut dyn Read, n: u64, buf: &mut [u8]) -> io::Result<FileHasher> {
    let mut h = FileHasher::new();
    let mut left = n;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let got = match file.read(&mut buf[..want]) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
        left -= got as u64;
    }
    Ok(h)
}

/// Open a file source; a served file must still be the one its store looked up, and is
/// decrypted while read when its store keeps files sealed.
pub(crate) fn open_source(source: &Source) -> io::Result<Box<dyn Read + Send>> {
    match source {
        Source::File(path) => Ok(Box::new(File::open(path)?)),
        Source::Served {
            path,
            dev,
            ino,
            sealed,
        } => {
            use std::os::unix::fs::MetadataExt;
            let file = File::open(path)?;
            let md = file.metadata()?;
            if !md.is_file() || md.dev() != *dev || md.ino() != *ino {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the file was replaced after it was listed",
                ));
            }
            Ok(match sealed {
                Some(key) => Box::new(ferry_disk::sealed::SealedReader::new(file, key)?),
                None => Box::new(file),
            })
        }
        Source::Reader(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a stream cannot be reopened",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_disk::FsStore;

    /// A served file swapped for a symlink (or another file) after the lookup is refused.
    #[test]
    fn served_file_swapped_after_lookup_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("root")).unwrap();
        std::fs::write(store.root().join("public.txt"), b"public").unwrap();
        std::fs::write(dir.path().join("secret"), b"secret").unwrap();
        let found = store.lookup("public.txt").unwrap();
        let source = &found[0].source;
        assert!(open_source(source).is_ok(), "the file as looked up opens");
        // Keep the original inode alive so that no new file can reuse its number.
        std::fs::hard_link(store.root().join("public.txt"), dir.path().join("keep")).unwrap();
        std::fs::remove_file(store.root().join("public.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), store.root().join("public.txt"))
            .unwrap();
        let Err(err) = open_source(source) else {
            panic!("a swapped file was opened");
        };
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        // A regular file put back under the same name is a different inode: refused as well.
        std::fs::remove_file(store.root().join("public.txt")).unwrap();
        std::fs::write(store.root().join("public.txt"), b"other").unwrap();
        assert!(open_source(source).is_err());
    }
}
