use serde_json::{Value, json};

use analytics_lib::registry::SPEND;

use crate::helpers::{
    body_of, commit_spend, expect_status, features_body, fixture, json_of, promote, spawn,
    spawn_app,
};

/// `prepare` for [`spawn`]: a new customer_spend version serving `kind`, live.
fn serving(kind: &'static str) -> impl FnOnce(&std::path::Path) {
    move |m| {
        let id = commit_spend(m, kind);
        promote(m, SPEND, id);
    }
}

/// Contributions: at most `top`, distinct known features, largest |value| first.
#[track_caller]
fn check_prediction(p: &Value, top: usize) {
    let spend = p["predicted_spend_90d"].as_f64().expect("a number");
    assert!(spend.is_finite());
    assert!(p["model"].is_string() && p["version"].is_string(), "{p}");
    let c = p["contributions"].as_array().expect("contributions");
    assert!(!c.is_empty() && c.len() <= top, "{} contributions", c.len());
    let names = &fixture().feature_names;
    let mut seen = std::collections::HashSet::new();
    let mut last = f64::INFINITY;
    for item in c {
        let f = item["feature"].as_str().expect("feature");
        assert!(names.iter().any(|n| n == f), "unknown feature {f}");
        assert!(seen.insert(f.to_string()), "{f} twice");
        let v = item["value"].as_f64().expect("value").abs();
        assert!(v <= last, "not sorted by |value|: {c:?}");
        last = v;
    }
}

#[tokio::test]
async fn predict_from_features_by_name() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(status, &body, 200);
    check_prediction(&body, 10);
    assert_eq!(body["model"], fixture().best.as_str());
    assert_eq!(body["version"], "v0001");
}

#[tokio::test]
async fn predict_by_customer_id_is_the_same_as_by_its_features() {
    let app = spawn_app().await;
    let (id, row) = &fixture().customers[0];
    let (status, by_id) =
        json_of(app.post_json("/predict", &json!({"customer_id": id})).await).await;
    expect_status(status, &by_id, 200);
    check_prediction(&by_id, 10);
    let (status, by_features) = json_of(app.post_json("/predict", &body_of(row)).await).await;
    expect_status(status, &by_features, 200);
    assert_eq!(by_id, by_features);
}

#[tokio::test]
async fn every_model_kind_predicts_with_contributions() {
    for kind in ["linear", "random_forest", "xgboost"] {
        let app = spawn(|s| s.top_contributions = 5, serving(kind)).await;
        let (status, body) = json_of(app.post_json("/predict", &features_body()).await).await;
        expect_status(status, &body, 200);
        assert_eq!(body["model"], kind);
        // The registry version, not a file's: v0001 is the default one.
        assert_eq!(body["version"], "v0002");
        check_prediction(&body, 5);
        let (id, _) = &fixture().customers[1];
        let (status, body) =
            json_of(app.post_json("/predict", &json!({"customer_id": id})).await).await;
        expect_status(status, &body, 200);
        check_prediction(&body, 5);
    }
}

#[tokio::test]
async fn xgboost_contributions_are_additive() {
    // TreeSHAP: with every feature listed, the contributions of two inputs
    // differ by exactly the difference of their predictions (the bias cancels).
    let n = fixture().feature_names.len();
    let app = spawn(move |s| s.top_contributions = n, serving("xgboost")).await;
    let mut sums = Vec::new();
    for (_, row) in &fixture().customers[..2] {
        let (status, p) = json_of(app.post_json("/predict", &body_of(row)).await).await;
        expect_status(status, &p, 200);
        let c = p["contributions"].as_array().expect("c");
        assert_eq!(c.len(), n);
        let sum: f64 = c.iter().filter_map(|x| x["value"].as_f64()).sum();
        sums.push((p["predicted_spend_90d"].as_f64().expect("p"), sum));
    }
    let (d_pred, d_sum) = (sums[0].0 - sums[1].0, sums[0].1 - sums[1].1);
    assert!(
        (d_pred - d_sum).abs() <= 1e-2 * (1.0 + d_pred.abs()),
        "predictions differ by {d_pred}, contributions by {d_sum}"
    );
}

#[tokio::test]
async fn batch_answers_in_order() {
    let app = spawn_app().await;
    let f = fixture();
    let records = json!([
        features_body(),
        {"customer_id": f.customers[0].0},
        {"customer_id": f.customers[2].0},
        body_of(&f.customers[1].1),
    ]);
    let (status, body) = json_of(
        app.post_json("/predict/batch", &json!({"records": records}))
            .await,
    )
    .await;
    expect_status(status, &body, 200);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 4);
    for (i, r) in records.as_array().expect("records").iter().enumerate() {
        let (status, single) = json_of(app.post_json("/predict", r).await).await;
        expect_status(status, &single, 200);
        assert_eq!(results[i], single, "record {i}");
    }
}

#[tokio::test]
async fn batch_of_max_size_is_accepted() {
    let app = spawn_app_max_batch(50).await;
    let records: Vec<Value> = (0..50).map(|_| features_body()).collect();
    let (status, body) = json_of(
        app.post_json("/predict/batch", &json!({"records": records}))
            .await,
    )
    .await;
    expect_status(status, &body, 200);
    assert_eq!(body["results"].as_array().map(Vec::len), Some(50));
}

async fn spawn_app_max_batch(n: usize) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(move |s| s.max_batch = n).await
}
