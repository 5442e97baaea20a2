//! Monthly revenue forecast (feature `models`): the backtest beats the
//! seasonal-naive baseline on a series with a known law, never looks at the
//! month it evaluates, refuses short series, leaves out the partial last
//! month, and runs on generated data.

use std::collections::BTreeMap;

use analytics_lib::clean::clean;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::load;
use analytics_lib::forecast::{
    ForecastError, ForecastMethod, ForecastParams, ForecastReport, forecast, forecast_chart,
    prepare_series,
};
use analytics_lib::kpi::{Filter, Sales, monthly_revenue};
use analytics_lib::models::{ForestParams, ModelKind, XgbParams};
use chrono::NaiveDate;
use tempfile::TempDir;

use crate::helpers::assert_mentions;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

fn key(first_year: i32, t: usize) -> String {
    let i = first_year * 12 + t as i32;
    format!("{:04}-{:02}", i / 12, i % 12 + 1)
}

/// Seasonal factors, January first: Mother's Day in May, Black Friday in
/// November, Christmas in December.
const SEASON: [f64; 12] = [
    0.85, 0.80, 0.95, 0.95, 1.15, 0.95, 0.90, 0.95, 0.95, 1.00, 1.45, 1.60,
];

/// `months` months from January of `first_year`: 1.5 % growth a month,
/// the seasonal factors above and a deterministic ±2 % wobble.
fn synthetic(first_year: i32, months: usize) -> BTreeMap<String, f64> {
    (0..months)
        .map(|t| {
            let wobble = ((t * 7919 + 13) % 101) as f64 / 100.0 - 0.5;
            let v = 200_000.0 * 1.015_f64.powi(t as i32) * SEASON[t % 12] * (1.0 + 0.04 * wobble);
            (key(first_year, t), v)
        })
        .collect()
}

/// The day after the last month of a `months`-month series from `first_year`.
fn as_of_after(first_year: i32, months: usize) -> NaiveDate {
    let i = first_year * 12 + months as i32;
    d(i / 12, (i % 12 + 1) as u32, 1)
}

fn run(series: &BTreeMap<String, f64>, as_of: NaiveDate, p: &ForecastParams) -> ForecastReport {
    forecast(series, as_of, p).expect("forecast")
}

#[test]
fn the_model_beats_seasonal_naive_on_trend_and_seasonality() {
    let s = synthetic(2020, 48);
    let r = run(&s, as_of_after(2020, 48), &ForecastParams::default());
    let (m, b) = (&r.backtest.model, &r.backtest.baseline);
    eprintln!("model {m:?}\nbaseline {b:?}");
    assert_eq!(r.model, ModelKind::Linear);
    assert_eq!(r.backtest.months.len(), 6);
    assert_eq!(r.backtest.months[0].month, "2023-07");
    assert_eq!(r.backtest.months[5].month, "2023-12");
    assert!(r.backtest.beats_baseline);
    assert!(m.rmse < 0.5 * b.rmse, "RMSE {} vs {}", m.rmse, b.rmse);
    assert!(m.mae < b.mae);
    let (mm, bm) = (m.mape.expect("mape"), b.mape.expect("mape"));
    assert!(mm < bm && mm < 0.05, "MAPE {mm} vs {bm}");
    // The baseline is the same month a year earlier.
    assert_eq!(r.backtest.months[5].baseline, s["2022-12"]);
    assert_eq!(r.backtest.months[5].actual, s["2023-12"]);
    for bm in &r.backtest.months {
        assert_eq!(bm.residual, bm.actual - bm.forecast);
    }

    // A longer backtest, on the same series.
    let r12 = run(
        &s,
        as_of_after(2020, 48),
        &ForecastParams::new().backtest_months(12),
    );
    assert_eq!(r12.backtest.months.len(), 12);
    assert_eq!(r12.backtest.months[0].training_months, 24);
    assert!(r12.backtest.beats_baseline);
}

