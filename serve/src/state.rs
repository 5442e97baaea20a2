//! Shared state: the live model behind an atomically swapped `Arc`, the
//! serving data, and the hot-reload check.
//!
//! Hot reload: every `reload_interval_ms` a background task looks at
//! `best.json` and the model file it names (modification time, length,
//! inode). When they changed, it loads the named model completely (and its
//! customer table) off the request path, then swaps it in with one atomic
//! store. A request holds the `Arc` it loaded, so it finishes on the model
//! it started with; no request ever sees a half-loaded model. A model that
//! fails to load is logged and the live one stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;

use crate::configuration::Settings;
use crate::model::{BEST_FILE, LiveModel, ServingData, family_dir, read_best};

/// What a file looked like last time (absent files too).
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

/// `best.json` and the model file it named when last checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Signature {
    best: Option<FileSig>,
    model: Option<(PathBuf, Option<FileSig>)>,
}

/// Everything the handlers share.
pub struct AppState {
    pub settings: Settings,
    /// The family folder (`<models>/customer_spend`).
    pub dir: PathBuf,
    live: ArcSwapOption<LiveModel>,
    pub data: Option<ServingData>,
    /// Why there is no live model (for `/ready`), when there is none.
    last_error: Mutex<Option<String>>,
    seen: Mutex<Option<Signature>>,
    /// XGBoost boosters per model (one per worker).
    copies: usize,
}

/// What a reload check did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Swapped { kind: String, version: String },
    Failed(String),
}

impl AppState {
    pub fn new(settings: Settings, data: Option<ServingData>, copies: usize) -> Self {
        AppState {
            dir: family_dir(&settings.models),
            settings,
            live: ArcSwapOption::empty(),
            data,
            last_error: Mutex::new(None),
            seen: Mutex::new(None),
            copies: copies.max(1),
        }
    }

    /// The live model, if any (cheap: one atomic load and a refcount).
    pub fn live(&self) -> Option<Arc<LiveModel>> {
        self.live.load_full()
    }

    /// Why there is no live model.
    pub fn not_ready_reason(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "no model loaded yet".into())
    }

    fn signature(&self) -> Signature {
        let best = sig(&self.dir.join(BEST_FILE));
        let model = read_best(&self.dir).ok().map(|k| {
            let p = self.dir.join(format!("{}.msgpack", k.name()));
            let s = sig(&p);
            (p, s)
        });
        Signature { best, model }
    }

    /// Load the model `best.json` names now, whatever was seen before.
    pub fn load_best(&self) -> anyhow::Result<Arc<LiveModel>> {
        let kind = read_best(&self.dir)?;
        let path = self.dir.join(format!("{}.msgpack", kind.name()));
        let reuse = self.live().and_then(|m| m.customers.clone());
        let model = Arc::new(LiveModel::load(
            &path,
            self.copies,
            self.data.as_ref(),
            reuse,
        )?);
        self.live.store(Some(model.clone()));
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(model)
    }

    /// The hot-reload step: reload only if `best.json` or its model file
    /// changed since the last check; keep the live model on failure.
    pub fn reload_if_changed(&self) -> Reload {
        let now = self.signature();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.as_ref() == Some(&now) {
                return Reload::Unchanged;
            }
            *seen = Some(now);
        }
        match self.load_best() {
            Ok(m) => {
                eprintln!(
                    "serve: live model is now {} {} ({})",
                    m.kind,
                    m.version,
                    m.file.display()
                );
                Reload::Swapped {
                    kind: m.kind.name().to_string(),
                    version: m.version.clone(),
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                match self.live() {
                    Some(m) => eprintln!(
                        "serve: keeping {} {}: the new model did not load: {msg}",
                        m.kind, m.version
                    ),
                    None => {
                        eprintln!("serve: no model loaded: {msg}");
                        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(msg.clone());
                    }
                }
                Reload::Failed(msg)
            }
        }
    }
}
