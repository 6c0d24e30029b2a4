//! The names a transfer uses next to its destination (partial, sidecar, temporary, sealing),
//! all starting with [`RESERVED_PREFIX`](crate::path::RESERVED_PREFIX); see the module docs of
//! [`fs`](super).

use std::path::{Path, PathBuf};

use super::anchor::Anchor;
use crate::path::MAX_COMPONENT_LEN;

/// Prefix of a partial file.
pub(super) const PARTIAL: &str = ".ferry-part.";
/// Prefix of a partial's sidecar.
pub(super) const SIDECAR: &str = ".ferry-info.";
/// Prefix of a sidecar being written.
pub(super) const TEMP: &str = ".ferry-tmp.";
/// Prefix of a file being sealed for publication (store-sealed servers).
pub(super) const SEALING: &str = ".ferry-seal.";

/// The paths that belong to one destination. The sidecar, temporary and sealing names are
/// made when asked for: a small file never needs them (no allocations for them per file).
#[derive(Debug)]
pub(super) struct Names {
    pub(super) dir: PathBuf,
    pub(super) dest: PathBuf,
    pub(super) partial: PathBuf,
    /// The destination's file name.
    name: String,
    /// The store's root, held open (see `anchor`).
    pub(super) anchor: Anchor,
}

impl Names {
    pub(super) fn new(dest: PathBuf, name: &str, anchor: Anchor) -> Self {
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        Names {
            partial: dir.join(aux_name(PARTIAL, name)),
            name: name.to_string(),
            dir,
            dest,
            anchor,
        }
    }

    /// The partial's resume sidecar.
    pub(super) fn sidecar(&self) -> PathBuf {
        self.dir.join(aux_name(SIDECAR, &self.name))
    }

    /// Where a new sidecar is written before it replaces the old one.
    pub(super) fn temp(&self) -> PathBuf {
        self.dir.join(aux_name(TEMP, &self.name))
    }

    /// Where a store-sealed file is sealed before it is published.
    pub(super) fn sealing(&self) -> PathBuf {
        self.dir.join(aux_name(SEALING, &self.name))
    }

    /// Some file of the transfer would have a path longer than the OS takes (`PATH_MAX`).
    pub(super) fn too_long(&self) -> bool {
        const PATH_MAX: usize = 4096;
        let dir = self.dir.as_os_str().len();
        let joined = |prefix: &str| match dir {
            0 => aux_len(prefix, &self.name),
            _ => {
                dir + usize::from(!self.dir.as_os_str().as_encoded_bytes().ends_with(b"/"))
                    + aux_len(prefix, &self.name)
            }
        };
        self.dest.as_os_str().len() >= PATH_MAX
            || [PARTIAL, SIDECAR, TEMP, SEALING]
                .iter()
                .any(|p| joined(p) >= PATH_MAX)
    }
}

/// The length of [`aux_name`]`(prefix, name)`.
fn aux_len(prefix: &str, name: &str) -> usize {
    if prefix.len() + name.len() <= MAX_COMPONENT_LEN {
        prefix.len() + name.len()
    } else {
        prefix.len() + 32
    }
}

/// `<prefix><name>`, or `<prefix without its dot>-<hex>` when that would be too long a name.
pub(super) fn aux_name(prefix: &str, name: &str) -> String {
    if prefix.len() + name.len() <= MAX_COMPONENT_LEN {
        return format!("{prefix}{name}");
    }
    let hash = proto::hash(name.as_bytes());
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", prefix.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names made on demand are the ones the transfer uses, and `too_long` (computed from
    /// lengths, without making them) agrees with their real lengths around `PATH_MAX`.
    #[test]
    fn names_on_demand_and_their_lengths() {
        let tmp = tempfile::tempdir().unwrap();
        let anchor = Anchor::open(tmp.path()).unwrap();
        let n = Names::new(tmp.path().join("d/f"), "f", anchor.clone());
        assert_eq!(n.sidecar(), tmp.path().join("d/.ferry-info.f"));
        assert_eq!(n.temp(), tmp.path().join("d/.ferry-tmp.f"));
        assert_eq!(n.sealing(), tmp.path().join("d/.ferry-seal.f"));
        assert_eq!(n.partial, tmp.path().join("d/.ferry-part.f"));
        for name_len in [1, 200, MAX_COMPONENT_LEN - 11, MAX_COMPONENT_LEN] {
            let name = "n".repeat(name_len);
            for depth in 0..40 {
                let dir: PathBuf = std::iter::repeat_n("x".repeat(100), depth).collect();
                let dest = Path::new("/r").join(dir).join(&name);
                let n = Names::new(dest, &name, anchor.clone());
                let real = [
                    n.dest.clone(),
                    n.partial.clone(),
                    n.sidecar(),
                    n.temp(),
                    n.sealing(),
                ]
                .iter()
                .any(|p| p.as_os_str().len() >= 4096);
                assert_eq!(n.too_long(), real, "name {name_len}, depth {depth}");
            }
        }
    }
}
