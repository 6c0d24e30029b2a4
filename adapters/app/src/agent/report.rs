//! What an agent tells its user: one [`Report`] per finished file, failure or listed entry, and
//! progress through an [`Observer`].

use proto::{ListEntry, Problem};

use super::Agent;

/// How one file ended, or one listed entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A file this side sent was committed by the peer (or was already there).
    Sent(FileReport),
    /// A file this side received was committed here.
    Received(FileReport),
    /// A file (or a requested name) failed; the session went on.
    Failed {
        /// The file or requested name.
        name: String,
        /// Why.
        problem: Problem,
    },
    /// One line of a listing.
    Entry(ListEntry),
    /// The peer stored our record durably.
    RecordStored,
    /// A record the peer sent was stored here (its JSON line).
    RecordReceived(String),
}

/// The outcome of one finished file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// Name on the receiving side.
    pub name: String,
    /// Whole-file size.
    pub bytes: u64,
    /// Bytes the receiver already held (not sent again).
    pub resumed_from: u64,
    /// Whole-file BLAKE3 (zero when the file was skipped as up to date and not hashed here).
    pub blake3: [u8; 32],
    /// Seconds from the offer (or acceptance) to the commit, on the driver's clock.
    pub seconds: f64,
    /// The receiver already had exactly this content; nothing was transferred.
    pub up_to_date: bool,
}

/// Told about progress and outcomes (a CLI draws progress bars and prints reports; a server
/// logs). All methods have empty defaults.
pub trait Observer: Send {
    /// A file starts moving: `total` bytes if known, of which `from` are already there.
    fn started(&mut self, _name: &str, _total: Option<u64>, _from: u64) {}
    /// `n` more bytes of `name` were sent or received.
    fn advanced(&mut self, _name: &str, _n: u64) {}
    /// A file or listing entry finished.
    fn report(&mut self, _report: &Report) {}
    /// A client's session is established with a server whose long-term key is `peer_static`
    /// (`None` in the PSK mode), before any request goes out: `Err` (why) ends the session
    /// with nothing done (a changed host key, a fingerprint that does not match).
    ///
    /// # Errors
    /// The reason to refuse this server.
    fn connected(&mut self, _peer_static: Option<[u8; 32]>) -> Result<(), String> {
        Ok(())
    }
}

/// An observer that only logs through `tracing` (servers).
pub struct LogObserver;

impl Observer for LogObserver {
    fn report(&mut self, report: &Report) {
        match report {
            Report::Sent(r) => {
                tracing::info!(name = %r.name, bytes = r.bytes, up_to_date = r.up_to_date, "sent")
            }
            Report::Received(r) => {
                tracing::info!(name = %r.name, bytes = r.bytes, resumed_from = r.resumed_from, "received")
            }
            Report::Failed { name, problem } => tracing::warn!(%name, %problem, "file failed"),
            Report::RecordReceived(line) => tracing::info!(record = %line, "record stored"),
            Report::Entry(_) | Report::RecordStored => {}
        }
    }
}

impl Agent {
    pub(super) fn report(&mut self, r: Report) {
        if matches!(r, Report::Failed { .. }) {
            self.failures += 1;
        }
        self.observer.report(&r);
        self.reports.push(r);
    }

    pub(super) fn fail(&mut self, name: String, problem: Problem) {
        self.report(Report::Failed { name, problem });
    }

    /// Seconds on the driver's clock from `since` to the latest `pump`.
    pub(super) fn seconds_since(&self, since: proto::Instant) -> f64 {
        self.now.saturating_duration_since(since).as_secs_f64()
    }
}
