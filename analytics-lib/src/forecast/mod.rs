//! Monthly revenue forecast: a regression on lagged revenue, checked by a
//! rolling-origin backtest against the seasonal-naive baseline.
//!
//! **Input** is the monthly revenue series of [`crate::kpi::monthly_revenue`]
//! (`YYYY-MM` → revenue) and the reference date `as_of` (the day after the
//! data's last day, [`crate::kpi::Sales::default_as_of`] or
//! [`crate::kpi::Kpis::as_of`]). It is prepared by [`prepare_series`]:
//!
//! * months between the first and the last complete month that have no
//!   revenue are filled with 0 (and listed);
//! * when `as_of` is not the 1st of a month, the month of the data's last day
//!   (`as_of − 1 day`) is *partial*: it is excluded from training and from
//!   the backtest, and the report says so; months after it are excluded too.
//!
//! **Model.** The target of month `t` is `log1p(revenue[t])`; its features
//! are computed from the months *before* `t` only ([`FEATURES`]):
//!
//! * `lag_1`, `lag_2`, `lag_3`, `lag_12` = `log1p(revenue[t − k])`;
//! * `trend` = `t`, the month's index from the first month of the series;
//! * `month_sin`, `month_cos` = month of year `m` (1–12) as
//!   `sin(2πm/12)`, `cos(2πm/12)` (two columns instead of eleven dummies, so
//!   that OLS keeps enough degrees of freedom on a few years of data);
//! * `mothers_day` (May), `black_friday` (November), `christmas` (December):
//!   1 in that month, else 0.
//!
//! Any of the library's regressors fits it ([`ForecastParams::model`], OLS by
//! default); a prediction `p` becomes revenue as `max(expm1(p), 0)` (in
//! log space this estimates the median rather than the mean month). The first
//! 12 months only serve as lags: training rows start at `t = 12`.
//!
//! **Backtest.** For each of the last `H` complete months (the *origins*,
//! `H` in 6..=12, default 6), the model is fitted on the months before the
//! origin and forecasts the origin (one step ahead); the seasonal-naive
//! baseline forecasts it with the same month a year earlier. The report gives
//! each month's actual, forecast and baseline, and RMSE, MAE and MAPE for
//! both. The code builds every feature and fits every model from the slice of
//! history before the origin, so a month cannot leak into its own forecast.
//!
//! **Forecast.** The model fitted on every complete month forecasts the next
//! [`ForecastParams::horizon`] months (default 3) recursively: each forecast
//! is fed back as the lag of the following months. The interval of step `h`
//! is `forecast ± z · RMSE_backtest · √h` (`z` = 1.96 by default, ≈ 95 % if
//! one-step errors were normal and unbiased; the `√h` widening for recursive
//! steps is a heuristic, as if errors accumulated like a random walk), with
//! the lower bound clipped at 0. With 6–12 backtest months the RMSE itself is
//! uncertain: read the band as an order of magnitude, not a guarantee.
//!
//! ```no_run
//! use analytics_lib::{forecast, kpi};
//! let sales = analytics_lib::source::Source::parquet("data/curated").prepare()?.sales;
//! let monthly = kpi::monthly_revenue(&sales, &kpi::Filter::all())?;
//! let report = forecast::forecast(&monthly, sales.default_as_of, &forecast::ForecastParams::default())?;
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! let plot = forecast::forecast_chart(&report);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chart;
pub mod ets;
mod regression;
mod series;
use crate::calendar::month_key;
pub use chart::forecast_chart;
pub use ets::HoltWinters;
pub use regression::feature_names;
use regression::{fit_on, predict_next};
pub use series::{ExcludedMonth, MonthValue, MonthlySeries, prepare_series};
use series::{month_of_year, month_start, parse_month};

use std::collections::BTreeMap;
use std::f64::consts::PI;

use chrono::{Datelike, Duration, NaiveDate};
use plotly::common::{DashType, Fill, HoverInfo, Line, Marker, Mode, Title};
use plotly::layout::{Axis, Layout, Margin, Shape, ShapeLayer, ShapeLine, ShapeType};
use plotly::{Plot, Scatter};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::features::FeatureMatrix;
use crate::locale;
use crate::models::{Hyperparameters, LinearParams, Metrics, ModelError, ModelKind, Regressor};

