//! Quantile binning: every feature is cut once into at most [`MAX_BINS`]
//! bins, stored as `u8` codes (column-major), so that growing a tree only
//! ever looks at small integer histograms.
//!
//! A feature with at most [`MAX_BINS`] distinct values gets one bin per
//! value; otherwise bins of about equal counts are formed greedily over the
//! sorted distinct values (the target size is recomputed from what remains,
//! so one heavy value, e.g. many zeros, does not waste the other bins).
//!
//! Bin `b` and bin `b + 1` are separated by `thresholds[b]`, a value strictly
//! above the largest value of bin `b` and at most the smallest value of bin
//! `b + 1` (their midpoint when it lies strictly between them). The code of
//! `x` is the number of thresholds `<= x`, hence
//! `code(x) <= b  ⇔  x < thresholds[b]`: a split "bin ≤ b" learnt on codes is
//! exactly the split `x < thresholds[b]` on raw values, which is how the
//! trees predict.

use rayon::prelude::*;

/// At most this many bins per feature (codes `0..MAX_BINS` fit a `u8`).
pub(crate) const MAX_BINS: usize = 255;

/// The binned training matrix.
#[derive(Debug)]
pub(crate) struct Binned {
    pub n_rows: usize,
    pub n_features: usize,
    /// Per feature, the increasing thresholds between its bins
    /// (`len() + 1` bins; empty for a constant feature).
    pub thresholds: Vec<Vec<f64>>,
    /// Column-major codes: feature `f` of row `i` at `f * n_rows + i`.
    pub codes: Vec<u8>,
}

impl Binned {
    /// Bin row-major `values` (`n_features` per row, all finite).
    pub fn new(values: &[f64], n_features: usize, max_bins: usize) -> Self {
        let n_rows = values.len() / n_features;
        let max_bins = max_bins.clamp(2, MAX_BINS);
        let columns: Vec<(Vec<f64>, Vec<u8>)> = (0..n_features)
            .into_par_iter()
            .map(|f| {
                let col: Vec<f64> = values.iter().skip(f).step_by(n_features).copied().collect();
                let thresholds = thresholds_of(&col, max_bins);
                let codes = col.iter().map(|&x| code_of(&thresholds, x)).collect();
                (thresholds, codes)
            })
            .collect();
        let mut thresholds = Vec::with_capacity(n_features);
        let mut codes = Vec::with_capacity(n_rows * n_features);
        for (t, c) in columns {
            thresholds.push(t);
            codes.extend_from_slice(&c);
        }
        Binned {
            n_rows,
            n_features,
            thresholds,
            codes,
        }
    }

    /// Number of bins of feature `f`.
    pub fn n_bins(&self, f: usize) -> usize {
        self.thresholds[f].len() + 1
    }

    /// The codes of feature `f`, one per row.
    pub fn column(&self, f: usize) -> &[u8] {
        &self.codes[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// The bin of `x`: the number of thresholds `<= x`.
#[inline]
pub(crate) fn code_of(thresholds: &[f64], x: f64) -> u8 {
    thresholds.partition_point(|&t| t <= x) as u8
}

/// A cut between `a < b`: their midpoint if it lies in `(a, b]`, else `b`
/// (adjacent floating-point numbers).
fn cut(a: f64, b: f64) -> f64 {
    let mid = a / 2.0 + b / 2.0;
    if mid > a && mid <= b { mid } else { b }
}

/// Thresholds of one column (finite values) for at most `max_bins` bins.
fn thresholds_of(col: &[f64], max_bins: usize) -> Vec<f64> {
    let mut sorted = col.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    // Distinct values (−0 and +0 are one value) with their counts.
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &v in &sorted {
        match distinct.last_mut() {
            Some((last, c)) if *last == v => *c += 1,
            _ => distinct.push((v, 1)),
        }
    }
    let k = distinct.len();
    if k <= max_bins {
        return distinct.windows(2).map(|w| cut(w[0].0, w[1].0)).collect();
    }
    let mut thresholds = Vec::with_capacity(max_bins - 1);
    let mut rest = sorted.len();
    let mut bins_left = max_bins;
    let mut in_bin = 0usize;
    for j in 0..k - 1 {
        in_bin += distinct[j].1;
        if bins_left > 1 && in_bin as f64 * bins_left as f64 >= rest as f64 {
            thresholds.push(cut(distinct[j].0, distinct[j + 1].0));
            rest -= in_bin;
            bins_left -= 1;
            in_bin = 0;
        }
    }
    thresholds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_agree_with_the_strict_less_than_rule() {
        // Duplicates, adjacent floats, a heavy value, negatives and ±0.
        let tiny = f64::from_bits(1.0f64.to_bits() + 1);
        let mut col = vec![0.0; 500];
        col.extend([1.0, tiny, -0.0, -3.5, 1e300, -1e300, 2.0, 2.0]);
        col.extend((0..2000).map(|i| (i as f64 * 0.37).sin() * 100.0));
        for max_bins in [2, 3, 16, 255] {
            let t = thresholds_of(&col, max_bins);
            assert!(
                t.len() < max_bins,
                "{} thresholds for {max_bins} bins",
                t.len()
            );
            assert!(t.windows(2).all(|w| w[0] < w[1]), "increasing");
            for &x in &col {
                let c = code_of(&t, x) as usize;
                for (b, &tb) in t.iter().enumerate() {
                    assert_eq!(c <= b, x < tb, "x {x}, bin {b}, threshold {tb}");
                }
            }
        }
        // 1.0 and the next float are different bins when there is room.
        let t = thresholds_of(&[1.0, tiny], 255);
        assert_eq!(t, vec![tiny]);
    }

    #[test]
    fn bins_have_about_equal_counts_and_constants_have_one_bin() {
        let col: Vec<f64> = (0..10_000).map(|i| f64::from(i % 1000)).collect();
        let t = thresholds_of(&col, 10);
        assert_eq!(t.len(), 9);
        let mut counts = [0usize; 10];
        col.iter()
            .for_each(|&x| counts[code_of(&t, x) as usize] += 1);
        assert!(counts.iter().all(|&c| c == 1000), "{counts:?}");
        assert!(thresholds_of(&[4.0; 50], 255).is_empty());
        // A heavy zero takes one bin; the rest is still cut finely.
        let mut col = vec![0.0; 5000];
        col.extend((1..=5000).map(f64::from));
        let t = thresholds_of(&col, 255);
        assert!(t.len() >= 250, "{} thresholds", t.len());
        let b = Binned::new(&col, 1, 255);
        assert_eq!(b.n_bins(0), t.len() + 1);
        assert_eq!(b.column(0)[0], 0);
    }
}
