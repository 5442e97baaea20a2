//! Final cleaning as SQL: the rules of [`crate::clean`] restated once as
//! common table expressions over the four warehouse tables, so that every
//! pushed-down query reads cleaned data and the warehouse can report what
//! it removed.
//!
//! The rule list (kind, table, action, order) is [`crate::clean::PASSES`];
//! this module pairs each entry with its SQL condition by position (the
//! arrays have the length of the rule lists, so a rule added there without
//! its SQL here does not compile). Each table gets a `tag_<table>` CTE that
//! gives every input row the code of the **first** rule it breaks (0: none,
//! `i + 1`: rule `i`), exactly like the polars code's one-byte rule code,
//! and a `clean_<table>` CTE of the rows with code 0:
//!
//! ```text
//! src_customers   ─▶ tag_customers   ─▶ clean_customers
//! src_products    ─▶ tag_products    ─▶ clean_products
//! src_orders      ─▶ tag_orders      ─▶ pass1_orders   (customer known)
//! src_order_items ─▶ tag_order_items ─▶ clean_order_items (order in src / pass1, product known)
//! pass1_orders    ─▶ tag2_orders     ─▶ clean_orders   (lines in src / clean; status, channel normalised)
//! lines = clean_order_items ⋈ clean_orders ⟕ clean_products ⟕ clean_customers
//! ```
//!
//! Two differences a warehouse imposes, both immaterial on real defects:
//!
//! * "first copy of a duplicate key kept": a table has no row order, so the
//!   copies are ranked by all their columns (`ROW_NUMBER() OVER (PARTITION
//!   BY key ORDER BY every column)`). Duplicate rows are copies of one row
//!   (a load run twice), so which one is kept changes nothing; copies that
//!   differ elsewhere may keep another copy than the Parquet path, which
//!   keeps the first in file order.
//! * status and channel are normalised with `LOWER(TRIM(…))`, which trims
//!   spaces; polars trims every kind of white space.
//!
//! Line revenue is `quantity × unit_price × (1 − discount)` in DOUBLE, then
//! held as `DECIMAL(38, 10)`, so that every sum over it is exact and does
//! not depend on the order in which the warehouse adds (the same data gives
//! the same aggregates on every run). Sums are sent back as DOUBLE.

use std::fmt::Write as _;

use super::snowflake::quote;
use crate::clean::{
    CUSTOMER_RULES, CleaningReport, DefectCount, LINE_RULES, ORDER_LINE_RULES, ORDER_RULES, PASSES,
    PRODUCT_RULES, RowCounts, RuleSpec,
};
use crate::contract::{CHANNELS, CUSTOMERS, ORDER_ITEMS, ORDERS, PRODUCTS, STATUSES, TableSpec};

/// The SQL type line revenue is summed in (exact sums).
pub const MONEY: &str = "DECIMAL(38, 10)";

/// `expr` as an exact money value.
pub fn money(expr: &str) -> String {
    format!("CAST({expr} AS {MONEY})")
}

/// `SUM(expr)` sent back as DOUBLE.
pub fn sum_f64(expr: &str) -> String {
    format!("CAST(SUM({expr}) AS DOUBLE)")
}

fn columns(spec: &TableSpec) -> String {
    spec.column_names().join(", ")
}

