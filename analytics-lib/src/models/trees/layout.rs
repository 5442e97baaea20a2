//! The walking layout of a [`TreeEnsemble`]: the one tree walker behind
//! every batch prediction (the CLI, the retrain job, the notebooks and the
//! API all predict through [`TreeEnsemble::predict`] or
//! [`TreeEnsemble::predict_with_contributions`], which use it).
//!
//! Every tree's nodes sit in one array, each tree with its depth. A block
//! of [`BLOCK`] rows walks one tree together, every row exactly `depth`
//! steps (a row that reached its leaf stays there: a leaf's children are
//! itself), so no branch depends on the data and the rows' chains of node
//! loads overlap in the CPU. With contributions, every step also credits
//! `scale × (child value − node value)` to the split's feature, as the row
//! walk does, from a node-value array beside the nodes (the values of the
//! nodes just walked, in cache). A step that stays on its leaf credits
//! `+0.0`, which changes no sum.
//!
//! Trees that are not too deep for it (every ensemble the project trains)
//! are laid out *complete* instead ([`Implicit`]): a tree of depth `d` takes
//! `2^(d+1) − 1` slots, node `s`'s children are `2s + 1` and `2s + 2`, and a
//! leaf above the last level continues to the left (threshold +∞) down to
//! its one reachable slot of the last level; every slot on that way holds
//! the leaf's value (so those steps credit `+0.0`).
//! A step is then one compare and an addition: no child index to load, and
//! nodes of 8 bytes (`f32`) instead of 16.
//!
//! Predictions and contributions are the row walk's arithmetic in its order,
//! equal to [`TreeEnsemble::predict_row`] and [`TreeEnsemble::contributions`]
//! to the last bit. Rows with a missing (NaN) or infinite value are left to
//! the row walk, which follows `default_left`. Tests check all three.
//!
//! (Until December 2026 each leaf carried its path's contributions summed
//! per feature, added after the walk. Those lists took ~11 MB for the
//! default forest, and reading them from memory was most of a batch's cost:
//! the walk's own node values are already in cache.)

use super::{Compare, TreeEnsemble, bad};
use crate::models::errors::Result;

/// Rows walked together, step by step. 64 rather than 16: more rows'
/// chains of loads in flight, which pays off when a tree does not fit the
/// L1 cache (the default forest's depth-10 trees: its walk with
/// contributions −20 % per 1,000 rows; XGBoost's small trees unchanged).
pub const BLOCK: usize = 64;

/// Rows walking one tree before the next ([`span`]): a multiple of
/// [`BLOCK`]; their values (and contributions) stay in the L1/L2 cache.
pub const SPAN: usize = 1024;

/// The layout in the width of the ensemble's comparisons: `f32` for
/// XGBoost's rule, `f64` otherwise.
#[derive(Debug)]
pub(super) enum Layout {
    F32(Flat<f32>),
    F64(Flat<f64>),
    Implicit32(Implicit<f32>),
    Implicit64(Implicit<f64>),
}

/// A layout walked by [`span`]: the pointer layout or the complete one.
trait Walk<T> {
    type Tree<'a>: Steps<T>
    where
        Self: 'a;
    fn head(&self) -> Head;
    fn n_trees(&self) -> usize;
    fn tree(&self, t: usize) -> Self::Tree<'_>;
}

/// One tree as a walk steps through it.
trait Steps<T> {
    /// Where every row starts, and how many steps every row takes (a row
    /// that reached its leaf stays there).
    fn start(&self) -> u32;
    fn depth(&self) -> u32;
    /// The node after `i` for `row`, and the feature `i` splits on.
    fn next(&self, i: u32, row: &[T]) -> (u32, usize);
    /// What the step from `i` to `next` credits to that feature:
    /// `scale × (value of next − value of i)`, as the row walk computes it.
    fn credit(&self, i: u32, next: u32) -> f64;
    /// The output of the leaf a walk ended at.
    fn leaf(&self, i: u32) -> f64;
}

