//! Every pushed-down aggregate (cleaning report, KPIs, monthly revenue,
//! customer features) computed inside the emulator equals the local polars
//! path on the same raw tables, defects included: final cleaning runs as
//! SQL in the warehouse ([`analytics_lib::source::cleaning`]) and as polars
//! locally. On the tiny fixture (every defect kind, hand-computed report)
//! and on generated data with 2 % defects.

use analytics_lib::chrono::{Duration, NaiveDate};
use analytics_lib::clean::clean;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::{CuratedFrames, write_tables};
use analytics_lib::kpi::{Filter, KpiOptions, Kpis};
use analytics_lib::source::Fetched;
use analytics_lib::source::{ParquetSource, Source};
use tempfile::TempDir;

use super::emulator::Emulator;
use super::{assert_close, bulk_load, upload};
use crate::helpers::tiny;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

#[track_caller]
fn assert_same_kpis(local: &Kpis, remote: &Kpis, what: &str) {
    assert_close(local.revenue, remote.revenue, &format!("{what}: revenue"));
    assert_eq!(local.orders, remote.orders, "{what}: orders");
    assert_eq!(
        local.active_customers, remote.active_customers,
        "{what}: active customers"
    );
    match (local.average_ticket, remote.average_ticket) {
        (Some(a), Some(b)) => assert_close(a, b, &format!("{what}: average ticket")),
        (a, b) => assert_eq!(a, b, "{what}: average ticket"),
    }
    assert_eq!(local.churn_rate_90d, remote.churn_rate_90d, "{what}: churn");
    assert_eq!(local.churn_window_days, remote.churn_window_days);
    assert_eq!(
        local.repeat_purchase_rate, remote.repeat_purchase_rate,
        "{what}: repeat purchase rate"
    );
    assert_eq!(local.as_of, remote.as_of, "{what}: as_of");
    assert_eq!(
        local.monthly_revenue.keys().collect::<Vec<_>>(),
        remote.monthly_revenue.keys().collect::<Vec<_>>(),
        "{what}: months"
    );
    for (m, v) in &local.monthly_revenue {
        assert_close(
            *v,
            remote.monthly_revenue[m],
            &format!("{what}: revenue of {m}"),
        );
    }
}

#[track_caller]
fn assert_same_features(
    local: &Source,
    remote: &Source,
    cutoff: NaiveDate,
    cats: Option<&[String]>,
) {
    let what = format!("features at {cutoff} (categories {cats:?})");
    let a = local
        .customer_features(cutoff, cats)
        .expect("local features");
    let b = remote
        .customer_features(cutoff, cats)
        .expect("pushed-down features");
    assert_eq!(a.categories, b.categories, "{what}: category list");
    assert_eq!(a.frame.schema(), b.frame.schema(), "{what}: columns");
    assert_eq!(
        a.customer_ids().expect("ids"),
        b.customer_ids().expect("ids"),
        "{what}: customers"
    );
    assert!(a.frame.height() > 0, "{what}: no customers");
    for name in a.frame.get_column_names().into_iter().skip(1) {
        let ca = a
            .frame
            .column(name)
            .expect("col")
            .f64()
            .expect("f64")
            .clone();
        let cb = b
            .frame
            .column(name)
            .expect("col")
            .f64()
            .expect("f64")
            .clone();
        for (i, (x, y)) in ca.iter().zip(cb.iter()).enumerate() {
            let (x, y) = (x.expect("value"), y.expect("value"));
            assert_close(x, y, &format!("{what}: {name} of row {i}"));
        }
    }
}

/// Both sources on the same raw data: Parquet (local path) and the emulator.
fn both(emu: &Emulator, schema: &str, frames: &CuratedFrames) -> (TempDir, Source, Source) {
    let tmp = TempDir::new().expect("temp dir");
    write_tables(frames, tmp.path()).expect("write parquet");
    let sf = emu.source(schema);
    upload(&sf, frames);
    let local = Source::Parquet(ParquetSource::new(tmp.path()));
    (tmp, local, Source::Snowflake(Box::new(sf)))
}

