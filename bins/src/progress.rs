//! Progress on a terminal for a whole run: one aggregate bar for multi-file runs, a few
//! per-file bars for large files, a verifying state while the receiver checks and syncs, and
//! the summary line `N files, X MiB in Y s`.
//!
//! Bars are drawn by indicatif (templates with `{wide_bar}`/`{wide_msg}` fit the terminal
//! width, so nothing wraps at 80 columns) at most [`DRAW_HZ`] times a second. On a terminal a
//! multi-file run lists its first [`LISTED_ON_TERMINAL`] files and folds the rest into the
//! summary (`-v` lists every file; a pipe always gets every line): 1 000 small files stay a
//! few kilobytes of terminal output instead of megabytes of redraws.

use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::output::{FileReport, Output, escape_line, format_bytes};

/// At most this many per-file bars at once (further files show in the aggregate bar only).
pub const MAX_FILE_BARS: usize = 3;
/// Files smaller than this get no bar of their own in a multi-file run: they are done before
/// a bar could say anything.
pub const FILE_BAR_MIN: u64 = 1 << 20;
/// Redraws per second, at most.
pub const DRAW_HZ: u8 = 8;
/// Result lines a multi-file run prints on a terminal before folding the rest into the summary.
pub const LISTED_ON_TERMINAL: usize = 10;

/// The state of a run's progress; every method is cheap and a no-op without a terminal.
pub struct Progress {
    multi: Option<MultiProgress>,
    aggregate: Option<ProgressBar>,
    files: Vec<FileBar>,
    /// Files expected (known for `send`), else grown as files start.
    expected: Option<usize>,
    started: usize,
    done: usize,
    up_to_date: usize,
    failed: usize,
    bytes: u64,
    moved: u64,
    begun: Instant,
    /// Print every result line (not a terminal, or `-v`).
    list_all: bool,
    listed: usize,
    folded_note: bool,
}

struct FileBar {
    name: String,
    bar: ProgressBar,
}

