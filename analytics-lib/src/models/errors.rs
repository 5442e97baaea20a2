//! Errors of the models: every message says what was expected and what was
//! found.

use std::path::PathBuf;

use crate::error::{Cause, DataError};

/// An error while configuring, fitting, using, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{model}: invalid hyperparameter `{name}`: expected {expected}; found {found}")]
    InvalidParameter {
        model: &'static str,
        name: &'static str,
        expected: String,
        found: String,
    },

    #[error("{model}: {what}: expected {expected}; found {found}")]
    Shape {
        model: &'static str,
        what: &'static str,
        expected: String,
        found: String,
    },

    #[error("{model}: fitting failed: {cause}")]
    Fit {
        model: &'static str,
        #[source]
        cause: Cause,
    },

    #[error("{model}: cannot load the saved model: {cause}")]
    Load {
        model: &'static str,
        #[source]
        cause: Cause,
    },

    #[error("{model}: prediction failed: {cause}")]
    Predict {
        model: &'static str,
        #[source]
        cause: Cause,
    },

    #[error(
        "the features do not match the model's: expected {expected} features [{expected_list}]; found {found} [{found_list}] ({first_difference})"
    )]
    FeatureMismatch {
        expected: usize,
        expected_list: String,
        found: usize,
        found_list: String,
        first_difference: String,
    },

    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a readable model artifact: expected {expected}; found {found}")]
    Corrupt {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error(
        "{path}: the model artifact is truncated: expected a complete MessagePack model file; found {bytes} bytes that end early ({cause})"
    )]
    Truncated {
        path: PathBuf,
        bytes: usize,
        #[source]
        cause: rmp_serde::decode::Error,
    },

    #[error(
        "{path}: unsupported model format version: expected {expected}; found {found} (re-train, or load it with the version of analytics-lib that wrote it)"
    )]
    FormatVersion {
        path: PathBuf,
        expected: u32,
        found: u32,
    },

    #[error("while encoding the model: {0}")]
    Encode(String),

    #[error(transparent)]
    Data(#[from] DataError),

    #[error(transparent)]
    Clv(#[from] crate::clv::ClvError),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn invalid(
        model: &'static str,
        name: &'static str,
        expected: impl Into<String>,
        found: impl ToString,
    ) -> Self {
        ModelError::InvalidParameter {
            model,
            name,
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    /// A feature-list mismatch, naming the first position that differs.
    pub fn feature_mismatch(expected: &[String], found: &[String]) -> Self {
        let first_difference = expected
            .iter()
            .zip(found)
            .enumerate()
            .find(|(_, (e, f))| e != f)
            .map(|(i, (e, f))| format!("position {i}: expected `{e}`, found `{f}`"))
            .unwrap_or_else(|| {
                if expected.len() == found.len() {
                    "the same names".to_string()
                } else if expected.len() > found.len() {
                    format!("missing `{}`", expected[found.len()])
                } else {
                    format!("unexpected `{}`", found[expected.len()])
                }
            });
        ModelError::FeatureMismatch {
            expected: expected.len(),
            expected_list: expected.join(", "),
            found: found.len(),
            found_list: found.join(", "),
            first_difference,
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ModelError::Io {
            path,
            action,
            source,
        }
    }
}
