//! `spawn_app()`: the real server on 127.0.0.1:0 with its own temporary
//! model registry, and the fixture behind it (20k generated lines, small
//! models trained once per test binary).
//!
//! Every app gets a registry built the way the training jobs build it
//! (`Registry::stage` → files → `Staging::commit` → `Registry::promote`):
//! `customer_spend/v0001` (all three kinds, `best.json` naming the
//! validation winner) and `segments/v0001` (k = 4), both live.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use analytics_lib::clean;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::loader::load;
use analytics_lib::features::customer_features;
use analytics_lib::kpi::Sales;
use analytics_lib::models::{ForestParams, LinearParams, TrainParams, XgbParams, train_all};
use analytics_lib::registry::{
    LivePointer, Registry, SEGMENT_FILE, SEGMENTS, SPEND, VersionId, VersionNotes,
};
use analytics_lib::segments::{KMeansParams, SegmentFeatures, SegmentParams, fit_segments};
use serde_json::{Value, json};
use serve::configuration::Settings;
use serve::startup::Application;
use tempfile::TempDir;

/// Which of the fixture's two segment models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    /// k = 4 (the default live one).
    Four,
    /// k = 3.
    Three,
}

impl Seg {
    fn file(self) -> &'static str {
        match self {
            Seg::Four => "segments_k4.msgpack",
            Seg::Three => "segments_k3.msgpack",
        }
    }
    pub fn k(self) -> usize {
        match self {
            Seg::Four => 4,
            Seg::Three => 3,
        }
    }
}

/// Generated data and the models trained on it, shared by every test.
pub struct Fixture {
    _dir: TempDir,
    pub data: PathBuf,
    /// `{linear,random_forest,xgboost}.{msgpack,json}` and the two segment models.
    pub trained: PathBuf,
    /// The spend models' features.
    pub feature_names: Vec<String>,
    /// The segment models' features.
    pub segment_feature_names: Vec<String>,
    pub best: String,
    /// A few customers with their spend features at the data's last day + 1.
    pub customers: Vec<(String, Vec<f64>)>,
    /// The same customers' segment features, by the segment model's names.
    pub segment_rows: Vec<Value>,
    /// Every customer with its spend features computed on the full sales
    /// lines with the model's categories (what serve computed per model
    /// before it kept only `CustomerRows`), and its segment features by name.
    pub all_customers: Vec<(String, Vec<f64>)>,
    pub all_segment_rows: Vec<(String, Value)>,
    /// CLV and P(alive) of a few customers (`customers` and repeat buyers),
    /// from the library, at the data's reference date.
    pub clv_values: Vec<(String, analytics_lib::clv::ClvValue)>,
}

pub fn fixture() -> &'static Fixture {
    static CELL: OnceLock<Fixture> = OnceLock::new();
    // On a plain thread: polars may call tokio's `block_in_place`, which
    // panics on the tests' current-thread runtime.
    CELL.get_or_init(|| std::thread::spawn(make_fixture).join().expect("fixture"))
}

fn make_fixture() -> Fixture {
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
    let trained = dir.path().join("trained");
    std::fs::create_dir_all(&trained).expect("mkdir");
    for m in &report.models {
        let kind = m.kind().name();
        m.save(&trained.join(format!("{kind}.msgpack")))
            .expect("save");
        std::fs::write(
            trained.join(format!("{kind}.json")),
            serde_json::to_string_pretty(&m.meta).expect("meta json"),
        )
        .expect("write meta");
    }

    // The CLV model trained with them, and a few customers' values.
    let clv = report.clv.as_ref().expect("a CLV model");
    clv.save(&trained.join(analytics_lib::registry::CLV_FILE))
        .expect("save clv");
    let summary =
        analytics_lib::clv::CustomerSummary::compute(&sales, sales.default_as_of).expect("summary");
    let predicted = clv.predict(&summary).expect("clv");
    let mut clv_values: Vec<(String, analytics_lib::clv::ClvValue)> = (0..summary.len())
        .filter(|&i| summary.frequency[i] > 0)
        .take(3)
        .map(|i| (summary.customer_ids[i].clone(), predicted.values[i]))
        .collect();
    clv_values.extend(
        (0..summary.len())
            .filter(|&i| summary.frequency[i] == 0)
            .take(2)
            .map(|i| (summary.customer_ids[i].clone(), predicted.values[i])),
    );

    // Two segment models on the same features: k = 4 and k = 3.
    let seg_features = SegmentFeatures::compute(&sales, None, None).expect("segment features");
    let mut segment_feature_names = Vec::new();
    for seg in [Seg::Four, Seg::Three] {
        let p = SegmentParams {
            kmeans: KMeansParams::new()
                .k(seg.k())
                .n_runs(2)
                .seed(5)
                .silhouette_sample(1_000),
            ..SegmentParams::default()
        };
        let fit = fit_segments(&seg_features, &p).expect("segments");
        fit.model.save(&trained.join(seg.file())).expect("save");
        segment_feature_names = fit.model.feature_names().to_vec();
    }

    let feats =
        customer_features(&sales, sales.default_as_of, Some(&report.categories)).expect("features");
    let ids = feats.customer_ids().expect("ids");
    let m = feats.matrix().expect("matrix");
    let all_customers: Vec<(String, Vec<f64>)> = (0..ids.len())
        .map(|i| (ids[i].clone(), m.row(i).to_vec()))
        .collect();
    let customers = all_customers[..3].to_vec();
    let all_segment_rows = seg_features
        .customer_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let o = seg_features
                .names()
                .iter()
                .cloned()
                .zip(seg_features.matrix.row(i).iter().map(|v| json!(v)))
                .filter(|(n, _)| segment_feature_names.contains(n))
                .collect();
            (id.clone(), Value::Object(o))
        })
        .collect();
    let segment_rows = customers
        .iter()
        .map(|(id, _)| {
            let i = seg_features
                .customer_ids
                .iter()
                .position(|c| c == id)
                .expect("customer in both tables");
            let row = seg_features.matrix.row(i);
            let o = seg_features
                .names()
                .iter()
                .cloned()
                .zip(row.iter().map(|v| json!(v)))
                .filter(|(n, _)| segment_feature_names.contains(n))
                .collect();
            Value::Object(o)
        })
        .collect();
    Fixture {
        data,
        trained,
        feature_names: report.feature_names.clone(),
        segment_feature_names,
        best: report.best.name().to_string(),
        customers,
        segment_rows,
        all_customers,
        all_segment_rows,
        clv_values,
        _dir: dir,
    }
}

