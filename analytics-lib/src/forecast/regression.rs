//! The regression forecaster's features (lags, trend, season, holidays),
//! fitting and one-step prediction, all from a history slice.

use super::*;

/// The feature names, in order.
pub fn feature_names() -> Vec<String> {
    FEATURES.iter().map(|s| s.to_string()).collect()
}

/// Features of month `t = history.len()`, from `history` (months `0..t`)
/// only; `first` is the month number of index 0. `None` before `t = 12`.
pub(super) fn feature_row(history: &[f64], first: i32) -> Option<Vec<f64>> {
    let t = history.len();
    if t < MAX_LAG {
        return None;
    }
    let mut row: Vec<f64> = LAGS.iter().map(|&k| history[t - k].ln_1p()).collect();
    let moy = month_of_year(first + t as i32);
    let angle = 2.0 * PI * f64::from(moy) / 12.0;
    let flag = |m: u32| if moy == m { 1.0 } else { 0.0 };
    row.extend([
        t as f64,
        angle.sin(),
        angle.cos(),
        flag(5),
        flag(11),
        flag(12),
    ]);
    Some(row)
}

/// Fit on every month of `history` that has its 12-month lag.
pub(super) fn fit_on(history: &[f64], first: i32, model: &Hyperparameters) -> Result<Regressor> {
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for t in MAX_LAG..history.len() {
        if let Some(row) = feature_row(&history[..t], first) {
            rows.push(row);
            y.push(history[t].ln_1p());
        }
    }
    let x = FeatureMatrix::from_rows(feature_names(), &rows)?;
    Ok(model.fit(&x, &y)?)
}

/// Revenue forecast for the month right after `history`.
pub(super) fn predict_next(model: &Regressor, history: &[f64], first: i32) -> Result<f64> {
    let row = feature_row(history, first).ok_or_else(|| ForecastError::InvalidSeries {
        what: "history before the forecast month".into(),
        expected: format!("at least {MAX_LAG} months"),
        found: format!("{} months", history.len()),
    })?;
    let x = FeatureMatrix::from_rows(feature_names(), &[row])?;
    let p = model
        .predict(&x)?
        .first()
        .copied()
        .ok_or_else(|| ModelError::Predict {
            model: model.kind().name(),
            cause: "expected one prediction; found none".into(),
        })?;
    Ok(p.exp_m1().max(0.0))
}
