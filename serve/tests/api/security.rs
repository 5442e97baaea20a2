//! Issue 16: authentication on every route, bounded work per request
//! (bodies over the limit refused before they are read, a body that does
//! not arrive in time, the heavy-request cap), the access log, and answers
//! without absolute paths.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, expect_status, features_body, fixture, json_of, rfm_body, spawn_app_with,
};

/// Every scope.
pub const KEY_ALL: &str = "all-scopes-key-0123456789";
const KEY_READ: &str = "read-only-key-0123456789";
const KEY_PREDICT: &str = "predict-only-key-0123456789";
const KEY_CUSTOMERS: &str = "customers-only-key-0123456789";

pub fn keys() -> String {
    format!("{KEY_ALL},{KEY_READ}:read,{KEY_PREDICT}:predict,{KEY_CUSTOMERS}:customers")
}

async fn spawn_with_keys() -> TestApp {
    spawn_app_with(|s| s.api_keys = keys().parse().expect("keys")).await
}

/// How a route is called, and the scope it needs (`None`: open).
struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
    scope: Option<&'static str>,
}

/// Every operation of the OpenAPI document (the truth about the API), plus
/// the pages' files, with a body each route accepts.
fn routes() -> Vec<Route> {
    let doc = serde_json::to_value(serve::routes::api_doc()).expect("doc");
    let id = &fixture().customers[0].0;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post"] {
            let Some(op) = item.get(method) else { continue };
            let scope = op["security"][0]["bearerAuth"][0].as_str();
            let scope = scope.map(|s| match s {
                "predict" => "predict",
                "read" => "read",
                other => panic!("unexpected scope {other}"),
            });
            let body = (method == "post").then(|| match path.as_str() {
                "/predict" => json!({"customer_id": id}),
                "/predict/batch" => json!({"records": [features_body(), {"customer_id": id}]}),
                "/segment" => rfm_body(),
                "/segment/batch" => json!({"records": [rfm_body(), {"customer_id": id}]}),
                other => panic!("no body known for POST {other}"),
            });
            out.push(Route {
                method: if method == "get" { "GET" } else { "POST" },
                path: path.clone(),
                body,
                scope,
            });
        }
    }
    for page in [
        "/dashboard",
        "/dashboard/assets/app.js",
        "/docs/swagger-ui.css",
        "/static/api-key.js",
    ] {
        out.push(Route {
            method: "GET",
            path: page.into(),
            body: None,
            scope: None,
        });
    }
    assert!(out.len() >= 14, "{} routes", out.len());
    out
}

async fn call(app: &TestApp, r: &Route, auth: Option<&str>) -> reqwest::Response {
    let url = format!("{}{}", app.address, r.path);
    let mut req = match r.method {
        "GET" => app.client.get(url),
        _ => app.client.post(url).json(r.body.as_ref().expect("body")),
    };
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    req.send().await.expect("request")
}

/// A 401/403: the JSON error body and the bearer challenge.
async fn refused(r: reqwest::Response, status: u16, what: &str) -> Value {
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (s, b) = json_of(r).await;
    expect_status(s, &b, status);
    assert!(challenge.starts_with("Bearer "), "{what}: {challenge:?}");
    assert_eq!(b["field"], "Authorization", "{what}: {b}");
    assert!(
        b["expected"].is_string() && b["found"].is_string(),
        "{what}: {b}"
    );
    b
}

