use crate::helpers::{expect_status, json_of, spawn_app};

#[tokio::test]
async fn openapi_document_has_every_endpoint() {
    let app = spawn_app().await;
    let (status, doc) = json_of(app.get("/openapi.json").await).await;
    expect_status(status, &doc, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/predict", "post"),
        ("/predict/batch", "post"),
        ("/models", "get"),
        ("/openapi.json", "get"),
        ("/docs", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    for schema in [
        "ErrorBody",
        "PredictResponse",
        "Contribution",
        "PredictInput",
        "CustomerRef",
        "FeatureValues",
        "BatchRequest",
        "BatchResponse",
        "ModelsResponse",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    let props = &doc["components"]["schemas"]["PredictResponse"]["properties"];
    for p in ["predicted_spend_90d", "model", "version", "contributions"] {
        assert!(props[p].is_object(), "PredictResponse.{p} missing");
    }
}

/// Every `src="…"` and `href="…"` of a page.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[tokio::test]
async fn docs_is_swagger_ui_from_local_assets_only() {
    let app = spawn_app().await;
    for path in ["/docs", "/docs/"] {
        let r = app.get(path).await;
        assert_eq!(r.status().as_u16(), 200);
        let ct = r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(ct.starts_with("text/html"), "{ct}");
        let html = r.text().await.expect("html");
        assert!(html.contains("swagger-ui"), "{html}");
        let refs = references(&html);
        assert!(refs.len() >= 4, "{refs:?}");
        for r in &refs {
            assert!(
                r.starts_with('/') && !r.starts_with("//"),
                "external or relative reference {r}"
            );
            let a = app.get(r).await;
            assert_eq!(a.status().as_u16(), 200, "{r}");
            assert!(!a.bytes().await.expect("asset").is_empty(), "{r} empty");
        }
    }
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .expect("js");
    assert!(
        init.contains("/openapi.json") && !init.contains("http"),
        "{init}"
    );
    let (s, b) = json_of(app.get("/docs/nope.js").await).await;
    expect_status(s, &b, 404);
}
