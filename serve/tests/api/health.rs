use crate::helpers::{expect_status, json_of, spawn, spawn_app};

#[tokio::test]
async fn health_answers_200() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.get("/health").await).await;
    expect_status(status, &body, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_names_the_live_model() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.get("/ready").await).await;
    expect_status(status, &body, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["model"], crate::helpers::fixture().best.as_str());
    assert_eq!(body["customer_lookup"], true);
    assert!(body["version"].as_str().is_some_and(|v| !v.is_empty()));
}

#[tokio::test]
async fn without_models_the_service_runs_but_is_not_ready() {
    let app = spawn(
        |_| {},
        |models| std::fs::remove_dir_all(models.join("customer_spend")).expect("rm"),
    )
    .await;
    let (status, body) = json_of(app.get("/health").await).await;
    expect_status(status, &body, 200);
    let (status, body) = json_of(app.get("/ready").await).await;
    expect_status(status, &body, 503);
    assert_eq!(body["status"], "not_ready");
    let (status, body) = json_of(
        app.post_json("/predict", &crate::helpers::features_body())
            .await,
    )
    .await;
    expect_status(status, &body, 503);
    assert!(body["error"].is_string());
    let (status, body) = json_of(app.get("/models").await).await;
    expect_status(status, &body, 200);
    assert_eq!(
        body["models"][0]["versions"].as_array().map(Vec::len),
        Some(0)
    );
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.get("/nope").await).await;
    expect_status(status, &body, 404);
    assert_eq!(body["found"], "GET /nope");
    let (status, body) = json_of(app.get("/predict").await).await;
    expect_status(status, &body, 404);
}
