//! Large incoming files (and those of unknown size once past [`MIN_SIZE`]): a writer thread per
//! file, writing with direct I/O where it can.
//!
//! Writing a received file through the page cache costs the receiving thread a kernel copy of
//! every byte, and leaves gigabytes dirty for the final `fsync` to wait on. For a large file
//! ([`MIN_SIZE`] and up) [`Pipeline`] instead copies each chunk once into one of a few
//! page-aligned 1 MiB buffers and hands full buffers to a writer thread, which writes them with
//! `O_DIRECT`: the device reads our buffer, the page cache is bypassed, the receiving thread
//! goes on decrypting meanwhile, and the final `fsync` has almost nothing left to do. Where the
//! filesystem refuses `O_DIRECT` (tmpfs on older kernels, some FUSE filesystems) the writer
//! thread writes through the page cache instead; the receiving thread still sheds the copy.
//!
//! The file's last block is written padded to the alignment and cut back to the real length
//! by the caller (`set_len`), so until then the partial may end in up to 4 KiB of zeros: a
//! crash in that window leaves a partial whose prefix hash no sender will match (the transfer
//! restarts at 0), never a wrong published file.
//!
//! Memory: at most [`BUFFERS`] buffers of [`BUF_LEN`] per file in flight.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};

use super::claim::Gate;

/// Files at least this large (by their offered size) go through a pipeline.
pub(super) const MIN_SIZE: u64 = 8 << 20;
/// Direct I/O alignment of offsets, lengths and buffer addresses (the page size; a multiple of
/// every logical block size Linux filesystems use).
pub(super) const ALIGN: usize = 4096;
/// One write of the writer thread.
pub(super) const BUF_LEN: usize = 1 << 20;
/// Buffers per file: one filling, the rest queued or being written.
pub(super) const BUFFERS: usize = 4;

/// A page-aligned window of [`BUF_LEN`] bytes inside an over-allocated `Vec` (found with
/// `align_offset`, so no `unsafe` and no custom allocator).
struct AlignedBuf {
    mem: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    fn new() -> AlignedBuf {
        let mem = vec![0u8; BUF_LEN + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN);
        assert!(start < ALIGN, "a byte pointer can always be aligned");
        AlignedBuf { mem, start }
    }

    fn bytes(&self) -> &[u8] {
        &self.mem[self.start..self.start + BUF_LEN]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.start + BUF_LEN]
    }
}

/// A buffer on its way to the writer thread: write `buf[..len]` at `offset`.
struct Job {
    buf: AlignedBuf,
    offset: u64,
    len: usize,
}

/// The writer thread of one incoming file (see the module docs).
pub(super) struct Pipeline {
    /// File offset of `current[0]` (a multiple of [`ALIGN`]).
    base: u64,
    current: AlignedBuf,
    filled: usize,
    /// Buffers allocated so far (at most [`BUFFERS`]).
    allocated: usize,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<(AlignedBuf, io::Result<()>)>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
    /// The first write error; every later call fails with its kind.
    failed: Option<io::ErrorKind>,
}

impl Pipeline {
    /// Start writing `file` from `offset` (a multiple of [`ALIGN`]) on a new thread, each write
    /// under `gate` (the destination's claim: nothing is written once it is taken over).
    pub(super) fn start(file: &File, offset: u64, gate: Arc<Gate>) -> io::Result<Pipeline> {
        debug_assert!(offset.is_multiple_of(ALIGN as u64));
        let file = file.try_clone()?;
        let direct = set_direct(&file, true).is_ok();
        let (jobs, rx) = mpsc::sync_channel::<Job>(BUFFERS);
        let (tx, done) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("ferry-writer".into())
            .spawn(move || write_jobs(&file, direct, &gate, &rx, &tx))?;
        Ok(Pipeline {
            base: offset,
            current: AlignedBuf::new(),
            filled: 0,
            allocated: 1,
            jobs: Some(jobs),
            done,
            in_flight: 0,
            thread: Some(thread),
            failed: None,
        })
    }

    /// The offset the next [`write`](Self::write) must start at.
    pub(super) fn next(&self) -> u64 {
        self.base + self.filled as u64
    }

    /// Queue `data` for `next()`. Blocks while every buffer is in flight (back-pressure from
    /// the disk). Reports an earlier write's error.
    pub(super) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.check()?;
        while !data.is_empty() {
            let take = (BUF_LEN - self.filled).min(data.len());
            self.current.bytes_mut()[self.filled..self.filled + take]
                .copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == BUF_LEN {
                self.submit(BUF_LEN)?;
                self.base += BUF_LEN as u64;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Write what is buffered (its last block padded with zeros), wait for every write and stop
    /// the thread. Returns where the real data ends: the caller cuts the file there.
    pub(super) fn finish(mut self) -> io::Result<u64> {
        let end = self.next();
        if self.filled > 0 {
            let padded = self.filled.next_multiple_of(ALIGN);
            self.current.bytes_mut()[self.filled..padded].fill(0);
            self.submit(padded)?;
        }
        self.stop();
        while self.in_flight > 0 {
            self.collect()?;
        }
        match self.failed {
            Some(kind) => Err(failure(kind)),
            None => Ok(end),
        }
    }

    fn check(&self) -> io::Result<()> {
        match self.failed {
            Some(kind) => Err(failure(kind)),
            None => Ok(()),
        }
    }

    /// Send `current[..len]` to the writer and make `current` a free buffer.
    fn submit(&mut self, len: usize) -> io::Result<()> {
        let next = if self.allocated < BUFFERS {
            self.allocated += 1;
            AlignedBuf::new()
        } else {
            self.collect()?
        };
        let buf = std::mem::replace(&mut self.current, next);
        let job = Job {
            buf,
            offset: self.base,
            len,
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.fail(io::ErrorKind::BrokenPipe));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Wait for one buffer back from the writer.
    fn collect(&mut self) -> io::Result<AlignedBuf> {
        let Ok((buf, result)) = self.done.recv() else {
            self.in_flight = 0;
            return Err(self.fail(io::ErrorKind::BrokenPipe));
        };
        self.in_flight -= 1;
        if let Err(e) = result {
            tracing::debug!(%e, "pipelined write failed");
            self.fail(e.kind());
        }
        self.check()?;
        Ok(buf)
    }

    fn fail(&mut self, kind: io::ErrorKind) -> io::Error {
        let kind = *self.failed.get_or_insert(kind);
        failure(kind)
    }

    /// Close the job queue and join the thread (it finishes the queued writes first).
    fn stop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            self.failed.get_or_insert(io::ErrorKind::Other);
        }
    }
}

impl Drop for Pipeline {
    /// Never leave a thread writing into a file its owner is about to remove or reuse.
    fn drop(&mut self) {
        self.stop();
    }
}

fn failure(kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, format!("cannot write: {kind}"))
}

