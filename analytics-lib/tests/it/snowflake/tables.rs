//! Tables loaded into the emulator read back exactly as the Parquet backend
//! reads them; empty tables give the contract's schema.

use analytics_lib::contract::{CUSTOMERS, ORDERS, TABLES};
use analytics_lib::data::CuratedFrames;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::polars::prelude::*;
use analytics_lib::source::{CuratedSource, ParquetSource};
use tempfile::TempDir;

use super::emulator::Emulator;
use super::{assert_same_tables, upload};
use crate::helpers::tiny_parquet;

#[test]
fn the_tiny_fixture_reads_back_from_snowflake_as_from_parquet() {
    let emu = Emulator::start();
    let (_tmp, dir) = tiny_parquet();
    let parquet = ParquetSource::new(&dir)
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("parquet");
    let sf = emu.source("tiny_raw");
    upload(&sf, &parquet);
    let back = sf
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("snowflake read");
    // The fixture's defects (null keys, duplicates, `WEB `, bad prices) survive the trip.
    assert_eq!(back.customers.height(), 10);
    assert_eq!(back.order_items.height(), 30);
    assert_same_tables(&parquet, &back);
}

#[test]
fn generated_data_reads_back_from_snowflake_as_from_parquet() {
    let emu = Emulator::start();
    let tmp = TempDir::new().expect("temp dir");
    let cfg = GeneratorConfig {
        lines: 1_500,
        seed: 11,
        defect_rate: 0.02,
        ..GeneratorConfig::default()
    };
    generate(&cfg, tmp.path()).expect("generate");
    let parquet: CuratedFrames = ParquetSource::new(tmp.path())
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("parquet");
    let sf = emu.source("generated_raw");
    upload(&sf, &parquet);
    let back = sf
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("snowflake read");
    assert_eq!(back.order_items.height(), 1_500);
    assert_same_tables(&parquet, &back);
}

#[test]
fn empty_tables_give_the_contract_schema_and_missing_columns_are_named() {
    let emu = Emulator::start();
    let sf = emu.source("empty");
    for spec in TABLES {
        sf.replace_table(&spec, &DataFrame::empty_with_schema(&spec.schema()), 10)
            .expect("create empty table");
    }
    let frames = sf
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("empty read");
    for (spec, df) in TABLES.iter().zip([
        &frames.customers,
        &frames.products,
        &frames.orders,
        &frames.order_items,
    ]) {
        assert_eq!(df.height(), 0, "{}", spec.name);
        assert_eq!(df.schema().as_ref(), &spec.loaded_schema(), "{}", spec.name);
    }

    // A table without a contract column: the error names the table and what was expected.
    sf.execute("CREATE OR REPLACE TABLE customers (customer_id VARCHAR, city VARCHAR)")
        .expect("create");
    let err = sf
        .read_table(&CUSTOMERS)
        .expect_err("signup_date is missing")
        .to_string();
    assert!(
        err.contains("customers") && err.contains("signup_date"),
        "error should name the table and the expected columns: {err}"
    );
}

#[test]
fn timestamps_keep_their_microseconds_and_strings_their_quotes() {
    let emu = Emulator::start();
    let sf = emu.source("precise");
    let ts = [
        "2024-10-02 23:59:59.999999",
        "1969-12-31 23:59:59.000001",
        "2024-01-10 10:00:00",
    ];
    let micros: Vec<i64> = ts
        .iter()
        .map(|s| {
            analytics_lib::chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .expect("timestamp")
                .and_utc()
                .timestamp_micros()
        })
        .collect();
    let orders = df![
        "order_id" => ["o'1", r"o\2", "o3"],
        "customer_id" => ["c1", "c2", "São Paulo – ação"],
        "order_ts" => micros.clone(),
        "channel" => ["web", "app", "store"],
        "payment_type" => ["pix", "boleto", "credit_card"],
        "status" => ["completed", "canceled", "returned"],
    ]
    .expect("frame")
    .lazy()
    .with_column(col("order_ts").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
    .collect()
    .expect("typed");
    sf.replace_table(&ORDERS, &orders, 2).expect("load");
    let back = sf.read_table(&ORDERS).expect("read");
    let back = back
        .sort(["order_id"], SortMultipleOptions::default())
        .expect("sort");
    let orders = orders
        .sort(["order_id"], SortMultipleOptions::default())
        .expect("sort");
    assert!(
        back.equals_missing(&orders),
        "round trip changed values:\n{orders}\n{back}"
    );
}

#[test]
#[should_panic(expected = "differs")]
fn the_table_comparison_catches_a_one_microsecond_difference() {
    let frames = crate::helpers::tiny();
    let mut shifted = frames.clone();
    shifted.orders = shifted
        .orders
        .lazy()
        .with_column(
            when(col("order_id").eq(lit("o05")))
                .then(col("order_ts") + lit(Duration::parse("1us")))
                .otherwise(col("order_ts"))
                .alias("order_ts"),
        )
        .collect()
        .expect("shift");
    assert_same_tables(&frames, &shifted);
}
