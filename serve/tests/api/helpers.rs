//! `spawn_app()`: the real server on 127.0.0.1:0 with its own temporary
//! models folder, and the fixture behind it (20k generated lines and small
//! models trained once per test binary).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use analytics_lib::clean;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::loader::load;
use analytics_lib::features::customer_features;
use analytics_lib::kpi::Sales;
use analytics_lib::models::{ForestParams, LinearParams, TrainParams, XgbParams, train_all};
use serde_json::{Value, json};
use serve::configuration::Settings;
use serve::startup::Application;
use tempfile::TempDir;

/// Generated data and the models trained on it, shared by every test.
pub struct Fixture {
    _dir: TempDir,
    pub data: PathBuf,
    /// `<models>/customer_spend/{linear,random_forest,xgboost}.{msgpack,json}`, `best.json`.
    pub models: PathBuf,
    pub feature_names: Vec<String>,
    pub best: String,
    /// A few customers with their features at the data's last day + 1.
    pub customers: Vec<(String, Vec<f64>)>,
}

pub fn fixture() -> &'static Fixture {
    static CELL: OnceLock<Fixture> = OnceLock::new();
    // On a plain thread: polars may call tokio's `block_in_place`, which
    // panics on the tests' current-thread runtime.
    CELL.get_or_init(|| std::thread::spawn(make_fixture).join().expect("fixture"))
}

fn make_fixture() -> Fixture {
    {
        let dir = TempDir::new().expect("tmp");
        let data = dir.path().join("curated");
        let cfg = GeneratorConfig {
            lines: 20_000,
            seed: 11,
            defect_rate: 0.0,
            ..GeneratorConfig::default()
        };
        generate(&cfg, &data).expect("generate");
        let tables = load(&data).expect("load").collect().expect("collect");
        let cleaned = clean::clean(&tables).expect("clean");
        let sales = Sales::from_frames(&cleaned.frames).expect("sales");
        let params = TrainParams {
            candidates: vec![
                LinearParams::new().into(),
                ForestParams::new()
                    .n_trees(10)
                    .max_depth(Some(6))
                    .seed(3)
                    .into(),
                XgbParams::new()
                    .rounds(30)
                    .max_depth(3)
                    .seed(3)
                    .threads(Some(1))
                    .into(),
            ],
            ..TrainParams::default()
        };
        let report = train_all(&sales, None, &params).expect("train");
        // The layout of `analytics train` (analytics-lib/src/bin/analytics.rs).
        let models = dir.path().join("models");
        let family = models.join("customer_spend");
        std::fs::create_dir_all(&family).expect("mkdir");
        for m in &report.models {
            let kind = m.kind().name();
            m.save(&family.join(format!("{kind}.msgpack")))
                .expect("save");
            std::fs::write(
                family.join(format!("{kind}.json")),
                serde_json::to_string_pretty(&m.meta).expect("meta json"),
            )
            .expect("write meta");
        }
        std::fs::write(
            family.join("best.json"),
            json!({"best": report.best.name(), "chosen_on": "validation"}).to_string(),
        )
        .expect("best.json");

        let feats = customer_features(&sales, sales.default_as_of, Some(&report.categories))
            .expect("features");
        let ids = feats.customer_ids().expect("ids");
        let m = feats.matrix().expect("matrix");
        let customers = (0..3)
            .map(|i| (ids[i].clone(), m.row(i).to_vec()))
            .collect();
        Fixture {
            data,
            models,
            feature_names: report.feature_names.clone(),
            best: report.best.name().to_string(),
            customers,
            _dir: dir,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// This app's own copy of the models folder.
    pub models: TempDir,
}

impl TestApp {
    pub fn family(&self) -> PathBuf {
        self.models.path().join("customer_spend")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Name the live model in `best.json`, atomically (temp file + rename).
    pub fn set_best(&self, kind: &str) {
        let dir = self.family();
        let tmp = dir.join(".best.json.tmp");
        std::fs::write(&tmp, json!({"best": kind}).to_string()).expect("write");
        std::fs::rename(&tmp, dir.join("best.json")).expect("rename");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// The server with data and the fixture's models (hot reload off).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with settings changed (and `best.json` as set by
/// `configure`'s caller through [`TestApp::set_best`] only after start).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(configure, |_| {}).await
}

/// Full control: `prepare` may rewrite the models folder before start.
pub async fn spawn(configure: impl FnOnce(&mut Settings), prepare: impl FnOnce(&Path)) -> TestApp {
    let f = fixture();
    let models = TempDir::new().expect("tmp");
    copy_dir(&f.models, models.path());
    prepare(models.path());
    let mut settings = Settings {
        bind: "127.0.0.1:0".into(),
        models: models.path().to_path_buf(),
        data: Some(f.data.clone()),
        reload_interval_ms: 0,
        workers: 2,
        ..Settings::default()
    };
    configure(&mut settings);
    let app = Application::build(settings).expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        models,
    }
}

/// Plausible feature values for every feature of the fixture's models.
pub fn features_body() -> Value {
    let names = &fixture().feature_names;
    let mut o = serde_json::Map::new();
    let mut first_share = true;
    for n in names {
        let v = match n.as_str() {
            "recency_days" => 30.0,
            "frequency" => 3.0,
            "monetary" => 600.0,
            "tenure_days" => 400.0,
            "average_ticket" => 200.0,
            "orders_90d" => 1.0,
            "revenue_90d" => 200.0,
            _ if first_share => {
                first_share = false;
                1.0
            }
            _ => 0.0,
        };
        o.insert(n.clone(), json!(v));
    }
    Value::Object(o)
}

/// A customer's features as a request body.
pub fn body_of(row: &[f64]) -> Value {
    let o = fixture()
        .feature_names
        .iter()
        .cloned()
        .zip(row.iter().map(|v| json!(v)))
        .collect();
    Value::Object(o)
}

/// Status and JSON body, printing the body when the status is not `want`.
#[track_caller]
pub fn expect_status(status: reqwest::StatusCode, body: &Value, want: u16) {
    assert_eq!(
        status.as_u16(),
        want,
        "expected HTTP {want}, got {status}; body:\n{}",
        serde_json::to_string_pretty(body).unwrap_or_default()
    );
}

pub async fn json_of(r: reqwest::Response) -> (reqwest::StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("HTTP {status}: body is not JSON ({e}):\n{text}"));
    (status, v)
}
