//! Shared state: the live models behind atomically swapped `Arc`s, the
//! serving data, and the hot-reload check.
//!
//! Both models come from the model registry (`analytics_lib::registry`):
//! `<models>/customer_spend/live.json` and `<models>/segments/live.json`
//! name the live version of each. Hot reload: every `reload_interval_ms` a
//! background task looks at each `live.json` (modification time, length,
//! inode). When one changed and names another version, that version is
//! verified against its manifest (`Registry::verify`: every file's
//! checksum), loaded completely off the request path, then swapped in with
//! one atomic store. A request holds the `Arc` it loaded, so it finishes on
//! the model it started with; no request ever sees a half-loaded model. A
//! version that fails to verify or to load is refused (logged on stderr)
//! and the live one stays; with no live model, `/ready` says why.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use analytics_lib::registry::{BestChoice, Registry, SEGMENTS, SPEND, VersionId, segment_artifact};
use arc_swap::ArcSwapOption;

use crate::configuration::Settings;
use crate::model::LiveModel;
use crate::segment_model::LiveSegments;
use crate::snapshot::Feed;

/// What a file looked like last time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileSig {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn sig(path: &Path) -> Option<FileSig> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some(FileSig {
        modified: m.modified().ok(),
        len: m.len(),
        ino,
    })
}

/// A loaded model that knows its registry version.
pub trait Versioned {
    fn version(&self) -> &str;
    /// How the logs name it (`xgboost v0003`).
    fn label(&self) -> String;
}

impl Versioned for LiveModel {
    fn version(&self) -> &str {
        &self.version
    }
    fn label(&self) -> String {
        format!("{} {}", self.kind, self.version)
    }
}

impl Versioned for LiveSegments {
    fn version(&self) -> &str {
        &self.version
    }
    fn label(&self) -> String {
        format!("{} (kmeans, k = {})", self.version, self.model.k())
    }
}

/// One model's live handle, why it is missing, and what its pointer
/// looked like at the last check.
pub struct Slot<T> {
    /// The registry's model name (`customer_spend`, `segments`).
    pub name: &'static str,
    live: ArcSwapOption<T>,
    last_error: Mutex<Option<String>>,
    seen: Mutex<Option<Option<FileSig>>>,
}

impl<T: Versioned> Slot<T> {
    fn new(name: &'static str) -> Self {
        Slot {
            name,
            live: ArcSwapOption::empty(),
            last_error: Mutex::new(None),
            seen: Mutex::new(None),
        }
    }

    /// The live model, if any (cheap: one atomic load and a refcount).
    pub fn live(&self) -> Option<Arc<T>> {
        self.live.load_full()
    }

    /// Why there is no live model (or why the last promotion was refused).
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Why there is no live model.
    pub fn not_ready_reason(&self) -> String {
        self.last_error()
            .unwrap_or_else(|| format!("{}: no model loaded yet", self.name))
    }

    /// Swap in `model` (the live model re-bound to a new data snapshot).
    fn replace(&self, model: T) {
        self.live.store(Some(Arc::new(model)));
    }

    fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    /// The hot-reload step for this model: when `pointer` changed since the
    /// last check, read it and, if it names another version than the live
    /// one, `load` that version and swap it in; keep the live one on failure.
    fn check(
        &self,
        registry: &Registry,
        load: impl FnOnce(VersionId) -> anyhow::Result<T>,
    ) -> Reload {
        let pointer = registry.live_pointer_path(self.name);
        let now = sig(&pointer);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.as_ref() == Some(&now) {
                return Reload::Unchanged;
            }
            *seen = Some(now);
        }
        let current = self.live();
        let result = (|| -> anyhow::Result<Option<T>> {
            let version = registry.live_version(self.name)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no live version in the registry ({} not found; run `analytics train` or promote a version)",
                    self.name,
                    pointer.display()
                )
            })?;
            if current
                .as_ref()
                .is_some_and(|c| c.version() == version.to_string())
            {
                return Ok(None);
            }
            registry
                .verify(self.name, version)
                .map_err(anyhow::Error::from)
                .map_err(|e| e.context(format!("{} {version} failed verification", self.name)))?;
            load(version)
                .map(Some)
                .map_err(|e| e.context(format!("{} {version} did not load", self.name)))
        })();
        match result {
            Ok(None) => Reload::Unchanged,
            Ok(Some(model)) => {
                let label = model.label();
                let version = model.version().to_string();
                self.live.store(Some(Arc::new(model)));
                self.set_error(None);
                eprintln!("serve: live {} is now {label}", self.name);
                Reload::Swapped {
                    model: self.name.to_string(),
                    version,
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                match &current {
                    Some(m) => eprintln!(
                        "serve: keeping {} {}: the new version was refused: {msg}",
                        self.name,
                        m.label()
                    ),
                    None => eprintln!("serve: no {} model loaded: {msg}", self.name),
                }
                self.set_error(Some(msg.clone()));
                Reload::Failed(msg)
            }
        }
    }
}

