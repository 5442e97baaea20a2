//! The retrain job's MLflow run (feature `tracking`).

use super::*;

/// MLflow: one run per retrain when `MLFLOW_TRACKING_URI` is set (params,
/// the metrics of both contenders, the decisions as tags, the report and
/// the challengers' files as artifacts). `Ok(None)` when not configured.
pub(super) fn track(
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
    if let Some(st) = &report.segment_stability {
        run.metrics.insert(
            "segments.stability.adjusted_rand_index".into(),
            st.adjusted_rand_index,
        );
    }
    if let Some(m) = &report.segment_migration {
        run.metrics.insert(
            "segments.migration.stayed_share".into(),
            m.matrix.stayed_share(),
        );
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
