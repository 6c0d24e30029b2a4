//! What a directory send leaves out: `--exclude PATTERN` (gitignore syntax, repeatable) and,
//! unless `--no-gitignore`, the `.gitignore`, `.ignore` and `.git/info/exclude` files found
//! under the directory (also outside a git repository). Walking is the `ignore` crate's;
//! hidden files are sent like any other.

use std::fs::{FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ignore::overrides::OverrideBuilder;

/// The exclusion rules of one `send`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `--exclude` patterns.
    pub patterns: Vec<String>,
    /// Honour `.gitignore` files (not `--no-gitignore`).
    pub gitignore: bool,
}

/// One file or directory found under a directory being sent (the parts of
/// `walkdir::DirEntry` the send uses).
#[derive(Debug)]
pub struct Entry {
    path: PathBuf,
    file_type: FileType,
}

impl Entry {
    /// Its path (under the walked directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it is (symlinks are not followed).
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// Its metadata (not following symlinks).
    ///
    /// # Errors
    /// It cannot be inspected.
    pub fn metadata(&self) -> io::Result<Metadata> {
        std::fs::symlink_metadata(&self.path)
    }
}

/// Every entry under `dir` that `filter` keeps, sorted by file name within each directory.
///
/// # Errors
/// A pattern is invalid (at once); an entry cannot be read (as an item).
pub fn walk(
    dir: &Path,
    filter: &Filter,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Entry>>> {
    let mut overrides = OverrideBuilder::new(dir);
    for p in &filter.patterns {
        overrides
            .add(&format!("!{p}"))
            .with_context(|| format!("--exclude {p}: not a valid pattern"))?;
    }
    let overrides = overrides.build().context("invalid --exclude patterns")?;
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .git_ignore(filter.gitignore)
        .git_exclude(filter.gitignore)
        .ignore(filter.gitignore)
        .require_git(false)
        .parents(false)
        .follow_links(false)
        .overrides(overrides)
        .sort_by_file_name(std::ffi::OsStr::cmp)
        .build();
    let dir = dir.to_path_buf();
    Ok(walker.map(move |r| {
        let e = r.with_context(|| format!("cannot read {}", dir.display()))?;
        let file_type = e
            .file_type()
            .with_context(|| format!("cannot read {}", e.path().display()))?;
        Ok(Entry {
            path: e.into_path(),
            file_type,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path, filter: &Filter) -> Vec<String> {
        walk(dir, filter)
            .unwrap()
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn patterns_and_gitignore() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "a.txt",
            "b.o",
            "sub/c.txt",
            "sub/d.log",
            "target/x",
            ".hidden",
        ] {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        std::fs::write(t.path().join(".gitignore"), "*.log\n").unwrap();
        let all = Filter::default();
        assert_eq!(names(t.path(), &all).len(), 7);
        let f = Filter {
            patterns: vec!["*.o".into(), "target/".into()],
            gitignore: true,
        };
        assert_eq!(
            names(t.path(), &f),
            [".gitignore", ".hidden", "a.txt", "sub/c.txt"]
        );
        assert!(
            walk(
                t.path(),
                &Filter {
                    patterns: vec!["a/**[".into()],
                    gitignore: false
                }
            )
            .is_err()
        );
    }
}
