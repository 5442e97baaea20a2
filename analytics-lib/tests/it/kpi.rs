//! KPIs on the committed fixture, every expected value worked out by hand.
//!
//! Cleaned fixture, completed orders only (canceled o04 and returned o06 are
//! out), line revenue = quantity × unit_price × (1 − discount):
//!
//! | order | customer | date | lines | revenue |
//! |---|---|---|---|---|
//! | o01 | c01 SP | 2024-01-10 | 1×500 + 2×50×0.9 | 590 |
//! | o02 | c01 | 2024-03-05 | 1×80 | 80 |
//! | o03 | c02 RJ | 2024-02-15 | 3×40 | 120 |
//! | o05 | c03 MG | 2024-08-10 | 2×100×0.75 | 150 |
//! | o07 | c05 BA | 2024-10-05 | 450 + 40 | 490 |
//! | o08 | c05 | 2024-12-31 10:00 | 4×50×0.95 | 190 |
//! | o09 | c07 PE | 2024-11-29 | 500×0.8 + 2×80×0.8 | 528 |
//! | o10 | c08 RS | 2024-12-20 | 100 | 100 |
//! | o11 | c01 | 2024-12-01 | 2×40 | 80 |
//! | o12 | c06 (no state) | 2024-07-10 | 80 | 80 |
//! | o17 | c02 | 2024-06-05 | 40 | 40 |
//! | o18 | c03 | 2024-10-03 00:00:00 | 40 | 40 |
//! | o19 | c04 PR | 2024-07-05 00:00:00 | 50 | 50 |
//! | o20 | c07 | 2024-10-02 23:59:59 | 40 | 40 |
//! | o21 | c02 | 2024-12-31 10:00 | 100×0.9 | 90 |
//!
//! Revenue 2668 over 15 orders: ticket médio 177.8666…
//! as_of = 2025-01-01 (o08 and o21 tie as the last order).
//! Churn (90 d): earlier window [2024-07-05, 2024-10-03) holds c06 (o12),
//! c04 (o19, on the inclusive start edge), c03 (o05) and c07 (o20, one second
//! before the exclusive end edge). Later window [2024-10-03, 2025-01-01): c03
//! comes back exactly at its start (o18), c07 with o09; c06 and c04 do not
//! (c04's o06 was returned). Churn = 2 / 4 = 0.5.
//! Repeat rate: c01 3, c02 3, c03 2, c05 2, c07 2 orders; c04, c06, c08 one
//! each: 5 / 8 = 0.625.

use analytics_lib::clean::clean;
use analytics_lib::kpi::{
    Dimension, Filter, KpiOptions, Sales, breakdown, churn_rate, cohort_retention, kpis,
    order_tickets, pareto_share, repeat_purchase_rate,
};
use analytics_lib::polars::prelude::*;
use chrono::NaiveDate;

use crate::helpers::tiny;

