//! Hyperparameters of the random forest.

use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;
use crate::models::errors::{ModelError, Result};

use super::algorithm::ForestModel;

pub(crate) const NAME: &str = "random_forest";

/// Random forest settings, in scikit-learn's terms, checked by
/// [`ForestParams::check`] before fitting.
///
/// * `max_depth` counts edges from the root like scikit-learn (a root alone
///   is depth 0).
/// * `min_samples_leaf` and `min_samples_split` count samples of the
///   bootstrap sample (a row drawn twice counts twice), as scikit-learn does.
/// * `max_features` is the number of features tried at each split; `None`
///   tries all of them (scikit-learn's regressor default).
/// * Tree `t` is grown from the bootstrap sample of the ChaCha8 stream
///   seeded with `seed + t`; the trees are grown in parallel on the rayon
///   pool. The result depends on `seed` only, never on the number of threads.
/// * `parts` is kept for older parameter files and must lie in
///   `1..=n_trees`, but no longer changes the result (it used to split the
///   forest into independently seeded smartcore forests).
/// * Features are binned once into at most 255 quantile bins; a split
///   threshold lies between two bins' values (see the forest's module docs).
///
/// ```
/// # use analytics_lib::models::ForestParams;
/// let p = ForestParams::new().n_trees(100).max_depth(Some(10)).min_samples_leaf(5).seed(7);
/// assert!(p.check().is_ok());
/// assert!(ForestParams::new().n_trees(0).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    pub max_depth: Option<u16>,
    pub min_samples_leaf: usize,
    pub min_samples_split: usize,
    pub max_features: Option<usize>,
    pub seed: u64,
    pub parts: usize,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 100,
            max_depth: Some(10),
            min_samples_leaf: 5,
            min_samples_split: 2,
            max_features: None,
            seed: 42,
            parts: 2,
        }
    }
}

impl ForestParams {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn n_trees(mut self, n: usize) -> Self {
        self.n_trees = n;
        self
    }
    pub fn max_depth(mut self, d: Option<u16>) -> Self {
        self.max_depth = d;
        self
    }
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.min_samples_leaf = n;
        self
    }
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.min_samples_split = n;
        self
    }
    pub fn max_features(mut self, m: Option<usize>) -> Self {
        self.max_features = m;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn parts(mut self, parts: usize) -> Self {
        self.parts = parts;
        self
    }

    /// An invalid setting is an error, never a panic.
    pub fn check(&self) -> Result<&Self> {
        if self.n_trees == 0 {
            return Err(ModelError::invalid(NAME, "n_trees", "at least 1 tree", 0));
        }
        if let Some(d) = self.max_depth
            && (d == 0 || d == u16::MAX)
        {
            return Err(ModelError::invalid(
                NAME,
                "max_depth",
                format!("None (unlimited) or a depth in 1..={}", u16::MAX - 1),
                d,
            ));
        }
        if self.min_samples_leaf == 0 {
            return Err(ModelError::invalid(
                NAME,
                "min_samples_leaf",
                "at least 1 sample",
                0,
            ));
        }
        if self.min_samples_split < 2 {
            return Err(ModelError::invalid(
                NAME,
                "min_samples_split",
                "at least 2 samples",
                self.min_samples_split,
            ));
        }
        if self.max_features == Some(0) {
            return Err(ModelError::invalid(
                NAME,
                "max_features",
                "None (all features) or at least 1",
                0,
            ));
        }
        if self.parts == 0 || self.parts > self.n_trees {
            return Err(ModelError::invalid(
                NAME,
                "parts",
                format!("between 1 and n_trees ({})", self.n_trees),
                self.parts,
            ));
        }
        Ok(self)
    }

    /// Fit on `x` (features) and `y` (target).
    pub fn fit(&self, x: &FeatureMatrix, y: &[f64]) -> Result<ForestModel> {
        self.check()?;
        ForestModel::fit(self, x, y)
    }
}
