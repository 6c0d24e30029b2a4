//! Partials left behind: listing them, and removing those past an age or beyond a total size.
//!
//! A partial is every store-made file for one destination: `.ferry-part.NAME` with its
//! `.ferry-info.`, `.ferry-tmp.` and `.ferry-seal.` companions (or the `-<hex>` forms of long
//! names), any of them alone counting too. Its age is the time since the newest of them was
//! modified; its size, their bytes together. A partial whose destination is claimed (being
//! received right now, or staged for a grouped commit) is listed but never removed: the
//! claim is checked, and the files removed, under the lock that claims are taken with.
//!
//! The sweep runs when a server starts and then, at most once per [`SWEEP_EVERY`], when a file
//! is received, on a short-lived thread of its own (it walks the whole root: never on an
//! event loop).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use walkdir::WalkDir;

use super::incoming::Sidecar;
use super::names::{PARTIAL, aux_name};
use super::{FsStore, relative};
use crate::path;

/// Sweeps run at most this often (apart from the one at start).
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The kinds of store-made files, without the leading `.ferry-`.
const KINDS: [&str; 4] = ["part", "info", "tmp", "seal"];

/// When partials are removed. The default removes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartialsPolicy {
    /// Remove partials not written for longer than this.
    pub max_age: Option<Duration>,
    /// Remove the oldest partials while all of them together hold more bytes than this.
    pub max_bytes: Option<u64>,
}

impl PartialsPolicy {
    fn removes_anything(&self) -> bool {
        self.max_age.is_some() || self.max_bytes.is_some()
    }
}

/// One partial: what [`FsStore::partials`] lists and a sweep removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialInfo {
    /// The destination it is for, relative to the root (the partial's own name when a long
    /// name's sidecar is missing).
    pub name: String,
    /// Bytes held by its files together.
    pub bytes: u64,
    /// Time since its newest file was modified.
    pub age: Duration,
    /// Being received right now (never removed).
    pub claimed: bool,
}

/// A store's sweep settings and state.
#[derive(Debug, Default)]
pub(super) struct Housekeeping {
    pub(super) policy: PartialsPolicy,
    /// When the last sweep started (`None`: none yet).
    last: Mutex<Option<Instant>>,
    /// A sweep thread is running.
    running: Arc<AtomicBool>,
}

impl Housekeeping {
    pub(super) fn new(policy: PartialsPolicy) -> Self {
        Housekeeping {
            policy,
            ..Housekeeping::default()
        }
    }

    #[cfg(test)]
    pub(super) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// The files of one partial, found in one directory.
#[derive(Debug)]
struct Group {
    dir: PathBuf,
    /// What follows `.ferry-<kind>` in each name: `.NAME` or `-<hex>`.
    suffix: String,
    files: Vec<PathBuf>,
    bytes: u64,
    newest: SystemTime,
    /// A regular sidecar, for the real name of a hashed partial.
    sidecar: Option<PathBuf>,
}

impl FsStore {
    /// Remove partials according to `policy` (see [`PartialsPolicy`]); the default removes
    /// none.
    pub fn expire_partials(self, policy: PartialsPolicy) -> Self {
        self.configure(|s| s.housekeeping = Housekeeping::new(policy))
    }

    /// Every partial under the root, oldest first.
    ///
    /// # Errors
    /// The root cannot be read.
    pub fn partials(&self) -> io::Result<Vec<PartialInfo>> {
        self.partials_at(SystemTime::now())
    }

    /// Apply the policy now, on this thread; returns what was removed.
    ///
    /// # Errors
    /// The root cannot be read (files that cannot be removed are logged and skipped).
    pub fn sweep_partials(&self) -> io::Result<Vec<PartialInfo>> {
        self.sweep_at(SystemTime::now())
    }

    /// Start a sweep on a thread of its own unless one ran within the last minute (`SWEEP_EVERY`) or is
    /// running, or the policy removes nothing. Cheap: called for every received file.
    pub fn sweep_partials_soon(&self) {
        let hk = &self.shared.housekeeping;
        if !hk.policy.removes_anything() {
            return;
        }
        {
            let mut last = hk.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < SWEEP_EVERY)
                || hk.running.swap(true, Ordering::AcqRel)
            {
                return;
            }
            *last = Some(Instant::now());
        }
        let store = self.clone();
        let running = Arc::clone(&hk.running);
        let spawned = std::thread::Builder::new()
            .name("ferry-sweep".into())
            .spawn(move || {
                if let Err(e) = store.sweep_partials() {
                    tracing::warn!(%e, "cannot sweep partials");
                }
                running.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::warn!(%e, "cannot start a sweep of partials");
            hk.running.store(false, Ordering::Release);
        }
    }

    pub(super) fn partials_at(&self, now: SystemTime) -> io::Result<Vec<PartialInfo>> {
        let groups = self.groups()?;
        let claimed = claimed_suffixes();
        Ok(groups
            .iter()
            .map(|g| self.info(g, now, claimed.contains(&(g.dir.clone(), g.suffix.clone()))))
            .collect())
    }

