//! The one training entry point: features at the cutoffs, model selection
//! on a validation split, final fits, test scores.
//!
//! Protocol (`shared/spec/data-contract.md`, out of time), with `as_of` the
//! reference date:
//!
//! * **test**: features at `as_of − 180 d` train the final models, which are
//!   scored on the customers seen before `as_of − 90 d` (target: revenue in
//!   `[as_of − 90 d, as_of)`). The test set is used for nothing else.
//! * **validation** (model selection, never the test set): every candidate
//!   is fitted on the features at `as_of − 270 d` and scored on those at
//!   `as_of − 180 d`. When there is no completed order before `as_of − 270 d`,
//!   a seeded 20 % of the training customers is held out instead.
//! * Per kind, the candidate with the lowest validation RMSE is refitted on
//!   the training cutoff; the kind with the lowest validation RMSE is
//!   [`TrainReport::best`] (the one to serve). The training mean
//!   ([`MeanParams`]) is always a candidate: on small data, where no model
//!   beats it out of time, validation serves it and
//!   [`TrainReport::selection`] says so.
//! * Prediction intervals: each kind's validation residuals (its best
//!   candidate, fitted at the validation-fit cutoff and scored at the
//!   training cutoff) calibrate its [`ConformalIntervals`], saved in its
//!   metadata; their coverage is measured on the test cutoff
//!   ([`TrainReport::coverage`], also for the last-90-days baseline).
//! * The CLV model ([`crate::clv`]) is fitted on every purchase before
//!   `as_of` with the same data, and saved with the version
//!   ([`TrainReport::clv`]); a failure there is reported, not fatal.
//! * The category list (share features) comes from the data before the
//!   training cutoff and is used at every cutoff, and saved with the models.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::features::{FeatureData, FeatureMatrix, HORIZON_DAYS};

use super::artifact::{CODE_VERSION, FORMAT_VERSION, Fnv64, ModelMeta, TrainedModel};
use super::errors::{ModelError, Result};
use super::forest::ForestParams;
use super::intervals::{ConformalIntervals, Coverage};
use super::linear::LinearParams;
use super::mean::MeanParams;
use super::metrics::Metrics;
use super::regressor::{Hyperparameters, ModelKind};
use super::xgboost::XgbParams;

/// What [`train_all`] fits. Read from the `train:` key of `params.yaml`
/// by field name (see [`crate::retrain::params`]); missing fields take the
/// defaults below.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainParams {
    /// Every candidate is scored on validation; the best of each kind is
    /// kept. Kinds without a candidate are not trained.
    pub candidates: Vec<Hyperparameters>,
    /// Seed of the fallback validation hold-out.
    pub holdout_seed: u64,
    /// Share of training customers held out by the fallback.
    pub holdout_share: f64,
    /// The CLV model fitted with the spend models (horizon and discounting
    /// of what serve answers).
    pub clv: crate::clv::ClvParams,
}

impl Default for TrainParams {
    /// One candidate per kind, with the benchmark's settings.
    fn default() -> Self {
        TrainParams {
            candidates: vec![
                LinearParams::default().into(),
                ForestParams::default().into(),
                XgbParams::default().into(),
                MeanParams::default().into(),
            ],
            holdout_seed: 42,
            holdout_share: 0.2,
            clv: crate::clv::ClvParams::default(),
        }
    }
}

impl TrainParams {
    pub fn check(&self) -> Result<&Self> {
        if self.candidates.is_empty() {
            return Err(ModelError::invalid(
                "train",
                "candidates",
                "at least one candidate model",
                "none",
            ));
        }
        for c in &self.candidates {
            c.check()?;
        }
        let s = self.holdout_share;
        if !(s.is_finite() && s > 0.0 && s < 1.0) {
            return Err(ModelError::invalid(
                "train",
                "holdout_share",
                "a share in (0, 1)",
                s,
            ));
        }
        self.clv.check()?;
        Ok(self)
    }
}

/// How the validation split was made.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ValidationSplit {
    /// Fitted at `fit_cutoff`, scored at `cutoff` (= the training cutoff).
    OutOfTime {
        fit_cutoff: NaiveDate,
        cutoff: NaiveDate,
    },
    /// A seeded share of the training customers was held out.
    Holdout { share: f64, seed: u64 },
}

