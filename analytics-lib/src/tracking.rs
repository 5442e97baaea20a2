//! Experiment tracking: log a run (parameters, metrics, tags, artifact
//! files) to an MLflow tracking server through its REST API.
//!
//! Tracking is optional and configured from the environment, with MLflow's
//! own variable names:
//!
//! | variable | meaning |
//! |---|---|
//! | `MLFLOW_TRACKING_URI` | `http(s)://host:port[/prefix]` of the server; unset or empty: no tracking |
//! | `MLFLOW_EXPERIMENT_NAME` | experiment of the runs (created when missing); default [`DEFAULT_EXPERIMENT`] |
//! | `MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD` | HTTP basic authentication |
//! | `MLFLOW_TRACKING_TOKEN` | bearer token (instead of basic authentication) |
//! | `MLFLOW_HTTP_REQUEST_TIMEOUT` | seconds per request, default 120 |
//!
//! Artifacts go through the server's artifact proxy
//! (`/api/2.0/mlflow-artifacts/artifacts/…`), so the server must run with
//! `--serve-artifacts` (the default since MLflow 2.0) and experiments whose
//! artifact location is `mlflow-artifacts:/…` (the default when no
//! `--default-artifact-root` is given, or `--default-artifact-root
//! mlflow-artifacts:/`). A run whose artifact location the proxy cannot serve
//! (for example `s3://…` written directly by Python clients) is refused with
//! an error that says so.
//!
//! Nothing here touches local state: a failing server costs the caller an
//! error, never a half-written model or report. The caller decides whether
//! that error fails its job or is only a warning. Credentials never appear
//! in errors or in `Debug` output.
//!
//! ```no_run
//! use analytics_lib::tracking::{RunRecord, Tracker};
//! if let Some(tracker) = Tracker::from_env() {
//!     let mut run = RunRecord::new("retrain 2026-11-27");
//!     run.params.insert("lines".into(), "1000000".into());
//!     run.metrics.insert("xgboost.rmse".into(), 123.4);
//!     run.tags.insert("decision".into(), "promoted".into());
//!     run.artifacts.push("reports/retrain.json".into());
//!     match tracker.log_run(&run) {
//!         Ok(info) => eprintln!("MLflow run: {}", info.url),
//!         Err(e) => eprintln!("warning: {e}"),
//!     }
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

/// Experiment used when `MLFLOW_EXPERIMENT_NAME` is not set.
pub const DEFAULT_EXPERIMENT: &str = "sales-analytics";

/// Seconds per request when `MLFLOW_HTTP_REQUEST_TIMEOUT` is not set.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;

// MLflow's limits (mlflow/utils/validation.py): checked before a run is
// created, so that a bad record never leaves a half-logged run behind.
const MAX_KEY_LEN: usize = 250;
const MAX_PARAM_VALUE_LEN: usize = 6000;
const MAX_TAG_VALUE_LEN: usize = 8000;
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_METRICS_PER_BATCH: usize = 1000;
/// Longest server message quoted in an error.
const MAX_QUOTED: usize = 400;

/// Everything that can go wrong while tracking. Every message names the
/// endpoint (or setting) concerned and what the server said.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("MLflow tracking setting {variable}: expected {expected}; found {found}")]
    Config {
        variable: &'static str,
        expected: &'static str,
        found: String,
    },

    #[error("MLflow run record: {field}: expected {expected}; found {found}")]
    Invalid {
        field: String,
        expected: &'static str,
        found: String,
    },

    #[error("MLflow artifact {path}: {reason}")]
    Artifact { path: PathBuf, reason: String },

    #[error("MLflow server {server}: {endpoint} failed: {message}")]
    Transport {
        server: String,
        endpoint: String,
        message: String,
    },

    #[error("MLflow server {server}: {endpoint} answered HTTP {status}{}: {message}",
        error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Server {
        server: String,
        endpoint: String,
        status: u16,
        /// MLflow's `error_code`, e.g. `RESOURCE_DOES_NOT_EXIST`.
        error_code: Option<String>,
        message: String,
    },

    #[error(
        "MLflow server {server}: {endpoint}: unexpected answer: expected {expected}; found {found}"
    )]
    Protocol {
        server: String,
        endpoint: String,
        expected: &'static str,
        found: String,
    },

    #[error("MLflow run {run_id} was created but not completed (marked {status}): {source}")]
    RunIncomplete {
        run_id: String,
        /// `FAILED` when marking it so succeeded, else `RUNNING`.
        status: &'static str,
        #[source]
        source: Box<TrackingError>,
    },
}

