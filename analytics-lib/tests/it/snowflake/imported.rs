//! The push-down on real layouts, not only on generated data: the Olist
//! and Online Retail (II and I) fixtures imported with the project's
//! importers (`analytics import`), loaded into the emulator as they come
//! out of the importer, and every pushed-down figure compared with the
//! Parquet path on the same folder: the cleaning report, the KPIs with
//! filters, monthly revenue, the CLV summary, the customer features at two
//! cutoffs, and the dashboard's views, leaderboards and drill-down pages
//! with segments assigned in SQL. Real layouts bring what the generator
//! does not: customers with one order only, orders of every status,
//! categories and states that are few and unevenly used, one channel.

use std::path::Path;

use analytics_lib::chrono::Duration;
use analytics_lib::data::fixture::fixture_dir;
use analytics_lib::data::import::{ImportError, ImportReport, import_olist, import_online_retail};
use analytics_lib::kpi::{Filter, KpiOptions};
use analytics_lib::polars::prelude::DataType;
use analytics_lib::source::{ParquetSource, Source};
use tempfile::TempDir;

use super::bulk_load;
use super::dashboard::{Fixture, check_leaders, check_pages, check_views};
use super::emulator::Emulator;
use super::pushdown::{assert_same_report, check_all};

type Importer = fn(&Path) -> Result<ImportReport, ImportError>;

fn olist(out: &Path) -> Result<ImportReport, ImportError> {
    import_olist(&fixture_dir("olist"), out)
}

fn online_retail_ii(out: &Path) -> Result<ImportReport, ImportError> {
    import_online_retail(
        &fixture_dir("online_retail").join("online_retail_II.csv"),
        out,
    )
}

fn online_retail_i(out: &Path) -> Result<ImportReport, ImportError> {
    import_online_retail(
        &fixture_dir("online_retail").join("online_retail_I.csv"),
        out,
    )
}

/// The importer's output folder (a temporary one).
fn imported(import: Importer) -> TempDir {
    let raw = TempDir::new().expect("temp dir");
    import(raw.path()).expect("import");
    raw
}

#[test]
fn pushdown_equals_the_parquet_path_on_imported_real_layouts() {
    let emu = Emulator::start();
    for (name, import) in [
        ("olist", olist as Importer),
        ("online_retail_ii", online_retail_ii),
        ("online_retail_i", online_retail_i),
    ] {
        let raw = imported(import);
        let local = Source::Parquet(ParquetSource::new(raw.path()));
        let sf = emu.source(&format!("imported_{name}"));
        bulk_load(&sf, raw.path());
        let remote = Source::Snowflake(Box::new(sf));
        assert_same_report(&local, &remote);

        let all = local
            .kpis(&Filter::all(), &KpiOptions::default())
            .expect("kpis");
        eprintln!(
            "{name}: {} completed orders, revenue {:.2}, as of {}",
            all.orders, all.revenue, all.as_of
        );
        assert!(all.orders >= 5, "{name}: {} completed orders", all.orders);
        let sales = local.prepare().expect("prepare").sales;
        let first = |column: &str| -> String {
            let c = sales.lines.column(column).expect(column);
            let c = c.cast(&DataType::String).expect("as text");
            let c = c.str().expect("strings");
            c.iter()
                .flatten()
                .next()
                .unwrap_or_else(|| panic!("{name}: no {column}"))
                .to_string()
        };
        let filters = [
            ("everything", Filter::all()),
            (
                "one category",
                Filter {
                    categories: vec![first("category")],
                    ..Filter::all()
                },
            ),
            (
                "one state, one channel",
                Filter {
                    states: vec![first("state")],
                    channels: vec![first("channel")],
                    ..Filter::all()
                },
            ),
            (
                "the last 60 days",
                Filter {
                    from: Some(all.as_of - Duration::days(60)),
                    to: Some(all.as_of - Duration::days(1)),
                    ..Filter::all()
                },
            ),
        ];
        check_all(&local, &remote, &filters, &[all.as_of]);
    }
}

#[test]
fn warehouse_dashboard_equals_the_engine_on_imported_real_layouts() {
    for (name, import) in [
        ("olist", olist as Importer),
        ("online_retail_ii", online_retail_ii),
    ] {
        let fx = Fixture::load(
            Emulator::start(),
            &format!("dashboard_{name}"),
            imported(import),
            2,
        );
        let selling = check_views(&fx, false);
        let leaders = check_leaders(&fx);
        let pages = check_pages(&fx);
        eprintln!("{name}: {selling} views with orders, {leaders} leaderboards, {pages} pages");
        assert!(selling >= 3, "{name}: {selling} views with orders");
        assert!(leaders >= 8, "{name}: {leaders} leaderboards compared");
        assert!(pages >= 4, "{name}: {pages} drill-down pages compared");
    }
}
