//! The training mean: every customer gets the mean target of the training
//! rows. The baseline beside "next 90 days = last 90 days", and the model
//! validation chooses when nothing beats it (small data, where every
//! fitted model scores R² < 0 out of time).

use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;

use super::errors::{ModelError, Result};

/// The training mean has no hyperparameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanParams {}

impl MeanParams {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&self) -> Result<&Self> {
        Ok(self)
    }

    /// The mean of `y` (checked like every model's training data).
    pub fn fit(&self, x: &FeatureMatrix, y: &[f64]) -> Result<MeanModel> {
        super::check_training_data("training_mean", x, y)?;
        Ok(MeanModel {
            mean: y.iter().sum::<f64>() / y.len() as f64,
            n_features: x.n_cols(),
        })
    }
}

/// A fitted training mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanModel {
    pub mean: f64,
    pub n_features: usize,
}

impl MeanModel {
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        super::check_width("training_mean", x, self.n_features)?;
        Ok(vec![self.mean; x.n_rows()])
    }

    /// A loaded model must hold a finite mean.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.mean.is_finite() {
            Ok(())
        } else {
            Err(ModelError::Shape {
                model: "training_mean",
                what: "saved model",
                expected: "a finite mean".into(),
                found: self.mean.to_string(),
            })
        }
    }
}
