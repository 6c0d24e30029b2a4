//! What a client run tells its user as the agent works: result lines, one-reason failure
//! texts naming the side, progress, and the bookkeeping a reconnect needs (which names are
//! finished for good, which failed only because the session dropped).
//!
//! One [`RunState`] lives for a whole command, across reconnects (each attempt has an agent
//! and a [`CliObserver`] of its own, all sharing it): a file cancelled by a dropped session is
//! held back, not printed, and offered again on the next attempt; only when no attempt is
//! left are such files reported ([`RunState::finish`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use ferry_app::agent::{Observer, Report};
use proto::{Problem, Reason};

use crate::output::{FileReport, Output};
use crate::progress::Progress;

/// Where the files of a run are written: the side a refusal comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// `send`, `record`: the server receives.
    Server,
    /// `get`: this machine receives, into this directory (`-`: standard output).
    Local(String),
    /// `ls`: nothing is written.
    Listing,
}

/// A command's state across attempts.
pub struct RunState {
    pub(crate) progress: Progress,
    /// Names finished for good (done, up to date, or failed for a reason a retry cannot
    /// change): not offered or reported again.
    pub(crate) finished: HashSet<String>,
    /// Files cancelled by a session that ended early: reported only if no retry follows.
    deferred: Vec<(String, Problem)>,
    failures: usize,
    /// When set, files refused as busy are noted here (to offer again) instead of printed.
    pub(crate) busy: Option<Vec<String>>,
    /// Something happened on the current attempt (a file started or ended, an entry came).
    pub(crate) active: bool,
    entries: HashSet<String>,
}

/// Shared handle on a [`RunState`].
pub type Shared = Arc<Mutex<RunState>>;

/// Lock `s`, whatever a panicking thread left.
pub fn lock(s: &Shared) -> std::sync::MutexGuard<'_, RunState> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunState {
    /// A new state; `progress` is the run's progress display.
    pub fn shared(progress: Progress) -> Shared {
        Arc::new(Mutex::new(RunState {
            progress,
            finished: HashSet::new(),
            deferred: Vec::new(),
            failures: 0,
            busy: None,
            active: false,
            entries: HashSet::new(),
        }))
    }

    /// The peer closed the session while files were unfinished (a server stopping): a dropped
    /// session, although it ended without an error.
    pub fn closed_early(&self) -> bool {
        self.deferred
            .iter()
            .any(|(_, p)| p.detail == "peer closed the session")
    }

    /// Forget the files a dropped session cancelled: the next attempt offers them again.
    pub fn retrying(&mut self) {
        self.deferred.clear();
        self.active = false;
    }

    /// The run is over: report the files a dropped session cancelled, print the summary line,
    /// and return the number of failed files.
    pub fn finish(&mut self, out: &Output, side: &Side) -> usize {
        if crate::signals::interrupted().is_some() {
            // The interruption notice says it all.
            self.progress.clear();
            return self.failures + self.deferred.len();
        }
        for (name, problem) in std::mem::take(&mut self.deferred) {
            self.progress.ended(&name, None);
            let reason = crate::json::problem_reason(problem.reason);
            out.file_failed(&name, reason, &describe(&problem, side));
            self.failures += 1;
        }
        self.progress.clear();
        if let Some(line) = self.progress.summary() {
            out.summary(&line);
        }
        self.failures
    }
}

/// Bridges agent reports and progress to the user's output.
pub struct CliObserver {
    out: Output,
    /// The peer, for messages.
    server: String,
    side: Side,
    state: Shared,
    /// `--bwlimit`.
    bucket: Option<crate::bwlimit::Bucket>,
}

impl CliObserver {
    /// Hold what is sent to `bucket`'s rate (`--bwlimit`).
    #[must_use]
    pub fn with_bwlimit(mut self, bucket: Option<crate::bwlimit::Bucket>) -> Self {
        self.bucket = bucket;
        self
    }

    /// An observer for one attempt of a run.
    pub fn new(out: &Output, server: &crate::Remote, side: Side, state: Shared) -> Self {
        CliObserver {
            out: out.clone(),
            server: server.to_string(),
            side,
            state,
            bucket: None,
        }
    }
}

impl Observer for CliObserver {
    fn started(&mut self, name: &str, total: Option<u64>, from: u64) {
        let mut st = lock(&self.state);
        st.active = true;
        st.progress.started(name, total, from);
    }

    fn advanced(&mut self, name: &str, n: u64) {
        lock(&self.state).progress.advanced(name, n);
        if let Some(b) = &mut self.bucket {
            b.take(n);
        }
    }

