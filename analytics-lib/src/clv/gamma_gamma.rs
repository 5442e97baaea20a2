//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using
//! iso-value curves"; Fader & Hardie's note "The Gamma-Gamma model of
//! monetary value"): a customer's purchase values are Gamma(p, ν) with
//! ν ~ Gamma(q, v), independent of the purchase process. Fitted on the
//! customers with a repeat purchase, from their number of repeat purchase
//! days `x` and the mean revenue `m` of those days (lifetimes'
//! `GammaGammaFitter`):
//!
//! ```text
//! ln L = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + (px−1) ln m + px ln x − (px+q) ln(xm+v)
//! ```
//!
//! The expected average order value of a customer is
//! `(1 − w) · pv/(q−1) + w · m` with `w = px/(px+q−1)`: the population mean
//! for a customer without a repeat purchase, moving towards the customer's
//! own mean as repeat purchases accumulate. It needs `q > 1` (a finite
//! population mean).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use super::errors::{ClvError, Result};
use super::optimize::lbfgs;
use super::summary::CustomerSummary;

/// Fitted Gamma-Gamma parameters and the total log-likelihood of the fit
/// (the sum over the repeat customers).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
    pub log_likelihood: f64,
}

/// The repeat customers' `(x, m)`, with `ln m` and `ln x` computed once.
struct GgData {
    x: Vec<f64>,
    m: Vec<f64>,
    ln_m: Vec<f64>,
    ln_x: Vec<f64>,
    /// Index of each row's `x` in `xs`.
    xi: Vec<u32>,
    xs: Vec<f64>,
    xw: Vec<f64>,
}

impl GgData {
    fn new(s: &CustomerSummary) -> Self {
        let mut rows: Vec<(u32, f64)> = (0..s.len())
            .filter(|&i| s.frequency[i] > 0)
            .map(|i| (s.frequency[i], s.monetary_value[i]))
            .collect();
        rows.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut d = GgData {
            x: Vec::with_capacity(rows.len()),
            m: Vec::with_capacity(rows.len()),
            ln_m: Vec::with_capacity(rows.len()),
            ln_x: Vec::with_capacity(rows.len()),
            xi: Vec::with_capacity(rows.len()),
            xs: Vec::new(),
            xw: Vec::new(),
        };
        for (x, m) in rows {
            let x = f64::from(x);
            if d.xs.last() != Some(&x) {
                d.xs.push(x);
                d.xw.push(0.0);
            }
            if let Some(w) = d.xw.last_mut() {
                *w += 1.0;
            }
            d.x.push(x);
            d.m.push(m);
            d.ln_m.push(m.ln());
            d.ln_x.push(x.ln());
            d.xi.push((d.xs.len() - 1) as u32);
        }
        d
    }

    fn len(&self) -> usize {
        self.x.len()
    }

    /// Mean log-likelihood at `(p, q, v)` and its gradient with respect to
    /// the log-parameters.
    fn mean_log_likelihood(&self, prm: [f64; 3], grad: &mut [f64; 3]) -> f64 {
        let [p, q, v] = prm;
        let n = self.len() as f64;
        let (lg_q, dg_q, ln_v) = (ln_gamma(q), digamma(q), v.ln());
        // Per distinct x: ln Γ(px+q) − ln Γ(px) and the digammas.
        let mut dpx = Vec::with_capacity(self.xs.len());
        let mut dpq = Vec::with_capacity(self.xs.len());
        let mut ll = 0.0;
        let mut g = [0.0; 3];
        for (&x, &w) in self.xs.iter().zip(&self.xw) {
            ll += w * (ln_gamma(p * x + q) - ln_gamma(p * x) - lg_q + q * ln_v);
            let (d_pq, d_p) = (digamma(p * x + q), digamma(p * x));
            dpx.push(d_p);
            dpq.push(d_pq);
            g[0] += w * x * (d_pq - d_p);
            g[1] += w * (d_pq - dg_q + ln_v);
        }
        let (row_ll, row_g) = super::optimize::sum_rows::<3>(self.len(), |(mut ll, mut g), i| {
            let (x, m) = (self.x[i], self.m[i]);
            let px = p * x;
            let ln_xmv = (x * m + v).ln();
            ll += (px - 1.0) * self.ln_m[i] + px * self.ln_x[i] - (px + q) * ln_xmv;
            g[0] += x * (self.ln_m[i] + self.ln_x[i] - ln_xmv);
            g[1] -= ln_xmv;
            g[2] += q / v - (px + q) / (x * m + v);
            (ll, g)
        });
        ll += row_ll;
        for (j, gj) in g.iter_mut().enumerate() {
            *gj = (*gj + row_g[j]) * prm[j] / n;
        }
        *grad = g;
        ll / n
    }
}

/// Fit Gamma-Gamma by maximum likelihood on log-parameters (L-BFGS), on
/// the customers with a repeat purchase.
pub(crate) fn fit(summary: &CustomerSummary, max_iter: usize, tol: f64) -> Result<GammaGamma> {
    let data = GgData::new(summary);
    if data.len() < 2 {
        return Err(ClvError::data(
            "Gamma-Gamma spend model",
            "at least 2 customers with a repeat purchase day",
            data.len(),
        ));
    }
    let mean_m = data.m.iter().sum::<f64>() / data.len() as f64;
    // Start: p = 1, q = 2, v = the mean spend (population mean = mean m).
    let x0 = vec![0.0, 2f64.ln(), mean_m.ln()];
    let objective = |theta: &[f64], grad: &mut [f64]| {
        let prm = [theta[0].exp(), theta[1].exp(), theta[2].exp()];
        if prm.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return f64::NAN;
        }
        let mut g = [0.0; 3];
        let ll = data.mean_log_likelihood(prm, &mut g);
        for (o, v) in grad.iter_mut().zip(g) {
            *o = -v;
        }
        -ll
    };
    let m = lbfgs(objective, x0, max_iter, tol);
    let [p, q, v] = [m.x[0].exp(), m.x[1].exp(), m.x[2].exp()];
    if !m.value.is_finite() || m.gradient_norm > tol.max(1e-5) {
        return Err(ClvError::Fit {
            model: "Gamma-Gamma",
            reason: format!(
                "expected a gradient below {tol:e} on the mean log-likelihood; found {:e} after {} iterations (p = {p}, q = {q}, v = {v})",
                m.gradient_norm, m.iterations
            ),
        });
    }
    if q <= 1.0 {
        return Err(ClvError::Fit {
            model: "Gamma-Gamma",
            reason: format!(
                "expected q > 1 (a finite mean spend per purchase); found q = {q} (p = {p}, v = {v}): the spend per purchase day is too dispersed for this model"
            ),
        });
    }
    Ok(GammaGamma {
        p,
        q,
        v,
        log_likelihood: -m.value * data.len() as f64,
    })
}

impl GammaGamma {
    /// Mean spend per purchase of the population: `pv/(q−1)`.
    pub fn population_mean(&self) -> f64 {
        self.p * self.v / (self.q - 1.0)
    }

    /// Expected average order value of a customer with `x` repeat purchase
    /// days of mean value `m` (`x = 0`: the population mean).
    pub fn expected_average_value(&self, x: f64, m: f64) -> f64 {
        let w = self.p * x / (self.p * x + self.q - 1.0);
        (1.0 - w) * self.population_mean() + w * m
    }
}
