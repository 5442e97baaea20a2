//! Fitting and predicting with ordinary least squares.

use linfa::DatasetBase;
use linfa::traits::{Fit, Predict};
use linfa_linear::{FittedLinearRegression, LinearRegression};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;
use crate::models::check_training_data;
use crate::models::errors::{ModelError, Result};

use super::hyperparams::{LinearParams, NAME};

/// A fitted OLS model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearModel {
    n_features: usize,
    /// Indices of the features that entered the fit (the others are
    /// collinear with them and get coefficient 0).
    used: Vec<usize>,
    fitted: FittedLinearRegression<f64>,
}

/// Indices of the columns of `x` that are linearly independent of the
/// columns before them (and of the intercept, when `center`), by modified
/// Gram–Schmidt with re-orthogonalisation.
fn independent_columns(x: &FeatureMatrix, center: bool, tol: f64) -> Vec<usize> {
    let (n, p) = (x.n_rows(), x.n_cols());
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut used = Vec::new();
    for j in 0..p {
        let mut v: Vec<f64> = (0..n).map(|i| x.row(i)[j]).collect();
        if center {
            let mean = v.iter().sum::<f64>() / n as f64;
            v.iter_mut().for_each(|a| *a -= mean);
        }
        let norm0 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm0 == 0.0 {
            continue;
        }
        for _ in 0..2 {
            for q in &basis {
                let d: f64 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(q).for_each(|(a, b)| *a -= d * b);
            }
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > tol * norm0 && norm > 0.0 {
            v.iter_mut().for_each(|a| *a /= norm);
            basis.push(v);
            used.push(j);
        }
    }
    used
}

fn design(x: &FeatureMatrix, used: &[usize]) -> Result<Array2<f64>> {
    let mut values = Vec::with_capacity(x.n_rows() * used.len());
    for i in 0..x.n_rows() {
        let row = x.row(i);
        values.extend(used.iter().map(|&j| row[j]));
    }
    Array2::from_shape_vec((x.n_rows(), used.len()), values).map_err(|e| ModelError::Shape {
        model: NAME,
        what: "design matrix",
        expected: format!("{} × {}", x.n_rows(), used.len()),
        found: e.to_string(),
    })
}

impl LinearModel {
    pub(crate) fn fit(params: &LinearParams, x: &FeatureMatrix, y: &[f64]) -> Result<Self> {
        check_training_data(NAME, x, y)?;
        let used = independent_columns(x, params.fit_intercept, params.collinearity_tolerance);
        let needed = used.len() + usize::from(params.fit_intercept);
        if x.n_rows() < needed {
            return Err(ModelError::Shape {
                model: NAME,
                what: "training rows",
                expected: format!("at least {needed} rows for {} coefficients", needed),
                found: format!("{} rows", x.n_rows()),
            });
        }
        let dataset = DatasetBase::new(design(x, &used)?, Array1::from(y.to_vec()));
        let fitted = LinearRegression::new()
            .with_intercept(params.fit_intercept)
            .fit(&dataset)
            .map_err(|e| ModelError::Fit {
                model: NAME,
                reason: e.to_string(),
            })?;
        Ok(LinearModel {
            n_features: x.n_cols(),
            used,
            fitted,
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn intercept(&self) -> f64 {
        self.fitted.intercept()
    }

    /// One coefficient per feature, 0 for the features left out as collinear.
    pub fn coefficients(&self) -> Vec<f64> {
        let mut c = vec![0.0; self.n_features];
        for (&j, &b) in self.used.iter().zip(self.fitted.params()) {
            c[j] = b;
        }
        c
    }

    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        super::super::check_width(NAME, x, self.n_features)?;
        if x.n_rows() == 0 {
            return Ok(Vec::new());
        }
        let pred: Array1<f64> = self.fitted.predict(&design(x, &self.used)?);
        Ok(pred.to_vec())
    }

    /// Internal consistency after loading.
    pub(crate) fn validate(&self) -> Result<()> {
        let ok = self.used.len() == self.fitted.params().len()
            && self.used.iter().all(|&j| j < self.n_features)
            && self.used.windows(2).all(|w| w[0] < w[1]);
        if ok {
            Ok(())
        } else {
            Err(ModelError::Shape {
                model: NAME,
                what: "saved coefficients",
                expected: format!(
                    "one coefficient per used feature, indices below {}",
                    self.n_features
                ),
                found: format!(
                    "{} coefficients for used features {:?}",
                    self.fitted.params().len(),
                    self.used
                ),
            })
        }
    }
}
