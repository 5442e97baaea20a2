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
//!    * segment **stability** (reported, not part of the decision): the
//!      adjusted Rand index of the champion's and the challenger's segments
//!      of the same customers at `as_of` (`segment_stability`).
//! 6. Promote the challenger when it is not worse than the champion by more
//!    than the relative `tolerance` (RMSE ≤ champion × (1 + tolerance);
//!    silhouette ≥ champion − tolerance × |champion|). The challenger is
//!    committed either way, with its status (`promoted` / `rejected`) in
//!    its manifest's notes, so it can be inspected and promoted by hand.
//! 7. Prune each model to `keep` versions (never the live one or its history).
//! 8. The **migration matrix** of the segment model live after the run:
//!    who moved between its segments from `as_of − 90 d` to `as_of`
//!    (`segment_migration`, [`crate::segments::MigrationMatrix`]).
//! 9. Write the report (`reports/retrain-<UTC time>.{json,txt}`), and log a
//!    run to MLflow when `MLFLOW_TRACKING_URI` is set (a failure there is a
//!    warning: it never undoes a promotion).

pub mod drift;
mod files;
mod job;
pub mod lock;
pub mod params;
pub mod report;
mod score;
#[cfg(feature = "tracking")]
mod track;

use files::{commit_segments, commit_spend};

