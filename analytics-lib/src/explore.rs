//! Exploration: distribution summaries, outliers and correlations of numeric
//! columns.
//!
//! * [`summarize`]: count, mean, standard deviation, min, quartiles, p99, max,
//!   skewness and excess kurtosis (statrs), ignoring nulls and NaN.
//! * [`outliers`]: Tukey's IQR fences (`Q1 − k·IQR`, `Q3 + k·IQR`, k = 1.5)
//!   and the robust z-score `0.6745·(x − median) / MAD` (flagged above 3.5,
//!   Iglewicz & Hoaglin), with counts and the most extreme rows.
//! * [`correlations`]: the Pearson correlation matrix of numeric columns.

use polars::prelude::*;
use serde::Serialize;
use statrs::statistics::{Data, Distribution, OrderStatistics};

use crate::error::{DataError, Result};

const T: &str = "exploration";

/// Summary statistics of one numeric column.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub column: String,
    pub count: usize,
    pub nulls: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub p99: f64,
    pub max: f64,
    pub skewness: f64,
    /// Excess kurtosis (0 for a normal distribution).
    pub kurtosis: f64,
}

/// The finite values of a numeric column, as f64.
pub fn values(df: &DataFrame, column: &str) -> Result<Vec<f64>> {
    let c = df
        .column(column)
        .map_err(DataError::polars(T, "reading a column"))?;
    if !c.dtype().is_primitive_numeric() {
        return Err(DataError::InvalidArgument {
            name: "column",
            expected: format!("a numeric column; `{column}` is not"),
            found: c.dtype().to_string(),
        });
    }
    let c = c
        .cast(&DataType::Float64)
        .map_err(DataError::polars(T, "casting to float"))?;
    Ok(c.f64()
        .map_err(DataError::polars(T, "reading floats"))?
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .collect())
}

/// Quantile with linear interpolation between order statistics (the
/// "type 7" definition numpy and pandas use by default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Summarize one numeric column.
pub fn summarize(df: &DataFrame, column: &str) -> Result<Summary> {
    let total = df.height();
    let v = sorted(values(df, column)?);
    let n = v.len();
    let mut data = Data::new(v.clone());
    let mean = data.mean().unwrap_or(f64::NAN);
    let std = data.std_dev().unwrap_or(f64::NAN);
    // Sample skewness and excess kurtosis from central moments.
    let (m2, m3, m4) = v.iter().fold((0.0, 0.0, 0.0), |(a, b, c), x| {
        let d = x - mean;
        (a + d * d, b + d * d * d, c + d * d * d * d)
    });
    let nf = n as f64;
    let (skewness, kurtosis) = if n > 2 && m2 > 0.0 {
        let (m2, m3, m4) = (m2 / nf, m3 / nf, m4 / nf);
        (m3 / m2.powf(1.5), m4 / (m2 * m2) - 3.0)
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(Summary {
        column: column.to_string(),
        count: n,
        nulls: total - n,
        mean,
        std,
        min: v.first().copied().unwrap_or(f64::NAN),
        q1: quantile(&v, 0.25),
        median: if n > 0 { data.median() } else { f64::NAN },
        q3: quantile(&v, 0.75),
        p99: quantile(&v, 0.99),
        max: v.last().copied().unwrap_or(f64::NAN),
        skewness,
        kurtosis,
    })
}

/// The rules used to flag outliers.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct OutlierRules {
    /// IQR multiplier (1.5 is Tukey's inner fence).
    pub iqr_k: f64,
    /// Robust z-score threshold (3.5 in Iglewicz & Hoaglin).
    pub robust_z: f64,
    /// How many of the most extreme rows to return.
    pub top: usize,
}

impl Default for OutlierRules {
    fn default() -> Self {
        OutlierRules {
            iqr_k: 1.5,
            robust_z: 3.5,
            top: 10,
        }
    }
}