/// Up to [`SPAN`] rows (`x`: row-major, in `T`, finite): predictions into
/// `out`; with `contrib` (`rows × p`, zeroed here), contributions.
/// Tree by tree: every block of the span walks a tree before the next tree
/// is read, so a tree is brought into cache once per span, not once per
/// block (the default forest's nodes take 4.8 MB, more than the L2 cache).
/// Each row still adds its trees in tree order.
#[inline(always)]
fn span<T, W: Walk<T>>(w: &W, x: &[T], out: &mut [f64], mut contrib: Option<&mut [f64]>) {
    let Head { p, base, scale } = w.head();
    let n_rows = out.len();
    // -0.0: where `Iterator::sum` starts, as in the row walk.
    let mut sums = [-0.0f64; SPAN];
    if let Some(c) = contrib.as_deref_mut() {
        c.fill(0.0);
    }
    for t in 0..w.n_trees() {
        let tree = w.tree(t);
        for b0 in (0..n_rows).step_by(BLOCK) {
            let n = BLOCK.min(n_rows - b0);
            let x = &x[b0 * p..(b0 + n) * p];
            let mut idx = [tree.start(); BLOCK];
            match contrib.as_deref_mut() {
                None => {
                    for _ in 0..tree.depth() {
                        for (i, row) in idx[..n].iter_mut().zip(x.chunks_exact(p)) {
                            *i = tree.next(*i, row).0;
                        }
                    }
                }
                Some(c) => {
                    let c = &mut c[b0 * p..(b0 + n) * p];
                    for _ in 0..tree.depth() {
                        for (i, (row, c)) in idx[..n]
                            .iter_mut()
                            .zip(x.chunks_exact(p).zip(c.chunks_exact_mut(p)))
                        {
                            let (next, f) = tree.next(*i, row);
                            c[f] += tree.credit(*i, next);
                            *i = next;
                        }
                    }
                }
            }
            for (&i, s) in idx[..n].iter().zip(&mut sums[b0..b0 + n]) {
                *s += tree.leaf(i);
            }
        }
    }
    for (o, s) in out.iter_mut().zip(&sums) {
        *o = base + scale * s;
    }
}

/// Deepest tree laid out complete (2^17 − 1 slots).
const IMPLICIT_MAX_DEPTH: u32 = 16;

/// What both layouts of an ensemble share: its width (features a row
/// has), and a prediction is `base + scale × Σ leaves`.
#[derive(Clone, Copy, Debug)]
struct Head {
    p: usize,
    base: f64,
    scale: f64,
}

/// One slot of a complete tree: left iff `v < threshold`.
#[derive(Clone, Copy, Debug)]
struct Slot<T> {
    threshold: T,
    feature: u32,
}

/// The complete layout (see the module docs).
#[derive(Debug)]
pub(super) struct Implicit<T> {
    head: Head,
    slots: Vec<Slot<T>>,
    /// Per slot but a root: what a step into it credits to its parent's
    /// feature, `scale × (value − parent's value)`, computed as the row walk
    /// computes it (a node's value; the padding below a leaf holds the
    /// leaf's, so its steps credit `±0.0`; 0 where no path arrives).
    delta: Vec<f64>,
    /// Per tree: its first slot, its depth, its first last-level slot in
    /// `leaf_value`.
    trees: Vec<(u32, u32, u32)>,
    /// Per last-level slot: the leaf's value (0 where no leaf arrives).
    leaf_value: Vec<f64>,
}

/// One node: the threshold, the split feature and the two children (global
/// indices; a leaf's children are itself).
#[derive(Clone, Copy, Debug)]
struct FlatNode<T> {
    threshold: T,
    feature: u32,
    child: [u32; 2],
}

#[derive(Debug)]
pub(super) struct Flat<T> {
    head: Head,
    nodes: Vec<FlatNode<T>>,
    /// Per node: its value (a leaf's output, an inner node's cover-weighted
    /// mean).
    value: Vec<f64>,
    /// Per tree: its root and its depth (edges on the longest path).
    roots: Vec<(u32, u32)>,
}