pub type Result<T, E = TrackingError> = std::result::Result<T, E>;

/// How a run ended, as MLflow records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunStatus {
    #[default]
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// One run to log: what [`Tracker::log_run`] sends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunRecord {
    /// Shown as the run's name in the MLflow UI.
    pub run_name: String,
    /// Logged as parameters (values up to 6000 characters).
    pub params: BTreeMap<String, String>,
    /// Logged as metrics at step 0; each must be finite.
    pub metrics: BTreeMap<String, f64>,
    /// Logged as tags (values up to 8000 characters).
    pub tags: BTreeMap<String, String>,
    /// Files, uploaded under their file name, and folders, uploaded
    /// recursively under their folder name. Names must not collide.
    pub artifacts: Vec<PathBuf>,
    /// The run's final status (default `FINISHED`); a job that failed can
    /// still log what it saw with `FAILED`.
    pub status: RunStatus,
}

impl RunRecord {
    pub fn new(run_name: impl Into<String>) -> Self {
        RunRecord {
            run_name: run_name.into(),
            ..Default::default()
        }
    }
}

/// Where a logged run lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    /// The run's page in the MLflow UI.
    pub url: String,
    /// The run's artifact location as the server reports it
    /// (`mlflow-artifacts:/<experiment>/<run>/artifacts`).
    pub artifact_uri: String,
    /// Artifact paths uploaded, relative to the run's artifact root.
    pub artifacts: Vec<String>,
}

/// Settings of a [`Tracker`]. `Debug` shows no secret.
#[derive(Clone, Default)]
pub struct TrackingConfig {
    /// `http(s)://host:port[/prefix]`; `user:password@` in it is taken as
    /// basic authentication.
    pub uri: String,
    /// `None`: [`DEFAULT_EXPERIMENT`].
    pub experiment_name: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// `None`: [`DEFAULT_TIMEOUT_SECS`].
    pub timeout: Option<Duration>,
}

impl fmt::Debug for TrackingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackingConfig")
            .field("uri", &redact_uri(&self.uri))
            .field("experiment_name", &self.experiment_name)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TrackingConfig {
    /// The settings from the `MLFLOW_*` variables; `None` when
    /// `MLFLOW_TRACKING_URI` is unset or empty.
    pub fn from_env() -> Result<Option<TrackingConfig>> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(uri) = var("MLFLOW_TRACKING_URI") else {
            return Ok(None);
        };
        let timeout = match var("MLFLOW_HTTP_REQUEST_TIMEOUT") {
            None => None,
            Some(s) => match s.parse::<u64>() {
                Ok(n) if n > 0 => Some(Duration::from_secs(n)),
                _ => {
                    return Err(TrackingError::Config {
                        variable: "MLFLOW_HTTP_REQUEST_TIMEOUT",
                        expected: "a whole number of seconds > 0",
                        found: format!("{s:?}"),
                    });
                }
            },
        };
        Ok(Some(TrackingConfig {
            uri,
            experiment_name: var("MLFLOW_EXPERIMENT_NAME"),
            username: var("MLFLOW_TRACKING_USERNAME"),
            password: std::env::var("MLFLOW_TRACKING_PASSWORD").ok(),
            token: var("MLFLOW_TRACKING_TOKEN"),
            timeout,
        }))
    }
}