/// One candidate's validation score.
#[derive(Clone, Debug, Serialize)]
pub struct CandidateScore {
    pub kind: ModelKind,
    pub hyperparameters: Hyperparameters,
    pub validation: Metrics,
    pub seconds: f64,
}

/// Row counts of the splits.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct SplitRows {
    pub validation_fit: usize,
    pub validation: usize,
    pub train: usize,
    pub test: usize,
}

/// Everything [`train_all`] did and made.
#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub as_of: NaiveDate,
    pub train_cutoff: NaiveDate,
    pub test_cutoff: NaiveDate,
    pub validation_split: ValidationSplit,
    pub categories: Vec<String>,
    pub feature_names: Vec<String>,
    pub rows: SplitRows,
    pub data_fingerprint: String,
    /// The naive baseline (revenue of the last 90 days) on validation and test.
    pub baseline_validation: Metrics,
    pub baseline_test: Metrics,
    pub candidates: Vec<CandidateScore>,
    /// The best candidate of each kind, refitted on the training cutoff,
    /// with its validation and test scores in its metadata.
    #[serde(skip)]
    pub models: Vec<TrainedModel>,
    /// The kind with the lowest validation RMSE.
    pub best: ModelKind,
    /// Why `best` was chosen, in a sentence (names the training mean when
    /// no model beat it).
    pub selection: String,
    /// Coverage of each model's intervals on the test cutoff, and of the
    /// last-90-days baseline's (`"baseline"`), calibrated alike.
    pub coverage: BTreeMap<String, Coverage>,
    /// The CLV model fitted at `as_of`, or why there is none.
    pub clv: Option<crate::clv::ClvModel>,
    pub clv_error: Option<String>,
    /// Wall-clock seconds by stage: `features` (training and test cutoffs),
    /// `train_<kind>` (final fit and test scoring), `select_features` (the
    /// validation split) and `select_<kind>` (validation fits).
    pub seconds: BTreeMap<String, f64>,
    /// CPU time (user, system) and minor page faults of the process during
    /// `features` and `select_features`, as `seconds` splits the wall time
    /// (absent where the system does not say): the benchmark reports them
    /// to tell the work from the kernel's cost of fresh pages.
    #[serde(skip)]
    pub cpu: BTreeMap<String, crate::process::CpuUse>,
    /// The training features (at `train_cutoff`): what the drift profile of
    /// a saved version is made from.
    #[serde(skip)]
    pub train_features: FeatureMatrix,
}

/// Options of [`train_all_with`] that are not hyperparameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainOptions {
    /// **Tests only**: permute the training and validation-fit targets with
    /// this seed before fitting (the test targets stay true), so that the
    /// models learn nothing and score worse than a model trained on the real
    /// targets. The retrain tests use it to make a challenger worse on
    /// purpose; never set it in production.
    pub shuffle_training_targets: Option<u64>,
}

impl TrainReport {
    pub fn model(&self, kind: ModelKind) -> Option<&TrainedModel> {
        self.models.iter().find(|m| m.kind() == kind)
    }

    /// Test metrics per model: `{"<model>": {"rmse", "mae", "r2", "n"}}`,
    /// plus `"baseline"`.
    pub fn test_metrics(&self) -> BTreeMap<String, Metrics> {
        let mut out: BTreeMap<String, Metrics> = self
            .models
            .iter()
            .filter_map(|m| Some((m.kind().name().to_string(), *m.meta.metrics.get("test")?)))
            .collect();
        out.insert("baseline".into(), self.baseline_test);
        out
    }
}

/// A feature matrix with its target and baseline.
#[derive(Clone)]
struct Split {
    x: FeatureMatrix,
    y: Vec<f64>,
    baseline: Vec<f64>,
}

fn split_at<D: FeatureData + ?Sized>(
    data: &D,
    cutoff: NaiveDate,
    categories: &[String],
) -> Result<Split> {
    let rows = data.training_rows(cutoff, categories)?;
    Ok(Split {
        x: rows.x,
        y: rows.y,
        baseline: rows.baseline,
    })
}

/// Rows of `s` whose index satisfies `keep`.
fn subset(s: &Split, keep: impl Fn(usize) -> bool) -> Result<Split> {
    let mut values = Vec::new();
    let (mut y, mut baseline) = (Vec::new(), Vec::new());
    for i in (0..s.x.n_rows()).filter(|&i| keep(i)) {
        values.extend_from_slice(s.x.row(i));
        y.push(s.y[i]);
        baseline.push(s.baseline[i]);
    }
    Ok(Split {
        x: FeatureMatrix::new(s.x.names().to_vec(), values)?,
        y,
        baseline,
    })
}

