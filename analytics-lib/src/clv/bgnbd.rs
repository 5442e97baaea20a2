//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy
//! way"): purchases follow a Poisson process of rate λ ~ Gamma(r, α) while
//! the customer is alive; after each purchase the customer drops out with
//! probability p ~ Beta(a, b).
//!
//! **Likelihood** (their section 7, lifetimes' `BetaGeoFitter`), per
//! customer with summary `(x, t_x, T)`:
//!
//! ```text
//! ln L = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b)
//!      + ln[ (α+T)^−(r+x) + 1{x>0} · a/(b+x−1) · (α+t_x)^−(r+x) ]
//! ```
//!
//! computed in log-space (the last term as a log-sum-exp), with its exact
//! gradient. The terms that depend on `x` alone are computed once per
//! distinct `x`; customers with the same `(x, t_x, T)` are one weighted row.
//!
//! **Predictions.** `P(alive) = 1 / (1 + 1{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))`,
//! as a logistic of its log. Expected purchases in `(T, T+t]`:
//!
//! ```text
//! E[Y(t)] = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x−1; z)] / (1 + 1{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))
//! ```
//!
//! with `z = t/(α+T+t)`. lifetimes evaluates `₂F₁(r+x, b+x; …)` as it
//! stands, which overflows for frequent buyers (large `x`: both upper
//! parameters grow with `x`, the terms grow like `x^k`). Here Euler's
//! transformation `₂F₁(A, B; C; z) = (1−z)^(C−A−B) ₂F₁(C−A, C−B; C; z)`
//! turns it into `(1−z)^(a−1) · ₂F₁(a+b−1−r, a−1; a+b+x−1; z)`: the upper
//! parameters no longer depend on `x`, the power `(1−z)^(r+x)` cancels, and
//! the series' terms shrink from the start for any `x`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use super::errors::{ClvError, Result};
use super::optimize::lbfgs;
use super::summary::CustomerSummary;

/// Fitted BG/NBD parameters (`alpha` in days) and the total log-likelihood
/// of the fit (the sum over customers).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    pub log_likelihood: f64,
}

/// The summary as weighted distinct rows `(x, t_x, T)`.
pub(crate) struct BgData {
    x: Vec<f64>,
    tx: Vec<f64>,
    t: Vec<f64>,
    w: Vec<f64>,
    /// Index of each row's `x` in `xs`.
    xi: Vec<u32>,
    /// Distinct `x` and the total weight of each.
    xs: Vec<f64>,
    xw: Vec<f64>,
    n: f64,
}

impl BgData {
    pub(crate) fn new(s: &CustomerSummary) -> Self {
        let mut rows: Vec<(u32, u64, u64)> = (0..s.len())
            .map(|i| (s.frequency[i], s.recency[i].to_bits(), s.t[i].to_bits()))
            .collect();
        rows.par_sort_unstable();
        let mut d = BgData {
            x: Vec::new(),
            tx: Vec::new(),
            t: Vec::new(),
            w: Vec::new(),
            xi: Vec::new(),
            xs: Vec::new(),
            xw: Vec::new(),
            n: rows.len() as f64,
        };
        let mut last = None;
        for row in rows {
            if last == Some(row) {
                if let Some(w) = d.w.last_mut() {
                    *w += 1.0;
                }
                if let Some(w) = d.xw.last_mut() {
                    *w += 1.0;
                }
                continue;
            }
            last = Some(row);
            let x = f64::from(row.0);
            if d.xs.last() != Some(&x) {
                d.xs.push(x);
                d.xw.push(0.0);
            }
            if let Some(w) = d.xw.last_mut() {
                *w += 1.0;
            }
            d.x.push(x);
            d.tx.push(f64::from_bits(row.1));
            d.t.push(f64::from_bits(row.2));
            d.w.push(1.0);
            d.xi.push((d.xs.len() - 1) as u32);
        }
        d
    }

    /// Distinct rows (after merging identical customers).
    pub(crate) fn rows(&self) -> usize {
        self.x.len()
    }

