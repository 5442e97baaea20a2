//! Fitting and predicting with the random forest: a native histogram
//! forest grown straight into a flat [`TreeEnsemble`].
//!
//! Every feature is binned once ([`super::binning`]); each tree is grown on
//! its own bootstrap sample ([`super::grow`]) from the ChaCha8 stream seeded
//! with `seed + tree index`, and the trees are grown in parallel (rayon).
//! A tree depends only on the data, the settings and its seed, so the model
//! is the same, byte for byte, whatever the number of threads.
//!
//! The model is the ensemble: `scale = 1 / n_trees`, `base = 0`, splits
//! `x < threshold` compared in `f64`, covers = bootstrap weights; prediction
//! and per-feature contributions are [`TreeEnsemble`]'s.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;
use crate::models::check_training_data;
use crate::models::errors::{ModelError, Result};
use crate::models::trees::{Compare, Node, TreeEnsemble};

use super::binning::{Binned, MAX_BINS};
use super::grow::{Settings, grow_tree};
use super::hyperparams::{ForestParams, NAME};

/// A fitted random forest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SavedForest", into = "SavedForest")]
pub struct ForestModel {
    ensemble: TreeEnsemble,
}

/// Training data binned and the settings of its trees, ready to grow any
/// tree by its index.
pub(crate) struct Prepared {
    pub data: Binned,
    pub y: Vec<f64>,
    pub mean: f64,
    pub settings: Settings,
}

impl Prepared {
    pub(crate) fn new(params: &ForestParams, x: &FeatureMatrix, y: &[f64]) -> Result<Self> {
        check_training_data(NAME, x, y)?;
        let p = x.n_cols();
        let m = params.max_features.unwrap_or(p);
        if m > p {
            return Err(ModelError::invalid(
                NAME,
                "max_features",
                format!("at most the number of features ({p})"),
                m,
            ));
        }
        if x.n_rows() >= u32::MAX as usize {
            return Err(ModelError::Shape {
                model: NAME,
                what: "training rows",
                expected: format!("fewer than {} rows", u32::MAX),
                found: format!("{} rows", x.n_rows()),
            });
        }
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        Ok(Prepared {
            data: Binned::new(x.values(), p, MAX_BINS),
            y: y.to_vec(),
            mean,
            settings: Settings {
                max_depth: params.max_depth.map_or(u32::MAX, u32::from),
                min_samples_leaf: params.min_samples_leaf as f64,
                min_samples_split: params.min_samples_split as f64,
                max_features: m,
                move_bytes: super::grow::MOVE_BYTES,
            },
        })
    }

    /// Tree `t` of the forest of `seed`.
    pub(crate) fn grow(&self, seed: u64, t: usize, record: bool) -> super::grow::Grown {
        grow_tree(
            &self.data,
            &self.y,
            self.mean,
            &self.settings,
            seed.wrapping_add(t as u64),
            record,
        )
    }
}

impl ForestModel {
    pub(crate) fn fit(params: &ForestParams, x: &FeatureMatrix, y: &[f64]) -> Result<Self> {
        let prep = Prepared::new(params, x, y)?;
        let trees: Vec<Vec<Node>> = (0..params.n_trees)
            .into_par_iter()
            .with_max_len(1)
            .map(|t| prep.grow(params.seed, t, false).nodes)
            .collect();
        let ensemble = TreeEnsemble::new(
            x.n_cols(),
            0.0,
            1.0 / params.n_trees as f64,
            Compare::F64,
            trees,
        )?;
        Ok(ForestModel { ensemble })
    }

    /// The trees as a flat ensemble: prediction and per-feature
    /// contributions for single records and batches.
    pub fn ensemble(&self) -> &TreeEnsemble {
        &self.ensemble
    }

    pub fn n_features(&self) -> usize {
        self.ensemble.n_features()
    }

