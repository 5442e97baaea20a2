//! Final cleaning ("limpeza final"): the last gate between the curated layer
//! and every analysis.
//!
//! Curated data is never perfectly clean. This step finds each kind of defect
//! the contract names, counts it, and applies one documented action. Nothing
//! is dropped without being counted, and the input frames are never modified:
//! cleaning returns new frames plus a [`CleaningReport`].
//!
//! Rules are checked in a fixed order and a row is counted once, under the
//! first rule it breaks:
//!
//! | table | kind | rule | action |
//! |---|---|---|---|
//! | every table | `<table>_null_required` | a required column is null | row removed |
//! | customers | `duplicate_customers` | `customer_id` seen before | later copies removed, first kept |
//! | products | `products_non_positive_price` | `list_price` ≤ 0 or not finite | product removed (its lines become unknown-product lines) |
//! | products | `duplicate_products` | `product_id` seen before | later copies removed |
//! | orders | `orders_invalid_status` | status not completed/canceled/returned | order removed |
//! | orders | `orders_invalid_channel` | channel not web/app/store | order removed |
//! | orders | `duplicate_orders` | `order_id` seen before | later copies removed |
//! | orders | `orders_unknown_customer` | customer not in customers | order removed |
//! | order_items | `duplicate_order_lines` | (`order_id`, `line_no`) seen before | later copies removed |
//! | order_items | `lines_unknown_order` | order not in orders at all | line removed |
//! | order_items | `lines_of_rejected_orders` | order removed by a rule above | line removed |
//! | order_items | `lines_unknown_product` | product not in products | line removed |
//! | order_items | `lines_non_positive_quantity` | quantity ≤ 0 | line removed |
//! | order_items | `lines_non_positive_price` | unit price ≤ 0 or not finite | line removed |
//! | order_items | `lines_discount_out_of_range` | discount outside [0, 1) | line removed |
//! | orders | `orders_without_lines` | the order has no line in the input | order removed |
//! | orders | `orders_without_valid_lines` | every line of the order was removed | order removed |
//!
//! Status and channel values are compared after trimming and lower-casing,
//! and are written back normalised.

use std::collections::BTreeMap;
use std::fmt;

use polars::prelude::*;
use serde::Serialize;

use crate::contract::{CHANNELS, CUSTOMERS, ORDER_ITEMS, ORDERS, PRODUCTS, STATUSES, TableSpec};
use crate::data::loader::CuratedFrames;
use crate::error::{DataError, Result};

const REASON: &str = "__reason";

/// One defect kind found by cleaning.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DefectCount {
    pub kind: &'static str,
    pub table: &'static str,
    pub rows: u64,
    pub action: &'static str,
}

/// Rows in and out of cleaning for one table.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct RowCounts {
    pub input: u64,
    pub output: u64,
}

/// What cleaning found and did. Every defect kind is listed, found or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleaningReport {
    pub defects: Vec<DefectCount>,
    pub rows: BTreeMap<&'static str, RowCounts>,
}

impl CleaningReport {
    /// Count for one defect kind (0 when not found).
    pub fn count(&self, kind: &str) -> u64 {
        self.defects
            .iter()
            .find(|d| d.kind == kind)
            .map(|d| d.rows)
            .unwrap_or(0)
    }

    /// Total defective rows found.
    pub fn total_defects(&self) -> u64 {
        self.defects.iter().map(|d| d.rows).sum()
    }

    /// The report as JSON: `{ "<defect kind>": count, …, "rows": {table:
    /// {input, output}}, "actions": {kind: action} }`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for d in &self.defects {
            map.insert(d.kind.to_string(), serde_json::Value::from(d.rows));
        }
        map.insert(
            "rows".into(),
            serde_json::to_value(&self.rows).unwrap_or_default(),
        );
        let actions: serde_json::Map<String, serde_json::Value> = self
            .defects
            .iter()
            .map(|d| (d.kind.to_string(), serde_json::Value::from(d.action)))
            .collect();
        map.insert("actions".into(), serde_json::Value::Object(actions));
        serde_json::Value::Object(map)
    }
}