    /// Mean log-likelihood at `(r, α, a, b)` and its gradient with respect
    /// to the log-parameters.
    pub(crate) fn mean_log_likelihood(&self, p: [f64; 4], grad: &mut [f64; 4]) -> f64 {
        let [r, alpha, a, b] = p;
        // Per distinct x: the terms that depend on x alone.
        let lg_r = ln_gamma(r);
        let (dg_r, dg_ab, dg_b) = (digamma(r), digamma(a + b), digamma(b));
        let (lg_ab, lg_b) = (ln_gamma(a + b), ln_gamma(b));
        let ln_alpha = alpha.ln();
        let ln_a = a.ln();
        let mut c4 = vec![0.0; self.xs.len()];
        let (mut ll, mut g) = (0.0, [0.0; 4]);
        for (k, (&x, &w)) in self.xs.iter().zip(&self.xw).enumerate() {
            let a1 = ln_gamma(r + x) - lg_r + r * ln_alpha;
            let a2 = lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x);
            ll += w * (a1 + a2);
            g[0] += w * (digamma(r + x) - dg_r + ln_alpha);
            g[1] += w * r / alpha;
            let dg_abx = digamma(a + b + x);
            g[2] += w * (dg_ab - dg_abx);
            g[3] += w * (dg_ab + digamma(b + x) - dg_b - dg_abx);
            if x > 0.0 {
                c4[k] = ln_a - (b + x - 1.0).ln();
            }
        }
        // Per row: the log-sum-exp of the two ways the data can arise.
        let (row_ll, row_g) = super::optimize::sum_rows::<4>(self.rows(), |(mut ll, mut g), i| {
            let (x, w) = (self.x[i], self.w[i]);
            let s = r + x;
            let l3 = (alpha + self.t[i]).ln();
            let a3 = -s * l3;
            if x > 0.0 {
                let l4 = (alpha + self.tx[i]).ln();
                let a4 = c4[self.xi[i] as usize] - s * l4;
                let (hi, lo) = if a3 > a4 { (a3, a4) } else { (a4, a3) };
                let e = (lo - hi).exp();
                let lse = hi + e.ln_1p();
                // Share of the second term (the customer dropped out at t_x).
                let w4 = (a4 - lse).exp();
                let w3 = 1.0 - w4;
                ll += w * lse;
                g[0] -= w * (w3 * l3 + w4 * l4);
                g[1] -= w * s * (w3 / (alpha + self.t[i]) + w4 / (alpha + self.tx[i]));
                g[2] += w * w4 / a;
                g[3] -= w * w4 / (b + x - 1.0);
            } else {
                ll += w * a3;
                g[0] -= w * l3;
                g[1] -= w * s / (alpha + self.t[i]);
            }
            (ll, g)
        });
        ll += row_ll;
        for (j, gj) in g.iter_mut().enumerate() {
            // d/d ln θ = θ · d/dθ, per customer.
            *gj = (*gj + row_g[j]) * p[j] / self.n;
        }
        *grad = g;
        ll / self.n
    }
}

