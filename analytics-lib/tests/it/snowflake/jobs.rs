//! The training jobs read through the Snowflake source, pushed down: on
//! generated tables with 2 % defects, `train` on the emulator cleans in SQL
//! and fetches only the customer aggregates at its cutoffs (one row per
//! customer and cutoff, counted), and gives the same cleaning, the same
//! rows, the same data fingerprints and the same models and metrics, to the
//! bit, as on the same tables in Parquet (money sums are rounded to a
//! millionth of a real on both paths); `retrain` runs end to end into a
//! temporary registry, skips a run on unchanged data, and keeps its
//! all-or-nothing behaviour on a broken source.

use std::path::Path;
use std::process::Command;

use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::models::{ForestParams, LinearParams, TrainParams, XgbParams};
use analytics_lib::registry::{Registry, SEGMENTS, SPEND};
use analytics_lib::retrain::params::PipelineParams;
use analytics_lib::retrain::report::Decision;
use analytics_lib::retrain::{
    JobData, RetrainError, RetrainOptions, TrainJobOptions, retrain, train_job,
};
use analytics_lib::segments::{KMeansParams, SegmentParams};
use analytics_lib::source::Source;
use tempfile::TempDir;

use super::bulk_load;
use super::emulator::Emulator;
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

/// Generated tables (with 2 % defects, so that cleaning has work) in
/// Parquet under `dir`, and the same tables loaded into `schema` of the emulator.
fn same_data_in_both(emu: &Emulator, dir: &Path, schema: &str, lines: u64) -> JobData {
    let cfg = GeneratorConfig {
        lines,
        seed: 23,
        defect_rate: 0.02,
        progress: false,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir).expect("generate");
    let sf = emu.source(schema);
    bulk_load(&sf, dir);
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
    assert_eq!(sa.validation_split, sb.validation_split);
    assert_eq!(
        (
            sa.rows.validation_fit,
            sa.rows.validation,
            sa.rows.train,
            sa.rows.test
        ),
        (
            sb.rows.validation_fit,
            sb.rows.validation,
            sb.rows.train,
            sb.rows.test
        )
    );
    let (ma, mb) = (sa.test_metrics(), sb.test_metrics());
    assert_eq!(ma.len(), mb.len());
    assert!(ma.len() >= 3, "{ma:?}");
    for (kind, m) in &ma {
        let n = &mb[kind];
        eprintln!(
            "{kind}: rmse {} vs {}, mae {} vs {}, r2 {} vs {}",
            m.rmse, n.rmse, m.mae, n.mae, m.r2, n.r2
        );
        // Bit-equal features and seeds: bit-equal models.
        assert_eq!(m.n, n.n, "{kind}: test customers");
        assert_eq!((m.rmse, m.mae, m.r2), (n.rmse, n.mae, n.r2), "{kind}");
    }
    assert_eq!(sa.best, sb.best);
    // Same content → same fingerprint, whichever backend it was read from.
    assert_eq!(sa.data_fingerprint, sb.data_fingerprint);
    let (ga, gb) = (
        &a.segments.segmentation.model,
        &b.segments.segmentation.model,
    );
    assert_eq!(ga.meta.customers, gb.meta.customers);
    assert_eq!(ga.meta.data_fingerprint, gb.meta.data_fingerprint);
    assert_eq!(ga.k(), gb.k());
    assert_eq!(ga.meta.silhouette, gb.meta.silhouette);
    assert_eq!(ga.names(), gb.names());

    // The CLV model: fitted on the warehouse's purchase summary as on the
    // lines' (the same customers; parameters equal up to the order of the
    // additions in the monetary values).
    let (ca, cb) = (
        sa.clv.as_ref().expect("a CLV model through Parquet"),
        sb.clv
            .as_ref()
            .unwrap_or_else(|| panic!("a CLV model through Snowflake: {:?}", sb.clv_error)),
    );
    assert_eq!(
        (ca.as_of, ca.customers, ca.repeat_customers),
        (cb.as_of, cb.customers, cb.repeat_customers)
    );
    for (what, x, y) in [
        ("r", ca.bgnbd.r, cb.bgnbd.r),
        ("alpha", ca.bgnbd.alpha, cb.bgnbd.alpha),
        ("a", ca.bgnbd.a, cb.bgnbd.a),
        ("b", ca.bgnbd.b, cb.bgnbd.b),
        ("p", ca.gamma_gamma.p, cb.gamma_gamma.p),
        ("q", ca.gamma_gamma.q, cb.gamma_gamma.q),
        ("v", ca.gamma_gamma.v, cb.gamma_gamma.v),
    ] {
        assert!(
            (x - y).abs() <= 1e-6 * x.abs().max(1.0),
            "CLV parameter {what}: {x} through Parquet, {y} through Snowflake"
        );
    }

    // Only aggregates came back: the summary (cleaning report, categories),
    // one row per customer at each of the four cutoffs, and one per
    // customer for the CLV summary.
    assert_eq!(a.fetched, None, "a Parquet folder is read, not fetched");
    let f = b.fetched.expect("counted");
    let feature_rows =
        (sb.rows.validation_fit + sb.rows.train + sb.rows.test + gb.meta.customers + cb.customers)
            as u64;
    assert_eq!(f.queries, 3, "{f}");
    assert!(
        f.rows >= feature_rows && f.rows <= feature_rows + 100,
        "{f}; {feature_rows} customer rows at the cutoffs"
    );
    assert!(f.bytes > 0);
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

    let f = r.data.fetched.expect("fetched rows in the report");
    assert!(
        f.rows <= 5 * r.data.customers_segments as u64 + 100,
        "{f}: at most one row per customer and cutoff (four), and one per customer (CLV summary)"
    );
    assert!(
        std::fs::read_to_string(&first.json_path)
            .expect("report")
            .contains("\"fetched\""),
        "the JSON report says what was fetched"
    );

    // The same tables from Parquet: the same rows after cleaning, the same
    // data fingerprint.
    let mut p = opts.clone();
    p.data = JobData::parquet(&dir);
    p.models = tmp.path().join("models-parquet");
    let via_parquet = retrain(&p).expect("parquet retrain");
    assert_eq!(via_parquet.report.data.rows, r.data.rows);
    assert_eq!(
        via_parquet.report.data.defects_removed,
        r.data.defects_removed
    );
    assert_eq!(via_parquet.report.data.fetched, None);
    assert_eq!(via_parquet.report.data.fingerprint, r.data.fingerprint);

    // A second run on the same data: the fingerprints are those of the
    // live versions, and nothing is trained.
    let second = retrain(&opts).expect("second retrain");
    let reg = Registry::open(&models).expect("registry");
    let why = second.report.skipped.as_deref().expect("skipped");
    assert_mentions(why, &["unchanged", "v0001", "--force"]);
    assert!(second.report.models.is_empty());
    assert_eq!(second.report.data.fingerprint, r.data.fingerprint);
    assert!(second.report.data.fetched.is_some());
    // Forced: champion and challenger are equal, the challenger is promoted.
    let mut forced = opts.clone();
    forced.force = true;
    let third = retrain(&forced).expect("forced retrain");
    assert_eq!(third.report.skipped, None);
    assert_eq!(third.report.decision[SPEND], Decision::Promoted);
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

/// Rows and bytes fetched and wall time of the train job (`analytics
/// train` with default parameters) three ways on the same tables: Parquet;
/// Snowflake read whole (the four tables come back and are cleaned,
/// joined and aggregated here: what `train` did before the push-down);
/// Snowflake pushed down. Ignored: run by hand, it prints figures. The
/// emulator is filled with its bulk path (DuckDB `read_parquet`).
///
/// ```text
/// target/release/analytics generate --lines 1M --seed 42 --defect-rate 0.02 --out /tmp/train-bench
/// SNOWFLAKE_BENCH_DATA=/tmp/train-bench OMP_WAIT_POLICY=PASSIVE \
///   cargo test --release --workspace --test it -- snowflake::jobs::train_wall_time --ignored --nocapture
/// ```
#[test]
#[ignore = "benchmark: run by hand with SNOWFLAKE_BENCH_DATA (see the docs)"]
fn train_wall_time_snowflake_vs_parquet() {
    use analytics_lib::retrain::fit_segment_model;
    use std::time::Instant;
    let dir = std::path::PathBuf::from(
        std::env::var("SNOWFLAKE_BENCH_DATA")
            .expect("SNOWFLAKE_BENCH_DATA: a curated Parquet folder"),
    );
    let emu = Emulator::start();
    let sf = emu.source("train_bench");
    let t = Instant::now();
    bulk_load(&sf, &dir);
    println!("emulator bulk load: {:.1} s", t.elapsed().as_secs_f64());
    let snowflake = JobData::new(Source::Snowflake(Box::new(sf)));
    let parquet = JobData::parquet(&dir);
    let tmp = TempDir::new().expect("tmp");
    let params = PipelineParams::default();
    let mut fingerprints = Vec::new();
    for round in 0..2 {
        // Parquet.
        let t = Instant::now();
        let done = train_job(&TrainJobOptions {
            data: parquet.clone(),
            models: tmp.path().join(format!("parquet-{round}")),
            params: params.clone(),
            as_of: None,
            progress: false,
        })
        .expect("train on parquet");
        println!(
            "parquet              train: {:>6.1} s wall; read whole from Parquet; best {}",
            t.elapsed().as_secs_f64(),
            done.spend.best.name()
        );
        fingerprints.push(done.spend.data_fingerprint.clone());

        // Snowflake, the four tables read whole (the path before push-down:
        // load, clean, join and aggregate here, then train).
        let before = snowflake.fetched();
        let t = Instant::now();
        let prepared = analytics_lib::retrain::prepare(&snowflake).expect("whole tables");
        let fetched = snowflake.fetched_since(before).expect("counted");
        let load_s = t.elapsed().as_secs_f64();
        let spend = analytics_lib::models::train_all(&prepared.sales, None, &params.train)
            .expect("train on the whole tables");
        let as_of = prepared.sales.default_as_of;
        fit_segment_model(&prepared.sales, as_of, &params.segments, None).expect("segments");
        drop(prepared);
        println!(
            "snowflake whole      train: {:>6.1} s wall (load + clean + join {load_s:.1} s); fetched {fetched}",
            t.elapsed().as_secs_f64()
        );
        fingerprints.push(spend.data_fingerprint.clone());

        // Snowflake, pushed down.
        let t = Instant::now();
        let done = train_job(&TrainJobOptions {
            data: snowflake.clone(),
            models: tmp.path().join(format!("snowflake-{round}")),
            params: params.clone(),
            as_of: None,
            progress: false,
        })
        .expect("train on snowflake");
        println!(
            "snowflake pushed down train: {:>6.1} s wall; fetched {}",
            t.elapsed().as_secs_f64(),
            done.fetched.expect("counted")
        );
        fingerprints.push(done.spend.data_fingerprint.clone());
    }
    assert!(
        fingerprints.iter().all(|f| *f == fingerprints[0]),
        "same data, same fingerprint: {fingerprints:?}"
    );
}

/// Rows and bytes `serve` fetches for a data snapshot on Snowflake (the
/// lookups' feature rows and the dashboard's records folded by order and
/// product), against the line table's size, and the wall time beside
/// Parquet. Ignored: run by hand (as `train_wall_time_snowflake_vs_parquet`):
///
/// ```text
/// SNOWFLAKE_BENCH_DATA=/tmp/train-bench OMP_WAIT_POLICY=PASSIVE \
///   cargo test --release --workspace --test it -- snowflake::jobs::serve_snapshot --ignored --nocapture
/// ```
#[test]
#[ignore = "benchmark: run by hand with SNOWFLAKE_BENCH_DATA (see the docs)"]
fn serve_snapshot_fetch_snowflake_vs_parquet() {
    use std::time::Instant;
    let dir = std::path::PathBuf::from(
        std::env::var("SNOWFLAKE_BENCH_DATA")
            .expect("SNOWFLAKE_BENCH_DATA: a curated Parquet folder"),
    );
    let emu = Emulator::start();
    let sf = emu.source("serve_bench");
    bulk_load(&sf, &dir);
    let snowflake = Source::Snowflake(Box::new(sf));
    let parquet = Source::Parquet(analytics_lib::source::ParquetSource::new(dir.clone()));
    let t = Instant::now();
    let p = parquet.serve_input().expect("parquet snapshot");
    let lines = p.data.rows();
    println!(
        "parquet   serve snapshot: {:>6.1} s; {lines} sales lines kept for the dashboard",
        t.elapsed().as_secs_f64(),
    );
    drop(p);
    let before = snowflake.fetched();
    let t = Instant::now();
    let s = snowflake.serve_input().expect("snowflake snapshot");
    let fetched = snowflake
        .fetched()
        .map(|f| before.map_or(f, |b| f.since(b)))
        .expect("counted");
    println!(
        "snowflake serve snapshot: {:>6.1} s; fetched {fetched} for {lines} lines ({} customers; \
         the dashboard asks per view)",
        t.elapsed().as_secs_f64(),
        s.rows.len()
    );
    // One row per customer and date (lookups, segments at two dates, CLV)
    // and a summary: never the lines.
    assert!(fetched.rows <= 4 * s.rows.len() as u64 + 1_000, "{fetched}");

    // The dashboard's questions, per view (no segment model here).
    let Source::Snowflake(sf) = &snowflake else {
        unreachable!("a Snowflake source")
    };
    let dims = sf.dashboard_dims().expect("dims").expect("orders");
    let to = dims.max_date;
    let q = analytics_lib::dashboard::Query::period(
        to - analytics_lib::chrono::Duration::days(364),
        to,
    );
    let timed = |what: &str, f: &dyn Fn() -> usize| {
        let before = sf.fetched();
        let t = Instant::now();
        let n = f();
        println!(
            "snowflake dashboard {what}: {:>6.2} s; fetched {}; {n} items",
            t.elapsed().as_secs_f64(),
            sf.fetched().since(before)
        );
    };
    timed("view (figures)", &|| {
        sf.dashboard_scan(&q, &dims, None)
            .expect("scan")
            .monthly
            .len()
    });
    timed("top products", &|| {
        sf.dashboard_leaders(
            &q,
            &dims,
            None,
            analytics_lib::source::dashboard::Leaders::Products,
            true,
            Some(10),
        )
        .expect("leaders")
        .len()
    });
    timed("drill-down page", &|| {
        sf.dashboard_orders(
            &q,
            &dims,
            None,
            &analytics_lib::dashboard::OrdersRequest {
                sort: analytics_lib::dashboard::OrderSort::Revenue,
                descending: true,
                which: analytics_lib::dashboard::Which::Current,
                offset: 0,
                limit: 25,
            },
        )
        .expect("orders")
        .rows
        .len()
    });
}
