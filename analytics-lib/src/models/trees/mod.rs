//! A flat, immutable ensemble of binary regression trees: what the random
//! forest is grown into and what a trained XGBoost booster is read into, so
//! that prediction and per-feature contributions are plain Rust loops over
//! arrays (no allocation, no foreign call, no lock), fast enough for a
//! single-record API call and vectorised over a batch.
//!
//! # Semantics
//!
//! * A node sends a row **left when `x[feature] < threshold`**, right
//!   otherwise; a missing value (NaN) follows `default_left`. With
//!   [`Compare::F32`] both sides are rounded to `f32` first, which is exactly
//!   XGBoost's rule; [`Compare::F64`] compares in `f64`.
//! * The prediction is `base + scale × Σ_trees leaf value`. A forest uses
//!   `scale = 1 / n_trees` (the mean of its trees), boosting `scale = 1`.
//! * Every node carries the `cover` (training weight) that reached it. The
//!   value of an inner node is the cover-weighted mean of its leaves,
//!   computed here from the leaves, never trusted from the input.
//!
//! # Contributions
//!
//! [`TreeEnsemble::contributions`] attributes the prediction to features by
//! the decision path (Saabas): every split on the path moves the expected
//! value from the parent's value to the child's, and that move is credited
//! to the split's feature. The bias is `base + scale × Σ root values` and
//! `bias + Σ contributions` equals the prediction (to rounding). This is
//! what XGBoost computes with `approx_contribs = true`; it costs one path
//! walk per tree, like a prediction.

use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::errors::{ModelError, Result};

mod layout;
pub use layout::{BLOCK, SPAN, top_k};

const NAME: &str = "tree ensemble";

/// Marks a leaf in [`Node::left`] / [`Node::right`].
pub const LEAF: u32 = u32::MAX;

/// How a feature value is compared with a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// `(x as f32) < (threshold as f32)`: XGBoost's rule.
    F32,
    /// `x < threshold` in `f64`.
    F64,
}

/// One node as given to [`TreeEnsemble::new`]: a split (`left`, `right` are
/// indices of later nodes of the same tree) or a leaf (`left == right ==
/// LEAF`, `value` is the leaf's output).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
    pub default_left: bool,
    /// Leaf output; ignored (recomputed) for inner nodes.
    pub value: f64,
    /// Training weight (rows, or hessian sum) that reached the node; > 0.
    pub cover: f64,
}

impl Node {
    pub fn leaf(value: f64, cover: f64) -> Self {
        Node {
            feature: 0,
            threshold: 0.0,
            left: LEAF,
            right: LEAF,
            default_left: true,
            value,
            cover,
        }
    }

    pub fn split(feature: u32, threshold: f64, left: u32, right: u32, cover: f64) -> Self {
        Node {
            feature,
            threshold,
            left,
            right,
            default_left: true,
            value: 0.0,
            cover,
        }
    }

    pub fn is_leaf(&self) -> bool {
        self.left == LEAF
    }
}

/// A checked ensemble of trees (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeEnsemble {
    n_features: usize,
    base: f64,
    scale: f64,
    compare: Compare,
    trees: Vec<Vec<Node>>,
    /// The walking layout, built on first use (see `layout.rs`).
    #[serde(skip)]
    layout: LayoutCell,
}

/// The ensemble's [`layout::Layout`], built once on first use. It is
/// derived from the trees: two ensembles are equal when their trees are,
/// and a clone builds its own.
#[derive(Default)]
struct LayoutCell(OnceLock<layout::Layout>);

impl Clone for LayoutCell {
    fn clone(&self) -> Self {
        LayoutCell::default()
    }
}

impl PartialEq for LayoutCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for LayoutCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "LayoutCell(built)"
        } else {
            "LayoutCell(not built)"
        })
    }
}

fn bad(what: &'static str, expected: impl Into<String>, found: impl Into<String>) -> ModelError {
    ModelError::Shape {
        model: NAME,
        what,
        expected: expected.into(),
        found: found.into(),
    }
}

