//! # analytics-lib
//!
//! Everything analytical about the curated sales data, in one library that
//! the `analytics` command line, the notebooks, the retrain job and the HTTP
//! service all call:
//!
//! * [`contract`]: the four curated tables, as code;
//! * [`data`]: reading them from Parquet ([`data::loader`]) and generating
//!   realistic Brazilian e-commerce data ([`data::generate`]);
//! * [`clean`]: final cleaning with a report of every defect found;
//! * [`source`]: where the tables come from (Parquet or Snowflake) and
//!   [`source::Source::prepare`], the one path that loads, validates, cleans
//!   and joins them for every caller.
//!
//! ```no_run
//! use analytics_lib::source::Source;
//! // Load, validate, clean and join: the first step of every job.
//! let prepared = Source::parquet("data/curated").prepare()?;
//! println!("{}", prepared.report);
//! # Ok::<(), analytics_lib::source::PrepareError>(())
//! ```

#[cfg(feature = "models")]
mod atomic;
pub mod calendar;
pub mod charts;
pub mod clean;
#[cfg(feature = "models")]
pub mod clv;
pub mod contract;
pub mod dashboard;
pub mod data;
pub mod error;
pub mod explore;
#[cfg(feature = "models")]
pub mod features;
#[cfg(feature = "models")]
pub mod forecast;
pub mod kpi;
pub mod locale;
#[cfg(feature = "models")]
pub mod lookup;
#[cfg(feature = "models")]
pub mod models;
pub mod notebook;
pub mod process;
#[cfg(feature = "models")]
pub mod registry;
#[cfg(feature = "segments")]
pub mod retrain;
#[cfg(feature = "segments")]
pub mod segments;
pub mod source;
mod sums;
#[cfg(test)]
mod testing;
#[cfg(feature = "tracking")]
pub mod tracking;

/// Re-exported for dates in notebooks and callers.
pub use chrono;
/// Re-exported so that notebooks and callers use the library's own polars.
pub use polars;
