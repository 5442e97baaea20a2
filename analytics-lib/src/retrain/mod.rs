//! Training into the model registry, evaluation of the live models, and the
//! retrain job (champion / challenger), for the command line, the scheduler
//! and the notebooks alike.
//!
//! * [`train_job`] (`analytics train`): fit the customer-spend family and the
//!   segment model, commit each as a new registry version and promote it.
//! * [`evaluate_live`] (`analytics evaluate`): score the live versions on
//!   the data's out-of-time test set.
//! * [`retrain`] (`analytics retrain`, `make retrain`): the scheduled job.
//!
//! Every job reads its curated data through a [`JobData`]: a configured
//! [`Source`] (a Parquet folder, or the tables of a Snowflake schema). A
//! path converts into one (`PathBuf`/`&Path` → the Parquet backend).
//!
//! ## Data fingerprint
//!
//! A version's `data_fingerprint` is a hash of what the models were fitted
//! and tested on, computed *after* loading and cleaning: the customer-spend
//! version hashes its train and test feature matrices, targets and cutoff;
//! the segments version its customer ids and raw feature matrix at `as_of`.
//! It therefore depends on the curated content only, not on where it was
//! read from: the same tables read from Parquet or from Snowflake give the
//! same fingerprint (tested against the emulator), and any change of a row
//! that reaches the features changes it. The report's `data.source` names
//! the source (`describe()`, never a secret) and `data.rows` the row counts.
//!
//! ## The retrain job
//!
//! 1. Take the models folder's lock ([`lock::JobLock`]; a second job is
//!    refused, a lock left by a killed job is taken over) and clean up what
//!    an interrupted run left ([`Registry::recover`]).
//! 2. Load, validate and clean the new data. Bad data, or fewer order lines
//!    than `min_rows`, stops the run before anything is written.
//! 3. Fit the challengers with the same code as `analytics train`.
//! 4. Drift: the new features against the live version's
//!    `training_profile.json` ([`drift`]), per model.
//! 5. Score champion and challenger on the **same** new data:
//!    * customer_spend: RMSE on the out-of-time test set of the new data
//!      (customers seen before `as_of − 90 d`, target the revenue of the
//!      last 90 days), the champion's served model (its `best.json`)
//!      against the challenger's best model. The challenger's score is the
//!      test RMSE computed by [`train_all`](crate::models::train_all) on
//!      exactly these rows and targets.
//!    * segments: the silhouette of each model's segments on the same
//!      sample of the new customers (every customer at `as_of`, an evenly
//!      spaced sample of at most `silhouette_sample` of them in customer-id
//!      order), each in its own scaled feature space. The silhouette needs
//!      no labels, so a model with new data and a model with old data are
//!      judged on the same customers with the same rule.
//! 6. Promote the challenger when it is not worse than the champion by more
//!    than the relative `tolerance` (RMSE ≤ champion × (1 + tolerance);
//!    silhouette ≥ champion − tolerance × |champion|). The challenger is
//!    committed either way, with its status (`promoted` / `rejected`) in
//!    its manifest's notes, so it can be inspected and promoted by hand.
//! 7. Prune each model to `keep` versions (never the live one or its history).
//! 8. Write the report (`reports/retrain-<UTC time>.{json,txt}`), and log a
//!    run to MLflow when `MLFLOW_TRACKING_URI` is set (a failure there is a
//!    warning: it never undoes a promotion).

pub mod drift;
pub mod lock;
pub mod params;
pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde_json::json;

use crate::error::DataError;
use crate::features::{HORIZON_DAYS, customer_features};
use crate::kpi::Sales;
use crate::models::{Metrics, ModelError, ModelKind, TrainOptions, TrainReport, TrainedModel};
use crate::registry::{
    self, Registry, RegistryError, SEGMENT_FILE, SEGMENTS, SPEND, VersionId, VersionInfo,
    VersionNotes, write_file_atomic,
};
use crate::segments::{
    SegmentError, SegmentFeatures, SegmentModel, Segmentation, fit_segments, silhouette_score,
};
use crate::source::{Prepared, Source, SourceError};

use drift::{DriftReport, PROFILE_FILE, TrainingProfile};
use lock::{JobLock, LockError};
use params::{ParamsError, PipelineParams};
use report::{Contender, DataSummary, Decision, ModelDecision, RetrainReport};

/// The readable metadata of the segment model in a `segments` version.
pub const SEGMENT_JSON: &str = "segments.json";
/// The served model's name in a `customer_spend` version.
pub const BEST_FILE: &str = "best.json";
/// Default relative tolerance of the champion / challenger comparison.
pub const DEFAULT_TOLERANCE: f64 = 0.02;
/// Default number of versions kept per model.
pub const DEFAULT_KEEP: usize = 5;
/// Default least number of order lines (after cleaning) to retrain on.
pub const DEFAULT_MIN_ROWS: usize = 1_000;
/// Default number of customers the segment silhouettes are computed on.
pub const DEFAULT_SILHOUETTE_SAMPLE: usize = 5_000;

