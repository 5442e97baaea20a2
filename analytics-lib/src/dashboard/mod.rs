//! The dashboard's per-request engine (serve's `/api/dashboard`): the contract's KPI definitions (as in
//! `analytics_lib::kpi`) evaluated on structures built once at start-up,
//! instead of one polars query (or one scan of every line) per figure.
//!
//! Two structures, both built from the completed order lines:
//!
//! * **A revenue cube.** One cell per (segment, state, channel, category)
//!   that has lines; in each cell, revenue and orders per day and per
//!   calendar month (sparse, sorted). Revenue of a period is the sum of the
//!   whole months inside it plus the days of the partial months at its
//!   edges, so a filter change reads a few dozen numbers per cell instead of
//!   every line. Orders per category add up across cells and days because an
//!   order has one day, one customer (state, segment) and one channel. This
//!   gives revenue (current and previous period), the category breakdown,
//!   revenue by state and the monthly series.
//! * **Orders grouped by customer.** One record per completed order (day,
//!   and a *profile*: its channel and the set of its lines' categories,
//!   interned), customers sorted by (segment, state) so that a segment or
//!   state filter is a few contiguous customer ranges, and each customer's
//!   orders sorted by day. Everything that counts distinct orders or
//!   customers (orders, active customers, churn, customers by state, the
//!   cohort matrix) is settled per customer in one pass over these 6-byte
//!   records, current and previous period together, on two threads.
//!
//! The results equal `kpi::kpis`, `kpi::breakdown`, `kpi::cohort_retention`
//! and `kpi::monthly_revenue` on the same data and filter (up to the order of
//! floating-point additions): serve's dashboard checks the
//! default view against `kpi::kpis` at start-up, the unit tests below check
//! random filters against a line-by-line reference, and the API tests check
//! several filters against the functions on the full frame.
//!
//! Files: this one holds the types, `build.rs` builds the structures,
//! `scan.rs` answers a [`Query`], `frame.rs` builds an engine from the
//! line-level [`crate::kpi::Sales`] frame and checks it against
//! `kpi::kpis`; `leaders.rs` ranks products and customers, `orders.rs`
//! pages through the orders behind a view; `tests.rs` is the line-by-line
//! reference.
//!
//! A third structure serves the leaderboards and the drill-down: **the
//! lines of each order**, in the same order as the order records (product,
//! category and revenue: 13 bytes a line), with the ids of orders,
//! customers and products as packed text ([`IdList`]). Top products and
//! customers, and the pages of orders, are one more pass over the same
//! contiguous customer ranges, reading the lines of the orders in the
//! period only.

/// Return a [`DashboardError::Input`] with a formatted message.
macro_rules! refuse {
    ($($t:tt)*) => {
        return Err(DashboardError::Input(format!($($t)*)))
    };
}

mod build;
mod frame;
mod leaders;
mod orders;
mod scan;
#[cfg(test)]
mod tests;

pub use frame::{Built, DashboardError};
pub use leaders::{CustomerFigure, ProductFigure};
pub use orders::{OrderRecord, OrderSort, OrdersPage, OrdersRequest, Which};
pub use scan::Scope;

use std::collections::HashMap;

use chrono::{Datelike, Duration, Months, NaiveDate};

/// Code of a missing value (category, state, channel or segment).
pub const NONE: u8 = u8::MAX;

/// Flag on [`Engine`]'s day-ordered line products: the order has this
/// product on an earlier line (it counts the order once).
const REPEAT: u32 = 1 << 31;

/// Below this many orders one thread scans them all.
const PARALLEL_MIN_ORDERS: usize = 200_000;

/// Completed order lines as plain columns, in any row order: what the
/// engine is built from. Codes index the dictionaries of [`Dims`]
/// ([`NONE`]: missing); `order` and `customer` are dense codes from 0.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    pub order: Vec<u32>,
    pub customer: Vec<u32>,
    /// Days since 1970-01-01.
    pub day: Vec<i32>,
    pub channel: Vec<u8>,
    pub category: Vec<u8>,
    /// The customer's state.
    pub state: Vec<u8>,
    /// Product code (dense from 0, indexes [`Ids::products`]).
    pub product: Vec<u32>,
    pub revenue: Vec<f64>,
    /// How many order lines each row stands for (a warehouse record folds
    /// an order's lines of one product into one row, its revenue summed);
    /// empty: one line each.
    pub items: Vec<u32>,
}

