//! `POST /segment` and `POST /segment/batch`.

use serde_json::{Value, json};

use crate::helpers::{Seg, expect_status, fixture, json_of, rfm_body, spawn, spawn_app};

#[track_caller]
fn check_segment(s: &Value, k: usize) {
    let id = s["segment_id"].as_i64().expect("segment_id");
    assert!((0..k as i64).contains(&id), "segment {id} of {k}");
    assert!(
        s["segment_name"].as_str().is_some_and(|n| !n.is_empty()),
        "{s}"
    );
    let d = s["distance"].as_f64().expect("distance");
    assert!(d.is_finite() && d >= 0.0, "{d}");
    assert!(
        s["version"].as_str().is_some_and(|v| v.starts_with('v')),
        "{s}"
    );
    let p = &s["profile"];
    assert!(p["size"].as_u64().is_some_and(|n| n > 0), "{p}");
    for f in [
        "share_customers",
        "revenue_share",
        "mean_recency_days",
        "median_recency_days",
        "mean_frequency",
        "median_frequency",
        "mean_monetary",
        "median_monetary",
    ] {
        let v = p[f].as_f64().unwrap_or(f64::NAN);
        assert!(v.is_finite() && v >= 0.0, "profile.{f} = {}", p[f]);
    }
    let shares = |f: &str| p[f].as_f64().unwrap_or(2.0);
    assert!(shares("share_customers") <= 1.0 && shares("revenue_share") <= 1.0);
    let top = p["top_categories"].as_array().expect("top_categories");
    assert!(!top.is_empty() && top.len() <= 3, "{p}");
    let with_shares = p["top_category_shares"].as_array().expect("shares");
    assert_eq!(with_shares.len(), top.len());
    for (name, c) in top.iter().zip(with_shares) {
        assert_eq!(&c["category"], name);
    }
}

/// The same answer; the distance up to float noise (JSON numbers are parsed
/// to the nearest f64 or next to it).
#[track_caller]
fn same_segment(a: &Value, b: &Value) {
    for f in ["segment_id", "segment_name", "version", "profile"] {
        assert_eq!(a[f], b[f], "{f}: {a} vs {b}");
    }
    let (x, y) = (
        a["distance"].as_f64().expect("distance"),
        b["distance"].as_f64().expect("distance"),
    );
    assert!((x - y).abs() <= 1e-9 * (1.0 + x.abs()), "{x} vs {y}");
}

#[tokio::test]
async fn segment_from_rfm_only() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.post_json("/segment", &rfm_body()).await).await;
    expect_status(status, &body, 200);
    check_segment(&body, 4);
    assert_eq!(body["version"], "v0001");
}

#[tokio::test]
async fn segment_by_customer_id_is_the_same_as_by_its_features() {
    let app = spawn_app().await;
    let f = fixture();
    for (i, (id, _)) in f.customers.iter().enumerate() {
        let (status, by_id) =
            json_of(app.post_json("/segment", &json!({"customer_id": id})).await).await;
        expect_status(status, &by_id, 200);
        check_segment(&by_id, 4);
        let (status, by_features) =
            json_of(app.post_json("/segment", &f.segment_rows[i]).await).await;
        expect_status(status, &by_features, 200);
        same_segment(&by_id, &by_features);
    }
}

#[tokio::test]
async fn optional_features_change_the_placement_not_the_contract() {
    let app = spawn_app().await;
    let names = &fixture().segment_feature_names;
    assert!(names.iter().any(|n| n.starts_with("share_")), "{names:?}");
    // average_ticket given explicitly equals the default monetary / frequency.
    let mut with_ticket = rfm_body();
    with_ticket["average_ticket"] = json!(200.0);
    let (s1, a) = json_of(app.post_json("/segment", &rfm_body()).await).await;
    let (s2, b) = json_of(app.post_json("/segment", &with_ticket).await).await;
    expect_status(s1, &a, 200);
    expect_status(s2, &b, 200);
    assert_eq!(a, b);
    // With one share, the other shares count as 0.
    let share = names
        .iter()
        .find(|n| n.starts_with("share_"))
        .expect("share");
    let mut with_share = rfm_body();
    with_share[share.as_str()] = json!(1.0);
    let (s, c) = json_of(app.post_json("/segment", &with_share).await).await;
    expect_status(s, &c, 200);
    check_segment(&c, 4);
}

#[tokio::test]
async fn batch_answers_in_order() {
    let app = spawn_app().await;
    let f = fixture();
    let records = json!([
        rfm_body(),
        {"customer_id": f.customers[0].0},
        f.segment_rows[1],
        {"recency_days": 400, "frequency": 1, "monetary": 20.0},
        {"recency_days": 2, "frequency": 40, "monetary": 20000.0},
    ]);
    let (status, body) = json_of(
        app.post_json("/segment/batch", &json!({"records": records}))
            .await,
    )
    .await;
    expect_status(status, &body, 200);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    for (i, r) in records.as_array().expect("records").iter().enumerate() {
        let (status, single) = json_of(app.post_json("/segment", r).await).await;
        expect_status(status, &single, 200);
        same_segment(&results[i], &single);
    }
    // A lapsed one-off buyer and a frequent big spender do not share a segment.
    assert_ne!(results[3]["segment_id"], results[4]["segment_id"]);
}

