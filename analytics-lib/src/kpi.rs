//! The contract's KPIs, computed with polars on cleaned data.
//!
//! Definitions (`shared/spec/data-contract.md`, restated so the code can be
//! checked against them):
//!
//! * **line revenue** = `quantity × unit_price × (1 − discount)`;
//! * **revenue** counts only lines of orders with `status = completed`;
//! * **orders** = distinct completed `order_id`;
//! * **average ticket** (*ticket médio*) = revenue / orders;
//! * **as_of** = the day after the last `order_ts` in the data, unless given;
//! * **active customers** in a window = customers with ≥ 1 completed order in it;
//! * **churn rate** at `as_of`, window `w` (default 90 days): A = customers
//!   active in `[as_of − 2w, as_of − w)`; churned = those of A with no
//!   completed order in `[as_of − w, as_of)`; rate = |churned| / |A|
//!   (`None` when A is empty);
//! * **repeat purchase rate** = customers with ≥ 2 completed orders /
//!   customers with ≥ 1;
//! * **monthly revenue** = revenue by calendar month of `order_ts`.
//!
//! Every KPI takes a [`Filter`] (period, categories, states, channels, an
//! explicit customer set) so that the dashboard calls the same functions as
//! the notebooks. Windows are half-open on days: `[a, b)` means from midnight
//! of `a` up to, not including, midnight of `b`.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use serde::Serialize;

use crate::clean::JoinKeys;
use crate::contract::{ORDER_ITEMS, ORDERS, STATUS_COMPLETED};
use crate::data::CuratedFrames;
use crate::data::keys::{NONE, index_rows, sorted_with_values, take_index};
use crate::error::{DataError, Result};

/// Cleaned sales as one line-level frame: every order line with its order,
/// product category, customer state and line revenue. Built once, filtered
/// many times.
#[derive(Clone, Debug)]
pub struct Sales {
    /// Columns, as [`Sales::join`] builds them: order_date (the order's
    /// calendar day: no job reads the time of day), channel, payment_type,
    /// status, completed, line_no, product_id, category, state (the six
    /// text columns of repeated values categorical, see
    /// [`CATEGORICAL_COLUMNS`]), quantity, unit_price, discount, revenue,
    /// then the ids as integer codes: `customer_key` (the customer's row in
    /// [`Sales::customers`], null when it is not there) and `order_key`
    /// (the order's row in [`Sales::order_ids`]). The lines hold no id
    /// text: [`Sales::lines_with_ids`] gives it back. Only when some line's
    /// customer is not among the customers (tables that were not cleaned)
    /// do the lines also carry `customer_id`, the one name such a line has.
    ///
    /// A view built by hand may carry `order_id` and `customer_id` as text
    /// instead of the codes: every reader accepts either.
    pub lines: DataFrame,
    /// The cleaned customers' ids (`customer_id`, one column), sorted: a
    /// line's `customer_key` is its customer's row here, so the keys'
    /// order is the ids' order. The customers' other columns (signup date,
    /// city, coordinates) are in the cleaned tables
    /// ([`crate::source::Prepared::tables`]); the lines carry the state.
    pub customers: DataFrame,
    /// Each order's id by `order_key` (the cleaned orders' ids in their row
    /// order, one per order rather than one per line); empty for a view
    /// whose lines carry `order_id` as text.
    pub order_ids: StringChunked,
    /// The day after the last `order_ts` (the default `as_of`).
    pub default_as_of: NaiveDate,
}

const T: &str = "sales";

fn pe(action: &'static str) -> impl FnOnce(PolarsError) -> DataError {
    DataError::polars(T, action)
}

/// Line revenue expression: `quantity × unit_price × (1 − discount)`.
pub fn line_revenue() -> Expr {
    col("quantity").cast(DataType::Float64) * col("unit_price") * (lit(1.0) - col("discount"))
}

/// The sales lines' few-valued text columns (category, state, channel,
/// payment type, status) and product ids are categorical: 4-byte codes into a dictionary of
/// their own, numbered in order of first appearance in the table they come
/// from. Expressions compare them with text as before (`col("status")
/// .eq(lit("completed"))`, `is_in` a list of names); code that reads them
/// value by value takes the codes and the names with [`codes_and_names`].
pub const CATEGORICAL_COLUMNS: [&str; 6] = [
    "category",
    "state",
    "channel",
    "payment_type",
    "status",
    "product_id",
];

/// A text column as a categorical of its name's shared dictionary
/// ([`crate::contract::categorical_dtype`]); a column loaded so already is
/// left as it is.
pub(crate) fn categorical(c: &Column) -> PolarsResult<Column> {
    c.cast(&crate::contract::categorical_dtype(c.name()))
}

/// A column's codes in its name's shared dictionary (nulls where the value
/// is null): a column loaded categorical is read as it is, a text column
/// (a table built by hand) is made categorical first. The same id has the
/// same code in every table while the dictionary lives, which is as long
/// as a column of it does: codes read off a column made here and dropped
/// are not comparable with codes read after (hold the categorical).
pub(crate) fn category_codes(c: &Column) -> PolarsResult<UInt32Chunked> {
    Ok(categorical(c)?
        .as_materialized_series()
        .cat32()?
        .physical()
        .clone())
}