/// Sizes of the dictionaries behind the codes (at most 254 each but
/// products).
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub categories: usize,
    pub states: usize,
    pub channels: usize,
    pub segments: usize,
}

/// The text behind the dense codes of [`Lines`]: order and customer ids
/// by code, product ids by code.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    pub orders: IdList,
    pub customers: IdList,
    pub products: IdList,
}

/// Many short strings in one buffer: `get(i)` is
/// `text[start[i]..start[i + 1]]` (8 bytes of overhead less per id than a
/// `Vec<String>`, one allocation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdList {
    text: String,
    start: Vec<u32>,
}

impl IdList {
    /// The ids in order; an error past 4 GiB of text.
    pub fn from_strs<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<IdList, DashboardError> {
        let mut out = IdList {
            text: String::new(),
            start: vec![0],
        };
        for id in ids {
            out.push(id)?;
        }
        Ok(out)
    }

    fn push(&mut self, id: &str) -> Result<(), DashboardError> {
        self.text.push_str(id);
        let end = u32::try_from(self.text.len()).map_err(|_| {
            DashboardError::Input(format!(
                "the dashboard keeps at most 4 GiB of ids, found more ({} ids so far)",
                self.start.len()
            ))
        })?;
        self.start.push(end);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th id ("" past the end).
    pub fn get(&self, i: usize) -> &str {
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&a), Some(&b)) => self.text.get(a as usize..b as usize).unwrap_or(""),
            _ => "",
        }
    }

    /// The ids in the order `order` gives (`order[k]` = old index of new k).
    fn permuted(&self, order: impl Iterator<Item = usize>) -> Result<IdList, DashboardError> {
        let mut out = IdList {
            text: String::with_capacity(self.text.len()),
            start: Vec::with_capacity(self.start.len()),
        };
        out.start.push(0);
        for i in order {
            out.push(self.get(i))?;
        }
        Ok(out)
    }

    fn heap_bytes(&self) -> usize {
        self.text.len() + self.start.len() * 4
    }
}

/// What the figures are compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// The period of the same length just before.
    Previous,
    /// The same days one year earlier (29/02 → 28/02).
    YearOverYear,
}

impl Comparison {
    /// The names the API takes: `previous`, `yoy`.
    pub const NAMES: [&'static str; 2] = ["previous", "yoy"];

    pub fn name(self) -> &'static str {
        match self {
            Comparison::Previous => "previous",
            Comparison::YearOverYear => "yoy",
        }
    }

    pub fn parse(s: &str) -> Option<Comparison> {
        match s {
            "previous" => Some(Comparison::Previous),
            "yoy" => Some(Comparison::YearOverYear),
            _ => None,
        }
    }

    /// The comparison analysts expect for a period: year over year for
    /// whole calendar months (a month, a quarter, a year) and for exactly
    /// one year from any day; the previous period otherwise.
    pub fn default_for(from: NaiveDate, to: NaiveDate) -> Comparison {
        let next = to.succ_opt();
        let whole_months = from.day() == 1 && next.is_some_and(|n| n.day() == 1);
        // A year from any day; 365 days too, so that "the last 365 days"
        // is compared alike whether or not a 29/02 falls inside.
        let one_year =
            from.checked_add_months(Months::new(12)) == next || (to - from).num_days() == 364;
        if whole_months || one_year {
            Comparison::YearOverYear
        } else {
            Comparison::Previous
        }
    }

