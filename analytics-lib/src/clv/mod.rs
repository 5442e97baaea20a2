//! Customer lifetime value: BG/NBD (how many more purchases, and is the
//! customer still active) and Gamma-Gamma (how much per purchase), fitted by
//! maximum likelihood on the customers' purchase summary, as the Python
//! package `lifetimes` does (and tested against it).
//!
//! * [`CustomerSummary`]: lifetimes' `summary_data_from_transaction_data`
//!   with daily periods on completed orders before `as_of`;
//! * [`ClvParams`] (checked) → [`ClvModel`]: both fits (L-BFGS on
//!   log-parameters, log-space likelihoods with exact gradients);
//! * [`ClvModel::predict`]: per customer P(alive), expected purchases and
//!   average order value over the horizon, and the CLV discounted monthly;
//! * [`holdout_check`]: expected against actual purchases in a later period;
//! * [`clv_by_segment`]: CLV totals and means per customer segment.
//!
//! ```no_run
//! use analytics_lib::{clv, source::Source};
//! let sales = Source::parquet("data/curated").prepare()?.sales;
//! let (summary, model) = clv::fit_clv(&sales, None, &clv::ClvParams::new().horizon_days(365))?;
//! let predictions = model.predict(&summary)?;
//! println!("{}", model.report_json(&predictions));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod algorithm;
mod bgnbd;
mod by_segment;
mod chart;
mod errors;
mod gamma_gamma;
mod hyperparams;
mod optimize;
mod summary;

pub use algorithm::{
    CLV_FORMAT_VERSION, ClvModel, ClvPredictions, ClvValue, HoldoutCheck, HoldoutRow, fit_clv,
    holdout_check, holdout_check_last,
};
pub use bgnbd::BgNbd;
pub use by_segment::{SegmentClv, clv_by_segment, segment_clv_rows};
pub use chart::holdout_chart;
pub use errors::{ClvError, Result};
pub use gamma_gamma::GammaGamma;
pub use hyperparams::{
    ClvParams, DAYS_PER_MONTH, DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON_DAYS, MAX_HORIZON_DAYS,
};
pub use summary::CustomerSummary;
