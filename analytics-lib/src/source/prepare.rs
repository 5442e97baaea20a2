//! The one preparation path: load, validate, clean, join.
//!
//! Every caller that needs the curated data as lines (the CLI's jobs, the
//! retrain job, `serve`, the notebooks, the benchmark) calls
//! [`Source::prepare`], whatever the backend, and gets the cleaning report
//! with the cleaned tables and the per-line [`Sales`] view. Nothing else
//! loads and cleans on its own.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Result, Source};
use crate::clean::{self, CleaningReport};
use crate::data::CuratedFrames;
use crate::kpi::Sales;
use crate::process::{CpuUse, measure};

/// Wall time of each preparation step, in seconds, and the CPU time and
/// page faults of each (`None` where the system does not say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PrepareTimings {
    /// Read the four tables and validate them against the contract.
    pub load: f64,
    /// Final cleaning (every defect counted in the report).
    pub clean: f64,
    /// Join the cleaned tables into the per-line sales view.
    pub join: f64,
    pub load_cpu: Option<CpuUse>,
    pub clean_cpu: Option<CpuUse>,
    pub join_cpu: Option<CpuUse>,
}

/// The curated data as every job sees it.
///
/// The cleaned tables are as large as the sales view: a job that needs only
/// the view takes it out of the temporary (`source.prepare()?.sales`, or
/// `let Prepared { sales, report, .. } = source.prepare()?;`), so that the
/// tables are dropped at once instead of living as long as a binding.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// What final cleaning found and did.
    pub report: CleaningReport,
    /// The cleaned tables (what `analytics clean --out` writes).
    pub tables: CuratedFrames,
    /// The per-line sales view every KPI, feature and model reads.
    pub sales: Sales,
    /// Rows per cleaned table.
    pub rows: BTreeMap<&'static str, usize>,
    pub timings: PrepareTimings,
}

impl Prepared {
    /// Rows removed by final cleaning.
    pub fn defects_removed(&self) -> u64 {
        self.report.total_defects()
    }
}

/// Which step failed, for the caller's message ([`PrepareError`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrepareStep {
    Load,
    Clean,
    Join,
    /// Push-down: the customer aggregates computed in the warehouse.
    Aggregate,
}

impl std::fmt::Display for PrepareStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrepareStep::Load => "loading and validating the curated tables",
            PrepareStep::Clean => "cleaning",
            PrepareStep::Join => "joining the sales lines",
            PrepareStep::Aggregate => "computing the customer aggregates in the warehouse",
        })
    }
}

/// A preparation error: the step, what was being read, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("while {step} from {from}")]
pub struct PrepareError {
    pub step: PrepareStep,
    pub from: String,
    #[source]
    pub source: super::SourceError,
}

impl PrepareError {
    /// The cause as a source error (a [`super::SourceError::Data`] for bad
    /// content; connection, configuration or encoding otherwise).
    pub fn into_source(self) -> super::SourceError {
        self.source
    }
}

impl Source {
    /// Load, validate and clean the curated tables from this source, and
    /// join them into the per-line sales view: the first step of every job.
    pub fn prepare(&self) -> Result<Prepared, PrepareError> {
        let (cleaned, mut timings) = self.load_and_clean()?;
        let (tables, report, keys) = cleaned.into_parts();
        let (sales, join, join_cpu) = measure(|| Sales::join(&tables, keys));
        let sales = sales.map_err(|e| self.failed(PrepareStep::Join, e.into()))?;
        timings.join = join;
        timings.join_cpu = join_cpu;
        let rows = tables.row_counts().into_iter().collect();
        Ok(Prepared {
            report,
            tables,
            sales,
            rows,
            timings,
        })
    }

    /// Load, validate and clean, without the join (`analytics clean`, which
    /// writes the cleaned tables and needs no sales view).
    pub fn clean(&self) -> Result<clean::Cleaned, PrepareError> {
        Ok(self.load_and_clean()?.0)
    }

