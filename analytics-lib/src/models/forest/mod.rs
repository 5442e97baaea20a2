//! Random forest regression (smartcore), trained in parallel parts.

mod algorithm;
mod hyperparams;

pub use algorithm::ForestModel;
pub use hyperparams::ForestParams;