/// The lags (in months) used as features.
pub const LAGS: [usize; 4] = [1, 2, 3, 12];
/// The longest lag: the first `MAX_LAG` months only serve as lags.
pub const MAX_LAG: usize = 12;
/// Months of training rows (each with its 12-month lag) needed before the
/// first backtest origin.
pub const MIN_TRAINING_MONTHS: usize = 12;
/// Allowed backtest lengths `H`.
pub const BACKTEST_MONTHS: std::ops::RangeInclusive<usize> = 6..=12;
/// Default backtest length.
pub const DEFAULT_BACKTEST_MONTHS: usize = 6;
/// Default number of months forecast.
pub const DEFAULT_HORIZON: usize = 3;
/// Longest forecast allowed.
pub const MAX_HORIZON: usize = 12;
/// What the model predicts.
pub const TARGET: &str = "log1p(revenue)";
/// The feature columns, in order (see the module docs).
pub const FEATURES: [&str; 10] = [
    "lag_1",
    "lag_2",
    "lag_3",
    "lag_12",
    "trend",
    "month_sin",
    "month_cos",
    "mothers_day",
    "black_friday",
    "christmas",
];

/// An error while preparing the series, backtesting or forecasting.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    #[error("forecast: invalid parameter `{name}`: expected {expected}; found {found}")]
    InvalidParameter {
        name: &'static str,
        expected: String,
        found: String,
    },

    #[error("forecast: monthly revenue {what}: expected {expected}; found {found}")]
    InvalidSeries {
        what: String,
        expected: String,
        found: String,
    },

    #[error(
        "forecast: the monthly revenue series is too short for a {backtest_months}-month backtest: expected at least {needed} complete months ({MAX_LAG} for the 12-month lag, then {MIN_TRAINING_MONTHS} training months, then {backtest_months} held-out months); found {found} complete months{range}"
    )]
    TooShort {
        backtest_months: usize,
        needed: usize,
        found: usize,
        /// ` (YYYY-MM to YYYY-MM)`, or empty.
        range: String,
    },

    #[error(transparent)]
    Model(#[from] ModelError),

    #[error(transparent)]
    Data(#[from] DataError),
}

pub type Result<T, E = ForecastError> = std::result::Result<T, E>;

fn invalid(name: &'static str, expected: impl Into<String>, found: impl ToString) -> ForecastError {
    ForecastError::InvalidParameter {
        name,
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// What to fit and how to check it, validated by [`ForecastParams::check`].
///
/// ```
/// # use analytics_lib::forecast::ForecastParams;
/// # use analytics_lib::models::ForestParams;
/// let p = ForecastParams::new().backtest_months(12).model(ForestParams::new().n_trees(50));
/// assert!(p.check().is_ok());
/// assert!(ForecastParams::new().backtest_months(3).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastParams {
    /// The regressor (its kind and hyperparameters); OLS by default.
    pub model: Hyperparameters,
    /// `H`: months held out in the rolling-origin backtest, 6..=12.
    pub backtest_months: usize,
    /// Months forecast after the last complete month, 1..=12.
    pub horizon: usize,
    /// Width of the interval in backtest RMSEs (1.96 ≈ 95 % for normal errors).
    pub interval_z: f64,
}

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams {
            model: LinearParams::default().into(),
            backtest_months: DEFAULT_BACKTEST_MONTHS,
            horizon: DEFAULT_HORIZON,
            interval_z: 1.96,
        }
    }
}

impl ForecastParams {
    pub fn new() -> Self {
        Self::default()
    }

    /// The regressor: `LinearParams`, `ForestParams`, `XgbParams` or a
    /// [`Hyperparameters`].
    pub fn model(mut self, model: impl Into<Hyperparameters>) -> Self {
        self.model = model.into();
        self
    }

