//! The dashboard's data endpoints: figures equal to the analytics-lib KPI
//! functions on the full sales frame, filters, the empty selection, every
//! kind of invalid filter, segments from a live segment model, the page and
//! its assets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use analytics_lib::kpi::{self, Dimension, Filter, KpiOptions, Sales};
use analytics_lib::segments::{
    KMeansParams, SegmentFeatures, SegmentModel, SegmentParams, segment_customers,
};
use chrono::{Datelike, Duration, NaiveDate};
use polars::prelude::{DataFrame, DataType};
use serde_json::{Value, json};

use crate::helpers::{TestApp, fixture, json_of, spawn, spawn_app};

/// The fixture's sales, loaded the way the notebooks do (full frame, string ids).
fn sales() -> &'static Sales {
    static CELL: OnceLock<Sales> = OnceLock::new();
    CELL.get_or_init(|| {
        std::thread::spawn(|| {
            let tables = analytics_lib::data::loader::load(&fixture().data)
                .expect("load")
                .collect()
                .expect("collect");
            let cleaned = analytics_lib::clean::clean(&tables).expect("clean");
            Sales::from_frames(&cleaned.frames).expect("sales")
        })
        .join()
        .expect("sales thread")
    })
}

fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("thread")
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let (s, v) = json_of(app.get(path).await).await;
    (s.as_u16(), v)
}

fn date(v: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(v.as_str().expect("a date string"), "%Y-%m-%d").expect("a date")
}

#[track_caller]
fn close(found: f64, expected: f64, what: &str) {
    close_within(found, expected, 1e-9, what);
}

/// `found` within `relative` × max(|expected|, 1) of `expected`.
#[track_caller]
fn close_within(found: f64, expected: f64, relative: f64, what: &str) {
    let tol = relative * expected.abs().max(1.0);
    assert!(
        (found - expected).abs() <= tol,
        "{what}: expected {expected}, found {found}"
    );
}

/// The API's KPIs against `kpi::kpis` on the full frame with the same filter.
fn check_kpis(d: &Value, filter: &Filter) {
    let f = filter.clone();
    let want = on_thread(move || kpi::kpis(sales(), &f, &KpiOptions::default()).expect("kpis"));
    let k = &d["kpis"];
    close(
        k["revenue"]["value"].as_f64().expect("revenue"),
        want.revenue,
        "revenue",
    );
    assert_eq!(
        k["orders"]["value"].as_f64(),
        Some(want.orders as f64),
        "orders"
    );
    assert_eq!(
        k["active_customers"]["value"].as_f64(),
        Some(want.active_customers as f64),
        "active customers"
    );
    match want.average_ticket {
        Some(t) => close(
            k["average_ticket"]["value"].as_f64().expect("ticket"),
            t,
            "ticket",
        ),
        None => assert!(k["average_ticket"]["value"].is_null()),
    }
    match want.churn_rate_90d {
        Some(c) => close(
            k["churn_rate"]["value"].as_f64().expect("churn"),
            c,
            "churn",
        ),
        None => assert!(k["churn_rate"]["value"].is_null()),
    }
    let prev = comparison_filter(d, filter);
    let want_prev =
        on_thread(move || kpi::kpis(sales(), &prev, &KpiOptions::default()).expect("kpis"));
    close(
        k["revenue"]["previous"].as_f64().expect("previous revenue"),
        want_prev.revenue,
        "previous revenue",
    );
    // The previous period is computed in the same pass: its counts and its
    // churn (at its own as_of, the current `from`) too.
    assert_eq!(
        k["orders"]["previous"].as_f64(),
        Some(want_prev.orders as f64),
        "previous orders"
    );
    assert_eq!(
        k["active_customers"]["previous"].as_f64(),
        Some(want_prev.active_customers as f64),
        "previous active customers"
    );
    match want_prev.churn_rate_90d {
        Some(c) => close(
            k["churn_rate"]["previous"]
                .as_f64()
                .expect("previous churn"),
            c,
            "previous churn",
        ),
        None => assert!(k["churn_rate"]["previous"].is_null(), "{}", k["churn_rate"]),
    }
    if want_prev.revenue > 0.0 {
        close(
            k["revenue"]["change"].as_f64().expect("change"),
            (want.revenue - want_prev.revenue) / want_prev.revenue,
            "revenue change",
        );
    }
}

/// The comparison period the answer states, checked against its mode:
/// the previous period of the same length, or the same days a year earlier.
fn comparison_filter(d: &Value, filter: &Filter) -> Filter {
    let c = &d["comparison"];
    let (from, to) = (filter.from.expect("from"), filter.to.expect("to"));
    let want = match c["mode"].as_str() {
        Some("previous") => {
            let p = filter.previous_period().expect("a full period");
            (p.from.expect("from"), p.to.expect("to"))
        }
        Some("yoy") => (
            from.checked_sub_months(chrono::Months::new(12))
                .expect("a date"),
            to.checked_sub_months(chrono::Months::new(12))
                .expect("a date"),
        ),
        other => panic!("comparison mode {other:?}: {c}"),
    };
    assert_eq!((date(&c["from"]), date(&c["to"])), want, "{c}");
    assert_eq!(d["previous_period"]["from"], c["from"]);
    Filter {
        from: Some(want.0),
        to: Some(want.1),
        ..filter.clone()
    }
}

fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .expect("column")
        .str()
        .expect("text")
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn nums(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .expect("column")
        .f64()
        .expect("numbers")
        .iter()
        .map(|v| v.expect("a value"))
        .collect()
}

/// The breakdowns (and their comparison columns), the cohort matrix and
/// the monthly series against `kpi::breakdown`, `kpi::cohort_retention` and
/// `kpi::monthly_revenue`.
fn check_figures(d: &Value, filter: &Filter) {
    let cmp = comparison_filter(d, filter);
    check_breakdowns(d, filter, "", "");
    check_breakdowns(d, &cmp, "comparison_", "comparison ");
    let f = filter.clone();
    let (cohorts, monthly) = on_thread(move || {
        let s = sales();
        let scope = Filter {
            from: None,
            to: None,
            ..f.clone()
        };
        (
            kpi::cohort_retention(s, &f).expect("cohorts"),
            kpi::monthly_revenue(s, &scope).expect("monthly"),
        )
    });
    let rows = |v: &Value| v.as_array().expect("rows").clone();

    // Every (cohort, offset) with buyers is in the matrix with its share;
    // no other cell has any.
    let c = &d["cohorts"];
    let labels: Vec<String> = rows(&c["cohorts"])
        .iter()
        .map(|v| v.as_str().expect("cohort").to_string())
        .collect();
    let (cohort, size, offset, retention) = (
        strs(&cohorts, "cohort"),
        nums(&cohorts, "size"),
        nums(&cohorts, "offset"),
        nums(&cohorts, "retention"),
    );
    for i in 0..cohorts.height() {
        let label = cohort[i].clone().expect("cohort label");
        let r = labels
            .iter()
            .position(|l| *l == label)
            .unwrap_or_else(|| panic!("cohort {label} missing: {labels:?}"));
        assert_eq!(c["sizes"][r].as_f64(), Some(size[i]), "size of {label}");
        let k = offset[i] as usize;
        close(
            c["retention"][r][k].as_f64().expect("a share"),
            retention[i],
            &format!("retention of {label} at +{k}"),
        );
    }
    let with_buyers = rows(&c["retention"])
        .iter()
        .flat_map(&rows)
        .filter(|v| v.as_f64().is_some_and(|x| x > 0.0))
        .count();
    assert_eq!(with_buyers, cohorts.height(), "cells with buyers");

    let actual = rows(&d["monthly"]["actual"]);
    assert_eq!(
        actual.len(),
        monthly.len(),
        "months: {actual:?} vs {monthly:?}"
    );
    for (row, (month, revenue)) in actual.iter().zip(&monthly) {
        assert_eq!(row["month"], json!(month));
        close(
            row["revenue"].as_f64().expect("revenue"),
            *revenue,
            &format!("revenue of {month}"),
        );
    }
}

