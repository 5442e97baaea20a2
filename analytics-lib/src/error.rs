//! Errors of the data layer. Every message says what was expected and what
//! was found, and names the table and column it is about.

use std::path::PathBuf;

use polars::prelude::PolarsError;

/// An error while locating, reading or validating the curated tables.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "{dir}: table `{table}` not found: expected a file {table}.parquet or a folder {table}/ of .parquet part files; found {found}"
    )]
    MissingTable {
        table: &'static str,
        dir: PathBuf,
        found: String,
    },

    #[error("{dir}: the data directory does not exist or cannot be read: {cause}")]
    MissingDirectory {
        dir: PathBuf,
        #[source]
        cause: std::io::Error,
    },

    #[error(
        "{table}: required column `{column}` is missing: expected a column of type {expected}; found columns [{found}]"
    )]
    MissingColumn {
        table: &'static str,
        column: &'static str,
        expected: &'static str,
        found: String,
    },

    #[error("{table}: column `{column}` has type {found}, expected {expected}")]
    WrongType {
        table: &'static str,
        column: &'static str,
        expected: &'static str,
        found: String,
    },

    #[error(
        "{table} ({path}): cannot read the file: expected a valid Parquet file; found {reason}"
    )]
    Unreadable {
        table: &'static str,
        path: PathBuf,
        reason: String,
    },

    #[error("{table} ({path}): the table is empty: expected at least one row; found 0 rows")]
    EmptyTable { table: &'static str, path: PathBuf },

    #[error("{table}: while {action}: {source}")]
    Polars {
        table: &'static str,
        action: &'static str,
        #[source]
        source: PolarsError,
    },

    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid argument `{name}`: expected {expected}; found {found}")]
    InvalidArgument {
        name: &'static str,
        expected: String,
        found: String,
    },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// The underlying error of a failure (a library's error, or a message when
/// there is none), kept as the error's `source()` rather than flattened to
/// text; displays print it once, in their message.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error and its causes on one line (`error: cause: cause`), each said
/// once: the errors here print their cause in their own message and keep it
/// as `source()` too, so a cause whose text the line already holds is not
/// repeated.
pub fn chain_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        next = cause.source();
    }
    msg
}

impl DataError {
    pub(crate) fn polars(
        table: &'static str,
        action: &'static str,
    ) -> impl FnOnce(PolarsError) -> Self {
        move |source| DataError::Polars {
            table,
            action,
            source,
        }
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| DataError::Io {
            path,
            action,
            source,
        }
    }
}