/// Errors of the jobs. The data and training errors say that the live
/// models were left as they were.
#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("bad new data in {data}: {source}. The live models were not changed")]
    Data {
        /// The source ([`JobData::label`]).
        data: String,
        #[source]
        source: DataError,
    },
    #[error("could not read the data from {data}: {source}. The live models were not changed")]
    Source {
        /// The source ([`JobData::label`]).
        data: String,
        #[source]
        source: SourceError,
    },
    #[error(
        "too few rows in {data}: expected at least {min} order lines after cleaning (--min-rows); found {found}. The live models were not changed"
    )]
    TooFewRows {
        data: String,
        min: usize,
        found: usize,
    },
    #[error("while {stage}: {reason}. The live models were not changed")]
    Training { stage: &'static str, reason: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("{action} {path}: {reason}")]
    File {
        path: PathBuf,
        action: &'static str,
        reason: String,
    },
    #[error("invalid option `{name}`: expected {expected}; found {found}")]
    Option {
        name: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{what}: {reason}")]
    Live { what: String, reason: String },
}

pub type Result<T, E = RetrainError> = std::result::Result<T, E>;

fn training(stage: &'static str) -> impl FnOnce(ModelError) -> RetrainError {
    move |e| RetrainError::Training {
        stage,
        reason: e.to_string(),
    }
}

fn segmenting(stage: &'static str) -> impl FnOnce(SegmentError) -> RetrainError {
    move |e| RetrainError::Training {
        stage,
        reason: e.to_string(),
    }
}

fn file_err(path: &Path, action: &'static str) -> impl FnOnce(String) -> RetrainError {
    let path = path.to_path_buf();
    move |reason| RetrainError::File {
        path,
        action,
        reason,
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| file_err(path, "encoding")(e.to_string()))?;
    bytes.push(b'\n');
    write_file_atomic(path, &bytes)?;
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| file_err(path, "reading")(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, "parsing")(e.to_string()))
}

/// Progress lines on stderr, only when asked (notebooks fail on stderr).
struct Progress(bool);

impl Progress {
    fn say(&self, msg: impl AsRef<str>) {
        if self.0 {
            eprintln!("{}", msg.as_ref());
        }
    }
}

/// Where a job reads its curated data: a configured [`Source`], shared
/// (cloning is cheap). `PathBuf`, `&Path` and `&PathBuf` convert into the
/// Parquet backend on that folder; [`Source`] converts as it is.
#[derive(Clone, Debug)]
pub struct JobData(Arc<Source>);

impl JobData {
    pub fn new(source: Source) -> Self {
        JobData(Arc::new(source))
    }

    /// The Parquet backend on `dir`.
    pub fn parquet(dir: impl Into<PathBuf>) -> Self {
        JobData::new(Source::Parquet(crate::source::ParquetSource::new(dir)))
    }

    pub fn source(&self) -> &Source {
        &self.0
    }

    /// How reports and errors name the data: the folder for Parquet, the
    /// source's description otherwise (never a secret).
    pub fn label(&self) -> String {
        match self.source() {
            Source::Parquet(p) => p.dir.display().to_string(),
            #[allow(unreachable_patterns)]
            s => s.describe(),
        }
    }
}

impl From<Source> for JobData {
    fn from(s: Source) -> Self {
        JobData::new(s)
    }
}

impl From<PathBuf> for JobData {
    fn from(p: PathBuf) -> Self {
        JobData::parquet(p)
    }
}

impl From<&Path> for JobData {
    fn from(p: &Path) -> Self {
        JobData::parquet(p)
    }
}

impl From<&PathBuf> for JobData {
    fn from(p: &PathBuf) -> Self {
        JobData::parquet(p.as_path())
    }
}

impl From<&JobData> for JobData {
    fn from(d: &JobData) -> Self {
        d.clone()
    }
}

/// A read or validation error of `data`: bad content is [`RetrainError::Data`],
/// anything else (connection, configuration, encoding) [`RetrainError::Source`].
fn source_error(data: &JobData, e: SourceError) -> RetrainError {
    match e {
        SourceError::Data(source) => RetrainError::Data {
            data: data.label(),
            source,
        },
        source => RetrainError::Source {
            data: data.label(),
            source,
        },
    }
}

/// Load, validate, clean and join: the data as the jobs see it
/// ([`crate::source::Source::prepare`], with the job's error mapping).
pub fn prepare(data: impl Into<JobData>) -> Result<Prepared> {
    let data = data.into();
    data.source()
        .prepare()
        .map_err(|e| source_error(&data, e.into_source()))
}

// ---------------------------------------------------------------- fitting

/// A fitted segmentation with the features it was fitted on.
pub struct SegmentsFit {
    pub features: SegmentFeatures,
    pub segmentation: Segmentation,
}

/// Shuffle every column of the features independently (tests only: a
/// segmentation that has learnt nothing about how the features go together).
fn scramble(features: &SegmentFeatures, seed: u64) -> Result<SegmentFeatures> {
    let x = &features.matrix;
    let (n, c) = (x.n_rows(), x.n_cols());
    let mut values = x.values().to_vec();
    let mut state = seed ^ 0x2545_f491_4f6c_dd1d;
    for j in 0..c {
        for i in (1..n).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let k = (state % (i as u64 + 1)) as usize;
            values.swap(i * c + j, k * c + j);
        }
    }
    let matrix = crate::features::FeatureMatrix::new(x.names().to_vec(), values).map_err(|e| {
        RetrainError::Training {
            stage: "scrambling the segment features",
            reason: e.to_string(),
        }
    })?;
    SegmentFeatures::from_parts(
        features.as_of,
        features.categories.clone(),
        features.customer_ids.clone(),
        matrix,
    )
    .map_err(segmenting("scrambling the segment features"))
}

/// Fit the segment model on the customers at `as_of`.
pub fn fit_segment_model(
    sales: &Sales,
    as_of: NaiveDate,
    params: &crate::segments::SegmentParams,
    scramble_seed: Option<u64>,
) -> Result<SegmentsFit> {
    let features = SegmentFeatures::compute(sales, Some(as_of), None)
        .map_err(segmenting("computing the segmentation features"))?;
    let fit_on = match scramble_seed {
        Some(seed) => scramble(&features, seed)?,
        None => features.clone(),
    };
    let segmentation =
        fit_segments(&fit_on, params).map_err(segmenting("fitting the segment model"))?;
    Ok(SegmentsFit {
        features,
        segmentation,
    })
}

