//! The `analytics` command line: the names and JSON shapes of
//! shared/spec/interfaces.md, and its behaviour on bad input.

use std::process::{Command, Output};

use crate::helpers::{assert_mentions, tiny_parquet};

fn analytics(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .expect("run analytics")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn every_command_has_help() {
    for cmd in ["generate", "clean", "kpis", "train", "bench"] {
        let out = analytics(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("--data") || cmd == "generate");
    }
}

#[test]
fn clean_and_kpis_print_the_spec_shapes() {
    let (_dir, path) = tiny_parquet();
    let p = path.to_str().expect("utf-8 path");
    let report = json(&analytics(&["clean", "--data", p, "--json"]));
    assert_eq!(report["duplicate_orders"], 1);
    assert_eq!(report["rows"]["orders"]["output"], 17);

    let k = json(&analytics(&["kpis", "--data", p, "--json"]));
    for key in [
        "revenue",
        "orders",
        "average_ticket",
        "churn_rate_90d",
        "repeat_purchase_rate",
        "as_of",
        "monthly_revenue",
    ] {
        assert!(k.get(key).is_some(), "missing {key}: {k}");
    }
    assert_eq!(k["revenue"], 2668.0);
    assert_eq!(k["as_of"], "2025-01-01");
    assert_eq!(k["monthly_revenue"]["2024-12"], 460.0);

    // Without --json, nothing machine-readable on stdout but a readable table.
    let out = analytics(&["kpis", "--data", p]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("R$ 2.668,00") && text.contains("01/01/2025"),
        "{text}"
    );
}

#[test]
fn bad_input_exits_non_zero_with_a_message() {
    let out = analytics(&["kpis", "--data", "/nonexistent/folder"]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert_mentions(&msg, &["error:", "/nonexistent/folder"]);
    assert!(out.stdout.is_empty(), "no output on stdout on error");

    let out = analytics(&["generate", "--lines", "lots", "--out", "/tmp/x"]);
    assert!(!out.status.success());
    assert_mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["lots", "100k or 1M"],
    );

    let (_dir, path) = tiny_parquet();
    let out = analytics(&[
        "kpis",
        "--data",
        path.to_str().expect("utf-8"),
        "--from",
        "2024-12-31",
        "--to",
        "2024-01-01",
    ]);
    assert!(!out.status.success());
    assert_mentions(
        &String::from_utf8_lossy(&out.stderr),
        &["from", "2024-12-31", "on or before"],
    );
}

#[test]
fn generate_then_train_saves_every_model() {
    let tmp = tempfile::TempDir::new().expect("tmp");
    let data = tmp.path().join("data");
    let models = tmp.path().join("models");
    let out = analytics(&[
        "generate",
        "--lines",
        "30k",
        "--seed",
        "3",
        "--out",
        data.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics = json(&analytics(&[
        "train",
        "--data",
        data.to_str().expect("utf-8"),
        "--models",
        models.to_str().expect("utf-8"),
        "--json",
    ]));
    for m in ["linear", "random_forest", "xgboost", "baseline"] {
        assert!(
            metrics[m]["rmse"].as_f64().is_some_and(f64::is_finite),
            "{m}: {metrics}"
        );
    }
    // Registry layout: a first version of each model, live.
    let live: serde_json::Value = serde_json::from_slice(
        &std::fs::read(models.join("customer_spend").join("live.json")).expect("live.json"),
    )
    .expect("pointer");
    assert_eq!(live["version"], "v0001");
    for f in [
        "linear.msgpack",
        "random_forest.msgpack",
        "xgboost.msgpack",
        "best.json",
        "manifest.json",
    ] {
        assert!(
            models
                .join("customer_spend")
                .join("v0001")
                .join(f)
                .is_file(),
            "{f}"
        );
    }
    assert!(
        models
            .join("segments")
            .join("v0001")
            .join("segments.msgpack")
            .is_file()
    );
    assert!(models.join("segments").join("live.json").is_file());
    assert!(
        !models
            .join("customer_spend")
            .join("xgboost.msgpack")
            .exists(),
        "no flat layout"
    );
}