fn null_condition(spec: &TableSpec) -> String {
    let parts: Vec<String> = spec
        .columns
        .iter()
        .filter(|c| !c.nullable)
        .map(|c| format!("{} IS NULL", c.name))
        .collect();
    if parts.is_empty() {
        "FALSE".into()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

/// Later copies of a key: ranked by every column, the first is kept.
fn duplicate_condition(spec: &TableSpec) -> String {
    format!(
        "ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {}) > 1",
        spec.key.join(", "),
        columns(spec)
    )
}

/// Not a positive finite number (NaN sorts above +inf in Snowflake and
/// DuckDB, so `< inf` also refuses it).
fn not_positive_finite(column: &str) -> String {
    format!("NOT ({column} > 0 AND {column} < CAST('inf' AS DOUBLE))")
}

fn normalised(column: &str) -> String {
    format!("LOWER(TRIM({column}))")
}

fn not_one_of(expr: &str, values: &[&str]) -> String {
    let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!("{expr} NOT IN ({})", list.join(", "))
}

/// `column` is not among the (non-null) `key`s of `from`.
fn unknown(column: &str, key: &str, from: &str) -> String {
    format!("{column} NOT IN (SELECT {key} FROM {from} WHERE {key} IS NOT NULL)")
}

/// The code of the first rule broken (`CASE WHEN … THEN i + 1 … ELSE 0`).
fn first_broken<const N: usize>(specs: &[RuleSpec; N], conditions: [String; N]) -> String {
    let mut s = String::from("CASE");
    for (i, (_, c)) in specs.iter().zip(conditions).enumerate() {
        let _ = write!(s, " WHEN {c} THEN {}", i + 1);
    }
    s.push_str(" ELSE 0 END");
    s
}

/// The cleaning CTEs and the `lines` view (the SQL twin of
/// [`crate::kpi::Sales`]), as `WITH` items: `WITH {cleaning_ctes()} SELECT …`.
pub fn cleaning_ctes() -> String {
    let customers = first_broken(
        &CUSTOMER_RULES,
        [null_condition(&CUSTOMERS), duplicate_condition(&CUSTOMERS)],
    );
    let products = first_broken(
        &PRODUCT_RULES,
        [
            null_condition(&PRODUCTS),
            not_positive_finite("list_price"),
            duplicate_condition(&PRODUCTS),
        ],
    );
    let orders = first_broken(
        &ORDER_RULES,
        [
            null_condition(&ORDERS),
            not_one_of(&normalised("status"), &STATUSES),
            not_one_of(&normalised("channel"), &CHANNELS),
            duplicate_condition(&ORDERS),
            unknown("customer_id", "customer_id", "clean_customers"),
        ],
    );
    let lines = first_broken(
        &LINE_RULES,
        [
            null_condition(&ORDER_ITEMS),
            duplicate_condition(&ORDER_ITEMS),
            unknown("order_id", "order_id", "src_orders"),
            unknown("order_id", "order_id", "pass1_orders"),
            unknown("product_id", "product_id", "clean_products"),
            "quantity <= 0".into(),
            not_positive_finite("unit_price"),
            "NOT (discount >= 0 AND discount < 1)".into(),
        ],
    );
    let orders2 = first_broken(
        &ORDER_LINE_RULES,
        [
            unknown("order_id", "order_id", "src_order_items"),
            unknown("order_id", "order_id", "clean_order_items"),
        ],
    );
    let (c, p, o, i) = (
        columns(&CUSTOMERS),
        columns(&PRODUCTS),
        columns(&ORDERS),
        columns(&ORDER_ITEMS),
    );
    format!(
        "src_customers AS (SELECT {c} FROM customers), \
tag_customers AS (SELECT {c}, {customers} AS rule_code FROM src_customers), \
clean_customers AS (SELECT {c} FROM tag_customers WHERE rule_code = 0), \
src_products AS (SELECT {p} FROM products), \
tag_products AS (SELECT {p}, {products} AS rule_code FROM src_products), \
clean_products AS (SELECT {p} FROM tag_products WHERE rule_code = 0), \
src_orders AS (SELECT {o} FROM orders), \
tag_orders AS (SELECT {o}, {orders} AS rule_code FROM src_orders), \
pass1_orders AS (SELECT {o} FROM tag_orders WHERE rule_code = 0), \
src_order_items AS (SELECT {i} FROM order_items), \
tag_order_items AS (SELECT {i}, {lines} AS rule_code FROM src_order_items), \
clean_order_items AS (SELECT {i} FROM tag_order_items WHERE rule_code = 0), \
tag2_orders AS (SELECT {o}, {orders2} AS rule_code FROM pass1_orders), \
clean_orders AS (SELECT order_id, customer_id, order_ts, {channel} AS channel, payment_type, \
{status} AS status FROM tag2_orders WHERE rule_code = 0), \
lines AS (SELECT i.order_id AS order_id, o.customer_id AS customer_id, o.order_ts AS order_ts, \
CAST(o.order_ts AS DATE) AS order_date, o.channel AS channel, o.payment_type AS payment_type, \
o.status AS status, i.line_no AS line_no, i.product_id AS product_id, p.category AS category, \
c.state AS state, {revenue} AS revenue \
FROM clean_order_items i \
JOIN clean_orders o ON o.order_id = i.order_id \
LEFT JOIN clean_products p ON p.product_id = i.product_id \
LEFT JOIN clean_customers c ON c.customer_id = o.customer_id)",
        channel = normalised("channel"),
        status = normalised("status"),
        revenue = money("CAST(i.quantity AS DOUBLE) * i.unit_price * (1 - i.discount)"),
    )
}

/// The tagged CTE of each pass, in [`PASSES`] order.
pub(super) const TAGGED: [&str; 5] = [
    "tag_customers",
    "tag_products",
    "tag_orders",
    "tag_order_items",
    "tag2_orders",
];

/// One row per (pass, rule code) with its row count: `pass` (index into
/// [`PASSES`]), `rule` (0: kept), `rows`.
pub fn report_sql() -> String {
    let parts: Vec<String> = TAGGED
        .iter()
        .enumerate()
        .map(|(pass, t)| {
            format!(
                "SELECT {pass} AS \"pass\", rule_code AS \"rule\", COUNT(*) AS \"rows\" \
FROM {t} GROUP BY rule_code"
            )
        })
        .collect();
    format!("WITH {} {}", cleaning_ctes(), parts.join(" UNION ALL "))
}

/// The cleaning report from the (pass, rule, rows) counts of
/// [`report_sql`]: the same kinds, order and row counts as
/// [`crate::clean::clean`] gives on the same tables.
pub fn report_from_counts(counts: &[(usize, usize, u64)]) -> CleaningReport {
    let count = |pass: usize, rule: usize| -> u64 {
        counts
            .iter()
            .filter(|(p, r, _)| *p == pass && *r == rule)
            .map(|(_, _, n)| n)
            .sum()
    };
    let total = |pass: usize| -> u64 {
        counts
            .iter()
            .filter(|(p, _, _)| *p == pass)
            .map(|(_, _, n)| n)
            .sum()
    };
    let mut defects = Vec::new();
    for (pass, rules) in PASSES.iter().enumerate() {
        for (i, r) in rules.iter().enumerate() {
            defects.push(DefectCount {
                kind: r.kind,
                table: r.table,
                rows: count(pass, i + 1),
                action: r.action,
            });
        }
    }
    let rows = [
        ("customers", total(0), count(0, 0)),
        ("products", total(1), count(1, 0)),
        // Orders: the input of the first pass, the output of the second.
        ("orders", total(2), count(4, 0)),
        ("order_items", total(3), count(3, 0)),
    ]
    .into_iter()
    .map(|(t, input, output)| (t, RowCounts { input, output }))
    .collect();
    CleaningReport { defects, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_of_clean_rs_has_its_sql_in_the_same_order() {
        let sql = cleaning_ctes();
        // One WHEN per rule, numbered from 1 in each tagged CTE.
        for (pass, rules) in PASSES.iter().enumerate() {
            let name = TAGGED[pass];
            let start = sql.find(&format!("{name} AS (")).expect(name);
            let body = &sql[start..];
            let end = body.find(" AS rule_code").expect("rule code");
            let case = &body[..end];
            for i in 1..=rules.len() {
                assert!(case.contains(&format!("THEN {i} ")), "{name}: rule {i}");
            }
            assert!(
                !case.contains(&format!("THEN {} ", rules.len() + 1)),
                "{name}"
            );
        }
        assert!(sql.contains("ROW_NUMBER() OVER (PARTITION BY order_id, line_no ORDER BY"));
        assert!(sql.contains("LOWER(TRIM(status)) NOT IN ('completed', 'canceled', 'returned')"));
    }

    #[test]
    fn the_report_counts_each_rule_and_the_rows_in_and_out() {
        // customers: 10 in, 1 null, 1 duplicate; orders: 22 in, 3 removed in
        // the first pass, 2 in the second.
        let counts = [
            (0, 0, 8),
            (0, 1, 1),
            (0, 2, 1),
            (1, 0, 6),
            (2, 0, 19),
            (2, 2, 3),
            (3, 0, 20),
            (4, 0, 17),
            (4, 1, 2),
        ];
        let r = report_from_counts(&counts);
        assert_eq!(r.count("customers_null_required"), 1);
        assert_eq!(r.count("orders_invalid_status"), 3);
        assert_eq!(r.count("orders_without_lines"), 2);
        assert_eq!(
            r.rows["customers"],
            RowCounts {
                input: 10,
                output: 8
            }
        );
        assert_eq!(
            r.rows["orders"],
            RowCounts {
                input: 22,
                output: 17
            }
        );
        let kinds: Vec<&str> = r.defects.iter().map(|d| d.kind).collect();
        let expected: Vec<&str> = PASSES
            .iter()
            .flat_map(|p| p.iter().map(|r| r.kind))
            .collect();
        assert_eq!(kinds, expected);
    }
}