    /// The regressor of a kind, with that kind's default hyperparameters.
    pub fn kind(self, kind: ModelKind) -> Self {
        let model: Hyperparameters = match kind {
            ModelKind::Linear => LinearParams::default().into(),
            ModelKind::RandomForest => crate::models::ForestParams::default().into(),
            ModelKind::Xgboost => crate::models::XgbParams::default().into(),
            ModelKind::TrainingMean => crate::models::MeanParams::default().into(),
        };
        self.model(model)
    }

    pub fn backtest_months(mut self, h: usize) -> Self {
        self.backtest_months = h;
        self
    }

    pub fn horizon(mut self, months: usize) -> Self {
        self.horizon = months;
        self
    }

    pub fn interval_z(mut self, z: f64) -> Self {
        self.interval_z = z;
        self
    }

    /// An invalid setting is an error, never a panic.
    pub fn check(&self) -> Result<&Self> {
        if !BACKTEST_MONTHS.contains(&self.backtest_months) {
            return Err(invalid(
                "backtest_months",
                format!(
                    "a number of months in {}..={}",
                    BACKTEST_MONTHS.start(),
                    BACKTEST_MONTHS.end()
                ),
                self.backtest_months,
            ));
        }
        if !(1..=MAX_HORIZON).contains(&self.horizon) {
            return Err(invalid(
                "horizon",
                format!("a number of months in 1..={MAX_HORIZON}"),
                self.horizon,
            ));
        }
        if !(self.interval_z.is_finite() && self.interval_z > 0.0) {
            return Err(invalid(
                "interval_z",
                "a positive finite number",
                self.interval_z,
            ));
        }
        self.model.check()?;
        Ok(self)
    }

    /// Complete months the series needs for this backtest:
    /// `12 + 12 + H` (lags, training, held out).
    pub fn months_needed(&self) -> usize {
        MAX_LAG + MIN_TRAINING_MONTHS + self.backtest_months
    }
}

// ---------------------------------------------------------------------------
// The report.

/// One held-out month of the backtest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub actual: f64,
    /// The model's one-step forecast, fitted on the months before this one.
    pub forecast: f64,
    /// Seasonal naive: the same month a year earlier.
    pub baseline: f64,
    /// `actual − forecast`.
    pub residual: f64,
    /// Months the model was trained on (those with a 12-month lag).
    pub training_months: usize,
    /// The interval the method would have given at this origin:
    /// `forecast ± z · RMSE` of its one-step residuals at the (up to `H`)
    /// origins before this one; `None` with fewer than 3 of them.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// Errors of a set of forecasts against the actual values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Root mean squared error (R$).
    pub rmse: f64,
    /// Mean absolute error (R$).
    pub mae: f64,
    /// Mean absolute percentage error, as a fraction (0.05 = 5 %), over the
    /// months with a positive actual; `None` when there is none.
    pub mape: Option<f64>,
    /// Months scored.
    pub n: usize,
    /// Months in the MAPE (actual > 0).
    pub n_mape: usize,
}

impl Scores {
    /// Score `forecast` against `actual` (RMSE and MAE from [`Metrics`]).
    pub fn compute(actual: &[f64], forecast: &[f64]) -> Result<Scores> {
        let m = Metrics::compute(actual, forecast)?;
        let ape: Vec<f64> = actual
            .iter()
            .zip(forecast)
            .filter(|(a, _)| **a > 0.0)
            .map(|(a, f)| (a - f).abs() / a)
            .collect();
        Ok(Scores {
            rmse: m.rmse,
            mae: m.mae,
            mape: (!ape.is_empty()).then(|| ape.iter().sum::<f64>() / ape.len() as f64),
            n: m.n,
            n_mape: ape.len(),
        })
    }
}

/// The rolling-origin backtest of one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    pub method: ForecastMethod,
    pub months: Vec<BacktestMonth>,
    pub model: Scores,
    pub baseline: Scores,
    /// The model's RMSE is below the baseline's.
    pub beats_baseline: bool,
    /// Mean absolute scaled error: the backtest MAE over the in-sample MAE
    /// of the seasonal-naive forecast on the months before the backtest
    /// (Hyndman & Koehler); below 1 beats that naive forecast's usual error.
    /// `None` when that in-sample error is 0.
    pub mase: Option<f64>,
    /// The seasonal-naive baseline's own MASE over the backtest months.
    pub baseline_mase: Option<f64>,
    /// Share of backtest months whose actual fell inside their interval
    /// (at the report's `z`), over the months that had one.
    pub coverage: Option<f64>,
    pub coverage_months: usize,
}