impl<T: Copy + PartialOrd + Default> Flat<T> {
    fn new(e: &TreeEnsemble, threshold: impl Fn(f64) -> T) -> Result<Self> {
        let total = e.n_nodes();
        if total >= u32::MAX as usize / 2 {
            return Err(bad(
                "trees",
                "fewer than 2^31 nodes in all",
                format!("{total} nodes"),
            ));
        }
        let mut t = Flat {
            head: Head {
                p: e.n_features(),
                base: e.base(),
                scale: e.scale(),
            },
            nodes: Vec::with_capacity(total),
            value: Vec::with_capacity(total),
            roots: Vec::with_capacity(e.n_trees()),
        };
        for nodes in e.trees() {
            let off = t.nodes.len() as u32;
            // Per node: its depth (children always come after it).
            let mut depth = vec![0u32; nodes.len()];
            for (i, n) in nodes.iter().enumerate() {
                let me = off + i as u32;
                t.value.push(n.value);
                if n.is_leaf() {
                    t.nodes.push(FlatNode {
                        threshold: T::default(),
                        feature: 0,
                        child: [me, me],
                    });
                } else {
                    t.nodes.push(FlatNode {
                        threshold: threshold(n.threshold),
                        feature: n.feature,
                        child: [off + n.left, off + n.right],
                    });
                    for c in [n.left, n.right] {
                        depth[c as usize] = depth[i] + 1;
                    }
                }
            }
            t.roots
                .push((off, depth.iter().copied().max().unwrap_or(0)));
        }
        Ok(t)
    }
}

/// One tree of the pointer layout.
struct FlatTree<'a, T> {
    nodes: &'a [FlatNode<T>],
    value: &'a [f64],
    scale: f64,
    root: u32,
    depth: u32,
}

impl<T: Copy + PartialOrd> Steps<T> for FlatTree<'_, T> {
    #[inline(always)]
    fn start(&self) -> u32 {
        self.root
    }
    #[inline(always)]
    fn depth(&self) -> u32 {
        self.depth
    }
    #[inline(always)]
    fn next(&self, i: u32, row: &[T]) -> (u32, usize) {
        let node = &self.nodes[i as usize];
        let f = node.feature as usize;
        // Left iff v < threshold; a leaf's children are itself.
        (node.child[usize::from(row[f] >= node.threshold)], f)
    }
    #[inline(always)]
    fn credit(&self, i: u32, next: u32) -> f64 {
        self.scale * (self.value[next as usize] - self.value[i as usize])
    }
    #[inline(always)]
    fn leaf(&self, i: u32) -> f64 {
        self.value[i as usize]
    }
}

impl<T: Copy + PartialOrd> Walk<T> for Flat<T> {
    type Tree<'a>
        = FlatTree<'a, T>
    where
        T: 'a;
    fn head(&self) -> Head {
        self.head
    }
    fn n_trees(&self) -> usize {
        self.roots.len()
    }
    #[inline(always)]
    fn tree(&self, t: usize) -> FlatTree<'_, T> {
        let (root, depth) = self.roots[t];
        FlatTree {
            nodes: &self.nodes,
            value: &self.value,
            scale: self.head.scale,
            root,
            depth,
        }
    }
}

