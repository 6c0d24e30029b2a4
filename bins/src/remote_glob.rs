//! Globs in `get`: a NAME with `*`, `?` or `[...]` is matched against the server's listing
//! (shell rules: `*` and `?` do not cross `/`; `**` does), and `--dry-run` lists what a
//! `get` would fetch. The listing comes from a `List` job whose entries a [`Collect`]
//! observer keeps.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use ferry_app::agent::{Observer, Report};
use proto::ListEntry;

/// Whether `name` is a glob.
#[must_use]
pub fn is_glob(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// The directory to list for `name`: everything up to the last `/` before the first glob
/// character (empty: the whole store).
#[must_use]
pub fn list_prefix(name: &str) -> &str {
    let literal = &name[..name.find(['*', '?', '[']).unwrap_or(name.len())];
    match literal.rfind('/') {
        Some(i) => &literal[..=i],
        None => "",
    }
}

/// The entries `name` names: a glob's matches, or a plain name's file or the files under it
/// as a directory.
///
/// # Errors
/// `name` is not a valid glob.
pub fn matches<'a>(name: &str, entries: &'a [ListEntry]) -> anyhow::Result<Vec<&'a ListEntry>> {
    if is_glob(name) {
        let glob = globset::GlobBuilder::new(name)
            .literal_separator(true)
            .build()
            .with_context(|| format!("{name}: not a valid glob"))?
            .compile_matcher();
        return Ok(entries.iter().filter(|e| glob.is_match(&e.path)).collect());
    }
    let dir = format!("{}/", name.trim_end_matches('/'));
    Ok(entries
        .iter()
        .filter(|e| e.path == name || e.path.starts_with(&dir))
        .collect())
}

/// An observer that keeps listing entries and failures.
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<(Vec<ListEntry>, Vec<String>)>>);

impl Observer for Collect {
    fn report(&mut self, report: &Report) {
        let mut c = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match report {
            Report::Entry(e) => c.0.push(e.clone()),
            Report::Failed { name, problem } => c.1.push(format!("{name}: {}", problem.detail)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str) -> ListEntry {
        ListEntry {
            path: p.into(),
            size: 1,
            mtime: None,
        }
    }

    #[test]
    fn globs_and_names() {
        let all: Vec<ListEntry> = ["a.txt", "logs/x.txt", "logs/y.log", "logs/old/z.txt"]
            .into_iter()
            .map(entry)
            .collect();
        let names = |n| -> Vec<String> {
            matches(n, &all)
                .unwrap()
                .iter()
                .map(|e| e.path.clone())
                .collect()
        };
        assert_eq!(names("logs/*.txt"), ["logs/x.txt"]);
        assert_eq!(names("logs/**/*.txt"), ["logs/x.txt", "logs/old/z.txt"]);
        assert_eq!(names("*.txt"), ["a.txt"]);
        assert_eq!(
            names("logs"),
            ["logs/x.txt", "logs/y.log", "logs/old/z.txt"]
        );
        assert_eq!(names("log"), Vec::<String>::new());
        assert_eq!(list_prefix("logs/*.txt"), "logs/");
        assert_eq!(list_prefix("a/b?/c"), "a/");
        assert_eq!(list_prefix("*.txt"), "");
    }
}
