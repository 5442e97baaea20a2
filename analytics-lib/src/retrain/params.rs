//! Pipeline parameters from YAML (`params.yaml`, also read by DVC).
//!
//! ```yaml
//! train:                       # analytics_lib::models::TrainParams
//!   holdout_seed: 42
//!   holdout_share: 0.2
//!   candidates:                # one entry per candidate, tagged by kind
//!     - linear: {}
//!     - random_forest: {n_trees: 200, max_depth: 12}
//!     - xgboost: {n_rounds: 300}
//! segments:                    # analytics_lib::segments::SegmentParams
//!   category_mix: true
//!   kmeans: {k_min: 3, k_max: 8, seed: 42}
//! ```
//!
//! Fields are the types' serde names. A missing key takes its default, at
//! every level (a candidate lists only the hyperparameters it changes). An
//! unknown key is an error naming the key, where it is, and the keys known
//! there. Other top-level keys (sections of other DVC stages) are ignored.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::models::TrainParams;
use crate::segments::SegmentParams;

/// The sections this library reads.
pub const SECTIONS: [&str; 2] = ["train", "segments"];

/// What `analytics train` and `analytics retrain` fit.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PipelineParams {
    pub train: TrainParams,
    pub segments: SegmentParams,
}

/// A parameter file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error("cannot read the parameter file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}: not valid YAML: {cause}")]
    Yaml {
        source_name: String,
        #[source]
        cause: serde_yaml_ng::Error,
    },
    #[error("{source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
}

fn keys(map: &Map<String, Value>) -> String {
    map.keys()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The single key of a `{kind: {...}}` enum value.
fn tag(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) if m.len() == 1 => m.keys().next().map(String::as_str),
        _ => None,
    }
}