// ---------------------------------------------------------------- saving

/// Metrics of a training report as JSON: `{"<kind>": {"validation", "test"}, "baseline": {…}}`.
fn spend_metrics_json(report: &TrainReport) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for model in &report.models {
        m.insert(
            model.kind().name().into(),
            json!({
                "validation": model.meta.metrics.get("validation"),
                "test": model.meta.metrics.get("test"),
            }),
        );
    }
    m.insert("baseline".into(), json!({"test": report.baseline_test}));
    serde_json::Value::Object(m)
}

/// Write the customer-spend files into `dir`: `<kind>.msgpack`,
/// `<kind>.json`, `best.json` and `training_profile.json`.
pub fn write_spend_files(dir: &Path, report: &TrainReport) -> Result<()> {
    for m in &report.models {
        let path = dir.join(format!("{}.msgpack", m.kind().name()));
        m.save(&path)
            .map_err(|e| file_err(&path, "saving")(e.to_string()))?;
        write_json(&dir.join(format!("{}.json", m.kind().name())), &m.meta)?;
    }
    let best = json!({
        "best": report.best.name(),
        "chosen_on": "validation",
        "as_of": report.as_of,
        "train_cutoff": report.train_cutoff,
        "test_cutoff": report.test_cutoff,
        "data_fingerprint": report.data_fingerprint,
    });
    write_json(&dir.join(BEST_FILE), &best)?;
    write_json(
        &dir.join(PROFILE_FILE),
        &TrainingProfile::of_matrix(&report.train_features),
    )
}

/// Write the segment files into `dir`: `segments.msgpack`, `segments.json`
/// (metadata and profiles, readable) and `training_profile.json`.
pub fn write_segment_files(dir: &Path, fit: &SegmentsFit) -> Result<()> {
    let model = &fit.segmentation.model;
    let path = dir.join(SEGMENT_FILE);
    model
        .save(&path)
        .map_err(|e| file_err(&path, "saving")(e.to_string()))?;
    write_json(
        &dir.join(SEGMENT_JSON),
        &json!({
            "meta": model.meta,
            "names": model.names(),
            "profiles": model.profiles,
        }),
    )?;
    write_json(
        &dir.join(PROFILE_FILE),
        &TrainingProfile::of_matrix(&fit.features.matrix),
    )
}

/// The notes of a customer-spend version.
fn spend_notes(
    report: &TrainReport,
    params: &PipelineParams,
    job: &str,
    status: &str,
) -> VersionNotes {
    let hyperparameters: BTreeMap<&str, _> = report
        .models
        .iter()
        .map(|m| (m.kind().name(), &m.meta.hyperparameters))
        .collect();
    VersionNotes {
        data_fingerprint: Some(report.data_fingerprint.clone()),
        info: json!({
            "job": job,
            "status": status,
            "best": report.best.name(),
            "metrics": spend_metrics_json(report),
            "hyperparameters": hyperparameters,
            "params": params.train,
            "features": report.feature_names,
            "as_of": report.as_of,
            "train_cutoff": report.train_cutoff,
            "test_cutoff": report.test_cutoff,
            "rows": report.rows,
        }),
    }
}

/// The notes of a segments version.
fn segment_notes(fit: &SegmentsFit, job: &str, status: &str) -> VersionNotes {
    let meta = &fit.segmentation.model.meta;
    VersionNotes {
        data_fingerprint: Some(meta.data_fingerprint.clone()),
        info: json!({
            "job": job,
            "status": status,
            "algorithm": meta.algorithm,
            "k": meta.k,
            "names": fit.segmentation.model.names(),
            "metrics": {"silhouette": meta.silhouette, "silhouette_rows": meta.silhouette_rows},
            "hyperparameters": meta.params,
            "features": meta.feature_names,
            "as_of": meta.as_of,
            "customers": meta.customers,
        }),
    }
}

fn commit_spend(
    reg: &Registry,
    report: &TrainReport,
    params: &PipelineParams,
    job: &str,
    status: &str,
) -> Result<VersionInfo> {
    let staging = reg.stage(SPEND)?;
    write_spend_files(staging.dir(), report)?;
    Ok(staging.commit(spend_notes(report, params, job, status))?)
}

fn commit_segments(
    reg: &Registry,
    fit: &SegmentsFit,
    job: &str,
    status: &str,
) -> Result<VersionInfo> {
    let staging = reg.stage(SEGMENTS)?;
    write_segment_files(staging.dir(), fit)?;
    Ok(staging.commit(segment_notes(fit, job, status))?)
}

// ---------------------------------------------------------------- train job

