//! Ordinary least squares (linfa-linear), with a guard against collinear
//! features.

mod algorithm;
mod hyperparams;

pub use algorithm::LinearModel;
pub use hyperparams::LinearParams;
