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
//!
//! The rule list (kinds, tables, actions, order) lives once, in [`PASSES`];
//! the polars code here and the SQL of the Snowflake push-down
//! (`source::cleaning`) each pair it with their conditions, so both report
//! the same kinds in the same order.

use std::collections::BTreeMap;
use std::fmt;

use polars::prelude::*;
use serde::Serialize;

use crate::contract::{CHANNELS, CUSTOMERS, ORDER_ITEMS, ORDERS, PRODUCTS, STATUSES, TableSpec};
use crate::data::keys::{CodeIndex, KeyIndex, NONE};
use crate::data::loader::CuratedFrames;
use crate::error::{DataError, Result};

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
    /// How the clean tables' rows refer to each other, found while
    /// checking them: the join of the sales view reuses it.
    keys: JoinKeys,
}

impl Cleaned {
    /// The row numbers that join the clean tables (see [`JoinKeys`]).
    pub fn keys(&self) -> &JoinKeys {
        &self.keys
    }

    /// The clean tables, the report and the join keys, by value.
    pub fn into_parts(self) -> (CuratedFrames, CleaningReport, JoinKeys) {
        (self.frames, self.report, self.keys)
    }
}

/// Row numbers that join the clean tables: integer codes in place of the
/// string ids, found once by hash lookups ([`KeyIndex`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinKeys {
    /// For each order line, the row of its order in `orders`
    /// ([`keys::NONE`] when the order is unknown).
    pub line_order: Vec<IdxSize>,
    /// For each order line, the row of its product in `products`.
    pub line_product: Vec<IdxSize>,
    /// For each order, the row of its customer in `customers`.
    pub order_customer: Vec<IdxSize>,
}

impl JoinKeys {
    /// Look the keys of `frames` up: each line's order and product, each
    /// order's customer (the first row of an id when it repeats).
    pub fn find(frames: &CuratedFrames) -> Result<Self> {
        let orders = ids(&frames.orders, "orders", "order_id")?;
        // Text product ids (tables built by hand) are made categorical
        // here, and both columns are held until both are coded: a
        // dictionary lives only as long as a column of it does, and one
        // made again numbers the ids afresh.
        let held_products = product_ids(&frames.products, "products")?;
        let held_lines = product_ids(&frames.order_items, "order_items")?;
        let products = product_codes(&held_products, "products")?;
        let customers = ids(&frames.customers, "customers", "customer_id")?;
        let lines_order = ids(&frames.order_items, "order_items", "order_id")?;
        let lines_product = product_codes(&held_lines, "order_items")?;
        let orders_customer = ids(&frames.orders, "orders", "customer_id")?;
        Ok(JoinKeys {
            line_order: KeyIndex::new(&orders).resolve(&lines_order),
            line_product: CodeIndex::new(&products).resolve(&lines_product),
            order_customer: KeyIndex::new(&customers).resolve(&orders_customer),
        })
    }
}

/// The product ids of a table, categorical as loaded (text ids, of tables
/// built by hand, made so).
fn product_ids(df: &DataFrame, table: &'static str) -> Result<Column> {
    df.column("product_id")
        .and_then(crate::kpi::categorical)
        .map_err(DataError::polars(table, "reading the product ids"))
}

/// Product ids as codes ([`crate::kpi::category_codes`]): the products'
/// and the lines' codes mean the same ids while a column of their
/// dictionary lives.
fn product_codes(ids: &Column, table: &'static str) -> Result<UInt32Chunked> {
    crate::kpi::category_codes(ids).map_err(DataError::polars(table, "reading the product ids"))
}

/// A string id column of a table (a cheap handle on the same memory).
fn ids(df: &DataFrame, table: &'static str, name: &str) -> Result<StringChunked> {
    df.column(name)
        .and_then(|c| c.str().cloned())
        .map_err(DataError::polars(table, "reading the ids"))
}

/// One cleaning rule as the report names it: its defect kind, the table
/// it removes rows from, and the action taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSpec {
    pub kind: &'static str,
    pub table: &'static str,
    pub action: &'static str,
}

const fn spec(table: &'static str, kind: &'static str, action: &'static str) -> RuleSpec {
    RuleSpec {
        kind,
        table,
        action,
    }
}

