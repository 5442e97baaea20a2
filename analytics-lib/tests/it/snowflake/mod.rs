//! The Snowflake backend against a real local emulator (fakesnow, server
//! mode): data is loaded through the same client (CREATE TABLE + INSERT in
//! batches), read back through the Snowflake backend and compared with the
//! Parquet backend; every pushed-down aggregate is compared with the local
//! polars path. Needs `make fakesnow-env` (or `FAKESNOW_BIN`): without the
//! emulator these tests fail, they do not skip.

mod bench;
mod dashboard;
pub mod emulator;
mod imported;
mod jobs;
mod pushdown;
mod secrets;
mod tables;

use analytics_lib::contract::TABLES;
use analytics_lib::data::CuratedFrames;
use analytics_lib::polars::prelude::*;
use analytics_lib::source::SnowflakeSource;

/// Rows per INSERT statement when loading test data.
pub const ROWS_PER_INSERT: usize = 500;

fn frame<'a>(frames: &'a CuratedFrames, table: &str) -> &'a DataFrame {
    match table {
        "customers" => &frames.customers,
        "products" => &frames.products,
        "orders" => &frames.orders,
        _ => &frames.order_items,
    }
}

/// Load the four tables into the source's schema (replacing them).
pub fn upload(source: &SnowflakeSource, frames: &CuratedFrames) {
    for spec in TABLES {
        source
            .replace_table(&spec, frame(frames, spec.name), ROWS_PER_INSERT)
            .unwrap_or_else(|e| panic!("loading {} into the emulator: {e}", spec.name));
    }
}

/// Replace the four tables of `source`'s schema with the Parquet files of
/// `dir`, through the emulator's bulk path (DuckDB's `read_parquet`; real
/// Snowflake loads with `COPY INTO` from a stage). Much faster than
/// [`upload`]'s INSERTs, and keeps the files' row order.
pub fn bulk_load(source: &SnowflakeSource, dir: &std::path::Path) {
    for spec in TABLES {
        let loc = analytics_lib::data::loader::locate_table(dir, spec.name).expect("table files");
        let files: Vec<String> = loc
            .files
            .iter()
            .map(|p| format!("'{}'", p.display()))
            .collect();
        source
            .execute(&format!(
                "CREATE OR REPLACE TABLE {} AS SELECT {} FROM read_parquet([{}])",
                spec.name,
                spec.column_names().join(", "),
                files.join(", ")
            ))
            .unwrap_or_else(|e| panic!("bulk loading {} into the emulator: {e}", spec.name));
    }
}

/// Sort a table by all its columns, so that two reads compare row by row.
fn sorted(df: &DataFrame) -> DataFrame {
    let names: Vec<PlSmallStr> = df.get_column_names().into_iter().cloned().collect();
    df.sort(
        names,
        SortMultipleOptions::default()
            .with_nulls_last(true)
            .with_maintain_order(true),
    )
    .expect("sortable")
}

/// Every table equal: same columns, same types, same rows (any order).
#[track_caller]
pub fn assert_same_tables(parquet: &CuratedFrames, snowflake: &CuratedFrames) {
    for spec in TABLES {
        let (a, b) = (frame(parquet, spec.name), frame(snowflake, spec.name));
        assert_eq!(
            a.schema(),
            b.schema(),
            "{}: schema differs (parquet vs snowflake)",
            spec.name
        );
        assert_eq!(a.height(), b.height(), "{}: row count differs", spec.name);
        let (a, b) = (sorted(a), sorted(b));
        if !a.equals_missing(&b) {
            for i in 0..a.height() {
                let (ra, rb) = (a.get_row(i).expect("row"), b.get_row(i).expect("row"));
                assert_eq!(
                    ra, rb,
                    "{}: row {i} differs (parquet vs snowflake)",
                    spec.name
                );
            }
            panic!("{}: tables differ", spec.name);
        }
    }
}

/// Float equality up to summation order (relative 1e-9).
#[track_caller]
pub fn assert_close(a: f64, b: f64, what: &str) {
    let tol = 1e-9 * a.abs().max(b.abs()).max(1.0);
    assert!((a - b).abs() <= tol, "{what}: local {a} vs snowflake {b}");
}