    pub(super) fn sweep_at(&self, now: SystemTime) -> io::Result<Vec<PartialInfo>> {
        let policy = self.shared.housekeeping.policy;
        let mut removed = Vec::new();
        if !policy.removes_anything() {
            return Ok(removed);
        }
        let groups = self.groups()?;
        let mut total: u64 = groups.iter().map(|g| g.bytes).sum();
        for g in &groups {
            let info = self.info(g, now, false);
            let too_old = policy.max_age.is_some_and(|max| info.age > max);
            let too_much = policy.max_bytes.is_some_and(|max| total > max);
            if (too_old || too_much) && self.remove(g) {
                tracing::info!(name = %info.name, bytes = info.bytes, age = ?info.age, "expired partial removed");
                total -= g.bytes;
                removed.push(info);
            }
        }
        Ok(removed)
    }

    /// Remove a group's files unless its destination is claimed; whether it was removed.
    fn remove(&self, g: &Group) -> bool {
        // Claims are taken under this lock before a partial is touched: holding it, no
        // receiver can start on this one while we remove it.
        let in_flight = super::claim::claims();
        if in_flight.keys().any(|dest| {
            suffix_of(Path::new(dest)).is_some_and(|k| k == (g.dir.clone(), g.suffix.clone()))
        }) {
            return false;
        }
        // Written to since the walk (resumed and suspended again): not expired after all.
        let touched = g.files.iter().any(|f| {
            fs::symlink_metadata(f)
                .and_then(|md| md.modified())
                .is_ok_and(|t| t > g.newest)
        });
        if touched {
            return false;
        }
        let mut all = true;
        for f in &g.files {
            if let Err(e) = fs::remove_file(f)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %f.display(), %e, "cannot remove an expired partial");
                all = false;
            }
        }
        all
    }

    fn info(&self, g: &Group, now: SystemTime, claimed: bool) -> PartialInfo {
        let dir_rel = relative(self.root(), &g.dir).unwrap_or_default();
        let join = |name: &str| match dir_rel.as_str() {
            "" => name.to_owned(),
            d => format!("{d}/{name}"),
        };
        let name = match g.suffix.strip_prefix('.') {
            Some(name) => join(name),
            None => g
                .sidecar
                .as_deref()
                .and_then(Sidecar::read)
                .filter(|s| aux_name(PARTIAL, &s.name) == format!(".ferry-part{}", g.suffix))
                .map_or_else(
                    || join(&format!(".ferry-part{}", g.suffix)),
                    |s| join(&s.name),
                ),
        };
        PartialInfo {
            name,
            bytes: g.bytes,
            age: now.duration_since(g.newest).unwrap_or_default(),
            claimed,
        }
    }

    /// Every partial's files, oldest partial first.
    fn groups(&self) -> io::Result<Vec<Group>> {
        let root = self.root();
        let mut groups: BTreeMap<(PathBuf, String), Group> = BTreeMap::new();
        let walk = WalkDir::new(root)
            .follow_links(false)
            .min_depth(1)
            .into_iter()
            // Directories with reserved names are nobody's partial: not entered.
            .filter_entry(|e| {
                !e.file_type().is_dir()
                    || e.file_name().to_str().is_none_or(|n| !path::is_reserved(n))
            });
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.depth() == 0 => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(%e, "skipped while looking for partials");
                    continue;
                }
            };
            if entry.file_type().is_dir() {
                continue;
            }
            let Some((kind, suffix)) = entry.file_name().to_str().and_then(parse) else {
                continue;
            };
            let Ok(md) = entry.metadata() else { continue };
            let dir = entry.path().parent().unwrap_or(root).to_path_buf();
            let g = groups
                .entry((dir.clone(), suffix.to_owned()))
                .or_insert_with(|| Group {
                    dir,
                    suffix: suffix.to_owned(),
                    files: Vec::new(),
                    bytes: 0,
                    newest: SystemTime::UNIX_EPOCH,
                    sidecar: None,
                });
            if md.is_file() {
                g.bytes += md.len();
                if kind == "info" {
                    g.sidecar = Some(entry.path().to_path_buf());
                }
            }
            g.newest = g
                .newest
                .max(md.modified().unwrap_or(SystemTime::UNIX_EPOCH));
            g.files.push(entry.into_path());
        }
        let mut groups: Vec<Group> = groups.into_values().collect();
        groups.sort_by_key(|g| g.newest);
        Ok(groups)
    }
}

/// `.ferry-<kind><suffix>` as (kind, suffix), the suffix being `.NAME` or `-<hex>`.
fn parse(name: &str) -> Option<(&'static str, &str)> {
    let rest = name.strip_prefix(path::RESERVED_PREFIX)?;
    KINDS.iter().find_map(|&kind| {
        let suffix = rest.strip_prefix(kind)?;
        let valid = match suffix.strip_prefix('-') {
            Some(hex) => hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            None => suffix.len() > 1 && suffix.starts_with('.'),
        };
        valid.then_some((kind, suffix))
    })
}

/// The (directory, suffix) of a destination's partial.
fn suffix_of(dest: &Path) -> Option<(PathBuf, String)> {
    let name = dest.file_name()?.to_str()?;
    let partial = aux_name(PARTIAL, name);
    let suffix = partial.strip_prefix(".ferry-part")?.to_owned();
    Some((dest.parent()?.to_path_buf(), suffix))
}

/// The partials being received now, as (directory, suffix).
fn claimed_suffixes() -> Vec<(PathBuf, String)> {
    super::claim::claims()
        .keys()
        .filter_map(|d| suffix_of(Path::new(d)))
        .collect()
}
