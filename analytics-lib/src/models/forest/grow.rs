//! Growing one regression tree of the forest on the binned matrix.
//!
//! * Bootstrap: `n` draws with replacement from a ChaCha8 stream seeded with
//!   the tree's seed give every row an integer weight (its count); rows drawn
//!   at least once are gathered into a tree-local, row-major block of codes.
//! * Depth-first growth over an index array partitioned in place (stable,
//!   so every node's rows stay in increasing order). A node whose rows take
//!   more than [`MOVE_BYTES`] also moves their codes and sums with the
//!   partition, so that its children's rows are contiguous blocks of memory
//!   read in order; below that, only positions are partitioned and the rows
//!   are read where they are, inside a block small enough for the cache.
//!   (At 10 M lines a tree's rows take ~85 MB: read scattered, a tree cost
//!   2.3x more per row than at 1 M; moving everything at 1 M costs more than
//!   it saves.) Sums run over the same rows in the same order either way. Each node to be split
//!   has a histogram `(Σw, Σw·y)` per feature and bin; a split builds the
//!   histogram of its smaller child by scanning its rows and obtains the
//!   larger child's as parent − smaller. Children that will be leaves get no
//!   histogram at all.
//! * The best split maximises the weighted variance reduction (scikit-learn's
//!   squared-error criterion) over the features tried at the node, subject to
//!   `min_samples_leaf` on both sides; weights are bootstrap counts, so the
//!   sample counts of `min_samples_leaf` / `min_samples_split` are counted on
//!   the bootstrap sample, as scikit-learn does. Ties keep the first feature
//!   (in the order tried) and the lowest bin.
//! * A node is a leaf when it is at `max_depth`, weighs less than
//!   `min_samples_split` or `2 × min_samples_leaf`, has a constant target, or
//!   has no split that reduces the error. Its value is the weighted mean of
//!   `y`, its cover the weight `Σw`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::models::trees::Node;

use super::binning::Binned;

/// Stopping rules of one tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// Edges from the root; `u32::MAX` for unlimited.
    pub max_depth: u32,
    pub min_samples_leaf: f64,
    pub min_samples_split: f64,
    /// Features tried at each node (`1..=p`).
    pub max_features: usize,
    /// A node's rows above this many bytes move with its partition
    /// ([`MOVE_BYTES`]; the tree is the same whatever it is).
    pub move_bytes: usize,
}

/// A grown tree; with `record`, also the leaf every in-bag row ended in.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Grown {
    pub nodes: Vec<Node>,
    /// In-bag rows (training row indices, increasing) and their leaves.
    pub rows: Vec<u32>,
    pub leaf: Vec<u32>,
}

/// Weight and weighted sums of the centred target over some rows.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// Σw
    w: f64,
    /// Σw·y
    s: f64,
    /// Σw·y²
    q: f64,
}

impl Stats {
    /// Weighted sum of squared deviations from the mean.
    fn sse(&self) -> f64 {
        (self.q - self.s * self.s / self.w).max(0.0)
    }
    /// A constant target (to rounding: the spread is below 10⁻¹² of Σw·y²,
    /// like scikit-learn's `impurity <= EPSILON`).
    fn is_pure(&self) -> bool {
        self.sse() <= 1e-12 * self.q
    }
}

struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: u32,
    stats: Stats,
    hist: Vec<[f64; 2]>,
}

/// A node's rows (codes and sums) above this size move with its partition
/// (the default of [`Settings::move_bytes`]). Measured on 1 M and 10 M
/// lines: 2, 8 and 16 MiB are within noise at 1 M (0.95–1.1 s a forest);
/// at 10 M, 8 MiB was fastest (12.0 s; 12.6 at 2 MiB, 13.2 at 16 MiB,
/// 13.0 moving every node, 20.3 moving none).
pub(crate) const MOVE_BYTES: usize = 8 << 20;

/// The per-tree working set.
struct Tree<'a> {
    p: usize,
    settings: &'a Settings,
    /// Row-major codes by position: the row at position `k`, feature `f`
    /// at `k * p + f` (`pos` lists each node's positions).
    codes: Vec<u8>,
    /// Per position: `[w, w·y, w·y², 0]` of its row.
    vals: Vec<[f64; 4]>,
    /// The right side of a partition while it is being made.
    scratch_codes: Vec<u8>,
    scratch_vals: Vec<[f64; 4]>,
    /// First histogram slot of each feature; `offsets[p]` slots in all.
    offsets: Vec<usize>,
    n_bins: Vec<usize>,
    thresholds: &'a [Vec<f64>],
    pool: Vec<Vec<[f64; 2]>>,
}

