//! Final cleaning on the hand-written fixture, whose report is worked out by
//! hand in `data/fixtures/tiny/README.md`.

use analytics_lib::clean::{RowCounts, clean};
use analytics_lib::data::load;
use analytics_lib::polars::prelude::*;

use crate::helpers::{tiny, tiny_parquet};

#[test]
fn fixture_report_matches_the_hand_count() {
    let (_dir, path) = tiny_parquet();
    let tables = load(&path).expect("load").collect().expect("collect");
    let cleaned = clean(&tables).expect("clean");
    let r = &cleaned.report;

    let expected = [
        ("customers_null_required", 1),
        ("duplicate_customers", 1),
        ("products_null_required", 0),
        ("products_non_positive_price", 1),
        ("duplicate_products", 1),
        ("orders_null_required", 0),
        ("orders_invalid_status", 1),
        ("orders_invalid_channel", 0),
        ("duplicate_orders", 1),
        ("orders_unknown_customer", 1),
        ("order_items_null_required", 0),
        ("duplicate_order_lines", 1),
        ("lines_unknown_order", 1),
        ("lines_of_rejected_orders", 2),
        ("lines_unknown_product", 2),
        ("lines_non_positive_quantity", 1),
        ("lines_non_positive_price", 1),
        ("lines_discount_out_of_range", 2),
        ("orders_without_lines", 1),
        ("orders_without_valid_lines", 1),
    ];
    let found: Vec<(&str, u64)> = r.defects.iter().map(|d| (d.kind, d.rows)).collect();
    assert_eq!(found, expected.to_vec(), "every kind, in rule order");

    let rows = |t: &str| r.rows[t];
    assert_eq!(
        rows("customers"),
        RowCounts {
            input: 10,
            output: 8
        }
    );
    assert_eq!(
        rows("products"),
        RowCounts {
            input: 7,
            output: 5
        }
    );
    assert_eq!(
        rows("orders"),
        RowCounts {
            input: 22,
            output: 17
        }
    );
    assert_eq!(
        rows("order_items"),
        RowCounts {
            input: 30,
            output: 20
        }
    );
}

#[test]
fn nothing_is_dropped_without_being_counted() {
    let tables = tiny();
    let cleaned = clean(&tables).expect("clean");
    let r = &cleaned.report;
    for (table, rc) in &r.rows {
        let counted: u64 = r
            .defects
            .iter()
            .filter(|d| d.table == *table)
            .map(|d| d.rows)
            .sum();
        assert_eq!(
            rc.input - rc.output,
            counted,
            "{table}: removed rows vs counted defects"
        );
    }
}

#[test]
fn input_is_not_modified_and_output_is_clean() {
    let tables = tiny();
    let before = tables.clone();
    let cleaned = clean(&tables).expect("clean");
    assert!(before.orders.equals_missing(&tables.orders));
    assert!(before.order_items.equals_missing(&tables.order_items));

    // Cleaning clean data finds nothing.
    let again = clean(&cleaned.frames).expect("clean twice");
    assert_eq!(again.report.total_defects(), 0, "{}", again.report);

    // Normalised enumerations: o17 was `WEB ` / `Completed`.
    let o17 = cleaned
        .frames
        .orders
        .clone()
        .lazy()
        .filter(col("order_id").eq(lit("o17")))
        .collect()
        .expect("o17");
    assert_eq!(o17.height(), 1);
    let get = |c: &str| {
        o17.column(c)
            .expect("column")
            .cast(&DataType::String)
            .expect("as text")
            .str()
            .expect("string")
            .get(0)
            .map(str::to_string)
    };
    assert_eq!(get("channel").as_deref(), Some("web"));
    assert_eq!(get("status").as_deref(), Some("completed"));
}

