//! The REST calls of a [`Tracker`]: the experiment, the run, its
//! parameters, metrics and tags in batches, and the artifacts through the
//! server's proxy.

use super::checks::*;
use super::*;

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