/// A client of one MLflow tracking server and experiment.
///
/// Blocking; one [`Tracker`] can be shared between threads.
pub struct Tracker {
    /// Scheme, host, port and prefix, without credentials or trailing `/`.
    base: String,
    experiment_name: String,
    /// The `Authorization` header value, if any.
    auth: Option<Secret>,
    auth_kind: &'static str,
    agent: ureq::Agent,
    experiment_id: OnceLock<String>,
    /// A configuration problem found by [`Tracker::from_env`], returned by
    /// every call (so that a mistyped URI is not silently no tracking).
    config_error: Option<(&'static str, &'static str, String)>,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("server", &self.base)
            .field("experiment", &self.experiment_name)
            .field("auth", &self.auth_kind)
            .field("config_error", &self.config_error)
            .finish()
    }
}

/// A header value that never prints.
struct Secret(String);

impl Tracker {
    /// The tracker the environment configures: `None` when
    /// `MLFLOW_TRACKING_URI` is unset or empty. A setting that is present
    /// but invalid gives a tracker whose every call returns that
    /// configuration error, so the caller sees it where it logs.
    pub fn from_env() -> Option<Tracker> {
        match Tracker::try_from_env() {
            Ok(t) => t,
            Err(TrackingError::Config {
                variable,
                expected,
                found,
            }) => Some(Tracker::broken(variable, expected, found)),
            Err(other) => Some(Tracker::broken(
                "MLFLOW_TRACKING_URI",
                "a valid setting",
                other.to_string(),
            )),
        }
    }

    /// As [`Tracker::from_env`], with a configuration problem as an error.
    pub fn try_from_env() -> Result<Option<Tracker>> {
        match TrackingConfig::from_env()? {
            None => Ok(None),
            Some(config) => Tracker::new(config).map(Some),
        }
    }

    fn broken(variable: &'static str, expected: &'static str, found: String) -> Tracker {
        Tracker {
            base: String::new(),
            experiment_name: String::new(),
            auth: None,
            auth_kind: "none",
            agent: ureq::Agent::new_with_defaults(),
            experiment_id: OnceLock::new(),
            config_error: Some((variable, expected, found)),
        }
    }

