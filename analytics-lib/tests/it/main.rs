//! Integration tests of analytics-lib: one test binary, one module per area.

mod charts;
mod cleaning;
mod cli;
#[cfg(feature = "models")]
mod clv;
mod explore;
#[cfg(feature = "models")]
mod forecast;
#[cfg(feature = "models")]
mod forest;
mod generator;
mod helpers;
mod import;
mod kpi;
mod loader;
mod lookup;
#[cfg(feature = "models")]
mod models;
mod prepare;
#[cfg(feature = "segments")]
mod registry_cli;
#[cfg(feature = "segments")]
mod retrain;
#[cfg(all(feature = "segments", feature = "snowflake"))]
mod schedule;
#[cfg(feature = "segments")]
mod segments;
#[cfg(feature = "snowflake")]
mod snowflake;
mod tracking;
