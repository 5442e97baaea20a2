//! Feature importance for every model kind, by permutation: how much the
//! test RMSE grows when one feature's column is shuffled (breaking its link
//! with the target while keeping its distribution). Model-agnostic, so OLS,
//! the random forest and XGBoost are compared on the same scale (R$).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::errors::Result;
use super::metrics::Metrics;
use super::regressor::Regressor;
use crate::features::FeatureMatrix;

/// One feature's importance.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Importance {
    pub feature: String,
    /// Increase of RMSE (R$) when the feature is shuffled, mean over repeats.
    pub rmse_increase: f64,
}

/// Permutation importance of `model` on `(x, y)`, largest first. At most
/// `max_rows` rows are used (the first ones), `repeats` shuffles per feature.
pub fn permutation_importance(
    model: &Regressor,
    x: &FeatureMatrix,
    y: &[f64],
    repeats: usize,
    max_rows: usize,
    seed: u64,
) -> Result<Vec<Importance>> {
    let n = x.n_rows().min(max_rows).min(y.len());
    let cols = x.n_cols();
    let base_values = x.values()[..n * cols].to_vec();
    let names = x.names().to_vec();
    let sample =
        FeatureMatrix::new(names.clone(), base_values.clone()).map_err(super::ModelError::from)?;
    let y = &y[..n];
    let base = Metrics::compute(y, &model.predict(&sample)?)?.rmse;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(cols);
    for (j, name) in names.iter().enumerate() {
        let mut total = 0.0;
        for _ in 0..repeats.max(1) {
            let mut column: Vec<f64> = (0..n).map(|i| base_values[i * cols + j]).collect();
            column.shuffle(&mut rng);
            let mut values = base_values.clone();
            for (i, v) in column.into_iter().enumerate() {
                values[i * cols + j] = v;
            }
            let shuffled =
                FeatureMatrix::new(names.clone(), values).map_err(super::ModelError::from)?;
            total += Metrics::compute(y, &model.predict(&shuffled)?)?.rmse - base;
        }
        out.push(Importance {
            feature: name.clone(),
            rmse_increase: total / repeats.max(1) as f64,
        });
    }
    out.sort_by(|a, b| b.rmse_increase.total_cmp(&a.rmse_increase));
    Ok(out)
}