/// A column of the sales view as its categorical codes (nulls where the
/// value is null) and its names by code (every name of its dictionary, some
/// perhaps unused by this column). A text column (a view built by hand) is
/// made categorical first.
pub(crate) fn codes_and_names(c: &Column) -> PolarsResult<(UInt32Chunked, Vec<String>)> {
    let c = match c.dtype() {
        DataType::Categorical(..) => c.clone(),
        _ => categorical(c)?,
    };
    let ca = c.as_materialized_series().cat32()?;
    let mapping = ca.get_mapping();
    let names = (0..mapping.num_cats_upper_bound())
        .map(|i| mapping.cat_to_str(i as u32).unwrap_or_default().to_string())
        .collect();
    Ok((ca.physical().clone(), names))
}

impl Sales {
    /// Join the cleaned tables into the line-level sales frame (the ids are
    /// looked up here; [`Sales::join`] takes them from final cleaning).
    pub fn from_frames(clean: &CuratedFrames) -> Result<Self> {
        Self::join(clean, JoinKeys::find(clean)?)
    }

    /// Join the cleaned tables by row numbers: each line takes its order's,
    /// product's and customer's columns with a gather (`take`), not a hash
    /// join on the string ids. Lines keep their order; a line whose order is
    /// unknown is left out (an inner join), an unknown product or customer
    /// gives nulls (left joins).
    ///
    /// The keys are consumed (final cleaning's, which nothing needs
    /// afterwards): each line's order row becomes the view's `order_key`
    /// and the index of its gathers without a copy.
    pub fn join(clean: &CuratedFrames, keys: JoinKeys) -> Result<Self> {
        let JoinKeys {
            line_order,
            line_product,
            order_customer,
        } = keys;
        let (line_order, line_product, items) = if line_order.contains(&NONE) {
            let known: Vec<bool> = line_order.iter().map(|&o| o != NONE).collect();
            let pick = |v: &[IdxSize]| -> Vec<IdxSize> {
                v.iter()
                    .zip(&known)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect()
            };
            let items = clean
                .order_items
                .filter(&BooleanChunked::from_slice(PlSmallStr::EMPTY, &known))
                .map_err(pe("keeping the lines of known orders"))?;
            (pick(&line_order), pick(&line_product), items)
        } else {
            (line_order, line_product, clean.order_items.clone())
        };
        let n = line_order.len();
        // Product ids as loaded and cleaned: categorical (a table built by
        // hand with text ids is made so here).
        let items = ORDER_ITEMS
            .loaded(items)
            .map_err(pe("reading the product ids"))?;
        // Customers sorted by id: a customer's key is its rank, so the keys
        // come in the ids' order. The view keeps their ids alone, written
        // in order by the sort ([`sorted_with_values`]); the cleaned
        // customers' other columns stay in the cleaned table.
        let ids = find(&clean.customers, "customer_id")
            .and_then(|c| c.str())
            .map_err(pe("sorting the customers"))?;
        let (by_id, sorted_ids) = sorted_with_values(ids);
        let mut sorted_row = vec![NONE; by_id.len()];
        for (to, from) in by_id.iter().enumerate() {
            if let Some(from) = from {
                sorted_row[from as usize] = to as IdxSize;
            }
        }
        drop(by_id);
        // A new frame: one taken from the cleaned customers would keep a
        // schema cached there, which a later notebook cell cannot read
        // (see `find`).
        let customers = DataFrame::new(sorted_ids.len(), vec![sorted_ids.into_column()])
            .map_err(pe("sorting the customers"))?;
        // Each line's customer as a row of the cleaned customers, through
        // its order (the lines come in their orders' order, so this reads
        // the orders front to back).
        let line_customer: Vec<IdxSize> = line_order
            .iter()
            .map(|&o| order_customer.get(o as usize).copied().unwrap_or(NONE))
            .collect();
        drop(order_customer);
        // A line whose customer is not among the customers (tables that
        // were not cleaned) has no key: the lines keep the ids' text then.
        let customer_text = line_customer.contains(&NONE);
        // Every line's order is known now: its row is its key, as it is.
        let order_key = IdxCa::from_vec("order_key".into(), line_order);
        let product_rows = take_index(line_product);
        // The three gathers are independent: side by side on the pool. The
        // few-valued text columns are made categorical on their own table
        // (one hash per order, product or customer) and gathered as 4-byte
        // codes: a line holds no copy of their text.
        let ((of_orders, category), state_and_key) = rayon::join(
            || {
                rayon::join(
                    || {
                        // The order's date, not its timestamp: computed
                        // once per order, gathered as 4 bytes a line.
                        let mut select = Vec::with_capacity(5);
                        if customer_text {
                            select.push(col("customer_id"));
                        }
                        select.extend([
                            col("order_ts").dt().date().alias("order_date"),
                            col("channel"),
                            col("payment_type"),
                            col("status"),
                        ]);
                        let orders = clean.orders.clone().lazy().select(select).collect()?;
                        ORDERS.loaded(orders)?.take(&order_key)
                    },
                    || {
                        find(&clean.products, "category")
                            .and_then(categorical)
                            .and_then(|c| c.take(&product_rows))
                    },
                )
            },
            || {
                // The state at the cleaned customers' rows, which follow
                // the lines in most data (a customer's orders written
                // together, in the customers' order), where the sorted
                // customers' rows would be read at random; then the same
                // rows become the keys, in place.
                let rows = take_index(line_customer);
                let state = find(&clean.customers, "state")
                    .and_then(categorical)
                    .and_then(|c| c.take(&rows))?;
                let mut keys = index_rows(rows);
                for k in keys.iter_mut().filter(|k| **k != NONE) {
                    *k = sorted_row[*k as usize];
                }
                PolarsResult::Ok((state, take_index(keys)))
            },
        );
        let of_orders = of_orders.map_err(pe("taking each line's order"))?;
        let category = category.map_err(pe("taking each line's product category"))?;
        let (state, customer_key) =
            state_and_key.map_err(pe("taking each line's customer state"))?;
        drop(sorted_row);
        drop(product_rows);
        // The lines' own columns keep the chunks they were read in (one per
        // Parquet row group): nothing copies them into one chunk. What the
        // KPIs and features read on every call is one chunk each: the
        // gathered columns (ids, dates, status, codes) and those derived
        // from them, and revenue (computed on the lines' chunks, then made
        // one chunk, so that its sums round as one sum over the values).
        let revenue = items
            .clone()
            .lazy()
            .select([line_revenue().alias("revenue")])
            .collect()
            .and_then(|df| df.column("revenue").map(Column::rechunk))
            .map_err(pe("computing each line's revenue"))?;
        let mut gathered = of_orders.into_columns();
        gathered.push(category);
        gathered.push(state);
        gathered.push(customer_key.with_name("customer_key".into()).into_column());
        gathered.push(order_key.into_column());
        let gathered = DataFrame::new(n, gathered)
            .map_err(pe("joining the sales tables"))?
            .lazy()
            .with_columns([col("status").eq(lit(STATUS_COMPLETED)).alias("completed")])
            .collect()
            .map_err(pe("joining the sales tables"))?;
        let mut columns = items.into_columns();
        columns.extend(gathered.into_columns());
        columns.push(revenue);
        let customer_id = customer_text.then_some("customer_id");
        let lines = DataFrame::new(n, columns)
            .and_then(|df| {
                df.select(customer_id.into_iter().chain([
                    "order_date",
                    "channel",
                    "payment_type",
                    "status",
                    "completed",
                    "line_no",
                    "product_id",
                    "category",
                    "state",
                    "quantity",
                    "unit_price",
                    "discount",
                    "revenue",
                    "customer_key",
                    "order_key",
                ]))
            })
            .map_err(pe("joining the sales tables"))?;
        // The orders' ids, one per order: a line's is `order_ids[order_key]`.
        let order_ids = ids_of(&clean.orders, "order_id")?;
        let last = find(&clean.orders, "order_ts")
            .and_then(|c| c.as_materialized_series().max::<i64>())
            .map_err(pe("finding the last order"))?;
        let default_as_of = last
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|dt| dt.date_naive() + Duration::days(1))
            .ok_or_else(|| DataError::InvalidArgument {
                name: "orders",
                expected: "at least one order with a timestamp".into(),
                found: "no orders".into(),
            })?;
        Ok(Sales {
            lines,
            customers,
            order_ids,
            default_as_of,
        })
    }

    pub fn lazy(&self) -> LazyFrame {
        self.lines.clone().lazy()
    }

    /// Whether the lines carry the ids as integer codes (`order_key`,
    /// `customer_key`: the join's view) rather than as text (a view built
    /// by hand).
    pub fn coded(&self) -> bool {
        ["order_key", "customer_key"]
            .iter()
            .all(|k| find(&self.lines, k).is_ok())
    }

    /// Whether the lines carry a text column `name` (`order_id`,
    /// `customer_id`).
    pub(crate) fn has_text(&self, name: &str) -> bool {
        find(&self.lines, name).is_ok_and(|c| c.dtype() == &DataType::String)
    }

    /// The view's size in memory: its lines, its customers and its
    /// orders' ids.
    pub fn estimated_size(&self) -> usize {
        self.lines.estimated_size()
            + self.customers.estimated_size()
            + self.order_ids.clone().into_series().estimated_size()
    }

    /// The customers' ids, in `customer_key` order (sorted).
    pub fn customer_ids(&self) -> Result<StringChunked> {
        ids_of(&self.customers, "customer_id")
    }

    /// The `customer_key`s of these customer ids, sorted: the ids found
    /// among [`Sales::customers`] (by binary search: they are sorted by
    /// id); an id that is not there has no key.
    pub fn customer_keys(&self, ids: &[String]) -> Result<Vec<IdxSize>> {
        let known = self.customer_ids()?.rechunk().into_owned();
        let mut keys = Vec::with_capacity(ids.len());
        if let Some(arr) = known.downcast_iter().next() {
            // The customers were sorted by the join: no nulls, ascending.
            let n = arr.len();
            for id in ids {
                let (mut lo, mut hi) = (0, n);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if arr.value(mid) < id.as_str() {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                if lo < n && arr.value(lo) == id.as_str() {
                    keys.push(lo as IdxSize);
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// The lines with their ids as text in front (`order_id`,
    /// `customer_id`), as a view built by hand holds them: looked up from
    /// the codes ([`Sales::order_ids`], [`Sales::customers`]) when the
    /// lines carry codes; the lines as they are when they carry the text.
    /// One string per line and id: for display and for references in
    /// tests, not for the jobs (which read the codes).
    pub fn lines_with_ids(&self) -> Result<DataFrame> {
        let mut columns = Vec::with_capacity(self.lines.width() + 2);
        if !self.has_text("order_id") {
            let keys = key_column(&self.lines, "order_key")?;
            let ids = self
                .order_ids
                .take(&keys)
                .map_err(pe("looking up the order ids"))?;
            columns.push(ids.with_name("order_id".into()).into_column());
        }
        if !self.has_text("customer_id") {
            let keys = key_column(&self.lines, "customer_key")?;
            let ids = self
                .customer_ids()?
                .take(&keys)
                .map_err(pe("looking up the customer ids"))?;
            columns.push(ids.with_name("customer_id".into()).into_column());
        }
        columns.extend(self.lines.columns().iter().cloned());
        DataFrame::new(self.lines.height(), columns).map_err(pe("adding the ids to the lines"))
    }
}

/// A column of a frame the view shares (its lines, its customers), found
/// by a linear search of its names. Not `DataFrame::column`: on a frame
/// wider than 4 columns that builds a hashed schema and caches it *inside*
/// the frame. In an evcxr notebook every cell is its own library with its
/// own copy of polars' global hash seed, so a schema cached in one cell is
/// not found by a later one ("unable to find column \"completed\"; valid
/// columns: [… \"completed\" …]"). Reading a shared frame must not change
/// it: every reader of the view's frames looks columns up here.
pub(crate) fn find<'a>(df: &'a DataFrame, name: &str) -> PolarsResult<&'a Column> {
    df.columns()
        .iter()
        .find(|c| c.name().as_str() == name)
        .ok_or_else(|| polars_err!(ColumnNotFound: "`{name}`; found {:?}", df.get_column_names()))
}

/// A text column of ids.
fn ids_of(df: &DataFrame, name: &str) -> Result<StringChunked> {
    find(df, name)
        .and_then(|c| c.str().cloned())
        .map_err(pe("reading the ids"))
}

/// An integer code column of the lines (`order_key`, `customer_key`).
fn key_column(df: &DataFrame, name: &str) -> Result<IdxCa> {
    find(df, name)
        .and_then(|c| c.idx().cloned())
        .map_err(pe("reading the id codes"))
}

/// Which sales a KPI looks at. Empty lists mean "all".
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Filter {
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
    pub categories: Vec<String>,
    pub states: Vec<String>,
    pub channels: Vec<String>,
    /// Only these customers (e.g. one segment's members), when set.
    pub customers: Option<Vec<String>>,
}

fn is_in_list(column: &str, values: &[String]) -> Expr {
    let s = Series::new("values".into(), values);
    col(column).is_in(lit(s).implode(false), false)
}

impl Filter {
    /// Everything.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Check the filter is coherent.
    pub fn check(&self) -> Result<()> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(DataError::InvalidArgument {
                name: "from",
                expected: format!("a date on or before `to` ({to})"),
                found: from.to_string(),
            });
        }
        Ok(())
    }

    /// The non-period part of the filter, as one predicate (None = keep all).
    /// The customers are matched by their ids' text when the lines carry
    /// it, by their `customer_key` otherwise (an id that is not among the
    /// customers matches no line).
    fn scope_predicate(&self, sales: &Sales) -> Option<Expr> {
        let mut preds = Vec::new();
        if !self.categories.is_empty() {
            preds.push(is_in_list("category", &self.categories));
        }
        if !self.states.is_empty() {
            preds.push(is_in_list("state", &self.states));
        }
        if !self.channels.is_empty() {
            preds.push(is_in_list("channel", &self.channels));
        }
        if let Some(customers) = &self.customers {
            preds.push(if sales.has_text("customer_id") {
                is_in_list("customer_id", customers)
            } else {
                // The customers were read when the view was built: a view
                // without them has no key to match (nothing is in scope).
                let keys = sales.customer_keys(customers).unwrap_or_default();
                let keys = Series::new("values".into(), keys);
                col("customer_key").is_in(lit(keys).implode(false), false)
            });
        }
        preds.into_iter().reduce(|a, b| a.and(b))
    }

    fn period_predicate(&self) -> Option<Expr> {
        let mut preds = Vec::new();
        if let Some(from) = self.from {
            preds.push(col("order_date").gt_eq(lit(from)));
        }
        if let Some(to) = self.to {
            preds.push(col("order_date").lt_eq(lit(to)));
        }
        preds.into_iter().reduce(|a, b| a.and(b))
    }

    /// The sales lines in scope (category, state, channel, customers), any
    /// period.
    pub fn apply_scope(&self, sales: &Sales) -> LazyFrame {
        let lf = sales.lazy();
        match self.scope_predicate(sales) {
            Some(p) => lf.filter(p),
            None => lf,
        }
    }

    /// The sales lines in scope and in the period.
    pub fn apply(&self, sales: &Sales) -> LazyFrame {
        let lf = self.apply_scope(sales);
        match self.period_predicate() {
            Some(p) => lf.filter(p),
            None => lf,
        }
    }

    /// The same filter over the previous period of the same length (for
    /// "change against the previous period"); None without a full period.
    pub fn previous_period(&self) -> Option<Filter> {
        let (from, to) = (self.from?, self.to?);
        let days = (to - from).num_days() + 1;
        // `None` when the previous period would start before the first date
        // chrono holds (checked: never a panic on extreme input).
        Some(Filter {
            from: Some(from.checked_sub_signed(Duration::days(days))?),
            to: Some(from.checked_sub_signed(Duration::days(1))?),
            ..self.clone()
        })
    }
}