#[tokio::test]
async fn every_route_with_no_key_a_wrong_key_the_right_key_and_the_wrong_scope() {
    let app = spawn_with_keys().await;
    for r in routes() {
        let what = format!("{} {} (scope {:?})", r.method, r.path, r.scope);
        // The right key (and the all-scopes key): answered as without authentication.
        let right = match r.scope {
            Some("predict") => KEY_PREDICT,
            _ => KEY_READ,
        };
        for key in [right, KEY_ALL] {
            let res = call(&app, &r, Some(&format!("Bearer {key}"))).await;
            assert_eq!(res.status().as_u16(), 200, "{what} with {key}");
        }
        let Some(scope) = r.scope else {
            // Open: no key, or a wrong one, changes nothing.
            for auth in [None, Some("Bearer not-a-key-0123456789")] {
                let res = call(&app, &r, auth).await;
                assert_eq!(res.status().as_u16(), 200, "{what} with {auth:?}");
            }
            continue;
        };
        // No key, a malformed header, a wrong key: 401.
        let b = refused(call(&app, &r, None).await, 401, &what).await;
        assert_eq!(b["found"], "no Authorization header", "{what}");
        refused(
            call(&app, &r, Some(&format!("Basic {KEY_ALL}"))).await,
            401,
            &what,
        )
        .await;
        refused(call(&app, &r, Some("Bearer")).await, 401, &what).await;
        let wrong = format!("Bearer {KEY_ALL}x");
        let res = call(&app, &r, Some(&wrong)).await;
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        let b = refused(res, 401, &what).await;
        assert!(!b.to_string().contains(KEY_ALL), "the key is echoed: {b}");
        // The key of the other scope: 403 naming the scope needed.
        let other = if scope == "predict" {
            KEY_READ
        } else {
            KEY_PREDICT
        };
        let res = call(&app, &r, Some(&format!("bearer {other}"))).await;
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            challenge.contains("insufficient_scope") && challenge.contains(scope),
            "{what}: {challenge}"
        );
        let b = refused(res, 403, &what).await;
        assert_eq!(
            b["expected"],
            format!("a key with the scope `{scope}`"),
            "{what}"
        );
    }
    // An unknown route is not revealed without a key; with one it is a 404.
    let r = Route {
        method: "GET",
        path: "/nowhere".into(),
        body: None,
        scope: Some("read"),
    };
    refused(call(&app, &r, None).await, 401, "/nowhere").await;
    let res = call(&app, &r, Some(&format!("Bearer {KEY_READ}"))).await;
    assert_eq!(res.status().as_u16(), 404);
    // `customers` alone is not `read`.
    let res = app
        .client
        .get(format!("{}/api/dashboard/options", app.address))
        .bearer_auth(KEY_CUSTOMERS)
        .send()
        .await
        .expect("request");
    refused(res, 403, "customers only").await;
}

#[tokio::test]
async fn the_openapi_document_declares_the_bearer_scheme_and_each_scope() {
    let app = spawn_with_keys().await;
    let res = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .bearer_auth(KEY_READ)
        .send()
        .await
        .expect("request");
    let (s, doc) = json_of(res).await;
    expect_status(s, &doc, 200);
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    let security = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(
        security("/predict", "post"),
        json!([{"bearerAuth": ["predict"]}])
    );
    assert_eq!(
        security("/segment/batch", "post"),
        json!([{"bearerAuth": ["predict"]}])
    );
    assert_eq!(
        security("/models", "get"),
        json!([{"bearerAuth": ["read"]}])
    );
    assert_eq!(
        security("/api/dashboard", "get"),
        json!([{"bearerAuth": ["read"]}])
    );
    assert!(security("/health", "get").is_null());
    for (path, method, code) in [
        ("/predict", "post", "401"),
        ("/predict", "post", "403"),
        ("/predict", "post", "408"),
        ("/predict/batch", "post", "429"),
        ("/api/dashboard", "get", "429"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"][code].is_object(),
            "{method} {path}: no {code}"
        );
    }
    // Swagger UI sends the key: the shared key script is on the page, and
    // the initializer pre-authorizes the bearer scheme with it.
    let page = app.get("/docs").await.text().await.expect("page");
    assert!(page.contains("/static/api-key.js"), "{page}");
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .expect("js");
    assert!(init.contains("preauthorizeApiKey(\"bearerAuth\""), "{init}");
    let dash = app.get("/").await.text().await.expect("page");
    assert!(dash.contains("/static/api-key.js"), "{dash}");
}

