//! The training jobs read through the Snowflake source: `train` on the
//! emulator gives the same models, metrics and data fingerprints as on the
//! same tables in Parquet, and `retrain` runs end to end into a temporary
//! registry (with its all-or-nothing behaviour on a broken source).

use std::path::Path;
use std::process::Command;

use analytics_lib::data::CuratedFrames;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::models::{ForestParams, LinearParams, TrainParams, XgbParams};
use analytics_lib::registry::{Registry, SEGMENTS, SPEND};
use analytics_lib::retrain::params::PipelineParams;
use analytics_lib::retrain::report::Decision;
use analytics_lib::retrain::{
    JobData, RetrainError, RetrainOptions, TrainJobOptions, retrain, train_job,
};
use analytics_lib::segments::{KMeansParams, SegmentParams};
use analytics_lib::source::{CuratedSource, ParquetSource, Source};
use tempfile::TempDir;

use super::emulator::Emulator;
use super::upload;
use crate::helpers::assert_mentions;

/// Small models: the test is about where the data comes from.
fn params() -> PipelineParams {
    PipelineParams {
        train: TrainParams {
            candidates: vec![
                LinearParams::new().into(),
                ForestParams::new()
                    .n_trees(8)
                    .max_depth(Some(5))
                    .seed(3)
                    .into(),
                XgbParams::new()
                    .rounds(20)
                    .max_depth(3)
                    .seed(3)
                    .threads(Some(1))
                    .into(),
            ],
            ..TrainParams::default()
        },
        segments: SegmentParams {
            kmeans: KMeansParams::new()
                .k(4)
                .n_runs(2)
                .seed(5)
                .silhouette_sample(1_000),
            ..SegmentParams::default()
        },
    }
}

/// Generated tables (with 1 % defects, so that cleaning has work) in
/// Parquet under `dir`, and the same tables loaded into `schema` of the emulator.
fn same_data_in_both(emu: &Emulator, dir: &Path, schema: &str, lines: u64) -> JobData {
    let cfg = GeneratorConfig {
        lines,
        seed: 23,
        defect_rate: 0.01,
        progress: false,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir).expect("generate");
    let frames: CuratedFrames = ParquetSource::new(dir)
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("parquet");
    let sf = emu.source(schema);
    upload(&sf, &frames);
    JobData::new(Source::Snowflake(Box::new(sf)))
}

fn train(data: JobData, models: &Path) -> analytics_lib::retrain::TrainJobResult {
    train_job(&TrainJobOptions {
        data,
        models: models.to_path_buf(),
        params: params(),
        as_of: None,
        progress: false,
    })
    .expect("train")
}

#[test]
fn train_through_snowflake_gives_the_same_models_as_through_parquet() {
    let emu = Emulator::start();
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("curated");
    let snowflake = same_data_in_both(&emu, &dir, "train_jobs", 6_000);
    assert!(
        snowflake.label().starts_with("snowflake account"),
        "{}",
        snowflake.label()
    );

    let a = train(JobData::parquet(&dir), &tmp.path().join("models-parquet"));
    let b = train(snowflake, &tmp.path().join("models-snowflake"));

    assert_eq!(
        a.defects_removed, b.defects_removed,
        "the same defects cleaned"
    );
    assert!(a.defects_removed > 0, "the fixture has defects to clean");
    let (sa, sb) = (&a.spend, &b.spend);
    assert_eq!(sa.feature_names, sb.feature_names);
    assert_eq!(
        (sa.as_of, sa.train_cutoff, sa.test_cutoff),
        (sb.as_of, sb.train_cutoff, sb.test_cutoff)
    );
    assert_eq!(sa.rows.train, sb.rows.train);
    assert_eq!(sa.rows.test, sb.rows.test);
    // Same content → same fingerprint, whichever backend it was read from.
    assert_eq!(sa.data_fingerprint, sb.data_fingerprint);
    assert_eq!(sa.best, sb.best);
    let (ma, mb) = (sa.test_metrics(), sb.test_metrics());
    assert_eq!(ma.len(), mb.len());
    assert!(ma.len() >= 3, "{ma:?}");
    for (kind, m) in &ma {
        let n = &mb[kind];
        // Bit-equal features and seeds: bit-equal models.
        assert_eq!((m.rmse, m.mae, m.r2), (n.rmse, n.mae, n.r2), "{kind}");
    }
    let (ga, gb) = (
        &a.segments.segmentation.model,
        &b.segments.segmentation.model,
    );
    assert_eq!(ga.meta.data_fingerprint, gb.meta.data_fingerprint);
    assert_eq!(ga.k(), gb.k());
    assert_eq!(ga.meta.silhouette, gb.meta.silhouette);
    assert_eq!(ga.names(), gb.names());
    // And the registry records it.
    let fp = |models: &Path, model: &str| {
        let reg = Registry::open(models).expect("registry");
        let id = reg.live_version(model).expect("live").expect("some");
        reg.version(model, id)
            .expect("version")
            .manifest
            .data_fingerprint
    };
    for model in [SPEND, SEGMENTS] {
        let fa = fp(&tmp.path().join("models-parquet"), model);
        assert!(fa.is_some());
        assert_eq!(
            fa,
            fp(&tmp.path().join("models-snowflake"), model),
            "{model}"
        );
    }
}