pub(super) fn check_all(
    local: &Source,
    remote: &Source,
    filters: &[(&str, Filter)],
    cutoffs: &[NaiveDate],
) {
    for (name, filter) in filters {
        for opts in [
            KpiOptions::default(),
            KpiOptions {
                as_of: None,
                churn_window_days: 30,
            },
        ] {
            let what = format!("{name}, churn window {}", opts.churn_window_days);
            let a = local.kpis(filter, &opts).expect("local KPIs");
            let b = remote.kpis(filter, &opts).expect("pushed-down KPIs");
            assert_same_kpis(&a, &b, &what);
        }
        let a = local.monthly_revenue(filter).expect("local monthly");
        let b = remote.monthly_revenue(filter).expect("pushed-down monthly");
        assert_eq!(a.len(), b.len(), "{name}: months");
        for (m, v) in &a {
            assert_close(*v, b[m], &format!("{name}: monthly revenue {m}"));
        }
    }
    for &cutoff in cutoffs {
        assert_same_clv_summary(local, remote, cutoff);
        assert_same_features(local, remote, cutoff, None);
        let cats = local
            .customer_features(cutoff, None)
            .expect("features")
            .categories;
        // A fixed list (the model's), with one category the data does not have.
        let mut fixed: Vec<String> = cats.into_iter().take(3).collect();
        fixed.push("zz_not_sold".into());
        fixed.sort();
        assert_same_features(local, remote, cutoff, Some(&fixed));
    }
}

/// The CLV purchase summary computed in the warehouse equals the one of
/// the cleaned lines (`CustomerSummary::compute`).
#[track_caller]
fn assert_same_clv_summary(local: &Source, remote: &Source, as_of: NaiveDate) {
    let sales = local.prepare().expect("local sales").sales;
    let a = analytics_lib::clv::CustomerSummary::compute(&sales, as_of).expect("local summary");
    let Source::Snowflake(sf) = remote else {
        panic!("the remote source is Snowflake");
    };
    let b = sf.clv_summary(as_of).expect("summary from the warehouse");
    assert_eq!(b.as_of, as_of);
    assert_eq!(
        a.customer_ids, b.customer_ids,
        "CLV summary at {as_of}: customers"
    );
    assert_eq!(
        a.frequency, b.frequency,
        "CLV summary at {as_of}: frequency"
    );
    assert_eq!(a.recency, b.recency, "CLV summary at {as_of}: recency");
    assert_eq!(a.t, b.t, "CLV summary at {as_of}: t");
    for (i, (x, y)) in a.monetary_value.iter().zip(&b.monetary_value).enumerate() {
        assert_close(
            *x,
            *y,
            &format!(
                "CLV summary at {as_of}: monetary value of {}",
                a.customer_ids[i]
            ),
        );
    }
    assert!(a.repeat_customers() > 0, "some repeat customer at {as_of}");
}

#[track_caller]
pub(super) fn assert_same_report(local: &Source, remote: &Source) {
    let a = local.cleaning_report().expect("local cleaning report");
    let b = remote
        .cleaning_report()
        .expect("cleaning report from the warehouse");
    assert_eq!(
        a.to_json(),
        b.to_json(),
        "cleaning report: parquet (left) vs snowflake (right)"
    );
    assert_eq!(a, b);
}

