//! The retrain job: champion / challenger promotion, drift, bad data, and
//! SIGKILL at any moment (on the real `analytics retrain` process).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::features::customer_features;
use analytics_lib::registry::{Registry, SEGMENTS, SPEND};
use analytics_lib::retrain::drift::{DriftBand, TrainingProfile};
use analytics_lib::retrain::lock::JobLock;
use analytics_lib::retrain::report::Decision;
use analytics_lib::retrain::{
    RetrainError, RetrainOptions, Sabotage, TrainJobOptions, retrain, train_job,
};
use tempfile::TempDir;

use crate::helpers::assert_mentions;

/// Generated curated tables, made once per test binary.
fn data(lines: u64, seed: u64) -> PathBuf {
    static MADE: OnceLock<std::sync::Mutex<BTreeMap<(u64, u64), PathBuf>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
    made.entry((lines, seed))
        .or_insert_with(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("retrain-data")
                .join(format!("{lines}-{seed}"));
            let cfg = GeneratorConfig {
                lines,
                seed,
                progress: false,
                ..GeneratorConfig::default()
            };
            generate(&cfg, &dir).expect("generate");
            dir
        })
        .clone()
}

/// Options of a run that trains even on the data of the live versions
/// (these tests retrain on one data set again and again; the skip on
/// unchanged data has its own test).
fn options(data: &Path, models: &Path) -> RetrainOptions {
    let mut o = RetrainOptions::new(data, models);
    o.track = false;
    o.silhouette_sample = 2_000;
    o.force = true;
    o
}

/// Every file of the model folders (not the lock, not the reports), with its bytes.
fn snapshot(models: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    for m in [SPEND, SEGMENTS] {
        walk(&models.join(m), &mut out);
    }
    out
}

fn no_staging_left(models: &Path) {
    for m in [SPEND, SEGMENTS] {
        for e in std::fs::read_dir(models.join(m))
            .expect("model dir")
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".staging-") && !name.ends_with(".tmp"),
                "leftover {name} in {m}"
            );
        }
    }
}

/// The live pointer of each model names a version whose files match its manifest.
fn registry_is_consistent(models: &Path) {
    let reg = Registry::open(models).expect("open");
    for m in [SPEND, SEGMENTS] {
        let live = reg
            .live_version(m)
            .expect("live pointer readable")
            .unwrap_or_else(|| panic!("{m} has no live version"));
        reg.verify(m, live)
            .unwrap_or_else(|e| panic!("{m} live {live} does not verify: {e}"));
    }
}

#[test]
fn better_challenger_is_promoted_and_a_worse_one_rejected() {
    let d = data(25_000, 11);
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    // A poor champion: trained on shuffled targets and scrambled features.
    let mut o = options(&d, &models);
    o.sabotage = Sabotage {
        shuffle_targets: Some(1),
        scramble_segment_features: Some(1),
    };
    let first = retrain(&o).expect("first run");
    for m in [SPEND, SEGMENTS] {
        assert_eq!(first.report.decision[m], Decision::Promoted, "{m}");
        assert!(first.report.models[m].champion.is_none());
        assert!(first.report.drift[m].is_none());
    }
    assert!(first.report.segment_stability.is_none(), "no champion");
    let mig = first.report.segment_migration.as_ref().expect("migration");
    assert_eq!(mig.model, "challenger");
    assert_eq!(mig.version.as_deref(), Some("v0001"));

    // Better data (the real targets) beats it on the same new test set.
    let good = retrain(&options(&d, &models)).expect("good run");
    let r = &good.report;
    for m in [SPEND, SEGMENTS] {
        let md = &r.models[m];
        assert_eq!(md.decision, Decision::Promoted, "{m}: {}", md.reason);
        assert_eq!(md.live_before.as_deref(), Some("v0001"));
        assert_eq!(md.live_after.as_deref(), Some("v0002"));
    }
    let spend = &r.models[SPEND];
    let (new, old) = (
        spend.challenger.score.expect("challenger rmse"),
        spend
            .champion
            .as_ref()
            .and_then(|c| c.score)
            .expect("champion rmse"),
    );
    assert!(
        new < old,
        "challenger {new} should beat the shuffled champion {old}"
    );
    // Both were scored on the same test customers.
    let n = |v: &serde_json::Value| v["n"].as_u64();
    assert_eq!(
        n(&spend.challenger.metrics),
        n(&spend.champion.as_ref().expect("champion").metrics)
    );
    assert_eq!(
        n(&spend.challenger.metrics),
        Some(r.data.customers_test as u64)
    );
    // The challenger's interval coverage on the test cutoff is recorded.
    for k in ["coverage_80", "coverage_95"] {
        let c = spend.challenger.metrics[k].as_f64().expect(k);
        assert!(c > 0.5 && c <= 1.0, "{k} {c}");
    }
    assert!(good.json_path.is_file() && good.text_path.is_file());
    let text = std::fs::read_to_string(&good.text_path).expect("text report");
    assert_mentions(
        &text,
        &[
            "customer_spend: PROMOTED",
            "segments: PROMOTED",
            "Drift of",
            "interval coverage on the test cutoff: 80 % →",
        ],
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&good.json_path).expect("json")).expect("parse");
    assert_eq!(json["decision"][SPEND], "promoted");

    // A challenger made worse on purpose is rejected, committed for
    // inspection, and the live versions do not move.
    let reg = Registry::open(&models).expect("open");
    let pointers = |m: &str| std::fs::read(reg.live_pointer_path(m)).expect("pointer");
    let before = (pointers(SPEND), pointers(SEGMENTS));
    let mut o = options(&d, &models);
    o.sabotage = Sabotage {
        shuffle_targets: Some(7),
        scramble_segment_features: Some(7),
    };
    let bad = retrain(&o).expect("bad run");
    for m in [SPEND, SEGMENTS] {
        let md = &bad.report.models[m];
        assert_eq!(md.decision, Decision::Rejected, "{m}: {}", md.reason);
        assert_mentions(&md.reason, &["worse than the tolerance"]);
        assert_eq!(md.live_after.as_deref(), Some("v0002"));
        let rejected = reg.version(m, "v0003".parse().expect("id")).expect("kept");
        assert_eq!(rejected.manifest.info["status"], "rejected");
        assert_eq!(rejected.manifest.info["job"], "retrain");
    }
    assert_eq!((pointers(SPEND), pointers(SEGMENTS)), before);
    // It can still be promoted by hand.
    reg.promote(SPEND, "v0003".parse().expect("id"))
        .expect("manual promote");
}