/// `user` laid over `default`: objects merge key by key (unknown keys are
/// errors), lists of tagged enums take each element's defaults from the
/// default element with the same tag, anything else is replaced.
fn overlay(default: &Value, user: &Value, at: &str) -> Result<Value, String> {
    match (default, user) {
        (Value::Object(d), Value::Object(u)) => {
            let mut out = d.clone();
            for (k, v) in u {
                let here = format!("{at}.{k}");
                let Some(dv) = d.get(k) else {
                    return Err(format!(
                        "unknown key `{here}`; the keys known under `{at}` are {}",
                        keys(d)
                    ));
                };
                out.insert(k.clone(), overlay(dv, v, &here)?);
            }
            Ok(Value::Object(out))
        }
        (Value::Array(d), Value::Array(u))
            if !d.is_empty() && d.iter().all(|e| tag(e).is_some()) =>
        {
            let tags: Vec<&str> = d.iter().filter_map(tag).collect();
            let mut out = Vec::with_capacity(u.len());
            for (i, e) in u.iter().enumerate() {
                let here = format!("{at}[{i}]");
                // `- linear` (a bare kind) means the kind with its defaults.
                let e = match e {
                    Value::String(s) => Value::Object(Map::from_iter([(s.clone(), Value::Null)])),
                    other => other.clone(),
                };
                let Some(t) = tag(&e) else {
                    return Err(format!(
                        "`{here}`: expected one kind as a single key ({}), e.g. `- xgboost: {{n_rounds: 300}}`; found {e}",
                        tags.join(", ")
                    ));
                };
                let Some(de) = d.iter().find(|x| tag(x) == Some(t)) else {
                    return Err(format!(
                        "unknown kind `{t}` at `{here}`; the known kinds are {}",
                        tags.iter()
                            .map(|t| format!("`{t}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                };
                let body = match &e[t] {
                    Value::Null => Value::Object(Map::new()),
                    v => v.clone(),
                };
                let merged = overlay(&de[t], &body, &format!("{here}.{t}"))?;
                out.push(Value::Object(Map::from_iter([(t.to_string(), merged)])));
            }
            Ok(Value::Array(out))
        }
        (_, u) => Ok(u.clone()),
    }
}

fn section<T>(root: &Map<String, Value>, name: &str) -> Result<T, String>
where
    T: Default + Serialize + serde::de::DeserializeOwned,
{
    let default = serde_json::to_value(T::default()).map_err(|e| e.to_string())?;
    let Some(user) = root.get(name) else {
        return Ok(T::default());
    };
    if user.is_null() {
        return Ok(T::default());
    }
    if !user.is_object() {
        return Err(format!(
            "`{name}`: expected a mapping of {name} parameters ({}); found {user}",
            default.as_object().map(keys).unwrap_or_default()
        ));
    }
    let merged = overlay(&default, user, name)?;
    serde_json::from_value(merged).map_err(|e| format!("`{name}`: {e}"))
}

impl PipelineParams {
    /// Parse YAML text; `source_name` names it in errors (e.g. the path).
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Self, ParamsError> {
        let invalid = |reason: String| ParamsError::Invalid {
            source_name: source_name.to_string(),
            reason,
        };
        let value: Value = serde_yaml_ng::from_str(text).map_err(|e| ParamsError::Yaml {
            source_name: source_name.to_string(),
            cause: e,
        })?;
        let root = match value {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                return Err(invalid(format!(
                    "expected a mapping with the sections {}; found {other}",
                    SECTIONS.map(|s| format!("`{s}`")).join(", ")
                )));
            }
        };
        let params = PipelineParams {
            train: section(&root, "train").map_err(invalid)?,
            segments: section(&root, "segments").map_err(invalid)?,
        };
        params
            .train
            .check()
            .map_err(|e| invalid(format!("`train`: {e}")))?;
        params
            .segments
            .check()
            .map_err(|e| invalid(format!("`segments`: {e}")))?;
        Ok(params)
    }

    /// Read and parse a YAML file.
    pub fn load(path: &Path) -> Result<Self, ParamsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// [`PipelineParams::load`] of `path`, or the defaults without one.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, ParamsError> {
        path.map(Self::load).unwrap_or_else(|| Ok(Self::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ForestParams, Hyperparameters};

    #[test]
    fn missing_keys_default_and_candidates_merge() {
        let p = PipelineParams::from_yaml(
            "train:\n  candidates:\n    - linear\n    - random_forest: {n_trees: 7}\nsegments:\n  kmeans: {k_min: 3}\nother_stage: {x: 1}\n",
            "p.yaml",
        )
        .expect("parse");
        assert_eq!(p.train.candidates.len(), 2);
        assert_eq!(
            p.train.candidates[1],
            Hyperparameters::RandomForest(ForestParams::default().n_trees(7))
        );
        assert_eq!(p.train.holdout_seed, TrainParams::default().holdout_seed);
        assert_eq!(p.segments.kmeans.k_min, 3);
        assert_eq!(
            p.segments.kmeans.k_max,
            SegmentParams::default().kmeans.k_max
        );
        assert_eq!(
            PipelineParams::from_yaml("", "empty").expect("empty"),
            PipelineParams::default()
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_known_ones() {
        let e = PipelineParams::from_yaml("segments:\n  kmeans: {k_mni: 3}\n", "p.yaml")
            .expect_err("typo")
            .to_string();
        assert!(
            e.contains("p.yaml") && e.contains("`segments.kmeans.k_mni`"),
            "{e}"
        );
        assert!(e.contains("`k_min`") && e.contains("`k_max`"), "{e}");
        let e = PipelineParams::from_yaml(
            "train:\n  candidates:\n    - random_forest: {trees: 3}\n",
            "p.yaml",
        )
        .expect_err("typo")
        .to_string();
        assert!(
            e.contains("`train.candidates[0].random_forest.trees`") && e.contains("`n_trees`"),
            "{e}"
        );
        let e = PipelineParams::from_yaml("train:\n  candidates:\n    - lasso: {}\n", "p.yaml")
            .expect_err("kind")
            .to_string();
        assert!(e.contains("`lasso`") && e.contains("`xgboost`"), "{e}");
        let e = PipelineParams::from_yaml("train:\n  holdout_share: 2\n", "p.yaml")
            .expect_err("range")
            .to_string();
        assert!(e.contains("holdout_share"), "{e}");
    }
}