/// What [`train_job`] reads and where it writes.
#[derive(Clone, Debug)]
pub struct TrainJobOptions {
    /// The curated data (a path converts: `data: dir.into()`).
    pub data: JobData,
    pub models: PathBuf,
    pub params: PipelineParams,
    /// Reference date; default: the day after the last order.
    pub as_of: Option<NaiveDate>,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// What [`train_job`] made.
pub struct TrainJobResult {
    pub spend: TrainReport,
    pub spend_version: VersionInfo,
    pub segments: SegmentsFit,
    pub segments_version: VersionInfo,
    /// Leftovers of interrupted runs removed first.
    pub recovered: Vec<PathBuf>,
    /// Rows removed by final cleaning.
    pub defects_removed: u64,
}

/// `analytics train`: fit every model on `data`, commit each as a new
/// version and promote it (under the folder's lock, after a recovery).
pub fn train_job(opts: &TrainJobOptions) -> Result<TrainJobResult> {
    let say = Progress(opts.progress);
    let _lock = JobLock::acquire(&opts.models, "train")?;
    let reg = Registry::open(&opts.models)?;
    let recovered = reg.recover()?;
    say.say(format!("loading {}…", opts.data.label()));
    let Prepared { sales, report, .. } = prepare(&opts.data)?;
    let as_of = opts.as_of.unwrap_or(sales.default_as_of);
    say.say("training the customer-spend models…");
    let spend = crate::models::train_all(&sales, Some(as_of), &opts.params.train)
        .map_err(training("training the customer-spend models"))?;
    say.say("fitting the segment model…");
    let segments = fit_segment_model(&sales, as_of, &opts.params.segments, None)?;
    let spend_version = commit_spend(&reg, &spend, &opts.params, "train", "promoted")?;
    reg.promote(SPEND, spend_version.id)?;
    let segments_version = commit_segments(&reg, &segments, "train", "promoted")?;
    reg.promote(SEGMENTS, segments_version.id)?;
    Ok(TrainJobResult {
        spend,
        spend_version,
        segments,
        segments_version,
        recovered,
        defects_removed: report.total_defects(),
    })
}

// ---------------------------------------------------------------- live models

/// The live customer-spend version and its served model (verified).
pub struct LiveSpend {
    pub version: VersionInfo,
    pub model: TrainedModel,
    pub profile: Option<TrainingProfile>,
}

/// The live segments version and its model (verified).
pub struct LiveSegments {
    pub version: VersionInfo,
    pub model: SegmentModel,
    pub profile: Option<TrainingProfile>,
}

fn live_error(model: &str, id: VersionId) -> impl FnOnce(String) -> RetrainError {
    let what = format!("the live {model} version {id}");
    move |reason| RetrainError::Live { what, reason }
}

fn read_profile(dir: &Path) -> Option<TrainingProfile> {
    read_json(&dir.join(PROFILE_FILE)).ok()
}

/// Load the live customer-spend model named by its `best.json`, after
/// checking the version's files against its manifest. `None` without a live version.
pub fn load_live_spend(reg: &Registry) -> Result<Option<LiveSpend>> {
    let Some(id) = reg.live_version(SPEND)? else {
        return Ok(None);
    };
    let version = reg.verify(SPEND, id)?;
    let best: serde_json::Value = read_json(&version.dir.join(BEST_FILE))?;
    let kind: ModelKind = best["best"]
        .as_str()
        .ok_or_else(|| format!("{BEST_FILE} has no \"best\" model name"))
        .and_then(|s| s.parse().map_err(|e: ModelError| e.to_string()))
        .map_err(live_error(SPEND, id))?;
    let model = TrainedModel::load(&version.dir.join(format!("{}.msgpack", kind.name())))
        .map_err(|e| live_error(SPEND, id)(e.to_string()))?;
    let profile = read_profile(&version.dir);
    Ok(Some(LiveSpend {
        version,
        model,
        profile,
    }))
}

/// Load the live segment model (verified). `None` without a live version.
pub fn load_live_segments(reg: &Registry) -> Result<Option<LiveSegments>> {
    let Some(id) = reg.live_version(SEGMENTS)? else {
        return Ok(None);
    };
    let version = reg.verify(SEGMENTS, id)?;
    let model = SegmentModel::load(&version.dir.join(SEGMENT_FILE))
        .map_err(|e| live_error(SEGMENTS, id)(e.to_string()))?;
    let profile = read_profile(&version.dir);
    Ok(Some(LiveSegments {
        version,
        model,
        profile,
    }))
}

// ---------------------------------------------------------------- scoring

/// The out-of-time test cutoff of data with reference date `as_of` (the
/// same rule as training): `as_of − 90 d`.
pub fn test_cutoff(as_of: NaiveDate) -> NaiveDate {
    as_of - chrono::Duration::days(HORIZON_DAYS)
}

/// Score a customer-spend model on the out-of-time test set at `cutoff`
/// (features with the model's own category list; target: the revenue of
/// the 90 days from the cutoff).
pub fn score_spend(model: &TrainedModel, sales: &Sales, cutoff: NaiveDate) -> Result<Metrics> {
    let f = customer_features(sales, cutoff, Some(&model.meta.categories)).map_err(|source| {
        RetrainError::Training {
            stage: "computing the test features",
            reason: source.to_string(),
        }
    })?;
    let scored = (|| -> std::result::Result<Metrics, ModelError> {
        let x = f.matrix()?;
        let y = f.target()?;
        Metrics::compute(&y, &model.predict(&x)?)
    })();
    scored.map_err(training("scoring a customer-spend model"))
}

/// A segment model's quality on a set of customers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SegmentScore {
    /// Mean silhouette of the model's segments on the sample, in its scaled
    /// space; `None` when the sample falls in fewer than two segments.
    pub silhouette: Option<f64>,
    pub k: usize,
    pub customers: usize,
    pub sample_rows: usize,
    /// Customers per segment name, over all the customers.
    pub sizes: BTreeMap<String, usize>,
}

/// Evenly spaced row indices: at most `size` of `n`.
pub fn sample_rows(n: usize, size: usize) -> Vec<usize> {
    let s = size.min(n);
    (0..s).map(|i| i * n / s.max(1)).collect()
}

/// Score `model` on the customers at `as_of` (features computed with the
/// model's own category list); the silhouette on [`sample_rows`].
pub fn score_segments(
    model: &SegmentModel,
    sales: &Sales,
    as_of: NaiveDate,
    sample: usize,
) -> Result<SegmentScore> {
    let features = SegmentFeatures::compute(sales, Some(as_of), Some(&model.meta.categories))
        .map_err(segmenting("computing the segmentation features"))?;
    score_segments_on(model, &features, sample)
}