impl fmt::Display for CleaningReport {
    /// A readable table: rows per table, then every defect kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Final cleaning report")?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<12} {:>12} {:>12} {:>10}",
            "table", "rows in", "rows out", "removed"
        )?;
        for (table, rc) in &self.rows {
            writeln!(
                f,
                "{:<12} {:>12} {:>12} {:>10}",
                table,
                rc.input,
                rc.output,
                rc.input - rc.output
            )?;
        }
        writeln!(f)?;
        writeln!(f, "{:<30} {:<12} {:>8}  action", "defect", "table", "rows")?;
        for d in &self.defects {
            writeln!(
                f,
                "{:<30} {:<12} {:>8}  {}",
                d.kind, d.table, d.rows, d.action
            )?;
        }
        write!(f, "{:<30} {:<12} {:>8}", "total", "", self.total_defects())
    }
}

/// The result of cleaning: clean tables and the report.
#[derive(Debug, Clone)]
pub struct Cleaned {
    pub frames: CuratedFrames,
    pub report: CleaningReport,
}

struct Rule {
    kind: &'static str,
    action: &'static str,
    condition: Expr,
}

fn rule(kind: &'static str, action: &'static str, condition: Expr) -> Rule {
    Rule {
        kind,
        action,
        condition,
    }
}

fn null_rule(spec: &TableSpec, kind: &'static str) -> Rule {
    let cond = spec
        .columns
        .iter()
        .filter(|c| !c.nullable)
        .map(|c| col(c.name).is_null())
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    rule(kind, "row removed", cond)
}

fn first_seen(key: &[&str]) -> Expr {
    if key.len() == 1 {
        col(key[0]).is_first_distinct()
    } else {
        as_struct(key.iter().map(|k| col(*k)).collect()).is_first_distinct()
    }
}

fn duplicate_rule(spec: &TableSpec, kind: &'static str) -> Rule {
    rule(
        kind,
        "later copies removed, first occurrence kept",
        first_seen(spec.key).not(),
    )
}

fn one_of(column: &str, values: &[&str]) -> Expr {
    let s = Series::new("values".into(), values);
    col(column).is_in(lit(s).implode(false), false)
}

/// Tag each row with the first rule it breaks, count per rule, keep the rest.
fn apply_rules(
    table: &'static str,
    lf: LazyFrame,
    rules: Vec<Rule>,
    found: &mut Vec<DefectCount>,
) -> Result<DataFrame> {
    let mut reason: Option<Expr> = None;
    for r in rules.iter().rev() {
        reason = Some(match reason {
            None => when(r.condition.clone())
                .then(lit(r.kind))
                .otherwise(lit(NULL).cast(DataType::String)),
            Some(rest) => when(r.condition.clone()).then(lit(r.kind)).otherwise(rest),
        });
    }
    let Some(reason) = reason else {
        return lf.collect().map_err(DataError::polars(table, "cleaning"));
    };
    let tagged = lf
        .with_column(reason.alias(REASON))
        .collect()
        .map_err(DataError::polars(table, "checking the cleaning rules"))?;
    let reasons = tagged
        .column(REASON)
        .and_then(|c| c.str().cloned())
        .map_err(DataError::polars(table, "reading the cleaning tags"))?;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for r in reasons.iter().flatten() {
        *counts.entry(r).or_default() += 1;
    }
    for r in &rules {
        found.push(DefectCount {
            kind: r.kind,
            table,
            rows: counts.get(r.kind).copied().unwrap_or(0),
            action: r.action,
        });
    }
    let keep = tagged
        .column(REASON)
        .map_err(DataError::polars(table, "reading the cleaning tags"))?
        .is_null();
    tagged
        .filter(&keep)
        .and_then(|df| df.drop(REASON))
        .map_err(DataError::polars(table, "removing defective rows"))
}

fn left_join_flag(lf: LazyFrame, keys: LazyFrame, on: &str, flag: &str) -> LazyFrame {
    let keys = keys
        .select([col(on)])
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit(true).alias(flag));
    let args = JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    lf.join(keys, [col(on)], [col(on)], args)
}

