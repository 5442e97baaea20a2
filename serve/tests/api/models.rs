use analytics_lib::registry::SPEND;

use crate::helpers::{Seg, expect_status, fixture, json_of, spawn_app};

#[tokio::test]
async fn models_lists_every_version_with_metrics_live_and_history() {
    let app = spawn_app().await;
    // customer_spend: v0001 (live at start), v0002 (xgboost, promoted), v0003 (committed only).
    let v2 = app.commit_spend("xgboost");
    app.promote(SPEND, v2);
    app.commit_spend("linear");
    // segments: v0001 live, v0002 committed.
    app.commit_segments(Seg::Three);

    let (status, body) = json_of(app.get("/models").await).await;
    expect_status(status, &body, 200);
    let models = body["models"].as_array().expect("models");
    assert_eq!(models[0]["name"], "customer_spend");
    assert_eq!(models[1]["name"], "segments");

    let spend = &models[0];
    assert_eq!(spend["live"], "v0002");
    assert_eq!(spend["history"], serde_json::json!(["v0001"]));
    assert!(spend["updated_at"].is_string());
    // The service has hot reload off here: it still serves v0001.
    assert_eq!(spend["loaded"]["version"], "v0001");
    assert_eq!(
        spend["loaded"]["feature_names"].as_array().map(Vec::len),
        Some(fixture().feature_names.len())
    );
    let versions = spend["versions"].as_array().expect("versions");
    let ids: Vec<&str> = versions
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(ids, ["v0001", "v0002", "v0003"]);
    let kinds: Vec<&str> = versions.iter().filter_map(|v| v["kind"].as_str()).collect();
    assert_eq!(kinds, [fixture().best.as_str(), "xgboost", "linear"]);
    for v in versions {
        for kind in ["linear", "random_forest", "xgboost"] {
            assert!(
                v["metrics"][kind]["test"]["rmse"].as_f64().is_some(),
                "{kind}: {v}"
            );
            assert!(v["metrics"][kind]["validation"]["r2"].as_f64().is_some());
        }
        assert!(v["created_at"].is_string() && v["code_version"].is_string());
        let files = v["files"].as_array().expect("files");
        assert!(files.iter().any(|f| f == "best.json"), "{files:?}");
        assert_eq!(v["info"]["job"], "test");
    }
    let flags: Vec<(bool, bool, bool)> = versions
        .iter()
        .map(|v| {
            (
                v["live"] == true,
                v["loaded"] == true,
                v["in_history"] == true,
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            (false, true, true),
            (true, false, false),
            (false, false, false)
        ]
    );
    // The same standing `analytics models list` shows.
    let status: Vec<&str> = versions
        .iter()
        .map(|v| v["status"].as_str().expect("status"))
        .collect();
    assert_eq!(status, ["previous", "live", "kept"]);

    let seg = &models[1];
    assert_eq!(seg["live"], "v0001");
    assert_eq!(seg["loaded"]["kind"], "kmeans");
    assert_eq!(
        seg["loaded"]["feature_names"],
        serde_json::json!(fixture().segment_feature_names)
    );
    let versions = seg["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["metrics"]["k"], 4);
    assert_eq!(versions[1]["metrics"]["k"], 3);
    assert_eq!(versions[0]["live"], true);
    assert_eq!(versions[1]["live"], false);

    // A rollback shows at once (the list reads the registry).
    app.registry().rollback(SPEND).expect("rollback");
    let (_, body) = json_of(app.get("/models").await).await;
    assert_eq!(body["models"][0]["live"], "v0001");
    assert_eq!(body["models"][0]["history"], serde_json::json!([]));
}

#[tokio::test]
async fn incomplete_versions_are_not_listed() {
    let app = spawn_app().await;
    // A version folder without a manifest (a killed job, a hand copy) and a staging leftover.
    let half = app.models.path().join("customer_spend/v0007");
    std::fs::create_dir_all(&half).expect("mkdir");
    std::fs::write(half.join("xgboost.msgpack"), b"not a model").expect("write");
    std::fs::create_dir_all(app.models.path().join("customer_spend/.staging-1-0")).expect("mkdir");
    let (status, body) = json_of(app.get("/models").await).await;
    expect_status(status, &body, 200);
    let ids: Vec<&str> = body["models"][0]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(ids, ["v0001"]);
}