    fn load_and_clean(&self) -> Result<(clean::Cleaned, PrepareTimings), PrepareError> {
        let (raw, load, load_cpu) = measure(|| self.load_frames());
        let raw = raw.map_err(|e| self.failed(PrepareStep::Load, e))?;
        // The raw tables are consumed: each is freed once its clean copy
        // exists.
        let (cleaned, clean, clean_cpu) = measure(|| clean::clean_owned(raw));
        let cleaned = cleaned.map_err(|e| self.failed(PrepareStep::Clean, e.into()))?;
        let timings = PrepareTimings {
            load,
            clean,
            load_cpu,
            clean_cpu,
            ..PrepareTimings::default()
        };
        Ok((cleaned, timings))
    }

    fn failed(&self, step: PrepareStep, source: super::SourceError) -> PrepareError {
        PrepareError {
            step,
            from: self.describe(),
            source,
        }
    }
}

/// What a job (train, evaluate, retrain, `serve`) computes from: the
/// prepared lines of a Parquet folder, or the aggregates Snowflake
/// computed at the job's cutoffs ([`Source::job_input`]). Either gives
/// the cleaning report, the cleaned row counts and the customer features
/// ([`crate::features::FeatureData`]).
#[cfg(feature = "models")]
pub enum JobInput {
    /// The cleaned lines, here.
    Local(Box<Prepared>),
    /// Aggregates computed in the warehouse: no line came back.
    #[cfg(feature = "snowflake")]
    Warehouse(Box<super::WarehouseFeatures>),
}

#[cfg(feature = "models")]
impl JobInput {
    pub fn report(&self) -> &CleaningReport {
        match self {
            JobInput::Local(p) => &p.report,
            #[cfg(feature = "snowflake")]
            JobInput::Warehouse(w) => &w.summary.report,
        }
    }

    /// Rows per cleaned table.
    pub fn rows(&self) -> BTreeMap<&'static str, usize> {
        match self {
            JobInput::Local(p) => p.rows.clone(),
            #[cfg(feature = "snowflake")]
            JobInput::Warehouse(w) => w
                .summary
                .report
                .rows
                .iter()
                .map(|(t, r)| (*t, r.output as usize))
                .collect(),
        }
    }

    /// The customer features of this data.
    pub fn features(&self) -> &dyn crate::features::FeatureData {
        match self {
            JobInput::Local(p) => &p.sales,
            #[cfg(feature = "snowflake")]
            JobInput::Warehouse(w) => w.as_ref(),
        }
    }

    /// The day after the last order.
    pub fn default_as_of(&self) -> chrono::NaiveDate {
        self.features().default_as_of()
    }

    /// The per-line sales, when they were read (the Parquet path).
    pub fn sales(&self) -> Option<&Sales> {
        match self {
            JobInput::Local(p) => Some(&p.sales),
            #[cfg(feature = "snowflake")]
            JobInput::Warehouse(_) => None,
        }
    }
}

#[cfg(feature = "models")]
impl Source {
    /// The data of a job at `as_of` (default: the day after the last
    /// order): on Parquet, [`Source::prepare`]; on Snowflake, the cleaning
    /// report, the customer aggregates at `cutoffs(as_of)` and the CLV
    /// purchase summary at `as_of`, computed in the warehouse (one row per
    /// customer and cutoff comes back, and one per customer).
    pub fn job_input(
        &self,
        as_of: Option<chrono::NaiveDate>,
        cutoffs: impl Fn(chrono::NaiveDate) -> Vec<chrono::NaiveDate>,
    ) -> Result<JobInput, PrepareError> {
        match self {
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => {
                let summary = s
                    .summary()
                    .map_err(|e| self.failed(PrepareStep::Clean, e))?;
                let at = as_of.unwrap_or(summary.default_as_of);
                let w = s
                    .warehouse_features(summary, &cutoffs(at))
                    .map_err(|e| self.failed(PrepareStep::Aggregate, e))?;
                // The CLV model's input, one row per customer (train fits it
                // on every purchase before `at`).
                let clv = s
                    .clv_summary(at)
                    .map_err(|e| self.failed(PrepareStep::Aggregate, e))?;
                Ok(JobInput::Warehouse(Box::new(w.with_clv_summary(clv))))
            }
            _ => {
                let _ = (as_of, &cutoffs);
                Ok(JobInput::Local(Box::new(self.prepare()?)))
            }
        }
    }
}