#[test]
fn a_backtest_forecast_never_sees_its_month_or_later() {
    let n = 40;
    let s = synthetic(2021, n);
    let p = ForecastParams::default();
    let before = run(&s, as_of_after(2021, n), &p);
    // Origins are months 34..40; change everything from the third one on.
    let origin = 36;
    let mut changed = s.clone();
    for t in origin..n {
        *changed.get_mut(&key(2021, t)).expect("month") *= 3.0 + t as f64 / 10.0;
    }
    let after = run(&changed, as_of_after(2021, n), &p);
    for j in 0..=2 {
        let (a, b) = (&before.backtest.months[j], &after.backtest.months[j]);
        assert_eq!(a.month, b.month);
        assert_eq!(
            a.forecast.to_bits(),
            b.forecast.to_bits(),
            "{}: forecast changed when later months changed: {} → {}",
            a.month,
            a.forecast,
            b.forecast
        );
        assert_eq!(a.baseline, b.baseline);
    }
    // The changed months did change: the origin's actual, and later forecasts.
    assert_ne!(
        before.backtest.months[2].actual,
        after.backtest.months[2].actual
    );
    assert_ne!(
        before.backtest.months[3].forecast,
        after.backtest.months[3].forecast
    );
}

#[test]
fn a_too_short_series_is_a_clear_error() {
    let s = synthetic(2022, 29);
    let err = forecast(&s, as_of_after(2022, 29), &ForecastParams::default())
        .expect_err("29 months cannot give a 6-month backtest");
    assert!(matches!(err, ForecastError::TooShort { .. }), "{err}");
    assert_mentions(
        &err.to_string(),
        &[
            "at least 30 complete months",
            "found 29",
            "2022-01 to 2024-05",
        ],
    );
    // 30 months are enough for H = 6, not for H = 12 (36 needed).
    assert!(
        forecast(
            &synthetic(2022, 30),
            as_of_after(2022, 30),
            &ForecastParams::default()
        )
        .is_ok()
    );
    let err = forecast(
        &synthetic(2022, 35),
        as_of_after(2022, 35),
        &ForecastParams::new().backtest_months(12),
    )
    .expect_err("35 months for H = 12");
    assert_mentions(&err.to_string(), &["at least 36", "found 35"]);
    // An empty series.
    let err =
        forecast(&BTreeMap::new(), d(2025, 1, 1), &ForecastParams::default()).expect_err("empty");
    assert_mentions(&err.to_string(), &["at least 30", "found 0"]);
}

#[test]
fn invalid_parameters_and_series_are_errors() {
    let s = synthetic(2020, 48);
    let as_of = as_of_after(2020, 48);
    for (p, needles) in [
        (
            ForecastParams::new().backtest_months(5),
            &["backtest_months", "6..=12", "found 5"][..],
        ),
        (
            ForecastParams::new().backtest_months(13),
            &["backtest_months", "found 13"][..],
        ),
        (
            ForecastParams::new().horizon(0),
            &["horizon", "found 0"][..],
        ),
        (
            ForecastParams::new().interval_z(f64::NAN),
            &["interval_z", "NaN"][..],
        ),
        (
            ForecastParams::new().model(ForestParams::new().n_trees(0)),
            &["n_trees"][..],
        ),
    ] {
        let err = forecast(&s, as_of, &p).expect_err("invalid parameter");
        assert_mentions(&err.to_string(), needles);
    }
    let mut bad_key = s.clone();
    bad_key.insert("2024-3".into(), 1.0);
    let err = forecast(&bad_key, as_of, &ForecastParams::default()).expect_err("bad key");
    assert_mentions(&err.to_string(), &["YYYY-MM", "`2024-3`"]);
    let mut negative = s.clone();
    negative.insert("2021-05".into(), -10.0);
    let err = forecast(&negative, as_of, &ForecastParams::default()).expect_err("negative");
    assert_mentions(&err.to_string(), &["2021-05", "≥ 0", "-10"]);
}

#[test]
fn the_interval_contains_the_point_forecast_and_widens() {
    let s = synthetic(2020, 48);
    let r = run(&s, as_of_after(2020, 48), &ForecastParams::default());
    assert_eq!(r.forecast.len(), 3);
    let months: Vec<&str> = r.forecast.iter().map(|p| p.month.as_str()).collect();
    assert_eq!(months, ["2024-01", "2024-02", "2024-03"]);
    for p in &r.forecast {
        assert!(p.forecast.is_finite() && p.forecast >= 0.0);
        assert!(
            p.lower <= p.forecast && p.forecast <= p.upper,
            "{}: {} not in [{}, {}]",
            p.month,
            p.forecast,
            p.lower,
            p.upper
        );
        assert!(p.lower >= 0.0);
        assert!(p.upper > p.lower);
    }
    let width = |i: usize| r.forecast[i].upper - r.forecast[i].forecast;
    assert!(width(0) < width(1) && width(1) < width(2));
    let expected = r.interval.z * r.backtest.model.rmse;
    assert!((width(0) - expected).abs() <= 1e-9 * expected.max(1.0));
    // The recursive forecast follows the law: January 2024 is about a
    // January 2023 grown by twelve months of 1.5 %.
    let law = s["2023-01"] * 1.015_f64.powi(12);
    assert!((r.forecast[0].forecast / law - 1.0).abs() < 0.05);
}