const ROW_REMOVED: &str = "row removed";
const DUPLICATE: &str = "later copies removed, first occurrence kept";
const ORDER_REMOVED: &str = "order removed";
const LINE_REMOVED: &str = "line removed";

/// Customers, in the order their rules are checked.
pub const CUSTOMER_RULES: [RuleSpec; 2] = [
    spec("customers", "customers_null_required", ROW_REMOVED),
    spec("customers", "duplicate_customers", DUPLICATE),
];
/// Products.
pub const PRODUCT_RULES: [RuleSpec; 3] = [
    spec("products", "products_null_required", ROW_REMOVED),
    spec(
        "products",
        "products_non_positive_price",
        "product removed; its lines count as unknown product",
    ),
    spec("products", "duplicate_products", DUPLICATE),
];
/// Orders, first pass (before the lines).
pub const ORDER_RULES: [RuleSpec; 5] = [
    spec("orders", "orders_null_required", ROW_REMOVED),
    spec("orders", "orders_invalid_status", ORDER_REMOVED),
    spec("orders", "orders_invalid_channel", ORDER_REMOVED),
    spec("orders", "duplicate_orders", DUPLICATE),
    spec("orders", "orders_unknown_customer", ORDER_REMOVED),
];
/// Order lines.
pub const LINE_RULES: [RuleSpec; 8] = [
    spec("order_items", "order_items_null_required", ROW_REMOVED),
    spec("order_items", "duplicate_order_lines", DUPLICATE),
    spec("order_items", "lines_unknown_order", LINE_REMOVED),
    spec(
        "order_items",
        "lines_of_rejected_orders",
        "line removed with its order",
    ),
    spec("order_items", "lines_unknown_product", LINE_REMOVED),
    spec("order_items", "lines_non_positive_quantity", LINE_REMOVED),
    spec("order_items", "lines_non_positive_price", LINE_REMOVED),
    spec("order_items", "lines_discount_out_of_range", LINE_REMOVED),
];
/// Orders, second pass (on the orders that passed the first).
pub const ORDER_LINE_RULES: [RuleSpec; 2] = [
    spec("orders", "orders_without_lines", ORDER_REMOVED),
    spec("orders", "orders_without_valid_lines", ORDER_REMOVED),
];

/// Every rule, pass by pass, in the order cleaning checks them and the
/// report lists them. The one home of the rule list: the polars cleaning
/// below and its SQL twin (`source::cleaning`, the Snowflake push-down)
/// both pair each of these with their condition, by position.
pub const PASSES: [&[RuleSpec]; 5] = [
    &CUSTOMER_RULES,
    &PRODUCT_RULES,
    &ORDER_RULES,
    &LINE_RULES,
    &ORDER_LINE_RULES,
];

/// How a rule finds the rows that break it.
enum Check {
    /// An expression over the table's columns (a null counts as false).
    Expr(Expr),
    /// Rows already found, one flag a row (key lookups across tables).
    Rows(Vec<bool>),
}

struct Rule {
    kind: &'static str,
    action: &'static str,
    check: Check,
}

/// A pass's rules: each spec with its check (as many as specs).
fn rules<const N: usize>(specs: &[RuleSpec; N], checks: [Check; N]) -> Vec<Rule> {
    specs
        .iter()
        .zip(checks)
        .map(|(s, check)| Rule {
            kind: s.kind,
            action: s.action,
            check,
        })
        .collect()
}

fn null_check(spec: &TableSpec) -> Check {
    Check::Expr(
        spec.columns
            .iter()
            .filter(|c| !c.nullable)
            .map(|c| col(c.name).is_null())
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false)),
    )
}

/// Later copies of a key: `first` flags each row holding the first
/// occurrence of its key (computed over every row, whatever other rule it
/// breaks, as polars' `is_first_distinct` would).
fn duplicate_check(first: Vec<bool>) -> Check {
    Check::Rows(first.into_iter().map(|f| !f).collect())
}

fn one_of(column: Expr, values: &[&str]) -> Expr {
    let s = Series::new("values".into(), values);
    column.is_in(lit(s).implode(false), false)
}

