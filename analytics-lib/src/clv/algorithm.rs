//! The fitted CLV model (BG/NBD + Gamma-Gamma) and what it predicts per
//! customer: P(alive), expected purchases and average order value over the
//! horizon, and the discounted customer lifetime value, as lifetimes'
//! `customer_lifetime_value(…, freq="D")` computes it.

use std::path::Path;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::kpi::Sales;

use super::bgnbd::{self, BgNbd};
use super::errors::{ClvError, Result};
use super::gamma_gamma::{self, GammaGamma};
use super::hyperparams::{ClvParams, DAYS_PER_MONTH};
use super::summary::{CustomerSummary, purchase_days_between};

/// The layout version of a saved CLV model (`clv.json`).
pub const CLV_FORMAT_VERSION: u32 = 1;

/// Both fitted models, the date and data they were fitted at, and the
/// horizon and discounting their CLV uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClvModel {
    pub format_version: u32,
    /// The summary's reference date (purchases before it were fitted on).
    pub as_of: NaiveDate,
    pub bgnbd: BgNbd,
    pub gamma_gamma: GammaGamma,
    pub params: ClvParams,
    /// Customers fitted (BG/NBD) and those with a repeat purchase (Gamma-Gamma).
    pub customers: usize,
    pub repeat_customers: usize,
    /// Wall-clock seconds of the two fits (not the summary).
    pub fit_seconds: f64,
}

/// One customer's predictions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClvValue {
    /// Probability that the customer is still active.
    pub p_alive: f64,
    /// Expected purchase days in the horizon.
    pub expected_purchases: f64,
    /// Expected revenue per purchase day (Gamma-Gamma).
    pub expected_average_order_value: f64,
    /// Discounted expected revenue over the horizon (R$).
    pub clv: f64,
}

/// Predictions for every customer of a summary (same order).
#[derive(Clone, Debug, PartialEq)]
pub struct ClvPredictions {
    pub as_of: NaiveDate,
    pub horizon_days: u32,
    pub values: Vec<ClvValue>,
}

impl ClvPredictions {
    /// Sum of the customers' CLV.
    pub fn total_clv(&self) -> f64 {
        self.values.iter().map(|v| v.clv).sum()
    }

    pub fn mean_p_alive(&self) -> f64 {
        self.values.iter().map(|v| v.p_alive).sum::<f64>() / self.values.len().max(1) as f64
    }

    pub fn mean_expected_purchases(&self) -> f64 {
        self.values
            .iter()
            .map(|v| v.expected_purchases)
            .sum::<f64>()
            / self.values.len().max(1) as f64
    }
}

/// The CLV step boundaries of a horizon: every 30 days, and the horizon
/// itself (`[30, 60, …, 360, 365]` for 365 days).
fn steps(horizon_days: u32) -> Vec<f64> {
    let h = f64::from(horizon_days);
    let mut out = Vec::new();
    let mut t = DAYS_PER_MONTH;
    while t < h {
        out.push(t);
        t += DAYS_PER_MONTH;
    }
    out.push(h);
    out
}

