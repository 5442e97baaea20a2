//! Where the curated tables come from: one interface, two backends.
//!
//! * **Parquet** (the default): a folder of curated Parquet files, read by
//!   [`crate::data::loader`].
//! * **Snowflake** (cargo feature `snowflake`, on by default): the four tables
//!   in one Snowflake schema, read through `snowflake-api` as Arrow record
//!   batches and normalised to the contract's types ([`normalise`]).
//!
//! Everything that reads curated data asks a [`Source`] for it:
//!
//! ```no_run
//! use analytics_lib::source::{Source, SourceSettings};
//! # fn f(data: Option<&std::path::Path>) -> anyhow::Result<()> {
//! let settings = SourceSettings::from_env()?; // APP_SOURCE, APP_SNOWFLAKE_*
//! let source = Source::from_settings(&settings, data)?; // --data DIR wins
//! let prepared = source.prepare()?;             // loaded, validated, cleaned, joined
//! println!("{} defects removed", prepared.defects_removed());
//! # Ok(()) }
//! ```
//!
//! The heavy aggregations have a second path, **push-down**: on Snowflake
//! [`Source::kpis`], [`Source::monthly_revenue`],
//! [`Source::customer_features`], [`Source::cleaning_report`] and
//! [`Source::job_input`] (what the train, evaluate and retrain jobs and
//! `serve` compute from) run as SQL inside the warehouse and only
//! aggregated rows come back; on Parquet they load, clean
//! ([`crate::clean`]) and compute with polars. The SQL starts with final
//! cleaning ([`cleaning`]: the same rules, order and counting as
//! `clean.rs`), so both paths give the same report and the same numbers on
//! data with defects. [`Source::fetched`] says what came back.
//!
//! Secrets never appear in `Debug` output, serialised configuration or error
//! messages ([`Secret`], and every Snowflake error is scrubbed of them).

#[cfg(feature = "snowflake")]
pub mod cleaning;
mod config;
#[cfg(all(feature = "snowflake", feature = "segments"))]
pub mod dashboard;
#[cfg(all(feature = "snowflake", feature = "test-hooks"))]
pub mod emulator;
#[cfg(feature = "snowflake")]
pub mod normalise;
mod prepare;
#[cfg(feature = "snowflake")]
pub mod pushdown;
#[cfg(feature = "snowflake")]
pub mod snowflake;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[cfg(feature = "models")]
use chrono::NaiveDate;

pub use config::{
    DEFAULT_DATA_DIR, SOURCE_ENV, Secret, SnowflakeAuth, SnowflakeConfig, SnowflakeSettings,
    SourceConfig, SourceKind, SourceSettings,
};
#[cfg(feature = "models")]
pub use prepare::{JobInput, ServeData, ServeInput};
pub use prepare::{PrepareError, PrepareStep, PrepareTimings, Prepared};
#[cfg(feature = "snowflake")]
pub use pushdown::Summary;
#[cfg(all(feature = "snowflake", feature = "models"))]
pub use pushdown::WarehouseFeatures;
#[cfg(feature = "snowflake")]
pub use snowflake::SnowflakeSource;

use crate::data::{CuratedData, CuratedFrames};
use crate::error::DataError;
use crate::kpi::{Filter, KpiOptions, Kpis, Sales};

/// An error while configuring or reading a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Data(#[from] DataError),

    #[error("source configuration: {name} ({env}): expected {expected}; found {found}")]
    Config {
        name: &'static str,
        env: &'static str,
        expected: String,
        found: String,
    },

    #[error("snowflake: while {action}: {message}")]
    Snowflake { action: String, message: String },

    #[error("snowflake result, column `{column}`: expected {expected}; found {found}")]
    Encoding {
        column: String,
        expected: String,
        found: String,
    },
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// What a source's queries brought back: queries run, rows, and the size
/// of the Arrow data received (the used bytes of the decoded record
/// batches' buffers: about what crossed the wire before compression).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fetched {
    pub queries: u64,
    pub rows: u64,
    pub bytes: u64,
}

impl Fetched {
    /// What was fetched since `earlier` (a previous reading of the same source).
    pub fn since(self, earlier: Fetched) -> Fetched {
        Fetched {
            queries: self.queries.saturating_sub(earlier.queries),
            rows: self.rows.saturating_sub(earlier.rows),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

impl std::fmt::Display for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows ({:.1} MiB of Arrow data) in {} queries",
            self.rows,
            self.bytes as f64 / (1024.0 * 1024.0),
            self.queries
        )
    }
}

/// What every backend provides.
pub trait CuratedSource {
    /// The four tables in the contract's schema.
    fn load(&self) -> Result<CuratedData>;
    /// A one-line description for logs and reports (never a secret).
    fn describe(&self) -> String;
}