/// Check `rules` on `df`, count each row under the first rule it breaks, and
/// return the rows that break none with the keep flag of every input row.
/// The expression checks are evaluated together (one flag column each,
/// never a tagged copy of the table); `df` is consumed, so its rows are
/// freed once the kept copy exists.
fn apply_rules(
    table: &'static str,
    df: DataFrame,
    rules: Vec<Rule>,
    found: &mut Vec<DefectCount>,
) -> Result<(DataFrame, Vec<bool>)> {
    let keep = judge(table, &df, df.height(), rules, found)?;
    let kept = remove_rows(table, df, &keep)?;
    Ok((kept, keep))
}

/// The rows of `df` that `keep` flags, in a new frame. Column by column,
/// each input column freed once its copy exists: the next copy reuses its
/// memory instead of touching fresh pages (at 10 M lines the copies of the
/// order lines and orders are ~1 GB, and first-touch page faults were most
/// of final cleaning's time on a VM).
fn remove_rows(table: &'static str, df: DataFrame, keep: &[bool]) -> Result<DataFrame> {
    let mask = BooleanChunked::from_slice(PlSmallStr::EMPTY, keep);
    let height = keep.iter().filter(|&&k| k).count();
    let mut columns = Vec::with_capacity(df.width());
    for column in df.into_columns() {
        columns.push(
            column
                .filter(&mask)
                .map_err(DataError::polars(table, "removing defective rows"))?,
        );
    }
    DataFrame::new(height, columns).map_err(DataError::polars(table, "removing defective rows"))
}

/// Check `rules` on `n` rows (the expression checks on `df`, which has
/// them), count each row under the first rule it breaks, and flag the rows
/// that break none.
fn judge(
    table: &'static str,
    df: &DataFrame,
    n: usize,
    rules: Vec<Rule>,
    found: &mut Vec<DefectCount>,
) -> Result<Vec<bool>> {
    let exprs: Vec<Expr> = rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.check {
            Check::Expr(e) => Some(e.clone().fill_null(lit(false)).alias(format!("{i}"))),
            Check::Rows(_) => None,
        })
        .collect();
    let evaluated = if exprs.is_empty() {
        DataFrame::empty()
    } else {
        df.clone()
            .lazy()
            .select(exprs)
            .collect()
            .map_err(DataError::polars(table, "checking the cleaning rules"))?
    };
    // The first rule each row breaks, as a one-byte code: 0 when it breaks
    // none, `i + 1` for rule `i` (later rules written first, earlier ones
    // over them).
    let mut code = vec![0u8; n];
    for (i, r) in rules.iter().enumerate().rev() {
        let tag = u8::try_from(i + 1).expect("fewer than 255 rules per table");
        match &r.check {
            Check::Rows(rows) => {
                for (c, &hit) in code.iter_mut().zip(rows) {
                    if hit {
                        *c = tag;
                    }
                }
            }
            Check::Expr(_) => {
                let flags = evaluated
                    .column(&format!("{i}"))
                    .and_then(|c| c.bool().cloned())
                    .map_err(DataError::polars(table, "reading the cleaning checks"))?;
                for (c, hit) in code.iter_mut().zip(flags.iter()) {
                    if hit == Some(true) {
                        *c = tag;
                    }
                }
            }
        }
    }
    drop(evaluated);
    let mut counts = vec![0u64; rules.len() + 1];
    for &c in &code {
        counts[usize::from(c)] += 1;
    }
    for (i, r) in rules.iter().enumerate() {
        found.push(DefectCount {
            kind: r.kind,
            table,
            rows: counts[i + 1],
            action: r.action,
        });
    }
    Ok(code.iter().map(|&c| c == 0).collect())
}

/// The values of `v` at the rows `keep` flags, in place (no second vector
/// as long as the lines).
fn kept<T>(mut v: Vec<T>, keep: &[bool]) -> Vec<T> {
    let mut keep = keep.iter();
    v.retain(|_| *keep.next().expect("a flag a value"));
    v
}