#[test]
fn identical_data_has_no_drift_and_a_shifted_feature_is_flagged() {
    let d = data(20_000, 12);
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    retrain(&options(&d, &models)).expect("first");
    let second = retrain(&options(&d, &models)).expect("second");
    // The same data and parameters: the same segments (issue #17's stability).
    let st = second
        .report
        .segment_stability
        .as_ref()
        .expect("stability against v0001");
    assert_eq!(st.champion_version, "v0001");
    assert!((st.adjusted_rand_index - 1.0).abs() < 1e-12, "{st:?}");
    assert_eq!(st.same_name_share, 1.0);
    assert_eq!(st.customers, second.report.data.customers_segments);
    // Who moved in the last 90 days, by the model live after the run.
    let mig = second.report.segment_migration.as_ref().expect("migration");
    let m = &mig.matrix;
    assert_eq!(m.to, second.report.data.as_of);
    assert_eq!(m.from, second.report.data.test_cutoff);
    for (i, row) in m.counts.iter().enumerate() {
        assert_eq!(
            row.iter().sum::<u64>() + m.gone[i],
            m.from_sizes[i],
            "row {i}"
        );
    }
    assert_eq!(
        m.to_sizes.iter().sum::<u64>() as usize,
        second.report.data.customers_segments
    );
    let text = std::fs::read_to_string(&second.text_path).expect("text");
    assert_mentions(
        &text,
        &[
            "Segment stability",
            "adjusted Rand index 1,000",
            "Segment migration",
            "new customers",
        ],
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&second.json_path).expect("json")).expect("parse");
    assert_eq!(json["segment_stability"]["adjusted_rand_index"], 1.0);
    assert!(json["segment_migration"]["matrix"]["counts"].is_array());
    for m in [SPEND, SEGMENTS] {
        let drift = second.report.drift[m]
            .as_ref()
            .expect("drift against v0001");
        assert_eq!(drift.reference_version, "v0001");
        assert!(!drift.features.is_empty());
        for f in &drift.features {
            // ≈ 0: parallel aggregation may move a value on a bin edge
            // by one ulp between two computations of the same features.
            assert!(f.psi < 1e-3, "{m} {}: PSI {}", f.feature, f.psi);
            assert_eq!(f.band, DriftBand::Stable);
        }
        assert_eq!(drift.share_drifted, 0.0);
    }

    // The live version's profile against features with `monetary` tripled.
    let reg = Registry::open(&models).expect("open");
    let dir = reg.live_dir(SPEND).expect("live").expect("some");
    let profile: TrainingProfile =
        serde_json::from_slice(&std::fs::read(dir.join("training_profile.json")).expect("profile"))
            .expect("parse profile");
    let sales = analytics_lib::retrain::prepare(&d).expect("load").sales;
    let cutoff = second.report.data.train_cutoff;
    let x = customer_features(&sales, cutoff, None)
        .expect("features")
        .matrix()
        .expect("matrix");
    let j = x
        .names()
        .iter()
        .position(|n| n == "monetary")
        .expect("monetary");
    let c = x.n_cols();
    let mut values = x.values().to_vec();
    for (i, v) in values.iter_mut().enumerate() {
        if i % c == j {
            *v *= 3.0;
        }
    }
    let shifted =
        analytics_lib::features::FeatureMatrix::new(x.names().to_vec(), values).expect("matrix");
    let unchanged = profile.compare("v0002", &x);
    assert!(
        unchanged.features.iter().all(|f| f.psi < 1e-3),
        "{unchanged:?}"
    );
    let drift = profile.compare("v0002", &shifted);
    let monetary = drift.feature("monetary").expect("monetary");
    assert_eq!(monetary.band, DriftBand::Drifted, "PSI {}", monetary.psi);
    assert_eq!(drift.drifted(), vec!["monetary"]);
    assert!((drift.share_drifted - 1.0 / c as f64).abs() < 1e-12);
}

