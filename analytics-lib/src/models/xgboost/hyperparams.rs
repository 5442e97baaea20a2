//! Hyperparameters of XGBoost.

use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;
use crate::models::errors::{ModelError, Result};

use super::algorithm::XgbModel;

pub(crate) const NAME: &str = "xgboost";

/// XGBoost settings (objective `reg:squarederror`, tree method `hist`),
/// checked by [`XgbParams::check`] before fitting.
///
/// The `xgb` crate always sends `base_score = 0.5`, which turns off
/// XGBoost's automatic intercept; fitting passes `base_score = mean(y)`
/// instead, which is what XGBoost itself would estimate for squared error.
/// `threads = None` uses every core (OpenMP); in tests set
/// `OMP_WAIT_POLICY=PASSIVE` on a loaded machine.
///
/// ```
/// # use analytics_lib::models::XgbParams;
/// let p = XgbParams::new().rounds(200).max_depth(6).learning_rate(0.1).seed(7);
/// assert!(p.check().is_ok());
/// assert!(XgbParams::new().learning_rate(0.0).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct XgbParams {
    pub rounds: u32,
    pub max_depth: u32,
    pub learning_rate: f32,
    pub min_child_weight: f32,
    pub subsample: f32,
    pub colsample_bytree: f32,
    pub lambda: f32,
    pub max_bin: u32,
    pub seed: u64,
    pub threads: Option<u32>,
}

impl Default for XgbParams {
    fn default() -> Self {
        XgbParams {
            rounds: 200,
            max_depth: 6,
            learning_rate: 0.1,
            min_child_weight: 1.0,
            subsample: 1.0,
            colsample_bytree: 1.0,
            lambda: 1.0,
            max_bin: 256,
            seed: 42,
            threads: None,
        }
    }
}

impl XgbParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn rounds(mut self, n: u32) -> Self {
        self.rounds = n;
        self
    }
    pub fn max_depth(mut self, d: u32) -> Self {
        self.max_depth = d;
        self
    }
    pub fn learning_rate(mut self, eta: f32) -> Self {
        self.learning_rate = eta;
        self
    }
    pub fn min_child_weight(mut self, w: f32) -> Self {
        self.min_child_weight = w;
        self
    }
    pub fn subsample(mut self, s: f32) -> Self {
        self.subsample = s;
        self
    }
    pub fn colsample_bytree(mut self, s: f32) -> Self {
        self.colsample_bytree = s;
        self
    }
    pub fn lambda(mut self, l: f32) -> Self {
        self.lambda = l;
        self
    }
    pub fn max_bin(mut self, b: u32) -> Self {
        self.max_bin = b;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn threads(mut self, t: Option<u32>) -> Self {
        self.threads = t;
        self
    }

    /// An invalid setting is an error, never a panic.
    pub fn check(&self) -> Result<&Self> {
        let inv = |name, expected: &str, found: String| {
            Err(ModelError::invalid(NAME, name, expected, found))
        };
        if self.rounds == 0 {
            return inv("rounds", "at least 1 boosting round", "0".into());
        }
        if self.max_depth == 0 {
            return inv("max_depth", "a depth of at least 1", "0".into());
        }
        let eta = self.learning_rate;
        if !(eta.is_finite() && eta > 0.0 && eta <= 1.0) {
            return inv("learning_rate", "a number in (0, 1]", eta.to_string());
        }
        let w = self.min_child_weight;
        if !(w.is_finite() && w >= 0.0) {
            return inv("min_child_weight", "a number ≥ 0", w.to_string());
        }
        for (name, v) in [
            ("subsample", self.subsample),
            ("colsample_bytree", self.colsample_bytree),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return inv(name, "a share in (0, 1]", v.to_string());
            }
        }
        let l = self.lambda;
        if !(l.is_finite() && l >= 0.0) {
            return inv("lambda", "a number ≥ 0", l.to_string());
        }
        if self.max_bin < 2 {
            return inv("max_bin", "at least 2 bins", self.max_bin.to_string());
        }
        if self.threads == Some(0) {
            return inv(
                "threads",
                "None (every core) or at least 1 thread",
                "0".into(),
            );
        }
        Ok(self)
    }

    /// Fit on `x` (features) and `y` (target).
    pub fn fit(&self, x: &FeatureMatrix, y: &[f64]) -> Result<XgbModel> {
        self.check()?;
        XgbModel::fit(self, x, y)
    }
}
