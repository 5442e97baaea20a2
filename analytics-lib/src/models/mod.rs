//! Customer-spend regression models, in linfa's style: one folder per
//! algorithm family (`hyperparams.rs` validated by `check()`, `algorithm.rs`
//! fit/predict), seeds from parameters, errors instead of panics.
//!
//! * [`LinearParams`] — ordinary least squares (linfa-linear);
//! * [`ForestParams`] — random forest (native histogram trees, a flat [`trees::TreeEnsemble`]), trained on both cores;
//! * [`XgbParams`] — gradient-boosted trees (XGBoost, `hist`);
//! * [`MeanParams`] — the training mean, the baseline every model must beat
//!   on validation to be served.
//!
//! Every trained model carries its prediction intervals
//! ([`ConformalIntervals`]: binned split-conformal on out-of-time residuals).
//!
//! [`Hyperparameters::fit`] gives a [`Regressor`]; [`train_all`] is the single
//! training entry point (features, validation, selection, test scores) and
//! returns [`TrainedModel`]s that save to and load from MessagePack files
//! ([`artifact`]).
//!
//! ```no_run
//! use analytics_lib::{models, source::Source};
//! let sales = Source::parquet("data/curated").prepare()?.sales;
//! let report = models::train_all(&sales, None, &models::TrainParams::default())?;
//! for m in &report.models {
//!     m.save(&std::path::Path::new("models").join(format!("{}.msgpack", m.kind())))?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifact;
mod errors;
mod forest;
pub mod importance;
pub mod intervals;
mod linear;
mod mean;
mod metrics;
mod regressor;
mod train;
pub mod trees;
mod xgboost;

pub use artifact::{FORMAT_VERSION, Fnv64, ModelFile, ModelMeta, TrainedModel};
pub use errors::{ModelError, Result};
pub use forest::{ForestModel, ForestParams};
pub use importance::{Importance, permutation_importance};
pub use intervals::{ConformalIntervals, Coverage, Interval};
pub use linear::{LinearModel, LinearParams};
pub use mean::{MeanModel, MeanParams};
pub use metrics::Metrics;
pub use regressor::{Hyperparameters, ModelKind, Regressor};
pub use train::{
    CandidateScore, SplitRows, TrainOptions, TrainParams, TrainReport, ValidationSplit,
    data_fingerprint, train_all, train_all_with, train_cutoffs,
};
pub use xgboost::{XgbModel, XgbParams};

use crate::features::FeatureMatrix;

/// Every value finite, or an error naming the first bad cell.
/// A matrix must have exactly the columns the model was fitted on.
pub(crate) fn check_width(model: &'static str, x: &FeatureMatrix, n_features: usize) -> Result<()> {
    if x.n_cols() != n_features {
        return Err(ModelError::Shape {
            model,
            what: "features",
            expected: format!("{n_features} columns"),
            found: format!("{} columns", x.n_cols()),
        });
    }
    Ok(())
}

pub(crate) fn check_finite(model: &'static str, x: &FeatureMatrix) -> Result<()> {
    let cols = x.n_cols();
    if let Some(pos) = x.values().iter().position(|v| !v.is_finite()) {
        return Err(ModelError::Shape {
            model,
            what: "feature values",
            expected: "finite numbers".into(),
            found: format!(
                "{} in `{}`, row {}",
                x.values()[pos],
                x.names()[pos % cols],
                pos / cols
            ),
        });
    }
    Ok(())
}

/// Training data: at least one row, one target per row, all finite.
pub(crate) fn check_training_data(model: &'static str, x: &FeatureMatrix, y: &[f64]) -> Result<()> {
    if x.n_rows() == 0 {
        return Err(ModelError::Shape {
            model,
            what: "training rows",
            expected: "at least one row".into(),
            found: "0 rows".into(),
        });
    }
    if y.len() != x.n_rows() {
        return Err(ModelError::Shape {
            model,
            what: "targets",
            expected: format!("one target per row ({})", x.n_rows()),
            found: format!("{} targets", y.len()),
        });
    }
    check_finite(model, x)?;
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::Shape {
            model,
            what: "targets",
            expected: "finite numbers".into(),
            found: format!("{} at row {i}", y[i]),
        });
    }
    Ok(())
}
