//! Fitting and predicting with the random forest.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::features::FeatureMatrix;
use crate::models::check_training_data;
use crate::models::errors::{ModelError, Result};

use super::hyperparams::{ForestParams, NAME};

type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// One independently grown part of the forest.
#[derive(Debug, Serialize, Deserialize)]
struct Part {
    trees: usize,
    forest: Forest,
}

/// A fitted random forest.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForestModel {
    n_features: usize,
    parts: Vec<Part>,
}

fn dense(x: &FeatureMatrix) -> Result<DenseMatrix<f64>> {
    DenseMatrix::new(x.n_rows(), x.n_cols(), x.values().to_vec(), false).map_err(|e| {
        ModelError::Shape {
            model: NAME,
            what: "feature matrix",
            expected: format!("{} × {}", x.n_rows(), x.n_cols()),
            found: e.to_string(),
        }
    })
}

impl ForestModel {
    pub(crate) fn fit(params: &ForestParams, x: &FeatureMatrix, y: &[f64]) -> Result<Self> {
        check_training_data(NAME, x, y)?;
        let p = x.n_cols();
        let m = params.max_features.unwrap_or(p);
        if m > p {
            return Err(ModelError::invalid(
                NAME,
                "max_features",
                format!("at most the number of features ({p})"),
                m,
            ));
        }
        let xm = dense(x)?;
        let y = y.to_vec();
        // Split the trees as evenly as possible over the parts.
        let (base, extra) = (params.n_trees / params.parts, params.n_trees % params.parts);
        let plan: Vec<(usize, u64)> = (0..params.parts)
            .map(|i| {
                (
                    base + usize::from(i < extra),
                    params.seed.wrapping_add(i as u64),
                )
            })
            .collect();
        let parts = plan
            .into_par_iter()
            .map(|(trees, seed)| {
                let sp = RandomForestRegressorParameters {
                    // smartcore counts the root as depth 1.
                    max_depth: params.max_depth.map(|d| d + 1),
                    min_samples_leaf: params.min_samples_leaf,
                    min_samples_split: params.min_samples_split,
                    n_trees: trees,
                    m: Some(m),
                    keep_samples: false,
                    seed,
                };
                Forest::fit(&xm, &y, sp)
                    .map(|forest| Part { trees, forest })
                    .map_err(|e| ModelError::Fit {
                        model: NAME,
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ForestModel {
            n_features: p,
            parts,
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn n_trees(&self) -> usize {
        self.parts.iter().map(|p| p.trees).sum()
    }

    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        super::super::check_width(NAME, x, self.n_features)?;
        if x.n_rows() == 0 {
            return Ok(Vec::new());
        }
        let xm = dense(x)?;
        let total = self.n_trees() as f64;
        let mut out = vec![0.0; x.n_rows()];
        for part in &self.parts {
            let pred = part.forest.predict(&xm).map_err(|e| ModelError::Predict {
                model: NAME,
                reason: e.to_string(),
            })?;
            let w = part.trees as f64 / total;
            if self.parts.len() == 1 {
                return Ok(pred);
            }
            out.iter_mut().zip(&pred).for_each(|(o, p)| *o += w * p);
        }
        Ok(out)
    }

    /// Internal consistency after loading.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.parts.is_empty() || self.parts.iter().any(|p| p.trees == 0) {
            return Err(ModelError::Shape {
                model: NAME,
                what: "saved forest",
                expected: "at least one part, each with at least one tree".into(),
                found: format!(
                    "{} parts with {:?} trees",
                    self.parts.len(),
                    self.parts.iter().map(|p| p.trees).collect::<Vec<_>>()
                ),
            });
        }
        Ok(())
    }
}