/// `by_category` and `by_state` (columns `{prefix}revenue`, …) against
/// `kpi::breakdown` on `filter`: every row with orders there is the
/// breakdown's, every other row has none.
fn check_breakdowns(d: &Value, filter: &Filter, prefix: &str, what: &str) {
    let f = filter.clone();
    let (by_cat, by_state) = on_thread(move || {
        let s = sales();
        (
            kpi::breakdown(s, &f, Dimension::Category).expect("by category"),
            kpi::breakdown(s, &f, Dimension::State).expect("by state"),
        )
    });
    let col = |name: &str| format!("{prefix}{name}");
    let with_orders = |v: &Value| -> Vec<Value> {
        v.as_array()
            .expect("rows")
            .iter()
            .filter(|r| r[col("orders")].as_f64().is_some_and(|n| n > 0.0))
            .cloned()
            .collect()
    };
    let cats = with_orders(&d["by_category"]);
    assert_eq!(
        cats.len(),
        by_cat.height(),
        "{what}categories: {cats:?} vs {by_cat}"
    );
    let (names, rev, orders) = (
        strs(&by_cat, "category"),
        nums(&by_cat, "revenue"),
        nums(&by_cat, "orders"),
    );
    for (i, name) in names.iter().enumerate() {
        let want = name.clone().unwrap_or_else(|| "(none)".into());
        let row = cats
            .iter()
            .find(|r| r["category"] == json!(want))
            .unwrap_or_else(|| panic!("{what}category {want} missing: {cats:?}"));
        close(
            row[col("revenue")].as_f64().expect("revenue"),
            rev[i],
            &want,
        );
        assert_eq!(
            row[col("orders")].as_f64(),
            Some(orders[i]),
            "{what}orders of {want}"
        );
    }

    let states = with_orders(&d["by_state"]);
    assert_eq!(states.len(), by_state.height(), "{what}states");
    let (codes, rev, orders, customers) = (
        strs(&by_state, "state"),
        nums(&by_state, "revenue"),
        nums(&by_state, "orders"),
        nums(&by_state, "customers"),
    );
    for (i, code) in codes.iter().enumerate() {
        let want = code.clone().unwrap_or_default();
        let row = states
            .iter()
            .find(|r| r["state"] == json!(want))
            .unwrap_or_else(|| panic!("{what}state {want} missing: {states:?}"));
        close(
            row[col("revenue")].as_f64().expect("revenue"),
            rev[i],
            &want,
        );
        assert_eq!(
            row[col("orders")].as_f64(),
            Some(orders[i]),
            "{what}orders of {want}"
        );
        assert_eq!(
            row[col("customers")].as_f64(),
            Some(customers[i]),
            "{what}customers of {want}"
        );
    }
}

async fn options(app: &TestApp) -> Value {
    let (s, o) = get_json(app, "/api/dashboard/options").await;
    assert_eq!(s, 200, "{o}");
    o
}

#[tokio::test]
async fn options_list_the_filter_values_and_the_default_period() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let cats = o["categories"].as_array().expect("categories");
    assert!(cats.len() >= 3, "{o}");
    let states = o["states"].as_array().expect("states");
    assert!(states.iter().any(|s| s["code"] == "SP"), "{o}");
    assert!(states.iter().all(|s| s["latitude"].as_f64().is_some()));
    assert!(!o["channels"].as_array().expect("channels").is_empty());
    let (min, max) = (date(&o["min_date"]), date(&o["max_date"]));
    let (from, to) = (date(&o["default_from"]), date(&o["default_to"]));
    assert!(min <= from && from <= to && to == max, "{o}");
    // The fixture's live segment model (k = 4) gives the segment filter.
    assert_eq!(o["segments"]["available"], json!(true), "{}", o["segments"]);
    assert_eq!(o["segments"]["segments"].as_array().map(Vec::len), Some(4));
    assert!(
        o["segments"]["pca"]["x"]
            .as_array()
            .is_some_and(|x| !x.is_empty())
    );
}

/// Without a live segment model: a note, no segment filter, no error.
#[tokio::test]
async fn without_a_segment_model_the_dashboard_says_so() {
    let app = spawn(
        |_| {},
        |models| {
            std::fs::remove_dir_all(models.join("segments")).expect("remove segments");
        },
    )
    .await;
    let o = options(&app).await;
    assert_eq!(
        o["segments"]["available"],
        json!(false),
        "{}",
        o["segments"]
    );
    assert!(
        o["segments"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("no segment model")),
        "{}",
        o["segments"]
    );
    assert!(o["segments"]["pca"].is_null());
    assert!(o["segments"]["migration"].is_null());
    let (s, c) = get_json(&app, "/api/dashboard/clv").await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["available"], json!(false), "{c}");
    assert!(c["rows"].as_array().is_some_and(Vec::is_empty), "{c}");
    assert!(
        c["note"]
            .as_str()
            .is_some_and(|n| n.contains("no segment model")),
        "{c}"
    );
    let (s, d) = get_json(&app, "/api/dashboard").await;
    assert_eq!(s, 200, "{d}");
    let (s, b) = get_json(&app, "/api/dashboard?segment=0").await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["field"], json!("segment"));
    assert!(
        b["error"]
            .as_str()
            .is_some_and(|e| e.contains("no segment model")),
        "{b}"
    );
}

#[tokio::test]
async fn default_view_equals_the_kpi_functions() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (s, d) = get_json(&app, "/api/dashboard").await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["empty"], json!(false));
    let filter = Filter {
        from: Some(date(&o["default_from"])),
        to: Some(date(&o["default_to"])),
        ..Filter::all()
    };
    check_kpis(&d, &filter);
    check_figures(&d, &filter);
    // Breakdowns add up to the revenue; the states are on the map.
    let cat_sum: f64 = d["by_category"]
        .as_array()
        .expect("by_category")
        .iter()
        .map(|r| r["revenue"].as_f64().expect("revenue"))
        .sum();
    close(
        cat_sum,
        d["kpis"]["revenue"]["value"].as_f64().expect("rev"),
        "sum by category",
    );
    let states = d["by_state"].as_array().expect("by_state");
    assert!(!states.is_empty());
    // Every known state has its capital's coordinates (lines of customers
    // without a state form one group with an empty code, as in `breakdown`).
    assert!(
        states
            .iter()
            .filter(|s| s["state"] != "")
            .all(|s| s["latitude"].as_f64().is_some_and(|l| l < 6.0 && l > -34.0)),
        "{states:?}"
    );
    let f = filter.clone();
    let by_state =
        on_thread(move || kpi::breakdown(sales(), &f, Dimension::State).expect("breakdown"));
    let selling = states.iter().filter(|s| s["orders"] != json!(0)).count();
    assert_eq!(selling, by_state.height());
    // The last 365 days are compared with the same days a year earlier.
    assert_eq!(d["comparison"]["mode"], json!("yoy"), "{}", d["comparison"]);
    assert_eq!(d["comparison"]["asked"], json!(false));
    // Monthly actuals over all the data; cohorts as a matrix.
    assert!(
        d["monthly"]["actual"]
            .as_array()
            .is_some_and(|a| a.len() >= 12),
        "{}",
        d["monthly"]
    );
    let c = &d["cohorts"];
    let n = c["cohorts"].as_array().expect("cohorts").len();
    assert!(n > 0);
    assert_eq!(c["retention"].as_array().expect("grid").len(), n);
    assert_eq!(
        c["retention"][0][0],
        json!(1.0),
        "offset 0 is the cohort itself"
    );
    assert!(d["compute_ms"].as_f64().is_some_and(|t| t > 0.0));
}

