//! Build a model registry for the serving benchmark (`bench/load.sh`):
//! train the customer-spend models (the library's default parameters) and
//! the segment model on a curated data folder, and write them as live
//! versions the way the training jobs do (`Registry::stage` → files →
//! `Staging::commit` → `Registry::promote`).
//!
//! ```text
//! cargo run --release -p serve --example bench_registry -- DATA_DIR MODELS_DIR
//! ```
//!
//! A model that already has a live version in MODELS_DIR is left alone.
//! With `BENCH_IDS=FILE`, up to 1,000 ids of customers the service can look
//! up (a completed order before the data's reference date) are written to
//! FILE, one a line, spread over the data (for `/predict` by id).
//!
//! `BENCH_LIVE=linear|random_forest|xgboost` chooses the customer-spend kind
//! served (default: the validation winner): when the live version serves
//! another kind, a copy of it naming `BENCH_LIVE` in `best.json` is
//! committed and promoted (the models themselves are not retrained).

use std::path::PathBuf;

use analytics_lib::kpi::Sales;
use analytics_lib::models::{ModelKind, TrainParams, train_all};
use analytics_lib::registry::{Registry, SEGMENT_FILE, SEGMENTS, SPEND, VersionNotes};
use analytics_lib::segments::{SegmentParams, segment_customers};
use anyhow::{Context, bail};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, models] = args.as_slice() else {
        bail!(
            "usage: bench_registry DATA_DIR MODELS_DIR (expected 2 arguments, found {})",
            args.len()
        );
    };
    let (data, models) = (PathBuf::from(data), PathBuf::from(models));
    let live_kind = match std::env::var("BENCH_LIVE") {
        Ok(k) if !k.is_empty() => Some(
            k.parse::<ModelKind>()
                .with_context(|| format!("while reading BENCH_LIVE={k}"))?,
        ),
        _ => None,
    };
    if let Ok(file) = std::env::var("BENCH_IDS")
        && !file.is_empty()
    {
        write_ids(&data, &PathBuf::from(file))?;
    }
    let reg = Registry::open(&models)?;
    let need_spend = reg.live_version(SPEND)?.is_none();
    let need_segments = reg.live_version(SEGMENTS)?.is_none();
    if !need_spend && !need_segments {
        eprintln!(
            "bench_registry: both models already live in {}",
            models.display()
        );
        return serve_kind(&reg, live_kind);
    }
    let started = std::time::Instant::now();
    let tables = analytics_lib::data::loader::load(&data)
        .and_then(|d| d.collect())
        .with_context(|| format!("while loading {}", data.display()))?;
    let cleaned = analytics_lib::clean::clean(&tables).context("while cleaning")?;
    let sales = Sales::from_frames(&cleaned.frames).context("while preparing sales")?;

    if need_spend {
        let report = train_all(&sales, None, &TrainParams::default()).context("while training")?;
        let staging = reg.stage(SPEND)?;
        let mut metrics = serde_json::Map::new();
        for m in &report.models {
            let kind = m.kind().name();
            m.save(&staging.dir().join(format!("{kind}.msgpack")))?;
            std::fs::write(
                staging.dir().join(format!("{kind}.json")),
                serde_json::to_string_pretty(&m.meta)?,
            )?;
            metrics.insert(kind.to_string(), serde_json::to_value(&m.meta.metrics)?);
        }
        std::fs::write(
            staging.dir().join("best.json"),
            json!({"best": report.best.name(), "chosen_on": "validation"}).to_string(),
        )?;
        let v = staging.commit(VersionNotes {
            data_fingerprint: None,
            info: json!({"job": "bench_registry", "best": report.best.name(), "metrics": metrics}),
        })?;
        reg.promote(SPEND, v.id)?;
        eprintln!(
            "bench_registry: customer_spend {} live ({} best) after {:.1} s",
            v.id,
            report.best.name(),
            started.elapsed().as_secs_f64()
        );
    }
    if need_segments {
        let (_, seg) = segment_customers(&sales, None, &SegmentParams::default())
            .context("while fitting the segments")?;
        let staging = reg.stage(SEGMENTS)?;
        seg.model.save(&staging.dir().join(SEGMENT_FILE))?;
        let v = staging.commit(VersionNotes {
            data_fingerprint: Some(seg.model.meta.data_fingerprint.clone()),
            info: json!({
                "job": "bench_registry",
                "metrics": {"k": seg.model.k(), "silhouette": seg.model.meta.silhouette},
            }),
        })?;
        reg.promote(SEGMENTS, v.id)?;
        eprintln!(
            "bench_registry: segments {} live (k = {}) after {:.1} s",
            v.id,
            seg.model.k(),
            started.elapsed().as_secs_f64()
        );
    }
    serve_kind(&reg, live_kind)
}

/// Make the live customer-spend version serve `kind` (see the module docs).
/// Up to 1,000 ids the lookups answer, spread over every customer, to `out`.
fn write_ids(data: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let (snap, _dashboard) = serve::snapshot::read(
        &std::sync::Arc::new(analytics_lib::source::Source::parquet(data)),
        std::path::Path::new("/nonexistent-registry"),
    )?;
    let rows = &snap.data.rows;
    let p = rows.projection(&analytics_lib::features::feature_names(rows.categories()))?;
    let all = rows.rows(&p);
    let step = (all.len() / 1_000).max(1);
    let ids: Vec<&str> = all
        .iter()
        .step_by(step)
        .take(1_000)
        .map(|(id, _)| id.as_str())
        .collect();
    std::fs::write(out, ids.join("\n") + "\n")
        .with_context(|| format!("while writing {}", out.display()))?;
    eprintln!(
        "bench_registry: {} customer ids (of {}) written to {}",
        ids.len(),
        all.len(),
        out.display()
    );
    Ok(())
}

fn serve_kind(reg: &Registry, kind: Option<ModelKind>) -> anyhow::Result<()> {
    let Some(kind) = kind else { return Ok(()) };
    let live = reg
        .live_dir(SPEND)?
        .context("no live customer_spend version")?;
    let best = analytics_lib::registry::BestChoice::read(&live)?.best;
    if best == kind {
        eprintln!("bench_registry: customer_spend serves {kind} already");
        return Ok(());
    }
    let staging = reg.stage(SPEND)?;
    for entry in std::fs::read_dir(&live)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".msgpack")
            || (name.ends_with(".json") && name != "best.json" && name != "manifest.json")
        {
            std::fs::copy(&path, staging.dir().join(name))
                .with_context(|| format!("while copying {}", path.display()))?;
        }
    }
    std::fs::write(
        staging.dir().join("best.json"),
        json!({"best": kind.name(), "chosen_on": "BENCH_LIVE"}).to_string(),
    )?;
    let v = staging.commit(VersionNotes {
        data_fingerprint: None,
        info: json!({"job": "bench_registry", "best": kind.name(), "from": live.display().to_string()}),
    })?;
    reg.promote(SPEND, v.id)?;
    eprintln!(
        "bench_registry: customer_spend {} live, serving {kind}",
        v.id
    );
    Ok(())
}