/// Run final cleaning on the four tables.
pub fn clean(data: &CuratedFrames) -> Result<Cleaned> {
    let mut found = Vec::new();
    let mut rows = BTreeMap::new();

    // Customers.
    let customers = apply_rules(
        "customers",
        data.customers.clone().lazy(),
        vec![
            null_rule(&CUSTOMERS, "customers_null_required"),
            duplicate_rule(&CUSTOMERS, "duplicate_customers"),
        ],
        &mut found,
    )?;

    // Products.
    let products = apply_rules(
        "products",
        data.products.clone().lazy(),
        vec![
            null_rule(&PRODUCTS, "products_null_required"),
            rule(
                "products_non_positive_price",
                "product removed; its lines count as unknown product",
                col("list_price")
                    .gt(lit(0.0))
                    .and(col("list_price").is_finite())
                    .not(),
            ),
            duplicate_rule(&PRODUCTS, "duplicate_products"),
        ],
        &mut found,
    )?;

    // Orders: normalise the enumerations, then check them.
    let normalise = |name: &str| {
        col(name)
            .str()
            .strip_chars(lit(NULL))
            .str()
            .to_lowercase()
            .alias(name)
    };
    let orders_in = data
        .orders
        .clone()
        .lazy()
        .with_columns([normalise("status"), normalise("channel")]);
    let is_status = one_of("status", &STATUSES);
    let is_channel = one_of("channel", &CHANNELS);
    let customer_ids = customers.clone().lazy();
    let orders_checked = apply_rules(
        "orders",
        left_join_flag(orders_in, customer_ids, "customer_id", "__customer_known"),
        vec![
            null_rule(&ORDERS, "orders_null_required"),
            rule("orders_invalid_status", "order removed", is_status.not()),
            rule("orders_invalid_channel", "order removed", is_channel.not()),
            duplicate_rule(&ORDERS, "duplicate_orders"),
            rule(
                "orders_unknown_customer",
                "order removed",
                col("__customer_known").is_null(),
            ),
        ],
        &mut found,
    )?
    .drop("__customer_known")
    .map_err(DataError::polars("orders", "cleaning"))?;

    // Order lines.
    // Every order id of the input, flagged when its order survived the rules
    // above: one join of the lines instead of two.
    let order_status = left_join_flag(
        data.orders
            .clone()
            .lazy()
            .select([col("order_id")])
            .unique(None, UniqueKeepStrategy::Any),
        orders_checked.clone().lazy(),
        "order_id",
        "__order_ok",
    )
    .with_column(lit(true).alias("__order_known"));
    let args = JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    let lines_in = data.order_items.clone().lazy().join(
        order_status,
        [col("order_id")],
        [col("order_id")],
        args,
    );
    let lines_in = left_join_flag(
        lines_in,
        products.clone().lazy(),
        "product_id",
        "__product_ok",
    );
    let discount_ok = col("discount")
        .gt_eq(lit(0.0))
        .and(col("discount").lt(lit(1.0)));
    let order_items = apply_rules(
        "order_items",
        lines_in,
        vec![
            null_rule(&ORDER_ITEMS, "order_items_null_required"),
            duplicate_rule(&ORDER_ITEMS, "duplicate_order_lines"),
            rule(
                "lines_unknown_order",
                "line removed",
                col("__order_known").is_null(),
            ),
            rule(
                "lines_of_rejected_orders",
                "line removed with its order",
                col("__order_ok").is_null(),
            ),
            rule(
                "lines_unknown_product",
                "line removed",
                col("__product_ok").is_null(),
            ),
            rule(
                "lines_non_positive_quantity",
                "line removed",
                col("quantity").lt_eq(lit(0)),
            ),
            rule(
                "lines_non_positive_price",
                "line removed",
                col("unit_price")
                    .gt(lit(0.0))
                    .and(col("unit_price").is_finite())
                    .not(),
            ),
            rule(
                "lines_discount_out_of_range",
                "line removed",
                discount_ok.not(),
            ),
        ],
        &mut found,
    )?
    .drop_many(["__order_known", "__order_ok", "__product_ok"]);

    // Orders left without lines.
    let orders_checked = left_join_flag(
        orders_checked.lazy(),
        data.order_items.clone().lazy(),
        "order_id",
        "__had_lines",
    );
    let orders_checked = left_join_flag(
        orders_checked,
        order_items.clone().lazy(),
        "order_id",
        "__has_lines",
    );
    let orders = apply_rules(
        "orders",
        orders_checked,
        vec![
            rule(
                "orders_without_lines",
                "order removed",
                col("__had_lines").is_null(),
            ),
            rule(
                "orders_without_valid_lines",
                "order removed",
                col("__has_lines").is_null(),
            ),
        ],
        &mut found,
    )?
    .drop_many(["__had_lines", "__has_lines"]);

    let frames = CuratedFrames {
        customers,
        products,
        orders,
        order_items,
    };
    for ((table, out), (_, input)) in frames.row_counts().into_iter().zip(data.row_counts()) {
        rows.insert(
            table,
            RowCounts {
                input: input as u64,
                output: out as u64,
            },
        );
    }
    Ok(Cleaned {
        frames,
        report: CleaningReport {
            defects: found,
            rows,
        },
    })
}