#[tokio::test]
async fn filters_give_the_figures_of_the_kpi_functions() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let cats: Vec<String> = o["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .map(|c| c.as_str().expect("str").to_string())
        .collect();
    let channel = o["channels"][0].as_str().expect("channel").to_string();
    let (from, to) = (date(&o["default_from"]), date(&o["default_to"]));

    let path = format!(
        "/api/dashboard?from={from}&to={to}&category={}&category={}",
        urlencode(&cats[0]),
        urlencode(&cats[1])
    );
    let (s, d) = get_json(&app, &path).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["filter"]["categories"].as_array().map(Vec::len), Some(2));
    let filter = Filter {
        from: Some(from),
        to: Some(to),
        categories: vec![cats[0].clone(), cats[1].clone()],
        ..Filter::all()
    };
    check_kpis(&d, &filter);
    check_figures(&d, &filter);
    let (_, all) = get_json(&app, &format!("/api/dashboard?from={from}&to={to}")).await;
    assert!(
        d["kpis"]["revenue"]["value"].as_f64() < all["kpis"]["revenue"]["value"].as_f64(),
        "two categories make less than all"
    );

    let path = format!(
        "/api/dashboard?from={from}&to={to}&state=SP&channel={}",
        urlencode(&channel)
    );
    let (s, d) = get_json(&app, &path).await;
    assert_eq!(s, 200, "{d}");
    let filter = Filter {
        from: Some(from),
        to: Some(to),
        states: vec!["SP".into()],
        channels: vec![channel.clone()],
        ..Filter::all()
    };
    check_kpis(&d, &filter);
    check_figures(&d, &filter);
    assert!(
        d["by_state"]
            .as_array()
            .is_some_and(|s| s.len() == 1 && s[0]["state"] == "SP")
    );
}

#[tokio::test]
async fn an_empty_selection_says_so() {
    let app = spawn_app().await;
    // Before the data (within the dates a request may ask for).
    let first = date(&options(&app).await["min_date"]);
    let (s, d) = get_json(
        &app,
        &format!(
            "/api/dashboard?from={}&to={}",
            first - Duration::days(200),
            first - Duration::days(170)
        ),
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["empty"], json!(true), "{d}");
    assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(d["kpis"]["revenue"]["value"], json!(0.0));
    assert_eq!(d["kpis"]["orders"]["value"], json!(0.0));
    assert!(d["kpis"]["average_ticket"]["value"].is_null());
    assert_eq!(d["by_category"], json!([]));
    assert_eq!(d["by_state"], json!([]));
    assert_eq!(d["cohorts"]["cohorts"], json!([]));

    // After the data, with a scope: empty too, the previous period as
    // well; the monthly series (any period) is still the scope's.
    let o = options(&app).await;
    let after = date(&o["max_date"]) + Duration::days(200);
    let cat = o["categories"][0].as_str().expect("category").to_string();
    let path = format!(
        "/api/dashboard?from={after}&to={}&category={}&state=SP",
        after + Duration::days(30),
        urlencode(&cat)
    );
    let (s, d) = get_json(&app, &path).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["empty"], json!(true), "{d}");
    for k in ["revenue", "orders", "active_customers"] {
        assert_eq!(d["kpis"][k]["value"], json!(0.0), "{k}: {}", d["kpis"]);
        assert_eq!(d["kpis"][k]["previous"], json!(0.0), "{k}: {}", d["kpis"]);
    }
    assert!(d["kpis"]["churn_rate"]["value"].is_null(), "{}", d["kpis"]);
    assert_eq!(d["cohorts"]["cohorts"], json!([]));
    check_figures(
        &d,
        &Filter {
            from: Some(after),
            to: Some(after + Duration::days(30)),
            categories: vec![cat],
            states: vec!["SP".into()],
            ..Filter::all()
        },
    );
    assert!(
        d["monthly"]["actual"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{}",
        d["monthly"]
    );
}

/// Periods on the edges the engine treats apart: whole months and partial
/// ones, single days, the first and last days of the data (the previous
/// period before the data), churn windows reaching before the data.
#[tokio::test]
async fn periods_at_month_and_data_edges_equal_the_kpi_functions() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (min, max) = (date(&o["min_date"]), date(&o["max_date"]));
    let month_start = |d: NaiveDate| d.with_day(1).expect("first day");
    let month_end = |d: NaiveDate| {
        (month_start(d) + Duration::days(32))
            .with_day(1)
            .expect("first day")
            - Duration::days(1)
    };
    let mid = min + (max - min) / 2;
    let cat = o["categories"][1].as_str().expect("category").to_string();
    let periods = [
        (min, min + Duration::days(29)),
        (min, min),
        (max, max),
        (month_start(mid), month_end(mid)),
        (month_start(mid), month_end(mid + Duration::days(95))),
        (
            month_start(mid) + Duration::days(1),
            month_end(mid) - Duration::days(1),
        ),
        (mid, mid + Duration::days(89)),
        (mid - Duration::days(180), mid),
        (max - Duration::days(364), max),
        (min - Duration::days(10), max + Duration::days(10)),
    ];
    for (i, (from, to)) in periods.into_iter().enumerate() {
        let with_cat = i % 2 == 1;
        let mut path = format!("/api/dashboard?from={from}&to={to}");
        if with_cat {
            path.push_str(&format!("&category={}", urlencode(&cat)));
        }
        let (s, d) = get_json(&app, &path).await;
        assert_eq!(s, 200, "{path}: {d}");
        let filter = Filter {
            from: Some(from),
            to: Some(to),
            categories: if with_cat { vec![cat.clone()] } else { vec![] },
            ..Filter::all()
        };
        check_kpis(&d, &filter);
        check_figures(&d, &filter);
    }
}

#[tokio::test]
async fn invalid_filters_are_4xx_naming_the_field() {
    let app = spawn_app().await;
    // A reversed period is the same period (its dates put in order): the
    // OpenAPI document cannot state an order between two parameters, and
    // what it allows is accepted.
    let (s, a) = get_json(&app, "/api/dashboard?from=2024-06-01&to=2024-01-01").await;
    let (_, b) = get_json(&app, "/api/dashboard?from=2024-01-01&to=2024-06-01").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!((&a["filter"], &a["kpis"]), (&b["filter"], &b["kpis"]));
    for (query, field, found) in [
        ("from=2024-13-01", "from", "2024-13-01"),
        ("to=31/12/2024", "to", "31/12/2024"),
        ("from=2024-01-01&from=2024-02-01", "from", "2024-02-01"),
        ("category=no-such-category", "category", "no-such-category"),
        ("state=XX", "state", "XX"),
        ("channel=carrier-pigeon", "channel", "carrier-pigeon"),
        ("segment=99", "segment", "99"),
        ("segment=champions", "segment", "champions"),
        ("colour=blue", "colour", "colour"),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(
            b["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {b}"
        );
        assert!(
            b["expected"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {b}"
        );
        assert!(
            b["found"].as_str().is_some_and(|f| f.contains(found)),
            "{query}: {b}"
        );
    }
}

/// The work of one request is bounded by the data: a date more than a year
/// outside the data's range is a 400 naming it (no loop over millions of
/// months, no overflow at chrono's limits), a year inside is answered.
#[tokio::test]
async fn dates_far_outside_the_data_are_refused_before_any_work() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (first, last) = (date(&o["min_date"]), date(&o["max_date"]));
    for (query, field) in [
        ("to=%2B262000-01-01".to_string(), "to"),
        ("from=-200000-01-01".to_string(), "from"),
        ("from=0001-01-01".to_string(), "from"),
        ("to=9999-12-31".to_string(), "to"),
        (format!("to={}", last + Duration::days(367)), "to"),
        (
            format!("from={}&to={}", first - Duration::days(367), last),
            "from",
        ),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(
            b["expected"]
                .as_str()
                .is_some_and(|e| e.contains(&first.to_string()) && e.contains(&last.to_string())),
            "{query}: {b}"
        );
    }
    for query in [
        format!("from={}&to={}", first - Duration::days(366), last),
        format!("from={first}&to={}", last + Duration::days(366)),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 200, "{query}: {b}");
    }
}