/// The forecasting methods compared by the backtest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastMethod {
    /// The lag regression ([`ForecastParams::model`]).
    Regression,
    /// Holt-Winters, additive trend and season, on `log1p(revenue)` ([`ets`]).
    HoltWinters,
}

impl ForecastMethod {
    pub fn name(self) -> &'static str {
        match self {
            ForecastMethod::Regression => "regression",
            ForecastMethod::HoltWinters => "holt_winters",
        }
    }
}

impl std::fmt::Display for ForecastMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ForecastMethod::Regression => "regression",
            ForecastMethod::HoltWinters => "Holt-Winters",
        })
    }
}

/// One forecast month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// `YYYY-MM`.
    pub month: String,
    /// 1 for the month after the last complete month, and so on.
    pub step: usize,
    pub forecast: f64,
    pub lower: f64,
    pub upper: f64,
}

/// How the interval was built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalMethod {
    pub description: String,
    pub z: f64,
    /// The backtest RMSE the half-widths are multiples of.
    pub backtest_rmse: f64,
}

/// Everything about one forecast: serialisable, for the CLI and notebooks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastReport {
    pub model: ModelKind,
    pub params: ForecastParams,
    pub as_of: NaiveDate,
    pub target: String,
    pub features: Vec<String>,
    /// The complete months used (zeros filled in).
    pub history: Vec<MonthValue>,
    pub filled_months: Vec<String>,
    pub excluded_months: Vec<ExcludedMonth>,
    /// The regression's backtest.
    pub backtest: Backtest,
    /// Holt-Winters' backtest on the same months (`None` when the history
    /// is too short to start it).
    pub holt_winters: Option<Backtest>,
    /// The method with the lower backtest MASE (the regression on a tie or
    /// without one): the one the forecast below comes from.
    pub method: ForecastMethod,
    /// Which method won and by how much, in a sentence.
    pub selection: String,
    pub forecast: Vec<ForecastPoint>,
    pub interval: IntervalMethod,
    /// What a reader should know, in sentences.
    pub notes: Vec<String>,
}

/// Prepare the series ([`prepare_series`]), backtest, and forecast.
pub fn forecast(
    monthly: &BTreeMap<String, f64>,
    as_of: NaiveDate,
    params: &ForecastParams,
) -> Result<ForecastReport> {
    params.check()?;
    let series = prepare_series(monthly, as_of)?;
    forecast_series(&series, params)
}