#[test]
fn the_partial_last_month_is_left_out_and_reported() {
    let n = 40;
    let complete = synthetic(2021, n);
    let mut with_partial = complete.clone();
    let partial = key(2021, n); // 2024-05
    with_partial.insert(partial.clone(), 12_345.0);
    // The data ends on 14 May: May is partial.
    let r = run(&with_partial, d(2024, 5, 15), &ForecastParams::default());
    assert_eq!(r.history.len(), n);
    assert_eq!(r.history.last().map(|m| m.month.as_str()), Some("2024-04"));
    assert_eq!(r.excluded_months.len(), 1);
    assert_eq!(r.excluded_months[0].month, partial);
    assert_mentions(&r.excluded_months[0].reason, &["partial", "2024-05-14"]);
    assert!(
        r.notes.iter().any(|n| n.contains("2024-05 excluded")),
        "{:?}",
        r.notes
    );
    assert!(r.backtest.months.iter().all(|m| m.month != partial));
    assert_eq!(r.forecast[0].month, partial);
    // The same as if the partial month had never been there.
    let without = run(&complete, d(2024, 5, 1), &ForecastParams::default());
    assert_eq!(r.backtest, without.backtest);
    assert_eq!(r.forecast, without.forecast);
    assert!(without.excluded_months.is_empty());

    // as_of on the 1st: the last month is complete and kept.
    let kept = prepare_series(&with_partial, d(2024, 6, 1)).expect("series");
    assert_eq!(
        kept.months.last().map(|m| m.month.as_str()),
        Some("2024-05")
    );
    assert!(kept.excluded_months.is_empty());
}

#[test]
fn missing_months_are_filled_with_zero() {
    let mut s = synthetic(2020, 48);
    s.remove("2021-03");
    let series = prepare_series(&s, as_of_after(2020, 48)).expect("series");
    assert_eq!(series.len(), 48);
    assert_eq!(series.filled_months, ["2021-03"]);
    assert_eq!(series.months[14].revenue, 0.0);
    // Trailing months without sales up to as_of are zeros too.
    let series = prepare_series(&s, d(2024, 3, 1)).expect("series");
    assert_eq!(series.len(), 50);
    assert_eq!(series.filled_months, ["2021-03", "2024-01", "2024-02"]);
    let r = run(&s, as_of_after(2020, 48), &ForecastParams::default());
    assert!(r.notes.iter().any(|n| n.contains("filled with 0: 2021-03")));
}

#[test]
fn every_model_kind_can_forecast() {
    let s = synthetic(2020, 48);
    let as_of = as_of_after(2020, 48);
    for p in [
        ForecastParams::new().model(ForestParams::new().n_trees(30).seed(3)),
        ForecastParams::new().model(
            XgbParams::new()
                .rounds(60)
                .max_depth(2)
                .learning_rate(0.2)
                .seed(3)
                .threads(Some(2)),
        ),
    ] {
        let kind = p.model.kind();
        let r = run(&s, as_of, &p);
        assert_eq!(r.model, kind);
        let mape = r.backtest.model.mape.expect("mape");
        eprintln!(
            "{kind}: MAPE {mape:.4}, baseline {:?}",
            r.backtest.baseline.mape
        );
        assert!(mape.is_finite());
        assert!(
            r.forecast
                .iter()
                .all(|f| f.lower <= f.forecast && f.forecast <= f.upper)
        );
    }
    assert_eq!(
        ForecastParams::new()
            .kind(ModelKind::RandomForest)
            .model
            .kind(),
        ModelKind::RandomForest
    );
}

#[test]
fn the_report_serialises_and_the_chart_shows_every_part() {
    let s = synthetic(2020, 48);
    let r = run(&s, as_of_after(2020, 48), &ForecastParams::default());
    let json = serde_json::to_value(&r).expect("json");
    for k in [
        "model",
        "params",
        "backtest",
        "forecast",
        "interval",
        "notes",
        "excluded_months",
    ] {
        assert!(json.get(k).is_some(), "no `{k}` in the JSON");
    }
    assert_eq!(json["model"], "linear");
    assert!(json["backtest"]["model"]["mape"].is_f64());
    let back: ForecastReport =
        serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("read back");
    assert_eq!(back.forecast.len(), r.forecast.len());

    let plot = forecast_chart(&r);
    let html = plot.to_inline_html(Some("forecast"));
    assert!(!html.contains("<script src"), "external script");
    let chart = plot.to_json();
    for needle in [
        "\"separators\":\",.\"",
        "\"tickprefix\":\"R$ \"",
        "actual revenue",
        "backtest forecast",
        "seasonal naive",
        "forecast interval",
        "\"fill\":\"tonexty\"",
        "\"dash\":\"dash\"",
        "\"type\":\"rect\"",
        "2024-03-01",
        "2023-07-01",
        "03/2024",
    ] {
        assert!(chart.contains(needle), "chart lacks {needle}");
    }
}

