//! The retrain job: champion against challenger per model family, on the
//! same new data (the steps are in the module documentation of `retrain`).

use super::files::*;
use super::*;

// ---------------------------------------------------------------- retrain

/// Ways to make a challenger worse on purpose. **Tests only** (feature
/// `test-hooks`, which only the tests turn on; no command-line flag): they
/// check that a bad challenger is rejected.
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
    /// Train even when the data fingerprint equals the live versions'
    /// (without it, such a run trains nothing and says so).
    pub force: bool,
    /// Tests only (feature `test-hooks`): see [`Sabotage`].
    #[cfg(feature = "test-hooks")]
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
            force: false,
            #[cfg(feature = "test-hooks")]
            sabotage: Sabotage::default(),
        }
    }

    /// The sabotage asked for (none without the feature `test-hooks`).
    fn sabotage(&self) -> Sabotage {
        #[cfg(feature = "test-hooks")]
        return self.sabotage.clone();
        #[cfg(not(feature = "test-hooks"))]
        Sabotage::default()
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

/// One model family's contest on the new data: the challenger and the live
/// champion (`None`: no live version), each with its score on the same rows.
pub(super) struct Contest {
    pub(super) family: &'static str,
    /// `rmse` (lower is better) or `silhouette` (higher is better).
    pub(super) metric: &'static str,
    pub(super) higher_is_better: bool,
    pub(super) challenger: Contender,
    pub(super) champion: Option<Contender>,
}

impl Contest {
    /// Decide, commit the challenger with that decision (`commit`), promote
    /// it when it won, prune the family: what the report says about it.
    pub(super) fn settle(
        self,
        reg: &Registry,
        opts: &RetrainOptions,
        commit: impl FnOnce(Decision) -> Result<VersionInfo>,
    ) -> Result<(ModelDecision, VersionInfo)> {
        let (decision, reason) = match &self.champion {
            None => (
                Decision::Promoted,
                "no live version yet: the challenger becomes the first".to_string(),
            ),
            Some(c) => decide(
                self.metric,
                self.higher_is_better,
                self.challenger.score,
                c.score,
                opts.tolerance,
            ),
        };
        let before = reg.live_version(self.family)?;
        let version = commit(decision)?;
        if decision == Decision::Promoted {
            reg.promote(self.family, version.id)?;
        }
        let pruned = reg.prune(self.family, opts.keep)?;
        let md = ModelDecision {
            decision,
            reason,
            metric: self.metric.into(),
            higher_is_better: self.higher_is_better,
            challenger: Contender {
                version: Some(version.id.to_string()),
                ..self.challenger
            },
            champion: self.champion,
            live_before: before.map(|v| v.to_string()),
            live_after: reg.live_version(self.family)?.map(|v| v.to_string()),
            pruned: pruned.into_iter().map(|i| i.to_string()).collect(),
        };
        Ok((md, version))
    }
}

/// The comparison rule: is the challenger good enough?
pub(super) fn decide(
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

pub(super) fn n4(x: f64) -> String {
    crate::locale::number(x, 4)
}

pub(super) fn locale_pct(x: f64) -> String {
    crate::locale::percent(x)
}

pub(super) fn metrics_json(m: &Metrics) -> serde_json::Value {
    json!({"rmse": m.rmse, "mae": m.mae, "r2": m.r2, "n": m.n})
}

/// `metrics` with the measured coverage of the model's 80 % and 95 %
/// prediction intervals on the test cutoff (`coverage_80`, `coverage_95`),
/// when it has intervals.
pub(super) fn with_coverage(
    mut metrics: serde_json::Value,
    coverage: Option<&crate::models::Coverage>,
) -> serde_json::Value {
    if let (Some(c), Some(obj)) = (coverage, metrics.as_object_mut()) {
        obj.insert("coverage_80".into(), json!(c.coverage_80));
        obj.insert("coverage_95".into(), json!(c.coverage_95));
    }
    metrics
}

pub(super) fn segment_json(s: &SegmentScore) -> serde_json::Value {
    json!({
        "silhouette": s.silhouette,
        "k": s.k,
        "customers": s.customers,
        "sample_rows": s.sample_rows,
        "sizes": s.sizes,
    })
}

pub(super) fn now() -> String {
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
    let (input, fetched) = load_input(&opts.data, opts.as_of, &say)?;
    let rows = input.rows();
    let lines = rows["order_items"];
    if lines < opts.min_rows {
        return Err(RetrainError::TooFewRows {
            data: opts.data.label(),
            min: opts.min_rows,
            found: lines,
        });
    }
    let data = input.features();
    let as_of = opts.as_of.unwrap_or_else(|| data.default_as_of());
    let summary = |fingerprint: String, rows_train, rows_test, segmented| DataSummary {
        source: opts.data.label(),
        fingerprint,
        rows: rows
            .iter()
            .map(|(t, n)| (t.to_string(), *n as u64))
            .collect(),
        defects_removed: input.report().total_defects(),
        as_of,
        train_cutoff: crate::models::train_cutoffs(as_of)[1],
        test_cutoff: test_cutoff(as_of),
        customers_train: rows_train,
        customers_test: rows_test,
        customers_segments: segmented,
        fetched,
    };

    // The same data as the live versions: nothing to learn (unless forced,
    // or a test made this challenger different on purpose).
    if !opts.force
        && opts.sabotage() == Sabotage::default()
        && let Some(same) = unchanged(&reg, data, as_of, &opts.params)?
    {
        say.say(format!("{}; nothing trained", same.reason));
        let mut report = RetrainReport {
            started_at,
            finished_at: now(),
            seconds: t0.elapsed().as_secs_f64(),
            models_dir: opts.models.display().to_string(),
            data: summary(same.fingerprint, same.train, same.test, same.segmented),
            tolerance: opts.tolerance,
            keep: opts.keep,
            recovered: recovered.iter().map(|p| p.display().to_string()).collect(),
            drift: BTreeMap::new(),
            decision: BTreeMap::new(),
            models: BTreeMap::new(),
            warnings,
            skipped: Some(same.reason),
            segment_stability: None,
            segment_migration: None,
        };
        report.seconds = t0.elapsed().as_secs_f64();
        let (json_path, text_path) = write_report(&report, opts)?;
        drop(lock);
        return Ok(RetrainOutcome {
            report,
            json_path,
            text_path,
            tracking_url: None,
        });
    }

    // Challengers.
    say.say("training the customer-spend challenger…");
    let sabotage = opts.sabotage();
    let train_opts = TrainOptions {
        shuffle_training_targets: sabotage.shuffle_targets,
    };
    let spend = crate::models::train_all_with(data, Some(as_of), &opts.params.train, &train_opts)
        .map_err(training("training the customer-spend challenger"))?;
    say.say("fitting the segments challenger…");
    let segs = fit_segment_model(
        data,
        as_of,
        &opts.params.segments,
        sabotage.scramble_segment_features,
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
    let drift = BTreeMap::from([
        (
            SPEND.to_string(),
            drift_of(
                live_spend.as_ref().map(|l| (&l.version, &l.profile)),
                &spend.train_features,
            ),
        ),
        (
            SEGMENTS.to_string(),
            drift_of(
                live_segs.as_ref().map(|l| (&l.version, &l.profile)),
                &segs.features.matrix,
            ),
        ),
    ]);

    // Scores on the same new data.
    say.say("scoring champion and challenger on the new out-of-time test set…");
    let best = spend
        .model(spend.best)
        .ok_or_else(|| RetrainError::Training {
            stage: "training the customer-spend challenger",
            source: "the best model is missing from the report".into(),
        })?;
    let challenger_test = *best
        .meta
        .metrics
        .get("test")
        .ok_or_else(|| RetrainError::Training {
            stage: "training the customer-spend challenger",
            source: "the best model has no test score".into(),
        })?;
    let champion_spend = match &live_spend {
        Some(l) => match score_spend(&l.model, data, spend.test_cutoff) {
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
    let spend_contest = Contest {
        family: SPEND,
        metric: "rmse",
        higher_is_better: false,
        challenger: Contender {
            version: None,
            model: spend.best.name().into(),
            score: Some(challenger_test.rmse),
            metrics: with_coverage(
                metrics_json(&challenger_test),
                spend.coverage.get(spend.best.name()),
            ),
        },
        champion: champion_spend.map(|(l, m)| Contender {
            version: Some(l.version.id.to_string()),
            model: l.model.kind().name().into(),
            score: m.map(|m| m.rmse),
            metrics: m
                .map(|m| metrics_json(&m))
                .unwrap_or(serde_json::Value::Null),
        }),
    };
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
                score_segments(&l.model, data, as_of, opts.silhouette_sample)
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
    // Stability: the champion's and the challenger's segments of the same customers.
    let segment_stability = live_segs.as_ref().and_then(|l| {
        let challenger = &segs.segmentation.model;
        let run = || -> std::result::Result<crate::segments::Stability, SegmentError> {
            if l.model.meta.categories == segs.features.categories {
                crate::segments::stability(&l.model, &segs.features, challenger, &segs.features)
            } else {
                let f = SegmentFeatures::compute(data, Some(as_of), Some(&l.model.meta.categories))?;
                crate::segments::stability(&l.model, &f, challenger, &segs.features)
            }
        };
        match run() {
            Ok(st) => Some(SegmentStability {
                champion_version: l.version.id.to_string(),
                adjusted_rand_index: st.adjusted_rand_index,
                customers: st.customers,
                same_name_share: st.same_name_share,
            }),
            Err(e) => {
                warnings.push(format!(
                    "the segment stability against the live {SEGMENTS} model {} could not be computed: {e}",
                    l.version.id
                ));
                None
            }
        }
    });
    let seg_model_name = |m: &SegmentModel| format!("{} k={}", m.meta.algorithm, m.k());
    let seg_contest = Contest {
        family: SEGMENTS,
        metric: "silhouette",
        higher_is_better: true,
        challenger: Contender {
            version: None,
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
    };

    // Per family: commit the challenger, promote it if it won, prune.
    let (spend_md, spend_version) = spend_contest.settle(&reg, opts, |d| {
        commit_spend(&reg, &spend, &opts.params, Job::Retrain, d)
    })?;
    let (seg_md, seg_version) = seg_contest.settle(&reg, opts, |d| {
        commit_segments(&reg, &segs, Job::Retrain, d)
    })?;
    // Who moved between segments in the last 90 days, by the model live now.
    let (mig_model, mig_who, mig_version) = match &live_segs {
        Some(l) if seg_md.decision != Decision::Promoted => {
            (&l.model, "champion", l.version.id.to_string())
        }
        _ => (
            &segs.segmentation.model,
            "challenger",
            seg_version.id.to_string(),
        ),
    };
    let segment_migration = match MigrationMatrix::compute(mig_model, data, as_of, MIGRATION_DAYS) {
        Ok(matrix) => Some(SegmentMigration {
            model: mig_who.to_string(),
            version: Some(mig_version),
            matrix,
        }),
        Err(e) => {
            warnings.push(format!(
                "the segment migration matrix could not be computed: {e}"
            ));
            None
        }
    };
    let models = BTreeMap::from([
        (SPEND.to_string(), spend_md),
        (SEGMENTS.to_string(), seg_md),
    ]);
    let decision = models
        .iter()
        .map(|(k, m)| (k.clone(), m.decision))
        .collect();
    let mut report = RetrainReport {
        started_at: started_at.clone(),
        finished_at: String::new(),
        seconds: 0.0,
        models_dir: opts.models.display().to_string(),
        data: summary(
            spend.data_fingerprint.clone(),
            spend.rows.train,
            spend.rows.test,
            segs.features.n_customers(),
        ),
        tolerance: opts.tolerance,
        keep: opts.keep,
        recovered: recovered.iter().map(|p| p.display().to_string()).collect(),
        drift,
        decision,
        models,
        warnings,
        skipped: None,
        segment_stability,
        segment_migration,
    };

    report.finished_at = now();
    report.seconds = t0.elapsed().as_secs_f64();
    let (json_path, text_path) = write_report(&report, opts)?;

    // Tracking last: a failure there never undoes what was promoted.
    let mut tracking_url = None;
    if opts.track {
        // As they are now (pruning may have removed a rejected one).
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

/// Why a run trains nothing: the new data's fingerprints equal the live
/// versions'.
struct Unchanged {
    reason: String,
    fingerprint: String,
    train: usize,
    test: usize,
    segmented: usize,
}

/// `Some` when both live versions were fitted on exactly this data (their
/// manifests' `data_fingerprint` equal the ones these models would get)
/// with the same parameters: retraining would learn nothing new. No live
/// version, one without a fingerprint, or other parameters: `None`.
fn unchanged(
    reg: &Registry,
    data: &dyn FeatureData,
    as_of: NaiveDate,
    params: &PipelineParams,
) -> Result<Option<Unchanged>> {
    let live = |family: &str,
                key: &str,
                params: serde_json::Value|
     -> Result<Option<(VersionId, String)>> {
        let Some(id) = reg.live_version(family)? else {
            return Ok(None);
        };
        let m = reg.version(family, id)?.manifest;
        Ok(m.data_fingerprint
            .filter(|_| m.info.get(key) == Some(&params))
            .map(|f| (id, f)))
    };
    let (Some((spend_id, spend_fp)), Some((seg_id, seg_fp))) = (
        live(SPEND, "params", json!(params.train))?,
        live(SEGMENTS, "hyperparameters", json!(params.segments))?,
    ) else {
        return Ok(None);
    };
    let (fingerprint, rows) = crate::models::data_fingerprint(data, as_of)
        .map_err(training("computing the data fingerprint"))?;
    if fingerprint != spend_fp {
        return Ok(None);
    }
    let features = SegmentFeatures::compute(data, Some(as_of), None)
        .map_err(segmenting("computing the segmentation features"))?;
    let seg_now = crate::segments::segment_fingerprint(&features, &params.segments)
        .map_err(segmenting("computing the segments' data fingerprint"))?;
    if seg_now != seg_fp {
        return Ok(None);
    }
    Ok(Some(Unchanged {
        reason: format!(
            "the data is unchanged: its fingerprints equal those of the live {SPEND} {spend_id} \
             ({fingerprint}) and {SEGMENTS} {seg_id} ({seg_now}); --force retrains anyway"
        ),
        fingerprint,
        train: rows.train,
        test: rows.test,
        segmented: features.n_customers(),
    }))
}

/// A live version's drift: its training profile against the new features
/// (`None` without a live version or a profile).
fn drift_of(
    live: Option<(&VersionInfo, &Option<TrainingProfile>)>,
    features: &crate::features::FeatureMatrix,
) -> Option<DriftReport> {
    let (version, profile) = live?;
    Some(profile.as_ref()?.compare(&version.id.to_string(), features))
}

/// The report as JSON and text under the report folder, each all-or-nothing.
fn write_report(report: &RetrainReport, opts: &RetrainOptions) -> Result<(PathBuf, PathBuf)> {
    let dir = opts
        .report_dir
        .clone()
        .unwrap_or_else(|| opts.models.join("reports"));
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let json_path = dir.join(format!("retrain-{stamp}.json"));
    let text_path = dir.join(format!("retrain-{stamp}.txt"));
    write_json(&json_path, report)?;
    write_file_atomic(&text_path, report.to_text().as_bytes())?;
    Ok((json_path, text_path))
}

pub(super) fn say_always(msg: &str) {
    eprintln!("{msg}");
}

#[cfg(feature = "tracking")]
use super::track::track;

/// Without the MLflow client (feature `tracking`), a configured tracking
/// server is a warning, never silence.
#[cfg(not(feature = "tracking"))]
fn track(
    _: &RetrainReport,
    _: &Path,
    _: &Path,
    _: &[Option<VersionInfo>],
) -> std::result::Result<Option<String>, String> {
    match std::env::var_os("MLFLOW_TRACKING_URI") {
        Some(_) => Err(
            "MLFLOW_TRACKING_URI is set, but this build has no MLflow client \
                        (analytics-lib feature `tracking`)"
                .into(),
        ),
        None => Ok(None),
    }
}