/// [`forecast`] on the series from [`prepare_series`] (complete, gap-free
/// months), with checked parameters.
fn forecast_series(series: &MonthlySeries, params: &ForecastParams) -> Result<ForecastReport> {
    let needed = params.months_needed();
    let n = series.len();
    if n < needed {
        return Err(ForecastError::TooShort {
            backtest_months: params.backtest_months,
            needed,
            found: n,
            range: series.range(),
        });
    }
    let y = series.values();
    let first = parse_month(&series.months[0].month)?;
    let h = params.backtest_months;
    let first_origin = n - h;
    // One-step forecasts at every origin from H months before the backtest
    // (the residuals the backtest intervals are made from) to the last month.
    let from = (n - 2 * h).max(MAX_LAG + MIN_TRAINING_MONTHS);
    let mut regression = Vec::with_capacity(n - from);
    for origin in from..n {
        let model = fit_on(&y[..origin], first, &params.model)?;
        regression.push(predict_next(&model, &y[..origin], first)?);
    }
    let logs: Vec<f64> = y.iter().map(|v| v.ln_1p()).collect();
    let holt: Option<Vec<f64>> = (from..n)
        .map(|origin| HoltWinters::fit(&logs[..origin]).map(|m| m.forecast(1).exp_m1().max(0.0)))
        .collect();
    // MASE scale: the seasonal naive's in-sample MAE before the backtest.
    let naive: Vec<f64> = (MAX_LAG..first_origin)
        .map(|t| (y[t] - y[t - 12]).abs())
        .collect();
    let scale = naive.iter().sum::<f64>() / naive.len().max(1) as f64;
    let make = |method: ForecastMethod, forecasts: &[f64]| -> Result<Backtest> {
        backtest_of(
            method,
            series,
            &y,
            from,
            first_origin,
            forecasts,
            params.interval_z,
            scale,
        )
    };
    let backtest = make(ForecastMethod::Regression, &regression)?;
    let holt_winters = holt
        .as_deref()
        .map(|f| make(ForecastMethod::HoltWinters, f))
        .transpose()?;
    let (method, selection) = choose(&backtest, holt_winters.as_ref());
    let chosen = match (method, &holt_winters) {
        (ForecastMethod::HoltWinters, Some(b)) => b,
        _ => &backtest,
    };
    let rmse = chosen.model.rmse;

    let mut points = Vec::with_capacity(params.horizon);
    let mut push = |step: usize, f: f64| {
        let half = params.interval_z * rmse * (step as f64).sqrt();
        points.push(ForecastPoint {
            month: month_key(first + (n + step - 1) as i32),
            step,
            forecast: f,
            lower: (f - half).max(0.0),
            upper: f + half,
        });
    };
    match method {
        ForecastMethod::Regression => {
            let model = fit_on(&y, first, &params.model)?;
            let mut extended = y.clone();
            for step in 1..=params.horizon {
                let f = predict_next(&model, &extended, first)?;
                push(step, f);
                extended.push(f);
            }
        }
        ForecastMethod::HoltWinters => {
            let model = HoltWinters::fit(&logs).ok_or_else(|| ForecastError::InvalidSeries {
                what: "history for Holt-Winters".into(),
                expected: format!("at least {} finite months", ets::MIN_MONTHS),
                found: format!("{n} months"),
            })?;
            for step in 1..=params.horizon {
                push(step, model.forecast(step).exp_m1().max(0.0));
            }
        }
    }

    let interval = IntervalMethod {
        description: format!(
            "forecast ± z·RMSE·√step, z = {}, RMSE = the {method}'s one-step backtest RMSE over {} months; lower bound clipped at 0",
            params.interval_z, params.backtest_months
        ),
        z: params.interval_z,
        backtest_rmse: rmse,
    };
    let mut notes = vec![format!(
        "{} complete months ({} to {}); the first {MAX_LAG} only serve as lags, so the final model trains on {}",
        n,
        series.months[0].month,
        series.months[n - 1].month,
        n - MAX_LAG
    )];
    for e in &series.excluded_months {
        notes.push(format!("{} excluded: {}", e.month, e.reason));
    }
    if !series.filled_months.is_empty() {
        notes.push(format!(
            "months without revenue filled with 0: {}",
            series.filled_months.join(", ")
        ));
    }
    notes.push(format!(
        "backtest over the last {} months, one step ahead: model RMSE {} vs seasonal naive {} ({})",
        params.backtest_months,
        locale::brl(backtest.model.rmse),
        locale::brl(backtest.baseline.rmse),
        if backtest.beats_baseline {
            "the model is better"
        } else {
            "the model does NOT beat the seasonal-naive baseline"
        }
    ));
    let pct = |v: Option<f64>| v.map(locale::percent).unwrap_or_else(|| "n/a".into());
    for b in std::iter::once(&backtest).chain(holt_winters.as_ref()) {
        notes.push(format!(
            "{}: backtest MASE {} (seasonal naive {}), interval coverage {} over {} months (nominal ≈ {})",
            b.method,
            b.mase.map(|m| locale::number(m, 3)).unwrap_or_else(|| "n/a".into()),
            b.baseline_mase.map(|m| locale::number(m, 3)).unwrap_or_else(|| "n/a".into()),
            pct(b.coverage),
            b.coverage_months,
            locale::percent(normal_coverage(params.interval_z))
        ));
    }
    notes.push(selection.clone());
    notes.push(format!(
        "next {} months forecast by the {method} (the regression recursively: each forecast feeds the following lags); interval: {}",
        params.horizon, interval.description
    ));

    Ok(ForecastReport {
        model: params.model.kind(),
        params: params.clone(),
        as_of: series.as_of,
        target: TARGET.to_string(),
        features: feature_names(),
        history: series.months.clone(),
        filled_months: series.filled_months.clone(),
        excluded_months: series.excluded_months.clone(),
        backtest,
        holt_winters,
        method,
        selection,
        forecast: points,
        interval,
        notes,
    })
}

