//! Reading the four curated tables from a Parquet folder, validated against
//! the contract.
//!
//! Each table is either one file `<table>.parquet` or a folder `<table>/` (or
//! `<table>.parquet/`) of `.parquet` part files. Loading is lazy: validation
//! reads only each file's footer (schema and row count), and the returned
//! [`LazyFrame`]s select the contract's columns in the contract's types. Extra
//! columns are ignored.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::contract::{CUSTOMERS, ColumnType, ORDER_ITEMS, ORDERS, PRODUCTS, TableSpec};
use crate::error::{DataError, Result};

/// The four curated tables, as lazy frames in the contract's schema.
#[derive(Clone)]
pub struct CuratedData {
    pub customers: LazyFrame,
    pub products: LazyFrame,
    pub orders: LazyFrame,
    pub order_items: LazyFrame,
}

/// The four tables, materialised.
#[derive(Clone, Debug)]
pub struct CuratedFrames {
    pub customers: DataFrame,
    pub products: DataFrame,
    pub orders: DataFrame,
    pub order_items: DataFrame,
}

impl CuratedData {
    /// Materialise all four tables. A file that is corrupt past its footer
    /// fails here, with the table named.
    pub fn collect(self) -> Result<CuratedFrames> {
        let get = |lf: LazyFrame, table: &'static str| {
            lf.collect().map_err(|e| DataError::Unreadable {
                table,
                path: PathBuf::from(table),
                reason: first_line(&e.to_string()),
            })
        };
        // The tables the sales view gathers from row by row (customers,
        // products, orders) are made one chunk each here: a gather from a
        // column in many chunks (one per Parquet row group) looks up each
        // row's chunk and re-encodes every string, several times slower.
        // Here, while only the raw tables are in memory, the copy does not
        // add to the peak (in the join, beside the cleaned tables and the
        // lines, it added 0.4 GiB at 10 M lines). Cleaning keeps them one
        // chunk. The lines keep their chunks: they are never gathered.
        let one_chunk = |mut df: DataFrame| {
            df.rechunk_mut_par();
            df
        };
        Ok(CuratedFrames {
            customers: get(self.customers, "customers").map(one_chunk)?,
            products: get(self.products, "products").map(one_chunk)?,
            orders: get(self.orders, "orders").map(one_chunk)?,
            order_items: get(self.order_items, "order_items")?,
        })
    }
}

impl CuratedFrames {
    pub fn lazy(&self) -> CuratedData {
        CuratedData {
            customers: self.customers.clone().lazy(),
            products: self.products.clone().lazy(),
            orders: self.orders.clone().lazy(),
            order_items: self.order_items.clone().lazy(),
        }
    }

    /// Rows per table, in contract order.
    pub fn row_counts(&self) -> [(&'static str, usize); 4] {
        [
            ("customers", self.customers.height()),
            ("products", self.products.height()),
            ("orders", self.orders.height()),
            ("order_items", self.order_items.height()),
        ]
    }
}

/// Where a table's data lives: its Parquet files, in a stable order.
#[derive(Debug, Clone)]
pub struct TableLocation {
    pub display: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Find the file(s) of `table` in `dir`.
pub fn locate_table(dir: &Path, table: &'static str) -> Result<TableLocation> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::MissingDirectory {
        dir: dir.to_path_buf(),
        cause: e,
    })?;
    let mut found_names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found_names.sort();

    let file = dir.join(format!("{table}.parquet"));
    if file.is_file() {
        return Ok(TableLocation {
            display: file.clone(),
            files: vec![file],
        });
    }
    for folder in [dir.join(format!("{table}.parquet")), dir.join(table)] {
        if folder.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map_err(DataError::io(&folder, "listing part files"))?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(DataError::MissingTable {
                    table,
                    dir: dir.to_path_buf(),
                    found: format!("a folder {} with no .parquet files", folder.display()),
                });
            }
            return Ok(TableLocation {
                display: folder,
                files,
            });
        }
    }
    let found = if found_names.is_empty() {
        "an empty folder".to_string()
    } else {
        format!("[{}]", found_names.join(", "))
    };
    Err(DataError::MissingTable {
        table,
        dir: dir.to_path_buf(),
        found,
    })
}