/// Options of the time-relative KPIs.
#[derive(Clone, Copy, Debug)]
pub struct KpiOptions {
    /// Reference date; default: the filter's `to` + 1 day, else the day after the last order.
    pub as_of: Option<NaiveDate>,
    pub churn_window_days: i64,
}

impl Default for KpiOptions {
    fn default() -> Self {
        KpiOptions {
            as_of: None,
            churn_window_days: 90,
        }
    }
}

/// The headline KPIs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Kpis {
    pub revenue: f64,
    pub orders: u64,
    /// Revenue / orders; `None` when there is no completed order.
    pub average_ticket: Option<f64>,
    pub active_customers: u64,
    /// `None` when nobody was active in the earlier window.
    pub churn_rate_90d: Option<f64>,
    pub churn_window_days: i64,
    pub repeat_purchase_rate: Option<f64>,
    pub as_of: NaiveDate,
    /// `YYYY-MM` → revenue.
    pub monthly_revenue: BTreeMap<String, f64>,
}

fn scalar_f64(df: &DataFrame, name: &str) -> Result<f64> {
    let v = df
        .column(name)
        .and_then(|c| c.get(0).map(|v| v.extract::<f64>()))
        .map_err(pe("reading a KPI"))?;
    Ok(v.unwrap_or(0.0))
}

