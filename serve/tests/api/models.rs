use crate::helpers::{expect_status, fixture, json_of, spawn_app};

#[tokio::test]
async fn models_lists_every_file_with_metrics_and_the_live_one() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.get("/models").await).await;
    expect_status(status, &body, 200);
    let family = &body["models"][0];
    assert_eq!(family["name"], "customer_spend");
    assert_eq!(family["best"], fixture().best.as_str());
    let versions = family["versions"].as_array().expect("versions");
    let mut kinds: Vec<&str> = versions.iter().filter_map(|v| v["kind"].as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["linear", "random_forest", "xgboost"]);
    for v in versions {
        assert!(v["metrics"]["test"]["rmse"].as_f64().is_some(), "{v}");
        assert!(v["metrics"]["validation"]["r2"].as_f64().is_some(), "{v}");
        assert_eq!(
            v["feature_names"].as_array().map(Vec::len),
            Some(fixture().feature_names.len())
        );
    }
    let live: Vec<_> = versions.iter().filter(|v| v["live"] == true).collect();
    assert_eq!(live.len(), 1, "{body}");
    assert_eq!(live[0]["kind"], fixture().best.as_str());
    let (_, ready) = json_of(app.get("/ready").await).await;
    assert_eq!(live[0]["version"], ready["version"]);
    assert_eq!(family["live"]["version"], ready["version"]);
}

#[tokio::test]
async fn an_unreadable_file_is_listed_with_its_error() {
    let app = spawn_app().await;
    std::fs::write(app.family().join("broken.msgpack"), b"not a model").expect("write");
    let (status, body) = json_of(app.get("/models").await).await;
    expect_status(status, &body, 200);
    let versions = body["models"][0]["versions"].as_array().expect("versions");
    let broken = versions
        .iter()
        .find(|v| v["file"] == "broken.msgpack")
        .expect("listed");
    assert!(broken["error"].is_string(), "{broken}");
    assert_eq!(broken["live"], false);
}
