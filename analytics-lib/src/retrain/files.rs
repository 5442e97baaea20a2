//! A version's files: writing them (through the registry's layout names),
//! committing a version with its notes, and loading the live models back.

use super::*;

// ---------------------------------------------------------------- saving

/// Metrics of a training report as JSON: `{"<kind>": {"validation", "test"}, "baseline": {…}}`.
pub(super) fn spend_metrics_json(report: &TrainReport) -> serde_json::Value {
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
        let path = spend_artifact(dir, m.kind());
        m.save(&path).map_err(file_err(&path, "saving"))?;
        write_json(&spend_meta_path(dir, m.kind()), &m.meta)?;
    }
    let best = BestChoice {
        best: report.best,
        chosen_on: Some("validation".into()),
        as_of: Some(report.as_of),
        train_cutoff: Some(report.train_cutoff),
        test_cutoff: Some(report.test_cutoff),
        data_fingerprint: Some(report.data_fingerprint.clone()),
    };
    write_json(&dir.join(BEST_FILE), &best)?;
    if let Some(clv) = &report.clv {
        let path = dir.join(CLV_FILE);
        clv.save(&path).map_err(file_err(&path, "saving"))?;
    }
    write_json(
        &dir.join(PROFILE_FILE),
        &TrainingProfile::of_matrix(&report.train_features),
    )
}

/// Write the segment files into `dir`: `segments.msgpack`, `segments.json`
/// (metadata and profiles, readable) and `training_profile.json`.
pub fn write_segment_files(dir: &Path, fit: &SegmentsFit) -> Result<()> {
    let model = &fit.segmentation.model;
    let path = segment_artifact(dir);
    model.save(&path).map_err(file_err(&path, "saving"))?;
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
pub(super) fn spend_notes(
    report: &TrainReport,
    params: &PipelineParams,
    job: Job,
    status: Decision,
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
            "selection": report.selection,
            "metrics": spend_metrics_json(report),
            "coverage": report.coverage,
            "clv": report.clv.as_ref().map(|m| json!({
                "bgnbd": m.bgnbd,
                "gamma_gamma": m.gamma_gamma,
                "as_of": m.as_of,
                "customers": m.customers,
                "repeat_customers": m.repeat_customers,
                "horizon_days": m.params.horizon_days,
                "discount_rate": m.params.discount_rate,
            })),
            "clv_error": report.clv_error,
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
pub(super) fn segment_notes(fit: &SegmentsFit, job: Job, status: Decision) -> VersionNotes {
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

pub(super) fn commit_spend(
    reg: &Registry,
    report: &TrainReport,
    params: &PipelineParams,
    job: Job,
    status: Decision,
) -> Result<VersionInfo> {
    let staging = reg.stage(SPEND)?;
    write_spend_files(staging.dir(), report)?;
    Ok(staging.commit(spend_notes(report, params, job, status))?)
}

pub(super) fn commit_segments(
    reg: &Registry,
    fit: &SegmentsFit,
    job: Job,
    status: Decision,
) -> Result<VersionInfo> {
    let staging = reg.stage(SEGMENTS)?;
    write_segment_files(staging.dir(), fit)?;
    Ok(staging.commit(segment_notes(fit, job, status))?)
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

pub(super) fn live_error<E: Into<Cause>>(
    model: &str,
    id: VersionId,
) -> impl FnOnce(E) -> RetrainError {
    let what = format!("the live {model} version {id}");
    move |e| RetrainError::Live {
        what,
        source: e.into(),
    }
}

pub(super) fn read_profile(dir: &Path) -> Option<TrainingProfile> {
    read_json(&dir.join(PROFILE_FILE)).ok()
}

/// Load the live customer-spend model named by its `best.json`, after
/// checking the version's files against its manifest. `None` without a live version.
pub fn load_live_spend(reg: &Registry) -> Result<Option<LiveSpend>> {
    let Some(id) = reg.live_version(SPEND)? else {
        return Ok(None);
    };
    // Decoded from the bytes the manifest check hashed (read once).
    let verified = reg.read_verified(SPEND, id)?;
    let best = BestChoice::of_verified(&verified)?;
    let name = crate::registry::spend_artifact_name(best.best);
    let model = TrainedModel::from_bytes(verified.bytes(&name)?, &verified.path(&name))
        .map_err(live_error(SPEND, id))?;
    let profile = read_profile(&verified.info.dir);
    Ok(Some(LiveSpend {
        version: verified.info,
        model,
        profile,
    }))
}

/// Load the live segment model (verified). `None` without a live version.
pub fn load_live_segments(reg: &Registry) -> Result<Option<LiveSegments>> {
    let Some(id) = reg.live_version(SEGMENTS)? else {
        return Ok(None);
    };
    let verified = reg.read_verified(SEGMENTS, id)?;
    let model = SegmentModel::from_bytes(
        verified.bytes(registry::SEGMENT_FILE)?,
        &verified.path(registry::SEGMENT_FILE),
    )
    .map_err(live_error(SEGMENTS, id))?;
    let profile = read_profile(&verified.info.dir);
    Ok(Some(LiveSegments {
        version: verified.info,
        model,
        profile,
    }))
}