fn holdout(train: &Split, share: f64, seed: u64) -> Result<(Split, Split)> {
    // A stable pseudo-random draw per row from (seed, row): FNV of both.
    let draw = |i: usize| {
        let mut h = Fnv64::default();
        h.write(&seed.to_le_bytes());
        h.write(&(i as u64).to_le_bytes());
        (h.finish() >> 11) as f64 / (1u64 << 53) as f64
    };
    let fit = subset(train, |i| draw(i) >= share)?;
    let val = subset(train, |i| draw(i) < share)?;
    if fit.x.n_rows() == 0 || val.x.n_rows() == 0 {
        return Err(ModelError::Shape {
            model: "train",
            what: "validation hold-out",
            expected: "customers on both sides of the hold-out".into(),
            found: format!(
                "{} to fit and {} to validate",
                fit.x.n_rows(),
                val.x.n_rows()
            ),
        });
    }
    Ok((fit, val))
}

fn fingerprint(train: &Split, test: &Split, train_cutoff: NaiveDate) -> String {
    let mut h = Fnv64::default();
    h.write_str(&train_cutoff.to_string());
    for s in [train, test] {
        for n in s.x.names() {
            h.write_str(n);
        }
        h.write(&(s.x.n_rows() as u64).to_le_bytes());
        h.write_f64s(s.x.values());
        h.write_f64s(&s.y);
    }
    format!("fnv1a64:{:016x}", h.finish())
}

/// The cutoffs [`train_all`] reads features at, for reference date
/// `as_of`: validation fit (`as_of − 270 d`), training (`as_of − 180 d`)
/// and test (`as_of − 90 d`).
pub fn train_cutoffs(as_of: NaiveDate) -> [NaiveDate; 3] {
    let h = Duration::days(HORIZON_DAYS);
    [as_of - h - h - h, as_of - h - h, as_of - h]
}

/// The `data_fingerprint` [`train_all`] gives the data at `as_of` (no
/// model is fitted), with the customers of the training and test cutoffs:
/// what the retrain job compares with the live version's before training.
pub fn data_fingerprint<D: FeatureData + ?Sized>(
    data: &D,
    as_of: NaiveDate,
) -> Result<(String, SplitRows)> {
    let [_, train_cutoff, test_cutoff] = train_cutoffs(as_of);
    let data = data.for_cutoffs()?;
    let categories = data.categories_before(train_cutoff)?;
    let train = split_at(&*data, train_cutoff, &categories)?;
    let test = split_at(&*data, test_cutoff, &categories)?;
    let rows = SplitRows {
        train: train.x.n_rows(),
        test: test.x.n_rows(),
        ..SplitRows::default()
    };
    Ok((fingerprint(&train, &test, train_cutoff), rows))
}

/// Train, select and score every model at `as_of` (default: the data's
/// `as_of`, the day after the last order). The single entry point of the
/// CLI, the notebooks and the retrain job. `data` is the per-line sales
/// ([`crate::kpi::Sales`]) or aggregates a warehouse computed at
/// [`train_cutoffs`] (`source::WarehouseFeatures`).
pub fn train_all<D: FeatureData + ?Sized>(
    data: &D,
    as_of: Option<NaiveDate>,
    params: &TrainParams,
) -> Result<TrainReport> {
    train_all_with(data, as_of, params, &TrainOptions::default())
}

/// A seeded Fisher–Yates permutation of `y` (for [`TrainOptions`]).
fn shuffle(y: &mut [f64], seed: u64) {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    for i in (1..y.len()).rev() {
        let mut h = Fnv64::default();
        h.write(&state.to_le_bytes());
        state = h.finish();
        let j = (state % (i as u64 + 1)) as usize;
        y.swap(i, j);
    }
}