/// `P(|Z| ≤ z)` for a standard normal: the nominal coverage of `± z·RMSE`.
fn normal_coverage(z: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::new(0.0, 1.0)
        .map(|n| 2.0 * n.cdf(z) - 1.0)
        .unwrap_or(f64::NAN)
}

/// The backtest of one method from its one-step `forecasts` at the origins
/// `from..n` (the last `n − first_origin` are the backtest months).
#[allow(clippy::too_many_arguments)]
fn backtest_of(
    method: ForecastMethod,
    series: &MonthlySeries,
    y: &[f64],
    from: usize,
    first_origin: usize,
    forecasts: &[f64],
    z: f64,
    scale: f64,
) -> Result<Backtest> {
    let n = y.len();
    let h = n - first_origin;
    let residual = |origin: usize| y[origin] - forecasts[origin - from];
    let mut months = Vec::with_capacity(h);
    let (mut inside, mut with_interval) = (0usize, 0usize);
    for origin in first_origin..n {
        let earlier: Vec<f64> = (origin.saturating_sub(h).max(from)..origin)
            .map(residual)
            .collect();
        let forecast = forecasts[origin - from];
        let actual = y[origin];
        let (lower, upper) = if earlier.len() >= 3 {
            let rmse = (earlier.iter().map(|r| r * r).sum::<f64>() / earlier.len() as f64).sqrt();
            let (lo, hi) = ((forecast - z * rmse).max(0.0), forecast + z * rmse);
            with_interval += 1;
            if lo <= actual && actual <= hi {
                inside += 1;
            }
            (Some(lo), Some(hi))
        } else {
            (None, None)
        };
        months.push(BacktestMonth {
            month: series.months[origin].month.clone(),
            actual,
            forecast,
            baseline: y[origin - 12],
            residual: actual - forecast,
            training_months: origin - MAX_LAG,
            lower,
            upper,
        });
    }
    let actual: Vec<f64> = months.iter().map(|m| m.actual).collect();
    let model = Scores::compute(
        &actual,
        &months.iter().map(|m| m.forecast).collect::<Vec<_>>(),
    )?;
    let baseline = Scores::compute(
        &actual,
        &months.iter().map(|m| m.baseline).collect::<Vec<_>>(),
    )?;
    let scaled = |mae: f64| (scale > 0.0).then(|| mae / scale);
    Ok(Backtest {
        method,
        beats_baseline: model.rmse < baseline.rmse,
        mase: scaled(model.mae),
        baseline_mase: scaled(baseline.mae),
        coverage: (with_interval > 0).then(|| inside as f64 / with_interval as f64),
        coverage_months: with_interval,
        months,
        model,
        baseline,
    })
}

/// The method with the lower MASE (by MAE when MASE is undefined; the
/// regression on a tie), and a sentence saying by how much it won.
fn choose(regression: &Backtest, holt: Option<&Backtest>) -> (ForecastMethod, String) {
    let Some(hw) = holt else {
        return (
            ForecastMethod::Regression,
            "regression: Holt-Winters needs 24 months of history before the backtest".into(),
        );
    };
    let score = |b: &Backtest| b.mase.unwrap_or(b.model.mae);
    let (r, w) = (score(regression), score(hw));
    let what = if regression.mase.is_some() {
        "MASE"
    } else {
        "MAE"
    };
    let (winner, loser, a, b) = if w < r {
        (hw, regression, w, r)
    } else {
        (regression, hw, r, w)
    };
    let by = if b > 0.0 { 100.0 * (1.0 - a / b) } else { 0.0 };
    (
        winner.method,
        format!(
            "{} chosen by backtest {what}: {} against {} for the {} ({:.1} % lower)",
            winner.method,
            locale::number(a, 3),
            locale::number(b, 3),
            loser.method,
            by
        ),
    )
}