/// The writer thread: write each job, hand the buffer back with the result. After a failure
/// the remaining jobs are returned unwritten with the same error kind.
fn write_jobs(
    file: &File,
    mut direct: bool,
    gate: &Gate,
    jobs: &Receiver<Job>,
    done: &mpsc::Sender<(AlignedBuf, io::Result<()>)>,
) {
    let mut failed: Option<io::ErrorKind> = None;
    for job in jobs {
        let held = gate.hold();
        let result = match (failed, &held) {
            (Some(kind), _) => Err(failure(kind)),
            (None, Err(_)) => Err(super::claim::revoked()),
            (None, Ok(_)) => {
                let bytes = &job.buf.bytes()[..job.len];
                let mut r = file.write_all_at(bytes, job.offset);
                if direct && r.as_ref().is_err_and(is_einval) {
                    // The filesystem takes O_DIRECT at open but not for this write: go through
                    // the page cache from here on.
                    direct = false;
                    r = set_direct(file, false).and_then(|()| file.write_all_at(bytes, job.offset));
                }
                r
            }
        };
        drop(held);
        if let Err(e) = &result {
            failed.get_or_insert(e.kind());
        }
        if done.send((job.buf, result)).is_err() {
            break;
        }
    }
    if direct {
        // The flag lives on the open file description, shared with the caller's handle.
        if let Err(e) = set_direct(file, false) {
            tracing::warn!(%e, "cannot clear O_DIRECT");
        }
    }
}

fn is_einval(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
}

/// Turn `O_DIRECT` on or off for `file` (and every handle sharing its open file description).
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let flags = fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    fcntl_setfl(file, flags)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn writes_every_byte_in_place_and_reports_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        // Uneven pieces across several buffers, ending inside a block.
        let data = pattern(5 * BUF_LEN + 12_345, 7);
        let mut p = Pipeline::start(&file, 0, Gate::unclaimed()).unwrap();
        for piece in data.chunks(65_521) {
            p.write(piece).unwrap();
        }
        assert_eq!(p.next(), data.len() as u64);
        let end = p.finish().unwrap();
        assert_eq!(end, data.len() as u64);
        // The padded tail is the caller's to cut.
        assert_eq!(
            file.metadata().unwrap().len(),
            (data.len() as u64).next_multiple_of(ALIGN as u64)
        );
        file.set_len(end).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        // O_DIRECT is off again on the shared description.
        assert!(!fcntl_getfl(&file).unwrap().contains(OFlags::DIRECT));
    }

    #[test]
    fn starts_at_an_aligned_offset_after_existing_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let head = pattern(2 * ALIGN, 1);
        std::fs::write(&path, &head).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let tail = pattern(BUF_LEN + 100, 2);
        let mut p = Pipeline::start(&file, head.len() as u64, Gate::unclaimed()).unwrap();
        p.write(&tail).unwrap();
        let end = p.finish().unwrap();
        file.set_len(end).unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got[..head.len()], head[..]);
        assert_eq!(got[head.len()..], tail[..]);
    }

    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        // O_DIRECT refuses a write whose length is not block-aligned with EINVAL, the error a
        // filesystem without direct I/O gives: the writer retries through the page cache and
        // stays there.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let direct = set_direct(&file, true).is_ok();
        let mut buf = AlignedBuf::new();
        buf.bytes_mut()[..100].copy_from_slice(&pattern(100, 9));
        let (jobs, rx) = mpsc::sync_channel(1);
        let (tx, done) = mpsc::channel();
        jobs.send(Job {
            buf,
            offset: 0,
            len: 100,
        })
        .unwrap();
        drop(jobs);
        write_jobs(&file, direct, &Gate::unclaimed(), &rx, &tx);
        let (_, result) = done.recv().unwrap();
        result.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), pattern(100, 9));
        assert!(!fcntl_getfl(&file).unwrap().contains(OFlags::DIRECT));
    }

    #[test]
    fn a_write_error_surfaces_and_sticks() {
        // A read-only handle: every write fails (EBADF), whether direct or not.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let file = File::open(&path).unwrap();
        let mut p = Pipeline::start(&file, 0, Gate::unclaimed()).unwrap();
        let data = pattern(BUF_LEN, 3);
        let mut first = None;
        for _ in 0..2 * BUFFERS {
            if let Err(e) = p.write(&data) {
                first = Some(e.kind());
                break;
            }
        }
        let first = first.expect("the error surfaces while buffers come back");
        assert_eq!(p.write(b"x").unwrap_err().kind(), first);
        assert_eq!(p.finish().unwrap_err().kind(), first);
    }
}