#[test]
fn retrain_through_snowflake_runs_end_to_end_and_refuses_a_broken_source() {
    let emu = Emulator::start();
    let tmp = TempDir::new().expect("tmp");
    let dir = tmp.path().join("curated");
    let snowflake = same_data_in_both(&emu, &dir, "retrain_jobs", 6_000);
    let models = tmp.path().join("models");

    let mut opts = RetrainOptions::new(snowflake.clone(), &models);
    opts.params = params();
    opts.track = false;
    opts.silhouette_sample = 1_000;
    let first = retrain(&opts).expect("first retrain");
    let r = &first.report;
    assert!(
        r.data.source.starts_with("snowflake account"),
        "{}",
        r.data.source
    );
    assert_eq!(r.decision[SPEND], Decision::Promoted);
    assert_eq!(r.decision[SEGMENTS], Decision::Promoted);
    assert!(r.data.rows["order_items"] > 5_000, "{:?}", r.data.rows);
    assert!(first.json_path.is_file() && first.text_path.is_file());

    // The same tables from Parquet give the same data fingerprint.
    let parquet = analytics_lib::retrain::prepare(&dir).expect("parquet");
    let from_sf = analytics_lib::retrain::prepare(&snowflake).expect("snowflake");
    assert_eq!(parquet.rows, from_sf.rows);
    let mut p = opts.clone();
    p.data = JobData::parquet(&dir);
    p.models = tmp.path().join("models-parquet");
    let via_parquet = retrain(&p).expect("parquet retrain");
    assert_eq!(via_parquet.report.data.fingerprint, r.data.fingerprint);

    // A second run on the same data: champion and challenger are equal.
    let second = retrain(&opts).expect("second retrain");
    let reg = Registry::open(&models).expect("registry");
    assert_eq!(second.report.decision[SPEND], Decision::Promoted);
    assert_eq!(
        reg.live_version(SPEND)
            .expect("live")
            .map(|v| v.to_string())
            .as_deref(),
        Some("v0002")
    );

    // A schema without the tables: the run stops, nothing changes.
    let before: Vec<_> = [SPEND, SEGMENTS]
        .iter()
        .map(|m| reg.live_version(m).expect("live"))
        .collect();
    let versions = std::fs::read_dir(models.join(SPEND)).expect("dir").count();
    let mut broken = opts.clone();
    broken.data = JobData::new(Source::Snowflake(Box::new(emu.source("empty_schema"))));
    let e = retrain(&broken).expect_err("no tables");
    assert!(matches!(e, RetrainError::Source { .. }), "{e}");
    assert_mentions(
        &e.to_string(),
        &[
            "could not read the data from snowflake account",
            "live models were not changed",
        ],
    );
    assert!(!e.to_string().contains("emulator-password"), "{e}");
    let after: Vec<_> = [SPEND, SEGMENTS]
        .iter()
        .map(|m| reg.live_version(m).expect("live"))
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        versions,
        std::fs::read_dir(models.join(SPEND)).expect("dir").count()
    );
}

