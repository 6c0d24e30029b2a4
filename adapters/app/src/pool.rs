//! The disk pool: threads that run an agent's disk work off an event loop (group commits, and
//! the store calls that hash or walk the disk, see `crate::offload`), for loops that must not
//! stall on a disk flush or a hash.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;

use ferry_disk::commit::{Batch, CommitDone, commit_batch};

/// Threads of a server's pool (every adapter, TCP and UDP): shared by all its connections,
/// each of which keeps at most one busy with its disk work and one with its commits.
pub const SERVER_THREADS: usize = 4;

/// Called when a commit finished, from a pool thread (an event loop wakes itself here).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Work for a pool thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Threads that run disk work off an event loop: group commits ([`ferry_disk::Incoming::commit`]) and the
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
