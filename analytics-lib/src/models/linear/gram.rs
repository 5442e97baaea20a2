//! The fast OLS path: the centred Gram matrix in one parallel pass, then a
//! Cholesky factorisation that selects the independent columns in order.
//!
//! It gives the same answer as the QR path ([`super::algorithm`]: modified
//! Gram–Schmidt to select the columns, then linfa's least squares) or it
//! gives none, and the caller falls back to QR:
//!
//! * The column means come from one pass and `[X − x̄ | y − ȳ]ᵀ[X − x̄ | y − ȳ]`
//!   from a second one. Both are summed over fixed blocks of rows whose
//!   partial sums are added in block order, so the result does not depend on
//!   the number of threads or their scheduling.
//! * The Gram matrix is scaled to unit diagonal and factored column by
//!   column. The pivot of column `j` is the squared share of its norm that
//!   the columns kept before it do not explain: Gram–Schmidt's
//!   `(norm / norm0)²`, which the QR path compares with the tolerance. A pivot
//!   clearly above `tolerance²` keeps the column.
//! * Otherwise the column is a candidate to leave out, but a Gram matrix
//!   cannot resolve such a small residual (its rounding error is ~1e-16 of
//!   a *squared* norm), so the residual is measured again on the data
//!   itself: `‖x_j − X_S a‖ / ‖x_j‖` for the normal-equation coefficients
//!   `a`, an upper bound of Gram–Schmidt's. If it is within the tolerance the
//!   column is left out, as QR would; if not, the design is near-collinear
//!   and the answer is none.
//! * An ill-conditioned kept set (1-norm condition number of the scaled Gram
//!   matrix above [`MAX_CONDITION`]) also gives none: the normal equations
//!   would lose digits there that QR keeps.

use rayon::prelude::*;

use crate::features::FeatureMatrix;

/// Rows per parallel block (fixed: the blocks' partial sums are added in
/// block order).
const BLOCK: usize = 4_096;

/// Largest 1-norm condition number of the scaled Gram matrix of the kept
/// columns that the normal equations are trusted with: they lose about
/// `log10(condition)` of the 16 digits, so ≥ 9 digits stay.
pub(crate) const MAX_CONDITION: f64 = 1e7;

/// A pivot above `tolerance² + PIVOT_MARGIN` keeps its column without a
/// second look: the pivot's rounding error is below `1e-16 × condition`,
/// i.e. below `1e-9` under [`MAX_CONDITION`].
const PIVOT_MARGIN: f64 = 1e-7;

/// A least-squares solution from the normal equations.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GramSolution {
    /// Kept columns, increasing.
    pub used: Vec<usize>,
    /// One coefficient per kept column.
    pub params: Vec<f64>,
    pub intercept: f64,
}

/// Why the normal equations gave no answer (the caller uses QR).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Declined {
    /// A column is nearly, but not within the tolerance, a combination of
    /// the columns before it.
    NearCollinear { column: usize, residual: f64 },
    /// The kept columns' scaled Gram matrix is too ill-conditioned.
    IllConditioned { condition: f64 },
}

/// Column sums, minima and maxima, and the target's sum, of one block.
#[derive(Clone)]
struct Moments {
    sum: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
    y_sum: f64,
}

fn moments(x: &FeatureMatrix, y: &[f64]) -> Moments {
    let p = x.n_cols();
    let blocks: Vec<Moments> = x
        .values()
        .par_chunks(BLOCK * p)
        .zip(y.par_chunks(BLOCK))
        .map(|(xb, yb)| {
            let mut m = Moments {
                sum: vec![0.0; p],
                min: vec![f64::INFINITY; p],
                max: vec![f64::NEG_INFINITY; p],
                y_sum: yb.iter().sum(),
            };
            for row in xb.chunks_exact(p) {
                for (j, &v) in row.iter().enumerate() {
                    m.sum[j] += v;
                    m.min[j] = m.min[j].min(v);
                    m.max[j] = m.max[j].max(v);
                }
            }
            m
        })
        .collect();
    let mut total = Moments {
        sum: vec![0.0; p],
        min: vec![f64::INFINITY; p],
        max: vec![f64::NEG_INFINITY; p],
        y_sum: 0.0,
    };
    for b in &blocks {
        for j in 0..p {
            total.sum[j] += b.sum[j];
            total.min[j] = total.min[j].min(b.min[j]);
            total.max[j] = total.max[j].max(b.max[j]);
        }
        total.y_sum += b.y_sum;
    }
    total
}