/// Raw HTTP/1.1 on a socket: what a client that stops, or trickles, does.
fn raw(app: &TestApp) -> TcpStream {
    let addr = app.address.trim_start_matches("http://");
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// Read one answer (status and body) from a raw socket.
fn read_answer(s: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s
            .read(&mut chunk)
            .expect("read (the server did not answer in time)");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

#[tokio::test]
async fn oversized_batches_are_refused_before_the_body_is_read() {
    let app = spawn_app_with(|s| s.max_batch = 100).await;
    let limit =
        100 * serve::configuration::BODY_BYTES_PER_RECORD + serve::configuration::BODY_SLACK_BYTES;
    for path in ["/predict/batch", "/segment/batch", "/predict", "/segment"] {
        let mut s = raw(&app);
        // A length far over the limit, and not one byte of body: the answer
        // comes at once (the server reads nothing of it).
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500000000\r\n\r\n"
        )
        .expect("write");
        let t0 = Instant::now();
        let (status, _, body) = tokio::task::spawn_blocking(move || read_answer(&mut s))
            .await
            .expect("join");
        assert_eq!(status, 413, "{path}: {body}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let b: Value = serde_json::from_str(&body).expect("json");
        let want = if path.ends_with("batch") {
            limit
        } else {
            serve::configuration::RECORD_BODY_BYTES
        };
        assert_eq!(
            b["expected"],
            format!("at most {want} bytes"),
            "{path}: {b}"
        );
    }
    // Within the byte limit but over max_batch: 400 naming the count, from
    // the records counted (not parsed); records that would make large
    // values (many fields each) are never built.
    let record = format!(
        "{{{}}}",
        (0..100)
            .map(|i| format!("\"f{i}\":0"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let body = format!("{{\"records\":[{}]}}", vec![record; 101].join(","));
    assert!(body.len() < limit);
    for path in ["/predict/batch", "/segment/batch"] {
        let (s, b) = json_of(app.post_raw(path, "application/json", body.clone()).await).await;
        expect_status(s, &b, 400);
        assert_eq!(
            (b["field"].as_str(), b["found"].as_str()),
            (Some("records"), Some("101 records"))
        );
    }
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed() {
    let app = spawn_app_with(|s| s.body_timeout_ms = 300).await;
    for path in ["/predict", "/predict/batch", "/segment", "/segment/batch"] {
        let mut s = raw(&app);
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"records\""
        )
        .expect("write");
        let t0 = Instant::now();
        let (status, head, body) = tokio::task::spawn_blocking(move || {
            let a = read_answer(&mut s);
            // Then the server closes the connection.
            let mut rest = [0u8; 16];
            let closed = matches!(s.read(&mut rest), Ok(0));
            assert!(closed, "the connection stayed open");
            a
        })
        .await
        .expect("join");
        let waited = t0.elapsed();
        assert_eq!(status, 408, "{path}: {head}\n{body}");
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(10),
            "{path}: answered after {waited:?}"
        );
        let b: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(b["expected"], "the whole body within 300 ms", "{b}");
    }
}

#[tokio::test]
async fn heavy_requests_beyond_the_cap_are_answered_429_at_once() {
    let app = spawn_app_with(|s| {
        s.max_concurrent_heavy = 1;
        s.body_timeout_ms = 3_000;
    })
    .await;
    // One batch in progress (its body still coming) holds the only permit.
    let mut slow = raw(&app);
    write!(
        slow,
        "POST /predict/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    )
    .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = json!({"records": [features_body()]});
    for path in ["/predict/batch", "/segment/batch"] {
        let body = if path == "/segment/batch" {
            json!({"records": [rfm_body()]})
        } else {
            body.clone()
        };
        let t0 = Instant::now();
        let res = app.post_json(path, &body).await;
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(res.headers()["retry-after"], "1");
        let (s, b) = json_of(res).await;
        expect_status(s, &b, 429);
        assert_eq!(b["error"], "too many batch requests in progress", "{b}");
        assert_eq!(
            b["expected"],
            "at most 1 batch requests at once (retry shortly)"
        );
    }
    // Other kinds are not held up: reports have their own permits, single
    // records none.
    let (s, b) = json_of(app.get("/models").await).await;
    expect_status(s, &b, 200);
    let (s, b) = json_of(app.post_json("/predict", &features_body()).await).await;
    expect_status(s, &b, 200);
    // Once the slow one is over (here: timed out), batches are served again.
    let (status, _, _) = tokio::task::spawn_blocking(move || read_answer(&mut slow))
        .await
        .expect("join");
    assert_eq!(status, 408);
    let (s, b) = json_of(app.post_json("/predict/batch", &body).await).await;
    expect_status(s, &b, 200);
}

#[tokio::test]
async fn one_access_log_line_per_request_without_bodies_or_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("access.log");
    let path = log.to_str().expect("utf-8").to_string();
    let app = spawn_app_with(move |s| {
        s.api_keys = keys().parse().expect("keys");
        s.access_log = path;
    })
    .await;
    let id = fixture().customers[0].0.clone();
    let send = |path: &str, key: &str, body: Value| {
        app.client
            .post(format!("{}{path}", app.address))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    assert_eq!(
        send("/predict", KEY_PREDICT, json!({"customer_id": id}))
            .await
            .expect("r")
            .status(),
        200
    );
    assert_eq!(
        send("/predict", KEY_READ, json!({"customer_id": id}))
            .await
            .expect("r")
            .status(),
        403
    );
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get(&format!("/nowhere/{id}")).await.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 4 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let want = [
        ("method=POST route=/predict status=200", "key=3"),
        ("method=POST route=/predict status=403", "key=2"),
        ("method=GET route=/health status=200", "key=-"),
        ("method=GET route=- status=401", "key=-"),
    ];
    for (line, (part, key)) in lines.iter().zip(want) {
        assert!(
            line.starts_with("access ts=") && line.contains(part) && line.ends_with(key),
            "{line}"
        );
        assert!(line.contains(" ms="), "{line}");
        for secret in [KEY_PREDICT, KEY_READ, id.as_str()] {
            assert!(!line.contains(secret), "{line} shows {secret}");
        }
    }
}

/// Resident and peak memory of a process (kB), from /proc.
fn memory_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field")
}

/// A batch over `max_batch` is refused from its records counted, in memory
/// that does not grow with what the records would be as JSON values: the
/// real binary's peak resident memory (reset before the request) grows by
/// about the body, not by the ~10× a parsed `Value` of it would take.
#[test]
fn an_oversized_batch_is_refused_in_bounded_memory() {
    let served = crate::schemathesis::start_serve(&[]);
    let record = format!(
        "{{{}}}",
        (0..150)
            .map(|i| format!("\"f{i:03}\":0"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let body = format!("{{\"records\":[{}]}}", vec![record; 10_001].join(","));
    let mb = body.len() as f64 / 1e6;
    for path in ["/predict/batch", "/segment/batch"] {
        // Reset the peak (Linux: 5 → clear_refs resets VmHWM to VmRSS).
        std::fs::write(format!("/proc/{}/clear_refs", served.pid), "5").expect("clear_refs");
        let before = memory_kb(served.pid, "VmHWM:");
        let res = plain::blocking_post(served.port, path, &body);
        let peak = memory_kb(served.pid, "VmHWM:");
        let grown = (peak.saturating_sub(before)) as f64 / 1e3;
        eprintln!("{path}: a {mb:.1} MB body of 10,001 records: peak +{grown:.1} MB");
        let (status, answer) = res;
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains("10001 records"), "{answer}");
        assert!(
            grown < 3.0 * mb + 16.0,
            "{path}: peak grew by {grown:.1} MB for a {mb:.1} MB body"
        );
    }
}

/// A blocking POST on a plain socket (no runtime needed): status and body.
mod plain {
    use std::io::Write;

    pub fn blocking_post(port: u16, path: &str, body: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .expect("timeout");
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .expect("write");
        s.write_all(body.as_bytes()).expect("body");
        let (status, _, text) = super::read_answer(&mut s);
        (status, text)
    }
}
