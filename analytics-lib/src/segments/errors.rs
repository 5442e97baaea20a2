//! Errors of customer segmentation: every message says what was expected and
//! what was found.
//!
//! Problems with a saved file (unreadable, truncated, altered, another format
//! version, another feature list) are [`ModelError`]s, the same ones the
//! regression models give, wrapped in [`SegmentError::Artifact`].

use crate::error::DataError;
use crate::models::ModelError;

/// An error while configuring, fitting, using, saving or loading a segmentation.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{algorithm}: invalid parameter `{name}`: expected {expected}; found {found}")]
    InvalidParameter {
        algorithm: &'static str,
        name: &'static str,
        expected: String,
        found: String,
    },

    /// The data or a request does not fit (shape, missing or unknown
    /// feature, non-finite value).
    #[error("{what}: expected {expected}; found {found}")]
    Input {
        what: &'static str,
        expected: String,
        found: String,
    },

    #[error("{algorithm}: fitting failed: {cause}")]
    Fit {
        algorithm: &'static str,
        #[source]
        cause: crate::error::Cause,
    },

    /// One record of a batch failed.
    #[error("record {index}: {source}")]
    Record {
        index: usize,
        #[source]
        source: Box<SegmentError>,
    },

    #[error(transparent)]
    Artifact(#[from] ModelError),

    #[error(transparent)]
    Data(#[from] DataError),
}

pub type Result<T, E = SegmentError> = std::result::Result<T, E>;

impl SegmentError {
    pub(crate) fn invalid(
        algorithm: &'static str,
        name: &'static str,
        expected: impl Into<String>,
        found: impl ToString,
    ) -> Self {
        SegmentError::InvalidParameter {
            algorithm,
            name,
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    pub(crate) fn input(
        what: &'static str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        SegmentError::Input {
            what,
            expected: expected.into(),
            found: found.into(),
        }
    }
}