/// Outliers of one column.
#[derive(Clone, Debug, Serialize)]
pub struct Outliers {
    pub column: String,
    pub lower_fence: f64,
    pub upper_fence: f64,
    /// Rows outside the IQR fences.
    pub iqr_count: usize,
    pub median: f64,
    /// Median absolute deviation.
    pub mad: f64,
    /// Rows whose robust z-score exceeds the threshold.
    pub robust_count: usize,
    /// The most extreme rows (largest |robust z|, or distance outside the
    /// fences when the MAD is 0), with every column of the input and
    /// `robust_z` added.
    #[serde(skip)]
    pub extreme_rows: DataFrame,
}

/// Flag outliers of `column` in `df` by IQR fences and robust z-score.
pub fn outliers(df: &DataFrame, column: &str, rules: &OutlierRules) -> Result<Outliers> {
    let v = sorted(values(df, column)?);
    let q1 = quantile(&v, 0.25);
    let q3 = quantile(&v, 0.75);
    let iqr = q3 - q1;
    let (lower, upper) = (q1 - rules.iqr_k * iqr, q3 + rules.iqr_k * iqr);
    let median = quantile(&v, 0.5);
    let mad = quantile(&sorted(v.iter().map(|x| (x - median).abs()).collect()), 0.5);
    let iqr_count = v.iter().filter(|x| **x < lower || **x > upper).count();
    let robust = |x: f64| {
        if mad > 0.0 {
            0.6745 * (x - median) / mad
        } else if x == median {
            0.0
        } else {
            f64::INFINITY.copysign(x - median)
        }
    };
    let robust_count = v
        .iter()
        .filter(|x| robust(**x).abs() > rules.robust_z)
        .count();

    let x = col(column).cast(DataType::Float64);
    let z = if mad > 0.0 {
        lit(0.6745) * (x.clone() - lit(median)) / lit(mad)
    } else {
        x.clone() - lit(median)
    };
    let extreme_rows = df
        .clone()
        .lazy()
        .with_column(z.alias("robust_z"))
        .filter(col("robust_z").is_not_null())
        .sort_by_exprs(
            [col("robust_z").abs()],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .limit(rules.top as u32)
        .collect()
        .map_err(DataError::polars(T, "ranking extreme rows"))?;
    Ok(Outliers {
        column: column.to_string(),
        lower_fence: lower,
        upper_fence: upper,
        iqr_count,
        median,
        mad,
        robust_count,
        extreme_rows,
    })
}

/// Pearson correlations between numeric columns (pairwise complete rows).
/// Returns the column names and the symmetric matrix, row-major.
pub fn correlations(df: &DataFrame, columns: &[&str]) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let k = columns.len();
    let mut cols = Vec::with_capacity(k);
    for c in columns {
        let s = df
            .column(c)
            .and_then(|s| s.cast(&DataType::Float64))
            .map_err(DataError::polars(T, "reading a column for correlation"))?;
        let v: Vec<Option<f64>> = s
            .f64()
            .map_err(DataError::polars(T, "reading floats"))?
            .iter()
            .collect();
        cols.push(v);
    }
    let mut m = vec![vec![f64::NAN; k]; k];
    for i in 0..k {
        for j in i..k {
            let pairs: Vec<(f64, f64)> = cols[i]
                .iter()
                .zip(&cols[j])
                .filter_map(|(a, b)| match (a, b) {
                    (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some((*a, *b)),
                    _ => None,
                })
                .collect();
            let r = pearson(&pairs);
            m[i][j] = r;
            m[j][i] = r;
        }
    }
    Ok((columns.iter().map(|c| c.to_string()).collect(), m))
}

fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    sxy / (sxx.sqrt() * syy.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 1.0), 4.0);
    }

    #[test]
    fn pearson_of_lines() {
        let up: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 2.0 * i as f64 + 1.0)).collect();
        assert!((pearson(&up) - 1.0).abs() < 1e-12);
        let down: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, -(i as f64))).collect();
        assert!((pearson(&down) + 1.0).abs() < 1e-12);
    }
}