pub use files::{
    LiveSegments, LiveSpend, load_live_segments, load_live_spend, write_segment_files,
    write_spend_files,
};
#[cfg(feature = "test-hooks")]
pub use job::Sabotage;
pub use job::{RetrainOptions, RetrainOutcome, retrain};
pub use score::{
    Evaluation, SegmentScore, evaluate_live, sample_rows, score_segments, score_segments_on,
    score_spend, test_cutoff,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde_json::json;

use crate::error::DataError;
use crate::features::{FeatureData, HORIZON_DAYS};
use crate::models::{Metrics, ModelError, TrainOptions, TrainReport, TrainedModel};
use crate::registry::{
    self, BEST_FILE, BestChoice, CLV_FILE, Job, PROFILE_FILE, Registry, RegistryError,
    SEGMENT_JSON, SEGMENTS, SPEND, VersionId, VersionInfo, VersionNotes, segment_artifact,
    spend_artifact, spend_meta_path, write_file_atomic,
};
use crate::segments::{
    MIGRATION_DAYS, MigrationMatrix, SegmentError, SegmentFeatures, SegmentModel, Segmentation,
    fit_segments, silhouette_score,
};
pub use crate::source::Fetched;
use crate::source::{JobInput, Prepared, Source, SourceError};

use drift::{DriftReport, TrainingProfile};
use lock::{JobLock, LockError};
use params::{ParamsError, PipelineParams};
use report::{
    Contender, DataSummary, Decision, ModelDecision, RetrainReport, SegmentMigration,
    SegmentStability,
};

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
    #[error("while {stage}: {source}. The live models were not changed")]
    Training {
        stage: &'static str,
        #[source]
        source: Cause,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("{action} {path}: {source}")]
    File {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: Cause,
    },
    #[error("invalid option `{name}`: expected {expected}; found {found}")]
    Option {
        name: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{what}: {source}")]
    Live {
        what: String,
        #[source]
        source: Cause,
    },
}

/// The error underneath a [`RetrainError`], kept whole (`source()`), not
/// flattened to its message.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

pub type Result<T, E = RetrainError> = std::result::Result<T, E>;

fn training(stage: &'static str) -> impl FnOnce(ModelError) -> RetrainError {
    move |e| RetrainError::Training {
        stage,
        source: Box::new(e),
    }
}

fn segmenting(stage: &'static str) -> impl FnOnce(SegmentError) -> RetrainError {
    move |e| RetrainError::Training {
        stage,
        source: Box::new(e),
    }
}

fn file_err<E: Into<Cause>>(path: &Path, action: &'static str) -> impl FnOnce(E) -> RetrainError {
    let path = path.to_path_buf();
    move |e| RetrainError::File {
        path,
        action,
        source: e.into(),
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(file_err(path, "encoding"))?;
    bytes.push(b'\n');
    write_file_atomic(path, &bytes)?;
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(file_err(path, "reading"))?;
    serde_json::from_str(&text).map_err(file_err(path, "parsing"))
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

/// Every cutoff a job reads customer features at, for reference date
/// `as_of`: the three of training ([`crate::models::train_cutoffs`]; the
/// last is the test cutoff) and `as_of` itself (segments).
pub fn job_cutoffs(as_of: NaiveDate) -> Vec<NaiveDate> {
    let mut c = crate::models::train_cutoffs(as_of).to_vec();
    c.push(as_of);
    c
}

/// The data of a job at `as_of` ([`Source::job_input`]: the prepared lines
/// of a Parquet folder, or the aggregates Snowflake computed at
/// [`job_cutoffs`]), with the job's error mapping.
pub fn job_input(data: &JobData, as_of: Option<NaiveDate>) -> Result<JobInput> {
    data.source()
        .job_input(as_of, job_cutoffs)
        .map_err(|e| source_error(data, e.into_source()))
}

/// [`job_input`], told on the progress lines with what the source fetched
/// for it (Snowflake: rows and bytes; nothing from Parquet).
fn load_input(
    data: &JobData,
    as_of: Option<NaiveDate>,
    say: &Progress,
) -> Result<(JobInput, Option<Fetched>)> {
    say.say(format!("loading {}…", data.label()));
    let before = data.fetched();
    let input = job_input(data, as_of)?;
    let fetched = data.fetched_since(before);
    if let Some(f) = fetched {
        say.say(format!("fetched {f} from {}", data.label()));
    }
    Ok((input, fetched))
}

impl JobData {
    /// What the source's queries brought back so far (`None`: Parquet).
    pub fn fetched(&self) -> Option<Fetched> {
        self.source().fetched()
    }

    /// What came back since `before` (a reading of [`JobData::fetched`]).
    pub fn fetched_since(&self, before: Option<Fetched>) -> Option<Fetched> {
        let now = self.fetched()?;
        Some(before.map_or(now, |b| now.since(b)))
    }
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
            source: Box::new(e),
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

/// Fit the segment model on the customers at `as_of` (`data`: the
/// per-line sales, or aggregates a warehouse computed).
pub fn fit_segment_model<D: FeatureData + ?Sized>(
    data: &D,
    as_of: NaiveDate,
    params: &crate::segments::SegmentParams,
    scramble_seed: Option<u64>,
) -> Result<SegmentsFit> {
    let features = SegmentFeatures::compute(data, Some(as_of), None)
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
    /// What came back from the warehouse (`None`: a Parquet folder).
    pub fetched: Option<Fetched>,
}

/// `analytics train`: fit every model on `data`, commit each as a new
/// version and promote it (under the folder's lock, after a recovery).
pub fn train_job(opts: &TrainJobOptions) -> Result<TrainJobResult> {
    let say = Progress(opts.progress);
    let _lock = JobLock::acquire(&opts.models, "train")?;
    let reg = Registry::open(&opts.models)?;
    let recovered = reg.recover()?;
    let (input, fetched) = load_input(&opts.data, opts.as_of, &say)?;
    let data = input.features();
    let as_of = opts.as_of.unwrap_or_else(|| data.default_as_of());
    say.say("training the customer-spend models…");
    let spend = crate::models::train_all(data, Some(as_of), &opts.params.train)
        .map_err(training("training the customer-spend models"))?;
    say.say("fitting the segment model…");
    let segments = fit_segment_model(data, as_of, &opts.params.segments, None)?;
    let spend_version = commit_spend(&reg, &spend, &opts.params, Job::Train, Decision::Promoted)?;
    reg.promote(SPEND, spend_version.id)?;
    let segments_version = commit_segments(&reg, &segments, Job::Train, Decision::Promoted)?;
    reg.promote(SEGMENTS, segments_version.id)?;
    Ok(TrainJobResult {
        spend,
        spend_version,
        segments,
        segments_version,
        recovered,
        defects_removed: input.report().total_defects(),
        fetched,
    })
}
