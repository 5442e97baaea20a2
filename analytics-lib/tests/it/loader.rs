//! The loader's validation: one test per kind of bad input, each asserting
//! that the message names what is wrong, what was expected and what was found.

use std::fs;

use analytics_lib::contract::{ColumnType, ORDERS, TABLES};
use analytics_lib::data::load;
use analytics_lib::polars::prelude::*;

use crate::helpers::{assert_mentions, tiny, tiny_parquet, write_parquet};

fn load_err(path: &std::path::Path) -> String {
    match load(path).and_then(|d| d.collect()) {
        Ok(_) => panic!("expected an error for {}", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn loads_the_fixture_in_contract_types() {
    let (_dir, path) = tiny_parquet();
    let t = load(&path).expect("load").collect().expect("collect");
    assert_eq!(t.orders.schema().as_ref(), &ORDERS.loaded_schema());
    assert_eq!(t.order_items.height(), 30);
}

/// The few-valued text columns are categorical once loaded (4-byte codes
/// of one dictionary per column name, shared by every table, so a code means
/// the same value in the raw, cleaned and joined frames), and the tables are
/// written back as the contract stores them: as text.
#[test]
fn few_valued_columns_load_categorical_and_are_written_as_text() {
    let (_dir, path) = tiny_parquet();
    let t = load(&path).expect("load").collect().expect("collect");
    for (spec, df) in TABLES
        .iter()
        .zip([&t.customers, &t.products, &t.orders, &t.order_items])
    {
        for c in spec.columns {
            let dtype = df.column(c.name).expect(c.name).dtype();
            assert_eq!(
                matches!(dtype, DataType::Categorical(..)),
                c.ty == ColumnType::Category,
                "{}.{} is {dtype}",
                spec.name,
                c.name
            );
        }
    }
    // One dictionary per column name across tables: a line's product code
    // is the code of the product row with the same id (the products and
    // the lines meet their ids in different orders, so dictionaries of
    // their own would number them differently).
    let codes_and_text = |df: &DataFrame| {
        let c = df.column("product_id").expect("product_id");
        let codes = c
            .as_materialized_series()
            .cat32()
            .expect("categorical")
            .physical()
            .clone();
        let text = c.cast(&DataType::String).expect("as text");
        let text: Vec<Option<String>> = text
            .str()
            .expect("text")
            .iter()
            .map(|v| v.map(str::to_string))
            .collect();
        codes.iter().zip(text).collect::<Vec<_>>()
    };
    let product_code: std::collections::HashMap<String, u32> = codes_and_text(&t.products)
        .into_iter()
        .filter_map(|(code, id)| Some((id?, code?)))
        .collect();
    let mut met = 0;
    for (code, id) in codes_and_text(&t.order_items) {
        if let (Some(code), Some(id)) = (code, id)
            && let Some(&p) = product_code.get(&id)
        {
            assert_eq!(code, p, "line product {id}");
            met += 1;
        }
    }
    assert!(met > 0, "lines of known products");
    let out = tempfile::tempdir().expect("out");
    analytics_lib::data::write_tables(&t, out.path()).expect("write");
    for spec in TABLES {
        let file = fs::File::open(out.path().join(format!("{}.parquet", spec.name))).expect("open");
        let schema = ParquetReader::new(file).schema().expect("schema");
        for c in spec.columns {
            let stored = DataType::from_arrow_field(schema.get(c.name).expect(c.name));
            assert_eq!(stored, c.ty.dtype(), "{}.{} as written", spec.name, c.name);
        }
    }
    let back = load(out.path()).expect("load").collect().expect("collect");
    assert!(back.orders.equals_missing(&t.orders), "round trip");
    assert!(back.customers.equals_missing(&t.customers), "round trip");
}

/// Files whose text columns are dictionary-typed (a pandas `category`, a
/// categorical written by polars) are read as text columns are, key
/// columns included.
#[test]
fn dictionary_typed_text_columns_are_accepted() {
    let (_dir, path) = tiny_parquet();
    let expected = load(&path).expect("load").collect().expect("collect");
    let mut orders = tiny()
        .orders
        .lazy()
        .with_columns([
            col("order_id").cast(DataType::from_categories(Categories::random(
                "elsewhere".into(),
                CategoricalPhysical::U32,
            ))),
            col("channel").cast(DataType::from_categories(Categories::global())),
        ])
        .collect()
        .expect("as categoricals");
    assert!(matches!(
        orders.column("order_id").expect("id").dtype(),
        DataType::Categorical(..)
    ));
    write_parquet(&path, "orders", &mut orders);
    let t = load(&path).expect("load").collect().expect("collect");
    assert_eq!(
        t.orders.column("order_id").expect("id").dtype(),
        &DataType::String
    );
    assert!(t.orders.equals_missing(&expected.orders));
}

#[test]
fn missing_directory() {
    let msg = load_err(std::path::Path::new("/nonexistent/curated"));
    assert_mentions(&msg, &["/nonexistent/curated", "does not exist"]);
}

#[test]
fn missing_table() {
    let (_dir, path) = tiny_parquet();
    fs::remove_file(path.join("orders.parquet")).expect("rm");
    let msg = load_err(&path);
    assert_mentions(
        &msg,
        &["orders", "not found", "orders.parquet", "customers.parquet"],
    );
}

#[test]
fn missing_column() {
    let (_dir, path) = tiny_parquet();
    let mut df = tiny().orders.drop("channel").expect("drop");
    write_parquet(&path, "orders", &mut df);
    let msg = load_err(&path);
    assert_mentions(
        &msg,
        &["orders", "channel", "missing", "string", "order_id"],
    );
}

#[test]
fn wrong_type() {
    let (_dir, path) = tiny_parquet();
    // order_ts as text instead of a timestamp.
    let mut df = tiny()
        .orders
        .lazy()
        .with_column(col("order_ts").cast(DataType::String))
        .collect()
        .expect("cast");
    write_parquet(&path, "orders", &mut df);
    let msg = load_err(&path);
    assert_mentions(&msg, &["orders", "order_ts", "str", "expected timestamp"]);
}

#[test]
fn time_zone_aware_timestamp_is_rejected() {
    let (_dir, path) = tiny_parquet();
    let mut df = tiny().orders;
    let us: Vec<i64> = df
        .column("order_ts")
        .expect("ts")
        .datetime()
        .expect("datetime")
        .physical()
        .iter()
        .flatten()
        .collect();
    let n = us.len();
    let utc = Int64Chunked::from_vec("order_ts".into(), us)
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    df.replace("order_ts", utc.into_column()).expect("replace");
    assert_eq!(df.height(), n);
    write_parquet(&path, "orders", &mut df);
    let msg = load_err(&path);
    assert_mentions(&msg, &["order_ts", "time zone UTC", "no time zone"]);
}

#[test]
fn corrupt_file() {
    let (_dir, path) = tiny_parquet();
    fs::write(path.join("products.parquet"), b"this is not parquet at all").expect("write");
    let msg = load_err(&path);
    assert_mentions(
        &msg,
        &[
            "products",
            "products.parquet",
            "expected a valid Parquet file",
        ],
    );
}

#[test]
fn truncated_file() {
    let (_dir, path) = tiny_parquet();
    let file = path.join("order_items.parquet");
    let bytes = fs::read(&file).expect("read");
    fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
    let msg = load_err(&path);
    assert_mentions(&msg, &["order_items", "expected a valid Parquet file"]);
}

#[test]
fn empty_table() {
    let (_dir, path) = tiny_parquet();
    let mut df = tiny().customers.head(Some(0));
    write_parquet(&path, "customers", &mut df);
    let msg = load_err(&path);
    assert_mentions(&msg, &["customers", "empty", "at least one row", "0 rows"]);
}

#[test]
fn part_files_extra_columns_and_compatible_types() {
    let (_dir, path) = tiny_parquet();
    let lines = tiny().order_items;
    fs::remove_file(path.join("order_items.parquet")).expect("rm");
    let parts = path.join("order_items");
    fs::create_dir(&parts).expect("mkdir");
    // Two part files; line_no as int64 and an extra column, both fine.
    let widened = lines
        .lazy()
        .with_columns([
            col("line_no").cast(DataType::Int64),
            lit("extra").alias("ingested_by"),
        ])
        .collect()
        .expect("widen");
    let mut a = widened.slice(0, 10);
    let mut b = widened.slice(10, 100);
    write_parquet(&parts, "part-0000", &mut a);
    write_parquet(&parts, "part-0001", &mut b);
    let t = load(&path).expect("load").collect().expect("collect");
    assert_eq!(t.order_items.height(), 30);
    assert_eq!(t.order_items.width(), 6, "extra column dropped");
    assert_eq!(
        t.order_items.column("line_no").expect("line_no").dtype(),
        &DataType::Int32
    );
}

#[test]
fn empty_part_folder() {
    let (_dir, path) = tiny_parquet();
    fs::remove_file(path.join("products.parquet")).expect("rm");
    fs::create_dir(path.join("products")).expect("mkdir");
    let msg = load_err(&path);
    assert_mentions(&msg, &["products", "no .parquet files"]);
}
