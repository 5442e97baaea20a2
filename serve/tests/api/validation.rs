//! Every kind of bad input: a 4xx JSON error naming the field, never a 5xx.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_status, features_body, json_of, spawn, spawn_app, spawn_app_with,
};

/// POST `body`, expect `status`, and an error body with `field` (when given)
/// and `expected`/`found` when the field is given.
async fn refused(
    app: &TestApp,
    path: &str,
    body: &Value,
    status: u16,
    field: Option<&str>,
) -> Value {
    let (s, b) = json_of(app.post_json(path, body).await).await;
    check(s, &b, status, field);
    b
}

#[track_caller]
fn check(s: reqwest::StatusCode, b: &Value, status: u16, field: Option<&str>) {
    expect_status(s, b, status);
    assert!(b["error"].as_str().is_some_and(|e| !e.is_empty()), "{b}");
    if let Some(f) = field {
        assert_eq!(b["field"], f, "{b}");
        assert!(b["expected"].is_string() && b["found"].is_string(), "{b}");
    }
}

fn with(key: &str, value: Value) -> Value {
    let mut b = features_body();
    b[key] = value;
    b
}

fn without(key: &str) -> Value {
    let mut b = features_body();
    b.as_object_mut().expect("object").remove(key);
    b
}

#[tokio::test]
async fn missing_field() {
    let app = spawn_app().await;
    let b = refused(
        &app,
        "/predict",
        &without("frequency"),
        400,
        Some("frequency"),
    )
    .await;
    assert_eq!(b["found"], "nothing");
}

#[tokio::test]
async fn wrong_type() {
    let app = spawn_app().await;
    for v in [
        json!("3"),
        json!(null),
        json!(true),
        json!([1]),
        json!({"a": 1}),
    ] {
        refused(
            &app,
            "/predict",
            &with("frequency", v),
            400,
            Some("frequency"),
        )
        .await;
    }
    refused(
        &app,
        "/predict",
        &json!({"customer_id": 42}),
        400,
        Some("customer_id"),
    )
    .await;
    refused(&app, "/predict", &json!([1, 2, 3]), 400, None).await;
    refused(&app, "/predict", &json!("hello"), 400, None).await;
}

#[tokio::test]
async fn negative_or_out_of_range_values() {
    let app = spawn_app().await;
    refused(
        &app,
        "/predict",
        &with("monetary", json!(-1.0)),
        400,
        Some("monetary"),
    )
    .await;
    // Finite in JSON, but infinite as XGBoost's f32.
    refused(
        &app,
        "/predict",
        &with("monetary", json!(1e39)),
        400,
        Some("monetary"),
    )
    .await;
    let share = crate::helpers::fixture()
        .feature_names
        .iter()
        .find(|n| n.starts_with("share_"))
        .expect("a share feature")
        .clone();
    refused(
        &app,
        "/predict",
        &with(&share, json!(1.5)),
        400,
        Some(share.as_str()),
    )
    .await;
}

#[tokio::test]
async fn non_finite_values() {
    let app = spawn_app().await;
    // JSON has no NaN or infinity: the literals and out-of-range numbers are
    // refused when the body is read.
    for raw in ["NaN", "Infinity", "-Infinity", "1e999"] {
        let mut text = features_body().to_string();
        text = text.replacen("\"frequency\":3.0", &format!("\"frequency\":{raw}"), 1);
        assert!(text.contains(raw), "{text}");
        let (s, b) = json_of(app.post_raw("/predict", "application/json", text).await).await;
        check(s, &b, 400, None);
        assert!(b["found"].is_string(), "{b}");
    }
}

#[tokio::test]
async fn unknown_field() {
    let app = spawn_app().await;
    refused(
        &app,
        "/predict",
        &with("frequencyy", json!(1)),
        400,
        Some("frequencyy"),
    )
    .await;
    let b = refused(
        &app,
        "/predict",
        &json!({"customer_id": "C1", "frequency": 1}),
        400,
        Some("frequency"),
    )
    .await;
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("customer_id"))
    );
    refused(
        &app,
        "/predict/batch",
        &json!({"records": [features_body()], "x": 1}),
        400,
        Some("x"),
    )
    .await;
}