    /// The period compared with `from..=to`; None when it would leave
    /// the dates chrono holds (checked, never a panic).
    pub fn period(self, from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        match self {
            Comparison::Previous => {
                let days = (to - from).num_days() + 1;
                Some((
                    from.checked_sub_signed(Duration::days(days))?,
                    from.checked_sub_signed(Duration::days(1))?,
                ))
            }
            Comparison::YearOverYear => Some((
                from.checked_sub_months(Months::new(12))?,
                to.checked_sub_months(Months::new(12))?,
            )),
        }
    }
}

/// One cell of the revenue cube (codes as slots: `n` = missing).
#[derive(Clone, Copy, Debug)]
struct Cell {
    segment: u8,
    state: u8,
    channel: u8,
    category: u8,
}

/// Customers `lo..hi` (ranks) share a segment and a state (slots).
#[derive(Clone, Copy, Debug)]
struct Group {
    segment: u8,
    state: u8,
    lo: u32,
    hi: u32,
}

/// The structures, immutable once built.
pub struct Engine {
    /// Completed lines the engine was built from.
    pub lines: usize,
    pub orders: usize,
    pub customers: usize,
    /// `year × 12 + month0` of month index 0.
    pub first_month: i32,
    pub n_months: usize,
    pub n_categories: usize,
    pub n_states: usize,
    n_channels: usize,
    pub n_segments: usize,
    pub n_products: usize,
    /// Below this many orders in scope one thread does all.
    parallel_min: usize,
    /// Periods of at most this many months of data take the one-word path
    /// (64; the tests lower it to check the general one).
    one_word_months: usize,
    /// Days since epoch of day index 0 (the first day with an order).
    first_day: i32,
    n_days: usize,
    /// Day index → month index.
    month_of_day: Vec<u16>,
    /// Month index → day index of its first day, clamped to `0..=n_days`
    /// (`n_months + 1` entries).
    month_start: Vec<i32>,
    // Orders, grouped by customer rank, each customer's sorted by day.
    order_day: Vec<u16>,
    order_profile: Vec<u32>,
    /// Order → its lines `order_line_start[o]..order_line_start[o + 1]`,
    /// and their revenue summed in line order.
    order_line_start: Vec<u32>,
    order_revenue: Vec<f64>,
    /// The lines again, by day (lines of day `d`:
    /// `day_line_start[d]..day_line_start[d + 1]`; within a day, the
    /// orders' lines in the order of the orders), for the product cube's
    /// partial months: product code ([`REPEAT`] set on a line whose
    /// product an earlier line of its order has), revenue, the order's
    /// channel slot. Empty unless `products_one_category`.
    day_line_start: Vec<u32>,
    day_line_product: Vec<u32>,
    day_line_revenue: Vec<f64>,
    day_line_channel: Vec<u8>,
    /// The product cube: per (product, channel slot) cell
    /// `product × (n_channels + 1) + channel`, its entries
    /// `pc_start[cell]..pc_start[cell + 1]` by month: revenue and orders
    /// with the product.
    pc_start: Vec<u32>,
    pc_month: Vec<u16>,
    pc_revenue: Vec<f64>,
    pc_orders: Vec<u32>,
    /// Every product's lines have one category (so the cube's products
    /// answer a category filter); the tests turn the cube off to check the
    /// lines' path too.
    products_one_category: bool,
    product_lines_only: bool,
    // The lines, in the order of the orders.
    line_product: Vec<u32>,
    line_category: Vec<u8>,
    line_revenue: Vec<f64>,
    /// Order lines per row (folded records); empty: one each.
    line_items: Vec<u32>,
    /// Product code → category slot (of its first line).
    product_category: Vec<u8>,
    /// Order ids by order position, customer ids by rank, product ids by code.
    order_ids: IdList,
    customer_ids: IdList,
    product_ids: IdList,
    /// Customer rank → its orders `cust_start[r]..cust_start[r + 1]`.
    cust_start: Vec<u32>,
    /// Customer rank → the sum of its lines' positive revenues: a bound on
    /// its revenue in any period and scope (the top customers' pruning).
    cust_bound: Vec<f64>,
    groups: Vec<Group>,
    /// Profile → channel slot, and category slots
    /// `profile_cats[profile_cat_start[p]..profile_cat_start[p + 1]]`.
    profile_channel: Vec<u8>,
    profile_cat_start: Vec<u32>,
    profile_cats: Vec<u8>,
    // The revenue cube: per cell, entries by day and by month.
    cells: Vec<Cell>,
    day_start: Vec<u32>,
    day_idx: Vec<u16>,
    day_revenue: Vec<f64>,
    day_orders: Vec<u32>,
    month_entry_start: Vec<u32>,
    month_idx: Vec<u16>,
    month_revenue: Vec<f64>,
    month_orders: Vec<u32>,
}