/// An enumeration column (status, channel) as it is compared and written
/// back: trimmed and lower-cased. Worked out once per distinct value (the
/// column holds a handful), and the column is kept as it is (a categorical
/// stays one) when every value already is normal.
fn normalised(df: &DataFrame, table: &'static str, name: &str) -> Result<Column> {
    const ACTION: &str = "normalising status and channel";
    let column = df.column(name).map_err(DataError::polars(table, ACTION))?;
    let distinct = column
        .as_materialized_series()
        .unique()
        .and_then(|s| s.cast(&DataType::String))
        .map_err(DataError::polars(table, ACTION))?;
    let distinct = distinct.str().map_err(DataError::polars(table, ACTION))?;
    let mut changed: PlHashMap<&str, String> = PlHashMap::new();
    for v in distinct.iter().flatten() {
        let normal = v.trim().to_lowercase();
        if normal != v {
            changed.insert(v, normal);
        }
    }
    if changed.is_empty() {
        return Ok(column.clone());
    }
    let text = column
        .cast(&DataType::String)
        .map_err(DataError::polars(table, ACTION))?;
    let out: StringChunked = text
        .str()
        .map_err(DataError::polars(table, ACTION))?
        .iter()
        .map(|v| v.map(|v| changed.get(v).map_or(v, String::as_str)))
        .collect();
    out.with_name(name.into())
        .into_column()
        .cast(column.dtype())
        .map_err(DataError::polars(table, ACTION))
}

/// Run final cleaning on the four tables (the input is left as it is).
pub fn clean(data: &CuratedFrames) -> Result<Cleaned> {
    clean_owned(data.clone())
}

