//! The data snapshot the service answers from, and its refresh without a
//! restart — the same rules as model reload (`state.rs`): a new snapshot is
//! read and checked completely off the request path, then swapped in with
//! one atomic store; a snapshot that fails (a table missing or of the wrong
//! type, no customer, a source that does not answer) is refused, the live
//! one stays, and the reason shows in `/ready`.
//!
//! A snapshot is what `serve` keeps of its source
//! ([`analytics_lib::source::Source::serve_input`]): every customer's
//! feature rows at the reference date (the `{"customer_id"}` lookups) and
//! the dashboard built from the sales (the lines are dropped once it is
//! built). It is read again when:
//!
//! * a **Parquet** folder was replaced (its path now names another folder:
//!   a rename or a symlink swap; checked every `reload_interval_ms`);
//! * every `data_refresh_secs` for **Snowflake** (`APP_DATA_REFRESH_SECS`);
//! * the live **segment model** changed: the dashboard's segments are
//!   assigned with it, so the dashboard follows a promotion.
//!
//! After a swap, the live models are re-bound to the new rows (each model's
//! view of the rows is rebuilt, `AppState::rebind_models`), so lookups
//! switch to the new data; a request holds the `Arc`s it started with.
//! `/ready` and `/models` show the snapshot in use ([`SnapshotInfo`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use analytics_lib::source::{ServeData, Source};
use arc_swap::ArcSwapOption;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{ClvRows, ServingData};
use crate::routes::dashboard::DashboardState;

/// The data snapshot in use, as `/ready` and `/models` show it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotInfo {
    /// Where it was read (`parquet folder …`, `snowflake account …`; never a secret).
    pub source: String,
    /// `fnv1a64:<hex>` of the customers' feature rows (the same data gives
    /// the same value from Parquet or Snowflake).
    pub fingerprint: String,
    /// The reference date of the lookups (the day after the last order).
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// When it was loaded (RFC 3339, UTC).
    pub loaded_at: String,
    /// Customers with feature rows.
    pub customers: usize,
    /// Rows removed by final cleaning.
    pub defects_removed: u64,
    /// The segment model the dashboard assigned customers with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments_version: Option<String>,
    /// Why the last new snapshot was refused (the live one stayed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// One snapshot: the lookups' rows and what it was.
pub struct Snapshot {
    pub data: ServingData,
    pub info: SnapshotInfo,
}

/// A folder as last seen: its own identity and its files' (name, size,
/// modification time, inode), following symlinks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FolderSig(Vec<(String, u64, Option<SystemTime>, u64)>);

fn ino(m: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    return std::os::unix::fs::MetadataExt::ino(m);
    #[cfg(not(unix))]
    0
}

fn folder_sig(dir: &Path) -> Option<FolderSig> {
    let top = std::fs::metadata(dir).ok()?;
    let mut out = vec![(String::new(), top.len(), top.modified().ok(), ino(&top))];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let Ok(m) = std::fs::metadata(e.path()) else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((
                e.path().display().to_string(),
                m.len(),
                m.modified().ok(),
                ino(&m),
            ));
        }
    }
    out.sort();
    Some(FolderSig(out))
}

/// The service's data: the live snapshot and how to read the next one.
pub struct Feed {
    source: Option<Arc<Source>>,
    models: PathBuf,
    live: ArcSwapOption<Snapshot>,
    refused: Mutex<Option<String>>,
    seen: Mutex<Option<FolderSig>>,
    loaded: Mutex<Option<Instant>>,
    refresh_every: Option<Duration>,
    /// Held while a snapshot or a model is swapped in, so that a model
    /// loaded on the old rows is never stored after the re-binding.
    swapping: Mutex<()>,
}