#[test]
fn bad_new_data_stops_the_run_and_leaves_the_live_models_untouched() {
    let d = data(20_000, 13);
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    train_job(&TrainJobOptions {
        data: d.clone().into(),
        models: models.clone(),
        params: Default::default(),
        as_of: None,
        progress: false,
    })
    .expect("train");
    let before = snapshot(&models);
    assert!(before.len() > 10);

    // A table missing.
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    for t in ["customers", "products", "order_items"] {
        let from = d.join(format!("{t}.parquet"));
        std::fs::copy(&from, broken.join(format!("{t}.parquet"))).expect("copy");
    }
    let e = retrain(&options(&broken, &models)).expect_err("missing table");
    assert!(matches!(e, RetrainError::Data { .. }), "{e}");
    assert_mentions(
        &e.to_string(),
        &[
            "bad new data",
            "`orders` not found",
            "live models were not changed",
        ],
    );
    assert_eq!(snapshot(&models), before);

    // Too few rows.
    let mut o = options(&d, &models);
    o.min_rows = 1_000_000;
    let e = retrain(&o).expect_err("too few rows");
    assert_mentions(
        &e.to_string(),
        &[
            "too few rows",
            "at least 1000000 order lines",
            "live models were not changed",
        ],
    );
    assert_eq!(snapshot(&models), before);
    assert!(
        !models.join("reports").exists(),
        "no report for a stopped run"
    );
}

#[test]
fn a_run_on_the_live_versions_data_trains_nothing_unless_forced() {
    let d = data(20_000, 16);
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    let mut o = options(&d, &models);
    o.force = false;
    let first = retrain(&o).expect("first run");
    assert_eq!(first.report.skipped, None);
    let reg = Registry::open(&models).expect("open");
    let live = |m| reg.live_version(m).expect("live").expect("a live version");
    let (spend, segs) = (live(SPEND), live(SEGMENTS));
    let before = snapshot(&models);

    // The same data again: nothing trained, nothing written but the report.
    let again = retrain(&o).expect("second run");
    let why = again.report.skipped.as_deref().expect("skipped");
    assert_mentions(
        why,
        &[
            "unchanged",
            &spend.to_string(),
            &segs.to_string(),
            "--force",
        ],
    );
    assert_eq!(again.report.data.fingerprint, first.report.data.fingerprint);
    assert!(again.report.models.is_empty() && again.report.decision.is_empty());
    assert_eq!(snapshot(&models), before, "the registry is untouched");
    let json = std::fs::read_to_string(&again.json_path).expect("report");
    assert!(json.contains("\"skipped\""), "{json}");
    assert!(again.report.to_text().contains("SKIPPED"));

    // Other parameters: the live versions are not those models, it trains.
    let mut other = o.clone();
    other.params.segments.kmeans = other.params.segments.kmeans.clone().seed(99);
    let third = retrain(&other).expect("other parameters");
    assert_eq!(third.report.skipped, None);

    // Forced (the command line's --force): it trains on the same data.
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["retrain", "--force", "--json", "--data"])
        .arg(&d)
        .arg("--models")
        .arg(&models)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(report["skipped"].is_null(), "{report}");
    assert_eq!(report["decision"][SPEND], "promoted");
}

fn analytics_retrain(data: &Path, models: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_analytics"));
    c.args(["retrain", "--force", "--data"])
        .arg(data)
        .arg("--models")
        .arg(models)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .env_remove("MLFLOW_TRACKING_URI")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn a_second_concurrent_run_is_refused() {
    let d = data(20_000, 14);
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    let held = JobLock::acquire(&models, "retrain").expect("lock");
    let out = analytics_retrain(&d, &models).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_mentions(
        &err,
        &[
            "another job is already writing",
            &format!("pid {}", std::process::id()),
        ],
    );
    drop(held);
}

#[test]
fn sigkill_at_any_moment_leaves_a_registry_that_loads_and_the_next_run_succeeds() {
    let d = data(20_000, 15);
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    // A live version to protect, then one full run to time.
    let out = analytics_retrain(&d, &models).output().expect("first run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Instant::now();
    let out = analytics_retrain(&d, &models).output().expect("timed run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = t.elapsed();

    for share in [0.1, 0.3, 0.5, 0.7, 0.9] {
        let mut child = analytics_retrain(&d, &models).spawn().expect("spawn");
        std::thread::sleep(full.mul_f64(share));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        registry_is_consistent(&models);

        let out = analytics_retrain(&d, &models).output().expect("next run");
        assert!(
            out.status.success(),
            "run after a kill at {share}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        registry_is_consistent(&models);
        no_staging_left(&models);
    }
    // Pruning kept the default number of versions (plus the live history).
    let reg = Registry::open(&models).expect("open");
    assert!(reg.versions(SPEND).expect("versions").len() >= 5);
    assert!(full < Duration::from_secs(120));
}