/// What one request asks: scope masks (by code; None = all), the period
/// and the one it is compared with.
#[derive(Clone, Debug)]
pub struct Query {
    pub categories: Option<Vec<bool>>,
    pub states: Option<Vec<bool>>,
    pub channels: Option<Vec<bool>>,
    pub segment: Option<u8>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The comparison period (the `previous` figures): any period, it may
    /// overlap the current one (year over year on more than a year).
    pub compare_from: NaiveDate,
    pub compare_to: NaiveDate,
    pub churn_window_days: i64,
    /// Leaderboards: keep this many top customers and every product's
    /// figures (0: neither, the pass over the lines is skipped).
    pub top: usize,
}

impl Query {
    /// Everything from `from` to `to`, compared with the previous period.
    pub fn period(from: NaiveDate, to: NaiveDate) -> Query {
        let (compare_from, compare_to) = Comparison::Previous
            .period(from, to)
            .unwrap_or((NaiveDate::MIN, NaiveDate::MIN));
        Query {
            categories: None,
            states: None,
            channels: None,
            segment: None,
            from,
            to,
            compare_from,
            compare_to,
            churn_window_days: 90,
            top: 0,
        }
    }
}

/// Headline figures of one period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub revenue: f64,
    pub orders: u64,
    pub active_customers: u64,
    /// Customers active in the earlier churn window, and those of them not
    /// active in the later one.
    pub churn_base: u64,
    pub churned: u64,
}

impl Totals {
    pub fn average_ticket(&self) -> Option<f64> {
        (self.orders > 0).then(|| self.revenue / self.orders as f64)
    }
    pub fn churn_rate(&self) -> Option<f64> {
        (self.churn_base > 0).then(|| self.churned as f64 / self.churn_base as f64)
    }
}

/// Everything one request yields. `previous` and the `*_prev` figures are
/// those of the comparison period.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub current: Totals,
    pub previous: Totals,
    /// Revenue per month index, in scope, any period, and whether lines are
    /// behind it (> 0; a month without lines is absent from
    /// `kpi::monthly_revenue`).
    pub monthly: Vec<f64>,
    pub monthly_lines: Vec<u64>,
    /// Per category code (+1 slot for missing): revenue, orders.
    pub cat_revenue: Vec<f64>,
    pub cat_orders: Vec<u64>,
    pub cat_revenue_prev: Vec<f64>,
    pub cat_orders_prev: Vec<u64>,
    /// Per state code (+1 slot): revenue, orders, customers.
    pub state_revenue: Vec<f64>,
    pub state_orders: Vec<u64>,
    pub state_customers: Vec<u64>,
    pub state_revenue_prev: Vec<f64>,
    pub state_orders_prev: Vec<u64>,
    pub state_customers_prev: Vec<u64>,
    /// Per segment code (+1 slot: no segment): revenue, orders, customers.
    pub seg_revenue: Vec<f64>,
    pub seg_orders: Vec<u64>,
    pub seg_customers: Vec<u64>,
    pub seg_revenue_prev: Vec<f64>,
    pub seg_orders_prev: Vec<u64>,
    pub seg_customers_prev: Vec<u64>,
    /// Per product code, when `Query::top` > 0 (else empty): revenue and
    /// orders with the product, both periods. Added chunk by chunk in the
    /// chunks' order, so that two requests of one view give the same bits
    /// whichever thread took which chunk.
    pub product_revenue: Vec<f64>,
    pub product_orders: Vec<u64>,
    pub product_revenue_prev: Vec<f64>,
    pub product_orders_prev: Vec<u64>,
    /// Each chunk's product sums before they are added up (chunk index,
    /// the products it touched).
    product_parts: Vec<(usize, Vec<leaders::ProductPart>)>,
    /// A thread's per-product sums while it reads its chunks' lines (all
    /// zero between chunks; empty until the thread reads lines).
    product_scratch: Vec<leaders::ProductAcc>,
    /// The `Query::top` customers of most revenue in the period (most
    /// first; ties by rank).
    pub top_customers: Vec<CustomerFigure>,
    /// Cohort (month index of first order in the period) → size, and
    /// active customers by month offset.
    pub cohort_size: Vec<u64>,
    pub cohort_active: Vec<Vec<u64>>,
}

