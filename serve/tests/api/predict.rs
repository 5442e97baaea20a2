use serde_json::{Value, json};

use analytics_lib::features::FeatureMatrix;
use analytics_lib::models::trees::TreeEnsemble;
use analytics_lib::models::{Regressor, TrainedModel};
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
    let (status, mut by_features) = json_of(app.post_json("/predict", &body_of(row)).await).await;
    expect_status(status, &by_features, 200);
    // The same answer, but for the CLV figures that only a lookup has.
    assert!(
        by_features["clv"].is_null() && by_features["p_alive"].is_null(),
        "{by_features}"
    );
    assert!(
        by_id["clv"].is_number() && by_id["p_alive"].is_number(),
        "{by_id}"
    );
    by_features["clv"] = by_id["clv"].clone();
    by_features["p_alive"] = by_id["p_alive"].clone();
    assert_eq!(by_id, by_features);
}

/// A customer lookup answers the CLV and P(alive) the library computes for
/// that customer at the data's reference date (kept as f32), in single and
/// batch answers; feature values answer null for both. Every answer has
/// the model's 80 % and 95 % intervals, as its saved calibration gives them.
#[tokio::test]
async fn lookups_answer_clv_and_p_alive_and_every_answer_its_intervals() {
    let app = spawn_app().await;
    let f = fixture();
    let served = library_model(&f.best);
    let calibration = served.meta.intervals.as_ref().expect("intervals");
    let check_intervals = |p: &Value| {
        let spend = p["predicted_spend_90d"].as_f64().expect("spend");
        let want = calibration.intervals(spend);
        for (key, iv) in ["interval_80", "interval_95"].iter().zip(want) {
            assert_eq!(p[key]["low"].as_f64(), Some(iv.low), "{key}: {p}");
            assert_eq!(p[key]["high"].as_f64(), Some(iv.high), "{key}: {p}");
            assert!(iv.low >= 0.0 && iv.low <= iv.high);
        }
        assert!(p["interval_95"]["low"].as_f64() <= p["interval_80"]["low"].as_f64());
        assert!(p["interval_95"]["high"].as_f64() >= p["interval_80"]["high"].as_f64());
    };
    let close = |got: &Value, want: f64| {
        let got = got.as_f64().expect("a number");
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    };
    assert!(f.clv_values.len() >= 4);
    for (id, v) in &f.clv_values {
        let (status, p) =
            json_of(app.post_json("/predict", &json!({"customer_id": id})).await).await;
        expect_status(status, &p, 200);
        close(&p["clv"], v.clv);
        close(&p["p_alive"], v.p_alive);
        check_intervals(&p);
    }
    assert!(f.clv_values.iter().any(|(_, v)| v.p_alive < 1.0));
    let (status, p) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(status, &p, 200);
    assert!(p["clv"].is_null() && p["p_alive"].is_null(), "{p}");
    check_intervals(&p);

    let (id, v) = &f.clv_values[0];
    let batch = json!({"records": [{"customer_id": id}, features_body(), {"customer_id": id}]});
    let (status, b) = json_of(app.post_json("/predict/batch", &batch).await).await;
    expect_status(status, &b, 200);
    let r = b["results"].as_array().expect("results");
    close(&r[0]["clv"], v.clv);
    close(&r[2]["p_alive"], v.p_alive);
    assert!(r[1]["clv"].is_null() && r[1]["p_alive"].is_null());
    for p in r {
        check_intervals(p);
    }
}