#[tokio::test]
async fn the_documents_list_the_dashboard_endpoints() {
    let app = spawn_app().await;
    let (s, doc) = get_json(&app, "/openapi.json").await;
    assert_eq!(s, 200);
    for path in [
        "/",
        "/api/dashboard",
        "/api/dashboard/options",
        "/api/dashboard/orders",
        "/api/dashboard/export.csv",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "GET {path} missing");
    }
    let params: Vec<&str> = doc["paths"]["/api/dashboard"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in [
        "from", "to", "category", "segment", "state", "channel", "compare",
    ] {
        assert!(params.contains(&p), "parameter {p} missing: {params:?}");
    }
    for schema in ["Dashboard", "KpiCards", "Options"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_here() {
    let app = spawn_app().await;
    let r = app.get("/").await;
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains("/dashboard/assets/plotly.min.js"));
    assert!(html.contains("/dashboard/assets/app.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URL"
    );
    for (name, needle) in [
        ("app.js", "/api/dashboard"),
        ("style.css", ".kpi"),
        ("plotly.min.js", "plotly"),
        ("brazil.svg", "id=\"sp\""),
    ] {
        let r = app.get(&format!("/dashboard/assets/{name}")).await;
        assert_eq!(r.status().as_u16(), 200, "{name}");
        assert!(r.text().await.expect("body").contains(needle), "{name}");
    }
    let (s, b) = get_json(&app, "/dashboard/assets/nope.js").await;
    assert_eq!(s, 404, "{b}");

    // The charting bundle is plotly.js's cartesian build (no geo or tile-map
    // code, hence no tile servers or basemap styles), and its one CDN default
    // (`topojsonURL`) is rewritten to a local path: no CDN address is left.
    let js = app
        .get("/dashboard/assets/plotly.min.js")
        .await
        .text()
        .await
        .expect("body");
    assert!(js.contains("plotly.js (cartesian - minified)"));
    for cdn in [
        "cdn.plot.ly",
        "cartocdn",
        "api.mapbox.com",
        "openmaptiles",
        "arcgisonline",
    ] {
        assert!(!js.contains(cdn), "the served plotly.js still names {cdn}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A small segment model, committed and promoted in the models registry.
fn write_segment_model(models: &Path) {
    use analytics_lib::registry::{Registry, SEGMENT_FILE, SEGMENTS, VersionNotes};
    let seg = on_thread(|| {
        let params = SegmentParams {
            kmeans: KMeansParams::new().k(3).n_runs(2).seed(5),
            ..SegmentParams::default()
        };
        segment_customers(sales(), None, &params)
            .expect("segments")
            .1
    });
    let reg = Registry::open(models).expect("registry");
    let staging = reg.stage(SEGMENTS).expect("stage");
    seg.model
        .save(&staging.dir().join(SEGMENT_FILE))
        .expect("save");
    let v = staging.commit(VersionNotes::default()).expect("commit");
    reg.promote(SEGMENTS, v.id).expect("promote");
}

#[tokio::test]
async fn segments_come_from_the_live_segment_model() {
    let app = spawn(|_| {}, write_segment_model).await;
    let o = options(&app).await;
    let seg = &o["segments"];
    assert_eq!(seg["available"], json!(true), "{seg}");
    assert!(
        seg["version"].as_str().is_some_and(|v| v.starts_with('v')),
        "{seg}"
    );
    let list = seg["segments"].as_array().expect("segments");
    assert_eq!(list.len(), 3, "{seg}");
    let pca = &seg["pca"];
    let n = pca["x"].as_array().expect("x").len();
    assert!(n > 10 && n <= 1500, "{pca}");
    assert_eq!(pca["segment"].as_array().expect("segment").len(), n);

    // Each segment's revenue is that of its customers; together, all.
    let (from, to) = (
        o["default_from"].as_str().unwrap_or(""),
        o["default_to"].as_str().unwrap_or(""),
    );
    let (_, all) = get_json(&app, &format!("/api/dashboard?from={from}&to={to}")).await;
    let mut sum = 0.0;
    for s in list {
        let id = s["id"].as_u64().expect("id");
        let (st, d) = get_json(
            &app,
            &format!("/api/dashboard?from={from}&to={to}&segment={id}"),
        )
        .await;
        assert_eq!(st, 200, "{d}");
        assert_eq!(d["filter"]["segment"], json!(id));
        sum += d["kpis"]["revenue"]["value"].as_f64().unwrap_or(0.0);
    }
    close(
        sum,
        all["kpis"]["revenue"]["value"].as_f64().expect("rev"),
        "sum over segments",
    );

    for bad in ["3", "-1", "1.5"] {
        let (st, b) = get_json(&app, &format!("/api/dashboard?segment={bad}")).await;
        assert_eq!(st, 400, "{bad}: {b}");
        assert_eq!(b["field"], json!("segment"));
    }
}

/// The customers of each segment of the fixture's live model (k = 4),
/// assigned the way the dashboard assigns them.
fn segment_members() -> Vec<Vec<String>> {
    on_thread(|| {
        let s = sales();
        let model = SegmentModel::load(&fixture().trained.join("segments_k4.msgpack"))
            .expect("segment model");
        let features =
            SegmentFeatures::compute(s, Some(s.default_as_of), Some(&model.meta.categories))
                .expect("features");
        let assigned = model.assign_features(&features).expect("assign");
        let mut members = vec![Vec::new(); model.k()];
        for (id, (seg, _)) in features.customer_ids.iter().zip(&assigned) {
            members[*seg].push(id.clone());
        }
        members
    })
}

#[tokio::test]
async fn a_segment_filter_equals_the_kpi_functions_on_its_customers() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let members = segment_members();
    assert_eq!(members.len(), 4);
    let (from, to) = (date(&o["default_from"]), date(&o["default_to"]));
    let cat = o["categories"][0].as_str().expect("category").to_string();
    for (id, customers) in members.into_iter().enumerate() {
        assert_eq!(
            o["segments"]["segments"][id]["customers"].as_u64(),
            Some(customers.len() as u64),
            "segment {id}"
        );
        // Alone, then with a category and a state.
        for narrow in [false, true] {
            let mut path = format!("/api/dashboard?from={from}&to={to}&segment={id}");
            if narrow {
                path.push_str(&format!("&category={}&state=SP", urlencode(&cat)));
            }
            let (s, d) = get_json(&app, &path).await;
            assert_eq!(s, 200, "{path}: {d}");
            let filter = Filter {
                from: Some(from),
                to: Some(to),
                categories: if narrow { vec![cat.clone()] } else { vec![] },
                states: if narrow { vec!["SP".into()] } else { vec![] },
                customers: Some(customers.clone()),
                ..Filter::all()
            };
            check_kpis(&d, &filter);
            check_figures(&d, &filter);
        }
    }
}

// ---------------------------------------------------------------------------
// Comparison, segments, leaderboards, drill-down and exports (issue 18).

/// The last whole calendar year of the fixture's data.
fn last_whole_year(o: &Value) -> (NaiveDate, NaiveDate) {
    let max = date(&o["max_date"]);
    let y = if max.month() == 12 && max.day() == 31 {
        max.year()
    } else {
        max.year() - 1
    };
    (
        NaiveDate::from_ymd_opt(y, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(y, 12, 31).expect("date"),
    )
}

fn period(from: NaiveDate, to: NaiveDate) -> Filter {
    Filter {
        from: Some(from),
        to: Some(to),
        ..Filter::all()
    }
}

#[tokio::test]
async fn comparison_is_the_previous_period_or_the_same_period_last_year() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let cat = o["categories"][2].as_str().expect("category").to_string();
    for (compare, mode, asked) in [
        ("", "yoy", false),
        ("&compare=yoy", "yoy", true),
        ("&compare=previous", "previous", true),
    ] {
        let path = format!(
            "/api/dashboard?from={from}&to={to}&category={}{compare}",
            urlencode(&cat)
        );
        let (s, d) = get_json(&app, &path).await;
        assert_eq!(s, 200, "{path}: {d}");
        let c = &d["comparison"];
        assert_eq!(
            (c["mode"].as_str(), c["asked"].as_bool()),
            (Some(mode), Some(asked)),
            "{c}"
        );
        assert_eq!(d["filter"]["compare"], json!(mode));
        let filter = Filter {
            categories: vec![cat.clone()],
            ..period(from, to)
        };
        check_kpis(&d, &filter);
        check_figures(&d, &filter);
        // The dotted line: each month of the year beside the month a year
        // earlier (whole months), with that month's revenue in the scope.
        let actual: HashMap<String, f64> = d["monthly"]["actual"]
            .as_array()
            .expect("actual")
            .iter()
            .map(|m| {
                (
                    m["month"].as_str().expect("month").to_string(),
                    m["revenue"].as_f64().expect("rev"),
                )
            })
            .collect();
        let months = d["monthly"]["comparison"].as_array().expect("comparison");
        assert_eq!(months.len(), 12, "{}", d["monthly"]["comparison"]);
        for (i, m) in months.iter().enumerate() {
            assert_eq!(m["month"], json!(format!("{}-{:02}", from.year(), i + 1)));
            assert_eq!(
                m["compared_month"],
                json!(format!("{}-{:02}", from.year() - 1, i + 1))
            );
            let want = actual[m["compared_month"].as_str().expect("month")];
            assert_eq!(m["revenue"].as_f64(), Some(want), "{m}");
        }
    }
    // Defaults: a whole month is compared year over year; 30 days that are
    // not a calendar month with the 30 days before.
    let month_end = NaiveDate::from_ymd_opt(to.year(), 6, 30).expect("date");
    let (_, d) = get_json(
        &app,
        &format!("/api/dashboard?from={}-06-01&to={month_end}", to.year()),
    )
    .await;
    assert_eq!(d["comparison"]["mode"], json!("yoy"));
    assert_eq!(
        d["comparison"]["from"],
        json!(format!("{}-06-01", to.year() - 1))
    );
    let (_, d) = get_json(
        &app,
        &format!(
            "/api/dashboard?from={}-06-05&to={}-07-04",
            to.year(),
            to.year()
        ),
    )
    .await;
    assert_eq!(d["comparison"]["mode"], json!("previous"));
    assert_eq!(d["comparison"]["to"], json!(format!("{}-06-04", to.year())));
    let months = d["monthly"]["comparison"].as_array().expect("comparison");
    assert_eq!(
        months[0]["compared_month"],
        json!(format!("{}-05", to.year()))
    );
}

#[tokio::test]
async fn a_bad_comparison_is_a_400_naming_the_field_on_every_route() {
    let app = spawn_app().await;
    for route in [
        "/api/dashboard?",
        "/api/dashboard/orders?",
        "/api/dashboard/export.csv?table=categories&",
    ] {
        for (query, found) in [
            ("compare=month", "month"),
            ("compare=YoY", "YoY"),
            ("compare=yoy&compare=previous", "previous"),
        ] {
            let (s, b) = get_json(&app, &format!("{route}{query}")).await;
            assert_eq!(s, 400, "{route}{query}: {b}");
            assert_eq!(b["field"], json!("compare"), "{b}");
            assert!(
                b["expected"]
                    .as_str()
                    .is_some_and(|e| e.contains("previous") && e.contains("yoy")),
                "{b}"
            );
            assert!(
                b["found"].as_str().is_some_and(|f| f.contains(found)),
                "{b}"
            );
        }
    }
}

#[tokio::test]
async fn segment_rows_equal_the_kpi_functions_on_each_segments_customers() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let members = segment_members();
    let (from, to) = last_whole_year(&o);
    let (s, d) = get_json(
        &app,
        &format!("/api/dashboard?from={from}&to={to}&state=SP"),
    )
    .await;
    assert_eq!(s, 200, "{d}");
    let rows = d["by_segment"].as_array().expect("by_segment");
    let total = d["kpis"]["revenue"]["value"].as_f64().expect("revenue");
    for (id, customers) in members.into_iter().enumerate() {
        let filter = Filter {
            states: vec!["SP".into()],
            customers: Some(customers),
            ..period(from, to)
        };
        let cmp = comparison_filter(&d, &filter);
        let (want, want_cmp) = on_thread(move || {
            let o = KpiOptions::default();
            (
                kpi::kpis(sales(), &filter, &o).expect("kpis"),
                kpi::kpis(sales(), &cmp, &o).expect("kpis"),
            )
        });
        let Some(row) = rows.iter().find(|r| r["segment_id"] == json!(id)) else {
            assert_eq!(
                (want.orders, want_cmp.orders),
                (0, 0),
                "segment {id} missing: {rows:?}"
            );
            continue;
        };
        assert_eq!(row["segment"], o["segments"]["segments"][id]["name"]);
        close(
            row["revenue"].as_f64().expect("revenue"),
            want.revenue,
            "segment revenue",
        );
        assert_eq!(row["orders"].as_u64(), Some(want.orders), "{row}");
        assert_eq!(
            row["customers"].as_u64(),
            Some(want.active_customers),
            "{row}"
        );
        close(
            row["comparison_revenue"].as_f64().expect("rev"),
            want_cmp.revenue,
            "segment comparison",
        );
        assert_eq!(
            row["comparison_orders"].as_u64(),
            Some(want_cmp.orders),
            "{row}"
        );
        assert_eq!(
            row["comparison_customers"].as_u64(),
            Some(want_cmp.active_customers),
            "{row}"
        );
        close(
            row["revenue_share"].as_f64().expect("share"),
            want.revenue / total,
            "share",
        );
    }
}

/// Id → (revenue, orders).
type Figures = HashMap<String, (f64, u64)>;

/// Revenue and distinct orders per product, and per customer, of the lines
/// in `filter` (completed), from the full sales frame.
fn by_product_and_customer(filter: &Filter) -> (Figures, Figures) {
    let f = filter.clone();
    on_thread(move || {
        use polars::prelude::{IntoLazy, col};
        let s = sales();
        let products = f
            .apply(s.lazy())
            .filter(col("completed"))
            .group_by([col("product_id")])
            .agg([
                col("revenue").sum(),
                col("order_id").n_unique().alias("orders"),
            ])
            .collect()
            .expect("by product");
        let (ids, rev, orders) = (
            strs(&products, "product_id"),
            nums(&products, "revenue"),
            nums(&products, "orders"),
        );
        let p = (0..ids.len())
            .map(|i| (ids[i].clone().expect("id"), (rev[i], orders[i] as u64)))
            .collect();
        let tickets = kpi::order_tickets(s, &f).expect("tickets").lazy();
        let customers = tickets
            .group_by([col("customer_id")])
            .agg([
                col("revenue").sum(),
                col("order_id").count().alias("orders"),
            ])
            .collect()
            .expect("by customer");
        let (ids, rev, orders) = (
            strs(&customers, "customer_id"),
            nums(&customers, "revenue"),
            nums(&customers, "orders"),
        );
        let c = (0..ids.len())
            .map(|i| (ids[i].clone().expect("id"), (rev[i], orders[i] as u64)))
            .collect();
        (p, c)
    })
}

#[tokio::test]
async fn leaderboards_are_the_products_and_customers_of_most_revenue() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let channel = o["channels"][0].as_str().expect("channel").to_string();
    for query in [
        format!("from={from}&to={to}"),
        format!(
            "from={from}&to={to}&compare=previous&channel={}",
            urlencode(&channel)
        ),
        format!(
            "from={from}&to={to}&category={}&category={}&segment=1",
            urlencode(o["categories"][0].as_str().expect("c")),
            urlencode(o["categories"][3].as_str().expect("c"))
        ),
    ] {
        let (s, d) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 200, "{query}: {d}");
        assert_eq!(d["customer_ids"], json!(true), "authentication is off");
        let f = &d["filter"];
        let members = f["segment"]
            .as_u64()
            .map(|k| segment_members()[k as usize].clone());
        let filter = Filter {
            categories: serde_json::from_value(f["categories"].clone()).expect("categories"),
            channels: serde_json::from_value(f["channels"].clone()).expect("channels"),
            customers: members,
            ..period(from, to)
        };
        let cmp = comparison_filter(&d, &filter);
        let (products, customers) = by_product_and_customer(&filter);
        let (products_cmp, customers_cmp) = by_product_and_customer(&cmp);
        let total = d["kpis"]["revenue"]["value"].as_f64().expect("revenue");
        for (key, id_field, want, want_cmp) in [
            ("top_products", "product_id", &products, &products_cmp),
            ("top_customers", "customer_id", &customers, &customers_cmp),
        ] {
            let rows = d[key].as_array().expect("rows");
            assert_eq!(rows.len(), want.len().min(10), "{key} ({query})");
            // The first ten by revenue (ties by id are not expected here).
            let mut ranked: Vec<(&String, &(f64, u64))> = want.iter().collect();
            ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
            for (i, (row, (id, (rev, orders)))) in rows.iter().zip(ranked).enumerate() {
                assert_eq!(row["rank"], json!(i + 1));
                assert_eq!(row[id_field], json!(id), "{key} #{} ({query})", i + 1);
                close(
                    row["revenue"].as_f64().expect("rev"),
                    *rev,
                    &format!("{key} {id}"),
                );
                assert_eq!(row["orders"].as_u64(), Some(*orders), "{key} {id}");
                close(
                    row["revenue_share"].as_f64().expect("share"),
                    rev / total,
                    "share",
                );
                let (crev, cord) = want_cmp.get(id).copied().unwrap_or((0.0, 0));
                close(
                    row["comparison_revenue"].as_f64().expect("rev"),
                    crev,
                    &format!("{key} {id} comparison"),
                );
                assert_eq!(row["comparison_orders"].as_u64(), Some(cord), "{key} {id}");
                match row["revenue_change"].as_f64() {
                    Some(c) => close(c, (rev - crev) / crev, "change"),
                    None => assert_eq!(crev, 0.0, "{row}"),
                }
            }
        }
        // Each top product's category is its own.
        for row in d["top_products"].as_array().expect("rows") {
            assert!(
                o["categories"]
                    .as_array()
                    .expect("c")
                    .contains(&row["category"]),
                "{row}"
            );
        }
    }
}

async fn orders_page(app: &TestApp, query: &str) -> Value {
    let (s, d) = get_json(app, &format!("/api/dashboard/orders?{query}")).await;
    assert_eq!(s, 200, "{query}: {d}");
    d
}

#[tokio::test]
async fn drill_down_pages_are_the_orders_behind_the_view() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let cat = o["categories"][1].as_str().expect("category").to_string();
    let base = format!("from={from}&to={to}&category={}&state=SP", urlencode(&cat));
    let filter = Filter {
        categories: vec![cat.clone()],
        states: vec!["SP".into()],
        ..period(from, to)
    };
    let f = filter.clone();
    let tickets = on_thread(move || kpi::order_tickets(sales(), &f).expect("tickets"));
    let want: HashMap<String, (f64, f64, String)> = {
        let (ids, rev, lines, dates) = (
            strs(&tickets, "order_id"),
            nums(&tickets, "revenue"),
            nums(&tickets, "lines"),
            tickets
                .column("order_date")
                .and_then(|c| c.cast(&DataType::String))
                .expect("dates"),
        );
        let dates = dates.str().expect("text").clone();
        (0..ids.len())
            .map(|i| {
                let d = dates.get(i).expect("date").to_string();
                (ids[i].clone().expect("id"), (rev[i], lines[i], d))
            })
            .collect()
    };
    assert!(want.len() > 50, "enough orders to page: {}", want.len());
    for (sort, dir) in [("date", "desc"), ("revenue", "asc"), ("items", "desc")] {
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let d = orders_page(
                &app,
                &format!("{base}&sort={sort}&dir={dir}&page={page}&page_size=40"),
            )
            .await;
            assert_eq!(d["total"].as_u64(), Some(want.len() as u64), "{sort}");
            assert_eq!(d["pages"].as_u64(), Some(want.len().div_ceil(40) as u64));
            assert_eq!(
                (d["sort"].as_str(), d["dir"].as_str()),
                (Some(sort), Some(dir))
            );
            let rows = d["rows"].as_array().expect("rows").clone();
            if rows.is_empty() {
                break;
            }
            assert!(rows.len() <= 40);
            seen.extend(rows);
            page += 1;
        }
        assert_eq!(seen.len(), want.len(), "{sort}: every order once");
        let mut ids: Vec<&str> = seen
            .iter()
            .map(|r| r["order_id"].as_str().expect("id"))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), want.len(), "{sort}: no order twice");
        for r in &seen {
            let (rev, lines, day) = &want[r["order_id"].as_str().expect("id")];
            close(r["revenue"].as_f64().expect("rev"), *rev, "order revenue");
            assert_eq!(r["items"].as_f64(), Some(*lines), "{r}");
            assert_eq!(r["date"].as_str(), Some(day.as_str()), "{r}");
            assert_eq!(r["state"], json!("SP"));
            assert_eq!(r["categories"], json!([cat]));
            assert!(r["customer_id"].as_str().is_some_and(|c| !c.is_empty()));
        }
        let key = |r: &Value| match sort {
            "date" => r["date"].as_str().expect("date").to_string(),
            "revenue" => format!("{:020.4}", r["revenue"].as_f64().expect("rev")),
            _ => format!("{:06}", r["items"].as_u64().expect("items")),
        };
        let keys: Vec<String> = seen.iter().map(key).collect();
        assert!(
            keys.windows(2).all(|k| if dir == "asc" {
                k[0] <= k[1]
            } else {
                k[0] >= k[1]
            }),
            "{sort} {dir}: {keys:?}"
        );
    }
    // The comparison period's orders; a page after the last is empty.
    let (_, d) = get_json(&app, &format!("/api/dashboard?{base}")).await;
    let p = orders_page(&app, &format!("{base}&period=comparison&page_size=1")).await;
    assert_eq!(
        p["total"].as_f64(),
        d["kpis"]["orders"]["previous"].as_f64()
    );
    assert_eq!(p["period_from"], d["comparison"]["from"]);
    let p = orders_page(&app, &format!("{base}&page=100000")).await;
    assert_eq!(p["rows"], json!([]));
    assert_eq!(p["total"].as_u64(), Some(want.len() as u64));
    // Bounded, checked parameters.
    for (query, field) in [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=x", "page"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("sort=price", "sort"),
        ("dir=up", "dir"),
        ("period=last", "period"),
        ("page=1&page=2", "page"),
        ("table=orders", "table"),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard/orders?{query}")).await;
        assert_eq!(s, 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(b["expected"].as_str().is_some_and(|e| !e.is_empty()), "{b}");
    }
    let p = orders_page(&app, "page_size=200").await;
    assert_eq!(p["rows"].as_array().map(Vec::len), Some(200));
}

