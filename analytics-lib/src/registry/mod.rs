//! The model registry: versioned model folders and a live pointer per model.
//!
//! ```text
//! models/
//!   customer_spend/
//!     v0001/  linear.msgpack linear.json … best.json manifest.json  (layout.rs: every file name)
//!     v0002/  …
//!     live.json        {"version": "v0002", "history": ["v0001"], "updated_at": "…"}
//!   segments/
//!     v0001/  segments.msgpack segments.json manifest.json
//!     live.json
//! ```
//!
//! Rules that keep it consistent whatever happens (a process killed with
//! SIGKILL at any instruction included):
//!
//! * A version is written in a staging folder (`.staging-<pid>-<n>`) of the
//!   model's folder; its `manifest.json` (with a checksum of every file) is
//!   written and fsynced last; then the folder is renamed to `vNNNN` in one
//!   atomic step. A `vNNNN` folder without a readable manifest is therefore
//!   never produced by us; if one is found (copied by hand, disk error) it is
//!   *incomplete*: never listed, never promoted, removed by [`Registry::recover`].
//! * The live pointer `live.json` is replaced atomically (temporary file,
//!   fsync, rename, fsync of the folder), and only after the version it names
//!   has been verified against its manifest. A reader sees the old pointer or
//!   the new one, never a mix.
//! * [`Registry::recover`] removes staging leftovers and incomplete version
//!   folders: the next run of a killed job starts clean.
//! * Nothing removes the live version or the versions in its history
//!   ([`Registry::prune`] first trims that history to the kept count).
//! * Reading never trusts the folder: a manifest entry must be a plain file
//!   name (no `/`, `..` or absolute path), every file read must be a regular
//!   file (not a symbolic link, a FIFO or a device: opened non-blocking, so
//!   a FIFO cannot hang a reader) of bounded size ([`MAX_FILE_BYTES`],
//!   [`MAX_JSON_BYTES`]), and [`Registry::read_verified`] hands out the very
//!   bytes it hashed, so that what is decoded is what was checked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::models::artifact::Fnv64;

mod files;
mod layout;
mod staging;
pub use files::{checksum, file_checksum, read_regular, write_file_atomic};
use files::{fsync_dir, unsafe_name};
pub use layout::{
    BEST_FILE, BestChoice, CLV_FILE, Decision, Job, PROFILE_FILE, SEGMENT_FILE, SEGMENT_JSON,
    Standing, read_spend_meta, segment_artifact, spend_artifact, spend_artifact_name,
    spend_meta_path,
};
pub use staging::Staging;

/// The customer-spend regression family.
pub const SPEND: &str = "customer_spend";
/// The customer segmentation model.
pub const SEGMENTS: &str = "segments";
/// Written last in every version folder.
pub const MANIFEST: &str = "manifest.json";
/// The live pointer of a model.
pub const LIVE: &str = "live.json";
const STAGING_PREFIX: &str = ".staging-";
/// Largest file of a version (a model artifact, its metadata): anything
/// bigger is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Largest manifest or live pointer.
pub const MAX_JSON_BYTES: u64 = 4 * 1024 * 1024;

/// Errors of the registry: every one names the path or the model it is about.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{action} {path}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{model} has no version {version}; complete versions: {available}")]
    NoSuchVersion {
        model: String,
        version: String,
        available: String,
    },
    #[error("invalid version {found:?}: expected `vNNNN` or a number, e.g. v0003 or 3")]
    BadVersion { found: String },
    #[error("{path} is not a complete model version: {reason}")]
    Incomplete { path: PathBuf, reason: String },
    #[error(
        "{path} does not match its manifest: expected {expected}, found {found} (the file was changed or damaged after it was saved)"
    )]
    Corrupt {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: expected {expected}, found {found}")]
    BadFile {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error(
        "the manifest of {path} lists {name:?}: expected a plain file name of the version folder, found {reason}"
    )]
    BadEntry {
        path: PathBuf,
        name: String,
        reason: String,
    },
    #[error("{path} is not a valid live pointer: {cause}")]
    BadPointer {
        path: PathBuf,
        #[source]
        cause: serde_json::Error,
    },
    #[error("{model} has no live version yet (run `analytics train` or `analytics retrain`)")]
    NoLive { model: String },
    #[error("{model} has no previous version to roll back to (live: {live}; the history is empty)")]
    NoPrevious { model: String, live: String },
}

pub type Result<T> = std::result::Result<T, RegistryError>;

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| RegistryError::Io {
        path,
        action,
        source,
    }
}