impl ClvModel {
    /// Fit both models on `summary` with checked `params`
    /// ([`ClvParams::fit`] is the way in).
    pub(crate) fn fit(summary: &CustomerSummary, params: &ClvParams) -> Result<Self> {
        let t0 = Instant::now();
        let repeat = summary.repeat_customers();
        if repeat < 2 {
            return Err(ClvError::data(
                "purchase summary",
                "at least 2 customers with a repeat purchase day (BG/NBD and Gamma-Gamma learn from repeat purchases)",
                format!("{repeat} of {} customers", summary.len()),
            ));
        }
        let (bg, gg) = rayon::join(
            || bgnbd::fit(summary, params.max_iterations, params.tolerance),
            || gamma_gamma::fit(summary, params.max_iterations, params.tolerance),
        );
        Ok(ClvModel {
            format_version: CLV_FORMAT_VERSION,
            as_of: summary.as_of,
            bgnbd: bg?,
            gamma_gamma: gg?,
            params: params.clone(),
            customers: summary.len(),
            repeat_customers: repeat,
            fit_seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// The same fitted models with another horizon and discount rate (checked).
    pub fn with_params(&self, params: &ClvParams) -> Result<Self> {
        params.check()?;
        Ok(ClvModel {
            params: params.clone(),
            ..self.clone()
        })
    }

    /// One customer's predictions from their summary `(x, t_x, T, m)`.
    pub fn value(&self, x: f64, tx: f64, t: f64, m: f64) -> ClvValue {
        let steps = steps(self.params.horizon_days);
        let mut cumulative = vec![0.0; steps.len()];
        self.value_with(&steps, &mut cumulative, x, tx, t, m)
    }

    fn value_with(
        &self,
        steps: &[f64],
        cumulative: &mut [f64],
        x: f64,
        tx: f64,
        t: f64,
        m: f64,
    ) -> ClvValue {
        self.bgnbd
            .expected_purchases_at(x, tx, t, steps, cumulative);
        let aov = self.gamma_gamma.expected_average_value(x, m);
        let d = self.params.discount_rate;
        let mut clv = 0.0;
        let mut before = 0.0;
        for (&s, &e) in steps.iter().zip(cumulative.iter()) {
            clv += aov * (e - before) / (1.0 + d).powf(s / DAYS_PER_MONTH);
            before = e;
        }
        ClvValue {
            p_alive: self.bgnbd.p_alive(x, tx, t),
            expected_purchases: before,
            expected_average_order_value: aov,
            clv,
        }
    }

    /// Predictions for every customer of `summary`, on both cores.
    pub fn predict(&self, summary: &CustomerSummary) -> Result<ClvPredictions> {
        let steps = steps(self.params.horizon_days);
        let values: Vec<ClvValue> = (0..summary.len())
            .into_par_iter()
            .with_min_len(1024)
            .map_init(
                || vec![0.0; steps.len()],
                |buf, i| {
                    self.value_with(
                        &steps,
                        buf,
                        f64::from(summary.frequency[i]),
                        summary.recency[i],
                        summary.t[i],
                        summary.monetary_value[i],
                    )
                },
            )
            .collect();
        if let Some(i) = values.iter().position(|v| {
            !(v.p_alive.is_finite()
                && v.expected_purchases.is_finite()
                && v.expected_average_order_value.is_finite()
                && v.clv.is_finite())
        }) {
            return Err(ClvError::Fit {
                model: "BG/NBD + Gamma-Gamma",
                reason: format!(
                    "a non-finite prediction {:?} for customer `{}` (frequency {}, recency {}, T {}); parameters {:?}, {:?}",
                    values[i],
                    summary.customer_ids[i],
                    summary.frequency[i],
                    summary.recency[i],
                    summary.t[i],
                    self.bgnbd,
                    self.gamma_gamma
                ),
            });
        }
        Ok(ClvPredictions {
            as_of: summary.as_of,
            horizon_days: self.params.horizon_days,
            values,
        })
    }

    /// The summary and its predictions as one frame: `customer_id`,
    /// `frequency`, `recency`, `T`, `monetary_value`, `p_alive`,
    /// `expected_purchases`, `expected_average_order_value`, `clv`.
    pub fn frame(
        &self,
        summary: &CustomerSummary,
        predictions: &ClvPredictions,
    ) -> Result<DataFrame> {
        let mut df = summary.to_frame()?;
        let v = &predictions.values;
        let cols = [
            ("p_alive", v.iter().map(|v| v.p_alive).collect::<Vec<_>>()),
            (
                "expected_purchases",
                v.iter().map(|v| v.expected_purchases).collect(),
            ),
            (
                "expected_average_order_value",
                v.iter().map(|v| v.expected_average_order_value).collect(),
            ),
            ("clv", v.iter().map(|v| v.clv).collect()),
        ];
        for (name, values) in cols {
            df.with_column(Column::new(name.into(), values))
                .map_err(|e| {
                    ClvError::from(DataError::polars("clv", "building the predictions frame")(
                        e,
                    ))
                })?;
        }
        Ok(df)
    }

    /// The model as JSON (what `clv.json` holds).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| ClvError::data("clv model", "a model that encodes as JSON", e))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Save as JSON, all-or-nothing.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::models::artifact::write_atomic(path, &self.to_json()?).map_err(|e| {
            ClvError::data(
                "saving the clv model",
                format!("{} written", path.display()),
                e,
            )
        })
    }

    /// A model back from [`ClvModel::to_json`]'s bytes, checked: format
    /// version, positive finite parameters, valid horizon and discount rate.
    /// `what` names the source in errors.
    pub fn from_json(bytes: &[u8], what: &str) -> Result<Self> {
        let m: ClvModel = serde_json::from_slice(bytes).map_err(|e| {
            ClvError::data("clv model file", format!("{what}: a CLV model as JSON"), e)
        })?;
        if m.format_version != CLV_FORMAT_VERSION {
            return Err(ClvError::data(
                "clv model file",
                format!("{what}: format version {CLV_FORMAT_VERSION}"),
                m.format_version,
            ));
        }
        let b = &m.bgnbd;
        let g = &m.gamma_gamma;
        let ok = [b.r, b.alpha, b.a, b.b, g.p, g.v]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
            && g.q.is_finite()
            && g.q > 1.0;
        if !ok {
            return Err(ClvError::data(
                "clv model file",
                format!("{what}: positive finite parameters and q > 1"),
                format!("{b:?}, {g:?}"),
            ));
        }
        m.params.check()?;
        Ok(m)
    }

