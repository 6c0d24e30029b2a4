//! The files `send` offers for its PATH arguments: `-` (standard input), a file, or every
//! regular file under a directory (named `<dir name>/<relative path>`).
//!
//! What a directory holds besides regular files is said, not silently dropped: symbolic
//! links, FIFOs, sockets and devices are skipped with a notice each, and so are empty
//! directories (ferry sends files; an empty directory has none). A PATH that cannot be read
//! is reported and the rest is sent (exit 1 at the end, like rsync and scp). Two PATHs that
//! would land on the same name on the server are refused before anything is sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ferry_disk::{Outgoing, Source};
use proto::FileMeta;

/// What `collect` found: the files, in order, and the PATHs that could not be read.
#[derive(Default)]
pub(crate) struct Collected {
    /// The files to offer.
    pub files: Vec<Outgoing>,
    /// `(path, why)` for each PATH (or entry under it) that could not be read.
    pub missing: Vec<(PathBuf, String)>,
}

/// Collect every PATH. With `notices`, skipped entries are told through it (once per run:
/// a reconnect collects again quietly).
///
/// # Errors
/// Two PATHs map to the same name on the server (nothing is sent then), or `-` without a name.
pub(crate) fn collect_all(
    paths: &[PathBuf],
    as_name: Option<&str>,
    overwrite: bool,
    filter: &crate::exclude::Filter,
    mut notices: Option<&mut dyn FnMut(String)>,
) -> anyhow::Result<Collected> {
    let mut c = Collected::default();
    // Name on the server -> the local path it comes from.
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in paths {
        let mut found = Vec::new();
        if let Err(e) = collect(path, as_name, overwrite, filter, &mut found, &mut notices) {
            c.missing.push((path.clone(), format!("{e:#}")));
            continue;
        }
        for f in found {
            let from = match &f.source {
                Source::File(p) => p.clone(),
                _ => path.clone(),
            };
            if let Some(first) = names.get(&f.meta.path) {
                bail!(
                    "{} and {} would both be sent as {}: send them separately, or rename one \
                     (nothing was sent)",
                    first.display(),
                    from.display(),
                    f.meta.path
                );
            }
            names.insert(f.meta.path.clone(), from);
            c.files.push(f);
        }
    }
    Ok(c)
}

/// Bytes a piped standard input may hold: with the kernel's default (64 KiB) the writer and
/// ferry take turns at every 64 KiB, two context switches per chunk read.
const STDIN_PIPE_SIZE: usize = 1 << 20;

/// Enlarge the pipe behind standard input, if it is one (else, or if the kernel refuses,
/// nothing changes: only fewer wake-ups are lost).
fn widen_pipe(stdin: &std::io::Stdin) {
    use std::os::fd::AsFd;
    if let Ok(size) = rustix::pipe::fcntl_getpipe_size(stdin.as_fd())
        && size < STDIN_PIPE_SIZE
    {
        let _ = rustix::pipe::fcntl_setpipe_size(stdin.as_fd(), STDIN_PIPE_SIZE);
    }
}

fn collect(
    path: &Path,
    as_name: Option<&str>,
    overwrite: bool,
    filter: &crate::exclude::Filter,
    files: &mut Vec<Outgoing>,
    notices: &mut Option<&mut dyn FnMut(String)>,
) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let name = as_name.context("sending standard input needs --as NAME")?;
        let mut meta = FileMeta::new(name, None);
        meta.overwrite = overwrite;
        let stdin = std::io::stdin();
        widen_pipe(&stdin);
        files.push(Outgoing {
            meta,
            source: Source::Reader(Box::new(stdin)),
        });
        return Ok(());
    }
    let md = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("cannot read it: {e}"))?;
    if md.is_file() {
        let name = match as_name {
            Some(n) => n.to_string(),
            None => file_name(path)?,
        };
        files.push(Outgoing::from_file(path.to_path_buf(), &name, overwrite)?);
        return Ok(());
    }
    if !md.is_dir() {
        bail!("not a regular file or directory (ferry sends files)");
    }
    let base = path
        .canonicalize()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut notice = |msg: String| {
        if let Some(n) = notices.as_mut() {
            n(msg);
        }
    };
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    // `--exclude` and `.gitignore` rules apply here (crate::exclude).
    for entry in crate::exclude::walk(path, filter)? {
        let entry = entry?;
        let ft = entry.file_type();
        let shown = entry.path().display();
        if ft.is_dir() {
            let empty = std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none());
            if empty {
                notice(format!(
                    "skipped {shown}: an empty directory (ferry sends files only)"
                ));
            }
            continue;
        }
        if !ft.is_file() {
            let what = if ft.is_symlink() {
                "a symbolic link (not followed)"
            } else {
                special_kind(&ft)
            };
            notice(format!("skipped {shown}: {what}"));
            continue;
        }
        let rel = entry.path().strip_prefix(path)?;
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{}: name is not UTF-8", entry.path().display()))?
            .join("/");
        let name = match &base {
            Some(b) => format!("{b}/{rel}"),
            None => rel,
        };
        found.push((name, entry.path().to_path_buf()));
    }
    for (name, p) in found {
        files.push(Outgoing::from_file(p, &name, overwrite)?);
    }
    Ok(())
}

fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if ft.is_fifo() {
        "a FIFO (ferry sends regular files only)"
    } else if ft.is_socket() {
        "a socket (ferry sends regular files only)"
    } else {
        "a device (ferry sends regular files only)"
    }
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{}: no usable file name (use --as NAME)", path.display()))
}
