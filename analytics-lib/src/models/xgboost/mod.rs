//! Gradient-boosted trees (XGBoost through the `xgb` crate).

mod algorithm;
mod hyperparams;
pub mod trees;

pub use algorithm::XgbModel;
pub use hyperparams::XgbParams;