/// Write a customer_spend version of the three trained kinds with
/// `best.json` naming `best` (any string: tests use unknown kinds too),
/// commit it and return its id. Not promoted.
pub fn commit_spend(models: &Path, best: &str) -> VersionId {
    let f = fixture();
    let reg = Registry::open(models).expect("registry");
    let staging = reg.stage(SPEND).expect("stage");
    let mut metrics = serde_json::Map::new();
    for kind in ["linear", "random_forest", "xgboost"] {
        for ext in ["msgpack", "json"] {
            let name = format!("{kind}.{ext}");
            std::fs::copy(f.trained.join(&name), staging.dir().join(&name)).expect("copy");
        }
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(f.trained.join(format!("{kind}.json"))).expect("meta"),
        )
        .expect("meta json");
        metrics.insert(kind.to_string(), meta["metrics"].clone());
    }
    let clv = analytics_lib::registry::CLV_FILE;
    std::fs::copy(f.trained.join(clv), staging.dir().join(clv)).expect("copy clv");
    std::fs::write(
        staging.dir().join("best.json"),
        json!({"best": best, "chosen_on": "validation"}).to_string(),
    )
    .expect("best.json");
    let notes = VersionNotes {
        data_fingerprint: None,
        info: json!({"job": "test", "best": best, "metrics": metrics}),
    };
    staging.commit(notes).expect("commit").id
}

/// Write a segments version holding `seg`, commit it, return its id.
pub fn commit_segments(models: &Path, seg: Seg) -> VersionId {
    let f = fixture();
    let reg = Registry::open(models).expect("registry");
    let staging = reg.stage(SEGMENTS).expect("stage");
    std::fs::copy(f.trained.join(seg.file()), staging.dir().join(SEGMENT_FILE)).expect("copy");
    let notes = VersionNotes {
        data_fingerprint: None,
        info: json!({"job": "test", "metrics": {"k": seg.k()}}),
    };
    staging.commit(notes).expect("commit").id
}

pub fn promote(models: &Path, model: &str, id: VersionId) -> LivePointer {
    Registry::open(models)
        .expect("registry")
        .promote(model, id)
        .expect("promote")
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// This app's own model registry.
    pub models: TempDir,
}

impl TestApp {
    pub fn registry(&self) -> Registry {
        Registry::open(self.models.path()).expect("registry")
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

    /// A new customer_spend version serving `best`, committed (not live).
    pub fn commit_spend(&self, best: &str) -> VersionId {
        commit_spend(self.models.path(), best)
    }

    /// A new segments version, committed (not live).
    pub fn commit_segments(&self, seg: Seg) -> VersionId {
        commit_segments(self.models.path(), seg)
    }

    pub fn promote(&self, model: &str, id: VersionId) -> LivePointer {
        promote(self.models.path(), model, id)
    }

    pub fn rollback(&self, model: &str) -> LivePointer {
        self.registry().rollback(model).expect("rollback")
    }
}

/// The server with data and a registry with both models live (hot reload off).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with settings changed.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(configure, |_| {}).await
}

/// Full control: `prepare` may change the registry (commit, promote,
/// remove, damage) before start.
pub async fn spawn(configure: impl FnOnce(&mut Settings), prepare: impl FnOnce(&Path)) -> TestApp {
    let f = fixture();
    let models = TempDir::new().expect("tmp");
    let spend = commit_spend(models.path(), &f.best);
    promote(models.path(), SPEND, spend);
    let seg = commit_segments(models.path(), Seg::Four);
    promote(models.path(), SEGMENTS, seg);
    prepare(models.path());
    let mut settings = Settings {
        bind: "127.0.0.1:0".into(),
        models: models.path().to_path_buf(),
        data: Some(f.data.clone()),
        reload_interval_ms: 0,
        workers: 2,
        // Tests that read the access log set a file.
        access_log: "off".into(),
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

/// Plausible feature values for every feature of the fixture's spend models.
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

/// Plausible RFM for `/segment` (no shares, no average ticket).
pub fn rfm_body() -> Value {
    json!({"recency_days": 30.0, "frequency": 3, "monetary": 600.0})
}

/// A customer's spend features as a request body.
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

/// The answer without its timing (`compute_ms`, which differs run to run).
pub fn without_timing(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("compute_ms");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// Where two JSON values first differ (`None`: equal). Numbers are equal
/// up to the order of floating-point additions (relative 1e-9): on
/// Snowflake the dashboard is built from per-order records whose revenue
/// the warehouse summed, and recorded answers are compared across builds.
pub fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{at}.{k}")),
                (p, q) => Some(format!("{at}.{k}: {p:?} vs {q:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            ((x - y).abs() > 1e-9 * x.abs().max(y.abs()).max(1.0))
                .then(|| format!("{at}: {a} vs {b}"))
        }
        _ => Some(format!("{at}: {a} vs {b}")),
    }
}
