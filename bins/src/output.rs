//! What the user sees: per-file result lines, listings, notices, errors, progress bars, logs.
//!
//! | what                         | human mode                      | `--json` mode                      |
//! |------------------------------|---------------------------------|------------------------------------|
//! | [`Output::listening`]        | stdout `listening on ADDR`      | stdout `{"event":"listening","address":ADDR}` |
//! | [`Output::file_done`]        | stdout line (stderr when stdout carries file data); not with `-q` | stdout `{"event":"file",...}` |
//! | [`Output::file_failed`]      | stderr `error: NAME: CAUSE`     | stdout `{"event":"error",...}` and the stderr line |
//! | [`Output::listed`]           | stdout `SIZE  DATE  NAME`       | stdout `{"event":"entry",...}`     |
//! | [`Output::info`]             | stderr, not with `-q`           | the same                           |
//! | [`Output::error`]            | stderr `error: MSG`, always     | stdout `{"event":"error","name":null,...}` and the stderr line |
//! | progress bars                | stderr, only on a terminal      | never                              |
//! | [`Output::json_summary`]     | nothing                         | stdout `{"event":"summary",...}`, last |
//!
//! JSON objects are one per line; `bytes` and `resumed_from` are byte counts, `seconds` a float,
//! `blake3` lowercase hex, `mtime` Unix seconds or `null`. Human lines escape control
//! characters in names and messages (a name from a hostile server cannot drive the terminal)
//! and never span more than one line. Write errors (a closed pipe) are ignored.

use std::fmt::{self, Display, Write as _};
use std::io::{self, IsTerminal as _, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use proto::ListEntry;
use serde::Serialize;

/// The result of one file that finished (or needed no transfer).
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The file's name as the server knows it (relative path).
    pub name: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// Bytes already held from an earlier attempt that were not transferred again.
    pub resumed_from: u64,
    /// Whole-file BLAKE3, lowercase hex.
    pub blake3: String,
    /// Wall-clock time this file took, in seconds.
    pub seconds: f64,
    /// [`FileReport::SENT`], [`FileReport::RECEIVED`] or [`FileReport::UP_TO_DATE`].
    pub outcome: &'static str,
}

impl FileReport {
    /// Outcome: the file was sent to the server and committed there.
    pub const SENT: &'static str = "sent";
    /// Outcome: the file was received and committed locally.
    pub const RECEIVED: &'static str = "received";
    /// Outcome: the destination already held exactly this content; nothing was transferred.
    pub const UP_TO_DATE: &'static str = "up-to-date";
}

/// Where user-facing output goes and in which form. Cheap to clone; clones share the progress
/// bars, so one `Output` can be handed to several threads.
#[derive(Debug, Clone)]
pub struct Output {
    json: bool,
    quiet: bool,
    /// Human result lines go to stderr because stdout carries file data (`get --out -`).
    stdout_is_data: bool,
    /// Present when progress bars are shown; every line is printed around them.
    progress: Option<MultiProgress>,
    /// A client's transport (`"tcp"` or `"udp"`), in every JSON object it prints.
    transport: Option<&'static str>,
    /// `ls -h`: human sizes and local time.
    human_listing: bool,
    /// What the summary object counts (shared by clones).
    stats: Arc<Mutex<crate::json::Summary>>,
    started: Instant,
}

impl Output {
    /// Output for these flags. Progress bars are enabled only when stderr is a terminal and
    /// neither `json` nor `quiet` is set.
    pub fn new(json: bool, quiet: bool) -> Self {
        let progress = !json && !quiet && io::stderr().is_terminal();
        Self::with_progress(json, quiet, progress)
    }

    /// [`Output::new`] from the parsed command line.
    pub fn from_cli(cli: &crate::Cli) -> Self {
        Self::new(cli.json, cli.quiet)
    }

