//! The monthly series a forecast starts from: months as integers
//! (year × 12 + month − 1) and [`prepare_series`], which checks and completes
//! the monthly revenue up to the last whole month before `as_of`.

use super::*;
use crate::calendar::month_of;

pub(super) fn parse_month(key: &str) -> Result<i32> {
    let bad = || ForecastError::InvalidSeries {
        what: "month key".into(),
        expected: "a month written YYYY-MM (e.g. 2024-03)".into(),
        found: format!("`{key}`"),
    };
    let (y, m) = key.split_once('-').ok_or_else(bad)?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2)) {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) {
        return Err(bad());
    }
    Ok(y * 12 + m - 1)
}

/// Month of year, 1..=12.
pub(super) fn month_of_year(i: i32) -> u32 {
    i.rem_euclid(12) as u32 + 1
}

/// `YYYY-MM` → `YYYY-MM-01` (a plotly date).
pub(super) fn month_start(ym: &str) -> String {
    format!("{ym}-01")
}

// The prepared series.

/// A month and its revenue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonthValue {
    /// `YYYY-MM`.
    pub month: String,
    pub revenue: f64,
}

/// A month of the input left out, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExcludedMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub revenue: f64,
    pub reason: String,
}

/// The complete months, gap-free, ready for the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonthlySeries {
    /// The reference date: the day after the data's last day.
    pub as_of: NaiveDate,
    /// Every complete month from the first month of the input, in order.
    pub months: Vec<MonthValue>,
    /// Months with no revenue in the input, filled with 0.
    pub filled_months: Vec<String>,
    /// Months of the input left out: the trailing partial month and any month
    /// after it.
    pub excluded_months: Vec<ExcludedMonth>,
}

impl MonthlySeries {
    pub fn values(&self) -> Vec<f64> {
        self.months.iter().map(|m| m.revenue).collect()
    }

    pub fn len(&self) -> usize {
        self.months.len()
    }

    pub fn is_empty(&self) -> bool {
        self.months.is_empty()
    }

    /// ` (first to last)`, or empty.
    pub(super) fn range(&self) -> String {
        match (self.months.first(), self.months.last()) {
            (Some(a), Some(b)) => format!(" ({} to {})", a.month, b.month),
            _ => String::new(),
        }
    }
}

/// Check the series, fill missing months with 0 and drop the trailing
/// partial month (the month of `as_of − 1 day` when `as_of` is not the 1st
/// of a month) and anything after it.
pub fn prepare_series(monthly: &BTreeMap<String, f64>, as_of: NaiveDate) -> Result<MonthlySeries> {
    let last_day = as_of
        .pred_opt()
        .ok_or_else(|| invalid("as_of", "a date after the first representable day", as_of))?;
    let last_complete = if as_of.day() == 1 {
        month_of(last_day)
    } else {
        month_of(last_day) - 1
    };
    let mut parsed = BTreeMap::new();
    let mut excluded_months = Vec::new();
    for (key, &revenue) in monthly {
        let m = parse_month(key)?;
        if !(revenue.is_finite() && revenue >= 0.0) {
            return Err(ForecastError::InvalidSeries {
                what: format!("of {key}"),
                expected: "a finite revenue ≥ 0".into(),
                found: revenue.to_string(),
            });
        }
        if m <= last_complete {
            parsed.insert(m, revenue);
        } else {
            let reason = if m == month_of(last_day) {
                format!(
                    "partial month: the data ends on {last_day} (as_of {as_of}), before the month's end; excluded from training and the backtest"
                )
            } else {
                format!("after the data's last day {last_day} (as_of {as_of}); excluded")
            };
            excluded_months.push(ExcludedMonth {
                month: key.clone(),
                revenue,
                reason,
            });
        }
    }
    let mut months = Vec::new();
    let mut filled_months = Vec::new();
    let first = parsed.keys().next().copied().unwrap_or(last_complete + 1);
    for m in first..=last_complete {
        let key = month_key(m);
        let revenue = match parsed.get(&m) {
            Some(v) => *v,
            None => {
                filled_months.push(key.clone());
                0.0
            }
        };
        months.push(MonthValue {
            month: key,
            revenue,
        });
    }
    Ok(MonthlySeries {
        as_of,
        months,
        filled_months,
        excluded_months,
    })
}
