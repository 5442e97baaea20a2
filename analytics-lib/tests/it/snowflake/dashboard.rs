//! The dashboard's figures computed in the warehouse per view
//! (`SnowflakeSource::dashboard_scan`, segments assigned in SQL) against the
//! in-memory engine built from the same tables in Parquet, on generated
//! data with 2 % defects: the same dimensions, and for views with every
//! kind of filter (period, category, state, channel, segment, comparison
//! previous or year over year, none) the same totals, churn, breakdowns,
//! months and cohorts. What comes back per view is bounded by the
//! dimensions and months, never by the lines.

use analytics_lib::chrono::{Duration, NaiveDate};
use analytics_lib::dashboard::{Comparison, Engine, Query, Scan};
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::segments::{KMeansParams, SegmentFeatures, SegmentParams, fit_segments};
use analytics_lib::source::dashboard::{SegmentsAt, WarehouseDims};
use analytics_lib::source::{ParquetSource, Source};
use tempfile::TempDir;

use super::emulator::Emulator;
use super::{assert_close, bulk_load};

#[track_caller]
fn assert_floats(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_close(*x, *y, &format!("{what}[{i}]"));
    }
}

#[track_caller]
fn assert_same_scan(local: &Scan, remote: &Scan, what: &str) {
    for (name, a, b) in [
        ("current", &local.current, &remote.current),
        ("previous", &local.previous, &remote.previous),
    ] {
        assert_close(a.revenue, b.revenue, &format!("{what}: {name} revenue"));
        assert_eq!(
            (a.orders, a.active_customers, a.churn_base, a.churned),
            (b.orders, b.active_customers, b.churn_base, b.churned),
            "{what}: {name} orders, active customers, churn base, churned"
        );
    }
    assert_floats(&local.monthly, &remote.monthly, &format!("{what}: monthly"));
    // Only whether lines are behind a month counts (the engine counts its
    // cube's entries, the warehouse the lines).
    let present = |v: &[u64]| v.iter().map(|&n| n > 0).collect::<Vec<_>>();
    assert_eq!(
        present(&local.monthly_lines),
        present(&remote.monthly_lines),
        "{what}: months with lines"
    );
    for (name, a, b) in [
        ("category revenue", &local.cat_revenue, &remote.cat_revenue),
        (
            "category revenue (prev)",
            &local.cat_revenue_prev,
            &remote.cat_revenue_prev,
        ),
        ("state revenue", &local.state_revenue, &remote.state_revenue),
        (
            "state revenue (prev)",
            &local.state_revenue_prev,
            &remote.state_revenue_prev,
        ),
        ("segment revenue", &local.seg_revenue, &remote.seg_revenue),
        (
            "segment revenue (prev)",
            &local.seg_revenue_prev,
            &remote.seg_revenue_prev,
        ),
    ] {
        assert_floats(a, b, &format!("{what}: {name}"));
    }
    for (name, a, b) in [
        ("category orders", &local.cat_orders, &remote.cat_orders),
        (
            "category orders (prev)",
            &local.cat_orders_prev,
            &remote.cat_orders_prev,
        ),
        ("state orders", &local.state_orders, &remote.state_orders),
        (
            "state orders (prev)",
            &local.state_orders_prev,
            &remote.state_orders_prev,
        ),
        (
            "state customers",
            &local.state_customers,
            &remote.state_customers,
        ),
        (
            "state customers (prev)",
            &local.state_customers_prev,
            &remote.state_customers_prev,
        ),
        ("segment orders", &local.seg_orders, &remote.seg_orders),
        (
            "segment orders (prev)",
            &local.seg_orders_prev,
            &remote.seg_orders_prev,
        ),
        (
            "segment customers",
            &local.seg_customers,
            &remote.seg_customers,
        ),
        (
            "segment customers (prev)",
            &local.seg_customers_prev,
            &remote.seg_customers_prev,
        ),
        ("cohort sizes", &local.cohort_size, &remote.cohort_size),
    ] {
        assert_eq!(a, b, "{what}: {name}");
    }
    assert_eq!(local.cohort_active, remote.cohort_active, "{what}: cohorts");
}

fn mask(values: &[String], chosen: &[&str]) -> Option<Vec<bool>> {
    Some(
        values
            .iter()
            .map(|v| chosen.contains(&v.as_str()))
            .collect(),
    )
}