/// A CSV file as rows of cells (RFC 4180 quoting).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        row.is_empty() && cell.is_empty(),
        "the file ends with a line end"
    );
    rows
}

async fn csv(app: &TestApp, query: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let r = app.get(&format!("/api/dashboard/export.csv?{query}")).await;
    assert_eq!(r.status().as_u16(), 200, "{query}");
    let h = r.headers();
    assert_eq!(h["content-type"], "text/csv; charset=utf-8");
    let cd = h["content-disposition"].to_str().expect("ascii");
    assert!(
        cd.starts_with("attachment; filename=\"dashboard-") && cd.ends_with(".csv\""),
        "{cd}"
    );
    let text = r.text().await.expect("body");
    assert!(text.contains("\r\n"), "CRLF line ends");
    let mut rows = parse_csv(&text);
    let header = rows.remove(0);
    (header, rows)
}

/// A CSV cell equals a JSON value: the same number, the same text, or
/// empty for null.
#[track_caller]
fn same_cell(cell: &str, v: &Value, what: &str) {
    match v {
        Value::Null => assert_eq!(cell, "", "{what}"),
        Value::Number(n) => assert_eq!(
            cell.parse::<f64>().ok(),
            n.as_f64(),
            "{what}: CSV {cell}, JSON {n}"
        ),
        Value::String(s) => assert_eq!(cell, s, "{what}"),
        Value::Array(a) => {
            let parts: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            assert_eq!(cell, parts.join("|"), "{what}");
        }
        other => panic!("{what}: unexpected {other}"),
    }
}