/// [`score_segments`] on features already computed (they must hold the
/// model's features).
pub fn score_segments_on(
    model: &SegmentModel,
    features: &SegmentFeatures,
    sample: usize,
) -> Result<SegmentScore> {
    let run = || -> std::result::Result<SegmentScore, SegmentError> {
        let refs: Vec<&str> = model.feature_names().iter().map(String::as_str).collect();
        let scaled = model.scaler.transform(&features.select(&refs)?)?;
        let assigned = model.assign_features(features)?;
        let rows = sample_rows(features.n_customers(), sample);
        let xs = scaled.select(ndarray::Axis(0), &rows);
        let labels: Vec<usize> = rows.iter().map(|&i| assigned[i].0).collect();
        let names = model.names();
        let mut sizes = BTreeMap::new();
        for (id, _) in &assigned {
            let name = names.get(*id).cloned().unwrap_or_else(|| id.to_string());
            *sizes.entry(name).or_insert(0) += 1;
        }
        Ok(SegmentScore {
            silhouette: silhouette_score(xs.view(), &labels),
            k: model.k(),
            customers: features.n_customers(),
            sample_rows: rows.len(),
            sizes,
        })
    };
    run().map_err(segmenting("scoring a segment model"))
}

/// What [`evaluate_live`] found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    pub as_of: NaiveDate,
    pub customer_spend: Option<serde_json::Value>,
    pub segments: Option<serde_json::Value>,
}

/// `analytics evaluate`: score the live versions on `data` (customer_spend
/// on the out-of-time test set, segments by silhouette). `data`: a
/// [`JobData`] or a Parquet folder's path.
pub fn evaluate_live(
    data: impl Into<JobData>,
    models: &Path,
    as_of: Option<NaiveDate>,
) -> Result<Evaluation> {
    let data = data.into();
    let reg = Registry::open(models)?;
    let spend = load_live_spend(&reg)?;
    let segs = load_live_segments(&reg)?;
    if spend.is_none() && segs.is_none() {
        return Err(RegistryError::NoLive {
            model: format!("{SPEND} (nor {SEGMENTS}) in {}", models.display()),
        }
        .into());
    }
    let sales = prepare(&data)?.sales;
    let as_of = as_of.unwrap_or(sales.default_as_of);
    let cutoff = test_cutoff(as_of);
    let customer_spend = match spend {
        Some(live) => {
            let m = score_spend(&live.model, &sales, cutoff)?;
            Some(json!({
                "model": live.model.kind().name(),
                "version": live.version.id,
                "rmse": m.rmse,
                "mae": m.mae,
                "r2": m.r2,
                "n": m.n,
                "test_cutoff": cutoff,
            }))
        }
        None => None,
    };
    let segments = match segs {
        Some(live) => {
            let s = score_segments(&live.model, &sales, as_of, DEFAULT_SILHOUETTE_SAMPLE)?;
            Some(json!({
                "version": live.version.id,
                "silhouette": s.silhouette,
                "k": s.k,
                "customers": s.customers,
                "sample_rows": s.sample_rows,
                "sizes": s.sizes,
                "as_of": as_of,
            }))
        }
        None => None,
    };
    Ok(Evaluation {
        as_of,
        customer_spend,
        segments,
    })
}

// ---------------------------------------------------------------- retrain

/// Ways to make a challenger worse on purpose. **Tests only** (there is no
/// command-line flag): they check that a bad challenger is rejected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sabotage {
    /// Permute the customer-spend training targets with this seed
    /// ([`TrainOptions::shuffle_training_targets`]).
    pub shuffle_targets: Option<u64>,
    /// Fit the segments on features whose columns were shuffled
    /// independently with this seed.
    pub scramble_segment_features: Option<u64>,
}

/// What [`retrain`] reads, writes and decides with.
#[derive(Clone, Debug)]
pub struct RetrainOptions {
    /// The new curated data (Parquet folder or Snowflake, see [`JobData`]).
    pub data: JobData,
    pub models: PathBuf,
    pub params: PipelineParams,
    /// Reference date; default: the day after the last order.
    pub as_of: Option<NaiveDate>,
    /// Relative tolerance of the comparison (0.02 = 2 %).
    pub tolerance: f64,
    /// Versions kept per model by pruning (the live one and its history too).
    pub keep: usize,
    /// Least number of order lines after cleaning.
    pub min_rows: usize,
    /// Where the report goes; default `<models>/reports`.
    pub report_dir: Option<PathBuf>,
    /// Customers the segment silhouettes are computed on.
    pub silhouette_sample: usize,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Log the run to MLflow when `MLFLOW_TRACKING_URI` is set.
    pub track: bool,
    /// Tests only: see [`Sabotage`].
    pub sabotage: Sabotage,
}

impl RetrainOptions {
    /// The defaults for the data (a [`JobData`] or a Parquet folder's path)
    /// and a models folder.
    pub fn new(data: impl Into<JobData>, models: impl Into<PathBuf>) -> Self {
        RetrainOptions {
            data: data.into(),
            models: models.into(),
            params: PipelineParams::default(),
            as_of: None,
            tolerance: DEFAULT_TOLERANCE,
            keep: DEFAULT_KEEP,
            min_rows: DEFAULT_MIN_ROWS,
            report_dir: None,
            silhouette_sample: DEFAULT_SILHOUETTE_SAMPLE,
            progress: false,
            track: true,
            sabotage: Sabotage::default(),
        }
    }

