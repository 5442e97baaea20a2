//! Fitting and predicting with ordinary least squares.
//!
//! Two solvers give the same model: the normal equations ([`super::gram`]:
//! one parallel pass over the rows, then a small Cholesky factorisation),
//! tried first, and QR (modified Gram–Schmidt to select the columns, then
//! linfa-linear's least squares), used when the normal equations decline a
//! near-collinear or ill-conditioned design.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_linear::LinearRegression;
use ndarray::{Array1, Array2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;
use crate::models::check_training_data;
use crate::models::errors::{ModelError, Result};

use super::gram;
use super::hyperparams::{LinearParams, NAME};

/// Intercept and coefficients of the used features. Serialised exactly like
/// linfa-linear's `FittedLinearRegression` (`intercept`, `params`), which
/// earlier versions stored here, so saved models stay readable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Fitted {
    intercept: f64,
    params: Array1<f64>,
}

/// A fitted OLS model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearModel {
    n_features: usize,
    /// Indices of the features that entered the fit (the others are
    /// collinear with them and get coefficient 0).
    used: Vec<usize>,
    fitted: Fitted,
}

/// A column whose values are all equal (with an intercept) or all zero
/// (without one) carries nothing and is left out.
fn degenerate(x: &FeatureMatrix, j: usize, center: bool) -> bool {
    let first = if center {
        x.values().get(j).copied().unwrap_or(0.0)
    } else {
        0.0
    };
    (0..x.n_rows()).all(|i| x.row(i)[j] == first)
}

