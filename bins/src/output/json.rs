//! The outputs only `--json` has (or that differ by mode): free-form objects, the summary
//! object and its counters, JSON-only errors.

use std::fmt::Display;

use serde::Serialize;

use super::{ErrorEvent, Output, escape_line, json_line};

impl Output {
    /// With `--json`, one object on a line of stdout (nothing otherwise).
    pub fn json_event(&self, value: &impl Serialize) {
        if self.json {
            self.emit(|out, _| json_line(out, value));
        }
    }

    /// A line of stdout in human mode (nothing with `--json`): the result of a command.
    pub fn human_line(&self, line: impl Display) {
        if !self.json {
            self.emit(|out, _| writeln!(out, "{}", escape_line(&line.to_string())));
        }
    }

    /// Count plan lines (`--dry-run`) in the summary.
    pub fn count_entry(&self) {
        self.stats().entries += 1;
    }

    pub(super) fn stats(&self) -> std::sync::MutexGuard<'_, crate::json::Summary> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// With `--json`, the last object of a command: counts, bytes moved, time, exit status.
    pub fn json_summary(&self, command: &str, exit_code: i32) {
        let mut s = self.stats().clone();
        s.event = "summary";
        s.command = command.to_owned();
        s.ok = exit_code == 0;
        s.exit_code = exit_code;
        s.seconds = self.started.elapsed().as_secs_f64();
        self.json_event(&s);
    }

    /// With `--json`, an error object on stdout only (the caller prints its own text).
    pub fn json_error(&self, reason: &str, msg: &str) {
        self.stats().failed += 1;
        self.json_event(&ErrorEvent {
            event: "error",
            name: None,
            reason,
            error: msg,
            transport: self.transport,
        });
    }
}
