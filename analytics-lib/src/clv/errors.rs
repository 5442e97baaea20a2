//! Errors of the CLV models: every message says what was expected and what
//! was found.

use crate::error::DataError;

/// An error while summarising, fitting or predicting customer lifetime value.
#[derive(Debug, thiserror::Error)]
pub enum ClvError {
    #[error("clv: invalid parameter `{name}`: expected {expected}; found {found}")]
    InvalidParameter {
        name: &'static str,
        expected: String,
        found: String,
    },

    #[error("clv: {what}: expected {expected}; found {found}")]
    Data {
        what: &'static str,
        expected: String,
        found: String,
    },

    #[error(
        "clv: fitting the {model} model did not converge: {reason} (the likelihood is flat or the data has too few repeat customers)"
    )]
    Fit { model: &'static str, reason: String },

    #[error(transparent)]
    Source(#[from] DataError),
}

pub type Result<T, E = ClvError> = std::result::Result<T, E>;

impl ClvError {
    pub(crate) fn invalid(
        name: &'static str,
        expected: impl Into<String>,
        found: impl ToString,
    ) -> Self {
        ClvError::InvalidParameter {
            name,
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    pub(crate) fn data(
        what: &'static str,
        expected: impl Into<String>,
        found: impl ToString,
    ) -> Self {
        ClvError::Data {
            what,
            expected: expected.into(),
            found: found.to_string(),
        }
    }
}
