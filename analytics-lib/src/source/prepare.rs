//! The one preparation path: load, validate, clean, join.
//!
//! Every caller that needs the curated data as lines (the CLI's jobs, the
//! retrain job, `serve`, the notebooks, the benchmark) calls
//! [`Source::prepare`], whatever the backend, and gets the cleaning report
//! with the cleaned tables and the per-line [`Sales`] view. Nothing else
//! loads and cleans on its own.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::{Result, Source};
use crate::clean::{self, CleaningReport};
use crate::data::CuratedFrames;
use crate::kpi::Sales;

/// Wall time of each preparation step, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PrepareTimings {
    /// Read the four tables and validate them against the contract.
    pub load: f64,
    /// Final cleaning (every defect counted in the report).
    pub clean: f64,
    /// Join the cleaned tables into the per-line sales view.
    pub join: f64,
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
}

impl std::fmt::Display for PrepareStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrepareStep::Load => "loading and validating the curated tables",
            PrepareStep::Clean => "cleaning",
            PrepareStep::Join => "joining the sales lines",
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
        let (cleaned, load, clean) = self.load_and_clean()?;
        let (tables, report, keys) = cleaned.into_parts();
        let t = Instant::now();
        let sales =
            Sales::join(&tables, &keys).map_err(|e| self.failed(PrepareStep::Join, e.into()))?;
        drop(keys);
        let join = t.elapsed().as_secs_f64();
        let rows = tables.row_counts().into_iter().collect();
        Ok(Prepared {
            report,
            tables,
            sales,
            rows,
            timings: PrepareTimings { load, clean, join },
        })
    }

    /// Load, validate and clean, without the join (`analytics clean`, which
    /// writes the cleaned tables and needs no sales view).
    pub fn clean(&self) -> Result<clean::Cleaned, PrepareError> {
        Ok(self.load_and_clean()?.0)
    }

    fn load_and_clean(&self) -> Result<(clean::Cleaned, f64, f64), PrepareError> {
        let t = Instant::now();
        let raw = self
            .load_frames()
            .map_err(|e| self.failed(PrepareStep::Load, e))?;
        let load = t.elapsed().as_secs_f64();
        let t = Instant::now();
        // The raw tables are consumed: each is freed once its clean copy
        // exists.
        let cleaned =
            clean::clean_owned(raw).map_err(|e| self.failed(PrepareStep::Clean, e.into()))?;
        Ok((cleaned, load, t.elapsed().as_secs_f64()))
    }

    fn failed(&self, step: PrepareStep, source: super::SourceError) -> PrepareError {
        PrepareError {
            step,
            from: self.describe(),
            source,
        }
    }
}