/// Everything the handlers share.
pub struct AppState {
    pub settings: Settings,
    pub registry: Registry,
    /// The customer-spend model (`/predict`).
    pub spend: Slot<LiveModel>,
    /// The segment model (`/segment`).
    pub segments: Slot<LiveSegments>,
    /// The data snapshot behind the lookups and the dashboard (`snapshot.rs`).
    pub feed: Feed,
}

/// What a reload check did for one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Swapped { model: String, version: String },
    Failed(String),
}

impl AppState {
    pub fn new(settings: Settings, feed: Feed) -> anyhow::Result<Self> {
        Ok(AppState {
            registry: Registry::open(&settings.models)?,
            settings,
            spend: Slot::new(SPEND),
            segments: Slot::new(SEGMENTS),
            feed,
        })
    }

    /// The live customer-spend model, if any.
    pub fn live(&self) -> Option<Arc<LiveModel>> {
        self.spend.live()
    }

    /// The live segment model, if any.
    pub fn live_segments(&self) -> Option<Arc<LiveSegments>> {
        self.segments.live()
    }

    fn load_spend(&self, version: VersionId) -> anyhow::Result<LiveModel> {
        let dir = self.registry.model_dir(SPEND).join(version.to_string());
        let path = BestChoice::read(&dir)?.artifact(&dir);
        let reuse = self.spend.live().and_then(|m| m.customers.clone());
        let snap = self.feed.current();
        LiveModel::load(
            &path,
            version.to_string(),
            snap.as_ref().map(|s| &s.data),
            reuse,
        )
    }

    fn load_segments(&self, version: VersionId) -> anyhow::Result<LiveSegments> {
        let path = segment_artifact(&self.registry.model_dir(SEGMENTS).join(version.to_string()));
        let reuse = self.segments.live().and_then(|m| m.customers.clone());
        let snap = self.feed.current();
        LiveSegments::load(
            &path,
            version.to_string(),
            snap.as_ref().map(|s| &s.data),
            reuse,
        )
    }

    /// The live models again, on the data snapshot now in use (after a
    /// data swap, under the feed's swap guard): lookups switch to the new
    /// rows. A model that no longer loads keeps its old rows, and says so.
    pub fn rebind_models(&self) {
        fn again<T: Versioned>(slot: &Slot<T>, load: impl FnOnce(VersionId) -> anyhow::Result<T>) {
            let Some(live) = slot.live() else { return };
            let result = live
                .version()
                .parse::<VersionId>()
                .map_err(anyhow::Error::from)
                .and_then(load);
            match result {
                Ok(m) => slot.replace(m),
                Err(e) => eprintln!(
                    "serve: {} {} keeps the previous data: {e:#}",
                    slot.name,
                    live.label()
                ),
            }
        }
        again(&self.spend, |v| self.load_spend(v));
        again(&self.segments, |v| self.load_segments(v));
    }

    /// The hot-reload step for both models (spend, then segments).
    pub fn reload_if_changed(&self) -> [Reload; 2] {
        // Never while a data snapshot is swapped in (a model loaded on the
        // old rows would be stored after the re-binding).
        let _data = self.feed.swap_guard();
        [
            self.spend.check(&self.registry, |v| self.load_spend(v)),
            self.segments
                .check(&self.registry, |v| self.load_segments(v)),
        ]
    }
}
