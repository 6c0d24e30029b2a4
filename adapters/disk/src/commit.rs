//! A small pool of threads that make received files durable (fsync, rename, directory fsync)
//! off the caller's thread, for event loops that must not stall on a disk flush.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;

use proto::{Problem, RecvId};

use crate::Incoming;

/// Called when a commit finished, from a pool thread (an event loop wakes itself here).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// A finished commit: which file, and how it went.
pub(crate) type CommitDone = (RecvId, Result<(), Problem>);

struct Job {
    id: RecvId,
    file: Box<dyn Incoming>,
    size: u64,
    done: Sender<CommitDone>,
    notify: Notify,
}

/// Threads that run [`Incoming::commit`]. Cheap to clone; the threads end when the last clone
/// and every queued job are gone.
#[derive(Clone)]
pub struct CommitPool {
    jobs: Sender<Job>,
}

impl CommitPool {
    /// A pool of `threads` (at least one) commit threads.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            thread::Builder::new()
                .name(format!("ferry-commit-{i}"))
                .spawn(move || {
                    loop {
                        // Take one job with the lock held only for the receive.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let result = job.file.commit(job.size);
                        // The agent may be gone (its session ended): the file is committed
                        // anyway; nobody is waiting for the answer.
                        let _ = job.done.send((job.id, result));
                        (job.notify)();
                    }
                })?;
        }
        Ok(CommitPool { jobs: tx })
    }

    /// Queue a commit; `done` receives the result, then `notify` is called.
    pub(crate) fn submit(
        &self,
        id: RecvId,
        file: Box<dyn Incoming>,
        size: u64,
        done: Sender<CommitDone>,
        notify: Notify,
    ) -> Result<(), Box<dyn Incoming>> {
        self.jobs
            .send(Job {
                id,
                file,
                size,
                done,
                notify,
            })
            .map_err(|e| e.0.file)
    }
}