    /// A tracker on explicit settings. Checks the URI; contacts nothing.
    pub fn new(config: TrackingConfig) -> Result<Tracker> {
        let parsed = parse_uri(&config.uri)?;
        let mut username = config.username.clone();
        let mut password = config.password.clone();
        if let Some((u, p)) = parsed.userinfo {
            username.get_or_insert(u);
            if password.is_none() {
                password = p;
            }
        }
        let (auth, auth_kind) = match (&config.token, &username) {
            (Some(token), _) => (Some(Secret(format!("Bearer {token}"))), "bearer"),
            (None, Some(user)) => {
                let pair = format!("{user}:{}", password.as_deref().unwrap_or(""));
                (
                    Some(Secret(format!("Basic {}", base64(pair.as_bytes())))),
                    "basic",
                )
            }
            (None, None) => {
                if password.is_some() {
                    return Err(TrackingError::Config {
                        variable: "MLFLOW_TRACKING_USERNAME",
                        expected: "a user name when MLFLOW_TRACKING_PASSWORD is set",
                        found: "nothing".into(),
                    });
                }
                (None, "none")
            }
        };
        let experiment_name = config
            .experiment_name
            .clone()
            .unwrap_or_else(|| DEFAULT_EXPERIMENT.to_string());
        let timeout = config
            .timeout
            .unwrap_or(Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10).min(timeout)))
            .timeout_global(Some(timeout))
            .user_agent(concat!("sales-analytics/", env!("CARGO_PKG_VERSION")))
            // A redirect would resend the credentials elsewhere.
            .max_redirects(0)
            .build()
            .into();
        Ok(Tracker {
            base: parsed.base,
            experiment_name,
            auth,
            auth_kind,
            agent,
            experiment_id: OnceLock::new(),
            config_error: None,
        })
    }

    /// The server, without credentials.
    pub fn server(&self) -> &str {
        &self.base
    }

    pub fn experiment_name(&self) -> &str {
        &self.experiment_name
    }

    fn ready(&self) -> Result<()> {
        match &self.config_error {
            None => Ok(()),
            Some((variable, expected, found)) => Err(TrackingError::Config {
                variable,
                expected,
                found: found.clone(),
            }),
        }
    }

    /// Log one complete run: create it, log its parameters, metrics and
    /// tags, upload its artifacts, and end it with `record.status`.
    ///
    /// The record is checked (keys, value lengths, finite metrics, artifact
    /// files readable and names unique) before anything is sent. When a step
    /// after the run's creation fails, the run is marked `FAILED` (best
    /// effort) and the error is [`TrackingError::RunIncomplete`].
    pub fn log_run(&self, record: &RunRecord) -> Result<RunInfo> {
        self.ready()?;
        check_record(record)?;
        let uploads = collect_artifacts(&record.artifacts)?;
        let experiment_id = self.experiment_id()?;
        let (run_id, artifact_uri) = self.create_run(&experiment_id, &record.run_name)?;
        let logged = self.log_contents(&run_id, &artifact_uri, record, &uploads);
        match logged {
            Ok(artifacts) => Ok(RunInfo {
                url: format!(
                    "{}/#/experiments/{}/runs/{}",
                    self.base, experiment_id, run_id
                ),
                run_id,
                experiment_id,
                artifact_uri,
                artifacts,
            }),
            Err(e) => {
                let status = match self.end_run(&run_id, RunStatus::Failed) {
                    Ok(()) => "FAILED",
                    Err(_) => "RUNNING",
                };
                Err(TrackingError::RunIncomplete {
                    run_id,
                    status,
                    source: Box::new(e),
                })
            }
        }
    }

    /// Everything of a created run but its creation: data, files, end.
    fn log_contents(
        &self,
        run_id: &str,
        artifact_uri: &str,
        record: &RunRecord,
        uploads: &[(String, PathBuf)],
    ) -> Result<Vec<String>> {
        self.log_batch(run_id, &record.params, &record.metrics, &record.tags)?;
        let mut names = Vec::with_capacity(uploads.len());
        for (name, path) in uploads {
            self.upload_artifact(artifact_uri, name, path)?;
            names.push(name.clone());
        }
        self.end_run(run_id, record.status)?;
        Ok(names)
    }

    /// The id of the configured experiment, created when missing.
    pub fn experiment_id(&self) -> Result<String> {
        self.ready()?;
        if let Some(id) = self.experiment_id.get() {
            return Ok(id.clone());
        }
        let id = match self.find_experiment()? {
            Some(id) => id,
            None => {
                let endpoint = "POST /api/2.0/mlflow/experiments/create";
                match self.call(endpoint, &json!({ "name": self.experiment_name })) {
                    Ok(v) => str_field(&v, &["experiment_id"])
                        .ok_or_else(|| self.protocol(endpoint, "an experiment_id", &v))?,
                    // Created meanwhile by someone else.
                    Err(TrackingError::Server {
                        error_code: Some(code),
                        ..
                    }) if code == "RESOURCE_ALREADY_EXISTS" => {
                        self.find_experiment()?
                            .ok_or_else(|| TrackingError::Protocol {
                                server: self.base.clone(),
                                endpoint: endpoint.into(),
                                expected: "the experiment that the server says exists",
                                found: format!("no experiment named {:?}", self.experiment_name),
                            })?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(self.experiment_id.get_or_init(|| id).clone())
    }

    fn find_experiment(&self) -> Result<Option<String>> {
        let endpoint = "GET /api/2.0/mlflow/experiments/get-by-name";
        let query = format!("experiment_name={}", encode(&self.experiment_name, false));
        match self.call_query(endpoint, &query) {
            Ok(v) => {
                let id = str_field(&v, &["experiment", "experiment_id"])
                    .ok_or_else(|| self.protocol(endpoint, "experiment.experiment_id", &v))?;
                if str_field(&v, &["experiment", "lifecycle_stage"]).as_deref() == Some("deleted") {
                    return Err(TrackingError::Config {
                        variable: "MLFLOW_EXPERIMENT_NAME",
                        expected: "an active experiment (restore it in MLflow, or choose another name)",
                        found: format!("{:?}, deleted (id {id})", self.experiment_name),
                    });
                }
                Ok(Some(id))
            }
            Err(TrackingError::Server {
                error_code: Some(code),
                ..
            }) if code == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Start a run; returns its id and artifact location.
    pub fn create_run(&self, experiment_id: &str, run_name: &str) -> Result<(String, String)> {
        self.ready()?;
        let endpoint = "POST /api/2.0/mlflow/runs/create";
        let mut body = json!({
            "experiment_id": experiment_id,
            "start_time": now_ms(),
            "tags": [{ "key": "mlflow.source.type", "value": "JOB" },
                     { "key": "mlflow.source.name", "value": "analytics" }],
        });
        if !run_name.is_empty() {
            body["run_name"] = json!(run_name);
        }
        if let (Ok(user), Some(tags)) = (std::env::var("USER"), body["tags"].as_array_mut()) {
            tags.push(json!({ "key": "mlflow.user", "value": user }));
        }
        let v = self.call(endpoint, &body)?;
        let run_id = str_field(&v, &["run", "info", "run_id"])
            .ok_or_else(|| self.protocol(endpoint, "run.info.run_id", &v))?;
        let artifact_uri = str_field(&v, &["run", "info", "artifact_uri"])
            .ok_or_else(|| self.protocol(endpoint, "run.info.artifact_uri", &v))?;
        Ok((run_id, artifact_uri))
    }

    /// Log parameters, metrics (step 0, now) and tags, in batches within
    /// MLflow's limits.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &BTreeMap<String, String>,
        metrics: &BTreeMap<String, f64>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.ready()?;
        let endpoint = "POST /api/2.0/mlflow/runs/log-batch";
        let kv = |(k, v): (&String, &String)| json!({ "key": k, "value": v });
        let params: Vec<Value> = params.iter().map(kv).collect();
        let tags: Vec<Value> = tags.iter().map(kv).collect();
        let ts = now_ms();
        let metrics: Vec<Value> = metrics
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v, "timestamp": ts, "step": 0 }))
            .collect();
        for chunk in params.chunks(MAX_PARAMS_PER_BATCH) {
            self.call(endpoint, &json!({ "run_id": run_id, "params": chunk }))?;
        }
        for chunk in tags.chunks(MAX_TAGS_PER_BATCH) {
            self.call(endpoint, &json!({ "run_id": run_id, "tags": chunk }))?;
        }
        for chunk in metrics.chunks(MAX_METRICS_PER_BATCH) {
            self.call(endpoint, &json!({ "run_id": run_id, "metrics": chunk }))?;
        }
        Ok(())
    }

    /// Upload one file as `name` (a relative `/`-separated path) under the
    /// run's artifact location, through the server's artifact proxy.
    pub fn upload_artifact(&self, artifact_uri: &str, name: &str, file: &Path) -> Result<()> {
        self.ready()?;
        let root = proxied_root(artifact_uri).ok_or_else(|| TrackingError::Protocol {
            server: self.base.clone(),
            endpoint: "POST /api/2.0/mlflow/runs/create".into(),
            expected: "a run artifact location served by the artifact proxy \
                       (mlflow-artifacts:/…; start the server with --serve-artifacts and \
                       no --default-artifact-root, or --default-artifact-root mlflow-artifacts:/)",
            found: quote(artifact_uri),
        })?;
        let path = format!("{root}/{name}");
        let endpoint = format!(
            "PUT /api/2.0/mlflow-artifacts/artifacts/{}",
            encode(&path, true)
        );
        let url = format!("{}{}", self.base, &endpoint["PUT ".len()..]);
        let body = File::open(file).map_err(|e| TrackingError::Artifact {
            path: file.to_path_buf(),
            reason: format!("cannot be read: {e}"),
        })?;
        let mut req = self.agent.put(url);
        if let Some(Secret(h)) = &self.auth {
            req = req.header("Authorization", h);
        }
        let resp = req
            .header("Content-Type", "application/octet-stream")
            .send(body);
        self.answer(&endpoint, resp).map(|_| ())
    }

    /// End a run with the given status.
    pub fn end_run(&self, run_id: &str, status: RunStatus) -> Result<()> {
        self.ready()?;
        let endpoint = "POST /api/2.0/mlflow/runs/update";
        self.call(
            endpoint,
            &json!({ "run_id": run_id, "status": status.as_str(), "end_time": now_ms() }),
        )
        .map(|_| ())
    }

    fn call_query(&self, endpoint: &str, query: &str) -> Result<Value> {
        let path = endpoint.split_once(' ').map_or(endpoint, |(_, p)| p);
        let url = format!("{}{}?{}", self.base, path, query);
        let mut req = self.agent.get(url);
        if let Some(Secret(h)) = &self.auth {
            req = req.header("Authorization", h);
        }
        self.answer(endpoint, req.call())
    }

    /// A JSON `POST` to `endpoint` (`"POST /path"`).
    fn call(&self, endpoint: &str, body: &Value) -> Result<Value> {
        let path = endpoint.split_once(' ').map_or(endpoint, |(_, p)| p);
        let url = format!("{}{}", self.base, path);
        let mut req = self.agent.post(url);
        if let Some(Secret(h)) = &self.auth {
            req = req.header("Authorization", h);
        }
        self.answer(endpoint, req.send_json(body))
    }

    /// Turn a response into JSON, or into an error naming the endpoint
    /// and quoting the server.
    fn answer(
        &self,
        endpoint: &str,
        resp: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut resp = resp.map_err(|e| TrackingError::Transport {
            server: self.base.clone(),
            endpoint: endpoint.to_string(),
            message: transport_message(&e),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| TrackingError::Transport {
                server: self.base.clone(),
                endpoint: endpoint.to_string(),
                message: format!("reading the answer (HTTP {status}): {e}"),
            })?;
        let parsed: Option<Value> = if text.trim().is_empty() {
            Some(json!({}))
        } else {
            serde_json::from_str(&text).ok()
        };
        if (200..300).contains(&status) {
            return parsed.ok_or_else(|| TrackingError::Protocol {
                server: self.base.clone(),
                endpoint: endpoint.to_string(),
                expected: "a JSON answer",
                found: quote(&text),
            });
        }
        #[derive(Deserialize)]
        struct MlflowError {
            error_code: Option<String>,
            message: Option<String>,
        }
        let err: Option<MlflowError> = parsed.and_then(|v| serde_json::from_value(v).ok());
        let (error_code, message) = match err {
            Some(MlflowError {
                error_code,
                message: Some(m),
            }) => (error_code, quote(&m)),
            Some(MlflowError { error_code, .. }) => (error_code, quote(&text)),
            None => (None, quote(&text)),
        };
        let message = match status {
            401 | 403 => format!(
                "{message} (check MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)"
            ),
            _ => message,
        };
        Err(TrackingError::Server {
            server: self.base.clone(),
            endpoint: endpoint.to_string(),
            status,
            error_code,
            message,
        })
    }

    fn protocol(&self, endpoint: &str, expected: &'static str, found: &Value) -> TrackingError {
        TrackingError::Protocol {
            server: self.base.clone(),
            endpoint: endpoint.to_string(),
            expected,
            found: quote(&found.to_string()),
        }
    }
}

/// A ureq error in words, with a hint for the usual causes.
fn transport_message(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused ({io}): is the MLflow server running at this address?")
        }
        ureq::Error::ConnectionFailed => {
            "connection failed: is the MLflow server running at this address?".into()
        }
        ureq::Error::HostNotFound => "host not found: check MLFLOW_TRACKING_URI".into(),
        ureq::Error::Timeout(t) => {
            format!("timed out ({t}); raise MLFLOW_HTTP_REQUEST_TIMEOUT if the server is slow")
        }
        other => other.to_string(),
    }
}