impl Tree<'_> {
    fn take_hist(&mut self) -> Vec<[f64; 2]> {
        match self.pool.pop() {
            Some(mut h) => {
                h.iter_mut().for_each(|v| *v = [0.0; 2]);
                h
            }
            None => vec![[0.0; 2]; self.offsets[self.p]],
        }
    }

    /// The histogram of the rows at positions `pos`.
    fn build_hist(&self, pos: &[u32], hist: &mut [[f64; 2]]) {
        let p = self.p;
        let offsets = &self.offsets[..p];
        for &k in pos {
            let k = k as usize;
            let [w, wy, _, _] = self.vals[k];
            for (&c, &o) in self.codes[k * p..(k + 1) * p].iter().zip(offsets) {
                let h = &mut hist[o + c as usize];
                h[0] += w;
                h[1] += wy;
            }
        }
    }

    /// The stats of the rows at positions `pos`.
    fn stats(&self, pos: &[u32]) -> Stats {
        let mut st = Stats::default();
        for &k in pos {
            let [w, wy, wyy, _] = self.vals[k as usize];
            st.w += w;
            st.s += wy;
            st.q += wyy;
        }
        st
    }

    /// Weights and sums of the two sides of split `(f, bin)`, from the
    /// histogram (as [`Tree::best_split`] adds them up).
    fn split_sums(&self, hist: &[[f64; 2]], st: &Stats, f: usize, bin: usize) -> (Stats, Stats) {
        let mut l = Stats::default();
        for v in &hist[self.offsets[f]..=self.offsets[f] + bin] {
            if v[0] != 0.0 {
                l.w += v[0];
                l.s += v[1];
            }
        }
        let r = Stats {
            w: st.w - l.w,
            s: st.s - l.s,
            q: 0.0,
        };
        (l, r)
    }

    /// A leaf whatever its target: at `max_depth` or too light to split.
    fn is_leaf_by_size(&self, st: &Stats, depth: u32) -> bool {
        let s = self.settings;
        depth >= s.max_depth || st.w < s.min_samples_split || st.w < 2.0 * s.min_samples_leaf
    }

    fn is_leaf(&self, st: &Stats, depth: u32) -> bool {
        let s = self.settings;
        depth >= s.max_depth
            || st.w < s.min_samples_split
            || st.w < 2.0 * s.min_samples_leaf
            || st.is_pure()
    }

    /// The best `(feature, bin)` among `features`: rows with code `<= bin`
    /// go left. `None` when no split is allowed or none reduces the error.
    fn best_split(
        &self,
        hist: &[[f64; 2]],
        st: &Stats,
        features: &[usize],
    ) -> Option<(usize, usize)> {
        let min_leaf = self.settings.min_samples_leaf;
        let parent = st.s * st.s / st.w;
        // Scores ls²/lw + rs²/rw are compared as num / den with
        // den = lw·rw > 0, without dividing in the loop.
        let mut best = (parent + 1e-12 * st.sse(), 1.0);
        let mut found = None;
        for &f in features {
            let nb = self.n_bins[f];
            if nb < 2 {
                continue;
            }
            let h = &hist[self.offsets[f]..self.offsets[f] + nb];
            let (mut lw, mut ls) = (0.0, 0.0);
            for (b, v) in h[..nb - 1].iter().enumerate() {
                if v[0] == 0.0 {
                    continue;
                }
                lw += v[0];
                ls += v[1];
                if lw < min_leaf {
                    continue;
                }
                let rw = st.w - lw;
                if rw < min_leaf {
                    break;
                }
                let rs = st.s - ls;
                let num = ls * ls * rw + rs * rs * lw;
                let den = lw * rw;
                if num * best.1 > best.0 * den {
                    best = (num, den);
                    found = Some((f, b));
                }
            }
        }
        found
    }

    /// Stable partition of one node: `idx` (its rows) and `pos` (their
    /// positions), the part of both arrays from `start`; rows with code
    /// `<= bin` of feature `f` first. Returns the number of left rows and
    /// both sides' stats. A large node also moves its rows' codes and sums
    /// (see the module documentation).
    fn partition(
        &mut self,
        idx: &mut [u32],
        pos: &mut [u32],
        scratch: &mut Vec<[u32; 2]>,
        start: usize,
        f: usize,
        bin: usize,
    ) -> (usize, Stats, Stats) {
        if idx.len() * (self.p + 32) > self.settings.move_bytes {
            self.partition_moving(idx, pos, scratch, start, f, bin)
        } else {
            self.partition_positions(idx, pos, scratch, f, bin)
        }
    }

    /// [`Tree::partition`] of positions only. Branch-free: which side a row
    /// goes to is not predictable.
    fn partition_positions(
        &self,
        idx: &mut [u32],
        pos: &mut [u32],
        scratch: &mut Vec<[u32; 2]>,
        f: usize,
        bin: usize,
    ) -> (usize, Stats, Stats) {
        let p = self.p;
        let (mut l, mut r) = (Stats::default(), Stats::default());
        let (mut nl, mut nr) = (0usize, 0usize);
        scratch.clear();
        scratch.resize(idx.len(), [0; 2]);
        for k in 0..idx.len() {
            let (j, at) = (idx[k], pos[k]);
            let go = (self.codes[at as usize * p + f] as usize) <= bin;
            idx[nl] = j;
            pos[nl] = at;
            scratch[nr] = [j, at];
            nl += usize::from(go);
            nr += usize::from(!go);
            add_to_side(&mut l, &mut r, go, self.vals[at as usize]);
        }
        for (k, &[j, at]) in scratch[..nr].iter().enumerate() {
            idx[nl + k] = j;
            pos[nl + k] = at;
        }
        (nl, l, r)
    }

    /// [`Tree::partition`] moving the rows: the node's rows sit at positions
    /// `start..start + idx.len()` in order (every ancestor moved too), and
    /// so do its children's after it.
    fn partition_moving(
        &mut self,
        idx: &mut [u32],
        pos: &mut [u32],
        scratch: &mut Vec<[u32; 2]>,
        start: usize,
        f: usize,
        bin: usize,
    ) -> (usize, Stats, Stats) {
        let p = self.p;
        let n = idx.len();
        debug_assert!(
            pos.iter()
                .enumerate()
                .all(|(k, &at)| at as usize == start + k)
        );
        let (mut l, mut r) = (Stats::default(), Stats::default());
        let (mut nl, mut nr) = (0usize, 0usize);
        scratch.clear();
        scratch.resize(n, [0; 2]);
        self.scratch_codes.clear();
        self.scratch_codes.resize(n * p, 0);
        self.scratch_vals.clear();
        self.scratch_vals.resize(n, [0.0; 4]);
        let codes = &mut self.codes[start * p..(start + n) * p];
        let vals = &mut self.vals[start..start + n];
        for k in 0..n {
            let go = (codes[k * p + f] as usize) <= bin;
            let v = vals[k];
            // Left rows move down in place (never past their own slot),
            // right rows to the scratch; both keep their order.
            idx[nl] = idx[k];
            scratch[nr][0] = idx[k];
            codes.copy_within(k * p..(k + 1) * p, nl * p);
            self.scratch_codes[nr * p..(nr + 1) * p].copy_from_slice(&codes[nl * p..(nl + 1) * p]);
            vals[nl] = v;
            self.scratch_vals[nr] = v;
            nl += usize::from(go);
            nr += usize::from(!go);
            add_to_side(&mut l, &mut r, go, v);
        }
        for (k, s) in scratch[..nr].iter().enumerate() {
            idx[nl + k] = s[0];
        }
        codes[nl * p..].copy_from_slice(&self.scratch_codes[..nr * p]);
        vals[nl..].copy_from_slice(&self.scratch_vals[..nr]);
        // Positions are in order again.
        for (k, at) in pos.iter_mut().enumerate() {
            *at = (start + k) as u32;
        }
        (nl, l, r)
    }
}