#[test]
fn the_backtest_runs_on_generated_data() {
    let dir = TempDir::new().expect("tmp");
    let cfg = GeneratorConfig {
        lines: 200_000,
        seed: 5,
        defect_rate: 0.0,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir.path()).expect("generate");
    let frames = load(dir.path()).expect("load").collect().expect("collect");
    let sales = Sales::from_frames(&clean(&frames).expect("clean").frames).expect("sales");
    let monthly = monthly_revenue(&sales, &Filter::all()).expect("monthly");
    let r = forecast(&monthly, sales.default_as_of, &ForecastParams::default()).expect("forecast");
    for m in &r.backtest.months {
        eprintln!(
            "{}: actual {:.0}, forecast {:.0}, seasonal naive {:.0}",
            m.month, m.actual, m.forecast, m.baseline
        );
    }
    eprintln!(
        "as_of {}, {} months; model {:?}\nbaseline {:?}\nforecast {:?}\nnotes {:#?}",
        r.as_of,
        r.history.len(),
        r.backtest.model,
        r.backtest.baseline,
        r.forecast,
        r.notes
    );
    assert_eq!(r.backtest.months.len(), 6);
    let mape = r.backtest.model.mape.expect("some month has revenue");
    assert!(mape.is_finite() && mape >= 0.0, "MAPE {mape}");
    assert!(r.backtest.baseline.mape.is_some_and(f64::is_finite));
    assert!(
        r.forecast
            .iter()
            .all(|p| p.forecast.is_finite() && p.lower <= p.forecast && p.forecast <= p.upper)
    );
}

/// MASE is the backtest MAE over the seasonal naive's in-sample MAE before
/// the backtest; coverage counts the months inside their interval; the
/// method with the lower MASE makes the forecast, and the report says by
/// how much it won.
#[test]
fn mase_coverage_and_the_chosen_method_are_reported() {
    let s = synthetic(2020, 48);
    let r = run(&s, as_of_after(2020, 48), &ForecastParams::default());
    let v: Vec<f64> = s.values().copied().collect();
    let scale = (12..42).map(|t| (v[t] - v[t - 12]).abs()).sum::<f64>() / 30.0;
    let hw = r.holt_winters.as_ref().expect("Holt-Winters on 48 months");
    for b in [&r.backtest, hw] {
        let mase = b.mase.expect("mase");
        assert!((mase - b.model.mae / scale).abs() < 1e-12, "{mase}");
        let bm = b.baseline_mase.expect("baseline mase");
        assert!((bm - b.baseline.mae / scale).abs() < 1e-12);
        assert_eq!(b.months.len(), 6);
        let with: Vec<_> = b.months.iter().filter(|m| m.lower.is_some()).collect();
        assert_eq!(with.len(), b.coverage_months);
        assert_eq!(
            b.coverage_months, 6,
            "H earlier residuals exist on 48 months"
        );
        let inside = with
            .iter()
            .filter(|m| {
                m.lower.unwrap_or(f64::NAN) <= m.actual && m.actual <= m.upper.unwrap_or(f64::NAN)
            })
            .count();
        assert_eq!(b.coverage, Some(inside as f64 / with.len() as f64));
        // Trend and season are learnt by both: far better than seasonal naive.
        assert!(mase < 0.5 * bm, "{}: {mase} vs {bm}", b.method);
    }
    assert_eq!(hw.method, ForecastMethod::HoltWinters);
    assert_eq!(hw.months[0].month, r.backtest.months[0].month);
    let want = if hw.mase < r.backtest.mase {
        ForecastMethod::HoltWinters
    } else {
        ForecastMethod::Regression
    };
    assert_eq!(r.method, want);
    assert_mentions(&r.selection, &["chosen by backtest MASE", "% lower"]);
    assert!(r.notes.iter().any(|n| n == &r.selection));
    assert!(r.notes.iter().any(|n| n.contains("interval coverage")));
}
