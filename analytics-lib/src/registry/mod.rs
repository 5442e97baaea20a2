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
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::models::artifact::Fnv64;

mod layout;
pub use layout::{
    BEST_FILE, BestChoice, CLV_FILE, Decision, Job, PROFILE_FILE, SEGMENT_FILE, SEGMENT_JSON,
    Standing, read_spend_meta, segment_artifact, spend_artifact, spend_artifact_name,
    spend_meta_path,
};

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
    #[error("{path} is not a valid live pointer: {reason}")]
    BadPointer { path: PathBuf, reason: String },
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

/// `fnv1a64:<hex>` of a file's bytes (a regular file of at most
/// [`MAX_FILE_BYTES`]).
pub fn file_checksum(path: &Path) -> Result<String> {
    Ok(checksum(&read_regular(path, MAX_FILE_BYTES)?))
}

/// `fnv1a64:<hex>` of bytes, as manifests record them.
pub fn checksum(bytes: &[u8]) -> String {
    let mut h = Fnv64::default();
    h.write(bytes);
    format!("fnv1a64:{:016x}", h.finish())
}

/// What a file that is not a regular file is, for errors.
fn file_kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

fn check_regular(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<()> {
    let expected = || format!("a regular file of at most {limit} bytes");
    if !meta.file_type().is_file() {
        return Err(RegistryError::BadFile {
            path: path.to_path_buf(),
            expected: expected(),
            found: file_kind(meta.file_type()).to_string(),
        });
    }
    if meta.len() > limit {
        return Err(RegistryError::BadFile {
            path: path.to_path_buf(),
            expected: expected(),
            found: format!("{} bytes", meta.len()),
        });
    }
    Ok(())
}

/// Read a file of the registry: a regular file (a symbolic link, a FIFO or
/// a device is refused without blocking) of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).map_err(io(path, "reading"))?;
    check_regular(path, &meta, limit)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        // Swapped for a FIFO or a link since the check above: the open
        // neither blocks nor follows it, and the opened file is checked again.
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = opts.open(path).map_err(io(path, "opening"))?;
    let meta = file.metadata().map_err(io(path, "reading"))?;
    check_regular(path, &meta, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path, "reading"))?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::BadFile {
            path: path.to_path_buf(),
            expected: format!("a regular file of at most {limit} bytes"),
            found: "a file that grew past that while it was read".into(),
        });
    }
    Ok(bytes)
}

/// Why `name` (a manifest entry) is not a plain file name of the version
/// folder, if it is not.
fn unsafe_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an empty name".into());
    }
    if name == "." || name == ".." {
        return Some(format!("`{name}`"));
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Some("an absolute path".into());
    }
    if name.contains(['/', '\\']) {
        return Some("a path with a folder separator".into());
    }
    if name.contains('\0') {
        return Some("a name with a NUL byte".into());
    }
    if name == MANIFEST {
        return Some("the manifest itself".into());
    }
    None
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

fn fsync_dir(dir: &Path) -> Result<()> {
    // Directories can be opened read-only and fsynced on Unix; elsewhere this
    // is a no-op that may fail harmlessly.
    match std::fs::File::open(dir) {
        Ok(f) => {
            let _ = f.sync_all();
            Ok(())
        }
        Err(e) => Err(io(dir, "opening for fsync")(e)),
    }
}