    pub fn n_trees(&self) -> usize {
        self.ensemble.n_trees()
    }

    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        super::super::check_width(NAME, x, self.n_features())?;
        if x.n_rows() == 0 {
            return Ok(Vec::new());
        }
        self.ensemble.predict(x.values())
    }

    /// Internal consistency after loading (the ensemble itself is checked by
    /// [`TreeEnsemble::new`] while decoding).
    pub(crate) fn validate(&self) -> Result<()> {
        let e = &self.ensemble;
        let expected = 1.0 / e.n_trees() as f64;
        if e.base() != 0.0 || e.scale() != expected || e.compare() != Compare::F64 {
            return Err(ModelError::Shape {
                model: NAME,
                what: "saved forest",
                expected: format!("base 0, scale 1/{} and f64 comparisons", e.n_trees()),
                found: format!(
                    "base {}, scale {}, {:?} comparisons",
                    e.base(),
                    e.scale(),
                    e.compare()
                ),
            });
        }
        Ok(())
    }
}

/// One tree as saved: a column per node field (compact in MessagePack).
#[derive(Serialize, Deserialize)]
struct SavedTree {
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    /// Leaf values (inner nodes: their cover-weighted mean, recomputed on load).
    value: Vec<f64>,
    cover: Vec<f64>,
}

/// The forest as saved; decoding rebuilds and checks the ensemble.
#[derive(Serialize, Deserialize)]
struct SavedForest {
    n_features: usize,
    trees: Vec<SavedTree>,
}

impl From<ForestModel> for SavedForest {
    fn from(m: ForestModel) -> Self {
        let trees = m
            .ensemble
            .trees()
            .iter()
            .map(|nodes| SavedTree {
                feature: nodes.iter().map(|n| n.feature).collect(),
                threshold: nodes.iter().map(|n| n.threshold).collect(),
                left: nodes.iter().map(|n| n.left).collect(),
                right: nodes.iter().map(|n| n.right).collect(),
                value: nodes.iter().map(|n| n.value).collect(),
                cover: nodes.iter().map(|n| n.cover).collect(),
            })
            .collect();
        SavedForest {
            n_features: m.ensemble.n_features(),
            trees,
        }
    }
}

impl TryFrom<SavedForest> for ForestModel {
    type Error = ModelError;
    fn try_from(s: SavedForest) -> Result<Self> {
        let n_trees = s.trees.len();
        let mut trees = Vec::with_capacity(n_trees);
        for (t, tr) in s.trees.into_iter().enumerate() {
            let len = tr.feature.len();
            let lens = [
                tr.threshold.len(),
                tr.left.len(),
                tr.right.len(),
                tr.value.len(),
                tr.cover.len(),
            ];
            if lens.iter().any(|&l| l != len) {
                return Err(ModelError::Shape {
                    model: NAME,
                    what: "saved tree",
                    expected: "as many thresholds, children, values and covers as features".into(),
                    found: format!("tree {t}: {len} features, then {lens:?}"),
                });
            }
            trees.push(
                (0..len)
                    .map(|i| Node {
                        feature: tr.feature[i],
                        threshold: tr.threshold[i],
                        left: tr.left[i],
                        right: tr.right[i],
                        default_left: true,
                        value: tr.value[i],
                        cover: tr.cover[i],
                    })
                    .collect(),
            );
        }
        if n_trees == 0 {
            return Err(ModelError::Shape {
                model: NAME,
                what: "saved forest",
                expected: "at least one tree".into(),
                found: "none".into(),
            });
        }
        let ensemble =
            TreeEnsemble::new(s.n_features, 0.0, 1.0 / n_trees as f64, Compare::F64, trees)?;
        Ok(ForestModel { ensemble })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::trees::LEAF;

    /// Rows with ties, a heavy value and more distinct values than bins.
    /// `a` has `distinct_a` values (`> 255`: quantile bins); `b`, `c` fewer than 255.
    fn matrix(n: usize, distinct_a: usize) -> (FeatureMatrix, Vec<f64>) {
        let mut v = Vec::with_capacity(n * 3);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let a = ((i * 7919) % distinct_a) as f64 / 10.0;
            let b = if i % 3 == 0 {
                0.0
            } else {
                ((i * 31) % 17) as f64
            };
            let c = ((i * 104_729) % 211) as f64 * 1e-3;
            v.extend([a, b, c]);
            y.push((a * 0.3).sin() * 10.0 + b - 40.0 * c + ((i * 13) % 7) as f64);
        }
        let names = vec!["a".into(), "b".into(), "c".into()];
        (FeatureMatrix::new(names, v).expect("matrix"), y)
    }