/// [`train_all`] with [`TrainOptions`].
pub fn train_all_with<D: FeatureData + ?Sized>(
    data: &D,
    as_of: Option<NaiveDate>,
    params: &TrainParams,
    options: &TrainOptions,
) -> Result<TrainReport> {
    params.check()?;
    // The training mean is always a candidate: the baseline to beat.
    let mut candidates_hp = params.candidates.clone();
    if !candidates_hp
        .iter()
        .any(|c| c.kind() == ModelKind::TrainingMean)
    {
        candidates_hp.push(MeanParams::default().into());
    }
    let as_of = as_of.unwrap_or_else(|| data.default_as_of());
    let [val_fit_cutoff, train_cutoff, test_cutoff] = train_cutoffs(as_of);
    // The data as given, for the CLV summary (`data` below is grouped).
    let source = data;
    let mut seconds = BTreeMap::new();

    let t0 = Instant::now();
    let cpu0 = crate::process::CpuUse::now();
    // Local lines are grouped by customer once for the three cutoffs.
    let data = data.for_cutoffs()?;
    let categories = data.categories_before(train_cutoff)?;
    let mut train = split_at(&*data, train_cutoff, &categories)?;
    // Validation scores on the training cutoff's features with their own
    // (never shuffled) targets: a copy, not a second computation.
    let unshuffled = options.shuffle_training_targets.map(|_| train.clone());
    if let Some(seed) = options.shuffle_training_targets {
        shuffle(&mut train.y, seed);
    }
    let test = split_at(&*data, test_cutoff, &categories)?;
    let feature_names = train.x.names().to_vec();
    // The validation split is selection work: timed apart from `features`
    // (the training and test cutoffs, what a plain fit-and-score needs).
    let t_select = Instant::now();
    let cpu_select = crate::process::CpuUse::now();
    let (val_fit, val, validation_split) = match split_at(&*data, val_fit_cutoff, &categories) {
        Ok(mut fit) if fit.x.n_rows() >= 10 => {
            if let Some(seed) = options.shuffle_training_targets {
                shuffle(&mut fit.y, seed.wrapping_add(1));
            }
            // The training split itself, borrowed: a copy of it was most of
            // this stage at millions of customers.
            let val = match unshuffled {
                Some(u) => std::borrow::Cow::Owned(u),
                None => std::borrow::Cow::Borrowed(&train),
            };
            (
                fit,
                val,
                ValidationSplit::OutOfTime {
                    fit_cutoff: val_fit_cutoff,
                    cutoff: train_cutoff,
                },
            )
        }
        _ => {
            let (fit, val) = holdout(&train, params.holdout_share, params.holdout_seed)?;
            (
                fit,
                std::borrow::Cow::Owned(val),
                ValidationSplit::Holdout {
                    share: params.holdout_share,
                    seed: params.holdout_seed,
                },
            )
        }
    };
    let select_features = t_select.elapsed().as_secs_f64();
    let cpu_selected = crate::process::CpuUse::now();
    drop(data);
    let mut cpu = BTreeMap::new();
    if let (Some(start), Some(select), Some(selected), Some(end)) = (
        cpu0,
        cpu_select,
        cpu_selected,
        crate::process::CpuUse::now(),
    ) {
        let selecting = selected.since(select);
        cpu.insert("features".to_string(), end.since(start).since(selecting));
        cpu.insert("select_features".to_string(), selecting);
    }
    seconds.insert(
        "features".to_string(),
        t0.elapsed().as_secs_f64() - select_features,
    );
    seconds.insert("select_features".to_string(), select_features);

    let baseline_validation = Metrics::compute(&val.y, &val.baseline)?;
    let baseline_test = Metrics::compute(&test.y, &test.baseline)?;
    let data_fingerprint = fingerprint(&train, &test, train_cutoff);

    // Selection: every candidate on the validation split.
    let mut candidates = Vec::new();
    let mut validation_predictions = Vec::new();
    for hp in &candidates_hp {
        let t = Instant::now();
        let m = hp.fit(&val_fit.x, &val_fit.y)?;
        let predicted = m.predict(&val.x)?;
        let validation = Metrics::compute(&val.y, &predicted)?;
        validation_predictions.push(predicted);
        let secs = t.elapsed().as_secs_f64();
        *seconds
            .entry(format!("select_{}", hp.kind()))
            .or_insert(0.0) += secs;
        candidates.push(CandidateScore {
            kind: hp.kind(),
            hyperparameters: hp.clone(),
            validation,
            seconds: secs,
        });
    }

    // Final fits: the best candidate of each kind, on the training cutoff.
    let mut models = Vec::new();
    let mut coverage = BTreeMap::new();
    for kind in ModelKind::ALL {
        let Some((best_i, best)) = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == kind)
            .min_by(|a, b| a.1.validation.rmse.total_cmp(&b.1.validation.rmse))
        else {
            continue;
        };
        let t = Instant::now();
        let model = best.hyperparameters.fit(&train.x, &train.y)?;
        let test_predictions = model.predict(&test.x)?;
        let test_metrics = Metrics::compute(&test.y, &test_predictions)?;
        // Intervals from this kind's out-of-time validation residuals,
        // measured on the test cutoff.
        let intervals = match ConformalIntervals::calibrate(&validation_predictions[best_i], &val.y)
        {
            Ok(mut iv) => {
                let c = iv.coverage(&test_predictions, &test.y)?;
                iv.test_coverage = Some(c);
                coverage.insert(kind.name().to_string(), c);
                Some(iv)
            }
            Err(_) => None,
        };
        seconds.insert(format!("train_{kind}"), t.elapsed().as_secs_f64());
        let metrics = BTreeMap::from([
            ("validation".to_string(), best.validation),
            ("test".to_string(), test_metrics),
            ("baseline_test".to_string(), baseline_test),
        ]);
        models.push(TrainedModel {
            meta: ModelMeta {
                format_version: FORMAT_VERSION,
                kind,
                hyperparameters: best.hyperparameters.clone(),
                feature_names: feature_names.clone(),
                categories: categories.clone(),
                train_cutoff,
                horizon_days: HORIZON_DAYS,
                train_rows: train.x.n_rows(),
                data_fingerprint: data_fingerprint.clone(),
                metrics,
                intervals,
                code_version: CODE_VERSION.to_string(),
                created_at: chrono::Utc::now().to_rfc3339(),
            },
            model,
        });
    }
    let best = models
        .iter()
        .filter_map(|m| Some((m.kind(), m.meta.metrics.get("validation")?.rmse)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
        .ok_or_else(|| ModelError::invalid("train", "candidates", "at least one model", "none"))?;
    if let Ok(iv) = ConformalIntervals::calibrate(&val.baseline, &val.y) {
        coverage.insert("baseline".into(), iv.coverage(&test.baseline, &test.y)?);
    }
    let selection = selection_sentence(&models, best);

    // The CLV model on every purchase before as_of.
    let t = Instant::now();
    let (clv, clv_error) = match source.clv_summary(as_of) {
        Some(Ok(summary)) => match params.clv.fit(&summary) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e.to_string())),
        },
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (
            None,
            Some("this data has no per-day purchases to summarise (features computed in the warehouse): no CLV model".to_string()),
        ),
    };
    seconds.insert("clv".to_string(), t.elapsed().as_secs_f64());

    Ok(TrainReport {
        as_of,
        train_cutoff,
        test_cutoff,
        validation_split,
        categories,
        feature_names,
        rows: SplitRows {
            validation_fit: val_fit.x.n_rows(),
            validation: val.x.n_rows(),
            train: train.x.n_rows(),
            test: test.x.n_rows(),
        },
        data_fingerprint,
        baseline_validation,
        baseline_test,
        candidates,
        models,
        best,
        selection,
        coverage,
        clv,
        clv_error,
        seconds,
        cpu,
        train_features: train.x,
    })
}