/// What a refresh check did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refresh {
    Unchanged,
    Swapped { fingerprint: String },
    Refused(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The live segment model's version (what the dashboard follows).
fn live_segments(models: &Path) -> Option<String> {
    crate::dashboard::live_segment_file(models)
        .ok()
        .flatten()
        .map(|(v, _)| v)
}

/// Read `source` into a snapshot and the dashboard built from it (the
/// sales are dropped when this returns).
pub fn read(source: &Arc<Source>, models: &Path) -> anyhow::Result<(Snapshot, DashboardState)> {
    let t0 = Instant::now();
    let input = source.serve_input()?;
    let as_of = input.rows.as_of();
    let segments_version = live_segments(models);
    let info = SnapshotInfo {
        source: source.describe(),
        fingerprint: input.fingerprint.clone(),
        as_of,
        loaded_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        customers: input.rows.len(),
        defects_removed: input.report.total_defects(),
        segments_version,
        refused: None,
    };
    // Every customer's purchase summary for the CLV answers (the live
    // spend model's CLV model is applied to it when it is bound).
    let (clv, dashboard) = match &input.data {
        ServeData::Sales(sales) => (
            ClvRows::compute(sales, &input.rows)?,
            DashboardState::build(Some(sales), models, Some(&input.rows)),
        ),
        // Nothing finer than a customer came from the warehouse: the
        // dashboard asks it per view.
        #[allow(unreachable_patterns)]
        _ => {
            let summary = input
                .data
                .feature_data()
                .clv_summary(as_of)
                .ok_or_else(|| anyhow::anyhow!("no CLV purchase summary from the warehouse"))??;
            (
                ClvRows::from_summary(&summary, &input.rows),
                DashboardState::build_warehouse(
                    source.clone(),
                    input.data.feature_data(),
                    models,
                    Some(&input.rows),
                ),
            )
        }
    };
    let data = ServingData {
        as_of,
        rows: Arc::new(input.rows),
        clv: Some(Arc::new(clv)),
    };
    eprintln!(
        "serve: data from {}: {} rows held to build from, {} customers as of {} ({:.0} MiB of feature rows; \
         fingerprint {}; {:.2} s{})",
        info.source,
        input.data.rows(),
        info.customers,
        analytics_lib::locale::date(as_of),
        data.rows.heap_bytes() as f64 / (1024.0 * 1024.0),
        info.fingerprint,
        t0.elapsed().as_secs_f64(),
        source
            .fetched()
            .map(|f| format!("; fetched {f}"))
            .unwrap_or_default()
    );
    Ok((Snapshot { data, info }, dashboard))
}

impl Feed {
    /// A feed without data (the service answers lookups with 503/404 and the
    /// dashboard says why).
    pub fn empty(models: &Path) -> Self {
        Self::new(None, models, None)
    }

    /// A feed on `source`, re-read every `refresh_every` when it is not a
    /// Parquet folder (a folder is re-read when it changes).
    pub fn new(source: Option<Source>, models: &Path, refresh_every: Option<Duration>) -> Self {
        Feed {
            seen: Mutex::new(source.as_ref().and_then(|s| match s {
                Source::Parquet(p) => folder_sig(&p.dir),
                #[allow(unreachable_patterns)]
                _ => None,
            })),
            source: source.map(Arc::new),
            models: models.to_path_buf(),
            live: ArcSwapOption::empty(),
            refused: Mutex::new(None),
            loaded: Mutex::new(None),
            refresh_every,
            swapping: Mutex::new(()),
        }
    }

    pub fn source(&self) -> Option<&Source> {
        self.source.as_deref()
    }

    /// The source, shared (the warehouse dashboard keeps it to ask per view).
    pub fn shared_source(&self) -> Option<Arc<Source>> {
        self.source.clone()
    }

    /// The snapshot in use (one atomic load).
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.live.load_full()
    }

    /// What `/ready` and `/models` show.
    pub fn info(&self) -> Option<SnapshotInfo> {
        let snap = self.current()?;
        let mut info = snap.info.clone();
        info.refused = lock(&self.refused).clone();
        Some(info)
    }

    /// Held while models or data are swapped in.
    pub fn swap_guard(&self) -> MutexGuard<'_, ()> {
        lock(&self.swapping)
    }

    /// Store the first snapshot (start-up).
    pub fn install(&self, snap: Snapshot) {
        self.live.store(Some(Arc::new(snap)));
        *lock(&self.loaded) = Some(Instant::now());
    }

    /// Whether the data should be read again, and why.
    fn due(&self) -> Option<String> {
        let source = self.source.as_deref()?;
        let current = self.current();
        if current
            .as_ref()
            .and_then(|c| c.info.segments_version.clone())
            != live_segments(&self.models)
            && current.is_some()
        {
            return Some("the live segment model changed".into());
        }
        match source {
            Source::Parquet(p) => {
                let now = folder_sig(&p.dir);
                let mut seen = lock(&self.seen);
                if *seen != now {
                    *seen = now;
                    return Some(format!("{} changed", p.dir.display()));
                }
                None
            }
            #[allow(unreachable_patterns)]
            _ => {
                let every = self.refresh_every?;
                let last = *lock(&self.loaded);
                last.is_none_or(|t| t.elapsed() >= every)
                    .then(|| format!("the refresh interval ({} s) passed", every.as_secs()))
            }
        }
    }
}

/// The refresh step: when due, read a new snapshot off the request path;
/// swap it in with its dashboard and re-bind the live models to it, or
/// refuse it and keep the live one.
pub fn refresh_if_due(state: &crate::state::AppState, dashboard: &DashboardState) -> Refresh {
    let feed = &state.feed;
    let Some(why) = feed.due() else {
        return Refresh::Unchanged;
    };
    let Some(source) = feed.source.clone() else {
        return Refresh::Unchanged;
    };
    *lock(&feed.loaded) = Some(Instant::now());
    eprintln!("serve: reading a new data snapshot ({why})");
    let outcome = match read(&source, &feed.models) {
        Ok((snap, dash)) => {
            let fingerprint = snap.info.fingerprint.clone();
            {
                let _g = feed.swap_guard();
                feed.live.store(Some(Arc::new(snap)));
                *lock(&feed.refused) = None;
                dashboard.replace(dash);
                state.rebind_models();
            }
            eprintln!("serve: data snapshot {fingerprint} is live");
            Refresh::Swapped { fingerprint }
        }
        Err(e) => {
            let msg = analytics_lib::error::chain_message(e.as_ref());
            eprintln!("serve: keeping the data snapshot in use: the new one was refused: {msg}");
            *lock(&feed.refused) = Some(format!(
                "{} at {}: {msg}",
                why,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
            Refresh::Refused(msg)
        }
    };
    // The lines read for the new snapshot (and the old snapshot, once no
    // request holds it) are free now: give them back (`memory.rs`).
    crate::memory::give_back_freed_memory();
    outcome
}