/// Add a row's `[w, w·y, w·y², _]` to the side it goes to, without a branch
/// (the side is not predictable): both partitions' stats.
#[inline(always)]
fn add_to_side(l: &mut Stats, r: &mut Stats, go: bool, [w, wy, wyy, _]: [f64; 4]) {
    let (a, b) = if go { (1.0, 0.0) } else { (0.0, 1.0) };
    l.w += a * w;
    l.s += a * wy;
    l.q += a * wyy;
    r.w += b * w;
    r.s += b * wy;
    r.q += b * wyy;
}

/// Grow one tree on `data` and `y` (centred by `mean` inside, leaf values
/// are in `y`'s units) from the bootstrap of `seed`.
pub(crate) fn grow_tree(
    data: &Binned,
    y: &[f64],
    mean: f64,
    settings: &Settings,
    seed: u64,
    record: bool,
) -> Grown {
    let (n, p) = (data.n_rows, data.n_features);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = vec![0u32; n];
    for _ in 0..n {
        counts[rng.random_range(0..n as u32) as usize] += 1;
    }
    let rows: Vec<u32> = (0..n as u32).filter(|&i| counts[i as usize] > 0).collect();
    let m = rows.len();
    let columns: Vec<&[u8]> = (0..p).map(|f| data.column(f)).collect();
    let mut codes = vec![0u8; m * p];
    for (out, &r) in codes.chunks_exact_mut(p).zip(&rows) {
        for (o, col) in out.iter_mut().zip(&columns) {
            *o = col[r as usize];
        }
    }
    let vals: Vec<[f64; 4]> = rows
        .iter()
        .map(|&r| {
            let w = f64::from(counts[r as usize]);
            let yc = y[r as usize] - mean;
            [w, w * yc, w * yc * yc, 0.0]
        })
        .collect();
    let n_bins: Vec<usize> = (0..p).map(|f| data.n_bins(f)).collect();
    let mut offsets = Vec::with_capacity(p + 1);
    let mut acc = 0;
    for &nb in &n_bins {
        offsets.push(acc);
        acc += nb;
    }
    offsets.push(acc);
    let mut tree = Tree {
        p,
        settings,
        codes,
        vals,
        scratch_codes: Vec::new(),
        scratch_vals: Vec::new(),
        offsets,
        n_bins,
        thresholds: &data.thresholds,
        pool: Vec::new(),
    };

    let mut idx: Vec<u32> = (0..m as u32).collect();
    let mut pos: Vec<u32> = idx.clone();
    let mut scratch: Vec<[u32; 2]> = Vec::with_capacity(m);
    let mut leaf = if record { vec![0u32; m] } else { Vec::new() };
    let mut features: Vec<usize> = (0..p).collect();
    let mut nodes: Vec<Node> = vec![Node::leaf(0.0, 1.0)];

    let make_leaf =
        |nodes: &mut Vec<Node>, leaf: &mut Vec<u32>, node: usize, st: &Stats, rows: &[u32]| {
            nodes[node] = Node::leaf(st.s / st.w + mean, st.w);
            if record {
                rows.iter().for_each(|&j| leaf[j as usize] = node as u32);
            }
        };

    let root = tree.stats(&pos);
    let mut stack: Vec<Pending> = Vec::new();
    if tree.is_leaf(&root, 0) {
        make_leaf(&mut nodes, &mut leaf, 0, &root, &idx);
    } else {
        let mut hist = tree.take_hist();
        tree.build_hist(&pos, &mut hist);
        stack.push(Pending {
            node: 0,
            start: 0,
            end: m,
            depth: 0,
            stats: root,
            hist,
        });
    }

    while let Some(Pending {
        node,
        start,
        end,
        depth,
        stats,
        mut hist,
    }) = stack.pop()
    {
        let tried = if settings.max_features < p {
            for i in 0..settings.max_features {
                let j = rng.random_range(i as u32..p as u32) as usize;
                features.swap(i, j);
            }
            &features[..settings.max_features]
        } else {
            &features[..]
        };
        let Some((f, bin)) = tree.best_split(&hist, &stats, tried) else {
            make_leaf(&mut nodes, &mut leaf, node, &stats, &idx[start..end]);
            tree.pool.push(hist);
            continue;
        };
        let (li, ri) = (nodes.len(), nodes.len() + 1);
        nodes[node] = Node::split(
            f as u32,
            tree.thresholds[f][bin],
            li as u32,
            ri as u32,
            stats.w,
        );
        nodes.push(Node::leaf(0.0, 1.0));
        nodes.push(Node::leaf(0.0, 1.0));
        let child_depth = depth + 1;

        // Children that are leaves by depth or weight alone need no
        // partition: their weights and sums are the split's histogram.
        let (lh, rh) = tree.split_sums(&hist, &stats, f, bin);
        if tree.is_leaf_by_size(&lh, child_depth) && tree.is_leaf_by_size(&rh, child_depth) {
            let (nl, _, _) = if record {
                tree.partition(
                    &mut idx[start..end],
                    &mut pos[start..end],
                    &mut scratch,
                    start,
                    f,
                    bin,
                )
            } else {
                (0, Stats::default(), Stats::default())
            };
            let mid = start + nl;
            make_leaf(&mut nodes, &mut leaf, li, &lh, &idx[start..mid]);
            make_leaf(&mut nodes, &mut leaf, ri, &rh, &idx[mid..end]);
            tree.pool.push(hist);
            continue;
        }
        let (nl, ls, rs) = tree.partition(
            &mut idx[start..end],
            &mut pos[start..end],
            &mut scratch,
            start,
            f,
            bin,
        );
        let mid = start + nl;
        let left = (li, start, mid, ls, tree.is_leaf(&ls, child_depth));
        let right = (ri, mid, end, rs, tree.is_leaf(&rs, child_depth));
        for &(c, s, e, st, is_leaf) in [&left, &right] {
            if is_leaf {
                make_leaf(&mut nodes, &mut leaf, c, &st, &idx[s..e]);
            }
        }
        // Histograms: the smaller side (by rows) is scanned, the larger is
        // the parent's minus it; leaves need none.
        let (small, large) = if nl <= end - mid {
            (left, right)
        } else {
            (right, left)
        };
        let mut push = |c: (usize, usize, usize, Stats, bool), hist: Vec<[f64; 2]>| {
            stack.push(Pending {
                node: c.0,
                start: c.1,
                end: c.2,
                depth: child_depth,
                stats: c.3,
                hist,
            })
        };
        match (small.4, large.4) {
            (true, true) => tree.pool.push(hist),
            (false, true) => {
                hist.iter_mut().for_each(|v| *v = [0.0; 2]);
                tree.build_hist(&pos[small.1..small.2], &mut hist);
                push(small, hist);
            }
            (small_leaf, false) => {
                let mut sh = tree.take_hist();
                tree.build_hist(&pos[small.1..small.2], &mut sh);
                for (h, s) in hist.iter_mut().zip(&sh) {
                    h[0] -= s[0];
                    h[1] -= s[1];
                }
                // Right pushed first so that the left subtree is grown first.
                if small_leaf {
                    tree.pool.push(sh);
                    push(large, hist);
                } else if small.0 == ri {
                    push(small, sh);
                    push(large, hist);
                } else {
                    push(large, hist);
                    push(small, sh);
                }
            }
        }
    }

    Grown {
        nodes,
        rows: if record { rows } else { Vec::new() },
        leaf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moving the rows with every partition, with none, or above a size in
    /// between grows the same tree: nodes and the leaf of every row, bit
    /// for bit (the sums run over the same rows in the same order).
    #[test]
    fn moving_the_rows_grows_the_same_tree() {
        let (n, p) = (4_000, 6);
        let mut s = 99u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let mut values = Vec::with_capacity(n * p);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let r: Vec<f64> = (0..p)
                .map(|j| (next() * 40.0 * (j + 1) as f64).round())
                .collect();
            y.push(r[0] * 1.5 - r[1] * r[2] / 50.0 + (r[3] > 60.0) as u8 as f64 * 9.0 + next());
            values.extend_from_slice(&r);
        }
        let data = Binned::new(&values, p, 255);
        let mean = y.iter().sum::<f64>() / n as f64;
        let settings = |move_bytes| Settings {
            max_depth: 12,
            min_samples_leaf: 2.0,
            min_samples_split: 2.0,
            max_features: 4,
            move_bytes,
        };
        let row_bytes = p + 32;
        for seed in [1, 2, 3] {
            let never = grow_tree(&data, &y, mean, &settings(usize::MAX), seed, true);
            assert!(never.nodes.len() > 200, "{} nodes", never.nodes.len());
            for move_bytes in [0, 300 * row_bytes, 2_000 * row_bytes] {
                let g = grow_tree(&data, &y, mean, &settings(move_bytes), seed, true);
                assert_eq!(g.nodes, never.nodes, "seed {seed}, move_bytes {move_bytes}");
                assert_eq!(g.rows, never.rows);
                assert_eq!(g.leaf, never.leaf, "seed {seed}, move_bytes {move_bytes}");
            }
        }
    }
}