impl TreeEnsemble {
    /// Check the trees and compute the inner nodes' values. Errors name the
    /// tree and node: a child index that is not a later node of the same
    /// tree, a feature out of range, a non-finite threshold, value or cover,
    /// a cover that is not positive, a node no path reaches.
    pub fn new(
        n_features: usize,
        base: f64,
        scale: f64,
        compare: Compare,
        mut trees: Vec<Vec<Node>>,
    ) -> Result<Self> {
        if !base.is_finite() || !scale.is_finite() || scale <= 0.0 {
            return Err(bad(
                "base and scale",
                "a finite base and a finite scale > 0",
                format!("base {base}, scale {scale}"),
            ));
        }
        if trees.is_empty() {
            return Err(bad("trees", "at least one tree", "none"));
        }
        for (t, nodes) in trees.iter_mut().enumerate() {
            check_tree(t, n_features, nodes)?;
            // Children come after their parent: one backward pass fills
            // every inner node from its (already final) children.
            for i in (0..nodes.len()).rev() {
                let n = nodes[i];
                if !n.is_leaf() {
                    let (l, r) = (nodes[n.left as usize], nodes[n.right as usize]);
                    let c = l.cover + r.cover;
                    nodes[i].value = (l.value * l.cover + r.value * r.cover) / c;
                }
            }
        }
        Ok(TreeEnsemble {
            n_features,
            base,
            scale,
            compare,
            trees,
            layout: LayoutCell::default(),
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }
    pub fn base(&self) -> f64 {
        self.base
    }
    pub fn scale(&self) -> f64 {
        self.scale
    }
    pub fn compare(&self) -> Compare {
        self.compare
    }
    pub fn trees(&self) -> &[Vec<Node>] {
        &self.trees
    }
    /// Nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.trees.iter().map(Vec::len).sum()
    }

    #[inline]
    fn goes_left(&self, n: &Node, x: f64) -> bool {
        if x.is_nan() {
            return n.default_left;
        }
        match self.compare {
            Compare::F32 => (x as f32) < (n.threshold as f32),
            Compare::F64 => x < n.threshold,
        }
    }

    /// The leaf index a row reaches in one tree.
    #[inline]
    fn leaf_of(&self, nodes: &[Node], x: &[f64]) -> usize {
        let mut i = 0usize;
        loop {
            let n = &nodes[i];
            if n.is_leaf() {
                return i;
            }
            let v = x[n.feature as usize];
            i = if self.goes_left(n, v) {
                n.left
            } else {
                n.right
            } as usize;
        }
    }

    fn check_row(&self, x: &[f64]) -> Result<()> {
        if x.len() != self.n_features {
            return Err(bad(
                "features",
                format!("{} values", self.n_features),
                format!("{} values", x.len()),
            ));
        }
        Ok(())
    }

    /// The prediction for one row of `n_features` values.
    pub fn predict_row(&self, x: &[f64]) -> Result<f64> {
        self.check_row(x)?;
        Ok(self.predict_row_unchecked(x))
    }

    #[inline]
    fn predict_row_unchecked(&self, x: &[f64]) -> f64 {
        let sum: f64 = self
            .trees
            .iter()
            .map(|nodes| nodes[self.leaf_of(nodes, x)].value)
            .sum();
        self.base + self.scale * sum
    }

    fn layout(&self) -> Result<&layout::Layout> {
        if let Some(l) = self.layout.0.get() {
            return Ok(l);
        }
        let built = layout::Layout::new(self)?;
        // Another thread may have built it meanwhile: either copy will do.
        Ok(self.layout.0.get_or_init(|| built))
    }

    fn check_matrix(&self, values: &[f64]) -> Result<()> {
        let p = self.n_features;
        if p == 0 || !values.len().is_multiple_of(p) {
            return Err(bad(
                "feature matrix",
                format!("a multiple of {p} values (row-major rows)"),
                format!("{} values", values.len()),
            ));
        }
        Ok(())
    }

    /// Predictions for row-major `values` (`n_features` per row), equal bit
    /// for bit to [`TreeEnsemble::predict_row`] (the same sums in the same
    /// order), by the block walk of `layout.rs`. Large inputs are split
    /// over the rayon pool; the result never depends on it.
    pub fn predict(&self, values: &[f64]) -> Result<Vec<f64>> {
        self.check_matrix(values)?;
        let p = self.n_features;
        let layout = self.layout()?;
        const CHUNK_ROWS: usize = SPAN;
        const PAR_ROWS: usize = 2_048;
        let mut out = Vec::with_capacity(values.len() / p);
        if values.len() / p < PAR_ROWS {
            layout.predict(self, values, 0, &mut out, &mut Vec::new())?;
            return Ok(out);
        }
        let parts = values
            .par_chunks(p * CHUNK_ROWS)
            .map(|chunk| {
                let mut v = Vec::with_capacity(CHUNK_ROWS);
                layout.predict(self, chunk, 0, &mut v, &mut Vec::new())?;
                Ok(v)
            })
            .collect::<Result<Vec<_>>>()?;
        parts.iter().for_each(|v| out.extend_from_slice(v));
        Ok(out)
    }

    /// Predictions for row-major `rows` appended to `values` and, with
    /// `k > 0`, each row's `min(k, n_features)` largest contributions
    /// (Saabas, see the module documentation) appended to `top` as
    /// `(feature, value)`, largest |value| first, ties in feature order.
    /// On the calling thread (a request's batch).
    pub fn predict_with_contributions(
        &self,
        rows: &[f64],
        k: usize,
        values: &mut Vec<f64>,
        top: &mut Vec<(u32, f64)>,
    ) -> Result<()> {
        self.check_matrix(rows)?;
        self.layout()?
            .predict(self, rows, k.min(self.n_features), values, top)
    }

    /// Per-feature contributions of one row (Saabas path attribution, see
    /// the module documentation) written into `out` (`n_features` values,
    /// overwritten); returns the bias. `bias + Σ out` is the prediction.
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) -> Result<f64> {
        self.check_row(x)?;
        if out.len() != self.n_features {
            return Err(bad(
                "contributions buffer",
                format!("{} values", self.n_features),
                format!("{} values", out.len()),
            ));
        }
        out.iter_mut().for_each(|o| *o = 0.0);
        let mut bias_sum = 0.0;
        for nodes in &self.trees {
            let mut i = 0usize;
            bias_sum += nodes[0].value;
            loop {
                let n = &nodes[i];
                if n.is_leaf() {
                    break;
                }
                let next = if self.goes_left(n, x[n.feature as usize]) {
                    n.left
                } else {
                    n.right
                } as usize;
                out[n.feature as usize] += self.scale * (nodes[next].value - n.value);
                i = next;
            }
        }
        Ok(self.base + self.scale * bias_sum)
    }
}

