//! `analytics models list|show|promote|rollback` and `analytics evaluate` on
//! a registry made by `analytics train`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::registry::{Registry, SEGMENTS, SPEND, VersionId};
use tempfile::TempDir;

use crate::helpers::assert_mentions;

fn analytics(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .expect("run analytics")
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn data() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("registry-cli-data");
        let cfg = GeneratorConfig {
            lines: 20_000,
            seed: 21,
            progress: false,
            ..GeneratorConfig::default()
        };
        generate(&cfg, &dir).expect("generate");
        dir
    })
}

/// A registry with two `analytics train` versions of each model.
fn trained_twice() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    let (d, m) = (
        data().to_str().expect("utf-8"),
        models.to_str().expect("utf-8"),
    );
    for _ in 0..2 {
        ok(analytics(&["train", "--data", d, "--models", m]));
    }
    (tmp, models)
}

#[test]
fn list_show_rollback_promote() {
    let (_tmp, models) = trained_twice();
    let m = models.to_str().expect("utf-8");
    let reg = Registry::open(&models).expect("open");
    let (v1, v2) = (VersionId(1), VersionId(2));

    let list = json(&ok(analytics(&["models", "list", "--models", m, "--json"])));
    for model in [SPEND, SEGMENTS] {
        assert_eq!(list[model]["live"], "v0002", "{list}");
        let versions = list[model]["versions"].as_array().expect("versions");
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0]["status"], "previous");
        assert_eq!(versions[1]["status"], "live");
        assert_eq!(versions[1]["job"], "train");
        assert!(
            versions[1]["data_fingerprint"]
                .as_str()
                .is_some_and(|f| f.starts_with("fnv1a64:"))
        );
        // ISO 8601 in JSON.
        let created = versions[1]["created_at"].as_str().expect("created_at");
        assert!(
            chrono::DateTime::parse_from_rfc3339(created).is_ok(),
            "{created}"
        );
    }
    let best = list[SPEND]["versions"][1]["best"].as_str().expect("best");
    assert!(list[SPEND]["versions"][1]["metrics"][best]["test"]["rmse"].is_f64());
    assert!(list[SEGMENTS]["versions"][1]["metrics"]["silhouette"].is_f64());

    // The readable table: dd/mm/yyyy hh:mm.
    let text =
        String::from_utf8(ok(analytics(&["models", "list", "--models", m])).stdout).expect("utf-8");
    assert_mentions(
        &text,
        &["customer_spend (live: v0002)", "segments (live: v0002)"],
    );
    let today = chrono::Utc::now().format("%d/%m/%Y").to_string();
    assert!(text.contains(&today), "{text}");

    let show = json(&ok(analytics(&[
        "models", "show", "--models", m, "--model", "segments", "--json",
    ])));
    assert_eq!(show["manifest"]["version"], "v0002");
    assert_eq!(show["status"], "live");
    assert_eq!(show["verified"], "ok");
    assert!(show["manifest"]["files"]["segments.msgpack"].is_string());
    let show1 = json(&ok(analytics(&[
        "models", "show", "v1", "--models", m, "--json",
    ])));
    assert_eq!(show1["manifest"]["model"], SPEND);
    assert_eq!(show1["status"], "previous");

    // Rollback returns the previous version; promote brings it back.
    let out = ok(analytics(&["models", "rollback", "--models", m, "--json"]));
    assert_eq!(json(&out)["live"], "v0001");
    assert_eq!(reg.live_version(SPEND).expect("live"), Some(v1));
    assert_eq!(
        reg.live_version(SEGMENTS).expect("live"),
        Some(v2),
        "only the chosen model"
    );
    ok(analytics(&["models", "promote", "v0002", "--models", m]));
    assert_eq!(reg.live_version(SPEND).expect("live"), Some(v2));
    ok(analytics(&[
        "models", "rollback", "--models", m, "--model", "segments",
    ]));
    assert_eq!(reg.live_version(SEGMENTS).expect("live"), Some(v1));

    // The library does the same.
    let p = reg.rollback(SPEND).expect("rollback");
    assert_eq!(p.version, v1);
    reg.promote(SPEND, v2).expect("promote");
}