    fn check(&self) -> Result<()> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(RetrainError::Option {
                name: "tolerance",
                expected: "a finite relative tolerance ≥ 0, e.g. 0.02",
                found: self.tolerance.to_string(),
            });
        }
        if self.keep == 0 {
            return Err(RetrainError::Option {
                name: "keep",
                expected: "at least 1 version",
                found: "0".into(),
            });
        }
        if self.silhouette_sample < 2 {
            return Err(RetrainError::Option {
                name: "silhouette_sample",
                expected: "at least 2 customers",
                found: self.silhouette_sample.to_string(),
            });
        }
        Ok(())
    }
}

/// What [`retrain`] returns: the report and where it was written.
#[derive(Debug)]
pub struct RetrainOutcome {
    pub report: RetrainReport,
    pub json_path: PathBuf,
    pub text_path: PathBuf,
    /// The MLflow run's address, when one was logged.
    pub tracking_url: Option<String>,
}

/// The comparison rule: is the challenger good enough?
fn decide(
    metric: &str,
    higher_is_better: bool,
    challenger: Option<f64>,
    champion: Option<f64>,
    tolerance: f64,
) -> (Decision, String) {
    let pct = locale_pct(tolerance);
    match (challenger, champion) {
        (_, None) => (
            Decision::Promoted,
            format!("the champion has no {metric} on the new data to compare with"),
        ),
        (None, Some(c)) => (
            Decision::Rejected,
            format!(
                "the challenger has no {metric} on the new data (champion: {})",
                n4(c)
            ),
        ),
        (Some(new), Some(old)) => {
            let (ok, bound) = if higher_is_better {
                let bound = old - tolerance * old.abs();
                (new >= bound, bound)
            } else {
                let bound = old * (1.0 + tolerance);
                (new <= bound, bound)
            };
            let rel = if old != 0.0 {
                (new - old) / old.abs()
            } else {
                0.0
            };
            let change = if higher_is_better { rel } else { -rel };
            let how = if change >= 0.0 {
                format!("{} better", locale_pct(change))
            } else {
                format!("{} worse", locale_pct(-change))
            };
            if ok {
                (
                    Decision::Promoted,
                    format!(
                        "challenger {metric} {} vs champion {} ({how}); within the tolerance of {pct} (bound {})",
                        n4(new),
                        n4(old),
                        n4(bound)
                    ),
                )
            } else {
                (
                    Decision::Rejected,
                    format!(
                        "challenger {metric} {} vs champion {} ({how}); worse than the tolerance of {pct} allows (bound {})",
                        n4(new),
                        n4(old),
                        n4(bound)
                    ),
                )
            }
        }
    }
}

fn n4(x: f64) -> String {
    crate::locale::number(x, 4)
}

fn locale_pct(x: f64) -> String {
    crate::locale::percent(x)
}

fn metrics_json(m: &Metrics) -> serde_json::Value {
    json!({"rmse": m.rmse, "mae": m.mae, "r2": m.r2, "n": m.n})
}