    fn report(&mut self, report: &Report) {
        let mut st = lock(&self.state);
        st.active = true;
        match report {
            Report::Sent(r) | Report::Received(r) => {
                // A retried `get` meets the files it already fetched as up to date.
                if !st.finished.insert(r.name.clone()) {
                    return;
                }
                let outcome = match report {
                    _ if r.up_to_date => FileReport::UP_TO_DATE,
                    Report::Sent(_) => FileReport::SENT,
                    _ => FileReport::RECEIVED,
                };
                let fr = FileReport {
                    name: r.name.clone(),
                    bytes: r.bytes,
                    // Up to date: nothing was resumed, nothing moved (the outcome says so).
                    resumed_from: if r.up_to_date { 0 } else { r.resumed_from },
                    blake3: blake3::Hash::from_bytes(r.blake3).to_hex().to_string(),
                    seconds: r.seconds,
                    outcome,
                };
                if st.progress.ended(&r.name, Some(&fr)) {
                    self.out.file_done(&fr);
                } else if st.progress.folding_note_due() {
                    self.out
                        .info("(further files are counted in the summary; -v lists every file)");
                }
            }
            Report::Failed { name, problem } => {
                if problem.reason == Reason::Busy
                    && let Some(busy) = &mut st.busy
                {
                    tracing::debug!(%name, "busy on the server; offering it again shortly");
                    busy.push(name.clone());
                    return;
                }
                if problem.reason == Reason::Cancelled {
                    // Maybe only the session ended: decided after the attempt.
                    st.deferred.push((name.clone(), problem.clone()));
                    return;
                }
                st.finished.insert(name.clone());
                st.failures += 1;
                st.progress.ended(name, None);
                let reason = crate::json::problem_reason(problem.reason);
                self.out
                    .file_failed(name, reason, &describe(problem, &self.side));
            }
            Report::Entry(e) => {
                if st.entries.insert(e.path.clone()) {
                    self.out.listed(e);
                }
            }
            Report::RecordStored => self.out.record_stored(&self.server),
            // Servers print records through their store (`serve --print`).
            Report::RecordReceived(_) => {}
        }
    }
}

/// One reason for a file failure, naming the side it happened on and, where there is one, the
/// fix: `the server already has a different file of this name: add --overwrite to replace it`.
pub fn describe(p: &Problem, side: &Side) -> String {
    let (on, receiver) = match side {
        Side::Server | Side::Listing => ("on the server", "the server"),
        Side::Local(_) => ("here", "this side"),
    };
    let with_detail = |what: String| {
        let d = p.detail.trim();
        if d.is_empty() || what.contains(d) {
            what
        } else {
            format!("{what}: {d}")
        }
    };
    match (p.reason, side) {
        (Reason::Exists, Side::Local(dir)) => {
            let place = if dir == "." {
                "here".to_owned()
            } else {
                format!("in {dir}")
            };
            format!(
                "a different file of this name is already {place}: add --overwrite to replace it"
            )
        }
        (Reason::Exists, _) => {
            "the server already has a different file of this name: add --overwrite to replace it"
                .to_owned()
        }
        (Reason::UpToDate, _) => format!("already up to date {on}"),
        (Reason::NotFound, Side::Local(_)) => {
            "not on the server (`ls` shows what it has)".to_owned()
        }
        (Reason::NotFound, _) => format!("not found {on}"),
        (Reason::Denied, _) => with_detail(format!("refused {on}")),
        (Reason::BadName, _) => with_detail(format!("invalid name for {receiver}")),
        (Reason::NoSpace, _) => format!("no space left {on}: free some and rerun to resume"),
        (Reason::Io, _) => with_detail(format!("I/O error {on}")),
        (Reason::HashMismatch, _) => format!(
            "the bytes {receiver} received do not match the sender's hash: rerun the same command"
        ),
        // The session's own error (printed after) says how to resume.
        (Reason::Cancelled, _) => with_detail("interrupted".to_owned()),
        (Reason::Unsupported, _) => format!("not supported by {receiver}"),
        (Reason::Busy, _) => {
            format!("busy {on}: another transfer of this name is in progress; rerun shortly")
        }
        _ => with_detail("failed".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(reason: Reason, detail: &str) -> Problem {
        Problem::new(reason, detail)
    }

    #[test]
    fn one_reason_naming_the_side() {
        let exists = p(
            Reason::Exists,
            "exists with different content; use --overwrite to replace it",
        );
        let sent = describe(&exists, &Side::Server);
        assert_eq!(
            sent,
            "the server already has a different file of this name: add --overwrite to replace it"
        );
        let got = describe(&exists, &Side::Local("./out".into()));
        assert_eq!(
            got,
            "a different file of this name is already in ./out: add --overwrite to replace it"
        );
        assert_eq!(
            describe(&exists, &Side::Local(".".into())),
            "a different file of this name is already here: add --overwrite to replace it"
        );
        for text in [sent, got] {
            assert_eq!(text.matches("overwrite").count(), 1, "{text}");
            assert!(!text.contains("other side"), "{text}");
        }
        // A detail that repeats the reason is not printed twice.
        assert_eq!(
            describe(&p(Reason::Denied, "refused on the server"), &Side::Server),
            "refused on the server"
        );
        assert_eq!(
            describe(
                &p(
                    Reason::Cancelled,
                    "session closed before the file completed"
                ),
                &Side::Server
            ),
            "interrupted: session closed before the file completed"
        );
    }
}
