//! The OpenAPI document (every endpoint, schemas that match the answers)
//! and Swagger UI at `/docs`, offline (rendered by headless Chromium with
//! every host but 127.0.0.1 unresolvable).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    expect_status, features_body, fixture, json_of, rfm_body, spawn_app, spawn_app_with,
};

/// Every route of the service: path, method.
const ENDPOINTS: [(&str, &str); 10] = [
    ("/health", "get"),
    ("/ready", "get"),
    ("/predict", "post"),
    ("/predict/batch", "post"),
    ("/segment", "post"),
    ("/segment/batch", "post"),
    ("/models", "get"),
    ("/openapi.json", "get"),
    ("/docs", "get"),
    // Listed once more so that a missing method is noticed.
    ("/segment/batch", "post"),
];

#[tokio::test]
async fn openapi_document_has_every_endpoint_and_schema() {
    let app = spawn_app().await;
    let (status, doc) = json_of(app.get("/openapi.json").await).await;
    expect_status(status, &doc, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    for (path, method) in ENDPOINTS {
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
        "SegmentInput",
        "SegmentFeatureValues",
        "SegmentResponse",
        "SegmentProfileSummary",
        "TopCategory",
        "SegmentBatchRequest",
        "SegmentBatchResponse",
        "ModelsResponse",
        "RegistryModel",
        "VersionEntry",
        "LoadedModel",
        "Readiness",
        "ModelReadiness",
        "Health",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    // Every documented 4xx/5xx answer of the prediction routes is an ErrorBody.
    for path in ["/predict", "/predict/batch", "/segment", "/segment/batch"] {
        let responses = doc["paths"][path]["post"]["responses"]
            .as_object()
            .expect("responses");
        for code in ["400", "404", "413", "415", "503"] {
            let schema = &responses
                .get(code)
                .unwrap_or_else(|| panic!("{path}: no {code} answer documented"))["content"]["application/json"]
                ["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/ErrorBody",
                "{path} {code}"
            );
        }
    }
    // The request schemas name the features the live models take: every
    // one of the spend model's (shares included) required, nothing else.
    let schemas = &doc["components"]["schemas"];
    let mut base: Vec<&str> = fixture().feature_names.iter().map(String::as_str).collect();
    base.sort();
    assert_eq!(
        schemas["FeatureValues"]["additionalProperties"],
        json!(false)
    );
    assert_eq!(
        schemas["SegmentFeatureValues"]["additionalProperties"],
        json!(false)
    );
    let mut required: Vec<&str> = schemas["FeatureValues"]["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort();
    assert_eq!(required, base);
    assert_eq!(
        schemas["SegmentFeatureValues"]["required"],
        json!(["recency_days", "frequency", "monetary"])
    );
    for name in &fixture().segment_feature_names {
        let documented = schemas["SegmentFeatureValues"]["properties"][name].is_object()
            || (name.starts_with("share_")
                && schemas["SegmentFeatureValues"]["additionalProperties"].is_object());
        assert!(documented, "segment feature {name} not documented");
    }
}

/// Follow `$ref`s to `#/components/schemas/…`.
fn deref<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s["$ref"].as_str() {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        s = &doc["components"]["schemas"][name];
        assert!(s.is_object(), "$ref {r} points nowhere");
    }
    s
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// Whether `v` is an instance of `schema` (the subset of JSON Schema that
/// utoipa emits): types, required and undeclared properties, items, oneOf,
/// minimum/maximum. Strict: an answer field the schema does not declare is
/// an error, so the document cannot drift from the types.
fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let s = deref(doc, schema);
    if let Some(options) = s["oneOf"].as_array() {
        return if options.iter().any(|o| conforms(doc, o, v, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: matches no oneOf option: {v}"))
        };
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
        return Err(format!("{at}: expected {types:?}, found {v}"));
    }
    if let Some(x) = v.as_f64() {
        if s["minimum"].as_f64().is_some_and(|m| x < m) {
            return Err(format!("{at}: {x} below the minimum {}", s["minimum"]));
        }
        if s["maximum"].as_f64().is_some_and(|m| x > m) {
            return Err(format!("{at}: {x} above the maximum {}", s["maximum"]));
        }
    }
    if let (Some(obj), true) = (v.as_object(), types.contains(&"object")) {
        let props = s["properties"].as_object();
        for r in s["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                return Err(format!("{at}: required `{r}` missing"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(p) => conforms(doc, p, x, &format!("{at}.{k}"))?,
                None if s["additionalProperties"].is_object() => {
                    conforms(doc, &s["additionalProperties"], x, &format!("{at}.{k}"))?
                }
                // A free-form object (`value_type = Object`).
                None if props.is_none() => {}
                None => return Err(format!("{at}: `{k}` is not in the schema")),
            }
        }
    }
    if let (Some(items), true) = (v.as_array(), types.contains(&"array")) {
        for (i, x) in items.iter().enumerate() {
            conforms(doc, &s["items"], x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn schemas_match_the_answers_and_requests() {
    let app = spawn_app_with(|s| s.max_batch = 3).await;
    let (_, doc) = json_of(app.get("/openapi.json").await).await;
    let f = fixture();
    // (method, path, body, status): every answer kind the routes give.
    let cases: Vec<(&str, &str, Option<Value>, u16)> = vec![
        ("get", "/health", None, 200),
        ("get", "/ready", None, 200),
        ("get", "/models", None, 200),
        ("post", "/predict", Some(features_body()), 200),
        (
            "post",
            "/predict",
            Some(json!({"customer_id": f.customers[0].0})),
            200,
        ),
        (
            "post",
            "/predict/batch",
            Some(json!({"records": [features_body(), features_body()]})),
            200,
        ),
        ("post", "/segment", Some(rfm_body()), 200),
        (
            "post",
            "/segment",
            Some(json!({"customer_id": f.customers[0].0})),
            200,
        ),
        (
            "post",
            "/segment/batch",
            Some(json!({"records": [rfm_body(), f.segment_rows[0]]})),
            200,
        ),
        ("post", "/predict", Some(json!({"frequency": "x"})), 400),
        (
            "post",
            "/segment",
            Some(json!({"customer_id": "nobody"})),
            404,
        ),
        (
            "post",
            "/segment/batch",
            Some(json!({"records": [1, 2, 3, 4]})),
            400,
        ),
    ];
    for (method, path, body, status) in cases {
        if let Some(b) = &body {
            let req =
                &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"];
            if status == 200 {
                conforms(&doc, req, b, "request").unwrap_or_else(|e| panic!("{path}: {e}"));
            }
        }
        let r = match &body {
            Some(b) => app.post_json(path, b).await,
            None => app.get(path).await,
        };
        let (s, v) = json_of(r).await;
        expect_status(s, &v, status);
        let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
            ["schema"];
        assert!(schema.is_object(), "{method} {path}: no {status} schema");
        conforms(&doc, schema, &v, "answer")
            .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
    }
    // The validator is not a rubber stamp.
    let predict = &doc["components"]["schemas"]["PredictResponse"];
    let bad =
        json!({"predicted_spend_90d": "1", "model": "x", "version": "v0001", "contributions": []});
    assert!(conforms(&doc, predict, &bad, "x").is_err());
    let extra = json!({"predicted_spend_90d": 1.0, "model": "x", "version": "v0001", "contributions": [], "more": 1});
    assert!(conforms(&doc, predict, &extra, "x").is_err());
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

/// The Chromium binary: `$CHROMIUM`, else the first of the usual names on
/// the PATH or in /usr/bin.
fn chromium() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/bin")])
        .collect();
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        for d in &dirs {
            let p = d.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "this test renders /docs in headless Chromium and no Chromium was found \
         (looked for $CHROMIUM, then chromium, chromium-browser, google-chrome on the PATH): \
         install it (Debian: `apt-get install chromium`) or set CHROMIUM=/path/to/chromium"
    );
}

/// Run `cmd` to the end, killing it after `limit`; its output.
fn run_with_timeout(mut cmd: std::process::Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let name = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {name}: {e}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::process::Output {
        status,
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    }
}

/// The page at `url` after its scripts ran, from headless Chromium with the
/// network off (no name resolves but the test server's address).
async fn rendered(url: String) -> String {
    let browser = chromium();
    let profile = tempfile::TempDir::new().expect("tmp");
    let mut cmd = std::process::Command::new(&browser);
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // The network is off: no name resolves but the test server's address.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(&url);
    let out = tokio::task::spawn_blocking(move || run_with_timeout(cmd, Duration::from_secs(120)))
        .await
        .expect("browser task");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && !dom.is_empty(),
        "{} failed ({}):\n{}",
        browser.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// With API keys on, Swagger UI takes the key from the URL fragment, loads
/// the document with it and pre-authorizes the bearer scheme (the
/// Authorize button shows locked: "Try it out" sends the key); without a
/// key it asks for one. Offline, as everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_sends_the_key_with_authentication_on() {
    let key = crate::security::KEY_ALL;
    let app = crate::helpers::spawn_app_with(|s| {
        s.api_keys = crate::security::keys().parse().expect("keys")
    })
    .await;
    let dom = rendered(format!("{}/docs#key={key}", app.address)).await;
    assert!(
        !dom.contains("Failed to load API definition") && dom.contains("data-path=\"/predict\""),
        "the document was not loaded with the key:\n{dom}"
    );
    assert!(
        dom.contains("btn authorize locked"),
        "not pre-authorized:\n{dom}"
    );
    assert!(
        !dom.contains("api-key-form"),
        "asked for a key it had:\n{dom}"
    );
    let dom = rendered(format!("{}/docs", app.address)).await;
    assert!(
        dom.contains("id=\"api-key-form\""),
        "no key form without a key:\n{dom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_renders_every_operation_in_a_browser_with_the_network_off() {
    let app = spawn_app().await;
    let url = format!("{}/docs", app.address);
    let dom = rendered(url).await;
    assert!(
        !dom.contains("Failed to load API definition"),
        "Swagger UI could not load /openapi.json:\n{dom}"
    );
    assert!(
        dom.contains("Sales analytics API"),
        "no title rendered:\n{dom}"
    );
    let opblocks = dom.matches("opblock-summary-path").count();
    for (path, method) in ENDPOINTS {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "no operation for {method} {path} rendered ({opblocks} opblocks):\n{dom}"
        );
        assert!(
            dom.contains(&format!("opblock-{method}")),
            "no {method} operation"
        );
    }
    assert!(opblocks >= 9, "{opblocks} operations rendered");
}

/// What the server refuses, the schema says: a blank `customer_id`, an
/// empty batch, coordinates that may be null (a state code Brazil does not
/// have).
#[tokio::test]
async fn the_schema_states_the_constraints_the_server_enforces() {
    let app = spawn_app().await;
    let (status, doc) = json_of(app.get("/openapi.json").await).await;
    expect_status(status, &doc, 200);
    let schemas = &doc["components"]["schemas"];
    let id = &schemas["CustomerRef"]["properties"]["customer_id"];
    assert_eq!(id["minLength"], json!(1), "{id}");
    assert_eq!(id["pattern"], json!(r"\S"), "{id}");
    for name in ["BatchRequest", "SegmentBatchRequest"] {
        let records = &schemas[name]["properties"]["records"];
        assert_eq!(records["minItems"], json!(1), "{name}: {records}");
    }
    let lat = serde_json::to_string(&schemas["StateRow"]["properties"]["latitude"]).expect("json");
    assert!(lat.contains("null"), "{lat}");
    // And the server does refuse them.
    for (path, body) in [
        ("/predict", json!({"customer_id": " "})),
        ("/predict/batch", json!({"records": []})),
        ("/segment/batch", json!({"records": []})),
    ] {
        let (s, b) = json_of(app.post_json(path, &body).await).await;
        expect_status(s, &b, 400);
    }
}