/// Upper triangle (row-major, `q × q`, `q = p + 1`) of `zᵀz` for the rows
/// `z = [x − shift | y − y_shift]`.
fn gram(x: &FeatureMatrix, y: &[f64], shift: &[f64], y_shift: f64) -> Vec<f64> {
    let p = x.n_cols();
    let q = p + 1;
    let blocks: Vec<Vec<f64>> = x
        .values()
        .par_chunks(BLOCK * p)
        .zip(y.par_chunks(BLOCK))
        .map(|(xb, yb)| {
            let mut g = vec![0.0; q * q];
            let mut z = vec![0.0; q];
            for (row, &yi) in xb.chunks_exact(p).zip(yb) {
                for ((zj, v), s) in z.iter_mut().zip(row).zip(shift) {
                    *zj = v - s;
                }
                z[p] = yi - y_shift;
                for a in 0..q {
                    let za = z[a];
                    let ga = &mut g[a * q + a..(a + 1) * q];
                    for (gab, zb) in ga.iter_mut().zip(&z[a..]) {
                        *gab += za * zb;
                    }
                }
            }
            g
        })
        .collect();
    let mut total = vec![0.0; q * q];
    for b in &blocks {
        for (t, v) in total.iter_mut().zip(b) {
            *t += v;
        }
    }
    total
}

/// `‖x_j − shift_j − Σ_k a_k (x_k − shift_k)‖²` per check, in one pass.
fn residuals(x: &FeatureMatrix, shift: &[f64], checks: &[(usize, Vec<(usize, f64)>)]) -> Vec<f64> {
    let p = x.n_cols();
    let blocks: Vec<Vec<f64>> = x
        .values()
        .par_chunks(BLOCK * p)
        .map(|xb| {
            let mut out = vec![0.0; checks.len()];
            for row in xb.chunks_exact(p) {
                for (o, (j, a)) in out.iter_mut().zip(checks) {
                    let mut e = row[*j] - shift[*j];
                    for &(k, ak) in a {
                        e -= ak * (row[k] - shift[k]);
                    }
                    *o += e * e;
                }
            }
            out
        })
        .collect();
    let mut total = vec![0.0; checks.len()];
    for b in &blocks {
        for (t, v) in total.iter_mut().zip(b) {
            *t += v;
        }
    }
    total
}

/// Solve `L v = b` (lower triangular, `m × m`, row-major).
fn forward(l: &[f64], m: usize, b: &[f64]) -> Vec<f64> {
    let mut v = vec![0.0; m];
    for i in 0..m {
        let s: f64 = (0..i).map(|k| l[i * m + k] * v[k]).sum();
        v[i] = (b[i] - s) / l[i * m + i];
    }
    v
}

/// Solve `Lᵀ v = b` (`L` lower triangular, `m × m`, row-major).
fn backward(l: &[f64], m: usize, b: &[f64]) -> Vec<f64> {
    let mut v = vec![0.0; m];
    for i in (0..m).rev() {
        let s: f64 = (i + 1..m).map(|k| l[k * m + i] * v[k]).sum();
        v[i] = (b[i] - s) / l[i * m + i];
    }
    v
}

/// 1-norm condition number of `C = L Lᵀ` (`m × m`), from `C` and `C⁻¹`.
fn condition(l: &[f64], m: usize) -> f64 {
    if m == 0 {
        return 1.0;
    }
    let mut c = vec![0.0; m * m];
    let mut inv = vec![0.0; m * m];
    for j in 0..m {
        let mut e = vec![0.0; m];
        e[j] = 1.0;
        let col = backward(l, m, &forward(l, m, &e));
        for i in 0..m {
            inv[i * m + j] = col[i];
            c[i * m + j] = (0..=i.min(j)).map(|k| l[i * m + k] * l[j * m + k]).sum();
        }
    }
    let norm1 = |a: &[f64]| {
        (0..m)
            .map(|j| (0..m).map(|i| a[i * m + j].abs()).sum::<f64>())
            .fold(0.0, f64::max)
    };
    norm1(&c) * norm1(&inv)
}

