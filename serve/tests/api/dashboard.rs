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
        .cast(&DataType::String)
        .expect("as text")
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

mod analyst;
mod cards;
mod requests;
