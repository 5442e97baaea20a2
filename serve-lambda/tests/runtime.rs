//! The Lambda package driven through the Lambda runtime API.
//!
//! The fixture: 20k generated lines and models trained on them by the
//! release `analytics` binary. `scripts/package-lambda.sh` packages the
//! built `serve-lambda` with that registry; the zip is unzipped into a fresh
//! folder and its `bootstrap` runs there, with `AWS_LAMBDA_RUNTIME_API`
//! pointing at a local server of the runtime API written below (the
//! endpoints Lambda's own runtime API serves: `invocation/next`,
//! `invocation/{id}/response`, `invocation/{id}/error`, `init/error`).
//! The invocations are API Gateway HTTP API (payload 2.0) events, the format
//! Function URLs send. Each answer is compared with what the release `serve`
//! binary answers on the same registry and data for the same request.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tempfile::TempDir;

const KEY: &str = "lambda-test-key-0123456789";
const RUNTIME: &str = "/2018-06-01/runtime";

/// The release binaries beside this test's `serve-lambda`.
fn bin(name: &str) -> PathBuf {
    let lambda = PathBuf::from(env!("CARGO_BIN_EXE_serve-lambda"));
    let p = lambda.with_file_name(name);
    assert!(
        p.is_file(),
        "expected the release `{name}` binary at {}, found nothing (cargo test --workspace --no-run builds it)",
        p.display()
    );
    p
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Fixture {
    _dir: TempDir,
    data: PathBuf,
    models: PathBuf,
    /// The unzipped package (bootstrap, lib/, models/).
    package: PathBuf,
    zip_bytes: u64,
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixture() -> &'static Fixture {
    static CELL: OnceLock<Fixture> = OnceLock::new();
    CELL.get_or_init(|| {
        let dir = TempDir::new().expect("tmp");
        let data = dir.path().join("curated");
        let models = dir.path().join("models");
        let analytics = bin("analytics");
        run(
            Command::new(&analytics)
                .args(["generate", "--lines", "20k", "--seed", "7", "--out"])
                .arg(&data),
            "analytics generate",
        );
        run(
            Command::new(&analytics)
                .arg("train")
                .arg("--data")
                .arg(&data)
                .arg("--models")
                .arg(&models)
                .env("OMP_WAIT_POLICY", "PASSIVE"),
            "analytics train",
        );
        let out = dir.path().join("lambda");
        let printed = run(
            Command::new(root().join("scripts/package-lambda.sh"))
                .arg(&out)
                .env("BIN", env!("CARGO_BIN_EXE_serve-lambda"))
                .env("MODELS", &models),
            "scripts/package-lambda.sh",
        );
        println!("{printed}");
        let zip = out.join("serve-lambda.zip");
        let zip_bytes = std::fs::metadata(&zip).expect("the zip").len();
        let package = dir.path().join("unzipped");
        run(
            Command::new("unzip")
                .arg("-q")
                .arg(&zip)
                .arg("-d")
                .arg(&package),
            "unzip",
        );
        Fixture {
            _dir: dir,
            data,
            models,
            package,
            zip_bytes,
        }
    })
}

/// What the function sent back to the runtime API.
#[derive(Debug)]
enum Outcome {
    Response {
        id: String,
        body: Value,
        at: Instant,
    },
    Error {
        id: String,
        body: Value,
    },
    InitError {
        body: Value,
        error_type: String,
    },
}

/// A local server of the Lambda runtime API: events queued by the test are
/// handed out by `invocation/next` (which waits for one, as Lambda's does);
/// what the function posts back arrives on `outcomes`.
struct RuntimeApi {
    addr: String,
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    wake: Arc<tokio::sync::Notify>,
    outcomes: mpsc::Receiver<Outcome>,
    server: actix_web::dev::ServerHandle,
}

struct ApiState {
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    wake: Arc<tokio::sync::Notify>,
    outcomes: Mutex<mpsc::Sender<Outcome>>,
}

async fn next(st: web::Data<ApiState>) -> HttpResponse {
    loop {
        let notified = st.wake.notified();
        let popped = st.events.lock().expect("events").pop_front();
        if let Some((id, event)) = popped {
            let deadline = SystemTime::now()
                .checked_add(Duration::from_secs(60))
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis());
            return HttpResponse::Ok()
                .insert_header(("Lambda-Runtime-Aws-Request-Id", id))
                .insert_header(("Lambda-Runtime-Deadline-Ms", deadline.to_string()))
                .insert_header((
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:serve-lambda-test",
                ))
                .insert_header((
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-00000000-000000000000000000000000",
                ))
                .content_type("application/json")
                .body(event.to_string());
        }
        notified.await;
    }
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| json!(String::from_utf8_lossy(body)))
}