    pub(crate) fn with_progress(json: bool, quiet: bool, progress: bool) -> Self {
        Self {
            json,
            quiet,
            stdout_is_data: false,
            transport: None,
            human_listing: false,
            stats: Arc::default(),
            started: Instant::now(),
            progress: progress.then(|| {
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(
                    crate::progress::DRAW_HZ,
                ))
            }),
        }
    }

    /// Standard output carries file data (`get --out -`): human result lines go to stderr.
    /// (`--json` with `--out -` is a usage error, see [`crate::cli::validate`].)
    #[must_use]
    pub fn stdout_is_data(mut self) -> Self {
        self.stdout_is_data = true;
        self
    }

    /// A client command's transport, `"tcp"` or `"udp"`: its JSON objects (file, entry,
    /// record, error) then carry `"transport"`.
    #[must_use]
    pub fn with_transport(mut self, transport: &'static str) -> Self {
        self.transport = Some(transport);
        self
    }

    /// `ls -h`: sizes in binary units and modification times in local time.
    #[must_use]
    pub fn with_human_listing(mut self) -> Self {
        self.human_listing = true;
        self
    }

    /// `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// `-q` was given.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Progress bars are shown.
    pub fn progress_enabled(&self) -> bool {
        self.progress.is_some()
    }

    /// The bars' container when progress is shown (see [`crate::progress`]).
    pub(crate) fn multi(&self) -> Option<&MultiProgress> {
        self.progress.as_ref()
    }

    /// A run's last human line (`N files, X MiB in Y s`, see [`crate::progress`]): where result
    /// lines go; not with `-q` or `--json`.
    pub fn summary(&self, line: &str) {
        if self.json || self.quiet {
            return;
        }
        self.emit(|out, err| {
            if self.stdout_is_data {
                writeln!(err, "{line}")
            } else {
                writeln!(out, "{line}")
            }
        });
    }

    /// A signal ended the run: clear the bars and print `line` (no `error:` prefix; with
    /// `--json` also an error object), even with `-q`.
    pub fn interrupted(&self, line: &str) {
        if let Some(multi) = &self.progress {
            let _ = multi.clear();
        }
        let mut out = io::stdout().lock();
        let mut err = io::stderr().lock();
        if self.json {
            let _ = json_line(
                &mut out,
                &ErrorEvent {
                    event: "error",
                    name: None,
                    reason: "interrupted",
                    error: line,
                    transport: self.transport,
                },
            );
            let _ = out.flush();
        }
        let _ = writeln!(err, "{line}");
        let _ = err.flush();
    }

    /// `serve`'s first stdout line, exactly `listening on ADDR` with the bound address, in
    /// every mode (also `-q` and `--json`), flushed at once for scripts reading a pipe.
    /// With `--json` the line is `{"event":"listening","address":"ADDR"}`.
    pub fn listening(&self, addr: SocketAddr) {
        if self.json {
            let v = serde_json::json!({"event": "listening", "address": addr.to_string()});
            return self.emit(|out, _| json_line(out, &v));
        }
        self.emit(|out, _| writeln!(out, "listening on {addr}"));
    }

    /// A file finished: `sent`, `received` or `up-to-date`.
    pub fn file_done(&self, report: &FileReport) {
        {
            let mut s = self.stats();
            if report.outcome == FileReport::UP_TO_DATE {
                s.up_to_date += 1;
            } else {
                s.files += 1;
                s.bytes += report.bytes.saturating_sub(report.resumed_from);
            }
        }
        self.emit(|out, err| self.file_done_to(out, err, report));
    }

    /// A file failed; `reason` is one of [`crate::json::REASONS`], `error` the one-line cause.
    pub fn file_failed(&self, name: &str, reason: &str, error: &str) {
        self.stats().failed += 1;
        self.emit(|out, err| self.file_failed_to(out, err, name, reason, error));
    }

    /// One entry of an `ls` listing.
    pub fn listed(&self, entry: &ListEntry) {
        self.stats().entries += 1;
        self.emit(|out, _| self.listed_to(out, entry));
    }

    /// The server stored our record.
    pub fn record_stored(&self, server: impl Display) {
        self.emit(|out, err| {
            if self.json {
                let mut v = serde_json::json!({"event": "record", "stored": true});
                if let Some(t) = self.transport {
                    v["transport"] = t.into();
                }
                json_line(out, &v)
            } else if self.quiet {
                Ok(())
            } else {
                writeln!(err, "stored the record on {server}")
            }
        });
    }

    /// A notice for the user on stderr (suppressed by `-q`).
    pub fn info(&self, msg: impl Display) {
        self.emit(|_, err| self.info_to(err, &msg));
    }

    /// An error not tied to one file (connection, authentication...): always one stderr line,
    /// plus a JSON error object on stdout with `--json`.
    pub fn error(&self, msg: impl Display) {
        self.error_with("other", msg);
    }

    /// [`Output::error`] with its `reason` (one of [`crate::json::REASONS`]).
    pub fn error_with(&self, reason: &str, msg: impl Display) {
        self.stats().failed += 1;
        self.emit(|out, err| self.error_to(out, err, reason, &msg));
    }

    /// The notice `serve` prints when [`crate::keyfile::load_or_create`] created the key.
    pub fn key_created(&self, path: &Path) {
        self.info(format_args!(
            "created a new key at {0}; copy it to clients (e.g. to the same path, mode 0600) \
             or point them at it with --key / FERRY_KEY",
            path.display()
        ));
    }

    /// Start a progress bar for `name` (`total` bytes when known). A no-op handle when
    /// progress is disabled.
    pub fn progress_start(&self, name: &str, total: Option<u64>) -> ProgressHandle {
        let Some(multi) = &self.progress else {
            return ProgressHandle { bar: None };
        };
        let bar = match total {
            Some(len) => ProgressBar::new(len).with_style(
                ProgressStyle::with_template(
                    "{msg:30!} [{bar:25}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "{msg:30!} {spinner} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let bar = multi.add(bar.with_message(escape_line(name)));
        bar.enable_steady_tick(Duration::from_millis(200));
        ProgressHandle { bar: Some(bar) }
    }

    /// Run `f` on locked stdout and stderr, around the progress bars when shown.
    fn emit(&self, f: impl FnOnce(&mut dyn Write, &mut dyn Write) -> io::Result<()>) {
        let run = || {
            let mut out = io::stdout().lock();
            let mut err = io::stderr().lock();
            let _ = f(&mut out, &mut err);
            let _ = out.flush();
            let _ = err.flush();
        };
        match &self.progress {
            Some(multi) => multi.suspend(run),
            None => run(),
        }
    }

    fn file_done_to(
        &self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        r: &FileReport,
    ) -> io::Result<()> {
        if self.json {
            return json_line(
                out,
                &FileEvent {
                    event: "file",
                    name: &r.name,
                    bytes: r.bytes,
                    resumed_from: r.resumed_from,
                    blake3: &r.blake3,
                    seconds: r.seconds,
                    outcome: r.outcome,
                    transport: self.transport,
                },
            );
        }
        if self.quiet {
            return Ok(());
        }
        let line = human_file_done(r);
        if self.stdout_is_data {
            writeln!(err, "{line}")
        } else {
            writeln!(out, "{line}")
        }
    }

    fn file_failed_to(
        &self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        name: &str,
        reason: &str,
        error: &str,
    ) -> io::Result<()> {
        if self.json {
            json_line(
                out,
                &ErrorEvent {
                    event: "error",
                    name: Some(name),
                    reason,
                    error,
                    transport: self.transport,
                },
            )?;
        }
        writeln!(err, "error: {}: {}", escape_line(name), escape_line(error))
    }

    fn listed_to(&self, out: &mut dyn Write, e: &ListEntry) -> io::Result<()> {
        if self.json {
            return json_line(
                out,
                &EntryEvent {
                    event: "entry",
                    name: &e.path,
                    bytes: e.size,
                    mtime: e.mtime.map(|m| m.secs),
                    transport: self.transport,
                },
            );
        }
        if self.human_listing {
            let date = e
                .mtime
                .map_or_else(|| "-".to_owned(), |m| format_local(m.secs));
            return writeln!(
                out,
                "{:>9}  {:<16}  {}",
                format_bytes(e.size),
                date,
                escape_line(&e.path)
            );
        }
        let date = e
            .mtime
            .map_or_else(|| "-".to_owned(), |m| format_utc(m.secs));
        writeln!(
            out,
            "{:>12}  {:<23}  {}",
            e.size,
            date,
            escape_line(&e.path)
        )
    }

    fn info_to(&self, err: &mut dyn Write, msg: &dyn Display) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        writeln!(err, "{}", escape_line(&msg.to_string()))
    }

    fn error_to(
        &self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        reason: &str,
        msg: &dyn Display,
    ) -> io::Result<()> {
        let msg = msg.to_string();
        if self.json {
            json_line(
                out,
                &ErrorEvent {
                    event: "error",
                    name: None,
                    reason,
                    error: &msg,
                    transport: self.transport,
                },
            )?;
        }
        writeln!(err, "error: {}", escape_line(&msg))
    }
}

/// A progress bar for one file; every method is a no-op when progress is disabled. Dropping it
/// clears the bar like [`ProgressHandle::finish`].
#[derive(Debug)]
pub struct ProgressHandle {
    bar: Option<ProgressBar>,
}

impl ProgressHandle {
    /// `n` more bytes were transferred.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Jump to `pos` bytes (a resumed file starts at the held prefix).
    pub fn set_position(&self, pos: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    /// The file is done (or failed): remove the bar; the result line says the rest.
    pub fn finish(mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for ProgressHandle {
    fn drop(&mut self) {
        self.clear();
    }
}

#[derive(Serialize)]
struct FileEvent<'a> {
    event: &'static str,
    name: &'a str,
    bytes: u64,
    resumed_from: u64,
    blake3: &'a str,
    seconds: f64,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct ErrorEvent<'a> {
    event: &'static str,
    name: Option<&'a str>,
    reason: &'a str,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<&'static str>,
}

#[derive(Serialize)]
struct EntryEvent<'a> {
    event: &'static str,
    name: &'a str,
    bytes: u64,
    mtime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<&'static str>,
}

fn json_line(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    crate::json_safe::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// `sent notes.txt  1.2 MiB in 0.03 s (40 MiB/s), resumed from 512 KiB`.
fn human_file_done(r: &FileReport) -> String {
    let mut line = format!(
        "{} {}  {}",
        r.outcome,
        escape_line(&r.name),
        format_bytes(r.bytes)
    );
    if r.outcome == FileReport::UP_TO_DATE {
        return line;
    }
    let _ = write!(line, " in {}", format_seconds(r.seconds));
    let moved = r.bytes.saturating_sub(r.resumed_from);
    // Below a few dozen KiB the time is latency, not speed: no rate (`2 B in 0.79 s`).
    if r.seconds > 0.0 && r.seconds.is_finite() && moved >= crate::progress::RATE_MIN_BYTES {
        let _ = write!(line, " ({}/s)", format_rate(moved as f64 / r.seconds));
    }
    if r.resumed_from > 0 {
        let _ = write!(line, ", resumed from {}", format_bytes(r.resumed_from));
    }
    line
}

const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// Binary units: `512 B`, `1.2 MiB` (one decimal below 10), `40 MiB`.
pub fn format_bytes(n: u64) -> String {
    format_rate(n as f64)
}

fn format_rate(mut v: f64) -> String {
    if v < 1024.0 {
        return format!("{v:.0} B");
    }
    let mut unit = 0;
    // Divide while the rounded value would print as 1024 or more.
    while v >= 1023.5 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 9.95 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// `0.03 s`, `12.5 s`, `42 s`, `2m05s`, `1h02m05s`.
pub(crate) fn format_seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "? s".to_owned();
    }
    if s < 9.995 {
        return format!("{s:.2} s");
    }
    if s < 59.95 {
        return format!("{s:.1} s");
    }
    let total = s.round() as u64;
    let (h, m, sec) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{sec:02}s")
    } else {
        format!("{m}m{sec:02}s")
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian, negative before 1970).
pub fn format_utc(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = proto::daytime::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in the local time zone (`TZ`, else `/etc/localtime`).
pub fn format_local(unix_secs: i64) -> String {
    use chrono::TimeZone as _;
    match chrono::Local.timestamp_opt(unix_secs, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%Y-%m-%d %H:%M").to_string()
        }
        chrono::LocalResult::None => format_utc(unix_secs),
    }
}

/// Control characters (newlines, escapes) as `\n`, `\u{1b}`..., and bidirectional controls
/// and zero-width characters as `\u{202e}`...: one safe line that shows what it holds.
pub(crate) fn escape_line(s: &str) -> String {
    let unsafe_char = |c: char| c.is_control() || ferry_disk::path::is_deceptive(c);
    if !s.chars().any(unsafe_char) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Route `tracing` to stderr. The level is `RUST_LOG` when set; otherwise `warn`, `info` with
/// `-v`, `debug` with `-vv`, `trace` with `-vvv`, and `error` with `-q`. Calling it again is
/// harmless (the first subscriber stays).
pub fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_level(verbose, quiet)));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal() && !no_color())
        .with_target(verbose >= 2)
        .try_init();
}

/// `NO_COLOR` set to anything but the empty string turns colour off (<https://no-color.org>).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

fn default_level(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    }
}

impl Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human_file_done(self))
    }
}

mod json;
#[cfg(test)]
mod tests;
