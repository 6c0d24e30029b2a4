//! Making received files durable: [`commit_batch`] commits a group of files with two
//! filesystem syncs instead of three fsyncs each, and [`CommitPool`] runs batches (and the
//! store's other disk work) off the caller's thread, for event loops that must not stall on a
//! disk flush or a hash.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;

use proto::{Problem, RecvId};

use crate::{Incoming, Staged};

/// Called when a commit finished, from a pool thread (an event loop wakes itself here).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// A finished commit: which file, and how it went.
pub(crate) type CommitDone = (RecvId, Result<(), Problem>);

/// Files to commit together: id, file, final size.
pub(crate) type Batch = Vec<(RecvId, Box<dyn Incoming>, u64)>;

/// Work for a pool thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Threads that run disk work off an event loop: group commits ([`Incoming::commit`]) and the
/// store calls that read or walk the disk (see `crate::offload`). Cheap to clone; the threads
/// end when the last clone and every queued job are gone.
#[derive(Clone)]
pub struct CommitPool {
    jobs: Sender<Job>,
}

impl CommitPool {
    /// A pool of `threads` (at least one) threads.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            thread::Builder::new()
                .name(format!("ferry-disk-{i}"))
                .spawn(move || {
                    loop {
                        // Take one job with the lock held only for the receive.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        job();
                    }
                })?;
        }
        Ok(CommitPool { jobs: tx })
    }

    /// Run `job` on a pool thread; `Err` gives it back when the pool is gone.
    pub(crate) fn run(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }

    /// Queue a batch of commits; `done` receives each result, then `notify` is called.
    pub(crate) fn submit(
        &self,
        batch: Batch,
        done: Sender<CommitDone>,
        notify: Notify,
    ) -> Result<(), Batch> {
        // The batch travels inside the job; if the pool is gone it comes back out of it.
        let slot = Arc::new(Mutex::new(Some(batch)));
        let inner = slot.clone();
        let job: Job = Box::new(move || {
            let batch = inner.lock().ok().and_then(|mut b| b.take());
            for answer in commit_batch(batch.unwrap_or_default()) {
                // The agent may be gone (its session ended): the file is committed anyway;
                // nobody is waiting for the answer.
                let _ = done.send(answer);
            }
            notify();
        });
        self.run(job).map_err(|_| {
            slot.lock()
                .ok()
                .and_then(|mut b| b.take())
                .unwrap_or_default()
        })
    }
}

/// Commit `batch`, answering for every file (in order).
///
/// One file commits alone ([`Incoming::commit`]: fsync, rename, directory fsync). More are
/// grouped: each is staged ([`Incoming::stage`]: length, mode, mtime), then one `syncfs` per
/// filesystem makes all their data durable, then each is renamed into place, then a second
/// `syncfs` makes the renames durable. A file is renamed only after its data is on disk, so a
/// crash at any point leaves published files whole and verified (at worst a finished file
/// still under its partial name). The price: `syncfs` also flushes other dirty data of that
/// filesystem, which is why single files keep the targeted fsyncs.
pub fn commit_batch(batch: Batch) -> Vec<CommitDone> {
    if batch.len() == 1 {
        return batch
            .into_iter()
            .map(|(id, file, size)| (id, file.commit(size)))
            .collect();
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut pending = Vec::new();
    for (id, file, size) in batch {
        match file.stage(size) {
            Staged::Done(result) => answers.push((id, result)),
            Staged::Pending(p) => pending.push((id, p)),
        }
    }
    if pending.is_empty() {
        return answers;
    }
    // First sync: the data (and the metadata set while staging) of every pending file. One
    // handle per filesystem is kept for the second.
    let mut filesystems: Vec<(u64, std::fs::File)> = Vec::new();
    for (_, p) in &pending {
        if let Err(e) = add_filesystem(&mut filesystems, p.handle(), p.device()) {
            let problem = crate::problem_from_io(&e, "cannot flush the files to disk");
            answers.extend(
                pending
                    .into_iter()
                    .map(|(id, _)| (id, Err(problem.clone()))),
            );
            return answers;
        }
    }
    let mut published = Vec::with_capacity(pending.len());
    for (id, p) in pending {
        match p.publish() {
            Ok(()) => published.push(id),
            Err(problem) => answers.push((id, Err(problem))),
        }
    }
    // Second sync: the renames.
    let second = filesystems
        .iter()
        .try_for_each(|(_, f)| rustix::fs::syncfs(f))
        .map_err(|e| crate::problem_from_io(&e.into(), "cannot flush the directory to disk"));
    answers.extend(published.into_iter().map(|id| (id, second.clone())));
    answers
}

/// `syncfs` the filesystem `dev` of `file` unless `seen` has it already (then remember it).
fn add_filesystem(
    seen: &mut Vec<(u64, std::fs::File)>,
    file: &std::fs::File,
    dev: u64,
) -> std::io::Result<()> {
    if !seen.iter().any(|(d, _)| *d == dev) {
        rustix::fs::syncfs(file)?;
        seen.push((dev, file.try_clone()?));
    }
    Ok(())
}