#[test]
fn pushdown_matches_the_local_path_on_the_raw_tiny_fixture() {
    let emu = Emulator::start();
    // The raw fixture, with every defect kind: the warehouse cleans it.
    let (_tmp, local, remote) = both(&emu, "tiny_raw", &tiny());

    // The hand-computed report of data/fixtures/tiny/README.md, counted in SQL.
    let expected = clean(&tiny()).expect("clean").report;
    let report = remote.cleaning_report().expect("report");
    assert_eq!(report, expected);
    assert!(report.total_defects() >= 17, "{report}");
    assert_same_report(&local, &remote);

    // The hand-worked figures of tests/it/kpi.rs, now from SQL on raw tables.
    let k = remote
        .kpis(&Filter::all(), &KpiOptions::default())
        .expect("kpis");
    assert_close(k.revenue, 2668.0, "tiny revenue");
    assert_eq!((k.orders, k.as_of), (15, d("2025-01-01")));
    assert_eq!(k.churn_rate_90d, Some(0.5));
    assert_eq!(k.repeat_purchase_rate, Some(0.625));

    let filters = [
        ("everything", Filter::all()),
        (
            "second half, web and app, two categories",
            Filter {
                from: Some(d("2024-07-01")),
                to: Some(d("2024-12-31")),
                categories: vec!["eletronicos".into(), "moda_acessorios".into()],
                channels: vec!["web".into(), "app".into()],
                ..Filter::all()
            },
        ),
        (
            "SP and RJ customers c01–c03",
            Filter {
                states: vec!["SP".into(), "RJ".into()],
                customers: Some(vec!["c01".into(), "c02".into(), "c03".into()]),
                ..Filter::all()
            },
        ),
    ];
    check_all(
        &local,
        &remote,
        &filters,
        &[d("2024-10-03"), d("2024-07-05")],
    );
}

#[test]
fn pushdown_matches_the_local_path_on_generated_data_with_defects() {
    let emu = Emulator::start();
    let raw = TempDir::new().expect("temp dir");
    let cfg = GeneratorConfig {
        lines: 4_000,
        seed: 7,
        defect_rate: 0.02,
        progress: false,
        ..GeneratorConfig::default()
    };
    generate(&cfg, raw.path()).expect("generate");
    let local = Source::Parquet(ParquetSource::new(raw.path()));
    let sf = emu.source("generated_defects");
    bulk_load(&sf, raw.path());
    let remote = Source::Snowflake(Box::new(sf));

    // Defects of every kind the generator plants, counted alike.
    let report = local.cleaning_report().expect("report");
    for kind in [
        "duplicate_customers",
        "duplicate_orders",
        "duplicate_order_lines",
        "lines_unknown_order",
        "lines_unknown_product",
        "lines_non_positive_quantity",
        "lines_non_positive_price",
        "lines_discount_out_of_range",
    ] {
        assert!(report.count(kind) > 0, "{kind}: {report}");
    }
    let before = remote.fetched().expect("counted");
    assert_same_report(&local, &remote);
    let summary = remote.fetched().expect("counted").since(before);
    // The report is a handful of rows, never a table.
    assert_eq!(summary.queries, 1);
    assert!(summary.rows < 100, "{summary}");

    let as_of = local
        .kpis(&Filter::all(), &KpiOptions::default())
        .expect("kpis")
        .as_of;
    let filters = [
        ("everything", Filter::all()),
        (
            "2024, store channel",
            Filter {
                from: Some(d("2024-01-01")),
                to: Some(d("2024-12-31")),
                channels: vec!["store".into()],
                ..Filter::all()
            },
        ),
        (
            "SP, one category",
            Filter {
                states: vec!["SP".into()],
                categories: vec!["eletronicos".into()],
                ..Filter::all()
            },
        ),
        (
            "a period, two states, web",
            Filter {
                from: Some(d("2024-03-01")),
                to: Some(d("2025-02-28")),
                states: vec!["SP".into(), "MG".into()],
                channels: vec!["web".into()],
                ..Filter::all()
            },
        ),
    ];
    let before = remote.fetched().expect("counted");
    check_all(
        &local,
        &remote,
        &filters,
        &[
            as_of - Duration::days(180),
            as_of - Duration::days(90),
            as_of,
        ],
    );
    let all: Fetched = remote.fetched().expect("counted").since(before);
    eprintln!("KPIs and features pushed down: fetched {all}");

    // One feature call: the summary (report, categories) and one row per
    // customer with an order before the cutoff — nothing per line.
    let before = remote.fetched().expect("counted");
    let f = remote.customer_features(as_of, None).expect("features");
    let one = remote.fetched().expect("counted").since(before);
    assert_eq!(one.queries, 2, "{one}");
    assert!(
        one.rows <= f.n_customers() as u64 + 100,
        "{one}; {} customers",
        f.n_customers()
    );
    assert!(one.rows < report.rows["order_items"].input / 2, "{one}");
}