/// Ordinary least squares of `y` on the columns of `x` (with an intercept
/// when `center`) by the normal equations, with Gram–Schmidt's column
/// selection at `tolerance`; [`Declined`] when only QR can be trusted.
pub(crate) fn solve(
    x: &FeatureMatrix,
    y: &[f64],
    center: bool,
    tolerance: f64,
) -> Result<GramSolution, Declined> {
    let (n, p) = (x.n_rows(), x.n_cols());
    let q = p + 1;
    let mom = moments(x, y);
    let (shift, y_shift) = if center {
        (
            mom.sum.iter().map(|s| s / n as f64).collect(),
            mom.y_sum / n as f64,
        )
    } else {
        (vec![0.0; p], 0.0)
    };
    let g = gram(x, y, &shift, y_shift);
    // A column that is constant (with an intercept) or all zeros (without)
    // carries nothing: left out, like Gram–Schmidt's zero norm.
    let degenerate = |j: usize| {
        g[j * q + j] == 0.0
            || (center && mom.min[j] == mom.max[j])
            || (!center && mom.min[j] == 0.0 && mom.max[j] == 0.0)
    };
    let scale: Vec<f64> = (0..p).map(|j| g[j * q + j].sqrt()).collect();
    // The scaled Gram matrix entry (i ≤ j or not).
    let c = |i: usize, j: usize| {
        let (a, b) = if i <= j { (i, j) } else { (j, i) };
        g[a * q + b] / (scale[a] * scale[b])
    };

    // In-order Cholesky over the kept columns: `l` holds the rows of the
    // factor, row `r` for the r-th kept column (lower triangle, p × p).
    let mut used: Vec<usize> = Vec::new();
    let mut l = vec![0.0; p * p];
    let mut checks: Vec<(usize, Vec<(usize, f64)>)> = Vec::new();
    for j in 0..p {
        if degenerate(j) {
            continue;
        }
        let m = used.len();
        let mut row = vec![0.0; m];
        for r in 0..m {
            let s: f64 = (0..r).map(|k| row[k] * l[r * p + k]).sum();
            row[r] = (c(j, used[r]) - s) / l[r * p + r];
        }
        let pivot = 1.0 - row.iter().map(|v| v * v).sum::<f64>();
        if pivot > tolerance * tolerance + PIVOT_MARGIN {
            l[m * p..m * p + m].copy_from_slice(&row);
            l[m * p + m] = pivot.sqrt();
            used.push(j);
        } else {
            // Coefficients of column j on the kept columns (scaled space:
            // Lᵀ a = row), then in the data's units.
            let mut lm = vec![0.0; m * m];
            for r in 0..m {
                lm[r * m..r * m + r + 1].copy_from_slice(&l[r * p..r * p + r + 1]);
            }
            let a = backward(&lm, m, &row);
            let a = used
                .iter()
                .zip(&a)
                .map(|(&k, ak)| (k, ak * scale[j] / scale[k]))
                .collect();
            checks.push((j, a));
        }
    }
    if !checks.is_empty() {
        let res = residuals(x, &shift, &checks);
        for ((j, _), r2) in checks.iter().zip(&res) {
            let residual = r2.sqrt() / scale[*j];
            if residual.is_nan() || residual > tolerance {
                return Err(Declined::NearCollinear {
                    column: *j,
                    residual,
                });
            }
        }
    }

    let m = used.len();
    let mut lm = vec![0.0; m * m];
    for r in 0..m {
        lm[r * m..r * m + r + 1].copy_from_slice(&l[r * p..r * p + r + 1]);
    }
    let cond = condition(&lm, m);
    // A NaN condition (overflow) declines too.
    if cond.is_nan() || cond > MAX_CONDITION {
        return Err(Declined::IllConditioned { condition: cond });
    }
    let rhs: Vec<f64> = used.iter().map(|&j| g[j * q + p] / scale[j]).collect();
    let b = backward(&lm, m, &forward(&lm, m, &rhs));
    let params: Vec<f64> = used.iter().zip(&b).map(|(&j, bj)| bj / scale[j]).collect();
    let intercept = if center {
        y_shift
            - used
                .iter()
                .zip(&params)
                .map(|(&j, bj)| bj * shift[j])
                .sum::<f64>()
    } else {
        0.0
    };
    Ok(GramSolution {
        used,
        params,
        intercept,
    })
}