/// What `serve` keeps and builds from a source: every customer's feature
/// rows at the reference date (the lookups) and what its dashboard and CLV
/// answers are built from. On Parquet the lines are prepared here and the
/// dashboard is built from them; on Snowflake nothing finer than a
/// customer crosses: the feature rows, the segmentation features at the
/// reference date and [`crate::segments::MIGRATION_DAYS`] before it, and
/// the CLV purchase summary are computed in the warehouse (one row per
/// customer and date), and the dashboard asks the warehouse per view
/// ([`super::dashboard`]).
#[cfg(feature = "models")]
pub struct ServeInput {
    pub rows: crate::lookup::CustomerRows,
    pub data: ServeData,
    /// Final cleaning's report.
    pub report: CleaningReport,
    /// Fingerprint of the customers' feature rows (`fnv1a64:…`; the same
    /// data gives the same value from either backend).
    pub fingerprint: String,
}

/// The rest of a [`ServeInput`], by backend.
#[cfg(feature = "models")]
pub enum ServeData {
    /// The completed sales lines (Parquet).
    Sales(Sales),
    /// Per-customer aggregates computed in the warehouse (Snowflake), with
    /// the CLV purchase summary at the reference date.
    #[cfg(feature = "snowflake")]
    Warehouse(Box<super::WarehouseFeatures>),
}

#[cfg(feature = "models")]
impl ServeData {
    /// What the dashboard's segments are computed from.
    pub fn feature_data(&self) -> &dyn crate::features::FeatureData {
        match self {
            ServeData::Sales(s) => s,
            #[cfg(feature = "snowflake")]
            ServeData::Warehouse(features) => features.as_ref(),
        }
    }

    /// Rows held (sales lines; customers and dates).
    pub fn rows(&self) -> usize {
        match self {
            ServeData::Sales(s) => s.lines.height(),
            #[cfg(feature = "snowflake")]
            ServeData::Warehouse(features) => features
                .cutoffs()
                .iter()
                .map(|&c| features.customers_at(c))
                .sum(),
        }
    }
}

#[cfg(feature = "models")]
impl Source {
    /// [`ServeInput`] of this source, at the day after its last order.
    pub fn serve_input(&self) -> Result<ServeInput, PrepareError> {
        use crate::features::FeatureData;
        let rows_of = |data: &dyn FeatureData, step| {
            let f = data
                .customer_features(data.default_as_of(), None)
                .map_err(|e| self.failed(step, e.into()))?;
            let fingerprint = f.fingerprint().map_err(|e| self.failed(step, e.into()))?;
            let rows = crate::lookup::CustomerRows::from_features(&f)
                .map_err(|e| self.failed(step, e.into()))?;
            Ok::<_, PrepareError>((rows, fingerprint))
        };
        match self {
            #[cfg(feature = "snowflake")]
            Source::Snowflake(s) => {
                let summary = s
                    .summary()
                    .map_err(|e| self.failed(PrepareStep::Clean, e))?;
                let at = summary.default_as_of;
                let earlier = at - chrono::Duration::days(crate::segments::MIGRATION_DAYS);
                let w = s
                    .warehouse_features(summary, &[earlier, at])
                    .map_err(|e| self.failed(PrepareStep::Aggregate, e))?;
                let clv = s
                    .clv_summary(at)
                    .map_err(|e| self.failed(PrepareStep::Aggregate, e))?;
                let (rows, fingerprint) = rows_of(&w, PrepareStep::Aggregate)?;
                Ok(ServeInput {
                    rows,
                    report: w.summary.report.clone(),
                    data: ServeData::Warehouse(Box::new(w.with_clv_summary(clv))),
                    fingerprint,
                })
            }
            _ => {
                let p = self.prepare()?;
                let (rows, fingerprint) = rows_of(&p.sales, PrepareStep::Join)?;
                Ok(ServeInput {
                    rows,
                    data: ServeData::Sales(p.sales),
                    report: p.report,
                    fingerprint,
                })
            }
        }
    }
}