#[test]
fn report_json_has_counts_rows_and_actions() {
    let cleaned = clean(&tiny()).expect("clean");
    let json = cleaned.report.to_json();
    assert_eq!(json["duplicate_orders"], 1);
    assert_eq!(json["lines_discount_out_of_range"], 2);
    assert_eq!(json["rows"]["order_items"]["input"], 30);
    assert_eq!(json["rows"]["order_items"]["output"], 20);
    assert!(
        json["actions"]["duplicate_orders"]
            .as_str()
            .is_some_and(|a| a.contains("first occurrence kept"))
    );
    let text = cleaned.report.to_string();
    assert!(
        text.contains("lines_unknown_product") && text.contains("order_items"),
        "{text}"
    );
}

/// The previous implementation of final cleaning and of the sales join,
/// written with polars expressions only (`is_first_distinct`, `is_in`
/// against the other table's ids, hash joins on the string ids), kept as the
/// oracle of the key-lookup implementation.
mod reference {
    use analytics_lib::contract::{CHANNELS, ORDER_ITEMS, ORDERS, STATUSES, TableSpec};
    use analytics_lib::data::CuratedFrames;
    use analytics_lib::polars::prelude::*;

    fn nulls(spec: &TableSpec) -> Expr {
        spec.columns
            .iter()
            .filter(|c| !c.nullable)
            .map(|c| col(c.name).is_null())
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false))
    }

    fn first_seen(key: &[&str]) -> Expr {
        if key.len() == 1 {
            col(key[0]).is_first_distinct()
        } else {
            as_struct(key.iter().map(|k| col(*k)).collect()).is_first_distinct()
        }
    }

    fn known(column: &str, keys: &Column) -> Expr {
        col(column).is_in(
            lit(keys.as_materialized_series().clone()).implode(false),
            false,
        )
    }

    fn one_of(e: Expr, values: &[&str]) -> Expr {
        e.is_in(lit(Series::new("v".into(), values)).implode(false), false)
    }

    fn normalised(name: &str) -> Expr {
        col(name)
            .cast(DataType::String)
            .str()
            .strip_chars(lit(NULL))
            .str()
            .to_lowercase()
    }

    /// Count each row under the first condition it meets; keep the others.
    fn apply(df: &DataFrame, rules: Vec<Expr>, counts: &mut Vec<u64>) -> DataFrame {
        let mut code = lit(0u32);
        for (i, r) in rules.iter().enumerate().rev() {
            code = when(r.clone()).then(lit(i as u32 + 1)).otherwise(code);
        }
        let tagged = df
            .clone()
            .lazy()
            .with_column(code.cast(DataType::UInt32).alias("__code"))
            .collect()
            .expect("rules");
        let codes = tagged
            .column("__code")
            .expect("code")
            .u32()
            .expect("u32")
            .clone();
        for i in 0..rules.len() {
            counts.push(codes.iter().filter(|c| *c == Some(i as u32 + 1)).count() as u64);
        }
        df.filter(&codes.equal(0)).expect("filter")
    }

    pub fn clean(data: &CuratedFrames) -> (CuratedFrames, Vec<u64>) {
        let mut counts = Vec::new();
        let c = apply(
            &data.customers,
            vec![
                nulls(&analytics_lib::contract::CUSTOMERS),
                first_seen(&["customer_id"]).not(),
            ],
            &mut counts,
        );
        let p = apply(
            &data.products,
            vec![
                nulls(&analytics_lib::contract::PRODUCTS),
                col("list_price")
                    .gt(lit(0.0))
                    .and(col("list_price").is_finite())
                    .not(),
                first_seen(&["product_id"]).not(),
            ],
            &mut counts,
        );
        let input_orders = data.orders.column("order_id").expect("ids").clone();
        let o = apply(
            &data.orders,
            vec![
                nulls(&ORDERS),
                one_of(normalised("status"), &STATUSES).not(),
                one_of(normalised("channel"), &CHANNELS).not(),
                first_seen(&["order_id"]).not(),
                known("customer_id", c.column("customer_id").expect("ids")).not(),
            ],
            &mut counts,
        );
        let l = apply(
            &data.order_items,
            vec![
                nulls(&ORDER_ITEMS),
                first_seen(&["order_id", "line_no"]).not(),
                known("order_id", &input_orders).not(),
                known("order_id", o.column("order_id").expect("ids")).not(),
                known("product_id", p.column("product_id").expect("ids")).not(),
                col("quantity").lt_eq(lit(0)),
                col("unit_price")
                    .gt(lit(0.0))
                    .and(col("unit_price").is_finite())
                    .not(),
                col("discount")
                    .gt_eq(lit(0.0))
                    .and(col("discount").lt(lit(1.0)))
                    .not(),
            ],
            &mut counts,
        );
        let o = apply(
            &o,
            vec![
                known(
                    "order_id",
                    data.order_items.column("order_id").expect("ids"),
                )
                .not(),
                known("order_id", l.column("order_id").expect("ids")).not(),
            ],
            &mut counts,
        );
        let o = o
            .lazy()
            .with_columns([
                normalised("status").alias("status"),
                normalised("channel").alias("channel"),
            ])
            .collect()
            .expect("normalise");
        (
            CuratedFrames {
                customers: c,
                products: p,
                orders: o,
                order_items: l,
            },
            counts,
        )
    }

    /// The sales lines by hash joins on the ids.
    pub fn join(clean: &CuratedFrames) -> DataFrame {
        let left = |how| JoinArgs {
            maintain_order: MaintainOrderJoin::Left,
            ..JoinArgs::new(how)
        };
        clean
            .order_items
            .clone()
            .lazy()
            .join(
                clean.orders.clone().lazy(),
                [col("order_id")],
                [col("order_id")],
                left(JoinType::Inner),
            )
            .join(
                clean
                    .products
                    .clone()
                    .lazy()
                    .select([col("product_id"), col("category")]),
                [col("product_id")],
                [col("product_id")],
                left(JoinType::Left),
            )
            .join(
                clean
                    .customers
                    .clone()
                    .lazy()
                    .select([col("customer_id"), col("state")]),
                [col("customer_id")],
                [col("customer_id")],
                left(JoinType::Left),
            )
            .select([
                col("order_id"),
                col("customer_id"),
                col("order_ts").dt().date().alias("order_date"),
                // The tables' few-valued columns are categorical once
                // loaded; the reference's view holds them as text.
                col("channel").cast(DataType::String),
                col("payment_type").cast(DataType::String),
                col("status").cast(DataType::String),
                col("status")
                    .cast(DataType::String)
                    .eq(lit("completed"))
                    .alias("completed"),
                col("line_no"),
                col("product_id").cast(DataType::String),
                col("category").cast(DataType::String),
                col("state").cast(DataType::String),
                col("quantity"),
                col("unit_price"),
                col("discount"),
                analytics_lib::kpi::line_revenue().alias("revenue"),
            ])
            .collect()
            .expect("join")
    }
}

