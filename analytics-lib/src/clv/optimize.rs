//! A small L-BFGS minimiser (Nocedal & Wright, algorithm 7.4) with a
//! backtracking Armijo line search, for the few log-parameters of the CLV
//! likelihoods. The objective returns its value and writes its gradient;
//! a non-finite value at a trial point counts as "too far" and the step is
//! shortened.

/// Where the minimiser stopped.
#[derive(Clone, Debug)]
pub(crate) struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    /// Largest absolute gradient component at `x`.
    pub gradient_norm: f64,
    pub iterations: usize,
}

const MEMORY: usize = 10;
const ARMIJO: f64 = 1e-4;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// Minimise `f` from `x0`: stop when the largest gradient component is
/// below `gtol`, or when no step decreases the value any more, or after
/// `max_iter` iterations.
pub(crate) fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    x0: Vec<f64>,
    max_iter: usize,
    gtol: f64,
) -> Minimum {
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut iterations = 0;
    let mut stalled = 0;
    while iterations < max_iter && fx.is_finite() && max_abs(&g) > gtol {
        iterations += 1;
        // Two-loop recursion: d = −H g.
        let mut q = g.clone();
        let m = s_hist.len();
        let mut alpha = vec![0.0; m];
        for i in (0..m).rev() {
            alpha[i] = rho[i] * dot(&s_hist[i], &q);
            for (qj, yj) in q.iter_mut().zip(&y_hist[i]) {
                *qj -= alpha[i] * yj;
            }
        }
        let gamma = if m > 0 {
            dot(&s_hist[m - 1], &y_hist[m - 1]) / dot(&y_hist[m - 1], &y_hist[m - 1])
        } else {
            1.0 / max_abs(&g).max(1.0)
        };
        for qj in q.iter_mut() {
            *qj *= gamma;
        }
        for i in 0..m {
            let beta = rho[i] * dot(&y_hist[i], &q);
            for (qj, sj) in q.iter_mut().zip(&s_hist[i]) {
                *qj += (alpha[i] - beta) * sj;
            }
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction: forget the curvature pairs.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            d = g.iter().map(|v| -v / max_abs(&g).max(1.0)).collect();
            slope = dot(&g, &d);
        }
        // Backtracking: the longest step up to 1 that decreases enough.
        // No parameter moves by more than 5 in log-space per step.
        let longest = max_abs(&d);
        let mut step = if longest > 5.0 { 5.0 / longest } else { 1.0 };
        let mut accepted = false;
        for _ in 0..60 {
            for ((xn, xj), dj) in x_new.iter_mut().zip(&x).zip(&d) {
                *xn = xj + step * dj;
            }
            let f_new = f(&x_new, &mut g_new);
            if f_new.is_finite() && f_new <= fx + ARMIJO * step * slope {
                accepted = true;
                let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                if sy > 1e-16 * dot(&y, &y).max(f64::MIN_POSITIVE) {
                    if s_hist.len() == MEMORY {
                        s_hist.remove(0);
                        y_hist.remove(0);
                        rho.remove(0);
                    }
                    s_hist.push(s);
                    y_hist.push(y);
                    rho.push(1.0 / sy);
                }
                let decrease = fx - f_new;
                x.copy_from_slice(&x_new);
                g.copy_from_slice(&g_new);
                stalled = if decrease <= 1e-15 * fx.abs().max(1.0) {
                    stalled + 1
                } else {
                    0
                };
                fx = f_new;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            if s_hist.is_empty() {
                break;
            }
            // Restart once from steepest descent before giving up.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            continue;
        }
        if stalled >= 3 {
            break;
        }
    }
    let gradient_norm = max_abs(&g);
    Minimum {
        x,
        value: fx,
        gradient_norm,
        iterations,
    }
}

/// Rows per block of [`sum_rows`].
const SUM_BLOCK: usize = 4096;

/// The likelihood's per-row terms summed: `step` adds row `i`'s value and
/// gradient to an accumulator. Blocks of [`SUM_BLOCK`] rows are summed in
/// parallel, each from zero in row order, and the blocks' sums are added in
/// block order, so the result is the same to the bit on every run and on
/// any number of threads (a rayon `fold`/`reduce` splits where the threads'
/// timing falls, and the fitted parameters then differed in their last
/// bits from run to run).
pub(crate) fn sum_rows<const K: usize>(
    n: usize,
    step: impl Fn((f64, [f64; K]), usize) -> (f64, [f64; K]) + Sync,
) -> (f64, [f64; K]) {
    use rayon::prelude::*;
    let zero = (0.0, [0.0; K]);
    let blocks: Vec<(f64, [f64; K])> = (0..n.div_ceil(SUM_BLOCK))
        .into_par_iter()
        .map(|b| (b * SUM_BLOCK..n.min((b + 1) * SUM_BLOCK)).fold(zero, &step))
        .collect();
    blocks.into_iter().fold(zero, |(l1, mut g1), (l2, g2)| {
        for (a, b) in g1.iter_mut().zip(g2) {
            *a += b;
        }
        (l1 + l2, g1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks summed in order: the same bits on pools of any size, equal to
    /// summing each block in one loop and then the blocks in one loop.
    #[test]
    fn rows_sum_to_the_same_bits_on_any_pool() {
        let n = 10 * SUM_BLOCK + 123;
        let value = |i: usize| ((i as f64) * 0.37).sin() * 1e3 + 1.0 / (i as f64 + 1.0);
        let step = |(ll, mut g): (f64, [f64; 2]), i: usize| {
            g[0] += value(i);
            g[1] -= value(i) * 0.5;
            (ll + value(i) * 2.0, g)
        };
        let mut expected = (0.0, [0.0; 2]);
        for b in 0..n.div_ceil(SUM_BLOCK) {
            let block = (b * SUM_BLOCK..n.min((b + 1) * SUM_BLOCK)).fold((0.0, [0.0; 2]), step);
            expected.0 += block.0;
            expected.1[0] += block.1[0];
            expected.1[1] += block.1[1];
        }
        let bits = |(l, g): (f64, [f64; 2])| (l.to_bits(), g.map(f64::to_bits));
        for threads in [1, 2, 3, 8] {
            for _ in 0..3 {
                let got = crate::testing::on_pool(threads, || sum_rows(n, step));
                assert_eq!(bits(got), bits(expected), "{threads} threads");
            }
        }
        assert_eq!(sum_rows(0, step), (0.0, [0.0; 2]));
    }

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        let m = lbfgs(
            |x, g| {
                let (a, b) = (x[0], x[1]);
                g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
                g[1] = 200.0 * (b - a * a);
                (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
            },
            vec![-1.2, 1.0],
            500,
            1e-10,
        );
        assert!(m.gradient_norm <= 1e-10, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8,
            "{m:?}"
        );
    }

    #[test]
    fn shortens_steps_into_undefined_regions() {
        // ln is undefined below 0: the search must stay in the domain.
        let m = lbfgs(
            |x, g| {
                if x[0] <= 0.0 {
                    return f64::NAN;
                }
                g[0] = 1.0 - 3.0 / x[0];
                x[0] - 3.0 * x[0].ln()
            },
            vec![10.0],
            200,
            1e-12,
        );
        assert!(
            m.gradient_norm <= 1e-12 && (m.x[0] - 3.0).abs() < 1e-9,
            "{m:?}"
        );
    }
}
