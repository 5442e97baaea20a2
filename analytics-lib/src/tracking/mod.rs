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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

mod checks;
mod client;

use checks::*;
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