struct ParsedUri {
    base: String,
    userinfo: Option<(String, Option<String>)>,
}

/// Check `http(s)://[user[:password]@]host[:port][/prefix]`; the base
/// keeps no credentials, query, fragment nor trailing `/`.
fn parse_uri(uri: &str) -> Result<ParsedUri> {
    let bad = |why: &'static str| TrackingError::Config {
        variable: "MLFLOW_TRACKING_URI",
        expected: why,
        found: quote(&redact_uri(uri)),
    };
    let uri = uri.trim();
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        bad("http://host:port or https://host:port (file stores and databricks are not supported)")
    })?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad(
            "an http:// or https:// address of an MLflow tracking server (file stores and databricks are not supported)",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("an address without query (?) or fragment (#)"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((ui, host)) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
                None => (percent_decode(ui), None),
            };
            (Some((u, p)), host)
        }
        None => (None, authority),
    };
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("a host name, e.g. http://127.0.0.1:5000"));
    }
    if let Some((_, port)) = host.rsplit_once(':')
        && !host.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("a port number in 1..65535 after the host"));
    }
    let path = path.trim_end_matches('/');
    Ok(ParsedUri {
        base: format!("{scheme}://{host}{path}"),
        userinfo,
    })
}

/// The URI with any `user:password@` replaced by `***@`.
fn redact_uri(uri: &str) -> String {
    if let Some((scheme, rest)) = uri.split_once("://") {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    uri.to_string()
}

/// The proxy path of a run's artifact location: `mlflow-artifacts:/1/abc/artifacts`
/// and `mlflow-artifacts://host:port/1/abc/artifacts` give `1/abc/artifacts`.
fn proxied_root(artifact_uri: &str) -> Option<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(after_host) => &after_host[after_host.find('/')?..],
        None => rest,
    };
    let path = path.trim_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

