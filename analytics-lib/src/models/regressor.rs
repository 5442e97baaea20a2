//! The three model kinds behind one enum: fit, predict, (de)serialise.

use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;

use super::errors::{ModelError, Result};
use super::forest::{ForestModel, ForestParams};
use super::linear::{LinearModel, LinearParams};
use super::mean::{MeanModel, MeanParams};
use super::xgboost::{XgbModel, XgbParams};

/// Which algorithm a model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Linear,
    RandomForest,
    Xgboost,
    /// The mean target of the training rows (the baseline validation
    /// chooses when no model beats it).
    TrainingMean,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Linear,
        ModelKind::RandomForest,
        ModelKind::Xgboost,
        ModelKind::TrainingMean,
    ];

    /// The name used in files, reports and the CLI: `linear`,
    /// `random_forest`, `xgboost`, `training_mean`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Linear => "linear",
            ModelKind::RandomForest => "random_forest",
            ModelKind::Xgboost => "xgboost",
            ModelKind::TrainingMean => "training_mean",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                ModelError::invalid(
                    "model",
                    "kind",
                    "linear, random_forest, xgboost or training_mean",
                    s,
                )
            })
    }
}

/// Hyperparameters of any kind: what to fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hyperparameters {
    Linear(LinearParams),
    RandomForest(ForestParams),
    Xgboost(XgbParams),
    TrainingMean(MeanParams),
}

impl Hyperparameters {
    pub fn kind(&self) -> ModelKind {
        match self {
            Hyperparameters::Linear(_) => ModelKind::Linear,
            Hyperparameters::RandomForest(_) => ModelKind::RandomForest,
            Hyperparameters::Xgboost(_) => ModelKind::Xgboost,
            Hyperparameters::TrainingMean(_) => ModelKind::TrainingMean,
        }
    }

    /// Validate, without fitting.
    pub fn check(&self) -> Result<&Self> {
        match self {
            Hyperparameters::Linear(p) => p.check().map(|_| self),
            Hyperparameters::RandomForest(p) => p.check().map(|_| self),
            Hyperparameters::Xgboost(p) => p.check().map(|_| self),
            Hyperparameters::TrainingMean(p) => p.check().map(|_| self),
        }
    }

    /// Check, then fit on `x` and `y`.
    pub fn fit(&self, x: &FeatureMatrix, y: &[f64]) -> Result<Regressor> {
        Ok(match self {
            Hyperparameters::Linear(p) => Regressor::Linear(p.fit(x, y)?),
            Hyperparameters::RandomForest(p) => Regressor::RandomForest(p.fit(x, y)?),
            Hyperparameters::Xgboost(p) => Regressor::Xgboost(p.fit(x, y)?),
            Hyperparameters::TrainingMean(p) => Regressor::TrainingMean(p.fit(x, y)?),
        })
    }
}

impl From<LinearParams> for Hyperparameters {
    fn from(p: LinearParams) -> Self {
        Hyperparameters::Linear(p)
    }
}
impl From<ForestParams> for Hyperparameters {
    fn from(p: ForestParams) -> Self {
        Hyperparameters::RandomForest(p)
    }
}
impl From<XgbParams> for Hyperparameters {
    fn from(p: XgbParams) -> Self {
        Hyperparameters::Xgboost(p)
    }
}
impl From<MeanParams> for Hyperparameters {
    fn from(p: MeanParams) -> Self {
        Hyperparameters::TrainingMean(p)
    }
}

/// A fitted model of any kind.
#[derive(Debug)]
pub enum Regressor {
    Linear(LinearModel),
    RandomForest(ForestModel),
    Xgboost(XgbModel),
    TrainingMean(MeanModel),
}

/// What a model is stored as, inside the artifact (MessagePack).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Payload {
    Linear(LinearModel),
    RandomForest(ForestModel),
    /// XGBoost's own UBJSON model bytes.
    Xgboost {
        base_score: f32,
        ubj: super::artifact::Bytes,
    },
    TrainingMean(MeanModel),
}

