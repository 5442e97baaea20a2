//! What a version folder of each model family holds, and its typed readers.
//! Every file name of a version is spelled here and nowhere else; the
//! retrain job writes with these names, and the CLI, the retrain job and
//! serve read with these readers.
//!
//! ```text
//! customer_spend/vNNNN/  <kind>.msgpack  <kind>.json (ModelMeta)  best.json (BestChoice)
//!                        training_profile.json  manifest.json
//! segments/vNNNN/        segments.msgpack  segments.json  training_profile.json  manifest.json
//! ```
//!
//! The manifest's free-form `info` carries two typed fields every job
//! writes: `job` ([`Job`]) and `status` ([`Decision`]).

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{
    LivePointer, MAX_JSON_BYTES, Manifest, RegistryError, Result, VersionInfo, read_regular,
};
use crate::models::{ModelKind, ModelMeta};

/// The served model's choice in a `customer_spend` version.
pub const BEST_FILE: &str = "best.json";
/// The segment model's file inside a `segments` version.
pub const SEGMENT_FILE: &str = "segments.msgpack";
/// The readable metadata of the segment model in a `segments` version.
pub const SEGMENT_JSON: &str = "segments.json";
/// The feature distributions a version was trained on (drift checks).
pub const PROFILE_FILE: &str = "training_profile.json";
/// The CLV model (BG/NBD + Gamma-Gamma) fitted with a `customer_spend`
/// version, at its `as_of` (absent when the data had too few repeat buyers).
pub const CLV_FILE: &str = "clv.json";

/// `<kind>.msgpack`: the file name of a customer-spend model's artifact.
pub fn spend_artifact_name(kind: ModelKind) -> String {
    format!("{}.msgpack", kind.name())
}

/// `<dir>/<kind>.msgpack`: a customer-spend model's checked artifact.
pub fn spend_artifact(dir: &Path, kind: ModelKind) -> PathBuf {
    dir.join(spend_artifact_name(kind))
}

/// `<dir>/<kind>.json`: a customer-spend model's readable metadata.
pub fn spend_meta_path(dir: &Path, kind: ModelKind) -> PathBuf {
    dir.join(format!("{}.json", kind.name()))
}

/// `<dir>/segments.msgpack`: the segment model's artifact.
pub fn segment_artifact(dir: &Path) -> PathBuf {
    dir.join(SEGMENT_FILE)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, expected: &str) -> Result<T> {
    parse_json(&read_regular(path, MAX_JSON_BYTES)?, path, expected)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    expected: &str,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::BadFile {
        path: path.to_path_buf(),
        expected: expected.to_string(),
        found: e.to_string(),
    })
}

/// `best.json`: which of a customer-spend version's models is served, and
/// on what it was chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestChoice {
    pub best: ModelKind,
    /// The split the choice was made on (`validation`).
    #[serde(default)]
    pub chosen_on: Option<String>,
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
    #[serde(default)]
    pub train_cutoff: Option<NaiveDate>,
    #[serde(default)]
    pub test_cutoff: Option<NaiveDate>,
    #[serde(default)]
    pub data_fingerprint: Option<String>,
}

const BEST_EXPECTED: &str = "{\"best\": \"linear\" | \"random_forest\" | \"xgboost\", …}";

impl BestChoice {
    /// Read `<dir>/best.json`; the error names the file and what it lacks.
    pub fn read(dir: &Path) -> Result<BestChoice> {
        read_json(&dir.join(BEST_FILE), BEST_EXPECTED)
    }

    /// The choice of a verified version (its checked `best.json` bytes).
    pub fn of_verified(v: &super::VerifiedVersion) -> Result<BestChoice> {
        parse_json(v.bytes(BEST_FILE)?, &v.path(BEST_FILE), BEST_EXPECTED)
    }

    /// The served model's artifact in `dir`.
    pub fn artifact(&self, dir: &Path) -> PathBuf {
        spend_artifact(dir, self.best)
    }
}

