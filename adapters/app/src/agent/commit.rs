//! Group commit: files received whole wait to be made durable together, so a flush is never paid
//! per file.
//!
//! A group is committed when no other file is on its way and nothing else is ready, when it is
//! large ([`COMMIT_GROUP`]), or when its first file waited [`COMMIT_DELAY`] (on the driver's
//! clock, checked whenever the agent is pumped). With a pool, one group at a time is on the
//! pool: what arrives meanwhile forms the next group.

use std::collections::BTreeMap;
use std::time::Duration;

use proto::{Instant, Problem, RecvId, Session};

use super::report::{FileReport, Report};
use super::{Agent, Incoming};
use ferry_disk::commit::{Batch, commit_batch};

/// Most files committed as one group.
const COMMIT_GROUP: usize = 256;

/// Longest a received file waits for its group while other files are still arriving.
const COMMIT_DELAY: Duration = Duration::from_millis(100);

/// A file received whole and verified: what its report needs once its commit answers (the file
/// itself is in the group, or on the pool).
pub(super) struct Received {
    pub(super) name: String,
    pub(super) resumed_from: u64,
    pub(super) started_at: Instant,
    pub(super) hash: [u8; 32],
    pub(super) size: u64,
}

/// The group of received files not yet handed to a commit.
enum Group {
    /// No file waits.
    Empty,
    /// Files wait, the first of them since `since`.
    Gathering { since: Instant, files: Batch },
}

/// The agent's commit state.
pub(super) struct Commits {
    /// Files whose commit has not answered (in the group or on the pool).
    waiting: BTreeMap<RecvId, Received>,
    group: Group,
    /// Files of the group on the pool whose answer has not come back.
    on_pool: usize,
}

impl Commits {
    pub(super) fn new() -> Self {
        Commits {
            waiting: BTreeMap::new(),
            group: Group::Empty,
            on_pool: 0,
        }
    }

    /// No received file waits for its commit's answer.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The files of the group being gathered (the group is empty afterwards).
    fn take_group(&mut self) -> Batch {
        match std::mem::replace(&mut self.group, Group::Empty) {
            Group::Empty => Vec::new(),
            Group::Gathering { files, .. } => files,
        }
    }
}

impl Agent {
    /// `file` was received whole (`size` bytes): commit it with the group being gathered.
    pub(super) fn gather(
        &mut self,
        id: RecvId,
        received: Received,
        file: Box<dyn Incoming>,
        size: u64,
    ) {
        self.commits.waiting.insert(id, received);
        match &mut self.commits.group {
            Group::Gathering { files, .. } => files.push((id, file, size)),
            group @ Group::Empty => {
                *group = Group::Gathering {
                    since: self.now,
                    files: vec![(id, file, size)],
                }
            }
        }
    }

    /// Commit the group if it is due (see the module docs); `busy`: this pump did something
    /// else. Returns whether anything happened.
    pub(super) fn commit_if_due(&mut self, s: &mut Session, busy: bool) -> bool {
        let Group::Gathering { since, files } = &self.commits.group else {
            return false;
        };
        let due = self.commits.on_pool == 0
            && ((!busy && self.receiving.is_empty())
                || files.len() >= COMMIT_GROUP
                || self.now.saturating_duration_since(*since) >= COMMIT_DELAY);
        due && self.flush_commits(s)
    }

    /// Commit the group as one: on the pool, or here.
    fn flush_commits(&mut self, s: &mut Session) -> bool {
        let batch = self.commits.take_group();
        let batch = match &self.pool {
            Some(link) => {
                let (tx, notify) = (link.done_tx.clone(), link.notify.clone());
                let files = batch.len();
                match link.pool.submit(batch, tx, notify) {
                    Ok(()) => {
                        self.commits.on_pool = files;
                        return false;
                    }
                    // The pool is gone: commit here.
                    Err(batch) => batch,
                }
            }
            None => batch,
        };
        for (id, result) in commit_batch(batch) {
            if let Some(r) = self.commits.waiting.remove(&id) {
                self.committed(s, id, r, result);
            }
        }
        true
    }

    /// Answers from the commit pool.
    pub(super) fn collect_commits(&mut self, s: &mut Session) -> bool {
        let mut any = false;
        while let Some(link) = &self.pool
            && let Ok((id, result)) = link.done_rx.try_recv()
        {
            self.commits.on_pool = self.commits.on_pool.saturating_sub(1);
            if let Some(r) = self.commits.waiting.remove(&id) {
                self.committed(s, id, r, result);
                any = true;
            }
        }
        any
    }

    /// The session ended: files received whole and verified are committed even though nobody
    /// will hear of it.
    pub(super) fn commit_at_end(&mut self) {
        for (id, result) in commit_batch(self.commits.take_group()) {
            if let Some(r) = self.commits.waiting.remove(&id) {
                self.report_commit(r, result);
            }
        }
    }

    /// Answer the session for a commit that finished (inline or on the pool).
    fn committed(&mut self, s: &mut Session, id: RecvId, r: Received, result: Result<(), Problem>) {
        let _ = match &result {
            Ok(()) => s.committed(id),
            Err(problem) => s.commit_failed(id, problem.clone()),
        };
        self.report_commit(r, result);
    }

    /// Report a finished commit.
    fn report_commit(&mut self, r: Received, result: Result<(), Problem>) {
        match result {
            Ok(()) => {
                let seconds = self.seconds_since(r.started_at);
                self.report(Report::Received(FileReport {
                    name: r.name,
                    bytes: r.size,
                    resumed_from: r.resumed_from,
                    blake3: r.hash,
                    seconds,
                    up_to_date: false,
                }));
            }
            Err(problem) => self.fail(r.name, problem),
        }
    }
}