    /// Load a model saved by [`ClvModel::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            ClvError::data("clv model file", format!("{} readable", path.display()), e)
        })?;
        Self::from_json(&bytes, &path.display().to_string())
    }

    /// The figures `analytics clv --json` prints (interfaces.md):
    /// `{"bgnbd": {"r", "alpha", "a", "b", "log_likelihood"},
    /// "gamma_gamma": {"p", "q", "v"}, "as_of", "customers",
    /// "repeat_customers", "horizon_days", "total_clv"}`.
    pub fn report_json(&self, predictions: &ClvPredictions) -> serde_json::Value {
        let b = &self.bgnbd;
        let g = &self.gamma_gamma;
        serde_json::json!({
            "bgnbd": {"r": b.r, "alpha": b.alpha, "a": b.a, "b": b.b, "log_likelihood": b.log_likelihood},
            "gamma_gamma": {"p": g.p, "q": g.q, "v": g.v},
            "as_of": self.as_of,
            "customers": self.customers,
            "repeat_customers": self.repeat_customers,
            "horizon_days": self.params.horizon_days,
            "total_clv": predictions.total_clv(),
        })
    }
}

/// Summarise the customers at `as_of` and fit both models: the whole job of
/// `analytics clv`, for the CLI, the training job and the notebooks.
pub fn fit_clv(
    sales: &Sales,
    as_of: Option<NaiveDate>,
    params: &ClvParams,
) -> Result<(CustomerSummary, ClvModel)> {
    params.check()?;
    let as_of = as_of.unwrap_or(sales.default_as_of);
    let summary = CustomerSummary::compute(sales, as_of)?;
    let model = params.fit(&summary)?;
    Ok((summary, model))
}

/// One row of the holdout check: the customers with a given number of
/// repeat purchase days in the calibration period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldoutRow {
    /// Repeat purchase days in the calibration period; the last row holds
    /// this many and more.
    pub frequency: u32,
    /// True for the last, open-ended row (`frequency` and more).
    pub and_more: bool,
    pub customers: usize,
    /// Mean purchase days in the holdout period: predicted and observed.
    pub expected: f64,
    pub actual: f64,
}

/// Expected against actual purchases in a later period (lifetimes'
/// `calibration_and_holdout_data` and
/// `plot_calibration_purchases_vs_holdout_purchases`): the models are fitted
/// on the purchases before `calibration_end`, then every customer's
/// expected purchase days in `[calibration_end, holdout_end)` are compared
/// with the days they actually bought on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldoutCheck {
    pub calibration_end: NaiveDate,
    pub holdout_end: NaiveDate,
    pub model: ClvModel,
    pub rows: Vec<HoldoutRow>,
    pub customers: usize,
    /// Total purchase days in the holdout period: predicted and observed.
    pub expected_total: f64,
    pub actual_total: f64,
}

/// The holdout check with calibration rows `0, 1, …, max_frequency − 1`
/// and `max_frequency` and more.
pub fn holdout_check(
    sales: &Sales,
    calibration_end: NaiveDate,
    holdout_end: NaiveDate,
    params: &ClvParams,
    max_frequency: u32,
) -> Result<HoldoutCheck> {
    if holdout_end <= calibration_end {
        return Err(ClvError::invalid(
            "holdout_end",
            format!("a date after the calibration end {calibration_end}"),
            holdout_end,
        ));
    }
    if max_frequency == 0 {
        return Err(ClvError::invalid("max_frequency", "at least 1", 0));
    }
    let (summary, model) = fit_clv(sales, Some(calibration_end), params)?;
    let days = (holdout_end - calibration_end).num_days() as f64;
    let actual = purchase_days_between(sales, &summary.customer_ids, calibration_end, holdout_end)?;
    let n_rows = max_frequency as usize + 1;
    let mut rows: Vec<HoldoutRow> = (0..n_rows)
        .map(|f| HoldoutRow {
            frequency: f as u32,
            and_more: f as u32 == max_frequency,
            customers: 0,
            expected: 0.0,
            actual: 0.0,
        })
        .collect();
    let (mut expected_total, mut actual_total) = (0.0, 0.0);
    for (i, &bought) in actual.iter().enumerate() {
        let x = summary.frequency[i];
        let e =
            model
                .bgnbd
                .expected_purchases(f64::from(x), summary.recency[i], summary.t[i], days);
        let row = &mut rows[(x.min(max_frequency)) as usize];
        row.customers += 1;
        row.expected += e;
        row.actual += f64::from(bought);
        expected_total += e;
        actual_total += f64::from(bought);
    }
    for r in &mut rows {
        if r.customers > 0 {
            r.expected /= r.customers as f64;
            r.actual /= r.customers as f64;
        }
    }
    rows.retain(|r| r.customers > 0);
    Ok(HoldoutCheck {
        calibration_end,
        holdout_end,
        model,
        rows,
        customers: summary.len(),
        expected_total,
        actual_total,
    })
}

/// The usual split of [`holdout_check`]: calibrate on everything before
/// `as_of − holdout_days`, check on the last `holdout_days`.
pub fn holdout_check_last(
    sales: &Sales,
    as_of: Option<NaiveDate>,
    holdout_days: i64,
    params: &ClvParams,
) -> Result<HoldoutCheck> {
    if holdout_days <= 0 {
        return Err(ClvError::invalid(
            "holdout_days",
            "a positive number of days",
            holdout_days,
        ));
    }
    let as_of = as_of.unwrap_or(sales.default_as_of);
    holdout_check(
        sales,
        as_of - Duration::days(holdout_days),
        as_of,
        params,
        7,
    )
}
