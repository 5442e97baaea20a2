//! MLflow tracking against a real `mlflow server` (PyPI `mlflow`, installed
//! by `make mlflow-env` into `.venv-mlflow`, or the binary named by
//! `MLFLOW_BIN`), started on a free loopback port with a SQLite backend and
//! proxied artifacts in a temporary folder. Everything logged through
//! [`Tracker`] is read back through MLflow's REST API.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use analytics_lib::tracking::{RunRecord, RunStatus, Tracker, TrackingConfig, TrackingError};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::assert_mentions;

/// How long a cold `mlflow server` may take to answer (it creates its
/// database tables on first start).
const STARTUP: Duration = Duration::from_secs(180);

fn mlflow_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MLFLOW_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.exists(),
            "MLFLOW_BIN={} does not exist: point it at an `mlflow` executable, or unset it and run `make mlflow-env`",
            bin.display()
        );
        return bin;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let bin = root.join(".venv-mlflow/bin/mlflow");
    assert!(
        bin.exists(),
        "the MLflow tracking tests need a real MLflow server, and {} is missing: run `make mlflow-env` \
         (or set MLFLOW_BIN to an `mlflow` executable)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A running `mlflow server`; stopped (its whole process group) on drop,
/// also when a test fails.
struct MlflowServer {
    child: Child,
    uri: String,
    dir: TempDir,
}

impl MlflowServer {
    fn start() -> MlflowServer {
        let bin = mlflow_bin();
        let dir = TempDir::new().expect("temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let artifacts = dir.path().join("artifacts");
        let child = Command::new(&bin)
            .arg("server")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                dir.path().join("mlflow.db").display()
            ))
            // The artifact proxy: runs get `mlflow-artifacts:/<exp>/<run>/artifacts`,
            // stored under --artifacts-destination. (`--default-artifact-root /`
            // would give runs a plain server path that the proxy does not list.)
            .args([
                "--serve-artifacts",
                "--default-artifact-root",
                "mlflow-artifacts:/",
            ])
            .arg("--artifacts-destination")
            .arg(&artifacts)
            // No background job runner: 5 extra processes the tests do not use.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env_remove("MLFLOW_TRACKING_URI")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = MlflowServer {
            child,
            uri: format!("http://127.0.0.1:{port}"),
            dir,
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&mut self) {
        let agent = agent();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "mlflow server exited ({status}) before answering:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(resp) = agent.get(format!("{}/health", self.uri)).call()
                && resp.status() == 200
            {
                return;
            }
            assert!(
                started.elapsed() < STARTUP,
                "mlflow server did not answer {}/health within {STARTUP:?}:\n{}",
                self.uri,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn tracker(&self, experiment: &str) -> Tracker {
        Tracker::new(TrackingConfig {
            uri: self.uri.clone(),
            experiment_name: Some(experiment.to_string()),
            timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        })
        .expect("tracker")
    }

    /// GET an MLflow REST endpoint as JSON.
    fn get(&self, path_and_query: &str) -> Value {
        let mut resp = agent()
            .get(format!("{}{}", self.uri, path_and_query))
            .call()
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
        let status = resp.status();
        let text = resp.body_mut().read_to_string().expect("body");
        assert_eq!(status, 200, "GET {path_and_query}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path_and_query}: {e}: {text}"))
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let mut resp = agent()
            .post(format!("{}{}", self.uri, path))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status();
        let text = resp.body_mut().read_to_string().expect("body");
        assert_eq!(status, 200, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    fn download(&self, path_and_query: &str) -> Vec<u8> {
        let mut resp = agent()
            .get(format!("{}{}", self.uri, path_and_query))
            .call()
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
        assert_eq!(resp.status(), 200, "GET {path_and_query}");
        resp.body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .expect("artifact bytes")
    }

    fn runs_in(&self, experiment_id: &str) -> usize {
        let v = self.post(
            "/api/2.0/mlflow/runs/search",
            &json!({ "experiment_ids": [experiment_id], "max_results": 1000 }),
        );
        v["runs"].as_array().map_or(0, Vec::len)
    }

    /// Stop the server and everything it started.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Workers may outlive the parent by a moment.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &group])
                    .stderr(Stdio::null())
                    .status();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn pairs(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|kv| {
                    let k = kv["key"].as_str().expect("key").to_string();
                    let v = match &kv["value"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every artifact file below `path` (recursively), with its size.
fn list_artifacts(server: &MlflowServer, run_id: &str, path: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut query = format!("/api/2.0/mlflow/artifacts/list?run_id={run_id}");
    if !path.is_empty() {
        query.push_str(&format!("&path={path}"));
    }
    let v = server.get(&query);
    for f in v["files"].as_array().into_iter().flatten() {
        let p = f["path"].as_str().expect("path").to_string();
        if f["is_dir"].as_bool() == Some(true) {
            out.extend(list_artifacts(server, run_id, &p));
        } else {
            out.insert(p, f["file_size"].as_u64().expect("file_size"));
        }
    }
    out
}

#[test]
fn a_run_logged_through_the_tracker_reads_back_identically_from_a_real_mlflow_server() {
    let mut server = MlflowServer::start();
    let files = TempDir::new().expect("temp dir");
    let report = files.path().join("retrain_report.json");
    let report_bytes = br#"{"decision": "promoted", "drift_share": 0.125}"#.to_vec();
    std::fs::write(&report, &report_bytes).expect("write report");
    let model = files.path().join("xgboost.msgpack");
    let model_bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(&model, &model_bytes).expect("write model");
    let version = files.path().join("v0001");
    std::fs::create_dir_all(version.join("nested")).expect("mkdir");
    std::fs::write(version.join("manifest.json"), b"{\"version\": \"v0001\"}").expect("write");
    std::fs::write(version.join("nested/notes name.txt"), b"spaces ok").expect("write");

    let record = RunRecord {
        run_name: "retrain 27/11/2026".into(),
        params: BTreeMap::from([
            ("data.lines".into(), "20000".into()),
            ("train.xgboost.max_depth".into(), "6".into()),
            ("train.holdout_share".into(), "0.2".into()),
        ]),
        metrics: BTreeMap::from([
            ("challenger.xgboost.rmse".into(), 123.456_789_012_345),
            ("champion.linear.r2".into(), -0.25),
            ("drift.share".into(), 0.0),
        ]),
        tags: BTreeMap::from([
            ("decision".into(), "promoted".into()),
            ("model".into(), "customer_spend".into()),
        ]),
        artifacts: vec![report.clone(), model.clone(), version.clone()],
        status: RunStatus::Finished,
    };
    let tracker = server.tracker("retrain-it");
    let info = tracker
        .log_run(&record)
        .expect("log_run against a live server");
    assert!(
        info.url.starts_with(&server.uri) && info.url.ends_with(&info.run_id),
        "{info:?}"
    );
    assert_eq!(
        info.artifacts,
        vec![
            "retrain_report.json",
            "v0001/manifest.json",
            "v0001/nested/notes name.txt",
            "xgboost.msgpack"
        ]
    );

    // The run, read back.
    let run =
        server.get(&format!("/api/2.0/mlflow/runs/get?run_id={}", info.run_id))["run"].clone();
    assert_eq!(run["info"]["status"], "FINISHED", "{run}");
    assert_eq!(run["info"]["run_name"], "retrain 27/11/2026");
    assert_eq!(
        run["info"]["experiment_id"].as_str(),
        Some(info.experiment_id.as_str())
    );
    assert!(run["info"]["end_time"].as_u64().unwrap_or(0) > 0, "{run}");
    assert_eq!(pairs(&run["data"]["params"]), record.params);
    let metrics: BTreeMap<String, f64> = run["data"]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| {
            assert_eq!(m["step"].as_i64().unwrap_or(0), 0, "{m}");
            (
                m["key"].as_str().expect("key").to_string(),
                m["value"].as_f64().expect("value"),
            )
        })
        .collect();
    assert_eq!(metrics, record.metrics);
    let tags = pairs(&run["data"]["tags"]);
    for (k, v) in &record.tags {
        assert_eq!(tags.get(k), Some(v), "tag {k}: {tags:?}");
    }
    assert_eq!(
        tags.get("mlflow.runName").map(String::as_str),
        Some("retrain 27/11/2026")
    );
    let experiment = server.get(&format!(
        "/api/2.0/mlflow/experiments/get?experiment_id={}",
        info.experiment_id
    ));
    assert_eq!(experiment["experiment"]["name"], "retrain-it");

    // The artifacts, listed and downloaded.
    let listed = list_artifacts(&server, &info.run_id, "");
    let expected: BTreeMap<String, u64> = BTreeMap::from([
        ("retrain_report.json".to_string(), report_bytes.len() as u64),
        ("v0001/manifest.json".to_string(), 20),
        ("v0001/nested/notes name.txt".to_string(), 9),
        ("xgboost.msgpack".to_string(), model_bytes.len() as u64),
    ]);
    assert_eq!(listed, expected);
    let got = server.download(&format!(
        "/get-artifact?path=xgboost.msgpack&run_uuid={}",
        info.run_id
    ));
    assert!(
        got == model_bytes,
        "the binary artifact differs after the round trip"
    );
    let root = info
        .artifact_uri
        .strip_prefix("mlflow-artifacts:/")
        .expect("a proxied artifact root");
    let got = server.download(&format!(
        "/api/2.0/mlflow-artifacts/artifacts/{root}/retrain_report.json"
    ));
    assert_eq!(got, report_bytes);
    let got = server.download(&format!(
        "/api/2.0/mlflow-artifacts/artifacts/{root}/v0001/nested/notes%20name.txt"
    ));
    assert_eq!(got, b"spaces ok");

    // A second run reuses the experiment and keeps its status.
    let failed = RunRecord {
        run_name: "bad data".into(),
        tags: BTreeMap::from([("decision".into(), "stopped: too few rows".into())]),
        status: RunStatus::Failed,
        ..Default::default()
    };
    let second = server
        .tracker("retrain-it")
        .log_run(&failed)
        .expect("second run");
    assert_eq!(second.experiment_id, info.experiment_id);
    let run = server.get(&format!(
        "/api/2.0/mlflow/runs/get?run_id={}",
        second.run_id
    ));
    assert_eq!(run["run"]["info"]["status"], "FAILED");
    assert_eq!(server.runs_in(&info.experiment_id), 2);

    // A record that cannot be logged whole is refused before a run exists.
    let missing = RunRecord {
        run_name: "missing file".into(),
        artifacts: vec![files.path().join("no_such_report.json")],
        ..Default::default()
    };
    let err = tracker
        .log_run(&missing)
        .expect_err("missing artifact")
        .to_string();
    assert_mentions(&err, &["no_such_report.json", "expected a readable file"]);
    let mut nan = RunRecord::new("nan");
    nan.metrics.insert("rmse".into(), f64::NAN);
    let err = tracker.log_run(&nan).expect_err("NaN metric").to_string();
    assert_mentions(
        &err,
        &["metric \"rmse\"", "expected a finite number", "NaN"],
    );
    assert_eq!(
        server.runs_in(&info.experiment_id),
        2,
        "a refused record created a run"
    );

    // A wrong address (a path that is not MLflow's API) names the endpoint and
    // the server's answer, and never the credentials.
    let wrong = Tracker::new(TrackingConfig {
        uri: format!(
            "{}/not-mlflow",
            server.uri.replace("http://", "http://alice:pa55word@")
        ),
        experiment_name: Some("retrain-it".into()),
        ..Default::default()
    })
    .expect("tracker");
    let err = wrong.log_run(&record).expect_err("wrong prefix");
    let text = err.to_string();
    assert!(
        matches!(err, TrackingError::Server { status: 404, .. }),
        "{text}"
    );
    assert_mentions(
        &text,
        &[
            "/not-mlflow",
            "GET /api/2.0/mlflow/experiments/get-by-name",
            "HTTP 404",
        ],
    );
    assert!(
        !text.contains("pa55word") && !format!("{err:?} {wrong:?}").contains("pa55word"),
        "{text}"
    );

    // A stopped server: a clear connection error, nothing logged anywhere.
    server.stop();
    let err = server
        .tracker("retrain-it")
        .log_run(&record)
        .expect_err("stopped server");
    let text = err.to_string();
    assert!(matches!(err, TrackingError::Transport { .. }), "{text}");
    assert_mentions(
        &text,
        &[
            &server.uri,
            "experiments/get-by-name",
            "is the MLflow server running",
        ],
    );
}

#[test]
fn a_uri_where_nothing_listens_gives_a_clear_error() {
    let port = free_port();
    let tracker = Tracker::new(TrackingConfig {
        uri: format!("http://127.0.0.1:{port}"),
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    })
    .expect("tracker");
    let err = tracker
        .log_run(&RunRecord::new("nobody home"))
        .expect_err("no server")
        .to_string();
    assert_mentions(
        &err,
        &[
            &format!("127.0.0.1:{port}"),
            "GET /api/2.0/mlflow/experiments/get-by-name",
            "is the MLflow server running",
        ],
    );
    for uri in [
        "127.0.0.1:5000",
        "file:///srv/mlruns",
        "http://127.0.0.1:notaport",
    ] {
        let err = Tracker::new(TrackingConfig {
            uri: uri.into(),
            ..Default::default()
        })
        .expect_err(uri)
        .to_string();
        assert_mentions(&err, &["MLFLOW_TRACKING_URI", "expected"]);
    }
}