/// `analytics train --source snowflake` without the connection settings:
/// refused before any network use, naming the missing variable.
#[test]
fn train_with_an_incomplete_snowflake_source_says_what_is_missing() {
    let tmp = TempDir::new().expect("tmp");
    for cmd in ["train", "evaluate", "retrain"] {
        let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
            .args([cmd, "--source", "snowflake", "--models"])
            .arg(tmp.path())
            .env_remove("APP_SNOWFLAKE_ACCOUNT")
            .env_remove("APP_SNOWFLAKE_USER")
            .env("APP_SNOWFLAKE_PASSWORD", "hunter2-secret")
            .output()
            .expect("run analytics");
        assert!(!out.status.success(), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_mentions(&err, &["APP_SNOWFLAKE_ACCOUNT", "snowflake account"]);
        assert!(!err.contains("hunter2-secret"), "{err}");
    }
}

/// Wall time of the train job (`analytics train` with default parameters)
/// through Snowflake vs through Parquet on the same tables (ignored: run
/// by hand, it prints figures). The emulator is filled with its bulk path
/// (DuckDB `read_parquet`), as in `bench.rs`.
///
/// ```text
/// target/release/analytics generate --lines 100k --seed 42 --out /tmp/train-bench
/// SNOWFLAKE_BENCH_DATA=/tmp/train-bench OMP_WAIT_POLICY=PASSIVE \
///   cargo test --release --workspace --test it -- snowflake::jobs::train_wall_time --ignored --nocapture
/// ```
#[test]
#[ignore = "benchmark: run by hand with SNOWFLAKE_BENCH_DATA (see the docs)"]
fn train_wall_time_snowflake_vs_parquet() {
    use std::time::Instant;
    let dir = std::path::PathBuf::from(
        std::env::var("SNOWFLAKE_BENCH_DATA")
            .expect("SNOWFLAKE_BENCH_DATA: a curated Parquet folder"),
    );
    let emu = Emulator::start();
    let sf = emu.source("train_bench");
    for spec in analytics_lib::contract::TABLES {
        let loc = analytics_lib::data::loader::locate_table(&dir, spec.name).expect("table files");
        let files: Vec<String> = loc
            .files
            .iter()
            .map(|p| format!("'{}'", p.display()))
            .collect();
        sf.execute(&format!(
            "CREATE OR REPLACE TABLE {} AS SELECT {} FROM read_parquet([{}])",
            spec.name,
            spec.column_names().join(", "),
            files.join(", ")
        ))
        .expect("bulk load");
    }
    let snowflake = JobData::new(Source::Snowflake(Box::new(sf)));
    let parquet = JobData::parquet(&dir);
    let tmp = TempDir::new().expect("tmp");
    let mut fingerprints = Vec::new();
    // Two rounds, alternating, so that a warm cache or a busy machine
    // favours neither.
    let runs = [
        ("parquet", parquet.clone()),
        ("snowflake", snowflake.clone()),
        ("parquet", parquet),
        ("snowflake", snowflake),
    ];
    for (round, (name, data)) in runs.into_iter().enumerate() {
        let t = Instant::now();
        let prepared = analytics_lib::retrain::prepare(&data).expect("load");
        let load_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let done = train_job(&TrainJobOptions {
            data,
            models: tmp.path().join(format!("{name}-{round}")),
            params: PipelineParams::default(),
            as_of: None,
            progress: false,
        })
        .expect("train");
        let train_s = t.elapsed().as_secs_f64();
        println!(
            "{name:<9} train job: {train_s:.1} s wall ({} order lines; load + clean alone {load_s:.2} s); best {}",
            prepared.rows["order_items"],
            done.spend.best.name()
        );
        fingerprints.push(done.spend.data_fingerprint.clone());
    }
    assert!(
        fingerprints.iter().all(|f| *f == fingerprints[0]),
        "same data, same fingerprint: {fingerprints:?}"
    );
}
