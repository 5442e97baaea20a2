//! Hot reload from the registry: promotions and rollbacks switch the live
//! models under load with no failed request, and a version that does not
//! verify or load never replaces the live one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use analytics_lib::registry::{SEGMENTS, SPEND};
use serde_json::{Value, json};

use crate::helpers::{
    Seg, TestApp, commit_spend, expect_status, features_body, json_of, promote, rfm_body, spawn,
};

/// An app with hot reload every 50 ms, serving a linear customer_spend v0002.
async fn spawn_live() -> TestApp {
    spawn(
        |s| s.reload_interval_ms = 50,
        |m| {
            let id = commit_spend(m, "linear");
            promote(m, SPEND, id);
        },
    )
    .await
}

/// (model, version) of each model in `/ready`.
async fn loaded(app: &TestApp) -> Vec<(String, String)> {
    let (s, b) = json_of(app.get("/ready").await).await;
    expect_status(s, &b, 200);
    b["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or_default().to_string(),
                m["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn wait_for(app: &TestApp, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = loaded(app).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the models never became {want:?}; still {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One answer: route, status, model kind (or segment count marker), version.
type Answer = (&'static str, u16, String, String);

/// 4 tasks posting /predict and /segment in turn until `stop`.
fn load_tasks(
    app: &Arc<TestApp>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    (0..4)
        .map(|t| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let (predict, segment) = (features_body(), rfm_body());
                let started = Instant::now();
                // Bounded in count and in time.
                while !stop.load(Ordering::Relaxed)
                    && answers.len() < 20_000
                    && started.elapsed() < Duration::from_secs(90)
                {
                    let (path, body) = if (answers.len() + t) % 2 == 0 {
                        ("/predict", &predict)
                    } else {
                        ("/segment", &segment)
                    };
                    let r = app.post_json(path, body).await;
                    let status = r.status().as_u16();
                    let v: Value = r.json().await.unwrap_or_default();
                    let model = if path == "/predict" {
                        v["model"].as_str().unwrap_or("").to_string()
                    } else {
                        v["profile"]["size"].to_string()
                    };
                    answers.push((
                        path,
                        status,
                        model,
                        v["version"].as_str().unwrap_or("").to_string(),
                    ));
                }
                answers
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_and_roll_back_under_load_fail_no_request() {
    let app = Arc::new(spawn_live().await);
    wait_for(&app, &[("linear", "v0002"), ("kmeans", "v0001")]).await;
    let spend_v3 = app.commit_spend("xgboost");
    let seg_v2 = app.commit_segments(Seg::Three);

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load_tasks(&app, &stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Promote both; answers switch.
    app.promote(SPEND, spend_v3);
    app.promote(SEGMENTS, seg_v2);
    wait_for(&app, &[("xgboost", "v0003"), ("kmeans", "v0002")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Roll both back; answers switch back.
    assert_eq!(app.rollback(SPEND).version.to_string(), "v0002");
    assert_eq!(app.rollback(SEGMENTS).version.to_string(), "v0001");
    wait_for(&app, &[("linear", "v0002"), ("kmeans", "v0001")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let failures: Vec<_> = all.iter().filter(|a| a.1 != 200).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        all.len(),
        &failures[..failures.len().min(5)]
    );
    // Every answer comes from one of the two versions of its model, and the
    // sequence seen by the service goes old → new → old.
    let predict: Vec<(&str, &str)> = all
        .iter()
        .filter(|a| a.0 == "/predict")
        .map(|a| (a.2.as_str(), a.3.as_str()))
        .collect();
    let segment: Vec<&str> = all
        .iter()
        .filter(|a| a.0 == "/segment")
        .map(|a| a.3.as_str())
        .collect();
    for p in &predict {
        assert!(
            *p == ("linear", "v0002") || *p == ("xgboost", "v0003"),
            "answer from an unexpected model: {p:?}"
        );
    }
    for v in &segment {
        assert!(*v == "v0001" || *v == "v0002", "segment version {v}");
    }
    let new_spend = predict.iter().filter(|p| p.1 == "v0003").count();
    let new_seg = segment.iter().filter(|v| **v == "v0002").count();
    assert!(
        new_spend > 0 && new_spend < predict.len(),
        "{new_spend} of {} predictions from the promoted version",
        predict.len()
    );
    assert!(
        new_seg > 0 && new_seg < segment.len(),
        "{new_seg} of {} segments from the promoted version",
        segment.len()
    );
    eprintln!(
        "{} requests: {} predictions ({new_spend} from v0003), {} segments ({new_seg} from v0002)",
        all.len(),
        predict.len(),
        segment.len()
    );
    // After the rollback, answers come from the old versions again.
    let (s, b) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(s, &b, 200);
    assert_eq!(
        (b["model"].as_str(), b["version"].as_str()),
        (Some("linear"), Some("v0002"))
    );
    let (s, b) = json_of(app.post_json("/segment", &rfm_body()).await).await;
    expect_status(s, &b, 200);
    assert_eq!(b["version"], "v0001");
}

#[tokio::test]
async fn a_version_that_does_not_verify_or_load_keeps_the_live_one() {
    let app = spawn_live().await;
    let live = vec![
        ("linear".to_string(), "v0002".to_string()),
        ("kmeans".to_string(), "v0001".to_string()),
    ];
    wait_for(&app, &[("linear", "v0002"), ("kmeans", "v0001")]).await;
    let reg = app.registry();

    // 1. A version whose files match its manifest but whose model does not
    //    load: best.json names a kind that does not exist.
    let bad_kind = app.commit_spend("gradient_magic");
    app.promote(SPEND, bad_kind);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(loaded(&app).await, live);
    let (_, ready) = json_of(app.get("/ready").await).await;
    let err = ready["models"][0]["error"].as_str().expect("error kept");
    assert!(
        err.contains(&bad_kind.to_string()) && err.contains("best"),
        "{err}"
    );

    // 2. A committed version with a garbage model file (checksummed, so it
    //    verifies): the model itself is refused.
    let staging = reg.stage(SPEND).expect("stage");
    std::fs::write(
        staging.dir().join("best.json"),
        json!({"best": "xgboost"}).to_string(),
    )
    .expect("w");
    std::fs::write(staging.dir().join("xgboost.msgpack"), b"not a model").expect("w");
    let garbage = staging.commit(Default::default()).expect("commit").id;
    app.promote(SPEND, garbage);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(loaded(&app).await, live);

    // 3. A version damaged after it was sealed, named by a live pointer
    //    written by hand (promote would refuse it): it fails verification.
    let damaged = app.commit_segments(Seg::Three);
    let file = app
        .models
        .path()
        .join(format!("segments/{damaged}/segments.msgpack"));
    let good = std::fs::read(&file).expect("read");
    std::fs::write(&file, &good[..good.len() / 2]).expect("truncate");
    let pointer = reg.live_pointer_path(SEGMENTS);
    let tmp = pointer.with_extension("tmp");
    std::fs::write(
        &tmp,
        json!({"version": damaged.to_string(), "history": ["v0001"], "updated_at": "2026-01-01T00:00:00Z"}).to_string(),
    )
    .expect("write");
    std::fs::rename(&tmp, &pointer).expect("rename");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(loaded(&app).await, live);
    let (_, ready) = json_of(app.get("/ready").await).await;
    let err = ready["models"][1]["error"].as_str().expect("error kept");
    assert!(err.contains("verification"), "{err}");

    // 4. A live pointer that is not JSON.
    std::fs::write(&tmp, "{\"version\": ").expect("write");
    std::fs::rename(&tmp, &pointer).expect("rename");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(loaded(&app).await, live);

    // Requests were answered by the live versions all along.
    let (s, b) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(s, &b, 200);
    assert_eq!(b["version"], "v0002");
    let (s, b) = json_of(app.post_json("/segment", &rfm_body()).await).await;
    expect_status(s, &b, 200);
    assert_eq!(b["version"], "v0001");

    // Repaired: a good version promoted is picked up, and the error clears.
    std::fs::write(&file, &good).expect("restore");
    std::fs::remove_file(&pointer).expect("rm the broken pointer");
    let fixed = app.commit_spend("random_forest");
    app.promote(SPEND, fixed);
    reg.promote(SEGMENTS, damaged)
        .expect("the restored version verifies");
    wait_for(
        &app,
        &[
            ("random_forest", &fixed.to_string()),
            ("kmeans", &damaged.to_string()),
        ],
    )
    .await;
    let (_, ready) = json_of(app.get("/ready").await).await;
    assert!(ready["models"][0]["error"].is_null(), "{ready}");
    assert!(ready["models"][1]["error"].is_null(), "{ready}");
}

/// `live.json` copied before its version folder (issue 16): the load fails
/// once, `/ready` says the model is stale and names both versions, and the
/// load is retried, without `live.json` changing again, until it succeeds.
#[tokio::test]
async fn a_reload_that_fails_once_is_retried_until_it_succeeds() {
    let app = spawn_live().await;
    wait_for(&app, &[("linear", "v0002"), ("kmeans", "v0001")]).await;
    let v3 = app.commit_spend("xgboost");
    // The version folder is not there yet when the pointer naming it arrives.
    let dir = app.models.path().join(SPEND).join(v3.to_string());
    let aside = app.models.path().join(format!("{v3}.in-transit"));
    std::fs::rename(&dir, &aside).expect("move aside");
    let pointer = app.registry().live_pointer_path(SPEND);
    let tmp = pointer.with_extension("tmp");
    std::fs::write(
        &tmp,
        json!({"version": v3.to_string(), "history": ["v0001", "v0002"], "updated_at": "2026-01-01T00:00:00Z"})
            .to_string(),
    )
    .expect("write");
    std::fs::rename(&tmp, &pointer).expect("rename");

    // Stale: still 200, the old version serves, /ready says why.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let (s, b) = json_of(app.get("/ready").await).await;
        if b["models"][0]["failed_attempts"].as_u64() >= Some(2) {
            expect_status(s, &b, 200);
            break b;
        }
        assert!(Instant::now() < deadline, "never retried: {b}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(ready["status"], "stale", "{ready}");
    let m = &ready["models"][0];
    assert_eq!(
        (m["loaded"].as_bool(), m["stale"].as_bool()),
        (Some(true), Some(true)),
        "{m}"
    );
    assert_eq!(
        (m["version"].as_str(), m["wanted_version"].as_str()),
        (Some("v0002"), Some("v0003"))
    );
    assert!(m["next_retry_ms"].as_u64().is_some(), "{m}");
    let err = m["error"].as_str().expect("error");
    assert!(err.contains("v0003"), "{err}");
    let root = app.models.path().to_string_lossy().to_string();
    for text in [
        ready.to_string(),
        app.get("/models").await.text().await.expect("models"),
    ] {
        assert!(!text.contains(&root), "an absolute path is shown: {text}");
    }
    assert!(
        ready["reason"]
            .as_str()
            .is_some_and(|r| r.contains("v0002") && r.contains("v0003")),
        "{ready}"
    );
    assert_eq!(ready["models"][1]["stale"], false);
    let (s, b) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(s, &b, 200);
    assert_eq!(b["version"], "v0002");

    // The folder arrives; live.json is not touched again: the next retry loads it.
    std::fs::rename(&aside, &dir).expect("move back");
    wait_for(&app, &[("xgboost", "v0003"), ("kmeans", "v0001")]).await;
    let (_, ready) = json_of(app.get("/ready").await).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let m = &ready["models"][0];
    assert_eq!(
        (m["stale"].as_bool(), m["failed_attempts"].as_u64()),
        (Some(false), Some(0)),
        "{m}"
    );
    assert!(m["error"].is_null() && m["wanted_version"].is_null(), "{m}");
}