/// Generated tables with many defects of every kind.
fn defective(lines: u64, seed: u64, defect_rate: f64) -> analytics_lib::data::CuratedFrames {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = analytics_lib::data::generate::GeneratorConfig {
        lines,
        seed,
        defect_rate,
        ..Default::default()
    };
    analytics_lib::data::generate::generate(&cfg, dir.path()).expect("generate");
    load(dir.path()).and_then(|d| d.collect()).expect("load")
}

#[test]
fn key_lookups_clean_and_join_as_the_polars_expressions_did() {
    use analytics_lib::kpi::{CATEGORICAL_COLUMNS, Sales};
    for (tables, what) in [
        (tiny(), "the fixture"),
        (defective(30_000, 3, 0.05), "generated, 5% defects"),
        (defective(20_000, 11, 0.0), "generated, clean"),
    ] {
        let cleaned = clean(&tables).expect("clean");
        let (frames, counts) = reference::clean(&tables);
        let found: Vec<u64> = cleaned.report.defects.iter().map(|d| d.rows).collect();
        assert_eq!(found, counts, "{what}: every count, in rule order");
        for ((name, a), (_, b)) in cleaned.frames.row_counts().iter().zip(frames.row_counts()) {
            assert_eq!(*a, b, "{what}: rows of {name}");
        }
        assert!(
            cleaned.frames.customers.equals_missing(&frames.customers),
            "{what}"
        );
        assert!(
            cleaned.frames.products.equals_missing(&frames.products),
            "{what}"
        );
        assert!(
            cleaned.frames.orders.equals_missing(&frames.orders),
            "{what}"
        );
        assert!(
            cleaned
                .frames
                .order_items
                .equals_missing(&frames.order_items),
            "{what}"
        );

        let expected = reference::join(&frames);
        let by_keys = Sales::join(&cleaned.frames, cleaned.keys().clone()).expect("join by keys");
        let by_lookup = Sales::from_frames(&cleaned.frames).expect("join by lookup");
        assert!(
            by_lookup.lines.equals_missing(&by_keys.lines),
            "{what}: join by lookup"
        );
        assert!(
            by_lookup.order_ids.iter().eq(by_keys.order_ids.iter()),
            "{what}: join by lookup, order ids"
        );
        // The lines hold their ids as codes only; with the ids looked up
        // from the codes they are the reference join's lines.
        for id in ["order_id", "customer_id"] {
            assert!(
                !by_keys.lines.schema().contains(id),
                "{what}: the lines carry {id} as text"
            );
        }
        let codes = ["customer_key", "order_key"];
        let without_codes = by_keys.lines_with_ids().expect("ids").drop_many(codes);
        // The few-valued text columns are categorical (4-byte codes); as
        // text they are the reference join's columns.
        for c in CATEGORICAL_COLUMNS {
            assert!(
                matches!(
                    without_codes.column(c).expect(c).dtype(),
                    DataType::Categorical(..)
                ),
                "{what}: {c} categorical"
            );
        }
        let without_codes = without_codes
            .lazy()
            .with_columns(CATEGORICAL_COLUMNS.map(|c| col(c).cast(DataType::String)))
            .collect()
            .expect("as text");
        assert_eq!(without_codes.schema(), expected.schema(), "{what}");
        assert!(
            without_codes.equals_missing(&expected),
            "{what}: join by keys"
        );

        // The codes: a line's customer_key is its customer's row in the
        // customers, sorted by id; order_key is one dense code per order.
        let ids = by_keys
            .customers
            .column("customer_id")
            .expect("ids")
            .str()
            .expect("str")
            .clone();
        let sorted: Vec<&str> = ids.iter().map(|v| v.expect("id")).collect();
        assert!(sorted.is_sorted(), "{what}: customers sorted by id");
        let line_customer = expected
            .column("customer_id")
            .expect("c")
            .str()
            .expect("str")
            .clone();
        let key = by_keys
            .lines
            .column("customer_key")
            .expect("k")
            .u32()
            .expect("u32")
            .clone();
        for (c, k) in line_customer.iter().zip(key.iter()) {
            assert_eq!(
                c,
                Some(sorted[k.expect("a known customer") as usize]),
                "{what}"
            );
        }
        let orders = expected
            .column("order_id")
            .expect("o")
            .str()
            .expect("str")
            .clone();
        let okey = by_keys
            .lines
            .column("order_key")
            .expect("k")
            .u32()
            .expect("u32")
            .clone();
        let mut code_of = std::collections::HashMap::new();
        for (o, k) in orders.iter().zip(okey.iter()) {
            let k = k.expect("an order code");
            assert_eq!(
                *code_of.entry(o).or_insert(k),
                k,
                "{what}: one code per order"
            );
            assert_eq!(
                by_keys.order_ids.get(k as usize),
                o,
                "{what}: the code's id"
            );
        }
        let mut codes: Vec<u32> = code_of.values().copied().collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            (0..codes.len() as u32).collect::<Vec<_>>(),
            "{what}: dense codes"
        );
    }
}
