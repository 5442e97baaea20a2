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