#[track_caller]
fn same_rows(header: &[String], rows: &[Vec<String>], json_rows: &[Value], what: &str) {
    assert_eq!(rows.len(), json_rows.len(), "{what}: rows");
    for (r, j) in rows.iter().zip(json_rows) {
        assert_eq!(r.len(), header.len(), "{what}: cells");
        for (name, cell) in header.iter().zip(r) {
            let v = if name == "period" {
                &Value::Null
            } else {
                &j[name.as_str()]
            };
            if name != "period" {
                assert!(
                    j.get(name.as_str()).is_some(),
                    "{what}: JSON has no {name}: {j}"
                );
                same_cell(cell, v, &format!("{what}: {name}"));
            }
        }
    }
}

#[tokio::test]
async fn exports_carry_the_figures_of_the_answers() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (from, to) = last_whole_year(&o);
    let cat = o["categories"][0].as_str().expect("category").to_string();
    let base = format!(
        "from={from}&to={to}&compare=previous&category={}",
        urlencode(&cat)
    );
    let (_, d) = get_json(&app, &format!("/api/dashboard?{base}")).await;
    for (table, key) in [
        ("categories", "by_category"),
        ("states", "by_state"),
        ("segments", "by_segment"),
    ] {
        let (header, rows) = csv(&app, &format!("table={table}&{base}")).await;
        for c in [
            "revenue",
            "comparison_revenue",
            "comparison_orders",
            "revenue_change",
        ] {
            assert!(header.iter().any(|h| h == c), "{table}: {header:?}");
        }
        same_rows(&header, &rows, d[key].as_array().expect("rows"), table);
    }
    // Products and customers: every one with orders in either period; the
    // first ten are the leaderboard.
    let (products, customers) = by_product_and_customer(&Filter {
        categories: vec![cat.clone()],
        ..period(from, to)
    });
    let cmp = comparison_filter(
        &d,
        &Filter {
            categories: vec![cat.clone()],
            ..period(from, to)
        },
    );
    let (products_cmp, customers_cmp) = by_product_and_customer(&cmp);
    for (table, key, id, now, before) in [
        (
            "products",
            "top_products",
            "product_id",
            &products,
            &products_cmp,
        ),
        (
            "customers",
            "top_customers",
            "customer_id",
            &customers,
            &customers_cmp,
        ),
    ] {
        let (header, rows) = csv(&app, &format!("table={table}&{base}")).await;
        let top = d[key].as_array().expect("rows");
        same_rows(&header, &rows[..top.len()], top, table);
        let mut all: Vec<&String> = now.keys().chain(before.keys()).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            rows.len(),
            all.len(),
            "{table}: every one with orders in either period"
        );
        let col = header.iter().position(|h| h == id).expect("id column");
        let rev = header
            .iter()
            .position(|h| h == "comparison_revenue")
            .expect("column");
        for r in &rows {
            let want = before.get(&r[col]).map_or(0.0, |x| x.0);
            close(
                r[rev].parse().expect("a number"),
                want,
                &format!("{table} {}", r[col]),
            );
        }
    }
    // Orders: the drill-down's pages, every one; the comparison period's too.
    for extra in ["sort=revenue&dir=desc", "period=comparison"] {
        let (header, rows) = csv(&app, &format!("table=orders&{base}&{extra}")).await;
        let mut pages = Vec::new();
        for page in 1.. {
            let p = orders_page(&app, &format!("{base}&{extra}&page={page}&page_size=200")).await;
            let r = p["rows"].as_array().expect("rows").clone();
            if r.is_empty() {
                break;
            }
            pages.extend(r);
        }
        same_rows(&header, &rows, &pages, "orders");
        let period = if extra.starts_with("period") {
            "comparison"
        } else {
            "current"
        };
        assert!(rows.iter().all(|r| r[0] == period), "{extra}");
        assert!(
            rows.iter()
                .all(|r| r[2].len() == 10 && r[2].as_bytes()[4] == b'-'),
            "ISO dates"
        );
    }
}