fn check_key(kind: &str, key: &str) -> Result<()> {
    let ok_chars = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':'));
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !ok_chars
        || key.contains("..")
        || key.starts_with('/')
    {
        return Err(TrackingError::Invalid {
            field: format!("{kind} key"),
            expected: "1 to 250 characters among letters, digits, _ - . : / and space, not starting with / nor containing ..",
            found: quote(key),
        });
    }
    Ok(())
}

fn check_record(record: &RunRecord) -> Result<()> {
    for (k, v) in &record.params {
        check_key("param", k)?;
        if v.chars().count() > MAX_PARAM_VALUE_LEN {
            return Err(TrackingError::Invalid {
                field: format!("param {k:?}"),
                expected: "a value of at most 6000 characters",
                found: format!("{} characters", v.chars().count()),
            });
        }
    }
    for (k, v) in &record.tags {
        check_key("tag", k)?;
        if v.chars().count() > MAX_TAG_VALUE_LEN {
            return Err(TrackingError::Invalid {
                field: format!("tag {k:?}"),
                expected: "a value of at most 8000 characters",
                found: format!("{} characters", v.chars().count()),
            });
        }
    }
    for (k, v) in &record.metrics {
        check_key("metric", k)?;
        if !v.is_finite() {
            return Err(TrackingError::Invalid {
                field: format!("metric {k:?}"),
                expected: "a finite number",
                found: v.to_string(),
            });
        }
    }
    Ok(())
}