fn scalar_u64(df: &DataFrame, name: &str) -> Result<u64> {
    let v = df
        .column(name)
        .and_then(|c| c.get(0).map(|v| v.extract::<u64>()))
        .map_err(pe("reading a KPI"))?;
    Ok(v.unwrap_or(0))
}

fn completed(lf: LazyFrame) -> LazyFrame {
    lf.filter(col("completed"))
}

/// How the KPI code tells orders and customers apart in distinct counts,
/// group-bys and joins: by the integer codes [`Sales::join`] adds
/// (`order_key`, `customer_key`: no string hashing), or by the ids on a
/// frame without them. The counts are the same either way.
#[derive(Clone, Copy)]
struct Ids {
    order: &'static str,
    customer: &'static str,
}

impl Ids {
    fn of(sales: &Sales) -> Ids {
        let both = sales.coded();
        Ids {
            order: if both { "order_key" } else { "order_id" },
            customer: if both { "customer_key" } else { "customer_id" },
        }
    }

    /// Whether the lines carry the integer codes (both or neither).
    fn coded(self) -> bool {
        self.order == "order_key"
    }
}

/// The contract's revenue (sum), orders (distinct orders) and active
/// customers (distinct customers) as `revenue`, `orders`, `customers`:
/// over all lines in [`totals`], per group in [`breakdown`].
fn totals_exprs(ids: Ids) -> [Expr; 3] {
    [
        revenue_sum(),
        col(ids.order)
            .n_unique()
            .cast(DataType::UInt64)
            .alias("orders"),
        col(ids.customer)
            .n_unique()
            .cast(DataType::UInt64)
            .alias("customers"),
    ]
}

