//! What the CLV models predict over, and how hard the fit tries: checked
//! before anything is fitted (linfa's `Params::new()….check()?.fit(…)`).

use serde::{Deserialize, Serialize};

use super::algorithm::ClvModel;
use super::errors::{ClvError, Result};
use super::summary::CustomerSummary;

/// Default horizon of the expected purchases and the CLV (days).
pub const DEFAULT_HORIZON_DAYS: u32 = 365;
/// Default monthly discount rate of the CLV (lifetimes' default).
pub const DEFAULT_DISCOUNT_RATE: f64 = 0.01;
/// Days of one discounting period (lifetimes' `freq="D"`: 30 days a month).
pub const DAYS_PER_MONTH: f64 = 30.0;
/// Longest horizon accepted: ten years.
pub const MAX_HORIZON_DAYS: u32 = 3_650;

/// Parameters of [`ClvModel`]: the horizon and discounting of the
/// predictions, and the optimiser's limits.
///
/// ```
/// # use analytics_lib::clv::ClvParams;
/// assert!(ClvParams::new().horizon_days(180).discount_rate(0.02).check().is_ok());
/// assert!(ClvParams::new().horizon_days(0).check().is_err());
/// assert!(ClvParams::new().discount_rate(-0.1).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClvParams {
    /// Days ahead of `as_of` that expected purchases and CLV cover (1..=3650).
    pub horizon_days: u32,
    /// Monthly discount rate of future revenue, in [0, 1): a month `k`
    /// (30 days) ahead is divided by `(1 + rate)^k`.
    pub discount_rate: f64,
    /// Most iterations of the optimiser, per model (≥ 10).
    pub max_iterations: usize,
    /// Convergence: the largest gradient component of the mean
    /// log-likelihood with respect to the log-parameters, in (0, 1e-3].
    pub tolerance: f64,
}

impl Default for ClvParams {
    fn default() -> Self {
        ClvParams {
            horizon_days: DEFAULT_HORIZON_DAYS,
            discount_rate: DEFAULT_DISCOUNT_RATE,
            max_iterations: 1_000,
            tolerance: 1e-9,
        }
    }
}

impl ClvParams {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn horizon_days(mut self, days: u32) -> Self {
        self.horizon_days = days;
        self
    }

    pub fn discount_rate(mut self, rate: f64) -> Self {
        self.discount_rate = rate;
        self
    }

    pub fn max_iterations(mut self, n: usize) -> Self {
        self.max_iterations = n;
        self
    }

    pub fn tolerance(mut self, tol: f64) -> Self {
        self.tolerance = tol;
        self
    }

    /// An invalid setting is an error naming it, never a panic.
    pub fn check(&self) -> Result<&Self> {
        if !(1..=MAX_HORIZON_DAYS).contains(&self.horizon_days) {
            return Err(ClvError::invalid(
                "horizon_days",
                format!("a number of days in 1..={MAX_HORIZON_DAYS}"),
                self.horizon_days,
            ));
        }
        let d = self.discount_rate;
        if !(d.is_finite() && (0.0..1.0).contains(&d)) {
            return Err(ClvError::invalid(
                "discount_rate",
                "a monthly rate in [0, 1), e.g. 0.01",
                d,
            ));
        }
        if self.max_iterations < 10 {
            return Err(ClvError::invalid(
                "max_iterations",
                "at least 10",
                self.max_iterations,
            ));
        }
        let t = self.tolerance;
        if !(t.is_finite() && t > 0.0 && t <= 1e-3) {
            return Err(ClvError::invalid("tolerance", "a number in (0, 1e-3]", t));
        }
        Ok(self)
    }

    /// Check, then fit BG/NBD and Gamma-Gamma on `summary`.
    pub fn fit(&self, summary: &CustomerSummary) -> Result<ClvModel> {
        self.check()?;
        ClvModel::fit(summary, self)
    }
}