/// Every file to upload, as (artifact path, local file), sorted; folders
/// are walked. Fails before any upload on a missing file or a name
/// given twice.
fn collect_artifacts(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| TrackingError::Artifact {
            path: p.clone(),
            reason: format!("expected a readable file or folder; {e}"),
        })?;
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| TrackingError::Artifact {
                path: p.clone(),
                reason: "expected a path ending in a UTF-8 file or folder name".into(),
            })?
            .to_string();
        if meta.is_dir() {
            walk(p, &name, &mut out)?;
        } else {
            out.push((name, p.clone()));
        }
    }
    let mut seen = BTreeSet::new();
    for (name, path) in &out {
        if !seen.insert(name.as_str()) {
            return Err(TrackingError::Artifact {
                path: path.clone(),
                reason: format!("expected unique artifact names; {name:?} is given twice"),
            });
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrackingError::Artifact {
        path: dir.to_path_buf(),
        reason: format!("cannot list the folder: {e}"),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| TrackingError::Artifact {
            path: dir.to_path_buf(),
            reason: format!("cannot list the folder: {e}"),
        })?;
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            return Err(TrackingError::Artifact {
                path,
                reason: "expected a UTF-8 file name".into(),
            });
        };
        let meta = std::fs::metadata(&path).map_err(|e| TrackingError::Artifact {
            path: path.clone(),
            reason: format!("cannot be read: {e}"),
        })?;
        let rel = format!("{prefix}/{name}");
        if meta.is_dir() {
            walk(&path, &rel, out)?;
        } else {
            out.push((rel, path));
        }
    }
    Ok(())
}