/// The Parquet folder backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParquetSource {
    pub dir: PathBuf,
}

impl ParquetSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ParquetSource { dir: dir.into() }
    }
}

impl CuratedSource for ParquetSource {
    fn load(&self) -> Result<CuratedData> {
        Ok(crate::data::loader::load(&self.dir)?)
    }

    fn describe(&self) -> String {
        format!("parquet folder {}", self.dir.display())
    }
}

/// A configured source: the one entry point for reading curated data.
pub enum Source {
    Parquet(ParquetSource),
    #[cfg(feature = "snowflake")]
    Snowflake(Box<SnowflakeSource>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({})", self.describe())
    }
}

impl Source {
    /// The Parquet folder `dir` (what `--data DIR` opens).
    pub fn parquet(dir: impl Into<PathBuf>) -> Self {
        Source::Parquet(ParquetSource::new(dir))
    }

    /// Open the configured source. For Snowflake this prepares the client;
    /// the login happens on the first query.
    pub fn from_config(cfg: &SourceConfig) -> Result<Self> {
        match cfg {
            SourceConfig::Parquet { dir } => Ok(Source::Parquet(ParquetSource::new(dir))),
            #[cfg(feature = "snowflake")]
            SourceConfig::Snowflake(sf) => {
                // Test builds only: the local emulator when its port is given.
                #[cfg(feature = "test-hooks")]
                if let Some(port) = emulator::port_from_env()? {
                    return Ok(Source::Snowflake(Box::new(
                        SnowflakeSource::connect_with_http_client(sf, emulator::client(port)?)?,
                    )));
                }
                Ok(Source::Snowflake(Box::new(SnowflakeSource::connect(sf)?)))
            }
            #[cfg(not(feature = "snowflake"))]
            SourceConfig::Snowflake(_) => Err(SourceError::Config {
                name: "source",
                env: "APP_SOURCE",
                expected: "parquet (this build has no `snowflake` feature)".into(),
                found: "snowflake".into(),
            }),
        }
    }

    /// [`SourceSettings::resolve`] then [`Source::from_config`].
    pub fn from_settings(settings: &SourceSettings, data: Option<&Path>) -> Result<Self> {
        Self::from_config(&settings.resolve(data)?)
    }

    fn backend(&self) -> &dyn CuratedSource {
        match self {
            Source::Parquet(p) => p,
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => s.as_ref(),
        }
    }

    /// The four tables in the contract's schema.
    pub fn load(&self) -> Result<CuratedData> {
        self.backend().load()
    }

    /// The four tables, materialised.
    pub fn load_frames(&self) -> Result<CuratedFrames> {
        Ok(self.load()?.collect()?)
    }

    pub fn describe(&self) -> String {
        self.backend().describe()
    }

    /// What this source's queries brought back so far (Snowflake; `None`
    /// for a Parquet folder, which is read whole).
    pub fn fetched(&self) -> Option<Fetched> {
        match self {
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => Some(s.fetched()),
            _ => None,
        }
    }

    /// Final cleaning's report: counted in the warehouse on Snowflake
    /// (no table is read), by [`Source::clean`] on Parquet.
    pub fn cleaning_report(&self) -> Result<crate::clean::CleaningReport> {
        match self {
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => Ok(s.summary()?.report),
            _ => Ok(self.clean().map_err(PrepareError::into_source)?.report),
        }
    }

    /// The local path of the aggregations: [`Source::prepare`]'s sales view.
    pub fn local_sales(&self) -> Result<Sales> {
        Ok(self.prepare().map_err(PrepareError::into_source)?.sales)
    }

    /// The headline KPIs (`analytics kpis`): pushed down to Snowflake, local on Parquet.
    pub fn kpis(&self, filter: &Filter, opts: &KpiOptions) -> Result<Kpis> {
        match self {
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => s.kpis(filter, opts),
            _ => Ok(crate::kpi::kpis(&self.local_sales()?, filter, opts)?),
        }
    }

    /// Revenue per calendar month (`YYYY-MM`): pushed down to Snowflake, local on Parquet.
    pub fn monthly_revenue(&self, filter: &Filter) -> Result<BTreeMap<String, f64>> {
        match self {
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => s.monthly_revenue(filter),
            _ => Ok(crate::kpi::monthly_revenue(&self.local_sales()?, filter)?),
        }
    }

    /// Customer-spend features at `cutoff` ([`crate::features::customer_features`]):
    /// pushed down to Snowflake, local on Parquet.
    #[cfg(feature = "models")]
    pub fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<crate::features::CustomerFeatures> {
        match self {
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => s.customer_features(cutoff, categories),
            _ => Ok(crate::features::customer_features(
                &self.local_sales()?,
                cutoff,
                categories,
            )?),
        }
    }
}
