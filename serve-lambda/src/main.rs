//! `serve` on AWS Lambda (the `provided.al2023` custom runtime: this binary
//! is the package's `bootstrap`).
//!
//! At a cold start, the settings are read as `serve` reads them (`APP_*`
//! variables, `APP_CONFIG`), the live models of the registry are loaded once,
//! and serve's own actix application ([`serve::startup::Application`]: the
//! same routes, authentication, limits and error shapes) starts on a loopback
//! port that nothing outside this sandbox reaches. Each invocation (an API
//! Gateway HTTP API or REST API event, or a Function URL's) is turned by
//! `lambda_http` into an HTTP request, sent to that service, and its answer
//! (status, headers, body) goes back as the invocation's response.
//!
//! What differs from `serve`, and why:
//! * the address is always `127.0.0.1:0` (`APP_BIND` is ignored): the
//!   function's callers reach it through Lambda, never through a port;
//! * the registry defaults to `$LAMBDA_TASK_ROOT/models` (inside the
//!   package), else `/opt/models` (a layer), unless `APP_MODELS` says;
//! * one HTTP worker unless `APP_WORKERS` says (Lambda sends one invocation
//!   at a time to an instance);
//! * a function URL or API is public like a port on 0.0.0.0, so the rule of
//!   `serve` for non-loopback addresses holds: no `APP_API_KEYS` is refused
//!   unless `APP_ALLOW_ANONYMOUS=1` (e.g. behind IAM authorisation);
//! * no live customer-spend model at start-up is an init error reported to
//!   the runtime API (a function whose package has no model cannot answer;
//!   `serve` instead starts not ready and waits for a promotion).

use std::path::{Path, PathBuf};
use std::time::Instant;

use lambda_http::http::{HeaderName, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response, service_fn};
use serve::configuration::{self, Overrides, Settings};
use serve::startup::Application;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the Lambda runtime API is (`host:port`), set by Lambda.
const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

fn main() -> std::process::ExitCode {
    let started = Instant::now();
    // Lambda runs on Firecracker VMs: fresh memory in 4 KiB pages (see the
    // function's note; MIMALLOC_ALLOW_THP=1 keeps huge pages).
    serve::memory::disable_transparent_huge_pages();
    let result = actix_web::rt::System::new().block_on(run(started));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve-lambda: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(started: Instant) -> anyhow::Result<()> {
    let (app, base) = match init() {
        Ok(v) => v,
        Err(e) => {
            report_init_error(&e).await;
            return Err(e);
        }
    };
    eprintln!(
        "serve-lambda: initialised in {} ms (routes on {base})",
        started.elapsed().as_millis()
    );
    let server = actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| anyhow::anyhow!("while building the loopback client: {e}"))?;
    let handler = service_fn(move |req: Request| {
        let (client, base) = (client.clone(), base.clone());
        async move { forward(&client, &base, req).await }
    });
    let outcome = lambda_http::run(handler).await;
    server.abort();
    outcome.map_err(|e| anyhow::anyhow!("the Lambda runtime loop stopped: {e}"))
}

/// Settings, the models and the server on loopback; returns the server
/// (not yet running) and its base URL.
fn init() -> anyhow::Result<(Application, String)> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let settings = lambda_settings(&env)?;
    if settings.api_keys.is_empty() && !settings.allow_anonymous {
        anyhow::bail!(
            "expected API keys in APP_API_KEYS (KEY[:SCOPES],…), found none: a function URL or API \
             is reachable by anybody; set APP_ALLOW_ANONYMOUS=1 only when Lambda itself authorises \
             callers (IAM)"
        );
    }
    eprintln!("serve-lambda: settings {}", settings.echo());
    let app = Application::build(settings)?;
    let state = app.state();
    if state.live().is_none() {
        anyhow::bail!(
            "expected a live customer-spend model in {}, found none: {}",
            state.settings.models.display(),
            state.spend.not_ready_reason()
        );
    }
    if state.live_segments().is_none() {
        eprintln!(
            "serve-lambda: warning: no live segment model (POST /segment answers 503): {}",
            state.segments.not_ready_reason()
        );
    }
    let base = format!("http://127.0.0.1:{}", app.port());
    Ok((app, base))
}

/// serve's settings from `env`, with the Lambda defaults (module docs).
pub fn lambda_settings(env: &[(String, String)]) -> anyhow::Result<Settings> {
    let var = |k: &str| {
        env.iter()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let models = if var("APP_MODELS").is_some() || var("APP_CONFIG").is_some() {
        None
    } else {
        let in_package = var("LAMBDA_TASK_ROOT").map(|r| Path::new(r).join("models"));
        in_package
            .filter(|p| p.is_dir())
            .or_else(|| Some(PathBuf::from("/opt/models")).filter(|p| p.is_dir()))
    };
    let cli = Overrides {
        bind: Some("127.0.0.1:0".into()),
        models,
        ..Overrides::default()
    };
    let loaded = configuration::load(&cli, env.iter().cloned())?;
    for w in &loaded.warnings {
        eprintln!("serve-lambda: warning: {w}");
    }
    let mut settings = loaded.settings;
    if var("APP_WORKERS").is_none() {
        settings.workers = 1;
    }
    Ok(settings)
}

/// One invocation: the request to serve's routes on loopback, the answer back.
async fn forward(
    client: &reqwest::Client,
    base: &str,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut out = client.request(parts.method, format!("{base}{path}"));
    for (name, value) in &parts.headers {
        // The connection's own headers are the loopback client's to set.
        if !is_hop_by_hop(name) {
            out = out.header(name, value);
        }
    }
    let answer = out.body(body.to_vec()).send().await?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await?;
    let mut res = Response::builder().status(StatusCode::from_u16(status.as_u16())?);
    for (name, value) in &headers {
        if !is_hop_by_hop(name) {
            res = res.header(name, value);
        }
    }
    let text = headers
        .get("content-type")
        .is_some_and(is_text)
        .then(|| String::from_utf8(bytes.to_vec()).ok())
        .flatten();
    let body = match text {
        _ if bytes.is_empty() => Body::Empty,
        Some(t) => Body::Text(t),
        // Anything else goes back base64-encoded (isBase64Encoded).
        None => Body::Binary(bytes.to_vec()),
    };
    Ok(res.body(body)?)
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "content-length" | "connection" | "keep-alive" | "transfer-encoding" | "upgrade"
    )
}

/// Bodies sent back as text rather than base64.
fn is_text(content_type: &HeaderValue) -> bool {
    let ct = content_type.to_str().unwrap_or("").to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("javascript")
        || ct.contains("xml")
        || ct.starts_with("image/svg")
}

/// Tell Lambda why the function could not start (`/runtime/init/error`), so
/// the invocation fails with this message rather than a bare exit code.
async fn report_init_error(e: &anyhow::Error) {
    let Ok(api) = std::env::var(RUNTIME_API) else {
        return;
    };
    let url = format!("http://{api}/2018-06-01/runtime/init/error");
    let body = serde_json::json!({
        "errorMessage": format!("{e:#}"),
        "errorType": "Runtime.InitError",
    });
    let sent = reqwest::Client::builder().no_proxy().build().map(|c| {
        c.post(url)
            .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
            .json(&body)
            .send()
    });
    match sent {
        Ok(fut) => {
            if let Err(err) = fut.await {
                eprintln!("serve-lambda: could not report the init error: {err}");
            }
        }
        Err(err) => eprintln!("serve-lambda: could not report the init error: {err}"),
    }
}