fn segment_json(s: &SegmentScore) -> serde_json::Value {
    json!({
        "silhouette": s.silhouette,
        "k": s.k,
        "customers": s.customers,
        "sample_rows": s.sample_rows,
        "sizes": s.sizes,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The retrain job (see the module documentation).
pub fn retrain(opts: &RetrainOptions) -> Result<RetrainOutcome> {
    opts.check()?;
    let t0 = Instant::now();
    let started_at = now();
    let say = Progress(opts.progress);
    let lock = JobLock::acquire(&opts.models, "retrain")?;
    if let Some(dead) = &lock.took_over {
        say.say(format!(
            "taking over the lock left by `{}` (pid {}, started {}), which is no longer running",
            dead.job, dead.pid, dead.started_at
        ));
    }
    let reg = Registry::open(&opts.models)?;
    let recovered = reg.recover()?;
    for p in &recovered {
        say.say(format!(
            "removed a leftover of an interrupted run: {}",
            p.display()
        ));
    }
    let mut warnings = Vec::new();

    // Data: validate and clean; stop before anything is written.
    say.say(format!("loading {}…", opts.data.label()));
    let Prepared {
        sales,
        report: cleaning,
        rows,
        ..
    } = prepare(&opts.data)?;
    let lines = rows["order_items"];
    if lines < opts.min_rows {
        return Err(RetrainError::TooFewRows {
            data: opts.data.label(),
            min: opts.min_rows,
            found: lines,
        });
    }
    let as_of = opts.as_of.unwrap_or(sales.default_as_of);

    // Challengers.
    say.say("training the customer-spend challenger…");
    let train_opts = TrainOptions {
        shuffle_training_targets: opts.sabotage.shuffle_targets,
    };
    let spend = crate::models::train_all_with(&sales, Some(as_of), &opts.params.train, &train_opts)
        .map_err(training("training the customer-spend challenger"))?;
    say.say("fitting the segments challenger…");
    let segs = fit_segment_model(
        &sales,
        as_of,
        &opts.params.segments,
        opts.sabotage.scramble_segment_features,
    )?;

    // Champions (a champion that does not load is reported, and loses).
    let live_spend = load_live_spend(&reg).unwrap_or_else(|e| {
        warnings.push(format!(
            "the live {SPEND} model could not be loaded ({e}); the challenger is compared with nothing"
        ));
        None
    });
    let live_segs = load_live_segments(&reg).unwrap_or_else(|e| {
        warnings.push(format!(
            "the live {SEGMENTS} model could not be loaded ({e}); the challenger is compared with nothing"
        ));
        None
    });

    // Drift against the live versions' training profiles.
    let mut drift: BTreeMap<String, Option<DriftReport>> = BTreeMap::new();
    drift.insert(
        SPEND.into(),
        live_spend.as_ref().and_then(|l| {
            let p = l.profile.as_ref()?;
            Some(p.compare(&l.version.id.to_string(), &spend.train_features))
        }),
    );
    drift.insert(
        SEGMENTS.into(),
        live_segs.as_ref().and_then(|l| {
            let p = l.profile.as_ref()?;
            Some(p.compare(&l.version.id.to_string(), &segs.features.matrix))
        }),
    );

    // Scores on the same new data.
    say.say("scoring champion and challenger on the new out-of-time test set…");
    let best = spend
        .model(spend.best)
        .ok_or_else(|| RetrainError::Training {
            stage: "training the customer-spend challenger",
            reason: "the best model is missing from the report".into(),
        })?;
    let challenger_test = *best
        .meta
        .metrics
        .get("test")
        .ok_or_else(|| RetrainError::Training {
            stage: "training the customer-spend challenger",
            reason: "the best model has no test score".into(),
        })?;
    let champion_spend = match &live_spend {
        Some(l) => match score_spend(&l.model, &sales, spend.test_cutoff) {
            Ok(m) => Some((l, Some(m))),
            Err(e) => {
                warnings.push(format!(
                    "the live {SPEND} model {} could not be scored on the new data: {e}",
                    l.version.id
                ));
                Some((l, None))
            }
        },
        None => None,
    };
    let (spend_decision, spend_reason) = decide(
        "rmse",
        false,
        Some(challenger_test.rmse),
        champion_spend.as_ref().and_then(|(_, m)| m.map(|m| m.rmse)),
        opts.tolerance,
    );
    let challenger_seg = score_segments_on(
        &segs.segmentation.model,
        &segs.features,
        opts.silhouette_sample,
    )?;
    let champion_seg = match &live_segs {
        Some(l) => {
            let same_features = l.model.meta.categories == segs.features.categories;
            let scored = if same_features {
                score_segments_on(&l.model, &segs.features, opts.silhouette_sample)
            } else {
                score_segments(&l.model, &sales, as_of, opts.silhouette_sample)
            };
            match scored {
                Ok(s) => Some((l, Some(s))),
                Err(e) => {
                    warnings.push(format!(
                        "the live {SEGMENTS} model {} could not be scored on the new data: {e}",
                        l.version.id
                    ));
                    Some((l, None))
                }
            }
        }
        None => None,
    };
    let (seg_decision, seg_reason) = decide(
        "silhouette",
        true,
        challenger_seg.silhouette,
        champion_seg
            .as_ref()
            .and_then(|(_, s)| s.as_ref().and_then(|s| s.silhouette)),
        opts.tolerance,
    );
    let spend_reason = match &live_spend {
        None => "no live version yet: the challenger becomes the first".to_string(),
        Some(_) => spend_reason,
    };
    let seg_reason = match &live_segs {
        None => "no live version yet: the challenger becomes the first".to_string(),
        Some(_) => seg_reason,
    };

    // Commit both challengers, promote the winners, prune.
    let spend_before = reg.live_version(SPEND)?;
    let seg_before = reg.live_version(SEGMENTS)?;
    let spend_version = commit_spend(&reg, &spend, &opts.params, "retrain", spend_decision.name())?;
    if spend_decision == Decision::Promoted {
        reg.promote(SPEND, spend_version.id)?;
    }
    let seg_version = commit_segments(&reg, &segs, "retrain", seg_decision.name())?;
    if seg_decision == Decision::Promoted {
        reg.promote(SEGMENTS, seg_version.id)?;
    }
    let spend_pruned = reg.prune(SPEND, opts.keep)?;
    let seg_pruned = reg.prune(SEGMENTS, opts.keep)?;
    let ids = |v: Vec<VersionId>| v.into_iter().map(|i| i.to_string()).collect::<Vec<_>>();

    let mut models = BTreeMap::new();
    models.insert(
        SPEND.to_string(),
        ModelDecision {
            decision: spend_decision,
            reason: spend_reason,
            metric: "rmse".into(),
            higher_is_better: false,
            challenger: Contender {
                version: Some(spend_version.id.to_string()),
                model: spend.best.name().into(),
                score: Some(challenger_test.rmse),
                metrics: metrics_json(&challenger_test),
            },
            champion: champion_spend.map(|(l, m)| Contender {
                version: Some(l.version.id.to_string()),
                model: l.model.kind().name().into(),
                score: m.map(|m| m.rmse),
                metrics: m
                    .map(|m| metrics_json(&m))
                    .unwrap_or(serde_json::Value::Null),
            }),
            live_before: spend_before.map(|v| v.to_string()),
            live_after: reg.live_version(SPEND)?.map(|v| v.to_string()),
            pruned: ids(spend_pruned),
        },
    );
    let seg_model_name = |m: &SegmentModel| format!("{} k={}", m.meta.algorithm, m.k());
    models.insert(
        SEGMENTS.to_string(),
        ModelDecision {
            decision: seg_decision,
            reason: seg_reason,
            metric: "silhouette".into(),
            higher_is_better: true,
            challenger: Contender {
                version: Some(seg_version.id.to_string()),
                model: seg_model_name(&segs.segmentation.model),
                score: challenger_seg.silhouette,
                metrics: segment_json(&challenger_seg),
            },
            champion: champion_seg.map(|(l, s)| Contender {
                version: Some(l.version.id.to_string()),
                model: seg_model_name(&l.model),
                score: s.as_ref().and_then(|s| s.silhouette),
                metrics: s
                    .as_ref()
                    .map(segment_json)
                    .unwrap_or(serde_json::Value::Null),
            }),
            live_before: seg_before.map(|v| v.to_string()),
            live_after: reg.live_version(SEGMENTS)?.map(|v| v.to_string()),
            pruned: ids(seg_pruned),
        },
    );
    let decision = models
        .iter()
        .map(|(k, m)| (k.clone(), m.decision))
        .collect();
    let mut report = RetrainReport {
        started_at: started_at.clone(),
        finished_at: String::new(),
        seconds: 0.0,
        models_dir: opts.models.display().to_string(),
        data: DataSummary {
            source: opts.data.label(),
            fingerprint: spend.data_fingerprint.clone(),
            rows: rows
                .iter()
                .map(|(t, n)| (t.to_string(), *n as u64))
                .collect(),
            defects_removed: cleaning.total_defects(),
            as_of,
            train_cutoff: spend.train_cutoff,
            test_cutoff: spend.test_cutoff,
            customers_train: spend.rows.train,
            customers_test: spend.rows.test,
            customers_segments: segs.features.n_customers(),
        },
        tolerance: opts.tolerance,
        keep: opts.keep,
        recovered: recovered.iter().map(|p| p.display().to_string()).collect(),
        drift,
        decision,
        models,
        warnings,
    };

    // The report, written all-or-nothing.
    let dir = opts
        .report_dir
        .clone()
        .unwrap_or_else(|| opts.models.join("reports"));
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let json_path = dir.join(format!("retrain-{stamp}.json"));
    let text_path = dir.join(format!("retrain-{stamp}.txt"));
    report.finished_at = now();
    report.seconds = t0.elapsed().as_secs_f64();
    write_json(&json_path, &report)?;
    write_file_atomic(&text_path, report.to_text().as_bytes())?;

    // Tracking last: a failure there never undoes what was promoted.
    let mut tracking_url = None;
    if opts.track {
        let versions = [
            reg.version(SPEND, spend_version.id).ok(),
            reg.version(SEGMENTS, seg_version.id).ok(),
        ];
        match track(&report, &json_path, &text_path, &versions) {
            Ok(url) => tracking_url = url,
            Err(e) => say_always(&format!(
                "warning: the run was not logged to MLflow: {e} (the models and the report are saved)"
            )),
        }
    }
    drop(lock);
    Ok(RetrainOutcome {
        report,
        json_path,
        text_path,
        tracking_url,
    })
}

fn say_always(msg: &str) {
    eprintln!("{msg}");
}

/// MLflow: one run per retrain when `MLFLOW_TRACKING_URI` is set (params,
/// the metrics of both contenders, the decisions as tags, the report and
/// the challengers' files as artifacts). `Ok(None)` when not configured.
fn track(
    report: &RetrainReport,
    json_path: &Path,
    text_path: &Path,
    versions: &[Option<VersionInfo>],
) -> std::result::Result<Option<String>, String> {
    use crate::tracking::{RunRecord, Tracker};
    let tracker = match Tracker::try_from_env() {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut run = RunRecord::new(format!("retrain {}", report.started_at));
    run.params
        .insert("tolerance".into(), report.tolerance.to_string());
    run.params.insert("keep".into(), report.keep.to_string());
    run.params.insert("data".into(), report.data.source.clone());
    run.params
        .insert("data_fingerprint".into(), report.data.fingerprint.clone());
    run.params
        .insert("as_of".into(), report.data.as_of.to_string());
    for (table, n) in &report.data.rows {
        run.params.insert(format!("rows.{table}"), n.to_string());
    }
    for (model, m) in &report.models {
        run.tags
            .insert(format!("decision.{model}"), m.decision.name().into());
        run.params.insert(
            format!("{model}.challenger_model"),
            m.challenger.model.clone(),
        );
        if let Some(v) = &m.challenger.version {
            run.tags.insert(format!("version.{model}"), v.clone());
        }
        if let Some(s) = m.challenger.score {
            run.metrics
                .insert(format!("{model}.challenger.{}", m.metric), s);
        }
        if let Some(c) = &m.champion {
            if let Some(v) = &c.version {
                run.tags.insert(format!("champion.{model}"), v.clone());
            }
            if let Some(s) = c.score {
                run.metrics
                    .insert(format!("{model}.champion.{}", m.metric), s);
            }
        }
        for (who, metrics) in [
            ("challenger", Some(&m.challenger.metrics)),
            ("champion", m.champion.as_ref().map(|c| &c.metrics)),
        ] {
            if let Some(serde_json::Value::Object(obj)) = metrics {
                for (k, v) in obj {
                    if let Some(x) = v.as_f64() {
                        run.metrics.insert(format!("{model}.{who}.{k}"), x);
                    }
                }
            }
        }
    }
    for (model, d) in report.drift.iter() {
        if let Some(d) = d {
            run.metrics
                .insert(format!("{model}.drift.share_drifted"), d.share_drifted);
        }
    }
    let promoted = report.decision.values().any(|d| *d == Decision::Promoted);
    run.tags.insert(
        "decision".into(),
        if promoted { "promoted" } else { "rejected" }.into(),
    );
    run.artifacts.push(json_path.to_path_buf());
    run.artifacts.push(text_path.to_path_buf());
    // The challengers' files under `<model>/` (version folders of two
    // models may share a name): hard links in a scratch folder beside the
    // report, removed afterwards.
    let scratch = json_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!(".mlflow-{}", std::process::id()));
    let linked = (|| -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(&scratch);
        for v in versions.iter().flatten() {
            let dest = scratch.join(&v.manifest.model);
            std::fs::create_dir_all(&dest)?;
            let names = v
                .manifest
                .files
                .keys()
                .map(String::as_str)
                .chain([registry::MANIFEST]);
            for name in names {
                let (from, to) = (v.dir.join(name), dest.join(name));
                if std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to)?;
                }
            }
            run.artifacts.push(dest);
        }
        Ok(())
    })();
    let result = match linked {
        Ok(()) => tracker
            .log_run(&run)
            .map(|info| Some(info.url))
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!(
            "preparing the model files in {}: {e}",
            scratch.display()
        )),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
