//! Exploration: summaries, planted outliers, correlations.

use analytics_lib::explore::{OutlierRules, correlations, outliers, summarize};
use analytics_lib::polars::prelude::*;
use statrs::distribution::{ContinuousCDF, Normal};

/// A clean normal sample without randomness: the n normal quantiles at
/// (i − ½)/n. Its most extreme value for n = 1000 is ±3.29σ.
fn normal_sample(n: usize, mean: f64, sd: f64) -> Vec<f64> {
    let z = Normal::new(0.0, 1.0).expect("normal");
    (0..n)
        .map(|i| mean + sd * z.inverse_cdf((i as f64 + 0.5) / n as f64))
        .collect()
}

fn frame(values: Vec<f64>) -> DataFrame {
    let ids: Vec<u32> = (0..values.len() as u32).collect();
    DataFrame::new(
        values.len(),
        vec![
            Column::new("id".into(), ids),
            Column::new("ticket".into(), values),
        ],
    )
    .expect("frame")
}

#[test]
fn summary_of_a_normal_sample() {
    let s = summarize(&frame(normal_sample(2000, 100.0, 15.0)), "ticket").expect("summary");
    assert_eq!(s.count, 2000);
    assert!((s.mean - 100.0).abs() < 1e-9);
    assert!((s.median - 100.0).abs() < 1e-9);
    assert!((s.std - 15.0).abs() < 0.2, "{}", s.std);
    assert!(s.skewness.abs() < 1e-9);
    assert!(s.kurtosis.abs() < 0.2, "{}", s.kurtosis);
    assert!((s.q1 - (100.0 - 0.6745 * 15.0)).abs() < 0.1);
    assert!(s.p99 > s.q3 && s.max > s.p99);
}

#[test]
fn flags_planted_outliers_and_nothing_else() {
    let clean = normal_sample(1000, 200.0, 20.0);
    let strict = OutlierRules {
        iqr_k: 3.0,
        ..OutlierRules::default()
    };
    let o = outliers(&frame(clean.clone()), "ticket", &strict).expect("outliers");
    assert_eq!(
        (o.iqr_count, o.robust_count),
        (0, 0),
        "a clean normal sample has none"
    );

    let mut planted = clean;
    planted.extend([200.0 + 20.0 * 10.0, 200.0 - 20.0 * 8.0, 200.0 + 20.0 * 25.0]);
    let o = outliers(&frame(planted), "ticket", &strict).expect("outliers");
    assert_eq!(o.iqr_count, 3);
    assert_eq!(o.robust_count, 3);
    let ids: Vec<u32> = o
        .extreme_rows
        .column("id")
        .expect("id")
        .u32()
        .expect("u32")
        .iter()
        .take(3)
        .flatten()
        .collect();
    assert_eq!(ids, [1002, 1000, 1001], "most extreme first");
}

#[test]
fn non_numeric_column_is_a_clear_error() {
    let df = DataFrame::new(1, vec![Column::new("city".into(), ["Recife"])]).expect("df");
    let err = summarize(&df, "city")
        .expect_err("strings have no mean")
        .to_string();
    assert!(
        err.contains("numeric") && err.contains("city") && err.contains("str"),
        "{err}"
    );
}

#[test]
fn correlation_matrix() {
    let x: Vec<f64> = (0..50).map(f64::from).collect();
    let y: Vec<f64> = x.iter().map(|v| 3.0 * v - 2.0).collect();
    let z: Vec<f64> = x.iter().map(|v| -v).collect();
    let df = DataFrame::new(
        50,
        vec![
            Column::new("x".into(), x),
            Column::new("y".into(), y),
            Column::new("z".into(), z),
        ],
    )
    .expect("df");
    let (names, m) = correlations(&df, &["x", "y", "z"]).expect("corr");
    assert_eq!(names, ["x", "y", "z"]);
    assert!((m[0][1] - 1.0).abs() < 1e-12 && (m[0][2] + 1.0).abs() < 1e-12);
    assert!((m[1][1] - 1.0).abs() < 1e-12);
}