impl Scan {
    /// Zero figures shaped for `categories`, `states` and `segments` values
    /// (each with one more slot for a missing value) and `months` months.
    pub fn zeroed(categories: usize, states: usize, segments: usize, months: usize) -> Scan {
        let (nc, ns, ng) = (categories + 1, states + 1, segments + 1);
        Scan {
            monthly: vec![0.0; months],
            monthly_lines: vec![0; months],
            cat_revenue: vec![0.0; nc],
            cat_orders: vec![0; nc],
            cat_revenue_prev: vec![0.0; nc],
            cat_orders_prev: vec![0; nc],
            state_revenue: vec![0.0; ns],
            state_orders: vec![0; ns],
            state_customers: vec![0; ns],
            state_revenue_prev: vec![0.0; ns],
            state_orders_prev: vec![0; ns],
            state_customers_prev: vec![0; ns],
            seg_revenue: vec![0.0; ng],
            seg_orders: vec![0; ng],
            seg_customers: vec![0; ng],
            seg_revenue_prev: vec![0.0; ng],
            seg_orders_prev: vec![0; ng],
            seg_customers_prev: vec![0; ng],
            cohort_size: vec![0; months],
            cohort_active: vec![vec![0; months]; months],
            ..Scan::default()
        }
    }
}

fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// `YYYY-MM` of month index `idx` counted from `first_month`.
pub fn month_key(first_month: i32, idx: usize) -> String {
    crate::calendar::month_key(first_month + idx as i32)
}

pub use crate::calendar::month_of;

/// Slot of a code in a dictionary of `n` values: `n` for missing.
fn slot(code: u8, n: usize) -> usize {
    if code == NONE || usize::from(code) >= n {
        n
    } else {
        usize::from(code)
    }
}

/// Slot mask (`n + 1` entries) of an optional code mask: the missing slot
/// is in scope only without a filter.
fn slot_mask(m: &Option<Vec<bool>>, n: usize) -> Vec<bool> {
    match m {
        None => vec![true; n + 1],
        Some(m) => (0..=n).map(|i| i < n && m.get(i) == Some(&true)).collect(),
    }
}

/// Start offsets (`n + 1` entries) of a counting sort by `key`.
fn offsets(keys: impl Iterator<Item = usize>, n: usize) -> Vec<u32> {
    let mut start = vec![0u32; n + 1];
    for k in keys {
        start[k + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    start
}

/// The day windows of one request, as day indices.
#[derive(Clone, Copy)]
struct Windows {
    /// Current period `[f, t]`; comparison `[pf, pt]`.
    f: i32,
    t: i32,
    pf: i32,
    pt: i32,
    /// Churn of the current period: earlier `[ce0, ce1)`, later `[ce1, t]`;
    /// of the comparison one: earlier `[pe0, pe1)`, later `[pe1, pt]`.
    ce0: i32,
    ce1: i32,
    pe0: i32,
    pe1: i32,
    /// No order before `lo` or after `hi` matters.
    lo: i32,
    hi: i32,
    /// Month index of the period's first month with data (cohort bit 0).
    m0: usize,
}

const CUR: u8 = 1;
const PREV: u8 = 2;
const C_EARLIER: u8 = 4;
const C_LATER: u8 = 8;
const P_EARLIER: u8 = 16;
const P_LATER: u8 = 32;
