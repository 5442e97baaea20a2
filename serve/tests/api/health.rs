use crate::helpers::{expect_status, features_body, json_of, rfm_body, spawn, spawn_app};

#[tokio::test]
async fn health_answers_200() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.get("/health").await).await;
    expect_status(status, &body, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_names_both_live_models() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.get("/ready").await).await;
    expect_status(status, &body, 200);
    assert_eq!(body["status"], "ready");
    let models = body["models"].as_array().expect("models");
    assert_eq!(models.len(), 2, "{body}");
    assert_eq!(models[0]["name"], "customer_spend");
    assert_eq!(models[0]["kind"], crate::helpers::fixture().best.as_str());
    assert_eq!(models[0]["version"], "v0001");
    assert_eq!(models[1]["name"], "segments");
    assert_eq!(models[1]["kind"], "kmeans");
    assert_eq!(models[1]["version"], "v0001");
    for m in models {
        assert_eq!(m["loaded"], true);
        assert_eq!(m["customer_lookup"], true);
        assert!(m["error"].is_null(), "{m}");
    }
}

#[tokio::test]
async fn without_a_spend_model_the_service_runs_but_is_not_ready() {
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
    let reason = body["reason"].as_str().expect("reason");
    assert!(
        reason.contains("customer_spend") && reason.contains("live.json"),
        "{reason}"
    );
    assert!(!reason.contains("segments"), "{reason}");
    assert_eq!(body["models"][0]["loaded"], false);
    assert_eq!(body["models"][1]["loaded"], true);
    let (status, body) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(status, &body, 503);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("customer_spend")),
        "{body}"
    );
    // The other model still answers.
    let (status, body) = json_of(app.post_json("/segment", &rfm_body()).await).await;
    expect_status(status, &body, 200);
    let (status, body) = json_of(app.get("/models").await).await;
    expect_status(status, &body, 200);
    assert_eq!(body["models"][0]["name"], "customer_spend");
    assert_eq!(
        body["models"][0]["versions"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(
        body["models"][1]["versions"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn without_a_segment_model_ready_says_which_is_missing() {
    let app = spawn(
        |_| {},
        |models| std::fs::remove_file(models.join("segments/live.json")).expect("rm"),
    )
    .await;
    let (status, body) = json_of(app.get("/ready").await).await;
    expect_status(status, &body, 503);
    let reason = body["reason"].as_str().expect("reason");
    assert!(reason.starts_with("segments not loaded"), "{reason}");
    let (status, body) = json_of(app.post_json("/segment", &rfm_body()).await).await;
    expect_status(status, &body, 503);
    let (status, body) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(status, &body, 200);
}

#[tokio::test]
async fn a_damaged_live_version_is_not_served_and_ready_says_why() {
    // The live version's file no longer matches its manifest.
    let app = spawn(
        |_| {},
        |models| {
            let f = models.join("segments/v0001/segments.msgpack");
            let mut bytes = std::fs::read(&f).expect("read");
            let n = bytes.len();
            bytes[n / 2] ^= 0xff;
            std::fs::write(&f, bytes).expect("write");
        },
    )
    .await;
    let (status, body) = json_of(app.get("/ready").await).await;
    expect_status(status, &body, 503);
    let reason = body["reason"].as_str().expect("reason");
    assert!(
        reason.contains("segments") && reason.contains("does not match its manifest"),
        "{reason}"
    );
}

#[tokio::test]
async fn unknown_routes_are_json_404_and_wrong_methods_405() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.get("/nope").await).await;
    expect_status(status, &body, 404);
    assert_eq!(body["found"], "GET /nope");
    // A route of the API with a method it does not take: 405, `Allow`, the
    // JSON error body naming what is accepted.
    for (method, path, allow) in [
        ("GET", "/predict", "POST"),
        ("TRACE", "/predict", "POST"),
        ("DELETE", "/segment/batch", "POST"),
        ("POST", "/health", "GET, HEAD"),
        ("PUT", "/api/dashboard", "GET, HEAD"),
        ("POST", "/dashboard/assets/app.js", "GET, HEAD"),
    ] {
        let r = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", app.address),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let (status, body) = json_of(r).await;
        expect_status(status, &body, 405);
        assert_eq!(body["found"], format!("{method} {path}"));
        assert_eq!(body["expected"], format!("one of {allow}"));
    }
}

/// Every answer (JSON, pages, their files, errors) says nosniff, the CSP
/// (no framing, this origin only) and no referrer.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/health",
        "/",
        "/docs",
        "/dashboard/assets/app.js",
        "/nope",
        "/openapi.json",
    ] {
        let r = app.get(path).await;
        let h = r.headers();
        let get = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        let csp = get("content-security-policy");
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
    }
}