/// Indices of the columns of `x` that are linearly independent of the
/// columns before them (and of the intercept, when `center`), by modified
/// Gram–Schmidt with re-orthogonalisation.
fn independent_columns(x: &FeatureMatrix, center: bool, tol: f64) -> Vec<usize> {
    let (n, p) = (x.n_rows(), x.n_cols());
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut used = Vec::new();
    for j in 0..p {
        if degenerate(x, j, center) {
            continue;
        }
        let mut v: Vec<f64> = (0..n).map(|i| x.row(i)[j]).collect();
        if center {
            let mean = v.iter().sum::<f64>() / n as f64;
            v.iter_mut().for_each(|a| *a -= mean);
        }
        let norm0 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm0 == 0.0 {
            continue;
        }
        for _ in 0..2 {
            for q in &basis {
                let d: f64 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(q).for_each(|(a, b)| *a -= d * b);
            }
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > tol * norm0 && norm > 0.0 {
            v.iter_mut().for_each(|a| *a /= norm);
            basis.push(v);
            used.push(j);
        }
    }
    used
}

fn design(x: &FeatureMatrix, used: &[usize]) -> Result<Array2<f64>> {
    let mut values = Vec::with_capacity(x.n_rows() * used.len());
    for i in 0..x.n_rows() {
        let row = x.row(i);
        values.extend(used.iter().map(|&j| row[j]));
    }
    Array2::from_shape_vec((x.n_rows(), used.len()), values).map_err(|e| ModelError::Shape {
        model: NAME,
        what: "design matrix",
        expected: format!("{} × {}", x.n_rows(), used.len()),
        found: e.to_string(),
    })
}

/// QR: column selection by Gram–Schmidt, then linfa-linear's least squares.
fn fit_qr(params: &LinearParams, x: &FeatureMatrix, y: &[f64]) -> Result<(Vec<usize>, Fitted)> {
    let used = independent_columns(x, params.fit_intercept, params.collinearity_tolerance);
    check_rows(x, &used, params.fit_intercept)?;
    let dataset = DatasetBase::new(design(x, &used)?, Array1::from(y.to_vec()));
    let fitted = LinearRegression::new()
        .with_intercept(params.fit_intercept)
        .fit(&dataset)
        .map_err(|e| ModelError::Fit {
            model: NAME,
            cause: e.into(),
        })?;
    Ok((
        used,
        Fitted {
            intercept: fitted.intercept(),
            params: fitted.params().clone(),
        },
    ))
}

fn check_rows(x: &FeatureMatrix, used: &[usize], intercept: bool) -> Result<()> {
    let needed = used.len() + usize::from(intercept);
    if x.n_rows() < needed {
        return Err(ModelError::Shape {
            model: NAME,
            what: "training rows",
            expected: format!("at least {needed} rows for {} coefficients", needed),
            found: format!("{} rows", x.n_rows()),
        });
    }
    Ok(())
}

impl LinearModel {
    pub(crate) fn fit(params: &LinearParams, x: &FeatureMatrix, y: &[f64]) -> Result<Self> {
        Self::fit_with(params, x, y, true)
    }

    /// With `normal_equations` false, QR only (the reference the normal
    /// equations are tested against).
    pub(crate) fn fit_with(
        params: &LinearParams,
        x: &FeatureMatrix,
        y: &[f64],
        normal_equations: bool,
    ) -> Result<Self> {
        check_training_data(NAME, x, y)?;
        let gram = if normal_equations {
            gram::solve(x, y, params.fit_intercept, params.collinearity_tolerance).ok()
        } else {
            None
        };
        let (used, fitted) = match gram {
            Some(s) => {
                check_rows(x, &s.used, params.fit_intercept)?;
                (
                    s.used,
                    Fitted {
                        intercept: s.intercept,
                        params: Array1::from(s.params),
                    },
                )
            }
            None => fit_qr(params, x, y)?,
        };
        Ok(LinearModel {
            n_features: x.n_cols(),
            used,
            fitted,
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn intercept(&self) -> f64 {
        self.fitted.intercept
    }

    /// One coefficient per feature, 0 for the features left out as collinear.
    pub fn coefficients(&self) -> Vec<f64> {
        let mut c = vec![0.0; self.n_features];
        for (&j, &b) in self.used.iter().zip(&self.fitted.params) {
            c[j] = b;
        }
        c
    }

    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        super::super::check_width(NAME, x, self.n_features)?;
        if x.n_rows() == 0 {
            return Ok(Vec::new());
        }
        let (b, c) = (&self.fitted.params, self.fitted.intercept);
        let p = x.n_cols();
        Ok(x.values()
            .par_chunks(p)
            .with_min_len(4_096)
            .map(|row| {
                let dot: f64 = self.used.iter().zip(b).map(|(&j, bj)| row[j] * bj).sum();
                dot + c
            })
            .collect())
    }

    /// Internal consistency after loading.
    pub(crate) fn validate(&self) -> Result<()> {
        let ok = self.used.len() == self.fitted.params.len()
            && self.used.iter().all(|&j| j < self.n_features)
            && self.used.windows(2).all(|w| w[0] < w[1]);
        if ok {
            Ok(())
        } else {
            Err(ModelError::Shape {
                model: NAME,
                what: "saved coefficients",
                expected: format!(
                    "one coefficient per used feature, indices below {}",
                    self.n_features
                ),
                found: format!(
                    "{} coefficients for used features {:?}",
                    self.fitted.params.len(),
                    self.used
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gram::{Declined, solve};
    use super::*;

    /// A deterministic pseudo-random number in [0, 1) (splitmix64).
    fn unit(i: u64) -> f64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn matrix(cols: &[Vec<f64>]) -> FeatureMatrix {
        let n = cols[0].len();
        let names = (0..cols.len()).map(|j| format!("x{j}")).collect();
        let values = (0..n)
            .flat_map(|i| cols.iter().map(move |c| c[i]))
            .collect();
        FeatureMatrix::new(names, values).expect("matrix")
    }

    fn noise(n: usize, stream: u64) -> Vec<f64> {
        (0..n as u64)
            .map(|i| unit(stream * 1_000_003 + i))
            .collect()
    }

    fn close(a: f64, b: f64, tol: f64, what: &str) {
        assert!(
            (a - b).abs() <= tol * (1.0 + b.abs()),
            "{what}: {a} vs {b} (tolerance {tol})"
        );
    }

    /// Which solver fits the model in a test.
    #[derive(Clone, Copy)]
    enum Solver {
        /// The normal equations, or QR when they decline (the default).
        Auto,
        /// QR only.
        Qr,
    }

    fn fit(x: &FeatureMatrix, y: &[f64], solver: Solver) -> LinearModel {
        let normal = matches!(solver, Solver::Auto);
        LinearModel::fit_with(&LinearParams::default(), x, y, normal).expect("fit")
    }

    #[test]
    fn normal_equations_recover_an_exact_law() {
        // y = 1.5 + 2·x0 − 3·x1 + 0.5·x2 + 1e-3·x3, no noise, on more rows
        // than one block, with columns of very different scales.
        let n = 10_000;
        let x0 = noise(n, 1);
        let x1: Vec<f64> = noise(n, 2).iter().map(|v| 1e4 * v + 5e5).collect();
        let x2: Vec<f64> = noise(n, 3).iter().map(|v| v * v - 0.3).collect();
        let x3: Vec<f64> = noise(n, 4).iter().map(|v| 1e-3 * v).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| 1.5 + 2.0 * x0[i] - 3.0 * x1[i] + 0.5 * x2[i] + 1e-3 * x3[i])
            .collect();
        let x = matrix(&[x0, x1, x2, x3]);
        let s = solve(&x, &y, true, 1e-9).expect("well-conditioned: no fallback");
        assert_eq!(s.used, vec![0, 1, 2, 3]);
        for (b, want) in s.params.iter().zip([2.0, -3.0, 0.5, 1e-3]) {
            close(*b, want, 1e-8, "coefficient");
        }
        close(s.intercept, 1.5, 1e-6, "intercept");
        let m = fit(&x, &y, Solver::Auto);
        let pred = m.predict(&x).expect("predict");
        for (p, t) in pred.iter().zip(&y) {
            close(*p, *t, 1e-9, "prediction");
        }
        // Without an intercept: y = 2·x0 − 0.5·x2.
        let y: Vec<f64> = (0..n)
            .map(|i| 2.0 * x.row(i)[0] - 0.5 * x.row(i)[2])
            .collect();
        let s = solve(&x, &y, false, 1e-9).expect("no fallback");
        assert_eq!(s.intercept, 0.0);
        for (b, want) in s.params.iter().zip([2.0, 0.0, -0.5, 0.0]) {
            assert!((b - want).abs() < 1e-9, "{:?}", s.params);
        }
    }

    #[test]
    fn exact_collinearity_is_dropped_like_qr() {
        // Shares that sum to 1 (the last is 1 − the others: collinear with
        // the intercept), a constant share and a sum of two columns: the
        // normal equations leave out the same columns as QR, no fallback.
        let n = 9_000;
        let a = noise(n, 5);
        let b = noise(n, 6);
        let total: Vec<f64> = (0..n).map(|i| 1.0 + a[i] + b[i]).collect();
        let s0: Vec<f64> = (0..n).map(|i| a[i] / total[i]).collect();
        let s1: Vec<f64> = (0..n).map(|i| b[i] / total[i]).collect();
        let s2: Vec<f64> = (0..n).map(|i| 1.0 / total[i]).collect();
        let constant = vec![0.3; n];
        let m0 = noise(n, 7).iter().map(|v| 100.0 * v).collect::<Vec<_>>();
        let sum: Vec<f64> = (0..n).map(|i| m0[i] + s0[i]).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| 10.0 + 3.0 * s0[i] - 2.0 * s1[i] + 0.05 * m0[i] + 0.1 * unit(i as u64))
            .collect();
        let x = matrix(&[m0, s0, constant, s1, s2, sum]);
        let auto = fit(&x, &y, Solver::Auto);
        let qr = fit(&x, &y, Solver::Qr);
        assert_eq!(auto.used, vec![0, 1, 3]);
        assert_eq!(auto.used, qr.used);
        assert!(
            solve(&x, &y, true, 1e-9).is_ok(),
            "exact collinearity needs no QR"
        );
        for (p, q) in auto.coefficients().iter().zip(qr.coefficients()) {
            close(*p, q, 1e-9, "coefficient");
        }
        close(auto.intercept(), qr.intercept(), 1e-9, "intercept");
        let (pa, pq) = (auto.predict(&x).expect("p"), qr.predict(&x).expect("p"));
        for (p, q) in pa.iter().zip(&pq) {
            close(*p, *q, 1e-10, "prediction");
        }
    }

    #[test]
    fn near_collinear_designs_give_the_qr_answer() {
        // x2 = x0 + x1 + ε·noise: as ε shrinks the design approaches
        // singular. Both paths must agree at every ε; below what the normal
        // equations resolve they decline and QR answers.
        let n = 12_000;
        let x0 = noise(n, 8);
        let x1 = noise(n, 9);
        let z = noise(n, 10);
        let (mut declined, mut solved) = (0, 0);
        for eps in [1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8] {
            let x2: Vec<f64> = (0..n).map(|i| x0[i] + x1[i] + eps * (z[i] - 0.5)).collect();
            let y: Vec<f64> = (0..n)
                .map(|i| 4.0 + x0[i] - 2.0 * x1[i] + 0.5 * x2[i] + 0.2 * unit(77 + i as u64))
                .collect();
            let x = matrix(&[x0.clone(), x1.clone(), x2]);
            let auto = fit(&x, &y, Solver::Auto);
            let qr = fit(&x, &y, Solver::Qr);
            assert_eq!(auto.used, qr.used, "ε = {eps}");
            match solve(&x, &y, true, 1e-9) {
                Ok(_) => {
                    assert!(
                        eps >= 1e-3,
                        "ε = {eps}: the normal equations should decline"
                    );
                    solved += 1;
                    // Coefficients agree to the conditioning; predictions
                    // (what the model is for) much closer.
                    let cond = 1.0 / (eps * eps);
                    for (p, q) in auto.coefficients().iter().zip(qr.coefficients()) {
                        close(*p, q, 1e-13 * cond, &format!("coefficient at ε = {eps}"));
                    }
                    let (pa, pq) = (auto.predict(&x).expect("p"), qr.predict(&x).expect("p"));
                    for (p, q) in pa.iter().zip(&pq) {
                        close(*p, *q, 1e-10, &format!("prediction at ε = {eps}"));
                    }
                }
                Err(why) => {
                    declined += 1;
                    if let Declined::NearCollinear { column, residual } = why {
                        assert_eq!(column, 2, "ε = {eps}");
                        assert!(residual > 1e-9 && residual < 1e-2, "{residual}");
                    }
                    assert_eq!(auto.coefficients(), qr.coefficients(), "ε = {eps}");
                    assert_eq!(auto.intercept(), qr.intercept(), "ε = {eps}");
                }
            }
        }
        assert!(declined >= 2, "the tiny ε must go to QR");
        assert!(solved >= 2, "a mild collinearity needs no QR");
    }

    #[test]
    fn ill_conditioned_kept_columns_go_to_qr() {
        // Pivots above the margin but a condition number above the limit:
        // x1 = x0 + ε·z with 1 − corr ≈ 1e-7: kept, yet too ill-conditioned.
        let n = 5_000;
        let x0 = noise(n, 11);
        let z = noise(n, 12);
        let x1: Vec<f64> = (0..n).map(|i| x0[i] + 5e-4 * (z[i] - 0.5)).collect();
        let y: Vec<f64> = (0..n).map(|i| x0[i] + unit(500 + i as u64)).collect();
        let x = matrix(&[x0, x1]);
        match solve(&x, &y, true, 1e-9) {
            Err(Declined::IllConditioned { condition }) => {
                assert!(condition > super::gram::MAX_CONDITION, "{condition}")
            }
            other => panic!("expected an ill-conditioned decline, got {other:?}"),
        }
        let (auto, qr) = (fit(&x, &y, Solver::Auto), fit(&x, &y, Solver::Qr));
        assert_eq!(auto.coefficients(), qr.coefficients());
    }

    #[test]
    fn the_normal_equations_do_not_depend_on_the_threads() {
        let n = 50_000;
        let cols: Vec<Vec<f64>> = (20..26).map(|s| noise(n, s)).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| {
                cols.iter()
                    .enumerate()
                    .map(|(j, c)| j as f64 * c[i])
                    .sum::<f64>()
                    + unit(i as u64)
            })
            .collect();
        let x = matrix(&cols);
        let run = |threads: usize| {
            crate::testing::on_pool(threads, || solve(&x, &y, true, 1e-9).expect("solve"))
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
    }

    #[test]
    fn a_saved_model_keeps_linfas_layout() {
        // Earlier versions stored linfa-linear's FittedLinearRegression: the
        // same bytes must still load.
        let x = matrix(&[noise(100, 30), noise(100, 31)]);
        let y: Vec<f64> = (0..100)
            .map(|i| 1.0 + x.row(i)[0] - 2.0 * x.row(i)[1])
            .collect();
        let old = LinearRegression::new()
            .fit(&DatasetBase::new(
                design(&x, &[0, 1]).expect("design"),
                Array1::from(y.clone()),
            ))
            .expect("linfa fit");
        let bytes = rmp_serde::to_vec_named(&old).expect("encode");
        let back: Fitted = rmp_serde::from_slice(&bytes).expect("decode as ours");
        close(back.intercept, old.intercept(), 0.0, "intercept");
        assert_eq!(&back.params, old.params());
        let ours = fit(&x, &y, Solver::Auto);
        let bytes = rmp_serde::to_vec_named(&ours.fitted).expect("encode");
        let theirs: linfa_linear::FittedLinearRegression<f64> =
            rmp_serde::from_slice(&bytes).expect("decode as linfa's");
        close(theirs.intercept(), 1.0, 1e-9, "intercept");
    }
}