    fn walk(nodes: &[Node], x: &[f64]) -> u32 {
        let mut i = 0usize;
        while nodes[i].left != LEAF {
            let n = &nodes[i];
            i = if x[n.feature as usize] < n.threshold {
                n.left
            } else {
                n.right
            } as usize;
        }
        i as u32
    }

    #[test]
    fn raw_values_reach_the_leaf_the_binned_training_assigned() {
        let (x, y) = matrix(3000, 1000);
        for params in [
            ForestParams::new(),
            ForestParams::new()
                .max_depth(None)
                .min_samples_leaf(1)
                .max_features(Some(2)),
        ] {
            let prep = Prepared::new(&params, &x, &y).expect("prepare");
            assert!(prep.data.n_bins(0) <= MAX_BINS && prep.data.n_bins(0) > 200);
            for t in 0..4 {
                let g = prep.grow(params.seed, t, true);
                assert!(g.nodes.len() > 100, "tree {t}: {} nodes", g.nodes.len());
                assert_eq!(g.rows.len(), g.leaf.len());
                for (&r, &leaf) in g.rows.iter().zip(&g.leaf) {
                    assert_eq!(walk(&g.nodes, x.row(r as usize)), leaf, "tree {t}, row {r}");
                }
            }
        }
    }

    #[test]
    fn the_root_split_is_the_best_split_of_the_bootstrap_sample() {
        // Brute force over the raw values: every cut between two distinct
        // values of the bootstrap sample (fewer than 255 distinct values per
        // feature, so every cut is a bin edge), weighted squared error.
        let n = 2000;
        let (x, y) = matrix(n, 250);
        let params = ForestParams::new().min_samples_leaf(3);
        let prep = Prepared::new(&params, &x, &y).expect("prepare");
        for t in 0..3 {
            let g = prep.grow(params.seed, t, true);
            // Bootstrap weights, recovered from the leaves' covers: the
            // in-bag rows and the root cover (n draws).
            assert_eq!(g.nodes[0].cover, n as f64);
            let mut rng = {
                use rand::SeedableRng;
                rand_chacha::ChaCha8Rng::seed_from_u64(params.seed + t as u64)
            };
            let mut w = vec![0.0; n];
            for _ in 0..n {
                use rand::Rng;
                w[rng.random_range(0..n as u32) as usize] += 1.0;
            }
            let mut best = (f64::NEG_INFINITY, 0usize, 0.0);
            for f in 0..3 {
                let mut vals: Vec<f64> = (0..n)
                    .filter(|&i| w[i] > 0.0)
                    .map(|i| x.row(i)[f])
                    .collect();
                vals.sort_by(f64::total_cmp);
                vals.dedup();
                for pair in vals.windows(2) {
                    let cut = pair[1];
                    let (mut lw, mut ls, mut rw, mut rs) = (0.0, 0.0, 0.0, 0.0);
                    for i in 0..n {
                        if x.row(i)[f] < cut {
                            lw += w[i];
                            ls += w[i] * y[i];
                        } else {
                            rw += w[i];
                            rs += w[i] * y[i];
                        }
                    }
                    if lw < 3.0 || rw < 3.0 {
                        continue;
                    }
                    let score = ls * ls / lw + rs * rs / rw;
                    if score > best.0 + 1e-9 * score.abs() {
                        best = (score, f, cut);
                    }
                }
            }
            let root = g.nodes[0];
            assert_eq!(root.feature as usize, best.1, "tree {t}");
            let vals: Vec<f64> = (0..n).map(|i| x.row(i)[best.1]).collect();
            let same_side = vals.iter().all(|&v| (v < root.threshold) == (v < best.2));
            assert!(
                same_side,
                "tree {t}: threshold {} vs cut {}",
                root.threshold, best.2
            );
        }
    }
}