#[tokio::test]
async fn a_bad_export_is_a_400_with_the_json_error_body() {
    let app = spawn_app().await;
    for (query, field, found) in [
        ("table=nope", "table", "nope"),
        ("table=Orders", "table", "Orders"),
        ("", "table", "no `table`"),
        ("table=", "table", "no `table`"),
        ("table=orders&table=states", "table", "states"),
        ("table=categories&sort=price", "sort", "price"),
        ("table=orders&sort=price", "sort", "price"),
        ("table=orders&page=2", "page", "page"),
        ("table=orders&from=2024-02-30", "from", "2024-02-30"),
    ] {
        let r = app.get(&format!("/api/dashboard/export.csv?{query}")).await;
        assert_eq!(
            r.headers()["content-type"].to_str().ok(),
            Some("application/json"),
            "{query}"
        );
        let (s, b) = json_of(r).await;
        assert_eq!(s.as_u16(), 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(b["error"].as_str().is_some_and(|e| !e.is_empty()), "{b}");
        if field == "table" && !query.contains("&table=") {
            assert!(
                b["expected"].as_str().is_some_and(|e| {
                    [
                        "categories",
                        "states",
                        "segments",
                        "products",
                        "customers",
                        "orders",
                    ]
                    .iter()
                    .all(|t| e.contains(t))
                }),
                "{query}: {b}"
            );
        }
        assert!(
            b["found"].as_str().is_some_and(|f| f.contains(found)),
            "{query}: {b}"
        );
    }
    // The orders table's `period`, `sort` and `dir` are ignored by the
    // other tables (the OpenAPI document cannot tie one parameter to the
    // value of another, and what it allows is accepted).
    for (with, without) in [
        ("table=categories&sort=revenue&dir=asc", "table=categories"),
        ("table=states&period=comparison", "table=states"),
    ] {
        let a = app.get(&format!("/api/dashboard/export.csv?{with}")).await;
        assert_eq!(a.status().as_u16(), 200, "{with}");
        let a = a.text().await.expect("text");
        let b = app
            .get(&format!("/api/dashboard/export.csv?{without}"))
            .await;
        assert_eq!(a, b.text().await.expect("text"), "{with}");
    }
}

/// The one boolean the routes pass: without it, no customer id anywhere.
#[test]
fn customer_ids_are_left_out_for_a_caller_who_may_not_see_them() {
    use serve::dashboard::DashboardData;
    use serve::dashboard::export::{OrderView, Table};
    let (data, ids) = on_thread(|| {
        let models = tempfile::TempDir::new().expect("tmp");
        let data = DashboardData::build(sales(), models.path(), None).expect("dashboard");
        let ids = on_thread(|| {
            kpi::order_tickets(sales(), &Filter::all())
                .expect("tickets")
                .column("customer_id")
                .expect("ids")
                .str()
                .expect("text")
                .iter()
                .flatten()
                .map(str::to_string)
                .collect::<std::collections::HashSet<_>>()
        });
        (std::sync::Arc::new(data), ids)
    });
    let sel = serve::dashboard::query::parse(&[], &data).expect("default view");
    let d = data.compute(&sel, false).expect("figures");
    assert!(!d.customer_ids && !d.top_customers.is_empty());
    assert!(d.top_customers.iter().all(|c| c.customer_id.is_none()));
    let page = data.orders_page(&sel, OrderView::default(), 1, 50, false);
    assert!(!page.rows.is_empty() && page.rows.iter().all(|r| r.customer_id.is_none()));
    for table in [Table::Customers, Table::Orders] {
        let text = data
            .export(table, &sel, OrderView::default(), false)
            .body
            .into_string();
        let rows = parse_csv(&text);
        assert!(!rows[0].iter().any(|h| h == "customer_id"), "{:?}", rows[0]);
        assert!(rows.len() > 10);
        let leaked = rows.iter().flatten().find(|c| ids.contains(c.as_str()));
        assert_eq!(leaked, None, "{table:?}");
        // Allowed: the column is there, with the ids.
        let text = data
            .export(table, &sel, OrderView::default(), true)
            .body
            .into_string();
        let rows = parse_csv(&text);
        let col = rows[0]
            .iter()
            .position(|h| h == "customer_id")
            .expect("column");
        assert!(rows[1..].iter().all(|r| ids.contains(&r[col])));
    }
}

/// With API keys, the `customers` scope decides (the `Caller` of the
/// request): a key without it gets no customer id in the leaderboard, the
/// drill-down or an export; a key with it gets them all.
#[tokio::test]
async fn with_keys_customer_ids_follow_the_customers_scope() {
    const READ: &str = "dash-read-only-key-0123456789";
    const FULL: &str = "dash-read-customers-key-0123456789";
    let app = crate::helpers::spawn_app_with(|s| {
        s.api_keys = format!("{READ}:read,{FULL}:read+customers")
            .parse()
            .expect("keys")
    })
    .await;
    let get = |path: &'static str, key: &'static str| {
        app.client
            .get(format!("{}{path}", app.address))
            .bearer_auth(key)
            .send()
    };
    for (key, allowed) in [(READ, false), (FULL, true)] {
        let r = get("/api/dashboard", key).await.expect("request");
        assert_eq!(r.status(), 200);
        let d: Value = r.json().await.expect("json");
        assert_eq!(d["customer_ids"], json!(allowed), "{key}");
        let top = d["top_customers"].as_array().expect("top customers");
        assert!(!top.is_empty());
        assert!(
            top.iter().all(|c| c["customer_id"].is_string() == allowed),
            "{key}: {top:?}"
        );
        let r = get("/api/dashboard/orders?page_size=50", key)
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        let o: Value = r.json().await.expect("json");
        assert_eq!(o["customer_ids"], json!(allowed), "{key}");
        let rows = o["rows"].as_array().expect("rows");
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r["customer_id"].is_string() == allowed));
        for path in [
            "/api/dashboard/export.csv?table=customers",
            "/api/dashboard/export.csv?table=orders",
        ] {
            let r = get(path, key).await.expect("request");
            assert_eq!(r.status(), 200);
            let text = r.text().await.expect("text");
            let header = text.lines().next().expect("header");
            assert_eq!(
                header.split(',').any(|h| h == "customer_id"),
                allowed,
                "{key} {path}: {header}"
            );
        }
    }
    // Without a key: refused, not answered without ids.
    let r = app
        .client
        .get(format!("{}/api/dashboard", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 401);
}