/// Every customer of the data, for each model kind: the answer by id (from
/// the service's compact `CustomerRows`) is the answer to the features
/// computed on the full sales lines with the model's categories.
#[tokio::test]
async fn every_customer_by_id_equals_its_features_from_the_full_lines() {
    let f = fixture();
    assert!(f.all_customers.len() > 1_000, "{}", f.all_customers.len());
    for kind in ["linear", "random_forest", "xgboost"] {
        let app = spawn(|s| s.max_batch = 10_000, serving(kind)).await;
        for chunk in f.all_customers.chunks(5_000) {
            let by_id: Vec<Value> = chunk
                .iter()
                .map(|(id, _)| json!({"customer_id": id}))
                .collect();
            let by_row: Vec<Value> = chunk.iter().map(|(_, row)| body_of(row)).collect();
            let (status, mut a) = json_of(
                app.post_json("/predict/batch", &json!({"records": by_id}))
                    .await,
            )
            .await;
            expect_status(status, &a, 200);
            // Lookups also answer CLV figures (every customer has them);
            // feature records answer null there.
            for r in a["results"].as_array_mut().expect("results") {
                assert!(r["clv"].is_number() && r["p_alive"].is_number(), "{r}");
                r["clv"] = Value::Null;
                r["p_alive"] = Value::Null;
            }
            let (status, b) = json_of(
                app.post_json("/predict/batch", &json!({"records": by_row}))
                    .await,
            )
            .await;
            expect_status(status, &b, 200);
            assert_eq!(a, b, "{kind}");
        }
    }
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
    // Path attribution: with every feature listed, the contributions of two
    // inputs differ by the difference of their predictions (the bias cancels).
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

/// The fixture's trained model of `kind`, as the library loads it.
fn library_model(kind: &str) -> TrainedModel {
    TrainedModel::load(&fixture().trained.join(format!("{kind}.msgpack"))).expect("model")
}

/// The flat ensemble the library gives for a tree model.
fn library_ensemble(m: &TrainedModel) -> TreeEnsemble {
    match &m.model {
        Regressor::RandomForest(f) => f.ensemble().clone(),
        Regressor::Xgboost(x) => x.to_ensemble().expect("ensemble"),
        Regressor::Linear(_) | Regressor::TrainingMean(_) => panic!("not a tree model"),
    }
}

/// Varied feature rows: the fixture's customers and scaled copies, plus the
/// plain body's values (all valid: shares stay within [0, 1]).
fn varied_rows() -> Vec<Vec<f64>> {
    let f = fixture();
    let mut rows = Vec::new();
    for (i, (_, row)) in f.customers.iter().enumerate() {
        for s in [0.0, 0.5, 1.0, 3.0, 17.0] {
            let r: Vec<f64> = f
                .feature_names
                .iter()
                .zip(row)
                .map(|(n, v)| {
                    if n.starts_with("share_") {
                        *v
                    } else {
                        v * s + i as f64
                    }
                })
                .collect();
            rows.push(r);
        }
    }
    rows
}

#[tokio::test]
async fn tree_models_answer_the_librarys_predictions_and_additive_contributions() {
    let n = fixture().feature_names.len();
    for kind in ["random_forest", "xgboost"] {
        let app = spawn(move |s| s.top_contributions = n, serving(kind)).await;
        let lib = library_model(kind);
        let ens = library_ensemble(&lib);
        let rows = varied_rows();
        let x = FeatureMatrix::from_rows(fixture().feature_names.clone(), &rows).expect("x");
        let want = lib.predict(&x).expect("library predict");
        let approx = match &lib.model {
            Regressor::Xgboost(m) => Some(m.approx_contributions(&x).expect("approx")),
            _ => None,
        };
        let mut buf = vec![0.0; n];
        for (i, row) in rows.iter().enumerate() {
            let (status, p) = json_of(app.post_json("/predict", &body_of(row)).await).await;
            expect_status(status, &p, 200);
            assert_eq!(p["model"], kind);
            let got = p["predicted_spend_90d"].as_f64().expect("prediction");
            assert!(
                (got - want[i]).abs() <= 1e-6 * want[i].abs().max(1.0),
                "{kind}, row {i}: served {got}, library {}",
                want[i]
            );
            // Every feature listed once; with the bias they add up to it.
            let c = p["contributions"].as_array().expect("contributions");
            assert_eq!(c.len(), n, "{kind}: all {n} asked for");
            let bias = ens.contributions(row, &mut buf).expect("contributions");
            let sum: f64 = c.iter().map(|x| x["value"].as_f64().expect("value")).sum();
            assert!(
                (bias + sum - got).abs() <= 1e-6 * got.abs().max(1.0),
                "{kind}, row {i}: bias {bias} + Σ {sum} ≠ {got}"
            );
            let names = &fixture().feature_names;
            for item in c {
                let j = names
                    .iter()
                    .position(|n| item["feature"] == n.as_str())
                    .expect("known feature");
                let v = item["value"].as_f64().expect("value");
                assert!((v - buf[j]).abs() <= 1e-9 * buf[j].abs().max(1.0));
                // XGBoost's own approx_contribs (f32) agree.
                if let Some(a) = &approx {
                    let theirs = a[i * (n + 1) + j];
                    assert!(
                        (v - theirs).abs() <= 1e-3_f64.max(1e-4 * theirs.abs()),
                        "row {i}, {}: served {v}, XGBoost approx_contribs {theirs}",
                        names[j]
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_batch_equals_its_records_one_by_one_for_each_tree_model() {
    for kind in ["random_forest", "xgboost"] {
        let app = spawn(|s| s.top_contributions = 4, serving(kind)).await;
        let f = fixture();
        let mut records: Vec<Value> = varied_rows().iter().map(|r| body_of(r)).collect();
        records.insert(3, json!({"customer_id": f.customers[1].0}));
        records.push(json!({"customer_id": f.customers[0].0}));
        let (status, body) = json_of(
            app.post_json("/predict/batch", &json!({"records": records}))
                .await,
        )
        .await;
        expect_status(status, &body, 200);
        let results = body["results"].as_array().expect("results");
        assert_eq!(results.len(), records.len());
        for (i, r) in records.iter().enumerate() {
            let (status, single) = json_of(app.post_json("/predict", r).await).await;
            expect_status(status, &single, 200);
            assert_eq!(single["model"], kind);
            assert_eq!(results[i], single, "{kind}, record {i}");
            assert_eq!(single["contributions"].as_array().map(Vec::len), Some(4));
        }
    }
}

#[tokio::test]
async fn unusual_but_valid_json_gives_the_same_answer() {
    // The fast reader and the field-by-field reader must agree: fields in
    // reverse order, integers, escaped keys, a duplicate key (the last one
    // wins) and whitespace all answer what the plain body answers.
    let app = spawn_app().await;
    let plain = features_body();
    let (status, want) = json_of(app.post_json("/predict", &plain).await).await;
    expect_status(status, &want, 200);
    let obj = plain.as_object().expect("object");
    let reversed: Vec<String> = obj
        .iter()
        .rev()
        .map(|(k, v)| {
            let key: String = k.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
            format!("\n  \"{key}\" : {v}")
        })
        .collect();
    let first = obj.keys().next().expect("a feature");
    let dup = format!("{{\"{first}\": \"not a number\", {} }}", reversed.join(","));
    for text in [format!("{{{}}}", reversed.join(",")), dup] {
        let r = app
            .post_raw("/predict", "application/json", text.clone())
            .await;
        let (status, got) = json_of(r).await;
        expect_status(status, &got, 200);
        assert_eq!(got, want, "{text}");
        let batch = format!("{{\"records\": [{text}, {text}]}}");
        let r = app
            .post_raw("/predict/batch", "application/json", batch)
            .await;
        let (status, got) = json_of(r).await;
        expect_status(status, &got, 200);
        assert_eq!(got["results"], json!([want, want]));
    }
    // And a bad value after a good one is still named.
    let text = format!("{{{}, \"{first}\": -1}}", reversed.join(","));
    let r = app.post_raw("/predict", "application/json", text).await;
    let (status, got) = json_of(r).await;
    expect_status(status, &got, 400);
    assert_eq!(got["field"], first.as_str());
}
