//! Disk work (store calls that may hash or walk the disk, opening and hashing files to send):
//! on the commit pool when the agent has one, one job at a time per agent, else inline; and
//! what the agent does with each answer.

use proto::Session;

use super::Agent;
use super::report::Report;
use crate::offload::{Done, Work};

/// Most pieces of disk work in one pool job.
const DISK_BATCH: usize = 64;

/// Answers after which a batch wakes the loop before it is done.
const NOTIFY_EARLY: usize = 16;

impl Agent {
    /// Do disk work: on the pool when there is one (its answer comes back through
    /// `collect_disk`; one job at a time per agent, in order), else right here.
    pub(super) fn disk(&mut self, s: &mut Session, work: Work) {
        if self.pool.is_some() {
            self.disk_queue.push_back(work);
            self.next_disk_job();
            return;
        }
        let done = work.run(&*self.store);
        self.on_disk(s, done);
    }

    /// Hand the queued disk work to the pool (as one job of at most [`DISK_BATCH`] pieces,
    /// answered in order) unless a job of this agent is there already. One job for many
    /// pieces: a directory of small files costs a hand-off per batch, not per file.
    fn next_disk_job(&mut self) {
        if self.pending > 0 || self.disk_queue.is_empty() {
            return;
        }
        let Some(link) = &self.pool else {
            return;
        };
        let n = self.disk_queue.len().min(DISK_BATCH);
        let batch: Vec<Work> = self.disk_queue.drain(..n).collect();
        let store = self.store.clone();
        let (tx, notify) = (link.disk_tx.clone(), link.notify.clone());
        let job: crate::pool::Job = Box::new(move || {
            for (i, work) in batch.into_iter().enumerate() {
                let _ = tx.send(work.run(&*store));
                // The loop acts on the first answers while the rest are being worked on.
                if i + 1 == NOTIFY_EARLY {
                    notify();
                }
            }
            notify();
        });
        self.pending = n;
        if let Err(job) = link.pool.run(job) {
            // The pool is gone: do it here; the answers are collected all the same.
            job();
        }
    }

    /// Answers of disk work done on the pool.
    pub(super) fn collect_disk(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        while let Some(link) = &self.pool
            && let Ok(done) = link.disk_rx.try_recv()
        {
            self.pending = self.pending.saturating_sub(1);
            self.on_disk(s, done);
            self.next_disk_job();
            any = true;
        }
        any
    }

    /// Act on finished disk work.
    pub(super) fn on_disk(&mut self, s: &mut Session, done: Done) {
        match done {
            Done::Received { id, meta, result } => self.on_offered(s, id, meta, result),
            Done::Opened {
                id,
                resume_from,
                result,
            } => self.opened(s, id, resume_from, result.map(|b| *b)),
            Done::Hashed { token, result } => self.hashed(s, token, result),
            Done::Looked { req, result } => match result {
                Ok(files) if !files.is_empty() => {
                    self.answering.insert(req, files.len());
                    self.to_offer
                        .extend(files.into_iter().map(|f| (f, Some(req))));
                }
                Ok(_) => {
                    let _ = s.finish_request(req, None);
                }
                Err(problem) => {
                    let _ = s.finish_request(req, Some(problem));
                }
            },
            Done::Listed { req, result } => match result {
                Ok(entries) => {
                    let _ = s.send_listing(req, entries);
                    let _ = s.finish_request(req, None);
                }
                Err(problem) => {
                    let _ = s.finish_request(req, Some(problem));
                }
            },
            Done::Recorded { req, result } => match result {
                Ok(line) => {
                    let _ = s.finish_request(req, None);
                    self.report(Report::RecordReceived(line));
                }
                Err(problem) => {
                    let _ = s.finish_request(req, Some(problem));
                }
            },
        }
    }
}