#[test]
fn warehouse_views_equal_the_engine_on_generated_data_with_defects() {
    let emu = Emulator::start();
    let raw = TempDir::new().expect("temp dir");
    let cfg = GeneratorConfig {
        lines: 6_000,
        seed: 11,
        defect_rate: 0.02,
        progress: false,
        ..GeneratorConfig::default()
    };
    generate(&cfg, raw.path()).expect("generate");
    let sf = emu.source("dashboard_views");
    bulk_load(&sf, raw.path());

    // The in-memory engine on the same tables, with a segment model fitted
    // on them and assigned at the data's reference date (as serve does).
    let local = Source::Parquet(ParquetSource::new(raw.path()));
    let prepared = local.prepare().expect("prepare");
    let sales = &prepared.sales;
    let as_of = sales.default_as_of;
    let features = SegmentFeatures::compute(sales, Some(as_of), None).expect("features");
    let params = SegmentParams {
        kmeans: KMeansParams::new().k(4).n_runs(2).seed(5),
        ..SegmentParams::default()
    };
    let model = fit_segments(&features, &params).expect("fit").model;
    let assigned = model.assign_features(&features).expect("assign");
    let built = Engine::from_sales(sales, |index| {
        let mut by_code = vec![u8::MAX; index.len()];
        for (id, (seg, _)) in features.customer_ids.iter().zip(&assigned) {
            if let Some(&c) = index.get(id) {
                by_code[c as usize] = *seg as u8;
            }
        }
        (by_code, model.k())
    })
    .expect("engine");
    let engine = &built.engine;

    let dims = sf.dashboard_dims().expect("dimensions").expect("orders");
    assert_eq!(
        dims,
        WarehouseDims {
            categories: built.categories.clone(),
            states: built.states.clone(),
            channels: built.channels.clone(),
            first_month: engine.first_month,
            n_months: engine.n_months,
            min_date: built.min_date,
            max_date: built.max_date,
        },
        "the warehouse's dimensions are the engine's"
    );
    let segments = Some(SegmentsAt {
        model: &model,
        as_of,
    });

    let (from, to) = (built.default_from, built.default_to);
    let with = |c: Comparison, from: NaiveDate, to: NaiveDate| {
        let mut q = Query::period(from, to);
        match c.period(from, to) {
            Some((a, b)) => (q.compare_from, q.compare_to) = (a, b),
            None => (q.compare_from, q.compare_to) = (NaiveDate::MIN, NaiveDate::MIN),
        }
        q
    };
    let cat = built.categories[0].as_str();
    let state = built.states[built.states.len() / 2].as_str();
    let channel = built.channels[0].as_str();
    let mut views: Vec<(&str, Query)> = vec![
        ("default view", Query::period(from, to)),
        (
            "everything, year over year",
            with(Comparison::YearOverYear, built.min_date, built.max_date),
        ),
        ("90 days", Query::period(to - Duration::days(89), to)),
    ];
    let mut q = Query::period(from, to);
    q.categories = mask(&built.categories, &[cat]);
    views.push(("one category", q));
    let mut q = Query::period(from, to);
    q.states = mask(&built.states, &[state]);
    q.channels = mask(&built.channels, &[channel]);
    views.push(("a state and a channel", q));
    for k in 0..model.k() as u8 {
        let mut q = with(Comparison::YearOverYear, from, to);
        q.segment = Some(k);
        views.push(("a segment, year over year", q));
    }
    let mut q = Query::period(built.min_date, built.min_date + Duration::days(40));
    q.categories = mask(
        &built.categories,
        &built
            .categories
            .iter()
            .take(2)
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    q.churn_window_days = 30;
    views.push(("the first 41 days, two categories, 30-day churn", q));

    let (nc, ns, ng, nm) = (
        dims.categories.len() + 1,
        dims.states.len() + 1,
        model.k() + 1,
        dims.n_months,
    );
    // Two totals and two churn rows, a row per month, per category, state
    // and segment of each period, per cohort cell.
    let bound = (4 + nm + 2 * (nc + ns + ng) + nm * (nm + 1) / 2) as u64;
    for (what, q) in &views {
        let want = engine.scan(q);
        assert!(
            want.current.orders > 0 || what.contains("segment"),
            "{what}: an empty view"
        );
        let before = sf.fetched();
        let got = sf.dashboard_scan(q, &dims, segments).expect(what);
        let fetched = sf.fetched().since(before);
        assert_same_scan(&want, &got, what);
        assert_eq!(fetched.queries, 1, "{what}: one query a view");
        assert!(
            fetched.rows <= bound,
            "{what}: {} rows fetched, more than the view's {bound} aggregates",
            fetched.rows
        );
    }
    // The assignment itself: over all the data, each segment's customers.
    let all = with(Comparison::Previous, built.min_date, built.max_date);
    let got = sf.dashboard_scan(&all, &dims, segments).expect("all");
    let mut sizes = vec![0u64; model.k() + 1];
    for (seg, _) in &assigned {
        sizes[*seg] += 1;
    }
    assert_eq!(
        got.seg_customers, sizes,
        "customers per segment, assigned in SQL"
    );

    // Without a model: everyone in no segment, a segment filter keeps nothing.
    let got = sf
        .dashboard_scan(&views[0].1, &dims, None)
        .expect("no model");
    assert_eq!(got.seg_customers, vec![got.current.active_customers]);
    let mut q = views[0].1.clone();
    q.segment = Some(0);
    let got = sf
        .dashboard_scan(&q, &dims, None)
        .expect("no model, a segment");
    assert_eq!(got.current.orders, 0);
}