/// Fit BG/NBD by maximum likelihood on log-parameters (L-BFGS).
pub(crate) fn fit(summary: &CustomerSummary, max_iter: usize, tol: f64) -> Result<BgNbd> {
    let data = BgData::new(summary);
    let mean_t = summary.t.iter().sum::<f64>() / summary.len() as f64;
    let mean_x =
        summary.frequency.iter().map(|&x| f64::from(x)).sum::<f64>() / summary.len() as f64;
    // Start: a Gamma(1, α) rate matching the mean purchase rate, a = b = 1.
    let alpha0 = (mean_t / mean_x.max(0.1)).max(1e-3);
    let x0 = vec![0.0, alpha0.ln(), 0.0, 0.0];
    let objective = |theta: &[f64], grad: &mut [f64]| {
        let p = [
            theta[0].exp(),
            theta[1].exp(),
            theta[2].exp(),
            theta[3].exp(),
        ];
        if p.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return f64::NAN;
        }
        let mut g = [0.0; 4];
        let ll = data.mean_log_likelihood(p, &mut g);
        for (o, v) in grad.iter_mut().zip(g) {
            *o = -v;
        }
        -ll
    };
    let m = lbfgs(objective, x0, max_iter, tol);
    let [r, alpha, a, b] = [m.x[0].exp(), m.x[1].exp(), m.x[2].exp(), m.x[3].exp()];
    if !m.value.is_finite() || m.gradient_norm > tol.max(1e-5) {
        return Err(ClvError::Fit {
            model: "BG/NBD",
            reason: format!(
                "expected a gradient below {tol:e} on the mean log-likelihood; found {:e} after {} iterations (r = {r}, α = {alpha}, a = {a}, b = {b})",
                m.gradient_norm, m.iterations
            ),
        });
    }
    Ok(BgNbd {
        r,
        alpha,
        a,
        b,
        log_likelihood: -m.value * data.n,
    })
}

/// `₂F₁(p, q; c; z)` for `0 ≤ z < 1` by its series, for the small upper
/// parameters of the Euler-transformed BG/NBD term (see the module docs).
fn hyp2f1(p: f64, q: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    let mut k = 0.0;
    while k < 100_000.0 {
        term *= (p + k) * (q + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        k += 1.0;
        if term.abs() <= 1e-16 * sum.abs() || term == 0.0 {
            break;
        }
    }
    sum
}

impl BgNbd {
    /// `ln(a/(b+x−1)) + (r+x) ln((α+T)/(α+t_x))`: the log-odds of "dropped
    /// out at the last purchase" against "alive"; `None` when `x = 0`.
    fn log_dropout_odds(&self, x: f64, tx: f64, t: f64) -> Option<f64> {
        (x > 0.0).then(|| {
            (self.a / (self.b + x - 1.0)).ln()
                + (self.r + x) * ((self.alpha + t) / (self.alpha + tx)).ln()
        })
    }

    /// Probability that a customer with summary `(x, t_x, T)` is still alive.
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        match self.log_dropout_odds(x, tx, t) {
            None => 1.0,
            // 1 / (1 + e^d), without overflow for large d.
            Some(d) if d > 0.0 => {
                let e = (-d).exp();
                e / (1.0 + e)
            }
            Some(d) => 1.0 / (1.0 + d.exp()),
        }
    }

    /// Expected purchases in `(T, T + h]` for every `h` of `horizons`
    /// (cumulative, ascending or not), written into `out`.
    pub fn expected_purchases_at(
        &self,
        x: f64,
        tx: f64,
        t: f64,
        horizons: &[f64],
        out: &mut [f64],
    ) {
        let p_alive = self.p_alive(x, tx, t);
        let (a, b, r) = (self.a, self.b, self.r);
        let c = a + b + x - 1.0;
        let lead = c / (a - 1.0);
        for (o, &h) in out.iter_mut().zip(horizons) {
            if h <= 0.0 {
                *o = 0.0;
                continue;
            }
            let z = h / (self.alpha + t + h);
            let tail = (a - 1.0) * (1.0 - z).ln();
            let f = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z);
            *o = lead * (1.0 - tail.exp() * f) * p_alive;
        }
    }

    /// Expected purchases in `(T, T + h]`.
    pub fn expected_purchases(&self, x: f64, tx: f64, t: f64, h: f64) -> f64 {
        let mut out = [0.0];
        self.expected_purchases_at(x, tx, t, &[h], &mut out);
        out[0]
    }

    /// Expected purchases in `(0, h]` of a customer just acquired (time 0 at
    /// the first purchase, which is not counted): the unconditional
    /// `E[X(t)] = (a+b−1)/(a−1) · [1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))]`,
    /// through the same transformation.
    pub fn expected_purchases_new(&self, h: f64) -> f64 {
        self.expected_purchases(0.0, 0.0, 0.0, h)
    }
}
