//! The service with its data read from Snowflake (the local emulator,
//! fakesnow in server mode) answers like the service reading the same
//! tables from Parquet; the Snowflake password shows nowhere.
//!
//! The emulator layer (start fakesnow, redirect `snowflake-api` to it,
//! complete its responses) is analytics-lib's test code, included from
//! `analytics-lib/tests/it/snowflake/emulator.rs`: one copy, test code only.
//! Needs `make fakesnow-env` (or `FAKESNOW_BIN`): without the emulator this
//! test fails, it does not skip.

#[allow(dead_code)]
#[path = "../../../analytics-lib/tests/it/snowflake/emulator.rs"]
mod emulator;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use analytics_lib::contract::TABLES;
use analytics_lib::data::loader::load;
use analytics_lib::registry::{SEGMENTS, SPEND};
use analytics_lib::source::{SnowflakeSource, Source};
use serde_json::{Value, json};
use serve::configuration::Settings;
use serve::startup::Application;
use tempfile::TempDir;

use crate::helpers::{
    Seg, TestApp, commit_segments, commit_spend, expect_status, first_difference, fixture, json_of,
    promote, spawn_app, without_timing,
};
use emulator::Emulator;

/// The password of the emulator's configuration ([`Emulator::config`]).
const PASSWORD: &str = "emulator-password";

/// The fixture's curated tables loaded into `schema` of the emulator.
fn upload_fixture(emu: &Emulator, schema: &str) -> SnowflakeSource {
    let frames = load(&fixture().data)
        .and_then(|d| d.collect())
        .expect("fixture tables");
    let sf = emu.source(schema);
    for spec in TABLES {
        let df = match spec.name {
            "customers" => &frames.customers,
            "products" => &frames.products,
            "orders" => &frames.orders,
            _ => &frames.order_items,
        };
        sf.replace_table(&spec, df, 2_000)
            .unwrap_or_else(|e| panic!("loading {} into the emulator: {e}", spec.name));
    }
    sf
}

/// [`spawn_app`] with the data read from `source` instead of `--data`.
async fn spawn_with_source(source: Source) -> TestApp {
    let f = fixture();
    let models = TempDir::new().expect("tmp");
    promote(models.path(), SPEND, commit_spend(models.path(), &f.best));
    promote(
        models.path(),
        SEGMENTS,
        commit_segments(models.path(), Seg::Four),
    );
    let settings = Settings {
        bind: "127.0.0.1:0".into(),
        models: models.path().to_path_buf(),
        data: None,
        reload_interval_ms: 0,
        workers: 2,
        ..Settings::default()
    };
    let app = Application::build_with_source(settings, Some(source)).expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        models,
    }
}

#[track_caller]
fn assert_same(parquet: &Value, snowflake: &Value, what: &str) {
    if let Some(d) = first_difference(parquet, snowflake, "") {
        panic!("{what}: parquet vs snowflake differ at {d}");
    }
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (s, v) = json_of(app.get(path).await).await;
    expect_status(s, &v, 200);
    v
}

async fn post(app: &TestApp, path: &str, body: &Value) -> Value {
    let (s, v) = json_of(app.post_json(path, body).await).await;
    expect_status(s, &v, 200);
    v
}