/// See [`Layout::predict`].
fn run<T, W: Walk<T>>(
    w: &W,
    e: &TreeEnsemble,
    rows: &[f64],
    k: usize,
    values: &mut Vec<f64>,
    top: &mut Vec<(u32, f64)>,
    convert: impl Fn(f64) -> T,
) -> Result<()> {
    let p = w.head().p;
    let mut x: Vec<T> = Vec::with_capacity(SPAN * p);
    let mut contrib = vec![0.0; if k > 0 { SPAN * p } else { 0 }];
    let mut scratch = Vec::with_capacity(if k > 0 { p } else { 0 });
    let mut out = [0.0f64; SPAN];
    // The row walk's contributions, for rows with a missing value.
    let (mut row_c, mut row_scratch) = (vec![0.0; p], Vec::new());
    let mut walk = |chunk: &[f64], values: &mut Vec<f64>, top: &mut Vec<(u32, f64)>| {
        let n = chunk.len() / p;
        x.clear();
        x.extend(chunk.iter().map(|&v| convert(v)));
        let c = (k > 0).then(|| &mut contrib[..n * p]);
        span(w, &x, &mut out[..n], c);
        values.extend_from_slice(&out[..n]);
        if k > 0 {
            for c in contrib[..n * p].chunks_exact(p) {
                top_k(c, k, top, &mut scratch);
            }
        }
    };
    for span in rows.chunks(SPAN * p) {
        if span.iter().all(|v| v.is_finite()) {
            walk(span, values, top);
            continue;
        }
        for chunk in span.chunks(BLOCK * p) {
            if chunk.iter().all(|v| v.is_finite()) {
                walk(chunk, values, top);
                continue;
            }
            // Missing values follow `default_left`: the row walk (and
            // infinities, which the complete layout's +∞ padding cannot
            // hold).
            for r in chunk.chunks_exact(p) {
                values.push(e.predict_row(r)?);
                if k > 0 {
                    e.contributions(r, &mut row_c)?;
                    top_k(&row_c, k, top, &mut row_scratch);
                }
            }
        }
    }
    Ok(())
}

impl<T: Copy + PartialOrd + Default> Implicit<T> {
    /// The complete layout of `e` (its pointer layout `flat` gives the
    /// leaves' paths), or `None` when a tree is too deep or the padding
    /// would take too much room.
    fn new(e: &TreeEnsemble, flat: &Flat<T>, threshold: impl Fn(f64) -> T) -> Option<Self> {
        let depths: Vec<u32> = flat.roots.iter().map(|r| r.1).collect();
        if depths.iter().any(|&d| d > IMPLICIT_MAX_DEPTH) {
            return None;
        }
        let slots: usize = depths.iter().map(|&d| (2usize << d) - 1).sum();
        if slots > 8 * e.n_nodes() + 4096 || slots >= u32::MAX as usize / 2 {
            return None;
        }
        let mut t = Implicit {
            head: flat.head,
            slots: Vec::with_capacity(slots),
            delta: Vec::with_capacity(slots),
            trees: Vec::with_capacity(depths.len()),
            leaf_value: Vec::new(),
        };
        let always_left = threshold(f64::INFINITY);
        for (nodes, &(root, depth)) in e.trees().iter().zip(&flat.roots) {
            let first = t.slots.len();
            let last_level = t.leaf_value.len();
            let width = 1usize << depth;
            t.slots.resize(
                first + (2 << depth) - 1,
                Slot {
                    threshold: always_left,
                    feature: 0,
                },
            );
            // Per slot of this tree: its node's value.
            let mut value = vec![0.0f64; (2 << depth) - 1];
            // Per last-level slot: the flat index of the leaf arriving there.
            let mut arrives: Vec<Option<u32>> = vec![None; width];
            // (node of the tree, its slot, its level)
            let mut stack = vec![(0usize, 0usize, 0u32)];
            while let Some((i, slot, level)) = stack.pop() {
                let n = &nodes[i];
                value[slot] = n.value;
                if level == depth {
                    arrives[slot - (width - 1)] = Some(root + i as u32);
                } else if n.is_leaf() {
                    // Padding: to the left, down to the last level.
                    stack.push((i, 2 * slot + 1, level + 1));
                } else {
                    t.slots[first + slot] = Slot {
                        threshold: threshold(n.threshold),
                        feature: n.feature,
                    };
                    stack.push((n.left as usize, 2 * slot + 1, level + 1));
                    stack.push((n.right as usize, 2 * slot + 2, level + 1));
                }
            }
            t.delta.push(0.0);
            t.delta
                .extend((1..value.len()).map(|s| t.head.scale * (value[s] - value[(s - 1) / 2])));
            for a in arrives {
                t.leaf_value
                    .push(a.map_or(0.0, |leaf| flat.value[leaf as usize]));
            }
            t.trees.push((first as u32, depth, last_level as u32));
        }
        Some(t)
    }
}