fn str_field(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().map(str::to_string)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// At most [`MAX_QUOTED`] characters of a server's text, on one line.
fn quote(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MAX_QUOTED {
        let cut: String = one_line.chars().take(MAX_QUOTED).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// Percent-encoding of everything but unreserved characters (and `/`
/// when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "base64({input:?})");
        }
    }

    #[test]
    fn uri_credentials_move_to_a_header_and_out_of_sight() {
        let config = TrackingConfig {
            uri: "http://alice:s3cr%40t@127.0.0.1:5000/mlflow/".into(),
            ..Default::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr"), "{debug}");
        let t = Tracker::new(config).expect("valid uri");
        assert_eq!(t.server(), "http://127.0.0.1:5000/mlflow");
        let auth = t.auth.as_ref().map(|s| s.0.clone());
        assert_eq!(auth.as_deref(), Some("Basic YWxpY2U6czNjckB0"));
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("s3cr") && !debug.contains("YWxp"),
            "{debug}"
        );
    }

    #[test]
    fn token_and_password_never_print() {
        let config = TrackingConfig {
            uri: "https://mlflow.example:443".into(),
            username: Some("bob".into()),
            password: Some("hunter2".into()),
            token: Some("tok-123".into()),
            ..Default::default()
        };
        let t = Tracker::new(config.clone()).expect("valid");
        for text in [format!("{config:?}"), format!("{t:?}")] {
            assert!(
                !text.contains("hunter2") && !text.contains("tok-123"),
                "{text}"
            );
        }
        assert_eq!(t.auth_kind, "bearer");
    }

    #[test]
    fn bad_uris_are_refused_with_the_expectation() {
        for uri in [
            "file:///tmp/mlruns",
            "databricks",
            "http://",
            "http://host:port",
            "ftp://x",
        ] {
            let err = Tracker::new(TrackingConfig {
                uri: uri.into(),
                ..Default::default()
            })
            .expect_err(uri)
            .to_string();
            assert!(err.contains("MLFLOW_TRACKING_URI"), "{uri}: {err}");
        }
        let err = Tracker::new(TrackingConfig {
            uri: "ftp://u:pw@x".into(),
            ..Default::default()
        })
        .expect_err("ftp")
        .to_string();
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn proxied_roots() {
        assert_eq!(
            proxied_root("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_root("mlflow-artifacts://h:5000/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(proxied_root("s3://bucket/1/abc/artifacts"), None);
        assert_eq!(proxied_root("/srv/mlruns/1/abc/artifacts"), None);
    }

    #[test]
    fn records_are_checked_before_sending() {
        let mut r = RunRecord::new("x");
        r.metrics.insert("rmse".into(), f64::NAN);
        let err = check_record(&r).expect_err("NaN").to_string();
        assert!(err.contains("\"rmse\"") && err.contains("finite"), "{err}");
        let mut r = RunRecord::new("x");
        r.params.insert("bad\nkey".into(), "1".into());
        assert!(check_record(&r).is_err());
        let mut r = RunRecord::new("x");
        r.params
            .insert("train.xgboost/max_depth".into(), "6".into());
        r.tags.insert("decision".into(), "promoted".into());
        r.metrics.insert("xgboost.rmse".into(), 1.5);
        assert!(check_record(&r).is_ok());
    }

    #[test]
    fn encoding_keeps_paths_readable() {
        assert_eq!(encode("a b/c.json", true), "a%20b/c.json");
        assert_eq!(encode("sales analytics", false), "sales%20analytics");
        assert_eq!(percent_decode("s3cr%40t"), "s3cr@t");
    }
}
