//! [`Staging`]: a version being written, renamed into place whole by
//! [`Staging::commit`] or removed when dropped.

use std::path::{Path, PathBuf};

use super::*;

/// A version being written. Dropped without [`Staging::commit`], its folder
/// is removed (a killed process leaves it for [`Registry::recover`]).
#[derive(Debug)]
pub struct Staging {
    pub(super) registry: Registry,
    pub(super) model: String,
    pub(super) dir: PathBuf,
    pub(super) committed: bool,
}

impl Staging {
    /// Where to write the version's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Seal the version: checksum every file, write the manifest last,
    /// fsync, and rename the folder to the next free `vNNNN`. The version is
    /// not live until [`Registry::promote`].
    pub fn commit(mut self, notes: VersionNotes) -> Result<VersionInfo> {
        let mut files = BTreeMap::new();
        let entries = std::fs::read_dir(&self.dir).map_err(io(&self.dir, "listing"))?;
        for entry in entries {
            let entry = entry.map_err(io(&self.dir, "listing"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            // Regular files only (a link is not followed): what verify accepts.
            let regular = entry.file_type().is_ok_and(|t| t.is_file());
            if name == MANIFEST || name.starts_with('.') || !regular {
                continue;
            }
            // Make sure the bytes are on disk before the manifest vouches for them.
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io(&path, "syncing"))?;
            files.insert(name, file_checksum(&path)?);
        }
        if files.is_empty() {
            return Err(RegistryError::Incomplete {
                path: self.dir.clone(),
                reason: "no files were written into the staging folder".into(),
            });
        }
        let model_dir = self.registry.model_dir(&self.model);
        let mut next = self
            .registry
            .version_dirs(&self.model)?
            .last()
            .map(|(id, _)| id.0 + 1)
            .unwrap_or(1);
        loop {
            let id = VersionId(next);
            let manifest = Manifest {
                model: self.model.clone(),
                version: id,
                created_at: now_rfc3339(),
                code_version: crate::models::artifact::CODE_VERSION.into(),
                files: files.clone(),
                data_fingerprint: notes.data_fingerprint.clone(),
                info: notes.info.clone(),
            };
            let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| RegistryError::Io {
                path: self.dir.join(MANIFEST),
                action: "encoding",
                source: std::io::Error::other(e),
            })?;
            write_file_atomic(&self.dir.join(MANIFEST), &bytes)?;
            let target = model_dir.join(id.to_string());
            match std::fs::rename(&self.dir, &target) {
                Ok(()) => {
                    self.committed = true;
                    fsync_dir(&model_dir)?;
                    return Ok(VersionInfo {
                        id,
                        dir: target,
                        manifest,
                    });
                }
                // Another writer took this number: take the next one.
                Err(_) if target.exists() => next += 1,
                Err(e) => return Err(io(&target, "moving the staged version into place")(e)),
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
