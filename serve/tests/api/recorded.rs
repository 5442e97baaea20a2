//! Recorded answers: what `/predict`, `/segment` and the dashboard API
//! answered on the fixture (20k generated lines, seed 11; models trained
//! with fixed seeds), kept in `tests/api/recorded/answers.json`. Any change
//! of an answer — a feature computed differently, a join, a new in-memory
//! layout, a rounding — fails here with the first differing field, even
//! where no other test looks.
//!
//! The file was first recorded when `serve` kept only `CustomerRows` and the
//! dashboard's pre-aggregates (not the order lines); the answers then were
//! those of the line-level computation (`predict::every_customer_by_id_…`
//! checks each customer against the features recomputed from the lines).
//! Fields added to an answer later (a new figure) are not differences; a
//! recorded field gone or changed is. An intended change of an answer is re-recorded, on purpose and in its own
//! commit: `RECORD_ANSWERS=1 cargo test --profile release -p serve --test api
//! recorded`, then review the diff of the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_status, features_body, first_difference, fixture, json_of, rfm_body, spawn_app,
    without_timing,
};

fn recorded_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/recorded/answers.json")
}

/// The answer without what differs from run to run or from one registry to
/// another: timings and version ids (`v0001` and the like).
fn stable(v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("version");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = without_timing(v);
    strip(&mut v);
    v
}

/// `now` with only the object keys `recorded` has: a field added to an
/// answer (a new figure) changes none of the recorded ones; a field gone or
/// changed is a difference.
fn only_recorded(recorded: &Value, now: &Value) -> Value {
    match (recorded, now) {
        (Value::Object(r), Value::Object(n)) => Value::Object(
            n.iter()
                .filter_map(|(k, v)| r.get(k).map(|rv| (k.clone(), only_recorded(rv, v))))
                .collect(),
        ),
        (Value::Array(r), Value::Array(n)) if r.len() == n.len() => {
            Value::Array(r.iter().zip(n).map(|(a, b)| only_recorded(a, b)).collect())
        }
        _ => now.clone(),
    }
}

async fn ask(app: &TestApp, method: &str, path: &str, body: Option<&Value>) -> Value {
    let r = match body {
        Some(b) => app.post_json(path, b).await,
        None => app.get(path).await,
    };
    let (status, v) = json_of(r).await;
    expect_status(status, &v, 200);
    json!({"request": format!("{method} {path}"), "body": body, "answer": stable(v)})
}

/// Every question asked, in a fixed order, with its answer.
async fn answers(app: &TestApp) -> Vec<Value> {
    let f = fixture();
    let mut out = Vec::new();
    // Every 40th customer by id (the ids are sorted): ~100 customers.
    let ids: Vec<&String> = f
        .all_customers
        .iter()
        .step_by(40)
        .map(|(id, _)| id)
        .collect();
    for id in &ids {
        let body = json!({"customer_id": id});
        out.push(ask(app, "POST", "/predict", Some(&body)).await);
        out.push(ask(app, "POST", "/segment", Some(&body)).await);
    }
    let batch: Vec<Value> = ids
        .iter()
        .take(5)
        .map(|id| json!({"customer_id": id}))
        .chain([features_body()])
        .collect();
    out.push(
        ask(
            app,
            "POST",
            "/predict/batch",
            Some(&json!({"records": batch})),
        )
        .await,
    );
    out.push(ask(app, "POST", "/predict", Some(&features_body())).await);
    out.push(ask(app, "POST", "/segment", Some(&rfm_body())).await);
    out.push(
        ask(
            app,
            "POST",
            "/segment/batch",
            Some(&json!({"records": [rfm_body(), {"customer_id": ids[1]}]})),
        )
        .await,
    );

    let options = ask(app, "GET", "/api/dashboard/options", None).await;
    let o = &options["answer"];
    let text = |k: &str| {
        o[k].as_str()
            .unwrap_or_else(|| panic!("options.{k}: {o}"))
            .to_string()
    };
    let (min, max, category) = (
        text("min_date"),
        text("max_date"),
        o["categories"][0].clone(),
    );
    let category = category.as_str().expect("a category");
    let paths = [
        "/api/dashboard".to_string(),
        "/api/dashboard?segment=0".to_string(),
        "/api/dashboard?state=SP&channel=web".to_string(),
        format!("/api/dashboard?from={min}&to={max}"),
        format!("/api/dashboard?category={category}&state=RJ&from={min}&to={max}"),
    ];
    out.push(options.clone());
    for p in paths {
        out.push(ask(app, "GET", &p, None).await);
    }
    out
}

#[tokio::test]
async fn predict_segment_and_dashboard_answer_as_recorded() {
    let app = spawn_app().await;
    let now = answers(&app).await;
    let file = recorded_file();
    if std::env::var_os("RECORD_ANSWERS").is_some() {
        std::fs::create_dir_all(file.parent().expect("folder")).expect("mkdir");
        let text = serde_json::to_string_pretty(&now).expect("json") + "\n";
        std::fs::write(&file, text).expect("write the recorded answers");
        eprintln!("recorded {} answers in {}", now.len(), file.display());
        return;
    }
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it with RECORD_ANSWERS=1 (see this file's docs)",
            file.display()
        )
    });
    let recorded: Vec<Value> = serde_json::from_str(&text).expect("recorded answers are JSON");
    assert_eq!(
        recorded.len(),
        now.len(),
        "the number of recorded questions changed: re-record on purpose"
    );
    let mut differences = BTreeMap::new();
    for (r, n) in recorded.iter().zip(&now) {
        assert_eq!(
            r["request"], n["request"],
            "questions asked in the same order"
        );
        assert_eq!(r["body"], n["body"], "{}: same request body", r["request"]);
        if let Some(d) =
            first_difference(&r["answer"], &only_recorded(&r["answer"], &n["answer"]), "")
        {
            differences.insert(format!("{} {}", r["request"], r["body"]), d);
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} answers differ from the recorded ones (recorded vs now):\n{}",
        differences.len(),
        now.len(),
        differences
            .iter()
            .take(10)
            .map(|(q, d)| format!("  {q}: {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