#[tokio::test]
async fn bad_record_in_a_batch_names_its_index() {
    let app = spawn_app().await;
    let records = json!([features_body(), without("tenure_days")]);
    refused(
        &app,
        "/predict/batch",
        &json!({"records": records}),
        400,
        Some("records[1].tenure_days"),
    )
    .await;
    let records = json!([features_body(), {"customer_id": "no-such-customer"}]);
    refused(
        &app,
        "/predict/batch",
        &json!({"records": records}),
        404,
        Some("records[1].customer_id"),
    )
    .await;
    refused(
        &app,
        "/predict/batch",
        &json!({"records": "all"}),
        400,
        Some("records"),
    )
    .await;
    refused(
        &app,
        "/predict/batch",
        &json!({"rows": []}),
        400,
        Some("rows"),
    )
    .await;
    refused(&app, "/predict/batch", &json!({}), 400, Some("records")).await;
}

#[tokio::test]
async fn empty_and_oversized_batches() {
    let app = spawn_app_with(|s| s.max_batch = 3).await;
    let b = refused(
        &app,
        "/predict/batch",
        &json!({"records": []}),
        400,
        Some("records"),
    )
    .await;
    assert_eq!(b["found"], "0 records");
    let records: Vec<Value> = (0..4).map(|_| features_body()).collect();
    let b = refused(
        &app,
        "/predict/batch",
        &json!({"records": records}),
        400,
        Some("records"),
    )
    .await;
    assert_eq!(b["expected"], "at most 3 records");
}

#[tokio::test]
async fn unknown_customer_id() {
    let app = spawn_app().await;
    let b = refused(
        &app,
        "/predict",
        &json!({"customer_id": "no-such-customer"}),
        404,
        Some("customer_id"),
    )
    .await;
    assert!(
        b["expected"].as_str().is_some_and(|e| e.contains("before")),
        "{b}"
    );
    refused(
        &app,
        "/predict",
        &json!({"customer_id": ""}),
        400,
        Some("customer_id"),
    )
    .await;
}

#[tokio::test]
async fn customer_id_without_data() {
    let app = spawn(|s| s.data = None, |_| {}).await;
    let id = &crate::helpers::fixture().customers[0].0;
    let b = refused(
        &app,
        "/predict",
        &json!({"customer_id": id}),
        404,
        Some("customer_id"),
    )
    .await;
    assert!(
        b["expected"].as_str().is_some_and(|e| e.contains("--data")),
        "{b}"
    );
    // Features still work.
    let (s, b) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(s, &b, 200);
}

#[tokio::test]
async fn body_over_the_size_limit() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
    let records: Vec<Value> = (0..50).map(|_| features_body()).collect();
    let body = json!({"records": records});
    assert!(body.to_string().len() > 4096);
    let (s, b) = json_of(app.post_json("/predict/batch", &body).await).await;
    check(s, &b, 413, None);
    assert_eq!(b["expected"], "at most 4096 bytes");
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type() {
    let app = spawn_app().await;
    for text in ["{", "{\"frequency\": }", "", "not json"] {
        let (s, b) = json_of(
            app.post_raw("/predict", "application/json", text.into())
                .await,
        )
        .await;
        check(s, &b, 400, None);
    }
    let (s, b) = json_of(
        app.post_raw("/predict", "text/plain", features_body().to_string())
            .await,
    )
    .await;
    check(s, &b, 415, None);
}

fn rfm_with(key: &str, value: Value) -> Value {
    let mut b = crate::helpers::rfm_body();
    b[key] = value;
    b
}