/// The batch writes each answer from bytes made once per segment
/// (`Fragments`): its text is exactly the single answers' (serde_json's
/// writing of a `SegmentResponse`) joined, for records of every kind and
/// segments met more than once.
#[tokio::test]
async fn batch_bytes_are_the_single_answers_joined() {
    let app = spawn_app().await;
    let f = fixture();
    let share = f
        .segment_feature_names
        .iter()
        .find(|n| n.starts_with("share_"))
        .expect("share");
    let mut with_share = rfm_body();
    with_share[share.as_str()] = json!(0.25);
    let mut records = vec![rfm_body(), with_share];
    for ((id, _), row) in f.customers.iter().zip(&f.segment_rows).take(12) {
        records.push(json!({"customer_id": id}));
        records.push(row.clone());
    }
    records.push(json!({"recency_days": 400, "frequency": 1, "monetary": 20.0}));
    records.push(json!({"recency_days": 2, "frequency": 40, "monetary": 20000.0}));
    let batch = app
        .post_json("/segment/batch", &json!({"records": records}))
        .await;
    assert_eq!(batch.status().as_u16(), 200);
    let batch = batch.text().await.expect("batch body");
    let mut singles = Vec::new();
    let mut segments = std::collections::BTreeSet::new();
    for r in &records {
        let single = app.post_json("/segment", r).await;
        assert_eq!(single.status().as_u16(), 200);
        let text = single.text().await.expect("single body");
        let v: Value = serde_json::from_str(&text).expect("json");
        segments.insert(v["segment_id"].as_i64().expect("segment_id"));
        singles.push(text);
    }
    assert!(segments.len() >= 2 && segments.len() < records.len());
    assert_eq!(batch, format!("{{\"results\":[{}]}}", singles.join(",")));
}

#[tokio::test]
async fn batch_of_max_size_is_accepted() {
    let app = crate::helpers::spawn_app_with(|s| s.max_batch = 1_000).await;
    let records: Vec<Value> = (0..1_000)
        .map(|i| json!({"recency_days": i % 365, "frequency": 1 + i % 9, "monetary": 50.0 + i as f64}))
        .collect();
    let (status, body) = json_of(
        app.post_json("/segment/batch", &json!({"records": records}))
            .await,
    )
    .await;
    expect_status(status, &body, 200);
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1_000));
}

#[tokio::test]
async fn another_live_version_is_served() {
    // The k = 3 model is served here, as the live v0002.
    let app = spawn(
        |_| {},
        |m| {
            let id = crate::helpers::commit_segments(m, Seg::Three);
            crate::helpers::promote(m, analytics_lib::registry::SEGMENTS, id);
        },
    )
    .await;
    let (status, body) = json_of(app.post_json("/segment", &rfm_body()).await).await;
    expect_status(status, &body, 200);
    check_segment(&body, 3);
    assert_eq!(body["version"], "v0002");
}

/// Every customer of the data: the segment by id (from the service's
/// compact `CustomerRows`) is the segment of the features computed on the
/// full sales lines.
#[tokio::test]
async fn every_customer_by_id_equals_its_features_from_the_full_lines() {
    let f = fixture();
    let app = crate::helpers::spawn_app_with(|s| s.max_batch = 10_000).await;
    for chunk in f.all_segment_rows.chunks(5_000) {
        let by_id: Vec<Value> = chunk
            .iter()
            .map(|(id, _)| json!({"customer_id": id}))
            .collect();
        let by_row: Vec<Value> = chunk.iter().map(|(_, row)| row.clone()).collect();
        let (status, a) = json_of(
            app.post_json("/segment/batch", &json!({"records": by_id}))
                .await,
        )
        .await;
        expect_status(status, &a, 200);
        let (status, b) = json_of(
            app.post_json("/segment/batch", &json!({"records": by_row}))
                .await,
        )
        .await;
        expect_status(status, &b, 200);
        assert_eq!(a, b);
    }
}

/// Found by schemathesis (issue 16): the default average ticket of a
/// record with a tiny frequency was infinite and the record refused.
#[tokio::test]
async fn any_valid_rfm_has_a_segment() {
    let app = crate::helpers::spawn_app().await;
    for body in [
        json!({"recency_days": 7.0e16, "frequency": 1.1e-308, "monetary": 7.36e37}),
        json!({"recency_days": 0, "frequency": 0, "monetary": 5.0}),
        json!({"recency_days": 3.4e38, "frequency": 3.4e38, "monetary": 3.4e38}),
    ] {
        let (status, b) = json_of(app.post_json("/segment", &body).await).await;
        expect_status(status, &b, 200);
        assert!(b["distance"].as_f64().is_some_and(f64::is_finite), "{b}");
    }
}
