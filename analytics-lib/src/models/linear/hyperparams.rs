//! Hyperparameters of ordinary least squares.

use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;
use crate::models::errors::{ModelError, Result};

use super::algorithm::LinearModel;

pub(crate) const NAME: &str = "linear";

/// OLS settings, checked by [`LinearParams::check`] before fitting.
///
/// ```
/// # use analytics_lib::models::LinearParams;
/// let p = LinearParams::new().fit_intercept(true).collinearity_tolerance(1e-9);
/// assert!(p.check().is_ok());
/// assert!(LinearParams::new().collinearity_tolerance(-1.0).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearParams {
    pub fit_intercept: bool,
    /// A feature whose part not explained by the features before it (after
    /// centring) is below this fraction of its norm is left out of the fit
    /// (its coefficient is 0): category shares that sum to 1 would otherwise
    /// make the least-squares problem singular.
    pub collinearity_tolerance: f64,
}

impl Default for LinearParams {
    fn default() -> Self {
        LinearParams {
            fit_intercept: true,
            collinearity_tolerance: 1e-9,
        }
    }
}

impl LinearParams {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fit_intercept(mut self, yes: bool) -> Self {
        self.fit_intercept = yes;
        self
    }

    pub fn collinearity_tolerance(mut self, tol: f64) -> Self {
        self.collinearity_tolerance = tol;
        self
    }

    /// An invalid setting is an error, never a panic.
    pub fn check(&self) -> Result<&Self> {
        let tol = self.collinearity_tolerance;
        if !(tol.is_finite() && (0.0..1.0).contains(&tol)) {
            return Err(ModelError::invalid(
                NAME,
                "collinearity_tolerance",
                "a number in [0, 1)",
                tol,
            ));
        }
        Ok(self)
    }

    /// Fit on `x` (features) and `y` (target).
    pub fn fit(&self, x: &FeatureMatrix, y: &[f64]) -> Result<LinearModel> {
        self.check()?;
        LinearModel::fit(self, x, y)
    }
}