/// Read the schema and row count of every file of a table; reject unreadable
/// files, missing columns, incompatible types and empty tables.
fn validate_files(spec: &TableSpec, loc: &TableLocation) -> Result<LazyFrame> {
    let mut frames = Vec::with_capacity(loc.files.len());
    let mut total_rows: u64 = 0;
    for path in &loc.files {
        let unreadable = |reason: String| DataError::Unreadable {
            table: spec.name,
            path: path.clone(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
        let mut reader = ParquetReader::new(file);
        let schema = reader
            .schema()
            .map_err(|e| unreadable(first_line(&e.to_string())))?;
        let rows = reader
            .num_rows()
            .map_err(|e| unreadable(first_line(&e.to_string())))?;
        total_rows += rows as u64;
        check_schema(spec, &schema)?;

        let pl_path = PlRefPath::new(path.to_string_lossy().as_ref());
        let lf = LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default())
            .map_err(|e| unreadable(first_line(&e.to_string())))?;
        frames.push(conform(spec, lf));
    }
    if total_rows == 0 {
        return Err(DataError::EmptyTable {
            table: spec.name,
            path: loc.display.clone(),
        });
    }
    if frames.len() == 1 {
        return Ok(frames.pop().expect("one frame"));
    }
    concat(frames, UnionArgs::default())
        .map_err(DataError::polars(spec.name, "combining part files"))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Check one file's Arrow schema against the contract.
pub fn check_schema(spec: &TableSpec, schema: &ArrowSchema) -> Result<()> {
    for col in spec.columns {
        let Some(field) = schema.get(col.name) else {
            let found: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
            return Err(DataError::MissingColumn {
                table: spec.name,
                column: col.name,
                expected: col.ty.name(),
                found: found.join(", "),
            });
        };
        let dtype = DataType::from_arrow_field(field);
        if !col.ty.accepts(&dtype) {
            return Err(DataError::WrongType {
                table: spec.name,
                column: col.name,
                expected: col.ty.name(),
                found: describe_dtype(&dtype),
            });
        }
    }
    Ok(())
}

fn describe_dtype(dt: &DataType) -> String {
    match dt {
        DataType::String => "string".into(),
        DataType::Datetime(unit, Some(tz)) => format!("timestamp ({unit}, time zone {tz})"),
        DataType::Datetime(unit, None) => format!("timestamp ({unit}, no time zone)"),
        other => other.to_string(),
    }
}

/// Select the contract columns and cast them to the contract types. Casts
/// are non-strict: a value that does not fit (e.g. an int64 beyond int32)
/// becomes null, which final cleaning counts and reports.
fn conform(spec: &TableSpec, lf: LazyFrame) -> LazyFrame {
    let exprs: Vec<Expr> = spec
        .columns
        .iter()
        .map(|c| {
            let e = col(c.name);
            let e = match c.ty {
                ColumnType::Date => e.cast(DataType::Date),
                _ => e.cast(c.loaded_dtype()),
            };
            e.alias(c.name)
        })
        .collect();
    lf.select(exprs)
}

/// Load and validate one table of a data directory.
pub fn load_table(dir: &Path, spec: &TableSpec) -> Result<LazyFrame> {
    let loc = locate_table(dir, spec.name)?;
    validate_files(spec, &loc)
}

/// Load and validate all four curated tables of a data directory.
pub fn load(dir: &Path) -> Result<CuratedData> {
    Ok(CuratedData {
        customers: load_table(dir, &CUSTOMERS)?,
        products: load_table(dir, &PRODUCTS)?,
        orders: load_table(dir, &ORDERS)?,
        order_items: load_table(dir, &ORDER_ITEMS)?,
    })
}