fn aggregate_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn file_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{wide_msg} [{bar:20}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{wide_msg} {spinner} {bytes} {binary_bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress {
    /// Progress for a run expected to move `expected` files of `bytes` in all (`None` when the
    /// receiver learns them as they come). `verbose` lists every file.
    pub fn new(out: &Output, expected: Option<(usize, u64)>, verbose: bool) -> Self {
        let multi = out.multi().cloned();
        let list_all = multi.is_none() || verbose || out.is_json();
        let mut p = Progress {
            multi,
            aggregate: None,
            files: Vec::new(),
            expected: expected.map(|(n, _)| n),
            started: 0,
            done: 0,
            up_to_date: 0,
            failed: 0,
            bytes: 0,
            moved: 0,
            begun: Instant::now(),
            list_all,
            listed: 0,
            folded_note: false,
        };
        if let Some((n, bytes)) = expected
            && n > 1
        {
            p.start_aggregate(bytes);
        }
        p
    }

    fn multi_file(&self) -> bool {
        self.expected.map_or(self.started > 1, |n| n > 1)
    }

    fn start_aggregate(&mut self, bytes: u64) {
        let Some(multi) = &self.multi else { return };
        if self.aggregate.is_some() {
            return;
        }
        // Above any per-file bar.
        let bar = multi.insert(0, ProgressBar::new(bytes).with_style(aggregate_style()));
        self.aggregate = Some(bar);
        self.update_prefix();
    }

    fn update_prefix(&self) {
        if let Some(bar) = &self.aggregate {
            let total = self.expected.unwrap_or(self.started).max(self.started);
            bar.set_prefix(format!("{}/{} files", self.done + self.failed, total));
        }
    }

    /// A file starts moving: `total` bytes if known, `from` of them already there.
    pub fn started(&mut self, name: &str, total: Option<u64>, from: u64) {
        self.started += 1;
        if self.multi.is_none() {
            return;
        }
        if self.expected.is_none() && self.started == 2 {
            let known: u64 = self.files.iter().filter_map(|f| f.bar.length()).sum();
            let pos: u64 = self.files.iter().map(|f| f.bar.position()).sum();
            self.start_aggregate(known);
            if let Some(a) = &self.aggregate {
                a.set_position(pos);
            }
        }
        if let Some(a) = &self.aggregate {
            if self.expected.is_none() {
                a.inc_length(total.unwrap_or(0));
            }
            a.inc(from);
            a.set_message("");
        }
        self.update_prefix();
        let big = total.is_none_or(|t| t >= FILE_BAR_MIN);
        if (self.multi_file() && !big) || self.files.len() >= MAX_FILE_BARS {
            return;
        }
        let Some(multi) = &self.multi else { return };
        let bar = match total {
            Some(len) => ProgressBar::new(len).with_style(file_style()),
            None => ProgressBar::new_spinner().with_style(spinner_style()),
        };
        let bar = multi.add(bar.with_message(escape_line(name)));
        bar.set_position(from);
        self.files.push(FileBar {
            name: name.to_owned(),
            bar,
        });
    }

    /// `n` more bytes of `name` moved. A file whose bytes all moved shows `verifying` until
    /// the receiver confirms it (hash check, fsync); so does the aggregate bar.
    pub fn advanced(&mut self, name: &str, n: u64) {
        if let Some(a) = &self.aggregate {
            a.inc(n);
            if a.length().is_some_and(|l| a.position() >= l) {
                a.set_message("verifying");
            }
        }
        if let Some(f) = self.files.iter().find(|f| f.name == name) {
            f.bar.inc(n);
            if f.bar.length().is_some_and(|l| f.bar.position() >= l) {
                f.bar
                    .set_message(format!("{} (verifying)", escape_line(name)));
            }
        }
    }

    /// A file ended (done or failed): remove its bar. Returns whether its result line should be
    /// printed (see the module docs).
    pub fn ended(&mut self, name: &str, report: Option<&FileReport>) -> bool {
        if let Some(i) = self.files.iter().position(|f| f.name == name) {
            self.files.swap_remove(i).bar.finish_and_clear();
        }
        match report {
            Some(r) => {
                self.done += 1;
                self.bytes += r.bytes;
                if r.outcome == FileReport::UP_TO_DATE {
                    self.up_to_date += 1;
                } else {
                    self.moved += r.bytes.saturating_sub(r.resumed_from);
                }
            }
            None => self.failed += 1,
        }
        if let Some(a) = &self.aggregate {
            // Every byte moved, files still unconfirmed: the receiver checks and syncs them.
            let moved = a.length().is_some_and(|l| a.position() >= l);
            let open = self.started > self.done + self.failed;
            a.set_message(if moved && open { "verifying" } else { "" });
        }
        self.update_prefix();
        if report.is_none() || self.list_all || !self.multi_file() {
            return true;
        }
        self.listed += 1;
        self.listed <= LISTED_ON_TERMINAL
    }

    /// Whether the "further files are not listed" note is due now (once).
    pub fn folding_note_due(&mut self) -> bool {
        if self.listed > LISTED_ON_TERMINAL && !self.folded_note {
            self.folded_note = true;
            return true;
        }
        false
    }

    /// Remove every bar (the run ended, or was interrupted).
    pub fn clear(&mut self) {
        for f in self.files.drain(..) {
            f.bar.finish_and_clear();
        }
        if let Some(a) = self.aggregate.take() {
            a.finish_and_clear();
        }
    }

    /// `1000 files, 12 KiB in 0.81 s` (with a rate once enough moved to make one meaningful),
    /// for runs of more than one file.
    pub fn summary(&self) -> Option<String> {
        if self.done + self.failed < 2 {
            return None;
        }
        let secs = self.begun.elapsed().as_secs_f64();
        Some(summary_line(
            self.done,
            self.up_to_date,
            self.failed,
            self.bytes,
            self.moved,
            secs,
        ))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Bytes moved below this make no meaningful rate (`2 B in 0.79 s` is latency, not speed).
pub const RATE_MIN_BYTES: u64 = 64 << 10;

/// See [`Progress::summary`].
pub fn summary_line(
    done: usize,
    up_to_date: usize,
    failed: usize,
    bytes: u64,
    moved: u64,
    secs: f64,
) -> String {
    let files = if done == 1 { "file" } else { "files" };
    let mut line = format!(
        "{done} {files}, {} in {}",
        format_bytes(bytes),
        crate::output::format_seconds(secs)
    );
    if moved >= RATE_MIN_BYTES && secs > 0.0 {
        line.push_str(&format!(
            " ({}/s)",
            format_bytes((moved as f64 / secs) as u64)
        ));
    }
    if up_to_date > 0 {
        line.push_str(&format!(", {up_to_date} up to date"));
    }
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        assert_eq!(
            summary_line(1000, 0, 0, 12 << 10, 12 << 10, 0.81),
            "1000 files, 12 KiB in 0.81 s"
        );
        assert_eq!(
            summary_line(3, 1, 2, 30 << 20, 20 << 20, 2.0),
            "3 files, 30 MiB in 2.00 s (10 MiB/s), 1 up to date, 2 failed"
        );
        assert_eq!(
            summary_line(1, 0, 1, 2, 2, 0.79),
            "1 file, 2 B in 0.79 s, 1 failed"
        );
    }

    #[test]
    fn one_aggregate_bar_and_few_file_bars() {
        // Bars enabled (drawn nowhere when stderr is not a terminal).
        let out = Output::with_progress(false, false, true);
        let mut p = Progress::new(&out, Some((6, 6 * FILE_BAR_MIN + 10)), false);
        assert!(p.aggregate.is_some());
        p.started("tiny", Some(10), 0);
        assert!(
            p.files.is_empty(),
            "a tiny file of a multi-file run gets no bar"
        );
        for i in 0..5 {
            p.started(&format!("big{i}"), Some(FILE_BAR_MIN), 0);
        }
        assert_eq!(p.files.len(), MAX_FILE_BARS);
        p.advanced("big0", FILE_BAR_MIN);
        assert!(p.files[0].bar.message().ends_with("(verifying)"));
        for i in 0..5 {
            p.advanced(&format!("big{i}"), FILE_BAR_MIN);
        }
        p.advanced("tiny", 10);
        let agg = p.aggregate.clone().unwrap();
        assert_eq!(agg.message(), "verifying");
        p.ended("tiny", None);
        assert_eq!(
            agg.message(),
            "verifying",
            "five files are still being verified"
        );
        assert_eq!(agg.prefix(), "1/6 files");
        p.clear();
        assert!(p.files.is_empty() && p.aggregate.is_none());
    }

    #[test]
    fn without_a_terminal_every_line_is_listed_and_nothing_draws() {
        let out = Output::with_progress(false, false, false);
        let mut p = Progress::new(&out, Some((20, 20)), false);
        for i in 0..20 {
            let name = format!("f{i}");
            p.started(&name, Some(1), 0);
            p.advanced(&name, 1);
            let r = FileReport {
                name: name.clone(),
                bytes: 1,
                resumed_from: 0,
                blake3: String::new(),
                seconds: 0.1,
                outcome: FileReport::SENT,
            };
            assert!(p.ended(&name, Some(&r)));
        }
        assert!(!p.folding_note_due());
        assert!(p.summary().unwrap().starts_with("20 files, 20 B in "));
    }
}