/// `<dir>/<kind>.json`, or `None` when the version has no model of that kind.
pub fn read_spend_meta(dir: &Path, kind: ModelKind) -> Result<Option<ModelMeta>> {
    let path = spend_meta_path(dir, kind);
    if !path.exists() {
        return Ok(None);
    }
    read_json(&path, "a model's metadata (ModelMeta)").map(Some)
}

/// The job that made a version (the manifest's `info.job`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// `analytics train`: trained and made live.
    Train,
    /// `analytics retrain`: a challenger against the live champion.
    Retrain,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Train => "train",
            Job::Retrain => "retrain",
        }
    }
}

/// What the job decided about the version it made (the manifest's
/// `info.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Committed and made live.
    Promoted,
    /// Committed (for inspection, or a promotion by hand), not live.
    Rejected,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Promoted => "promoted",
            Decision::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Manifest {
    /// The job that made the version, when its manifest says (versions
    /// committed by hand or by older code may not).
    pub fn job(&self) -> Option<Job> {
        self.info.get("job").and_then(|v| Job::deserialize(v).ok())
    }

    /// What the job decided about the version, when its manifest says.
    pub fn decision(&self) -> Option<Decision> {
        self.info
            .get("status")
            .and_then(|v| Decision::deserialize(v).ok())
    }
}

/// Where a version stands now: what `analytics models list` shows and what
/// `GET /models` tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Named by the live pointer.
    Live,
    /// In the live pointer's history (a rollback target).
    Previous,
    /// A retrain challenger that lost, never live since.
    Rejected,
    /// Anything else that is complete: kept, not live.
    Kept,
}

impl Standing {
    /// The standing of `v` under the model's live pointer.
    pub fn of(v: &VersionInfo, pointer: Option<&LivePointer>) -> Standing {
        match pointer {
            Some(p) if p.version == v.id => Standing::Live,
            Some(p) if p.history.contains(&v.id) => Standing::Previous,
            _ if v.manifest.decision() == Some(Decision::Rejected) => Standing::Rejected,
            _ => Standing::Kept,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Standing::Live => "live",
            Standing::Previous => "previous",
            Standing::Rejected => "rejected",
            Standing::Kept => "kept",
        }
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_choice_reads_what_training_writes_and_names_the_file_when_bad() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join(BEST_FILE),
            r#"{"best": "xgboost", "chosen_on": "validation", "as_of": "2025-12-31",
                "train_cutoff": "2025-07-04", "test_cutoff": "2025-10-02", "data_fingerprint": "fnv1a64:1"}"#,
        )
        .expect("write");
        let b = BestChoice::read(dir.path()).expect("read");
        assert_eq!(b.best, ModelKind::Xgboost);
        assert_eq!(b.artifact(dir.path()), dir.path().join("xgboost.msgpack"));
        std::fs::write(dir.path().join(BEST_FILE), r#"{"best": "lasso"}"#).expect("write");
        let e = BestChoice::read(dir.path())
            .expect_err("unknown kind")
            .to_string();
        assert!(e.contains("best.json") && e.contains("expected"), "{e}");
        let e = BestChoice::read(&dir.path().join("nowhere"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("best.json"), "{e}");
    }

    #[test]
    fn the_manifest_info_is_read_typed() {
        let m: Manifest = serde_json::from_value(serde_json::json!({
            "model": "customer_spend", "version": "v0002",
            "created_at": "2025-01-01T00:00:00Z", "code_version": "x", "files": {},
            "info": {"job": "retrain", "status": "rejected"}
        }))
        .expect("manifest");
        assert_eq!(m.job(), Some(Job::Retrain));
        assert_eq!(m.decision(), Some(Decision::Rejected));
        let bare = Manifest {
            info: serde_json::Value::Null,
            ..m
        };
        assert_eq!((bare.job(), bare.decision()), (None, None));
    }
}