/// Write all-or-nothing: temporary file beside it, fsync, rename, fsync dir.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(io(&dir, "creating"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp, "creating"))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp, "writing"))?;
        std::fs::rename(&tmp, path).map_err(io(path, "moving into place"))?;
        fsync_dir(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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
            .map_err(|e| RegistryError::BadPointer {
                path,
                reason: e.to_string(),
            })
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

/// A version being written. Dropped without [`Staging::commit`], its folder
/// is removed (a killed process leaves it for [`Registry::recover`]).
#[derive(Debug)]
pub struct Staging {
    registry: Registry,
    model: String,
    dir: PathBuf,
    committed: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stage_with(reg: &Registry, model: &str, content: &str) -> VersionInfo {
        let s = reg.stage(model).expect("stage");
        std::fs::write(s.dir().join("a.bin"), content).expect("write");
        s.commit(VersionNotes::default()).expect("commit")
    }

    #[test]
    fn version_ids_parse_and_print() {
        assert_eq!("v0003".parse::<VersionId>().expect("v0003"), VersionId(3));
        assert_eq!("12".parse::<VersionId>().expect("12"), VersionId(12));
        assert_eq!(VersionId(7).to_string(), "v0007");
        for bad in ["", "v", "x3", "v-1", "0", "v0000", "3.0"] {
            let e = bad.parse::<VersionId>().expect_err(bad).to_string();
            assert!(e.contains("vNNNN"), "{e}");
        }
    }

    #[test]
    fn commit_promote_rollback_prune_recover() {
        let tmp = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(tmp.path()).expect("open");
        assert_eq!(reg.live_version("m").expect("live"), None);
        let v1 = stage_with(&reg, "m", "one");
        let v2 = stage_with(&reg, "m", "two");
        assert_eq!((v1.id, v2.id), (VersionId(1), VersionId(2)));
        assert!(reg.verify("m", v2.id).is_ok());
        reg.promote("m", v1.id).expect("promote 1");
        let p = reg.promote("m", v2.id).expect("promote 2");
        assert_eq!((p.version, p.history.clone()), (v2.id, vec![v1.id]));
        let back = reg.rollback("m").expect("rollback");
        assert_eq!(back.version, v1.id);
        assert!(matches!(
            reg.rollback("m"),
            Err(RegistryError::NoPrevious { .. })
        ));

        // A damaged file is refused at promotion; the live pointer stays.
        std::fs::write(v2.dir.join("a.bin"), "tampered").expect("write");
        let e = reg.promote("m", v2.id).expect_err("corrupt");
        assert!(matches!(e, RegistryError::Corrupt { .. }), "{e}");
        assert_eq!(reg.live_version("m").expect("live"), Some(v1.id));

        // Leftovers of a killed run are cleaned up, complete versions stay.
        let leftover = reg.model_dir("m").join(".staging-999-0");
        std::fs::create_dir_all(&leftover).expect("mkdir");
        let half = reg.model_dir("m").join("v0009");
        std::fs::create_dir_all(&half).expect("mkdir");
        std::fs::write(half.join("a.bin"), "x").expect("write");
        let removed = reg.recover().expect("recover");
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert_eq!(reg.versions("m").expect("versions").len(), 2);

        // The next version number follows the highest folder ever used.
        let v3 = stage_with(&reg, "m", "three");
        let v4 = stage_with(&reg, "m", "four");
        assert_eq!(v3.id, VersionId(3));
        reg.promote("m", v4.id).expect("promote 4");
        let removed = reg.prune("m", 1).expect("prune");
        // v1 is in the history, v4 is live: v2 and v3 go.
        assert_eq!(removed, vec![VersionId(2), VersionId(3)]);
        assert_eq!(
            reg.versions("m")
                .expect("versions")
                .iter()
                .map(|v| v.id)
                .collect::<Vec<_>>(),
            vec![VersionId(1), VersionId(4)]
        );
    }

    #[test]
    fn unknown_version_lists_what_exists() {
        let tmp = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(tmp.path()).expect("open");
        stage_with(&reg, "m", "one");
        let e = reg.promote("m", VersionId(5)).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "m has no version v0005; complete versions: v0001"
        );
    }

    #[test]
    fn dropped_staging_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(tmp.path()).expect("open");
        {
            let s = reg.stage("m").expect("stage");
            std::fs::write(s.dir().join("a.bin"), "x").expect("write");
        }
        let left: Vec<_> = std::fs::read_dir(reg.model_dir("m"))
            .expect("read")
            .collect();
        assert!(left.is_empty());
    }

    /// Replace the manifest's file list of `v` (as a hand-edited or hostile
    /// registry would).
    fn set_manifest_files(v: &VersionInfo, files: &[(&str, String)]) {
        let mut m = Registry::read_manifest(&v.dir).expect("manifest");
        m.files = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect();
        std::fs::write(
            v.dir.join(MANIFEST),
            serde_json::to_vec(&m).expect("encode"),
        )
        .expect("write manifest");
    }

    /// `f` on another thread, failing the test if it blocks for 20 s (a
    /// FIFO opened for reading blocks until a writer comes).
    fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("the registry blocked on a file")
    }

    #[test]
    fn a_malicious_manifest_is_refused_before_reading_elsewhere() {
        let tmp = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(tmp.path()).expect("open");
        let v = stage_with(&reg, "m", "model");
        let secret = tmp.path().join("m").join("secret");
        std::fs::write(&secret, "secret").expect("write");
        let sum = checksum(b"secret");
        for (name, why) in [
            ("../secret", "a path with a folder separator"),
            ("/etc/passwd", "an absolute path"),
            ("..", "`..`"),
            ("", "an empty name"),
            ("sub/a.bin", "a path with a folder separator"),
            (MANIFEST, "the manifest itself"),
        ] {
            set_manifest_files(&v, &[("a.bin", checksum(b"model")), (name, sum.clone())]);
            let e = reg.verify("m", v.id).expect_err(name);
            assert!(
                matches!(&e, RegistryError::BadEntry { name: n, reason, .. } if n == name && reason == why),
                "{name}: {e}"
            );
            assert!(e.to_string().contains("expected a plain file name"), "{e}");
            assert!(reg.promote("m", v.id).is_err(), "{name}: promoted");
            assert!(reg.read_verified("m", v.id).is_err(), "{name}: read");
        }
        assert_eq!(reg.live_version("m").expect("live"), None);
    }

    #[cfg(unix)]
    #[test]
    fn links_fifos_and_oversized_files_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(tmp.path()).expect("open");
        let v = stage_with(&reg, "m", "model");
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "secret").expect("write");

        // A symbolic link to a file elsewhere, with that file's checksum.
        std::os::unix::fs::symlink(&outside, v.dir.join("link")).expect("symlink");
        set_manifest_files(&v, &[("link", checksum(b"secret"))]);
        let e = reg.verify("m", v.id).expect_err("link");
        assert!(e.to_string().contains("found a symbolic link"), "{e}");

        // A FIFO: refused at once, never opened for a blocking read.
        let status = std::process::Command::new("mkfifo")
            .arg(v.dir.join("pipe"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
        set_manifest_files(&v, &[("pipe", checksum(b""))]);
        let (reg2, id) = (reg.clone(), v.id);
        let e = within_20s(move || reg2.verify("m", id)).expect_err("fifo");
        assert!(e.to_string().contains("named pipe (FIFO)"), "{e}");

        // A file over the size bound (sparse: nothing is written), refused
        // before it is read.
        let huge = std::fs::File::create(v.dir.join("huge")).expect("create");
        huge.set_len(MAX_FILE_BYTES + 1).expect("set_len");
        set_manifest_files(&v, &[("huge", checksum(b""))]);
        let e = reg.verify("m", v.id).expect_err("huge");
        assert!(
            e.to_string()
                .contains(&format!("found {} bytes", MAX_FILE_BYTES + 1)),
            "{e}"
        );

        // A FIFO as the live pointer or the manifest does not hang readers either.
        std::process::Command::new("mkfifo")
            .arg(reg.live_pointer_path("m"))
            .status()
            .expect("mkfifo");
        let reg2 = reg.clone();
        let e = within_20s(move || reg2.live("m")).expect_err("fifo pointer");
        assert!(e.to_string().contains("named pipe"), "{e}");
        std::fs::remove_file(v.dir.join(MANIFEST)).expect("rm");
        std::process::Command::new("mkfifo")
            .arg(v.dir.join(MANIFEST))
            .status()
            .expect("mkfifo");
        let reg2 = reg.clone();
        let versions = within_20s(move || reg2.versions("m")).expect("versions");
        assert!(versions.is_empty(), "a FIFO manifest is no version");
    }

    #[test]
    fn read_verified_hands_out_the_bytes_it_hashed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let reg = Registry::open(tmp.path()).expect("open");
        let v = stage_with(&reg, "m", "model bytes");
        let read = reg.read_verified("m", v.id).expect("verified");
        assert_eq!(read.bytes("a.bin").expect("a.bin"), b"model bytes");
        // Changing the file afterwards changes nothing that was read; the
        // next read refuses it.
        std::fs::write(v.dir.join("a.bin"), "other bytes").expect("write");
        assert_eq!(read.bytes("a.bin").expect("a.bin"), b"model bytes");
        assert!(matches!(
            reg.read_verified("m", v.id),
            Err(RegistryError::Corrupt { .. })
        ));
        let e = read.bytes("b.bin").expect_err("not listed").to_string();
        assert!(
            e.contains("b.bin is not listed") && e.contains("a.bin"),
            "{e}"
        );
    }
}