/// A version number, shown and stored as `v0003`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(pub u32);

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{:04}", self.0)
    }
}

impl FromStr for VersionId {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let digits = t
            .strip_prefix('v')
            .or_else(|| t.strip_prefix('V'))
            .unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RegistryError::BadVersion { found: s.into() });
        }
        digits
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .map(VersionId)
            .ok_or_else(|| RegistryError::BadVersion { found: s.into() })
    }
}

impl Serialize for VersionId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a version folder says about itself; written last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub model: String,
    pub version: VersionId,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub code_version: String,
    /// Every file of the version (but the manifest) → `fnv1a64:<hex>`.
    pub files: BTreeMap<String, String>,
    /// Fingerprint of the data the version was trained on.
    #[serde(default)]
    pub data_fingerprint: Option<String>,
    /// Free-form: metrics by split, the chosen model, hyperparameters, the
    /// job that made it (`train`, `retrain`), …
    #[serde(default)]
    pub info: serde_json::Value,
}

/// What the caller adds to the manifest when committing a version.
#[derive(Clone, Debug, Default)]
pub struct VersionNotes {
    pub data_fingerprint: Option<String>,
    pub info: serde_json::Value,
}

/// The live pointer: the live version and the ones live before it (oldest
/// first), for rollbacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivePointer {
    pub version: VersionId,
    #[serde(default)]
    pub history: Vec<VersionId>,
    pub updated_at: String,
}

