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
//!
//! A version is read once: [`Registry::read_verified`] checks every file
//! against the manifest and the model is decoded from those very bytes.
//!
//! A failed load is retried even when `live.json` does not change again
//! (e.g. the pointer was copied before its version folder): after the
//! reload interval, then twice as long each time, up to [`RETRY_MAX`]. Until
//! it loads, the slot is *stale* when an older model is still served:
//! `/ready` answers 200 with `"status": "stale"`, names the version served
//! and the one wanted, the error, the attempts and when the next one is.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use analytics_lib::registry::{
    BestChoice, CLV_FILE, Registry, SEGMENT_FILE, SEGMENTS, SPEND, VersionId, spend_artifact_name,
};
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

/// The longest wait between two attempts at a version that failed.
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// A failed load and when it is tried again.
#[derive(Clone, Debug)]
struct Retry {
    /// Failed attempts in a row at the version the pointer names.
    failures: u32,
    /// The version the pointer named when it failed, when it could be read.
    wanted: Option<String>,
    at: Instant,
}

/// A model's reload state, for `/ready`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotStatus {
    /// Why there is no live model, or why the version the registry names
    /// was refused (paths relative to the models folder).
    pub error: Option<String>,
    /// The version the registry names that failed to load, if any.
    pub wanted: Option<String>,
    /// Failed attempts in a row (0: none).
    pub failures: u32,
    /// When the next attempt is, from now.
    pub retry_in: Option<Duration>,
}

/// One model's live handle, why it is missing, and what its pointer
/// looked like at the last check.
pub struct Slot<T> {
    /// The registry's model name (`customer_spend`, `segments`).
    pub name: &'static str,
    live: ArcSwapOption<T>,
    last_error: Mutex<Option<String>>,
    seen: Mutex<Option<Option<FileSig>>>,
    retry: Mutex<Option<Retry>>,
    /// The first wait after a failure (the reload interval, at least 10 ms).
    backoff: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Versioned> Slot<T> {
    fn new(name: &'static str, backoff: Duration) -> Self {
        Slot {
            name,
            live: ArcSwapOption::empty(),
            last_error: Mutex::new(None),
            seen: Mutex::new(None),
            retry: Mutex::new(None),
            backoff: backoff.max(Duration::from_millis(10)),
        }
    }

    /// The reload state: error, wanted version, attempts, next attempt.
    pub fn status(&self) -> SlotStatus {
        let retry = lock(&self.retry).clone();
        SlotStatus {
            error: self.last_error(),
            wanted: retry.as_ref().and_then(|r| r.wanted.clone()),
            failures: retry.as_ref().map_or(0, |r| r.failures),
            retry_in: retry.map(|r| r.at.saturating_duration_since(Instant::now())),
        }
    }

    /// The wait after `failures` failed attempts in a row: the backoff,
    /// doubled each time, at most [`RETRY_MAX`].
    fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(RETRY_MAX)
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
        *lock(&self.last_error) = e;
    }

    /// The hot-reload step for this model: when `pointer` changed since the
    /// last check (or a failed attempt is due again), read it and, if it
    /// names another version than the live one, `load` that version (read
    /// and verified once) and swap it in; keep the live one on failure and
    /// schedule the next attempt.
    fn check(
        &self,
        registry: &Registry,
        load: impl FnOnce(VersionId) -> anyhow::Result<T>,
    ) -> Reload {
        let pointer = registry.live_pointer_path(self.name);
        let now = sig(&pointer);
        let changed = {
            let mut seen = lock(&self.seen);
            let changed = seen.as_ref() != Some(&now);
            let due = lock(&self.retry)
                .as_ref()
                .is_some_and(|r| Instant::now() >= r.at);
            if !changed && !due {
                return Reload::Unchanged;
            }
            *seen = Some(now);
            changed
        };
        let current = self.live();
        let mut wanted = None;
        let result = (|| -> anyhow::Result<Option<T>> {
            let version = registry.live_version(self.name)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no live version in the registry ({} not found; run `analytics train` or promote a version)",
                    self.name,
                    pointer.display()
                )
            })?;
            wanted = Some(version.to_string());
            if current
                .as_ref()
                .is_some_and(|c| c.version() == version.to_string())
            {
                return Ok(None);
            }
            load(version).map(Some)
        })();
        match result {
            Ok(None) => {
                // The pointer names the live version (again): nothing is stale.
                if lock(&self.retry).take().is_some() {
                    self.set_error(None);
                }
                Reload::Unchanged
            }
            Ok(Some(model)) => {
                let label = model.label();
                let version = model.version().to_string();
                self.live.store(Some(Arc::new(model)));
                self.set_error(None);
                *lock(&self.retry) = None;
                eprintln!("serve: live {} is now {label}", self.name);
                Reload::Swapped {
                    model: self.name.to_string(),
                    version,
                }
            }
            Err(e) => {
                let msg = analytics_lib::error::chain_message(e.as_ref());
                let failures = {
                    let mut retry = lock(&self.retry);
                    // A new pointer starts a new series of attempts.
                    let failures = match retry.as_ref() {
                        Some(r) if !changed && r.wanted == wanted => r.failures + 1,
                        _ => 1,
                    };
                    *retry = Some(Retry {
                        failures,
                        wanted: wanted.clone(),
                        at: Instant::now() + self.delay(failures),
                    });
                    failures
                };
                let next = self.delay(failures);
                match &current {
                    Some(m) => eprintln!(
                        "serve: keeping {} {} (attempt {failures} at the new version failed; next in {:.1} s): {msg}",
                        self.name,
                        m.label(),
                        next.as_secs_f64()
                    ),
                    None => eprintln!(
                        "serve: no {} model loaded (attempt {failures}; next in {:.1} s): {msg}",
                        self.name,
                        next.as_secs_f64()
                    ),
                }
                let public = crate::error::public_message(&msg, &[registry.root()]);
                self.set_error(Some(public.clone()));
                Reload::Failed(public)
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
    /// `/openapi.json` as last served, by the live versions it describes.
    pub doc_cache: DocCache,
}

/// The served OpenAPI document, keyed by the live versions and the data
/// snapshot's load time.
pub type DocCache = Mutex<Option<(DocKey, Arc<String>)>>;
/// Spend model version, segment model version, data snapshot load time.
pub type DocKey = (Option<String>, Option<String>, Option<String>);

/// What a reload check did for one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Swapped { model: String, version: String },
    Failed(String),
}