/// One tree of the complete layout: its slots and deltas from its first
/// slot, its last level's leaf outputs.
struct ImplicitTree<'a, T> {
    slots: &'a [Slot<T>],
    delta: &'a [f64],
    leaves: &'a [f64],
    depth: u32,
    /// The first slot of the last level.
    top: u32,
}

impl<T: Copy + PartialOrd> Steps<T> for ImplicitTree<'_, T> {
    #[inline(always)]
    fn start(&self) -> u32 {
        0
    }
    #[inline(always)]
    fn depth(&self) -> u32 {
        self.depth
    }
    #[inline(always)]
    fn next(&self, i: u32, row: &[T]) -> (u32, usize) {
        let s = &self.slots[i as usize];
        let f = s.feature as usize;
        // Left iff v < threshold (+∞ on padding: always left).
        (2 * i + 1 + u32::from(row[f] >= s.threshold), f)
    }
    #[inline(always)]
    fn credit(&self, _: u32, next: u32) -> f64 {
        self.delta[next as usize]
    }
    #[inline(always)]
    fn leaf(&self, i: u32) -> f64 {
        self.leaves[(i - self.top) as usize]
    }
}

impl<T: Copy + PartialOrd> Walk<T> for Implicit<T> {
    type Tree<'a>
        = ImplicitTree<'a, T>
    where
        T: 'a;
    fn head(&self) -> Head {
        self.head
    }
    fn n_trees(&self) -> usize {
        self.trees.len()
    }
    #[inline(always)]
    fn tree(&self, t: usize) -> ImplicitTree<'_, T> {
        let (first, depth, last_level) = self.trees[t];
        ImplicitTree {
            slots: &self.slots[first as usize..],
            delta: &self.delta[first as usize..],
            leaves: &self.leaf_value[last_level as usize..],
            depth,
            top: (1u32 << depth) - 1,
        }
    }
}

impl Layout {
    /// The complete layout when every tree fits it, else the pointer one.
    pub(super) fn new(e: &TreeEnsemble) -> Result<Layout> {
        Ok(match e.compare() {
            Compare::F32 => {
                let flat = Flat::new(e, |t| t as f32)?;
                match Implicit::new(e, &flat, |t| t as f32) {
                    Some(i) => Layout::Implicit32(i),
                    None => Layout::F32(flat),
                }
            }
            Compare::F64 => {
                let flat = Flat::new(e, |t| t)?;
                match Implicit::new(e, &flat, |t| t) {
                    Some(i) => Layout::Implicit64(i),
                    None => Layout::F64(flat),
                }
            }
        })
    }

    /// The pointer layout only (tests compare the two).
    #[cfg(test)]
    fn pointer(e: &TreeEnsemble) -> Result<Layout> {
        Ok(match e.compare() {
            Compare::F32 => Layout::F32(Flat::new(e, |t| t as f32)?),
            Compare::F64 => Layout::F64(Flat::new(e, |t| t)?),
        })
    }

    /// Predictions of the row-major `rows` (whole rows of the ensemble's
    /// width, checked by the caller) appended to `values`; with `k > 0`,
    /// each row's `k` largest contributions appended to `top`. `e`: the
    /// ensemble itself, for rows with a missing value.
    pub(super) fn predict(
        &self,
        e: &TreeEnsemble,
        rows: &[f64],
        k: usize,
        values: &mut Vec<f64>,
        top: &mut Vec<(u32, f64)>,
    ) -> Result<()> {
        match self {
            Layout::F32(f) => run(f, e, rows, k, values, top, |v| v as f32),
            Layout::F64(f) => run(f, e, rows, k, values, top, |v| v),
            Layout::Implicit32(f) => run(f, e, rows, k, values, top, |v| v as f32),
            Layout::Implicit64(f) => run(f, e, rows, k, values, top, |v| v),
        }
    }
}