// ---------------------------------------------------------------------------
// CLV by segment and segment migration (issues 17 and 18, item 6).

/// Closeness for values serve keeps as `f32` per customer.
#[track_caller]
fn close_f32(found: f64, expected: f64, what: &str) {
    close_within(found, expected, 1e-5, what);
}

#[tokio::test]
async fn clv_and_migration_cards_equal_the_library_functions() {
    use analytics_lib::clv::{ClvModel, CustomerSummary, clv_by_segment};
    use analytics_lib::segments::migration::{MIGRATION_DAYS, MigrationMatrix};
    let app = spawn_app().await;
    let (want, migration) = on_thread(|| {
        let s = sales();
        let f = fixture();
        let model = SegmentModel::load(&f.trained.join("segments_k4.msgpack")).expect("segments");
        let features =
            SegmentFeatures::compute(s, Some(s.default_as_of), Some(&model.meta.categories))
                .expect("features");
        let assigned = model.assign_features(&features).expect("assign");
        let segment: HashMap<String, usize> = features
            .customer_ids
            .iter()
            .cloned()
            .zip(assigned.iter().map(|(k, _)| *k))
            .collect();
        let clv = ClvModel::load(&f.trained.join(analytics_lib::registry::CLV_FILE)).expect("clv");
        let summary = CustomerSummary::compute(s, s.default_as_of).expect("summary");
        let predicted = clv.predict(&summary).expect("predict");
        let want = clv_by_segment(&summary, &predicted, &model.names(), |id| {
            segment.get(id).copied()
        })
        .expect("by segment");
        let migration = MigrationMatrix::compute(&model, s, s.default_as_of, MIGRATION_DAYS)
            .expect("migration");
        (want, migration)
    });

    // CLV by segment: the lookups' values (f32 per customer) summed per segment.
    let (st, card) = get_json(&app, "/api/dashboard/clv").await;
    assert_eq!(st, 200, "{card}");
    assert_eq!(card["available"], json!(true), "{card}");
    assert!(
        card["model_version"]
            .as_str()
            .is_some_and(|v| v.starts_with('v')),
        "{card}"
    );
    assert_eq!(card["horizon_days"].as_u64(), Some(365), "{card}");
    let rows = card["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), want.len(), "{card}");
    assert!(
        want.len() >= 4,
        "four segments (and maybe customers without one)"
    );
    for (r, w) in rows.iter().zip(&want) {
        let what = format!("segment {}", w.name);
        assert_eq!(r["segment"], json!(w.name), "{what}");
        assert_eq!(r["segment_id"], json!(w.segment), "{what}");
        assert_eq!(r["customers"].as_u64(), Some(w.customers as u64), "{what}");
        close_f32(r["total_clv"].as_f64().expect("total"), w.total_clv, &what);
        close_f32(
            r["share_of_clv"].as_f64().expect("share"),
            w.share_of_clv,
            &what,
        );
        close_f32(
            r["mean_p_alive"].as_f64().expect("p_alive"),
            w.mean_p_alive.expect("customers"),
            &what,
        );
        close_f32(
            r["mean_expected_purchases"].as_f64().expect("purchases"),
            w.mean_expected_purchases.expect("customers"),
            &what,
        );
    }
    let shares: f64 = rows.iter().filter_map(|r| r["share_of_clv"].as_f64()).sum();
    close_f32(shares, 1.0, "shares add up to 1");

    // Migration: the library's matrix over the last 90 days, count for count.
    let o = options(&app).await;
    let m = &o["segments"]["migration"];
    assert_eq!(m["from"], json!(migration.from.to_string()), "{m}");
    assert_eq!(m["to"], json!(migration.to.to_string()), "{m}");
    assert_eq!(m["days"], json!(MIGRATION_DAYS));
    assert_eq!(m["segments"], json!(migration.segments));
    assert_eq!(m["counts"], json!(migration.counts));
    assert_eq!(m["from_sizes"], json!(migration.from_sizes));
    assert_eq!(m["to_sizes"], json!(migration.to_sizes));
    assert_eq!(m["new_customers"], json!(migration.new_customers));
    close(
        m["stayed_share"].as_f64().expect("stayed"),
        migration.stayed_share(),
        "stayed share",
    );
    // Every customer now is in a segment at `to`: sizes add up to the live segments'.
    let now: u64 = o["segments"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["customers"].as_u64())
        .sum();
    assert_eq!(migration.to_sizes.iter().sum::<u64>(), now);
    assert!(
        migration.counts.iter().flatten().sum::<u64>() > 0,
        "someone was a customer 90 days before"
    );
}