/// Revenue, orders and active customers of the lines in `lf` (completed only).
fn totals(lf: LazyFrame, ids: Ids) -> Result<(f64, u64, u64)> {
    let df = completed(lf)
        .select(totals_exprs(ids))
        .collect()
        .map_err(pe("computing revenue and orders"))?;
    Ok((
        scalar_f64(&df, "revenue")?,
        scalar_u64(&df, "orders")?,
        scalar_u64(&df, "customers")?,
    ))
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// The contract's revenue: the lines' `revenue` summed (as `revenue`).
fn revenue_sum() -> Expr {
    col("revenue").sum().alias("revenue")
}

/// Revenue of the completed lines in `lf`, as [`totals`] sums it.
fn revenue_of(lf: LazyFrame) -> Result<f64> {
    let df = completed(lf)
        .select([revenue_sum()])
        .collect()
        .map_err(pe("computing revenue"))?;
    scalar_f64(&df, "revenue")
}

/// A set of dense integer codes.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn with_capacity(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    /// Set `i`; whether it was unset.
    #[inline]
    fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        let was = self.0[w] & b == 0;
        self.0[w] |= b;
        was
    }
    fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// Distinct orders, distinct customers and customers with two orders or
/// more among some lines, counted on the integer codes: a bit per order
/// (800 KB for 6.5 M orders) and a small count per customer, in one pass.
/// Polars' `n_unique` and the group-by by customer hash every line instead,
/// and their tables outgrow the cache at 10 M lines (1.7x the cost per line
/// of 1 M). An order belongs to one customer, so a customer's distinct
/// orders are the orders first seen on their lines. Equal to the group-by
/// path's counts (tested on generated data with defects, several filters).
struct CodeCounts {
    orders: u64,
    customers: u64,
    repeaters: u64,
}

