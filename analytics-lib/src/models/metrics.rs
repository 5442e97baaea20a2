//! Regression metrics: RMSE, MAE and R².

use serde::{Deserialize, Serialize};

use super::errors::{ModelError, Result};

/// Scores of predictions against the truth.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination, `1 − SS_res / SS_tot`; like
    /// scikit-learn, 1 for a perfect fit of a constant truth and 0 otherwise.
    pub r2: f64,
    /// Rows scored.
    pub n: usize,
}

impl Metrics {
    /// Score `predicted` against `actual` (same length, at least one row).
    pub fn compute(actual: &[f64], predicted: &[f64]) -> Result<Metrics> {
        if actual.len() != predicted.len() || actual.is_empty() {
            return Err(ModelError::Shape {
                model: "metrics",
                what: "predictions",
                expected: format!(
                    "one prediction per actual value, at least one ({})",
                    actual.len()
                ),
                found: format!("{} predictions", predicted.len()),
            });
        }
        let n = actual.len() as f64;
        let mean = actual.iter().sum::<f64>() / n;
        let (mut ss_res, mut abs, mut ss_tot) = (0.0, 0.0, 0.0);
        for (a, p) in actual.iter().zip(predicted) {
            let e = a - p;
            ss_res += e * e;
            abs += e.abs();
            ss_tot += (a - mean) * (a - mean);
        }
        let r2 = if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else if ss_res == 0.0 {
            1.0
        } else {
            0.0
        };
        Ok(Metrics {
            rmse: (ss_res / n).sqrt(),
            mae: abs / n,
            r2,
            n: actual.len(),
        })
    }
}
