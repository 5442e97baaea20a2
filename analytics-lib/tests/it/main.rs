//! Integration tests of analytics-lib: one test binary, one module per area.

mod charts;
mod cleaning;
mod explore;
mod generator;
mod helpers;
mod kpi;
mod loader;