impl CodeCounts {
    /// Over the completed lines in `lf` (the lines in scope: the
    /// completed check is made in the pass, so the frame's columns are
    /// read as they are instead of filtered into a copy). `None` when the
    /// lines have no codes (or a null one).
    fn of(lf: LazyFrame, ids: Ids) -> Result<Option<CodeCounts>> {
        if !ids.coded() {
            return Ok(None);
        }
        let df = lf
            .select([col(ids.order), col(ids.customer), col("completed")])
            .collect()
            .map_err(pe("reading the order and customer codes"))?;
        let read = |name: &str| crate::features::codes_without_nulls(&df, name);
        let (Some(order), Some(customer)) = (read(ids.order)?, read(ids.customer)?) else {
            return Ok(None);
        };
        let done = df
            .column("completed")
            .and_then(|c| c.bool())
            .map_err(pe("reading the completed flags"))?;
        let size = |c: &[u32]| c.iter().max().map_or(0, |&m| m as usize + 1);
        let mut seen = Bits::with_capacity(size(&order));
        let mut per_customer = vec![0u8; size(&customer)];
        crate::features::for_each_true(done, |r| {
            if seen.insert(order[r] as usize) {
                let n = &mut per_customer[customer[r] as usize];
                *n = n.saturating_add(1);
            }
        });
        Ok(Some(CodeCounts {
            orders: seen.len(),
            customers: per_customer.iter().filter(|&&n| n >= 1).count() as u64,
            repeaters: per_customer.iter().filter(|&&n| n >= 2).count() as u64,
        }))
    }
}

/// Customers with a completed order in `[start, end)`, within the scope.
fn active_in(scope: LazyFrame, start: NaiveDate, end: NaiveDate, ids: Ids) -> LazyFrame {
    completed(scope)
        .filter(
            col("order_date")
                .gt_eq(lit(start))
                .and(col("order_date").lt(lit(end))),
        )
        .select([col(ids.customer)])
        .unique(None, UniqueKeepStrategy::Any)
}

/// Churn at `as_of` with a window of `window_days`, over the lines in scope.
pub fn churn_rate(
    sales: &Sales,
    filter: &Filter,
    as_of: NaiveDate,
    window_days: i64,
) -> Result<Option<f64>> {
    if window_days <= 0 {
        return Err(DataError::InvalidArgument {
            name: "churn_window_days",
            expected: "a positive number of days".into(),
            found: window_days.to_string(),
        });
    }
    let w = Duration::days(window_days);
    let ids = Ids::of(sales);
    let scope = filter.apply_scope(sales);
    // On the codes: the customers of each window as bitsets, in one pass
    // over the lines in scope as they are (no filtered copy).
    if ids.coded() {
        let df = scope
            .clone()
            .select([
                col(ids.customer),
                col("order_date"),
                col("completed"),
                col("revenue"),
            ])
            .collect()
            .map_err(pe("computing churn"))?;
        if let Some(customer) = crate::features::codes_without_nulls(&df, ids.customer)? {
            let values = crate::features::LineValues::read(&df)?;
            let day = crate::features::epoch_days;
            let (start, middle, end) = (day(as_of - w - w), day(as_of - w), day(as_of));
            let n = customer.iter().max().map_or(0, |&m| m as usize + 1);
            let (mut earlier, mut later) = (Bits::with_capacity(n), Bits::with_capacity(n));
            values.for_each_completed(|r, d, _| {
                if d >= middle && d < end {
                    later.insert(customer[r] as usize);
                } else if d >= start && d < middle {
                    earlier.insert(customer[r] as usize);
                }
            });
            let active = earlier.len();
            let retained: u64 = (earlier.0.iter().zip(&later.0))
                .map(|(e, l)| u64::from((e & l).count_ones()))
                .sum();
            return Ok(ratio((active - retained) as f64, active as f64));
        }
    }
    let earlier = active_in(scope.clone(), as_of - w - w, as_of - w, ids);
    let later = active_in(scope, as_of - w, as_of, ids).with_column(lit(true).alias("retained"));
    let df = earlier
        .join(
            later,
            [col(ids.customer)],
            [col(ids.customer)],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            len().cast(DataType::Float64).alias("active"),
            col("retained")
                .is_null()
                .sum()
                .cast(DataType::Float64)
                .alias("churned"),
        ])
        .collect()
        .map_err(pe("computing churn"))?;
    Ok(ratio(
        scalar_f64(&df, "churned")?,
        scalar_f64(&df, "active")?,
    ))
}

/// Customers with ≥ 2 completed orders / customers with ≥ 1, in the filter.
pub fn repeat_purchase_rate(sales: &Sales, filter: &Filter) -> Result<Option<f64>> {
    let ids = Ids::of(sales);
    let df = completed(filter.apply(sales))
        .group_by([col(ids.customer)])
        .agg([col(ids.order).n_unique().alias("n")])
        .select([
            len().cast(DataType::Float64).alias("buyers"),
            col("n")
                .gt_eq(lit(2))
                .sum()
                .cast(DataType::Float64)
                .alias("repeaters"),
        ])
        .collect()
        .map_err(pe("computing the repeat purchase rate"))?;
    Ok(ratio(
        scalar_f64(&df, "repeaters")?,
        scalar_f64(&df, "buyers")?,
    ))
}

