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

/// The paths that belong to one destination.
#[derive(Debug)]
pub(super) struct Names {
    pub(super) dir: PathBuf,
    pub(super) dest: PathBuf,
    pub(super) partial: PathBuf,
    pub(super) sidecar: PathBuf,
    pub(super) temp: PathBuf,
    /// Where a store-sealed file is sealed before it is published.
    pub(super) sealing: PathBuf,
    /// The store's root, held open (see `anchor`).
    pub(super) anchor: Anchor,
}

impl Names {
    pub(super) fn new(dest: PathBuf, name: &str, anchor: Anchor) -> Self {
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        Names {
            partial: dir.join(aux_name(PARTIAL, name)),
            sidecar: dir.join(aux_name(SIDECAR, name)),
            temp: dir.join(aux_name(TEMP, name)),
            sealing: dir.join(aux_name(SEALING, name)),
            dir,
            dest,
            anchor,
        }
    }

    /// Some file of the transfer would have a path longer than the OS takes (`PATH_MAX`).
    pub(super) fn too_long(&self) -> bool {
        const PATH_MAX: usize = 4096;
        [
            &self.dest,
            &self.partial,
            &self.sidecar,
            &self.temp,
            &self.sealing,
        ]
        .iter()
        .any(|p| p.as_os_str().len() >= PATH_MAX)
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