#[test]
fn bad_versions_models_and_damaged_files_are_clear_errors() {
    let (_tmp, models) = trained_twice();
    let m = models.to_str().expect("utf-8");
    let reg = Registry::open(&models).expect("open");
    let pointer = || std::fs::read(reg.live_pointer_path(SPEND)).expect("pointer");
    let before = pointer();

    let out = analytics(&["models", "promote", "v9", "--models", m]);
    assert!(!out.status.success());
    assert_mentions(
        &stderr(&out),
        &[
            "customer_spend has no version v0009",
            "complete versions: v0001, v0002",
        ],
    );
    let out = analytics(&["models", "promote", "latest", "--models", m]);
    assert!(!out.status.success());
    assert_mentions(&stderr(&out), &["invalid version \"latest\"", "vNNNN"]);
    let out = analytics(&["models", "list", "--models", m, "--model", "churn"]);
    assert!(!out.status.success());
    assert_mentions(
        &stderr(&out),
        &["unknown model `churn`", "customer_spend", "segments"],
    );
    let out = analytics(&["models", "list", "--models", "/nonexistent/models"]);
    assert!(!out.status.success());
    assert_mentions(
        &stderr(&out),
        &["/nonexistent/models", "not a models folder"],
    );
    assert_eq!(stderr(&out).trim().lines().count(), 1, "one paragraph");

    // A damaged file is refused at promotion; the live pointer stays.
    let v1 = models.join(SPEND).join("v0001").join("best.json");
    std::fs::write(&v1, b"{\"best\": \"linear\"}").expect("tamper");
    let out = analytics(&["models", "promote", "v0001", "--models", m]);
    assert!(!out.status.success());
    assert_mentions(&stderr(&out), &["best.json", "does not match its manifest"]);
    assert_eq!(pointer(), before);
    // …and the rollback skips it: no verified previous version is left.
    let out = analytics(&["models", "rollback", "--models", m]);
    assert!(!out.status.success());
    assert_mentions(&stderr(&out), &["no previous version"]);
    assert_eq!(pointer(), before);
}

#[test]
fn train_writes_registry_versions_and_evaluate_scores_the_live_ones() {
    let tmp = TempDir::new().expect("tmp");
    let models = tmp.path().join("models");
    let (d, m) = (
        data().to_str().expect("utf-8"),
        models.to_str().expect("utf-8"),
    );
    let metrics = json(&ok(analytics(&[
        "train", "--data", d, "--models", m, "--json",
    ])));
    for k in ["linear", "random_forest", "xgboost", "baseline"] {
        assert!(metrics[k]["rmse"].is_f64(), "{k}: {metrics}");
    }
    let v = models.join(SPEND).join("v0001");
    for f in [
        "linear.msgpack",
        "linear.json",
        "random_forest.msgpack",
        "random_forest.json",
        "xgboost.msgpack",
        "xgboost.json",
        "best.json",
        "training_profile.json",
        "manifest.json",
    ] {
        assert!(v.join(f).is_file(), "{f}");
    }
    let s = models.join(SEGMENTS).join("v0001");
    for f in [
        "segments.msgpack",
        "segments.json",
        "training_profile.json",
        "manifest.json",
    ] {
        assert!(s.join(f).is_file(), "{f}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v.join("manifest.json")).expect("read"))
            .expect("manifest");
    assert_eq!(manifest["info"]["job"], "train");
    assert!(manifest["info"]["hyperparameters"]["xgboost"].is_object());
    let best = manifest["info"]["best"].as_str().expect("best");
    assert_eq!(
        manifest["info"]["metrics"][best]["test"]["rmse"],
        metrics[best]["rmse"]
    );

    let ev = json(&ok(analytics(&[
        "evaluate", "--data", d, "--models", m, "--json",
    ])));
    assert_eq!(ev["customer_spend"]["version"], "v0001");
    assert_eq!(ev["customer_spend"]["model"], best);
    // The live model scored on the same data and split as at training.
    let (a, b) = (
        ev["customer_spend"]["rmse"].as_f64().expect("rmse"),
        metrics[best]["rmse"].as_f64().expect("rmse"),
    );
    assert!((a - b).abs() <= 1e-9 * b.max(1.0), "{a} vs {b}");
    assert_eq!(ev["segments"]["version"], "v0001");
    assert!(ev["segments"]["silhouette"].is_f64());

    // --params: YAML sections, unknown keys refused by name.
    let params = tmp.path().join("params.yaml");
    std::fs::write(
        &params,
        "train:\n  candidates:\n    - linear\nsegments:\n  kmeans: {k_min: 3, k_max: 3, n_runs: 2}\n",
    )
    .expect("write");
    let p = params.to_str().expect("utf-8");
    ok(analytics(&[
        "train", "--data", d, "--models", m, "--params", p,
    ]));
    let reg = Registry::open(&models).expect("open");
    let v2 = reg.version(SPEND, VersionId(2)).expect("v2");
    assert!(v2.manifest.files.contains_key("linear.msgpack"));
    assert!(!v2.manifest.files.contains_key("xgboost.msgpack"));
    let s2 = reg.version(SEGMENTS, VersionId(2)).expect("v2");
    assert_eq!(s2.manifest.info["k"], 3);
    std::fs::write(&params, "segments:\n  kmeans: {k_mni: 3}\n").expect("write");
    let out = analytics(&["train", "--data", d, "--models", m, "--params", p]);
    assert!(!out.status.success());
    assert_mentions(
        &stderr(&out),
        &["unknown key `segments.kmeans.k_mni`", "`k_min`"],
    );
}

/// The project's params.yaml (written for DVC) parses with this schema.
#[test]
fn the_project_params_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../params.yaml");
    analytics_lib::retrain::params::PipelineParams::load(&path).unwrap_or_else(|e| panic!("{e}"));
}