/// Final cleaning that consumes the input tables, so that each raw table is
/// freed as soon as its clean copy exists (the preparation path's way: the
/// raw and the clean data are never both whole in memory).
///
/// The checks across tables resolve each id once to a row number of the
/// other table ([`KeyIndex`]); the rows found are kept as [`JoinKeys`] for
/// the sales view's join.
pub fn clean_owned(data: CuratedFrames) -> Result<Cleaned> {
    let mut found = Vec::new();
    let input_rows = data.row_counts();
    let CuratedFrames {
        customers,
        products,
        orders,
        order_items,
    } = data;
    // In the loaded types (a no-op on loaded tables; tables built by hand
    // with text get their categoricals here).
    let loaded = |spec: &TableSpec, df: DataFrame| {
        spec.loaded(df)
            .map_err(DataError::polars(spec.name, "reading the text columns"))
    };
    let customers = loaded(&CUSTOMERS, customers)?;
    let products = loaded(&PRODUCTS, products)?;
    let orders = loaded(&ORDERS, orders)?;
    let order_items = loaded(&ORDER_ITEMS, order_items)?;

    // Customers.
    let input_customer_ids = ids(&customers, "customers", "customer_id")?;
    let (customer_index, first) = KeyIndex::with_first_flags(&input_customer_ids);
    let (customers, customer_kept) = apply_rules(
        "customers",
        customers,
        rules(
            &CUSTOMER_RULES,
            [null_check(&CUSTOMERS), duplicate_check(first)],
        ),
        &mut found,
    )?;

    // Products.
    // Product ids are categorical (as loaded): indexed by code.
    let (product_index, first) = CodeIndex::with_first_flags(&product_codes(
        &product_ids(&products, "products")?,
        "products",
    )?);
    let (products, product_kept) = apply_rules(
        "products",
        products,
        rules(
            &PRODUCT_RULES,
            [
                null_check(&PRODUCTS),
                Check::Expr(
                    col("list_price")
                        .gt(lit(0.0))
                        .and(col("list_price").is_finite())
                        .not(),
                ),
                duplicate_check(first),
            ],
        ),
        &mut found,
    )?;
    // The indexes of the input ids, renumbered to the clean rows instead of
    // built again: the duplicate check keeps each id's first row only, so
    // an id's clean row is its indexed row when kept, and no other.
    let customer_index = customer_index.retain_rows(&customer_kept);
    let product_index = product_index.retain_rows(&product_kept);

    // Orders, first pass: the enumerations are compared normalised (and
    // written back so), customers must exist. The input's
    // order ids stay indexed (first row of each id) for the lines' checks.
    let mut orders = orders;
    for name in ["status", "channel"] {
        let normal = normalised(&orders, "orders", name)?;
        orders.with_column(normal).map_err(DataError::polars(
            "orders",
            "normalising status and channel",
        ))?;
    }
    let input_order_ids = ids(&orders, "orders", "order_id")?;
    let (order_index, first) = KeyIndex::with_first_flags(&input_order_ids);
    let order_customer = customer_index.resolve(&ids(&orders, "orders", "customer_id")?);
    let unknown_customer = order_customer.iter().map(|&r| r == NONE).collect();
    let order_kept = judge(
        "orders",
        &orders,
        orders.height(),
        rules(
            &ORDER_RULES,
            [
                null_check(&ORDERS),
                Check::Expr(one_of(col("status"), &STATUSES).not()),
                Check::Expr(one_of(col("channel"), &CHANNELS).not()),
                duplicate_check(first),
                Check::Rows(unknown_customer),
            ],
        ),
        &mut found,
    )?;

    // Order lines: the order must exist in the input, have survived the rules
    // above, and the product must exist. Each line's order is its id's first
    // row in the input orders.
    let line_order = order_index.resolve(&ids(&order_items, "order_items", "order_id")?);
    let line_product = product_index.resolve(&product_codes(
        &product_ids(&order_items, "order_items")?,
        "order_items",
    )?);
    let first = first_lines(&order_items, &line_order, order_kept.len())?;
    let mut has_line = vec![false; order_kept.len()];
    for &o in line_order.iter().filter(|&&o| o != NONE) {
        has_line[o as usize] = true;
    }
    let unknown_order = line_order.iter().map(|&o| o == NONE).collect();
    let rejected_order = line_order
        .iter()
        .map(|&o| o == NONE || !order_kept[o as usize])
        .collect();
    let unknown_product = line_product.iter().map(|&p| p == NONE).collect();
    let discount_ok = col("discount")
        .gt_eq(lit(0.0))
        .and(col("discount").lt(lit(1.0)));
    let (order_items, line_kept) = apply_rules(
        "order_items",
        order_items,
        rules(
            &LINE_RULES,
            [
                null_check(&ORDER_ITEMS),
                duplicate_check(first),
                Check::Rows(unknown_order),
                Check::Rows(rejected_order),
                Check::Rows(unknown_product),
                Check::Expr(col("quantity").lt_eq(lit(0))),
                Check::Expr(
                    col("unit_price")
                        .gt(lit(0.0))
                        .and(col("unit_price").is_finite())
                        .not(),
                ),
                Check::Expr(discount_ok.not()),
            ],
        ),
        &mut found,
    )?;
    let mut line_order = kept(line_order, &line_kept);
    let line_product = kept(line_product, &line_kept);
    drop(line_kept);
    let mut has_valid_line = vec![false; order_kept.len()];
    for &o in &line_order {
        has_valid_line[o as usize] = true;
    }

    // Orders, second pass (on the orders that passed the first): orders left
    // without lines. `survivors` are their rows in the input.
    let survivors: Vec<usize> = (0..order_kept.len()).filter(|&r| order_kept[r]).collect();
    let kept_again = judge(
        "orders",
        &DataFrame::empty(),
        survivors.len(),
        rules(
            &ORDER_LINE_RULES,
            [
                Check::Rows(survivors.iter().map(|&r| !has_line[r]).collect()),
                Check::Rows(survivors.iter().map(|&r| !has_valid_line[r]).collect()),
            ],
        ),
        &mut found,
    )?;
    // Input order row → row in the clean orders.
    let mut clean_row = vec![NONE; has_line.len()];
    let mut order_customer_clean = Vec::with_capacity(orders.height());
    for (&r, _) in survivors.iter().zip(&kept_again).filter(|(_, k)| **k) {
        clean_row[r] = order_customer_clean.len() as IdxSize;
        order_customer_clean.push(order_customer[r]);
    }
    // The orders are copied once, without the rows either pass removed.
    let order_keep: Vec<bool> = clean_row.iter().map(|&r| r != NONE).collect();
    let orders = remove_rows("orders", orders, &order_keep)?;
    drop(order_keep);
    // Each kept line's order row, renumbered in place.
    for o in &mut line_order {
        *o = clean_row[*o as usize];
    }
    let keys = JoinKeys {
        line_order,
        line_product,
        order_customer: order_customer_clean,
    };
    let frames = CuratedFrames {
        customers,
        products,
        orders,
        order_items,
    };
    let rows = frames
        .row_counts()
        .into_iter()
        .zip(input_rows)
        .map(|((table, out), (_, input))| {
            (
                table,
                RowCounts {
                    input: input as u64,
                    output: out as u64,
                },
            )
        })
        .collect();
    Ok(Cleaned {
        frames,
        report: CleaningReport {
            defects: found,
            rows,
        },
        keys,
    })
}

