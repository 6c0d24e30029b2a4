//! The directories one offer created, removed again when the offer is refused or fails.

use std::fs;
use std::path::PathBuf;

/// Directories one offer created, outermost first. Dropped without [`MadeDirs::keep`] (the
/// offer was refused or failed), they are removed again, innermost first, as long as they
/// are empty: a refused deep name leaves no trail of directories.
#[derive(Debug, Default)]
pub(super) struct MadeDirs(pub(super) Vec<PathBuf>);

impl MadeDirs {
    /// The offer went ahead: the directories stay.
    pub(super) fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        for dir in self.0.drain(..).rev() {
            if let Err(e) = fs::remove_dir(&dir) {
                // Not empty: another offer is using it now, and it stays.
                tracing::debug!(path = %dir.display(), %e, "created directory kept");
                break;
            }
        }
    }
}