async fn response(
    st: web::Data<ApiState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let o = Outcome::Response {
        id: id.into_inner(),
        body: parse(&body),
        at: Instant::now(),
    };
    let _ = st.outcomes.lock().expect("outcomes").send(o);
    HttpResponse::Accepted().json(json!({"status": "OK"}))
}

async fn error(st: web::Data<ApiState>, id: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let o = Outcome::Error {
        id: id.into_inner(),
        body: parse(&body),
    };
    let _ = st.outcomes.lock().expect("outcomes").send(o);
    HttpResponse::Accepted().json(json!({"status": "OK"}))
}

async fn init_error(
    st: web::Data<ApiState>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let error_type = req
        .headers()
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let o = Outcome::InitError {
        body: parse(&body),
        error_type,
    };
    let _ = st.outcomes.lock().expect("outcomes").send(o);
    HttpResponse::Accepted().json(json!({"status": "OK"}))
}

impl RuntimeApi {
    fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let events = Arc::new(Mutex::new(VecDeque::new()));
        let wake = Arc::new(tokio::sync::Notify::new());
        let (tx, outcomes) = mpsc::channel();
        let state = web::Data::new(ApiState {
            events: events.clone(),
            wake: wake.clone(),
            outcomes: Mutex::new(tx),
        });
        let (handle_tx, handle_rx) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .app_data(web::PayloadConfig::new(32 * 1024 * 1024))
                        .route(&format!("{RUNTIME}/invocation/next"), web::get().to(next))
                        .route(
                            &format!("{RUNTIME}/invocation/{{id}}/response"),
                            web::post().to(response),
                        )
                        .route(
                            &format!("{RUNTIME}/invocation/{{id}}/error"),
                            web::post().to(error),
                        )
                        .route(&format!("{RUNTIME}/init/error"), web::post().to(init_error))
                })
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run();
                handle_tx.send(server.handle()).expect("handle");
                server.await.expect("runtime API server");
            });
        });
        let server = handle_rx.recv().expect("the runtime API server started");
        RuntimeApi {
            addr,
            events,
            wake,
            outcomes,
            server,
        }
    }

    fn invoke(&self, id: &str, event: Value) {
        self.events
            .lock()
            .expect("events")
            .push_back((id.to_owned(), event));
        self.wake.notify_waiters();
    }

    fn outcome(&self, child: &mut Child) -> Outcome {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            match self.outcomes.recv_timeout(Duration::from_millis(200)) {
                Ok(o) => return o,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        // It may have posted just before exiting.
                        if let Ok(o) = self.outcomes.recv_timeout(Duration::from_millis(500)) {
                            return o;
                        }
                        panic!("the function exited ({status}) without an answer");
                    }
                    assert!(
                        Instant::now() < until,
                        "no answer from the function in 120 s"
                    );
                }
                Err(e) => panic!("runtime API channel: {e}"),
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// A Function URL / HTTP API (payload format 2.0) event.
fn event(method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Value {
    let mut headers = json!({
        "content-type": "application/json",
        "host": "abcdefghij.lambda-url.us-east-1.on.aws",
        "user-agent": "serve-lambda-test",
    });
    if let Some(a) = auth {
        headers["authorization"] = json!(a);
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "serve-lambda-test"
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "04/Dec/2026:17:00:00 +0000",
            "timeEpoch": 1_796_403_600_000_i64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// The Lambda function, started from the unzipped package.
fn start_function(api: &RuntimeApi, env: &[(&str, &str)]) -> (Child, Instant) {
    let f = fixture();
    let mut cmd = Command::new(f.package.join("bootstrap"));
    cmd.env_clear()
        .current_dir(&f.package)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "serve-lambda-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/serve-lambda-test")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("LAMBDA_TASK_ROOT", &f.package)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .env("APP_ACCESS_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let spawned = Instant::now();
    (cmd.spawn().expect("start bootstrap"), spawned)
}

/// The release `serve` on the fixture's registry and data; its base URL.
fn start_serve() -> (Child, String) {
    let f = fixture();
    let mut child = Command::new(bin("serve"))
        .env_clear()
        .env("APP_API_KEYS", KEY)
        .env("APP_ACCESS_LOG", "off")
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .args(["--bind", "127.0.0.1:0", "--models"])
        .arg(&f.models)
        .arg("--data")
        .arg(&f.data)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(port) = line.strip_prefix("serve: listening on http://127.0.0.1:")
            {
                let _ = tx.send(format!("http://127.0.0.1:{port}"));
                sent = true;
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("serve listening");
    (child, base)
}

/// (status, JSON body) from the real server.
fn http(
    rt: &tokio::runtime::Runtime,
    base: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut req = client.request(method.parse().expect("method"), format!("{base}{path}"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    })
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// status, content-type and JSON body of a Lambda HTTP response.
fn lambda_answer(o: Outcome, want_id: &str) -> (u16, String, Value) {
    match o {
        Outcome::Response { id, body, .. } => {
            assert_eq!(id, want_id, "the response names its invocation");
            assert_eq!(
                body["isBase64Encoded"],
                json!(false),
                "JSON goes back as text: {body}"
            );
            let status = body["statusCode"].as_u64().expect("statusCode") as u16;
            let ct = body["headers"]["content-type"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let text = body["body"].as_str().unwrap_or("");
            let parsed = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("expected a JSON body, found {text:?}: {e}"));
            (status, ct, parsed)
        }
        Outcome::Error { id, body } => panic!("invocation {id} failed: {body}"),
        other => panic!("expected an invocation response, found {other:?}"),
    }
}

/// name, path, Authorization, body, the status expected.
type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, u16);

#[test]
fn the_package_answers_predict_and_segment_through_the_runtime_api_as_serve_does() {
    let f = fixture();
    let unzipped = dir_bytes(&f.package);
    println!(
        "lambda package: zip {} bytes ({:.1} MiB), unzipped {} bytes ({:.1} MiB)",
        f.zip_bytes,
        f.zip_bytes as f64 / 1_048_576.0,
        unzipped,
        unzipped as f64 / 1_048_576.0
    );
    assert!(f.package.join("bootstrap").is_file() && f.package.join("models").is_dir());

    // The real HTTP server, for the answers to compare with, and a customer id.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (serve, base) = start_serve();
    let bearer = format!("Bearer {KEY}");
    let (status, csv) = http(
        &rt,
        &base,
        "GET",
        "/api/dashboard/export.csv?table=customers",
        Some(&bearer),
        None,
    );
    assert_eq!(status, 200, "{csv}");
    let mut lines = csv.lines();
    let col = lines
        .next()
        .expect("header")
        .split(',')
        .position(|c| c == "customer_id")
        .expect("a customer_id column");
    let customer = lines
        .next()
        .expect("a customer")
        .split(',')
        .nth(col)
        .expect("its id")
        .trim_matches('"')
        .to_owned();
    let by_id = json!({ "customer_id": customer }).to_string();

    let api = RuntimeApi::start();
    let data = f.data.to_str().expect("utf-8 path");
    let (mut function, spawned) =
        start_function(&api, &[("APP_API_KEYS", KEY), ("APP_DATA", data)]);

    let cases: Vec<Case> = vec![
        ("predict", "/predict", Some(&bearer), Some(&by_id), 200),
        ("segment", "/segment", Some(&bearer), Some(&by_id), 200),
        ("no key", "/predict", None, Some(&by_id), 401),
        (
            "not JSON",
            "/predict",
            Some(&bearer),
            Some("{\"customer_id\": "),
            400,
        ),
        (
            "wrong type",
            "/segment",
            Some(&bearer),
            Some("{\"customer_id\": 5}"),
            400,
        ),
    ];
    let mut cold_start = None;
    for (n, (name, path, auth, body, want)) in cases.into_iter().enumerate() {
        let id = format!("invocation-{n}");
        api.invoke(&id, event("POST", path, auth, body));
        let o = api.outcome(&mut function);
        if let Outcome::Response { at, .. } = &o {
            cold_start.get_or_insert(at.duration_since(spawned));
        }
        let (status, ct, got) = lambda_answer(o, &id);
        let (s_status, s_body) = http(&rt, &base, "POST", path, auth, body);
        let expected: Value = serde_json::from_str(&s_body).expect("serve's JSON");
        println!("{name}: {path} -> {status} {got}");
        assert_eq!(status, want, "{name}: {got}");
        assert!(
            ct.starts_with("application/json"),
            "{name}: content-type {ct}"
        );
        assert_eq!(
            (status, &got),
            (s_status, &expected),
            "{name}: the function and serve answer alike"
        );
        if want >= 400 {
            assert!(
                got["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{name}: {got}"
            );
        }
    }
    let fields = [
        "predicted_spend_90d",
        "interval_80",
        "model",
        "version",
        "contributions",
    ];
    let (_, p) = http(&rt, &base, "POST", "/predict", Some(&bearer), Some(&by_id));
    let p: Value = serde_json::from_str(&p).expect("json");
    for k in fields {
        assert!(p.get(k).is_some(), "/predict answers {k}: {p}");
    }
    let cold = cold_start.expect("a first response");
    println!(
        "lambda cold start (spawn -> first invocation's response, 20k-line data, models loaded): {} ms",
        cold.as_millis()
    );
    kill(function);
    kill(serve);
}

#[test]
fn a_package_without_a_live_model_reports_an_init_error() {
    let empty = TempDir::new().expect("tmp");
    let api = RuntimeApi::start();
    let models = empty.path().to_str().expect("utf-8");
    let (mut function, _) = start_function(&api, &[("APP_API_KEYS", KEY), ("APP_MODELS", models)]);
    match api.outcome(&mut function) {
        Outcome::InitError { body, error_type } => {
            assert_eq!(error_type, "Runtime.InitError");
            let msg = body["errorMessage"].as_str().unwrap_or("");
            assert!(
                msg.contains("expected a live customer-spend model") && msg.contains(models),
                "{body}"
            );
        }
        other => panic!("expected an init error, found {other:?}"),
    }
    let status = function.wait().expect("exit");
    assert!(!status.success(), "the function exits after an init error");
}

#[test]
fn a_package_without_api_keys_refuses_to_start() {
    let api = RuntimeApi::start();
    let (mut function, _) = start_function(&api, &[]);
    match api.outcome(&mut function) {
        Outcome::InitError { body, .. } => {
            let msg = body["errorMessage"].as_str().unwrap_or("");
            assert!(msg.contains("APP_API_KEYS"), "{body}");
        }
        other => panic!("expected an init error, found {other:?}"),
    }
    let _ = function.wait();
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                dir_bytes(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