fn check_tree(t: usize, n_features: usize, nodes: &[Node]) -> Result<()> {
    if nodes.is_empty() {
        return Err(bad(
            "tree",
            "at least one node",
            format!("tree {t} is empty"),
        ));
    }
    if nodes.len() >= LEAF as usize {
        return Err(bad(
            "tree",
            format!("fewer than {LEAF} nodes"),
            format!("tree {t} has {}", nodes.len()),
        ));
    }
    let mut reached = vec![false; nodes.len()];
    reached[0] = true;
    for (i, n) in nodes.iter().enumerate() {
        let at = || format!("tree {t}, node {i}");
        if !reached[i] {
            return Err(bad(
                "tree",
                "every node reachable from the root",
                format!("{} is not", at()),
            ));
        }
        if !n.cover.is_finite() || n.cover <= 0.0 {
            return Err(bad(
                "cover",
                "a finite cover > 0",
                format!("{} at {}", n.cover, at()),
            ));
        }
        if n.is_leaf() {
            if n.right != LEAF {
                return Err(bad(
                    "leaf",
                    "both children LEAF",
                    format!("right child {} at {}", n.right, at()),
                ));
            }
            if !n.value.is_finite() {
                return Err(bad(
                    "leaf value",
                    "a finite number",
                    format!("{} at {}", n.value, at()),
                ));
            }
            continue;
        }
        for c in [n.left, n.right] {
            let c = c as usize;
            if c <= i || c >= nodes.len() || reached[c] {
                return Err(bad(
                    "child index",
                    format!(
                        "a later node of the tree (in {}..{}) with one parent",
                        i + 1,
                        nodes.len()
                    ),
                    format!("{c} at {}", at()),
                ));
            }
            reached[c] = true;
        }
        if n.feature as usize >= n_features {
            return Err(bad(
                "split feature",
                format!("a feature index below {n_features}"),
                format!("{} at {}", n.feature, at()),
            ));
        }
        if !n.threshold.is_finite() {
            return Err(bad(
                "threshold",
                "a finite number",
                format!("{} at {}", n.threshold, at()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x0 < 5 → (x1 < 1 → 1.0 [cover 2] | 3.0 [cover 2]) | 10.0 [cover 4]
    fn tree() -> Vec<Node> {
        vec![
            Node::split(0, 5.0, 1, 2, 8.0),
            Node::split(1, 1.0, 3, 4, 4.0),
            Node::leaf(10.0, 4.0),
            Node::leaf(1.0, 2.0),
            Node::leaf(3.0, 2.0),
        ]
    }

    #[test]
    fn predicts_by_the_strict_less_than_rule() {
        let e = TreeEnsemble::new(2, 0.5, 1.0, Compare::F64, vec![tree()]).expect("valid");
        assert_eq!(e.predict_row(&[4.9, 0.0]).expect("row"), 1.5);
        assert_eq!(e.predict_row(&[4.9, 1.0]).expect("row"), 3.5); // 1.0 is not < 1.0
        assert_eq!(e.predict_row(&[5.0, 0.0]).expect("row"), 10.5);
        // NaN follows default_left (true): x0 NaN → left, x1 NaN → left.
        assert_eq!(e.predict_row(&[f64::NAN, f64::NAN]).expect("row"), 1.5);
    }

    #[test]
    fn a_forest_averages_its_trees_and_batch_equals_rows() {
        let mut t2 = tree();
        t2[2].value = 20.0;
        let e = TreeEnsemble::new(2, 0.0, 0.5, Compare::F64, vec![tree(), t2]).expect("valid");
        assert_eq!(e.predict_row(&[6.0, 0.0]).expect("row"), 15.0);
        let rows: Vec<f64> = (0..5000)
            .flat_map(|i| [(i % 10) as f64, (i % 3) as f64 * 0.7])
            .collect();
        let batch = e.predict(&rows).expect("batch");
        for (i, r) in rows.chunks(2).enumerate() {
            assert_eq!(batch[i], e.predict_row(r).expect("row"));
        }
        assert!(e.predict(&rows[..3]).is_err());
        // NaN follows default_left, and F32 comparisons hold in the batch too.
        let mut t3 = tree();
        t3[1].default_left = false;
        let f = TreeEnsemble::new(2, 0.25, 1.0, Compare::F32, vec![tree(), t3]).expect("valid");
        let odd: Vec<f64> = (0..3001)
            .flat_map(|i| match i % 4 {
                0 => [f64::NAN, 0.5],
                1 => [1.0, f64::NAN],
                2 => [4.999_999_999, 1.0 - 1e-12],
                _ => [(i % 7) as f64, (i % 5) as f64 * 0.4],
            })
            .collect();
        let batch = f.predict(&odd).expect("batch");
        for (i, r) in odd.chunks(2).enumerate() {
            assert_eq!(
                batch[i].to_bits(),
                f.predict_row(r).expect("row").to_bits(),
                "row {i}"
            );
        }
    }

    #[test]
    fn inner_values_are_cover_weighted_means_and_contributions_add_up() {
        let e = TreeEnsemble::new(2, 0.5, 1.0, Compare::F64, vec![tree()]).expect("valid");
        let root = (1.0 * 2.0 + 3.0 * 2.0 + 10.0 * 4.0) / 8.0; // 6.0
        assert_eq!(e.trees()[0][0].value, root);
        assert_eq!(e.trees()[0][1].value, 2.0);
        let mut c = [0.0; 2];
        let bias = e.contributions(&[1.0, 0.0], &mut c).expect("row");
        assert_eq!(bias, 0.5 + root);
        // Root → node 1 (6 → 2) is x0's; node 1 → leaf 3 (2 → 1) is x1's.
        assert_eq!(c, [-4.0, -1.0]);
        for x in [[0.0, 0.0], [0.0, 2.0], [7.0, 9.0]] {
            let b = e.contributions(&x, &mut c).expect("row");
            assert!((b + c.iter().sum::<f64>() - e.predict_row(&x).expect("row")).abs() < 1e-12);
        }
    }

    #[test]
    fn f32_comparison_follows_xgboost() {
        // 0.1f64 rounds to the f32 0.1, which equals the f32 threshold: not less.
        let t = vec![
            Node::split(0, 0.1f32 as f64, 1, 2, 2.0),
            Node::leaf(1.0, 1.0),
            Node::leaf(2.0, 1.0),
        ];
        let f32e = TreeEnsemble::new(1, 0.0, 1.0, Compare::F32, vec![t.clone()]).expect("valid");
        let f64e = TreeEnsemble::new(1, 0.0, 1.0, Compare::F64, vec![t]).expect("valid");
        assert_eq!(f32e.predict_row(&[0.1]).expect("row"), 2.0);
        assert_eq!(f64e.predict_row(&[0.1]).expect("row"), 1.0); // 0.1 < 0.100000001…
    }

    #[test]
    fn malformed_trees_are_refused_with_the_place() {
        let mut cyc = tree();
        cyc[1].left = 0;
        let e = TreeEnsemble::new(2, 0.0, 1.0, Compare::F64, vec![cyc]).expect_err("cycle");
        assert!(e.to_string().contains("tree 0, node 1"), "{e}");
        let mut feat = tree();
        feat[0].feature = 7;
        let e = TreeEnsemble::new(2, 0.0, 1.0, Compare::F64, vec![feat]).expect_err("feature");
        assert!(e.to_string().contains("below 2"), "{e}");
        let mut cover = tree();
        cover[3].cover = 0.0;
        assert!(TreeEnsemble::new(2, 0.0, 1.0, Compare::F64, vec![cover]).is_err());
        let mut nan = tree();
        nan[4].value = f64::NAN;
        assert!(TreeEnsemble::new(2, 0.0, 1.0, Compare::F64, vec![nan]).is_err());
        assert!(TreeEnsemble::new(2, 0.0, 1.0, Compare::F64, vec![]).is_err());
        assert!(TreeEnsemble::new(2, 0.0, 0.0, Compare::F64, vec![tree()]).is_err());
        let e = TreeEnsemble::new(2, 0.0, 1.0, Compare::F64, vec![tree()]).expect("valid");
        assert!(e.predict_row(&[1.0]).is_err());
    }
}