/// Revenue per calendar month (`YYYY-MM`), completed orders, in the filter.
/// Summed per month number ([`crate::calendar`]); only the keys are written
/// as text.
pub fn monthly_revenue(sales: &Sales, filter: &Filter) -> Result<BTreeMap<String, f64>> {
    // The lines in scope (on the whole frame, its columns as they are: no
    // copy), then one pass over the completed ones (`sums::by_month`): the
    // bits of `group_by(month).agg(sum)`, without its per-line year and
    // month columns and hash table (which cost 14x the time for 10x the
    // lines).
    let df = filter
        .apply(sales)
        .select([col("order_date"), col("completed"), col("revenue")])
        .collect()
        .map_err(pe("computing monthly revenue"))?;
    let values = crate::features::LineValues::read(&df)?;
    Ok(crate::sums::by_month(&values)
        .into_iter()
        .map(|(m, r)| (crate::calendar::month_key(m), r))
        .collect())
}

/// The calendar month of `order_date` as one number: `12 × year + month − 1`.
fn month_number() -> Expr {
    (col("order_date").dt().year().cast(DataType::Int32) * lit(12))
        + col("order_date").dt().month().cast(DataType::Int32)
        - lit(1)
}

/// All headline KPIs for a filter.
pub fn kpis(sales: &Sales, filter: &Filter, opts: &KpiOptions) -> Result<Kpis> {
    filter.check()?;
    let as_of = opts
        .as_of
        .or(filter.to.map(|d| d + Duration::days(1)))
        .unwrap_or(sales.default_as_of);
    let ids = Ids::of(sales);
    // On the integer codes: distinct orders and customers and the repeat
    // buyers in one pass over the lines in scope (bitsets, see `CodeCounts`).
    let (revenue, orders, active_customers, repeat) =
        match CodeCounts::of(filter.apply(sales), ids)? {
            Some(c) => {
                let revenue = revenue_of(filter.apply(sales))?;
                let repeat = ratio(c.repeaters as f64, c.customers as f64);
                (revenue, c.orders, c.customers, repeat)
            }
            None => {
                let (revenue, orders, customers) = totals(filter.apply(sales), ids)?;
                (
                    revenue,
                    orders,
                    customers,
                    repeat_purchase_rate(sales, filter)?,
                )
            }
        };
    Ok(Kpis {
        revenue,
        orders,
        average_ticket: ratio(revenue, orders as f64),
        active_customers,
        churn_rate_90d: churn_rate(sales, filter, as_of, opts.churn_window_days)?,
        churn_window_days: opts.churn_window_days,
        repeat_purchase_rate: repeat,
        as_of,
        monthly_revenue: monthly_revenue(sales, filter)?,
    })
}

/// A dimension to break KPIs down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Category,
    State,
    Channel,
    PaymentType,
}

impl Dimension {
    pub fn column(self) -> &'static str {
        match self {
            Dimension::Category => "category",
            Dimension::State => "state",
            Dimension::Channel => "channel",
            Dimension::PaymentType => "payment_type",
        }
    }
}