/// The first occurrence of each (order_id, line_no) among the order lines,
/// as polars' `is_first_distinct` over the pair would flag it. A line whose
/// order is known is keyed by that order's row (an integer); the others by
/// the id itself. The usual case, a known order and a line number in
/// 0..64, is one bit per (order row, line number) in a word per order (the
/// lines of an order are usually next to each other, so the words are read
/// in order), not a hash set as large as the lines.
fn first_lines(lines: &DataFrame, line_order: &[IdxSize], orders: usize) -> Result<Vec<bool>> {
    let order_ids = ids(lines, "order_items", "order_id")?;
    let line_no = lines
        .column("line_no")
        .and_then(|c| c.i32().cloned())
        .map_err(DataError::polars("order_items", "reading line numbers"))?;
    let mut seen = vec![0u64; orders];
    let mut known: PlHashSet<(IdxSize, i32)> = PlHashSet::default();
    let mut other: PlHashSet<(Option<&str>, Option<i32>)> = PlHashSet::default();
    Ok(order_ids
        .iter()
        .zip(line_no.iter())
        .zip(line_order)
        .map(|((id, no), &o)| match (o, no) {
            (o, Some(no)) if o != NONE && (0..64).contains(&no) => {
                let bit = 1u64 << no;
                let word = &mut seen[o as usize];
                let first = *word & bit == 0;
                *word |= bit;
                first
            }
            (o, Some(no)) if o != NONE => known.insert((o, no)),
            _ => other.insert((id, no)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables built by hand with text ids: each line finds its own product
    /// although the products and the lines meet the ids in different
    /// orders (codes are only comparable while their dictionary lives, and
    /// it lives only as long as a column of it does).
    #[test]
    fn join_keys_of_text_tables_find_each_line_its_product() {
        let frames = CuratedFrames {
            customers: df!("customer_id" => ["c1"]).expect("customers"),
            products: df!("product_id" => ["zz-p3", "zz-p1", "zz-p2"]).expect("products"),
            orders: df!("order_id" => ["o1"], "customer_id" => ["c1"]).expect("orders"),
            order_items: df!(
                "order_id" => ["o1", "o1", "o1", "o1", "o1"],
                "product_id" => ["zz-p1", "zz-p2", "zz-p3", "zz-p1", "zz-p9"]
            )
            .expect("lines"),
        };
        let keys = JoinKeys::find(&frames).expect("keys");
        assert_eq!(keys.line_product, [1, 2, 0, 1, NONE]);
        assert_eq!(keys.line_order, [0; 5]);
        assert_eq!(keys.order_customer, [0]);
    }

    /// The bit per (order, line number), the set for other line numbers and
    /// the set keyed by id flag the same lines as polars' `is_first_distinct`
    /// over the pair.
    #[test]
    fn first_lines_match_polars_is_first_distinct() {
        let ids = [
            Some("a"),
            Some("a"),
            Some("b"),
            Some("a"),
            Some("x"),
            Some("x"),
            Some("b"),
            Some("b"),
            Some("b"),
            Some("b"),
            None,
            None,
            Some("a"),
            Some("a"),
        ];
        let line_no = [
            Some(1),
            Some(2),
            Some(1),
            Some(1),
            Some(1),
            Some(1),
            Some(70),
            Some(70),
            Some(-3),
            Some(-3),
            Some(1),
            Some(1),
            None,
            None,
        ];
        // "a" is order row 0, "b" row 1, "x" is unknown, nulls are unknown.
        let line_order = [0, 0, 1, 0, NONE, NONE, 1, 1, 1, 1, NONE, NONE, 0, 0];
        let df = df!("order_id" => ids, "line_no" => line_no).expect("frame");
        let ours = first_lines(&df, &line_order, 2).expect("first lines");
        let polars = crate::data::keys::tests::polars_first_distinct(
            &df,
            as_struct(vec![col("order_id"), col("line_no")]),
        );
        assert_eq!(ours, polars);
        assert_eq!(
            ours,
            [
                true, true, true, false, true, false, true, false, true, false, true, false, true,
                false
            ]
        );
    }
}