/// The sentence that says why `best` is served: against the training mean,
/// or why the training mean is.
fn selection_sentence(models: &[TrainedModel], best: ModelKind) -> String {
    let rmse = |k: ModelKind| {
        models
            .iter()
            .find(|m| m.kind() == k)
            .and_then(|m| m.meta.metrics.get("validation"))
            .map(|m| m.rmse)
    };
    let mean = rmse(ModelKind::TrainingMean);
    let runner_up = models
        .iter()
        .filter(|m| m.kind() != ModelKind::TrainingMean)
        .filter_map(|m| Some((m.kind(), m.meta.metrics.get("validation")?.rmse)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match (best, mean, runner_up) {
        (ModelKind::TrainingMean, Some(m), Some((k, r))) => format!(
            "no model beat the training mean on validation (RMSE {m:.2}; best model {k}: {r:.2}): the training mean is served"
        ),
        (ModelKind::TrainingMean, Some(m), None) => {
            format!("only the training mean was trained (validation RMSE {m:.2})")
        }
        (k, Some(m), _) => {
            let r = rmse(k).unwrap_or(f64::NAN);
            format!(
                "{k} chosen on validation: RMSE {r:.2} against {m:.2} for the training mean ({:.1} % lower)",
                100.0 * (1.0 - r / m)
            )
        }
        (k, None, _) => format!("{k} chosen on validation (lowest RMSE)"),
    }
}