/// A complete version.
#[derive(Clone, Debug)]
pub struct VersionInfo {
    pub id: VersionId,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// The registry rooted at a models folder.
#[derive(Clone, Debug)]
pub struct Registry {
    root: PathBuf,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A version whose files were read once, each checked against the
/// manifest's checksum: decode from [`VerifiedVersion::bytes`], the very
/// bytes that were hashed (a file replaced after the check cannot slip in).
#[derive(Clone, Debug)]
pub struct VerifiedVersion {
    pub info: VersionInfo,
    files: BTreeMap<String, Vec<u8>>,
}

impl VerifiedVersion {
    /// The checked bytes of the version's file `name`.
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| RegistryError::Incomplete {
                path: self.info.dir.clone(),
                reason: format!(
                    "{name} is not listed in its manifest (files: {})",
                    self.files.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
    }

    /// Where `name` is, to name it in errors.
    pub fn path(&self, name: &str) -> PathBuf {
        self.info.dir.join(name)
    }
}

fn version_dir_id(name: &str) -> Option<VersionId> {
    let digits = name.strip_prefix('v')?;
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0).map(VersionId)
}

impl Registry {
    /// The registry at `root` (usually `models/`). Touches nothing on disk;
    /// fails only when `root` exists and is not a folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if root.exists() && !root.is_dir() {
            return Err(RegistryError::Io {
                source: std::io::Error::other("expected a folder, found a file"),
                path: root,
                action: "opening the models folder",
            });
        }
        Ok(Registry { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<model>`.
    pub fn model_dir(&self, model: &str) -> PathBuf {
        self.root.join(model)
    }

    /// `<root>/<model>/live.json`: watch it to follow promotions.
    pub fn live_pointer_path(&self, model: &str) -> PathBuf {
        self.model_dir(model).join(LIVE)
    }

    /// The models that have a folder in the registry, sorted.
    pub fn models(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&self.root, "listing")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&self.root, "listing"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            out.push(name);
        }
        out.sort();
        Ok(out)
    }

    /// Every `vNNNN` folder of a model, complete or not, sorted by number.
    fn version_dirs(&self, model: &str) -> Result<Vec<(VersionId, PathBuf)>> {
        let dir = self.model_dir(model);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&dir, "listing")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&dir, "listing"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = version_dir_id(&name)
                && entry.path().is_dir()
            {
                out.push((id, entry.path()));
            }
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    fn read_manifest(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes = read_regular(&path, MAX_JSON_BYTES).map_err(|e| RegistryError::Incomplete {
            path: dir.to_path_buf(),
            reason: format!("cannot read {MANIFEST}: {e}"),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Incomplete {
            path: dir.to_path_buf(),
            reason: format!("{MANIFEST} is not a valid manifest: {e}"),
        })
    }

    /// The complete versions of a model, oldest first.
    pub fn versions(&self, model: &str) -> Result<Vec<VersionInfo>> {
        Ok(self
            .version_dirs(model)?
            .into_iter()
            .filter_map(|(id, dir)| {
                let manifest = Self::read_manifest(&dir).ok()?;
                (manifest.version == id).then_some(VersionInfo { id, dir, manifest })
            })
            .collect())
    }

    /// One complete version.
    pub fn version(&self, model: &str, id: VersionId) -> Result<VersionInfo> {
        let dir = self.model_dir(model).join(id.to_string());
        if !dir.is_dir() {
            let available = self
                .versions(model)?
                .iter()
                .map(|v| v.id.to_string())
                .collect::<Vec<_>>();
            return Err(RegistryError::NoSuchVersion {
                model: model.into(),
                version: id.to_string(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            });
        }
        let manifest = Self::read_manifest(&dir)?;
        if manifest.version != id {
            return Err(RegistryError::Incomplete {
                path: dir,
                reason: format!("its manifest names {}", manifest.version),
            });
        }
        Ok(VersionInfo { id, dir, manifest })
    }

    /// Check every file of a version against its manifest's checksums.
    pub fn verify(&self, model: &str, id: VersionId) -> Result<VersionInfo> {
        let info = self.version(model, id)?;
        Self::check_files(&info, |_, _| {})?;
        Ok(info)
    }

    /// [`Registry::verify`], keeping the bytes that were checked: decode
    /// the version's files from [`VerifiedVersion::bytes`], never by
    /// reading them again.
    pub fn read_verified(&self, model: &str, id: VersionId) -> Result<VerifiedVersion> {
        let info = self.version(model, id)?;
        let mut files = BTreeMap::new();
        Self::check_files(&info, |name, bytes| {
            files.insert(name.to_string(), bytes);
        })?;
        Ok(VerifiedVersion { info, files })
    }

    /// Read each file the manifest lists (plain names, regular files of
    /// bounded size), check its checksum and hand it to `keep`.
    fn check_files(info: &VersionInfo, mut keep: impl FnMut(&str, Vec<u8>)) -> Result<()> {
        if info.manifest.files.is_empty() {
            return Err(RegistryError::Incomplete {
                path: info.dir.clone(),
                reason: "its manifest lists no files".into(),
            });
        }
        // Every name first: a bad entry is refused before any file is read.
        for name in info.manifest.files.keys() {
            if let Some(reason) = unsafe_name(name) {
                return Err(RegistryError::BadEntry {
                    path: info.dir.clone(),
                    name: name.chars().take(200).collect(),
                    reason,
                });
            }
        }
        for (name, expected) in &info.manifest.files {
            let path = info.dir.join(name);
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(RegistryError::Incomplete {
                        path: info.dir.clone(),
                        reason: format!("{name} is listed in the manifest but missing"),
                    });
                }
                _ => {}
            }
            let bytes = read_regular(&path, MAX_FILE_BYTES)?;
            let found = checksum(&bytes);
            if &found != expected {
                return Err(RegistryError::Corrupt {
                    path,
                    expected: expected.clone(),
                    found,
                });
            }
            keep(name, bytes);
        }
        Ok(())
    }

    /// The live pointer, if the model has one.
    pub fn live(&self, model: &str) -> Result<Option<LivePointer>> {
        let path = self.live_pointer_path(model);
        let bytes = match read_regular(&path, MAX_JSON_BYTES) {
            Ok(b) => b,
            Err(RegistryError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RegistryError::BadPointer { path, cause: e })
    }

    pub fn live_version(&self, model: &str) -> Result<Option<VersionId>> {
        Ok(self.live(model)?.map(|p| p.version))
    }

    /// The live version's folder.
    pub fn live_dir(&self, model: &str) -> Result<Option<PathBuf>> {
        Ok(self
            .live_version(model)?
            .map(|v| self.model_dir(model).join(v.to_string())))
    }

    /// Start writing a new version: write its files into
    /// [`Staging::dir`], then [`Staging::commit`].
    pub fn stage(&self, model: &str) -> Result<Staging> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let model_dir = self.model_dir(model);
        std::fs::create_dir_all(&model_dir).map_err(io(&model_dir, "creating"))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = model_dir.join(format!("{STAGING_PREFIX}{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir, "removing an old staging folder"))?;
        }
        std::fs::create_dir(&dir).map_err(io(&dir, "creating"))?;
        Ok(Staging {
            registry: self.clone(),
            model: model.into(),
            dir,
            committed: false,
        })
    }

    fn write_pointer(&self, model: &str, pointer: &LivePointer) -> Result<()> {
        let path = self.live_pointer_path(model);
        let mut bytes = serde_json::to_vec_pretty(pointer).map_err(|e| RegistryError::Io {
            path: path.clone(),
            action: "encoding",
            source: std::io::Error::other(e),
        })?;
        bytes.push(b'\n');
        write_file_atomic(&path, &bytes)
    }

    /// Make `id` the live version (after verifying it); the previous live
    /// version goes to the history. Promoting the live version is a no-op.
    pub fn promote(&self, model: &str, id: VersionId) -> Result<LivePointer> {
        self.verify(model, id)?;
        let pointer = match self.live(model)? {
            Some(p) if p.version == id => return Ok(p),
            Some(mut p) => {
                p.history.retain(|v| *v != id);
                p.history.push(p.version);
                p.version = id;
                p.updated_at = now_rfc3339();
                p
            }
            None => LivePointer {
                version: id,
                history: Vec::new(),
                updated_at: now_rfc3339(),
            },
        };
        self.write_pointer(model, &pointer)?;
        Ok(pointer)
    }

    /// Make the version live before the current one live again (skipping
    /// history entries that no longer verify).
    pub fn rollback(&self, model: &str) -> Result<LivePointer> {
        let Some(mut pointer) = self.live(model)? else {
            return Err(RegistryError::NoLive {
                model: model.into(),
            });
        };
        let live = pointer.version;
        while let Some(prev) = pointer.history.pop() {
            if self.verify(model, prev).is_ok() {
                pointer.version = prev;
                pointer.updated_at = now_rfc3339();
                self.write_pointer(model, &pointer)?;
                return Ok(pointer);
            }
        }
        Err(RegistryError::NoPrevious {
            model: model.into(),
            live: live.to_string(),
        })
    }

    /// Remove what a killed job left behind: staging folders, incomplete
    /// version folders and temporary pointer files, in every model. Returns
    /// what was removed. Never touches a complete version. Call it when no
    /// other job writes into the registry (the retrain job holds its lock).
    pub fn recover(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for model in self.models()? {
            let dir = self.model_dir(&model);
            let entries = std::fs::read_dir(&dir).map_err(io(&dir, "listing"))?;
            for entry in entries {
                let entry = entry.map_err(io(&dir, "listing"))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                let stale_tmp = name.starts_with('.') && name.ends_with(".tmp");
                if name.starts_with(STAGING_PREFIX) && path.is_dir() {
                    std::fs::remove_dir_all(&path).map_err(io(&path, "removing"))?;
                    removed.push(path);
                } else if stale_tmp && path.is_file() {
                    std::fs::remove_file(&path).map_err(io(&path, "removing"))?;
                    removed.push(path);
                } else if let Some(id) = version_dir_id(&name)
                    && path.is_dir()
                    && Self::read_manifest(&path).is_err()
                {
                    // Never the live one: a live pointer only ever names a
                    // verified version, but be safe if it was edited by hand.
                    if self.live_version(&model).ok().flatten() != Some(id) {
                        std::fs::remove_dir_all(&path).map_err(io(&path, "removing"))?;
                        removed.push(path);
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Keep the newest `keep` versions of a model (at least one), plus the
    /// live one and its history; remove the others. Returns the removed ids.
    /// The history is first trimmed to its newest `keep` entries (the
    /// pointer is rewritten atomically), so that a job that promotes every
    /// time still keeps a bounded number of versions.
    pub fn prune(&self, model: &str, keep: usize) -> Result<Vec<VersionId>> {
        let keep = keep.max(1);
        let mut pointer = self.live(model)?;
        if let Some(p) = pointer.as_mut()
            && p.history.len() > keep
        {
            p.history.drain(..p.history.len() - keep);
            self.write_pointer(model, p)?;
        }
        let protected: Vec<VersionId> = pointer
            .map(|p| std::iter::once(p.version).chain(p.history).collect())
            .unwrap_or_default();
        let versions = self.versions(model)?;
        let n = versions.len();
        let mut removed = Vec::new();
        for (i, v) in versions.into_iter().enumerate() {
            if i + keep >= n || protected.contains(&v.id) {
                continue;
            }
            // Rename out of the way first so that a kill mid-removal leaves
            // no half-deleted folder under a version name.
            let trash = self
                .model_dir(model)
                .join(format!("{STAGING_PREFIX}prune-{}", v.id));
            std::fs::rename(&v.dir, &trash).map_err(io(&v.dir, "moving aside"))?;
            std::fs::remove_dir_all(&trash).map_err(io(&trash, "removing"))?;
            removed.push(v.id);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests;
