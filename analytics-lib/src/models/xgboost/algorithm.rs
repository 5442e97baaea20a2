//! Fitting, predicting and (de)serialising XGBoost boosters.

use std::fmt;

use xgb::parameters::learning::{LearningTaskParametersBuilder, Objective};
use xgb::parameters::tree::{TreeBoosterParametersBuilder, TreeMethod};
use xgb::parameters::{BoosterParametersBuilder, BoosterType, TrainingParametersBuilder};
use xgb::{Booster, DMatrix};

use crate::error::Cause;
use crate::features::FeatureMatrix;
use crate::models::check_training_data;
use crate::models::errors::{ModelError, Result};

use super::hyperparams::{NAME, XgbParams};

/// A fitted XGBoost booster.
pub struct XgbModel {
    booster: Booster,
    n_features: usize,
    base_score: f32,
}

impl fmt::Debug for XgbModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XgbModel")
            .field("n_features", &self.n_features)
            .field("base_score", &self.base_score)
            .finish_non_exhaustive()
    }
}

fn fit_err(e: impl Into<Cause>) -> ModelError {
    ModelError::Fit {
        model: NAME,
        cause: e.into(),
    }
}

fn predict_err(e: impl Into<Cause>) -> ModelError {
    ModelError::Predict {
        model: NAME,
        cause: e.into(),
    }
}

/// XGBoost refuses feature names with `[`, `]` or `<`: its copy of the names
/// replaces them.
fn xgb_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| n.replace(['[', ']', '<'], "_"))
        .collect()
}

fn dmatrix(x: &FeatureMatrix) -> std::result::Result<DMatrix, xgb::XGBError> {
    let values: Vec<f32> = x.values().iter().map(|&v| v as f32).collect();
    let mut d = DMatrix::from_dense(&values, x.n_rows())?;
    let names = xgb_names(x.names());
    d.set_feature_names(&names.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok(d)
}

impl XgbModel {
    pub(crate) fn fit(params: &XgbParams, x: &FeatureMatrix, y: &[f64]) -> Result<Self> {
        check_training_data(NAME, x, y)?;
        let mut dtrain = dmatrix(x).map_err(fit_err)?;
        let labels: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        dtrain.set_labels(&labels).map_err(fit_err)?;
        let base_score = (y.iter().sum::<f64>() / y.len() as f64) as f32;

        let tree = TreeBoosterParametersBuilder::default()
            .eta(params.learning_rate)
            .max_depth(params.max_depth)
            .min_child_weight(params.min_child_weight)
            .subsample(params.subsample)
            .colsample_bytree(params.colsample_bytree)
            .lambda(params.lambda)
            .max_bin(params.max_bin)
            .tree_method(TreeMethod::Hist)
            .build()
            .map_err(fit_err)?;
        let learning = LearningTaskParametersBuilder::default()
            .objective(Objective::RegLinear)
            .base_score(base_score)
            .seed(params.seed)
            .build()
            .map_err(fit_err)?;
        let booster_params = BoosterParametersBuilder::default()
            .booster_type(BoosterType::Tree(tree))
            .learning_params(learning)
            .threads(params.threads)
            .verbose(false)
            .build()
            .map_err(fit_err)?;
        let training = TrainingParametersBuilder::default()
            .dtrain(&dtrain)
            .boost_rounds(params.rounds)
            .booster_params(booster_params)
            .evaluation_sets(None)
            .build()
            .map_err(fit_err)?;
        let booster = Booster::train(&training).map_err(fit_err)?;
        Ok(XgbModel {
            booster,
            n_features: x.n_cols(),
            base_score,
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The global bias the booster started from (`mean(y)` of training).
    pub fn base_score(&self) -> f32 {
        self.base_score
    }

    pub fn booster(&self) -> &Booster {
        &self.booster
    }

    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        super::super::check_width(NAME, x, self.n_features)?;
        if x.n_rows() == 0 {
            return Ok(Vec::new());
        }
        let d = dmatrix(x).map_err(predict_err)?;
        let pred = self.booster.predict(&d).map_err(predict_err)?;
        Ok(pred.into_iter().map(f64::from).collect())
    }

    /// XGBoost's own UBJSON model bytes (loadable by Python's xgboost too).
    pub fn to_ubj(&self) -> Result<Vec<u8>> {
        self.booster
            .save_buffer(true)
            .map_err(|e| ModelError::Encode(format!("{NAME}: {e}")))
    }

    /// A booster from its UBJSON bytes; its feature names must be `names`.
    pub(crate) fn from_ubj(bytes: &[u8], names: &[String], base_score: f32) -> Result<Self> {
        let load_err = |e: xgb::XGBError| ModelError::Load {
            model: NAME,
            cause: format!(
                "expected XGBoost UBJSON model bytes; found {} bytes that XGBoost refuses: {e}",
                bytes.len()
            )
            .into(),
        };
        let booster = Booster::load_buffer(bytes).map_err(load_err)?;
        let stored = booster.get_feature_names().map_err(load_err)?;
        let expected = xgb_names(names);
        if stored != expected {
            return Err(ModelError::feature_mismatch(&expected, &stored));
        }
        Ok(XgbModel {
            booster,
            n_features: names.len(),
            base_score,
        })
    }
}
