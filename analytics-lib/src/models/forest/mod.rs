//! Random forest regression: a native histogram forest (quantile-binned
//! features, bootstrap per tree, parallel trees) grown into a flat
//! [`TreeEnsemble`](crate::models::trees::TreeEnsemble).

mod algorithm;
mod binning;
mod grow;
mod hyperparams;

pub use algorithm::ForestModel;
pub use hyperparams::ForestParams;