impl Regressor {
    pub fn kind(&self) -> ModelKind {
        match self {
            Regressor::Linear(_) => ModelKind::Linear,
            Regressor::RandomForest(_) => ModelKind::RandomForest,
            Regressor::Xgboost(_) => ModelKind::Xgboost,
            Regressor::TrainingMean(_) => ModelKind::TrainingMean,
        }
    }

    pub fn n_features(&self) -> usize {
        match self {
            Regressor::Linear(m) => m.n_features(),
            Regressor::RandomForest(m) => m.n_features(),
            Regressor::Xgboost(m) => m.n_features(),
            Regressor::TrainingMean(m) => m.n_features(),
        }
    }

    /// Predictions for every row of `x`. Values must be finite.
    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        super::check_finite(self.kind().name(), x)?;
        match self {
            Regressor::Linear(m) => m.predict(x),
            Regressor::RandomForest(m) => m.predict(x),
            Regressor::Xgboost(m) => m.predict(x),
            Regressor::TrainingMean(m) => m.predict(x),
        }
    }

    /// The model as bytes (MessagePack; XGBoost's UBJSON inside).
    pub(crate) fn to_payload(&self) -> Result<Vec<u8>> {
        let enc = |e: rmp_serde::encode::Error| ModelError::Encode(e.to_string());
        match self {
            Regressor::Linear(m) => rmp_serde::to_vec_named(&PayloadRef::Linear(m)).map_err(enc),
            Regressor::RandomForest(m) => {
                rmp_serde::to_vec_named(&PayloadRef::RandomForest(m)).map_err(enc)
            }
            Regressor::Xgboost(m) => rmp_serde::to_vec_named(&Payload::Xgboost {
                base_score: m.base_score(),
                ubj: super::artifact::Bytes(m.to_ubj()?),
            })
            .map_err(enc),
            Regressor::TrainingMean(m) => {
                rmp_serde::to_vec_named(&PayloadRef::TrainingMean(m)).map_err(enc)
            }
        }
    }

    /// The model back from [`Regressor::to_payload`] bytes; `names` are the
    /// features it was trained on (checked against the model itself).
    pub(crate) fn from_payload(
        bytes: &[u8],
        names: &[String],
    ) -> std::result::Result<Self, PayloadError> {
        let payload: Payload = rmp_serde::from_slice(bytes).map_err(PayloadError::Decode)?;
        let model = match payload {
            Payload::Linear(m) => {
                m.validate().map_err(PayloadError::Invalid)?;
                Regressor::Linear(m)
            }
            Payload::RandomForest(m) => {
                m.validate().map_err(PayloadError::Invalid)?;
                Regressor::RandomForest(m)
            }
            Payload::Xgboost { base_score, ubj } => Regressor::Xgboost(
                XgbModel::from_ubj(&ubj.0, names, base_score).map_err(PayloadError::Invalid)?,
            ),
            Payload::TrainingMean(m) => {
                m.validate().map_err(PayloadError::Invalid)?;
                Regressor::TrainingMean(m)
            }
        };
        if model.n_features() != names.len() {
            return Err(PayloadError::Invalid(ModelError::Shape {
                model: model.kind().name(),
                what: "saved model",
                expected: format!("{} features (from the metadata)", names.len()),
                found: format!("a model of {} features", model.n_features()),
            }));
        }
        Ok(model)
    }
}

/// Serialising by reference (the same layout as [`Payload`]).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum PayloadRef<'a> {
    Linear(&'a LinearModel),
    RandomForest(&'a ForestModel),
    #[allow(dead_code)]
    Xgboost,
    TrainingMean(&'a MeanModel),
}

/// Why a payload could not be read back.
pub(crate) enum PayloadError {
    Decode(rmp_serde::decode::Error),
    Invalid(ModelError),
}