/// Append the `k` largest |value| of `c` as `(index, value)` to `out`,
/// largest first, ties in index order. `scratch`: reused between calls.
pub fn top_k(c: &[f64], k: usize, out: &mut Vec<(u32, f64)>, scratch: &mut Vec<(u32, f64)>) {
    let k = k.min(c.len());
    if k == 0 {
        return;
    }
    scratch.clear();
    scratch.extend(c.iter().enumerate().map(|(j, &v)| (j as u32, v)));
    // A total order (|value| descending, then index): the unstable
    // selection gives what a stable sort by |value| gives.
    let order =
        |a: &(u32, f64), b: &(u32, f64)| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0));
    if k < scratch.len() {
        scratch.select_nth_unstable_by(k - 1, order);
    }
    scratch[..k].sort_unstable_by(order);
    out.extend_from_slice(&scratch[..k]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FeatureMatrix;
    use crate::models::{ForestParams, XgbParams};

    fn data(n: usize) -> (FeatureMatrix, Vec<f64>) {
        let p = 5;
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let mut v = Vec::with_capacity(n * p);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let r: Vec<f64> = (0..p)
                .map(|j| (next() * 10.0 * (j + 1) as f64).round() / 4.0)
                .collect();
            y.push(r[0] * 2.0 + r[1] * r[2] / 10.0 + (r[3] > 5.0) as u8 as f64 * 3.0 + next());
            v.extend_from_slice(&r);
        }
        let names = (0..p).map(|j| format!("f{j}")).collect();
        (FeatureMatrix::new(names, v).expect("x"), y)
    }

    /// The block walk equals the row walk bit for bit: values (with and
    /// without contributions, sequential and over the pool) and the top
    /// contributions (all of them, ties in feature order).
    #[test]
    fn the_block_walk_equals_the_row_walk() {
        let (x, y) = data(2_000);
        let xgb = XgbParams::new()
            .rounds(30)
            .max_depth(5)
            .threads(Some(1))
            .fit(&x, &y)
            .expect("xgb")
            .to_ensemble()
            .expect("ensemble");
        let forest = ForestParams::new()
            .n_trees(12)
            .max_depth(Some(7))
            .fit(&x, &y)
            .expect("forest")
            .ensemble()
            .clone();
        let p = x.n_cols();
        // Some rows hit thresholds exactly (training values), some have NaN.
        let mut rows = x.values()[..301 * p].to_vec();
        rows[7] = f64::NAN;
        rows[p * 10 + 2] = f64::NAN;
        for e in [xgb, forest] {
            let (mut values, mut top) = (Vec::new(), Vec::new());
            e.predict_with_contributions(&rows, p, &mut values, &mut top)
                .expect("predict");
            assert_eq!(values.len(), 301);
            let mut c = vec![0.0; p];
            let mut want = Vec::new();
            let mut scratch = Vec::new();
            for (i, r) in rows.chunks(p).enumerate() {
                assert_eq!(
                    values[i].to_bits(),
                    e.predict_row(r).expect("row").to_bits(),
                    "row {i}"
                );
                e.contributions(r, &mut c).expect("contributions");
                top_k(&c, p, &mut want, &mut scratch);
            }
            // Same features in the same order, values bit for bit (the
            // same additions in the same order).
            assert_eq!(top.len(), want.len());
            for (i, (a, b)) in top.iter().zip(&want).enumerate() {
                assert_eq!(
                    (a.0, a.1.to_bits()),
                    (b.0, b.1.to_bits()),
                    "entry {i} (row {}): {a:?} vs row walk {b:?}",
                    i / p
                );
            }
            // Without contributions, and over the pool: the same values.
            let (mut v2, mut t2) = (Vec::new(), Vec::new());
            e.predict_with_contributions(&rows, 0, &mut v2, &mut t2)
                .expect("predict");
            assert!(t2.is_empty());
            assert_eq!(v2, values);
            let all = e.predict(x.values()).expect("batch");
            for (i, r) in x.values().chunks(p).enumerate() {
                assert_eq!(all[i].to_bits(), e.predict_row(r).expect("row").to_bits());
            }
            // Finite rows only: whole spans walked tree by tree (one full
            // span, one partial), with every contribution.
            assert!(x.n_rows() > SPAN && x.n_rows() % SPAN != 0);
            let (mut v3, mut t3) = (Vec::new(), Vec::new());
            e.predict_with_contributions(x.values(), p, &mut v3, &mut t3)
                .expect("predict");
            let mut want = Vec::new();
            for (i, r) in x.values().chunks(p).enumerate() {
                assert_eq!(v3[i].to_bits(), all[i].to_bits(), "row {i}");
                e.contributions(r, &mut c).expect("contributions");
                top_k(&c, p, &mut want, &mut scratch);
            }
            assert_eq!(t3.len(), want.len());
            for (i, (a, b)) in t3.iter().zip(&want).enumerate() {
                assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()), "entry {i}");
            }
            assert!(
                e.predict_with_contributions(&rows[..p + 1], 1, &mut v2, &mut t2)
                    .is_err()
            );
        }
    }

    /// The complete layout gives the pointer layout's answers exactly:
    /// values and contributions bit for bit (the same additions in the same
    /// order), rows with infinities included (left to the row walk).
    #[test]
    fn the_complete_layout_equals_the_pointer_layout() {
        let (x, y) = data(1_500);
        let xgb = XgbParams::new()
            .rounds(25)
            .max_depth(6)
            .threads(Some(1))
            .fit(&x, &y)
            .expect("xgb")
            .to_ensemble()
            .expect("ensemble");
        let forest = ForestParams::new()
            .n_trees(8)
            .max_depth(Some(9))
            .fit(&x, &y)
            .expect("forest")
            .ensemble()
            .clone();
        let p = x.n_cols();
        let mut rows = x.values()[..400 * p].to_vec();
        rows[3] = f64::INFINITY;
        rows[p * 20 + 1] = f64::NEG_INFINITY;
        for e in [xgb, forest] {
            let complete = Layout::new(&e).expect("layout");
            assert!(
                matches!(complete, Layout::Implicit32(_) | Layout::Implicit64(_)),
                "{complete:?}"
            );
            let pointer = Layout::pointer(&e).expect("layout");
            for k in [0, 3, p] {
                let (mut v1, mut t1, mut v2, mut t2) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                complete
                    .predict(&e, &rows, k, &mut v1, &mut t1)
                    .expect("complete");
                pointer
                    .predict(&e, &rows, k, &mut v2, &mut t2)
                    .expect("pointer");
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&v1), bits(&v2), "values, k = {k}");
                assert_eq!(t1.len(), t2.len());
                for (a, b) in t1.iter().zip(&t2) {
                    assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()), "k = {k}");
                }
            }
        }
    }

    /// `top_k` gives a stable sort's first `k`, on values with ties, signed
    /// zeros and both signs.
    #[test]
    fn top_k_is_the_first_k_of_a_stable_sort_by_magnitude() {
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as i64
        };
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        for case in 0..2_000 {
            let p = 1 + (next() % 60) as usize;
            let c: Vec<f64> = (0..p)
                .map(|_| match next() % 6 {
                    0 => 0.0,
                    1 => -0.0,
                    _ => (next() % 9 - 4) as f64 * 0.5,
                })
                .collect();
            let mut want: Vec<(u32, f64)> =
                c.iter().enumerate().map(|(j, &v)| (j as u32, v)).collect();
            want.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            for k in [1, 3, 10, 32, p] {
                out.clear();
                top_k(&c, k, &mut out, &mut scratch);
                let bits =
                    |v: &[(u32, f64)]| v.iter().map(|(j, x)| (*j, x.to_bits())).collect::<Vec<_>>();
                assert_eq!(
                    bits(&out),
                    bits(&want[..k.min(p)]),
                    "case {case}, k {k}: {c:?}"
                );
            }
        }
    }

    #[test]
    fn top_k_keeps_the_largest_magnitudes_in_index_order_on_ties() {
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        top_k(&[1.0, -3.0, 2.0, 3.0, 0.0], 3, &mut out, &mut scratch);
        assert_eq!(out, vec![(1, -3.0), (3, 3.0), (2, 2.0)]);
        out.clear();
        top_k(&[1.0, -2.0], 5, &mut out, &mut scratch);
        assert_eq!(out, vec![(1, -2.0), (0, 1.0)]);
    }
}