#[tokio::test]
async fn serving_from_snowflake_answers_like_serving_from_parquet() {
    let f = fixture();
    // On a plain thread: the client's runtime and polars block.
    let (emu, sf) = std::thread::spawn(|| {
        let emu = Emulator::start();
        let sf = upload_fixture(&emu, "serving");
        (emu, sf)
    })
    .join()
    .expect("emulator");
    let parquet = spawn_app().await;
    let snowflake = spawn_with_source(Source::Snowflake(Box::new(sf))).await;

    for (id, _) in &f.customers {
        let body = json!({"customer_id": id});
        for path in ["/predict", "/segment"] {
            let a = post(&parquet, path, &body).await;
            let b = post(&snowflake, path, &body).await;
            assert_same(&a, &b, &format!("{path} for customer {id}"));
        }
    }
    let batch = json!([
        {"customer_id": f.customers[0].0},
        {"customer_id": f.customers[2].0},
    ]);
    for path in ["/predict/batch", "/segment/batch"] {
        let (sa, a) = json_of(parquet.post_json(path, &batch).await).await;
        let (sb, b) = json_of(snowflake.post_json(path, &batch).await).await;
        assert_eq!(sa, sb, "{path}");
        assert_same(&a, &b, path);
    }
    // An unknown customer: the same answer (not found) from both.
    let unknown = json!({"customer_id": "no-such-customer"});
    let (sa, a) = json_of(parquet.post_json("/predict", &unknown).await).await;
    let (sb, b) = json_of(snowflake.post_json("/predict", &unknown).await).await;
    assert_eq!((sa, &a), (sb, &b));
    assert_eq!(sa.as_u16(), 404, "{a}");

    for path in [
        "/api/dashboard",
        "/api/dashboard/options",
        "/api/dashboard?segment=0",
        "/api/dashboard?state=SP&channel=web",
        "/api/dashboard/clv",
    ] {
        let a = without_timing(get(&parquet, path).await);
        let b = without_timing(get(&snowflake, path).await);
        assert_same(&a, &b, path);
    }
    // The drill-down counts each order's lines from the folded records
    // (one row per product of an order): every order of the last week, by
    // id (ties of a sort are broken by each side's own order positions).
    let o = get(&parquet, "/api/dashboard/options").await;
    let to = o["max_date"].as_str().expect("max_date").to_string();
    let from = chrono::NaiveDate::parse_from_str(&to, "%Y-%m-%d").expect("a date")
        - chrono::Duration::days(6);
    for filter in ["", "&category=beleza_saude"] {
        let path =
            format!("/api/dashboard/orders?from={from}&to={to}&sort=items&page_size=200{filter}");
        let by_id = |mut v: Value| {
            let total = v["total"].as_u64().expect("total");
            assert!(
                (1..=200).contains(&total),
                "{path}: {total} orders on one page"
            );
            let rows = v["rows"].as_array_mut().expect("rows");
            rows.sort_by(|a, b| a["order_id"].as_str().cmp(&b["order_id"].as_str()));
            v["rows"].take()
        };
        let a = by_id(get(&parquet, &path).await);
        let b = by_id(get(&snowflake, &path).await);
        assert!(
            a.as_array()
                .is_some_and(|r| r.iter().any(|r| r["items"].as_u64() > Some(1))),
            "{path}: some order of several lines"
        );
        assert_same(&a, &b, &path);
    }
    let d = without_timing(get(&snowflake, "/api/dashboard").await);
    assert_ne!(d, json!({}), "the dashboard has data");
    let last_week = format!("/api/dashboard/orders?from={from}&to={to}&sort=items&page_size=200");
    let page = without_timing(get(&snowflake, &last_week).await);

    // The password is nowhere in what the service shows.
    for path in ["/health", "/ready", "/models", "/api/dashboard/options"] {
        let r = snowflake.get(path).await;
        let text = r.text().await.expect("body");
        assert!(!text.contains(PASSWORD), "{path}: {text}");
    }

    // The warehouse gone: each view not asked in the last minute is a 503
    // that says so; what the service holds (lookups, the dashboard's
    // options) and the views just asked (kept for a minute) still answer,
    // and so does the default view's first page of orders, which only the
    // warm-up at start asked for.
    drop(emu);
    assert_eq!(
        without_timing(get(&snowflake, "/api/dashboard").await),
        d,
        "a view just asked is answered again without the warehouse"
    );
    assert_eq!(
        without_timing(get(&snowflake, &last_week).await),
        page,
        "{last_week}, again"
    );
    // (Orders of the same day are in each side's own order: the counts.)
    let (a, b) = (
        get(&snowflake, "/api/dashboard/orders").await,
        get(&parquet, "/api/dashboard/orders").await,
    );
    let n = |v: &Value| v["rows"].as_array().map_or(0, Vec::len);
    assert_eq!(
        (&a["total"], n(&a)),
        (&b["total"], n(&b)),
        "the default view's first page, asked by the warm-up"
    );
    assert!(n(&a) > 0, "{a}");
    for path in [
        "/api/dashboard?state=SP",
        "/api/dashboard/orders?page=2",
        "/api/dashboard/export.csv?table=products",
    ] {
        let (s, v) = json_of(snowflake.get(path).await).await;
        assert_eq!(s.as_u16(), 503, "{path}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains("the warehouse did not answer"), "{path}: {v}");
        assert!(
            !msg.contains(PASSWORD) && !msg.contains("127.0.0.1"),
            "{path}: {v}"
        );
    }
    get(&snowflake, "/api/dashboard/options").await;
    post(
        &snowflake,
        "/predict",
        &json!({"customer_id": f.customers[0].0}),
    )
    .await;
}

/// The real `serve` binary with `APP_SOURCE=snowflake`: the settings echo
/// at start-up shows the connection with the password redacted, and the
/// failure to reach Snowflake (all traffic sent to a closed local proxy
/// port: no network) is a clear error that does not show it either.
#[test]
fn the_serve_binary_never_prints_the_snowflake_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let models = TempDir::new().expect("tmp");
    let secret = "Pa55-w0rd-never-printed";
    let mut child = Command::new(env!("CARGO_BIN_EXE_serve"))
        .args(["--bind", "127.0.0.1:0", "--models"])
        .arg(models.path())
        .env("APP_SOURCE", "snowflake")
        .env("APP_SNOWFLAKE_ACCOUNT", "testaccount")
        .env("APP_SNOWFLAKE_USER", "svc_user")
        .env("APP_SNOWFLAKE_PASSWORD", secret)
        .env("APP_SNOWFLAKE_DATABASE", "analytics")
        .env("APP_SNOWFLAKE_SCHEMA", "curated")
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{closed}"))
        .env("https_proxy", format!("http://127.0.0.1:{closed}"))
        .env("ALL_PROXY", format!("http://127.0.0.1:{closed}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("APP_DATA")
        .env_remove("APP_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not stop on an unreachable Snowflake within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!status.success(), "{text}");
    assert!(text.contains("serve: settings"), "{text}");
    assert!(text.contains("\"password\":\"[redacted]\""), "{text}");
    assert!(text.contains("svc_user"), "{text}");
    assert!(
        text.contains("while cleaning from snowflake account testaccount"),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
}