impl AppState {
    pub fn new(settings: Settings, feed: Feed) -> anyhow::Result<Self> {
        let backoff = Duration::from_millis(settings.reload_interval_ms);
        Ok(AppState {
            registry: Registry::open(&settings.models)?,
            settings,
            spend: Slot::new(SPEND, backoff),
            segments: Slot::new(SEGMENTS, backoff),
            feed,
            doc_cache: Mutex::new(None),
        })
    }

    /// The bounds of a request body: a batch's (sized to `max_batch`) or
    /// one record's, and the time it may take to arrive.
    pub fn body_limits(&self, batch: bool) -> crate::body::BodyLimits {
        crate::body::BodyLimits {
            bytes: if batch {
                self.settings.batch_body_limit()
            } else {
                self.settings.record_body_limit()
            },
            timeout: Duration::from_millis(self.settings.body_timeout_ms),
        }
    }

    /// The live customer-spend model, if any.
    pub fn live(&self) -> Option<Arc<LiveModel>> {
        self.spend.live()
    }

    /// The live segment model, if any.
    pub fn live_segments(&self) -> Option<Arc<LiveSegments>> {
        self.segments.live()
    }

    /// A version's files, read once and checked against its manifest.
    fn read_verified(
        &self,
        model: &str,
        version: VersionId,
    ) -> anyhow::Result<analytics_lib::registry::VerifiedVersion> {
        self.registry
            .read_verified(model, version)
            .map_err(anyhow::Error::from)
            .map_err(|e| e.context(format!("{model} {version} failed verification")))
    }

    fn load_spend(&self, version: VersionId) -> anyhow::Result<LiveModel> {
        let verified = self.read_verified(SPEND, version)?;
        let reuse = self.spend.live().and_then(|m| m.customers.clone());
        let snap = self.feed.current();
        (|| {
            let name = spend_artifact_name(BestChoice::of_verified(&verified)?.best);
            let data = snap.as_ref().map(|s| &s.data);
            let clv_path = verified.path(CLV_FILE);
            let clv = verified
                .bytes(CLV_FILE)
                .ok()
                .map(|b| (b, clv_path.as_path()));
            LiveModel::from_bytes(
                verified.bytes(&name)?,
                &verified.path(&name),
                version.to_string(),
                data,
                reuse,
            )?
            .with_clv(clv, data)
        })()
        .map_err(|e| e.context(format!("{SPEND} {version} did not load")))
    }

    fn load_segments(&self, version: VersionId) -> anyhow::Result<LiveSegments> {
        let verified = self.read_verified(SEGMENTS, version)?;
        let reuse = self.segments.live().and_then(|m| m.customers.clone());
        let snap = self.feed.current();
        (|| {
            LiveSegments::from_bytes(
                verified.bytes(SEGMENT_FILE)?,
                &verified.path(SEGMENT_FILE),
                version.to_string(),
                snap.as_ref().map(|s| &s.data),
                reuse,
            )
        })()
        .map_err(|e| e.context(format!("{SEGMENTS} {version} did not load")))
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
                    "serve: {} {} keeps the previous data: {}",
                    slot.name,
                    live.label(),
                    analytics_lib::error::chain_message(e.as_ref())
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