/// Revenue, orders, average ticket and revenue share per value of a
/// dimension (completed orders, in the filter), largest revenue first.
/// An order with lines in two categories counts once in each.
pub fn breakdown(sales: &Sales, filter: &Filter, by: Dimension) -> Result<DataFrame> {
    let c = by.column();
    completed(filter.apply(sales))
        .group_by([col(c)])
        .agg(totals_exprs(Ids::of(sales)))
        .with_columns([
            // names, not the view's codes, in the table (and in its order)
            col(c).cast(DataType::String),
            (col("revenue") / col("orders").cast(DataType::Float64)).alias("average_ticket"),
            (col("revenue") / col("revenue").sum()).alias("revenue_share"),
        ])
        .sort(
            ["revenue", c],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .collect()
        .map_err(pe("computing a breakdown"))
}

/// Cohort retention: customers grouped by the month of their first completed
/// order (in scope); for each cohort and each month offset `k ≥ 0`, the share
/// of the cohort with a completed order in month `cohort + k`. Columns:
/// `cohort` (YYYY-MM), `size`, `offset`, `active`, `retention`.
pub fn cohort_retention(sales: &Sales, filter: &Filter) -> Result<DataFrame> {
    let ids = Ids::of(sales);
    let buys = completed(filter.apply(sales))
        .select([col(ids.customer), month_number().alias("m")])
        .unique(None, UniqueKeepStrategy::Any);
    let firsts = buys
        .clone()
        .group_by([col(ids.customer)])
        .agg([col("m").min().alias("c")]);
    let sizes = firsts
        .clone()
        .group_by([col("c")])
        .agg([len().cast(DataType::UInt64).alias("size")]);
    buys.join(
        firsts,
        [col(ids.customer)],
        [col(ids.customer)],
        JoinArgs::new(JoinType::Inner),
    )
    .with_column((col("m") - col("c")).alias("offset"))
    .group_by([col("c"), col("offset")])
    .agg([len().cast(DataType::UInt64).alias("active")])
    .join(
        sizes,
        [col("c")],
        [col("c")],
        JoinArgs::new(JoinType::Inner),
    )
    .with_columns([
        (col("active").cast(DataType::Float64) / col("size").cast(DataType::Float64))
            .alias("retention"),
        concat_str(
            [
                (col("c") / lit(12)).cast(DataType::String),
                lit("-"),
                ((col("c") % lit(12)) + lit(1))
                    .cast(DataType::String)
                    .str()
                    .zfill(lit(2)),
            ],
            "",
            false,
        )
        .alias("cohort"),
    ])
    .sort(["c", "offset"], SortMultipleOptions::default())
    .select([
        col("cohort"),
        col("size"),
        col("offset"),
        col("active"),
        col("retention"),
    ])
    .collect()
    .map_err(pe("computing cohort retention"))
}

/// The Pareto figure: share of revenue from the top `top_share` (e.g. 0.2)
/// of customers by revenue, in the filter. Customers are counted by
/// `ceil(top_share × n)`.
pub fn pareto_share(sales: &Sales, filter: &Filter, top_share: f64) -> Result<Option<f64>> {
    if !(top_share > 0.0 && top_share <= 1.0) {
        return Err(DataError::InvalidArgument {
            name: "top_share",
            expected: "a share in (0, 1]".into(),
            found: top_share.to_string(),
        });
    }
    let per_customer = completed(filter.apply(sales))
        .group_by([col(Ids::of(sales).customer)])
        .agg([col("revenue").sum()])
        .collect()
        .map_err(pe("computing revenue per customer"))?;
    let mut rev: Vec<f64> = per_customer
        .column("revenue")
        .and_then(|c| c.f64().cloned())
        .map_err(pe("pareto"))?
        .iter()
        .flatten()
        .collect();
    if rev.is_empty() {
        return Ok(None);
    }
    rev.sort_by(|a, b| b.total_cmp(a));
    let k = ((top_share * rev.len() as f64).ceil() as usize).clamp(1, rev.len());
    let total: f64 = rev.iter().sum();
    Ok(ratio(rev[..k].iter().sum(), total))
}

/// One row per completed order in the filter: `order_id`, `customer_id`,
/// `order_date`, `channel`, `lines`, `revenue` (the order's ticket).
/// Grouped by the codes on the join's view, whose ids are looked up once
/// per order afterwards.
pub fn order_tickets(sales: &Sales, filter: &Filter) -> Result<DataFrame> {
    let order_text = sales.has_text("order_id");
    let customer_text = sales.has_text("customer_id");
    let order = if order_text { "order_id" } else { "order_key" };
    let customer = if customer_text {
        "customer_id"
    } else {
        "customer_key"
    };
    let mut tickets = completed(filter.apply(sales))
        .group_by_stable([col(order)])
        .agg([
            col(customer).first(),
            col("order_date").first(),
            col("channel").first(),
            len().cast(DataType::UInt32).alias("lines"),
            col("revenue").sum(),
        ])
        .with_column(col("channel").cast(DataType::String))
        .collect()
        .map_err(pe("computing order tickets"))?;
    // A code column becomes its ids' text, in its place.
    let mut name = |key: &str, ids: &StringChunked, as_name: &str| -> Result<()> {
        let at = tickets.get_column_index(key).unwrap_or_default();
        let text = ids
            .take(&key_column(&tickets, key)?)
            .map_err(pe("looking up the ids of the tickets"))?
            .with_name(as_name.into())
            .into_column();
        tickets
            .replace_column(at, text)
            .map_err(pe("naming the tickets' ids"))?;
        Ok(())
    };
    if !order_text {
        name(order, &sales.order_ids, "order_id")?;
    }
    if !customer_text {
        name(customer, &sales.customer_ids()?, "customer_id")?;
    }
    Ok(tickets)
}

/// Seasonality: each calendar month's revenue relative to the mean month of
/// its year, averaged over the complete years in `monthly` (a year counts
/// when it has all 12 months). Index 0 is January; 1.0 is an average month.
pub fn month_of_year_index(monthly: &BTreeMap<String, f64>) -> Option<[f64; 12]> {
    let mut years: BTreeMap<&str, [Option<f64>; 12]> = BTreeMap::new();
    for (ym, v) in monthly {
        let (y, m) = ym.split_once('-')?;
        let m: usize = m.parse().ok()?;
        if (1..=12).contains(&m) {
            years.entry(y).or_insert([None; 12])[m - 1] = Some(*v);
        }
    }
    let complete: Vec<[f64; 12]> = years
        .values()
        .filter_map(|months| {
            let vals: Vec<f64> = months.iter().flatten().copied().collect();
            (vals.len() == 12).then(|| {
                let mean = vals.iter().sum::<f64>() / 12.0;
                let mut out = [0.0; 12];
                for (o, v) in out.iter_mut().zip(&vals) {
                    *o = if mean > 0.0 { v / mean } else { 0.0 };
                }
                out
            })
        })
        .collect();
    if complete.is_empty() {
        return None;
    }
    let mut idx = [0.0; 12];
    for y in &complete {
        for (i, v) in y.iter().enumerate() {
            idx[i] += v / complete.len() as f64;
        }
    }
    Some(idx)
}