fn sales() -> Sales {
    Sales::from_frames(&clean(&tiny()).expect("clean").frames).expect("sales")
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

#[track_caller]
fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn headline_kpis_on_the_fixture() {
    let s = sales();
    let k = kpis(&s, &Filter::all(), &KpiOptions::default()).expect("kpis");
    close(k.revenue, 2668.0);
    assert_eq!(k.orders, 15);
    close(k.average_ticket.expect("ticket"), 2668.0 / 15.0);
    assert_eq!(k.active_customers, 8);
    assert_eq!(k.as_of, d(2025, 1, 1));
    close(k.churn_rate_90d.expect("churn"), 0.5);
    close(k.repeat_purchase_rate.expect("repeat"), 0.625);
    let monthly: Vec<(&str, f64)> = k
        .monthly_revenue
        .iter()
        .map(|(m, v)| (m.as_str(), *v))
        .collect();
    let expected = [
        ("2024-01", 590.0),
        ("2024-02", 120.0),
        ("2024-03", 80.0),
        ("2024-06", 40.0),
        ("2024-07", 130.0),
        ("2024-08", 150.0),
        ("2024-10", 570.0),
        ("2024-11", 528.0),
        ("2024-12", 460.0),
    ];
    assert_eq!(monthly.len(), expected.len(), "{monthly:?}");
    for ((m, v), (em, ev)) in monthly.iter().zip(expected) {
        assert_eq!(*m, em);
        close(*v, ev);
    }
}

#[test]
fn churn_window_edges() {
    let s = sales();
    // One day later: o19 (2024-07-05) falls out of the earlier window
    // [2024-07-06, 2024-10-04); o18 (2024-10-03) moves into it, and c03 has
    // no later order: earlier = {c06, c03, c07}; c07 stays (o09) → 2 / 3.
    let churn = churn_rate(&s, &Filter::all(), d(2025, 1, 2), 90).expect("churn");
    close(churn.expect("some"), 2.0 / 3.0);
    // Nobody active in the earlier window → None, not NaN.
    assert_eq!(
        churn_rate(&s, &Filter::all(), d(2024, 1, 1), 90).expect("churn"),
        None
    );
    // A non-positive window is an error that names it.
    let err = churn_rate(&s, &Filter::all(), d(2025, 1, 1), 0).expect_err("bad window");
    assert!(err.to_string().contains("churn_window_days"), "{err}");
}

#[test]
fn filters_by_category_state_channel_and_period() {
    let s = sales();
    let opts = KpiOptions::default();
    let toys = Filter {
        categories: vec!["brinquedos".into()],
        ..Filter::all()
    };
    let k = kpis(&s, &toys, &opts).expect("toys");
    close(k.revenue, 80.0 + 128.0 + 80.0);
    assert_eq!(k.orders, 3);

    let sp = Filter {
        states: vec!["SP".into()],
        ..Filter::all()
    };
    close(kpis(&s, &sp, &opts).expect("sp").revenue, 750.0);

    let app = Filter {
        channels: vec!["app".into()],
        ..Filter::all()
    };
    // o02 80, o10 100, o20 40, o21 90 (o06 is returned).
    close(kpis(&s, &app, &opts).expect("app").revenue, 310.0);

    let december = Filter {
        from: Some(d(2024, 12, 1)),
        to: Some(d(2024, 12, 31)),
        ..Filter::all()
    };
    let k = kpis(&s, &december, &opts).expect("december");
    close(k.revenue, 460.0);
    assert_eq!(k.orders, 4);
    assert_eq!(k.as_of, d(2025, 1, 1), "as_of follows the period's end");
    let prev = december.previous_period().expect("previous");
    assert_eq!(
        (prev.from, prev.to),
        (Some(d(2024, 10, 31)), Some(d(2024, 11, 30)))
    );

    let backwards = Filter {
        from: Some(d(2024, 12, 31)),
        to: Some(d(2024, 12, 1)),
        ..Filter::all()
    };
    assert!(kpis(&s, &backwards, &opts).is_err());

    let nothing = Filter {
        categories: vec!["no_such_category".into()],
        ..Filter::all()
    };
    let k = kpis(&s, &nothing, &opts).expect("empty selection");
    assert_eq!((k.revenue, k.orders, k.average_ticket), (0.0, 0, None));
    assert_eq!(repeat_purchase_rate(&s, &nothing).expect("repeat"), None);
}

fn column_f64(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .expect("column")
        .cast(&DataType::Float64)
        .expect("cast")
        .f64()
        .expect("f64")
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

#[test]
fn breakdowns_sum_to_revenue() {
    let s = sales();
    let by_cat = breakdown(&s, &Filter::all(), Dimension::Category).expect("category");
    let cats: Vec<String> = by_cat
        .column("category")
        .expect("category")
        .str()
        .expect("str")
        .iter()
        .map(|c| c.unwrap_or("").to_string())
        .collect();
    assert_eq!(
        cats,
        [
            "eletronicos",
            "livros_papelaria",
            "moda_acessorios",
            "beleza_saude",
            "brinquedos"
        ]
    );
    let rev = column_f64(&by_cat, "revenue");
    for (a, b) in rev.iter().zip([1350.0, 360.0, 340.0, 330.0, 288.0]) {
        close(*a, b);
    }
    close(column_f64(&by_cat, "revenue_share").iter().sum(), 1.0);

    let by_state = breakdown(&s, &Filter::all(), Dimension::State).expect("state");
    close(column_f64(&by_state, "revenue").iter().sum(), 2668.0);
    assert_eq!(
        by_state.height(),
        8,
        "seven states and the customer without one"
    );
}

#[test]
fn pareto_and_cohorts() {
    let s = sales();
    // Top 20% of 8 customers = 2: c01 (750) and c05 (680).
    close(
        pareto_share(&s, &Filter::all(), 0.2)
            .expect("pareto")
            .expect("some"),
        1430.0 / 2668.0,
    );
    assert!(pareto_share(&s, &Filter::all(), 0.0).is_err());

    let cohorts = cohort_retention(&s, &Filter::all()).expect("cohorts");
    // Cohort 2024-01 is c01 alone: months 0 (Jan), 2 (Mar) and 11 (Dec).
    let jan = cohorts
        .clone()
        .lazy()
        .filter(col("cohort").eq(lit("2024-01")))
        .collect()
        .expect("jan");
    assert_eq!(column_f64(&jan, "offset"), [0.0, 2.0, 11.0]);
    assert_eq!(column_f64(&jan, "retention"), [1.0, 1.0, 1.0]);
    // Cohort 2024-07 is c04 and c06: neither buys again.
    let jul = cohorts
        .lazy()
        .filter(col("cohort").eq(lit("2024-07")))
        .collect()
        .expect("jul");
    assert_eq!(column_f64(&jul, "size"), [2.0]);
    assert_eq!(column_f64(&jul, "retention"), [1.0]);
}

/// Property checks on generated data: revenue equals the sum of its category
/// breakdown, rates are within [0, 1], and a filter that keeps everything
/// changes nothing.
#[test]
fn properties_on_generated_data() {
    use analytics_lib::data::generate::{GeneratorConfig, generate};
    use analytics_lib::data::load;
    let tmp = tempfile::TempDir::new().expect("tmp");
    for seed in [1u64, 2, 3] {
        let dir = tmp.path().join(seed.to_string());
        generate(
            &GeneratorConfig {
                lines: 20_000,
                seed,
                ..GeneratorConfig::default()
            },
            &dir,
        )
        .expect("generate");
        let t = load(&dir).expect("load").collect().expect("collect");
        let s = Sales::from_frames(&clean(&t).expect("clean").frames).expect("sales");
        let opts = KpiOptions::default();
        let all = kpis(&s, &Filter::all(), &opts).expect("kpis");
        for dim in [
            Dimension::Category,
            Dimension::State,
            Dimension::Channel,
            Dimension::PaymentType,
        ] {
            let b = breakdown(&s, &Filter::all(), dim).expect("breakdown");
            let sum: f64 = column_f64(&b, "revenue").iter().sum();
            assert!(
                (sum - all.revenue).abs() < 1e-6 * all.revenue,
                "{dim:?}: {sum} vs {}",
                all.revenue
            );
        }
        for rate in [all.churn_rate_90d, all.repeat_purchase_rate] {
            let r = rate.expect("defined");
            assert!((0.0..=1.0).contains(&r), "{r}");
        }
        let keep_all = Filter {
            from: Some(d(2000, 1, 1)),
            to: Some(s.default_as_of - chrono::Duration::days(1)),
            categories: b_values(&s, Dimension::Category),
            channels: vec!["web".into(), "app".into(), "store".into()],
            ..Filter::all()
        };
        let same = kpis(&s, &keep_all, &opts).expect("kpis");
        assert_eq!(same, all, "a filter that keeps everything changes nothing");
    }
}

fn b_values(s: &Sales, dim: Dimension) -> Vec<String> {
    breakdown(s, &Filter::all(), dim)
        .expect("breakdown")
        .column(dim.column())
        .expect("column")
        .str()
        .expect("str")
        .iter()
        .flatten()
        .map(str::to_string)
        .collect()
}

/// The headline KPIs counted on the integer codes (bitsets) equal the ones
/// counted on the ids (polars' `n_unique`, group-by and join), exactly:
/// generated data with defects (cleaned), every filter kind, churn windows.
/// The monthly revenue equals polars' group-by by month to the bit.
#[test]
fn kpis_on_codes_equal_kpis_on_ids() {
    use analytics_lib::data::generate::{GeneratorConfig, generate};
    use analytics_lib::data::load;
    let tmp = tempfile::TempDir::new().expect("tmp");
    for seed in [4u64, 5] {
        let dir = tmp.path().join(seed.to_string());
        generate(
            &GeneratorConfig {
                lines: 30_000,
                seed,
                defect_rate: 0.02,
                ..GeneratorConfig::default()
            },
            &dir,
        )
        .expect("generate");
        let t = load(&dir).expect("load").collect().expect("collect");
        let coded = Sales::from_frames(&clean(&t).expect("clean").frames).expect("sales");
        // The codes are there and never null: the bitset path runs.
        for c in ["order_key", "customer_key"] {
            assert_eq!(coded.lines.column(c).expect("codes").null_count(), 0, "{c}");
        }
        // The same lines without the codes: the id path.
        let mut by_id = coded.clone();
        by_id.lines = coded
            .lines_with_ids()
            .expect("ids")
            .drop_many(["order_key", "customer_key"]);
        let cats = b_values(&coded, Dimension::Category);
        let states = b_values(&coded, Dimension::State);
        let last = coded.default_as_of - chrono::Duration::days(1);
        let some_customers: Vec<String> = {
            let ids = coded
                .lines_with_ids()
                .expect("ids")
                .column("customer_id")
                .expect("ids")
                .str()
                .expect("str")
                .clone();
            ids.iter()
                .flatten()
                .step_by(7)
                .take(400)
                .map(str::to_string)
                // An id no customer has matches no line either way.
                .chain(["not-a-customer".to_string()])
                .collect()
        };
        let filters = [
            Filter::all(),
            Filter {
                from: Some(last - chrono::Duration::days(200)),
                to: Some(last - chrono::Duration::days(20)),
                ..Filter::all()
            },
            Filter {
                categories: cats[..2].to_vec(),
                channels: vec!["app".into()],
                ..Filter::all()
            },
            Filter {
                states: states[1..4].to_vec(),
                from: Some(last - chrono::Duration::days(400)),
                ..Filter::all()
            },
            Filter {
                customers: Some(some_customers),
                ..Filter::all()
            },
            // Nothing in scope.
            Filter {
                from: Some(d(1990, 1, 1)),
                to: Some(d(1990, 2, 1)),
                ..Filter::all()
            },
        ];
        for (i, f) in filters.iter().enumerate() {
            for window in [30, 90] {
                let opts = KpiOptions {
                    churn_window_days: window,
                    ..KpiOptions::default()
                };
                let a = kpis(&coded, f, &opts).expect("kpis on codes");
                let b = kpis(&by_id, f, &opts).expect("kpis on ids");
                assert_eq!(a, b, "seed {seed}, filter {i}, window {window}");
                // The monthly revenue (one pass, Kahan in row order) has
                // the bits of polars' group-by on the month.
                let grouped = monthly_by_group_by(&coded, f);
                assert_eq!(
                    a.monthly_revenue.keys().collect::<Vec<_>>(),
                    grouped.keys().collect::<Vec<_>>(),
                    "seed {seed}, filter {i}: months"
                );
                for (m, v) in &a.monthly_revenue {
                    assert_eq!(
                        v.to_bits(),
                        grouped[m].to_bits(),
                        "seed {seed}, filter {i}, {m}: {v} against {}",
                        grouped[m]
                    );
                }
                if i == 0 {
                    assert!(
                        a.orders > 1_000 && a.repeat_purchase_rate.is_some(),
                        "{a:?}"
                    );
                }
            }
            // The tickets, grouped by the codes and named afterwards, are
            // those grouped by the ids' text.
            let a = order_tickets(&coded, f).expect("tickets on codes");
            let b = order_tickets(&by_id, f).expect("tickets on ids");
            assert_eq!(a.schema(), b.schema(), "seed {seed}, filter {i}");
            assert!(a.equals_missing(&b), "seed {seed}, filter {i}: tickets");
            assert_eq!(
                a.height() as u64,
                kpis(&coded, f, &KpiOptions::default())
                    .expect("kpis")
                    .orders
            );
        }
    }
}

/// Revenue per month as polars computes it: the completed lines in scope
/// grouped by `12 × year + month − 1`, revenue summed ("YYYY-MM" keys).
fn monthly_by_group_by(s: &Sales, f: &Filter) -> std::collections::BTreeMap<String, f64> {
    let month = (col("order_date").dt().year().cast(DataType::Int32) * lit(12))
        + col("order_date").dt().month().cast(DataType::Int32)
        - lit(1);
    let df = f
        .apply(s)
        .filter(col("completed"))
        .group_by([month.alias("month")])
        .agg([col("revenue").sum()])
        .collect()
        .expect("group by month");
    let m = df
        .column("month")
        .expect("month")
        .i32()
        .expect("i32")
        .clone();
    let r = df
        .column("revenue")
        .expect("revenue")
        .f64()
        .expect("f64")
        .clone();
    m.iter()
        .zip(r.iter())
        .filter_map(|(m, r)| {
            let m = m?;
            let key = format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1);
            Some((key, r.unwrap_or(0.0)))
        })
        .collect()
}

/// The join on raw tables, which hold what cleaning removes: a line of an
/// unknown order (o99) is left out, the lines of an order whose customer
/// is unknown (o13, c99) keep null customer columns, and a repeated order
/// id (o03) joins its first row. Every other line gets its order's
/// customer and that customer's state, as lookups by id give them, and its
/// `customer_key` is that customer's row among `Sales::customers`.
#[test]
fn join_of_raw_tables_matches_lookups_by_id() {
    use std::collections::HashMap;
    let raw = tiny();
    let text = |df: &DataFrame, name: &str| -> Vec<Option<String>> {
        df.column(name)
            .and_then(|c| c.cast(&DataType::String))
            .expect("column")
            .str()
            .expect("text")
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    };
    let first_of = |keys: Vec<Option<String>>, values: Vec<Option<String>>| {
        let mut map = HashMap::new();
        // A null id is never looked up (the raw customers hold one).
        for (k, v) in keys.into_iter().zip(values) {
            if let Some(k) = k {
                map.entry(k).or_insert(v);
            }
        }
        map
    };
    let order_customer = first_of(
        text(&raw.orders, "order_id"),
        text(&raw.orders, "customer_id"),
    );
    let customer_state = first_of(
        text(&raw.customers, "customer_id"),
        text(&raw.customers, "state"),
    );
    let mut want = Vec::new();
    for (order, line) in text(&raw.order_items, "order_id")
        .into_iter()
        .zip(text(&raw.order_items, "line_no"))
    {
        let order = order.expect("order id");
        let Some(customer) = order_customer.get(&order) else {
            continue;
        };
        let known = customer
            .as_ref()
            .filter(|c| customer_state.contains_key(*c));
        let state = known.and_then(|c| customer_state[c].clone());
        want.push((order, line, customer.clone(), state, known.cloned()));
    }
    assert!(want.iter().any(|w| w.4.is_none()), "an unknown customer");
    assert!(want.len() < raw.order_items.height(), "an unknown order");

    let s = Sales::from_frames(&raw).expect("sales");
    let ids = text(&s.customers, "customer_id");
    let keys: Vec<Option<u32>> = s
        .lines
        .column("customer_key")
        .and_then(|c| c.cast(&DataType::UInt32))
        .expect("keys")
        .u32()
        .expect("u32")
        .iter()
        .collect();
    // A line of an unknown customer has no key: the lines keep the
    // customers' ids as text, the orders' as codes only.
    let names = |df: &DataFrame| -> Vec<String> {
        df.get_column_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect()
    };
    assert!(names(&s.lines).contains(&"customer_id".to_string()));
    assert!(!names(&s.lines).contains(&"order_id".to_string()));
    let lines = s.lines_with_ids().expect("ids");
    let got: Vec<_> = text(&lines, "order_id")
        .into_iter()
        .zip(text(&lines, "line_no"))
        .zip(text(&lines, "customer_id"))
        .zip(text(&lines, "state"))
        .zip(keys)
        .map(|((((o, l), c), st), k)| {
            let keyed = k.map(|k| ids[k as usize].clone().expect("id"));
            (o.expect("order id"), l, c, st, keyed)
        })
        .collect();
    assert_eq!(got, want);
    // The order keys number the lines' orders (their rows in the orders).
    let order_keys = s.lines.column("order_key").expect("order keys");
    assert_eq!(order_keys.null_count(), 0);
}
