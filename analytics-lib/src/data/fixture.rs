//! Small hand-written samples of the curated tables, kept as CSV so that a
//! reviewer can read every row (`data/fixtures/`). Tests turn them into
//! Parquet and go through the real loader.

use std::path::Path;

use polars::prelude::*;

use super::loader::CuratedFrames;
use crate::contract::{CUSTOMERS, ColumnType, ORDER_ITEMS, ORDERS, PRODUCTS, TableSpec};
use crate::error::{DataError, Result};

/// Read one table from `<dir>/<table>.csv`, typed by the contract. Dates are
/// `YYYY-MM-DD`, timestamps `YYYY-MM-DD HH:MM:SS`; an empty field is null.
pub fn read_csv_table(dir: &Path, spec: &TableSpec) -> Result<DataFrame> {
    let path = dir.join(format!("{}.csv", spec.name));
    let raw = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.clone()))
        .and_then(|r| r.finish())
        .map_err(|e| DataError::Unreadable {
            table: spec.name,
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let exprs: Vec<Expr> = spec
        .columns
        .iter()
        .map(|c| {
            let e = col(c.name);
            let e = match c.ty {
                ColumnType::String => e,
                ColumnType::Category => e.cast(c.loaded_dtype()),
                ColumnType::Date => e.str().to_date(StrptimeOptions {
                    format: Some("%Y-%m-%d".into()),
                    ..Default::default()
                }),
                ColumnType::TimestampMicros => e.str().to_datetime(
                    Some(TimeUnit::Microseconds),
                    None,
                    StrptimeOptions {
                        format: Some("%Y-%m-%d %H:%M:%S".into()),
                        ..Default::default()
                    },
                    lit("raise"),
                ),
                ty => e.strict_cast(ty.dtype()),
            };
            e.alias(c.name)
        })
        .collect();
    raw.lazy()
        .select(exprs)
        .collect()
        .map_err(DataError::polars(spec.name, "typing the CSV fixture"))
}

/// Read the four tables of a CSV fixture folder.
pub fn read_csv_tables(dir: &Path) -> Result<CuratedFrames> {
    Ok(CuratedFrames {
        customers: read_csv_table(dir, &CUSTOMERS)?,
        products: read_csv_table(dir, &PRODUCTS)?,
        orders: read_csv_table(dir, &ORDERS)?,
        order_items: read_csv_table(dir, &ORDER_ITEMS)?,
    })
}

/// The repository's `data/fixtures/<name>` folder.
pub fn fixture_dir(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
        .join("fixtures")
        .join(name)
}