#[tokio::test]
async fn segment_refuses_every_kind_of_bad_input() {
    let app = spawn_app_with(|s| s.max_batch = 3).await;
    // Missing field (each of the required three).
    for f in ["recency_days", "frequency", "monetary"] {
        let mut b = crate::helpers::rfm_body();
        b.as_object_mut().expect("object").remove(f);
        let e = refused(&app, "/segment", &b, 400, Some(f)).await;
        assert_eq!(e["found"], "nothing");
    }
    // Wrong type.
    for v in [
        json!("3"),
        json!(null),
        json!(true),
        json!([1]),
        json!({"a": 1}),
    ] {
        refused(
            &app,
            "/segment",
            &rfm_with("monetary", v),
            400,
            Some("monetary"),
        )
        .await;
    }
    refused(
        &app,
        "/segment",
        &json!({"customer_id": 42}),
        400,
        Some("customer_id"),
    )
    .await;
    refused(&app, "/segment", &json!([1]), 400, None).await;
    // Negative, out of range.
    refused(
        &app,
        "/segment",
        &rfm_with("recency_days", json!(-1)),
        400,
        Some("recency_days"),
    )
    .await;
    refused(
        &app,
        "/segment",
        &rfm_with("average_ticket", json!(-5)),
        400,
        Some("average_ticket"),
    )
    .await;
    refused(
        &app,
        "/segment",
        &rfm_with("monetary", json!(1e39)),
        400,
        Some("monetary"),
    )
    .await;
    let share = crate::helpers::fixture()
        .segment_feature_names
        .iter()
        .find(|n| n.starts_with("share_"))
        .expect("a share feature")
        .clone();
    let e = refused(
        &app,
        "/segment",
        &rfm_with(&share, json!(1.5)),
        400,
        Some(share.as_str()),
    )
    .await;
    assert_eq!(e["expected"], "a share between 0 and 1");
    // Non-finite: refused when the body is read.
    for raw in ["NaN", "Infinity", "-Infinity", "1e999"] {
        let text = format!("{{\"recency_days\": 3, \"frequency\": {raw}, \"monetary\": 10}}");
        let (s, b) = json_of(app.post_raw("/segment", "application/json", text).await).await;
        check(s, &b, 400, None);
    }
    // Unknown field: a spend feature is not a segment feature.
    let e = refused(
        &app,
        "/segment",
        &rfm_with("tenure_days", json!(3)),
        400,
        Some("tenure_days"),
    )
    .await;
    assert!(
        e["expected"]
            .as_str()
            .is_some_and(|x| x.contains("recency_days")),
        "{e}"
    );
    refused(
        &app,
        "/segment",
        &json!({"customer_id": "C1", "monetary": 1}),
        400,
        Some("monetary"),
    )
    .await;
    // Batches: a bad record names its index; empty; oversized; extra field.
    let records = json!([crate::helpers::rfm_body(), {"recency_days": 1, "frequency": 1}]);
    refused(
        &app,
        "/segment/batch",
        &json!({"records": records}),
        400,
        Some("records[1].monetary"),
    )
    .await;
    let e = refused(
        &app,
        "/segment/batch",
        &json!({"records": []}),
        400,
        Some("records"),
    )
    .await;
    assert_eq!(e["found"], "0 records");
    let records: Vec<Value> = (0..4).map(|_| crate::helpers::rfm_body()).collect();
    let e = refused(
        &app,
        "/segment/batch",
        &json!({"records": records}),
        400,
        Some("records"),
    )
    .await;
    assert_eq!(e["expected"], "at most 3 records");
    refused(
        &app,
        "/segment/batch",
        &json!({"records": [], "x": 1}),
        400,
        Some("x"),
    )
    .await;
    refused(
        &app,
        "/segment/batch",
        &json!({"records": "all"}),
        400,
        Some("records"),
    )
    .await;
    // Unknown customer id, alone and in a batch.
    let e = refused(
        &app,
        "/segment",
        &json!({"customer_id": "no-such-customer"}),
        404,
        Some("customer_id"),
    )
    .await;
    assert!(
        e["expected"].as_str().is_some_and(|x| x.contains("before")),
        "{e}"
    );
    refused(
        &app,
        "/segment/batch",
        &json!({"records": [{"customer_id": "nobody"}]}),
        404,
        Some("records[0].customer_id"),
    )
    .await;
    // Malformed JSON, wrong content type.
    let (s, b) = json_of(
        app.post_raw("/segment", "application/json", "{".into())
            .await,
    )
    .await;
    check(s, &b, 400, None);
    let (s, b) = json_of(
        app.post_raw(
            "/segment",
            "text/plain",
            crate::helpers::rfm_body().to_string(),
        )
        .await,
    )
    .await;
    check(s, &b, 415, None);
}

#[tokio::test]
async fn segment_body_over_the_size_limit() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
    let records: Vec<Value> = (0..100).map(|_| crate::helpers::rfm_body()).collect();
    let body = json!({"records": records});
    assert!(body.to_string().len() > 4096);
    let (s, b) = json_of(app.post_json("/segment/batch", &body).await).await;
    check(s, &b, 413, None);
    assert_eq!(b["expected"], "at most 4096 bytes");
}

#[tokio::test]
async fn segment_customer_id_without_data() {
    let app = spawn(|s| s.data = None, |_| {}).await;
    let id = &crate::helpers::fixture().customers[0].0;
    let b = refused(
        &app,
        "/segment",
        &json!({"customer_id": id}),
        404,
        Some("customer_id"),
    )
    .await;
    assert!(
        b["expected"].as_str().is_some_and(|e| e.contains("--data")),
        "{b}"
    );
    let (s, b) = json_of(app.post_json("/segment", &crate::helpers::rfm_body()).await).await;
    expect_status(s, &b, 200);
}
