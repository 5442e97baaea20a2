//! The generator: determinism, schema conformance, planted defects found by
//! cleaning, and statistical sanity (seasonality, churn, geography).

use std::fs;

use analytics_lib::clean::clean;
use analytics_lib::contract::TABLES;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::geo::STATES;
use analytics_lib::data::load;
use analytics_lib::polars::prelude::*;
use chrono::NaiveDate;
use tempfile::TempDir;

fn config(lines: u64, seed: u64, defect_rate: f64) -> GeneratorConfig {
    GeneratorConfig {
        lines,
        seed,
        defect_rate,
        ..GeneratorConfig::default()
    }
}

fn table_bytes(dir: &std::path::Path) -> Vec<Vec<u8>> {
    TABLES
        .iter()
        .map(|t| fs::read(dir.join(format!("{}.parquet", t.name))).expect("table file"))
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let tmp = TempDir::new().expect("tmp");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let small = |seed| GeneratorConfig {
        chunk_customers: 1_000, // several chunks, so chunking is exercised
        ..config(20_000, seed, 0.02)
    };
    generate(&small(7), &a).expect("a");
    generate(&small(7), &b).expect("b");
    generate(&small(8), &c).expect("c");
    assert!(
        table_bytes(&a) == table_bytes(&b),
        "same seed must give identical files"
    );
    assert!(
        table_bytes(&a) != table_bytes(&c),
        "another seed must give other data"
    );
    // Nothing temporary is left behind.
    let leftovers: Vec<_> = fs::read_dir(&a)
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn exact_line_count_and_contract_schema() {
    let tmp = TempDir::new().expect("tmp");
    let summary = generate(&config(12_345, 1, 0.01), tmp.path()).expect("generate");
    let t = load(tmp.path()).expect("load").collect().expect("collect");
    assert_eq!(t.order_items.height(), 12_345);
    assert_eq!(summary.order_items, 12_345);
    assert_eq!(summary.orders as usize, t.orders.height());
    for (spec, df) in TABLES
        .iter()
        .zip([&t.customers, &t.products, &t.orders, &t.order_items])
    {
        assert_eq!(df.schema().as_ref(), &spec.loaded_schema(), "{}", spec.name);
    }
}

#[test]
fn cleaning_finds_exactly_the_planted_defects() {
    let tmp = TempDir::new().expect("tmp");
    let summary = generate(&config(200_000, 3, 0.02), tmp.path()).expect("generate");
    let p = &summary.planted_defects;
    let t = load(tmp.path()).expect("load").collect().expect("collect");
    let r = clean(&t).expect("clean").report;
    let pairs = [
        ("duplicate_customers", p.duplicate_customers),
        ("duplicate_products", p.duplicate_products),
        ("duplicate_orders", p.duplicate_orders),
        ("duplicate_order_lines", p.duplicate_order_lines),
        ("lines_unknown_order", p.lines_unknown_order),
        ("lines_unknown_product", p.lines_unknown_product),
        ("lines_non_positive_quantity", p.lines_non_positive_quantity),
        ("lines_non_positive_price", p.lines_non_positive_price),
        ("lines_discount_out_of_range", p.lines_discount_out_of_range),
        ("orders_without_lines", p.orders_without_lines),
    ];
    for (kind, planted) in pairs {
        assert!(planted > 0, "{kind}: nothing planted at 2%");
        assert_eq!(r.count(kind), planted, "{kind}");
    }
    for kind in [
        "orders_unknown_customer",
        "orders_invalid_status",
        "lines_of_rejected_orders",
    ] {
        assert_eq!(r.count(kind), 0, "{kind} was not planted");
    }
}

#[test]
fn defect_rate_zero_is_perfectly_clean() {
    let tmp = TempDir::new().expect("tmp");
    generate(&config(30_000, 5, 0.0), tmp.path()).expect("generate");
    let t = load(tmp.path()).expect("load").collect().expect("collect");
    let r = clean(&t).expect("clean").report;
    assert_eq!(r.total_defects(), 0, "{r}");
}

/// One million lines, as the issue asks: statistical sanity of the story.
#[test]
fn one_million_lines_look_like_brazilian_ecommerce() {
    let tmp = TempDir::new().expect("tmp");
    generate(&config(1_000_000, 42, 0.0), tmp.path()).expect("generate");
    let t = load(tmp.path()).expect("load").collect().expect("collect");

    // Every state is present.
    let states = t
        .customers
        .column("state")
        .expect("state")
        .as_materialized_series()
        .drop_nulls()
        .unique()
        .expect("unique");
    assert_eq!(states.len(), STATES.len(), "all 27 UFs");

    // 8 to 12 categories, prices differ by category.
    let cats = t
        .products
        .column("category")
        .expect("cat")
        .n_unique()
        .expect("n");
    assert!((8..=12).contains(&cats), "{cats} categories");

    // Status shares: ~5% canceled, ~2.5% returned.
    let status_share = |s: &str| {
        let n = t
            .orders
            .clone()
            .lazy()
            .filter(col("status").eq(lit(s)))
            .collect()
            .expect("filter")
            .height();
        n as f64 / t.orders.height() as f64
    };
    let canceled = status_share("canceled");
    let returned = status_share("returned");
    assert!(
        (0.04..0.06).contains(&canceled),
        "canceled share {canceled}"
    );
    assert!(
        (0.02..0.03).contains(&returned),
        "returned share {returned}"
    );

    // Completed revenue per line and month.
    let revenue = t
        .order_items
        .clone()
        .lazy()
        .join(
            t.orders.clone().lazy(),
            [col("order_id")],
            [col("order_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("status").eq(lit("completed")))
        .with_columns([
            (col("quantity").cast(DataType::Float64)
                * col("unit_price")
                * (lit(1.0) - col("discount")))
            .alias("revenue"),
            col("order_ts").dt().year().alias("year"),
            col("order_ts").dt().month().alias("month"),
            col("order_ts").dt().date().alias("day"),
        ]);
    let monthly = revenue
        .clone()
        .group_by([col("year"), col("month")])
        .agg([col("revenue").sum()])
        .collect()
        .expect("monthly");
    for year in [2023, 2024, 2025] {
        let y = monthly
            .clone()
            .lazy()
            .filter(col("year").eq(lit(year)))
            .collect()
            .expect("year");
        let rev = y
            .column("revenue")
            .expect("rev")
            .f64()
            .expect("f64")
            .clone();
        let mean = rev.mean().expect("mean");
        let months = y.column("month").expect("m").i8().expect("i8").clone();
        let december = months
            .iter()
            .zip(rev.iter())
            .find(|(m, _)| *m == Some(12))
            .and_then(|(_, r)| r)
            .expect("december");
        assert!(
            december > 1.1 * mean,
            "{year}: December {december:.0} vs mean {mean:.0}"
        );
    }

    // Black Friday 2024 (29 Nov) is the busiest day of its year.
    let daily = revenue
        .group_by([col("day")])
        .agg([col("revenue").sum()])
        .sort(
            ["revenue"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .collect()
        .expect("daily");
    let days = daily
        .column("day")
        .expect("day")
        .date()
        .expect("date")
        .clone();
    let top: Vec<NaiveDate> = days.as_date_iter().take(3).flatten().collect();
    let bf = NaiveDate::from_ymd_opt(2025, 11, 28).expect("date");
    assert!(
        top.contains(&bf),
        "Black Friday 2025 not among top days {top:?}"
    );

    // A non-trivial share of customers churned: active in the 90 days before
    // the last quarter, silent in it.
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    let in_window = |from: i64, to: i64| {
        let start = as_of - chrono::Duration::days(from);
        let end = as_of - chrono::Duration::days(to);
        t.orders
            .clone()
            .lazy()
            .filter(
                col("status")
                    .eq(lit("completed"))
                    .and(col("order_ts").dt().date().gt_eq(lit(start)))
                    .and(col("order_ts").dt().date().lt(lit(end))),
            )
            .select([col("customer_id")])
            .unique(None, UniqueKeepStrategy::Any)
    };
    let earlier = in_window(180, 90).collect().expect("earlier").height();
    let retained = in_window(180, 90)
        .join(
            in_window(90, 0),
            [col("customer_id")],
            [col("customer_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()
        .expect("retained")
        .height();
    let churn = 1.0 - retained as f64 / earlier as f64;
    assert!((0.3..0.9).contains(&churn), "churn rate {churn}");
}
