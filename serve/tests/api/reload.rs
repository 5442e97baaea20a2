//! Hot reload: the live model changes under load with no failed request,
//! and a model that does not load never replaces the live one.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, expect_status, features_body, json_of, spawn};

async fn spawn_live(kind: &'static str) -> TestApp {
    spawn(
        |s| s.reload_interval_ms = 50,
        move |m| {
            std::fs::write(
                m.join("customer_spend/best.json"),
                json!({"best": kind}).to_string(),
            )
            .expect("best")
        },
    )
    .await
}

async fn ready_model(app: &TestApp) -> (String, String) {
    let (s, b) = json_of(app.get("/ready").await).await;
    expect_status(s, &b, 200);
    (
        b["model"].as_str().unwrap_or_default().to_string(),
        b["version"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_best_under_load_fails_no_request() {
    let app = std::sync::Arc::new(spawn_live("linear").await);
    let (model, old_version) = ready_model(&app).await;
    assert_eq!(model, "linear");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (app, stop) = (app.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let body = features_body();
            let started = Instant::now();
            // Bounded in count and in time.
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && answers.len() < 5_000
                && started.elapsed() < Duration::from_secs(60)
            {
                let r = app.post_json("/predict", &body).await;
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                answers.push((
                    status,
                    v["model"].as_str().unwrap_or("").to_string(),
                    v["version"].as_str().unwrap_or("").to_string(),
                ));
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.set_best("xgboost");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready_model(&app).await.0 == "xgboost" {
            break;
        }
        assert!(Instant::now() < deadline, "the model never switched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let failures: Vec<_> = all.iter().filter(|(s, _, _)| *s != 200).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        all.len(),
        &failures[..failures.len().min(5)]
    );
    let before = all
        .iter()
        .filter(|(_, m, v)| m == "linear" && *v == old_version)
        .count();
    let after: Vec<_> = all.iter().filter(|(_, m, _)| m == "xgboost").collect();
    assert_eq!(
        before + after.len(),
        all.len(),
        "answers from an unexpected model"
    );
    assert!(
        before > 0 && !after.is_empty(),
        "before {before}, after {}",
        after.len()
    );
    assert!(after.iter().all(|(_, _, v)| *v != old_version));
    eprintln!(
        "{} requests, {before} answered by the old model, {} by the new",
        all.len(),
        after.len()
    );
    // Every task ends on the new model.
    let (s, b) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(s, &b, 200);
    assert_eq!(b["model"], "xgboost");
}

#[tokio::test]
async fn a_model_that_does_not_load_keeps_the_live_one() {
    let app = spawn_live("linear").await;
    let live = ready_model(&app).await;
    let family = app.family();

    // A corrupted model file named by best.json.
    let bytes = std::fs::read(family.join("random_forest.msgpack")).expect("read");
    std::fs::write(
        family.join("random_forest.msgpack"),
        &bytes[..bytes.len() / 2],
    )
    .expect("truncate");
    app.set_best("random_forest");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ready_model(&app).await, live);

    // best.json that is not JSON, or names no known kind.
    std::fs::write(family.join("best.json"), "{\"best\": ").expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready_model(&app).await, live);
    app.set_best("gradient_magic");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready_model(&app).await, live);
    let (s, b) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(s, &b, 200);
    assert_eq!(b["model"], "linear");

    // Repaired: the next check picks it up.
    std::fs::write(family.join("random_forest.msgpack"), &bytes).expect("restore");
    app.set_best("random_forest");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready_model(&app).await.0 != "random_forest" {
        assert!(
            Instant::now() < deadline,
            "the repaired model was never loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
