//! The dashboard's figures computed inside the warehouse, per request.
//!
//! On Parquet the dashboard answers from [`crate::dashboard::Engine`], built
//! once from the completed lines. On a warehouse that would mean fetching
//! about every line (its finest grain is an order's product: the drill-down
//! and the product leaderboard under any filter need it); here one query
//! per view answers the same [`Scan`] from the cleaned lines
//! ([`super::cleaning::cleaning_ctes`]), so what crosses the wire is the
//! view's aggregates: a row per month, per category, state and segment of
//! each period, per cohort cell, and two rows of totals, whatever the size
//! of the data.
//!
//! Each figure follows the engine's line-by-line reference
//! (`dashboard/tests/reference.rs`): the lines in scope are the completed
//! lines whose category, customer's state, order's channel and customer's
//! segment pass the filters; revenue and distinct orders and customers per
//! period (both bounds inclusive) and per category, state and segment;
//! revenue and lines per month over every period; churn as the customers
//! active in `[t + 1 − 2w, t + 1 − w)` and not in `[t + 1 − w, t]` for the
//! period's last day `t`; cohorts by the month of the customer's first
//! order in the current period.
//!
//! Segments are assigned in the warehouse too ([`segment_ctes`]): each
//! customer's segmentation features at `as_of` (the same aggregates as
//! [`super::pushdown::features_sql`]), transformed and scaled with the
//! model's saved [`crate::segments::Scaler`], and the nearest of the model's
//! centroids (the first of equals, as [`crate::segments::SegmentModel`]
//! assigns).
//!
//! Beside the figures ([`SnowflakeSource::dashboard_scan`]): the
//! leaderboards ([`SnowflakeSource::dashboard_leaders`], the page's top ten
//! or every product or customer for the export) and a page of the drill-down
//! ([`SnowflakeSource::dashboard_orders`], sorted and cut in the warehouse).

use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDate};
use polars::prelude::*;

use super::cleaning::{cleaning_ctes, sum_f64};
use super::pushdown::{date_lit, dates, f64s, in_list, pe};
use super::snowflake::{SnowflakeSource, quote};
use super::{Result, SourceError};
use crate::contract::STATUS_COMPLETED;
use crate::dashboard::{OrderSort, OrdersRequest, Query, Scan, Totals, Which};
use crate::features::SHARE_PREFIX;
use crate::segments::{SegmentModel, Transform};

/// What the codes of a [`Query`] and the slots of a [`Scan`] stand for:
/// the dashboard's sorted value lists, its months and its segments.
#[derive(Clone, Debug, PartialEq)]
pub struct WarehouseDims {
    /// Code → value, sorted (as [`crate::dashboard::Built`] lists them).
    pub categories: Vec<String>,
    pub states: Vec<String>,
    pub channels: Vec<String>,
    /// `year × 12 + month0` of month index 0 (the first completed order's
    /// month) and the number of months up to the last one.
    pub first_month: i32,
    pub n_months: usize,
    /// First and last day with a completed order.
    pub min_date: NaiveDate,
    pub max_date: NaiveDate,
}

/// The live segment model and the day its features are computed at.
#[derive(Clone, Copy, Debug)]
pub struct SegmentsAt<'a> {
    pub model: &'a SegmentModel,
    pub as_of: NaiveDate,
}

impl WarehouseDims {
    fn index_of(list: &[String], value: Option<&str>) -> usize {
        value
            .and_then(|v| list.iter().position(|x| x == v))
            .unwrap_or(list.len())
    }

    /// The values a code mask keeps (None: no filter).
    fn chosen<'a>(list: &'a [String], mask: &Option<Vec<bool>>) -> Option<Vec<&'a str>> {
        mask.as_ref().map(|m| {
            list.iter()
                .zip(m)
                .filter(|(_, keep)| **keep)
                .map(|(v, _)| v.as_str())
                .collect()
        })
    }

    /// A day clamped into the data's range widened by a few days either
    /// side: the same lines fall in any period, and the SQL never sees a
    /// date beyond what a warehouse's DATE holds (`NaiveDate::MIN` marks a
    /// view without a comparison period).
    fn clamp(&self, d: NaiveDate) -> NaiveDate {
        let margin = Duration::days(2);
        d.clamp(self.min_date - margin, self.max_date + margin)
    }
}

/// A float as a SQL literal of type DOUBLE in both Snowflake and DuckDB
/// (scientific notation: `5e-1`, never a fixed-point NUMBER).
fn float_lit(x: f64) -> String {
    format!("{x:e}")
}

/// A money sum rounded as the local features round it
/// ([`crate::features::round_money`], to a millionth of a real).
fn rounded(sum: &str) -> String {
    format!("(ROUND({sum} * 1e6) / 1e6)")
}

/// `feat` (the segmentation aggregates of every customer with a completed
/// order before `as_of`) and `seg` (customer → segment id) as CTEs over
/// `lines`.
pub fn segment_ctes(seg: SegmentsAt<'_>) -> Result<String> {
    let model = seg.model;
    let at = date_lit(seg.as_of);
    let categories = &model.meta.categories;
    let mut cats = String::new();
    for (i, c) in categories.iter().enumerate() {
        let _ = write!(
            cats,
            ", {} AS cat_{i}",
            rounded(&sum_f64(&format!(
                "CASE WHEN category = {} THEN revenue ELSE 0 END",
                quote(c)
            )))
        );
    }
    let scaler = &model.scaler;
    let mut z = Vec::with_capacity(scaler.names.len());
    for (j, name) in scaler.names.iter().enumerate() {
        let raw = match name.as_str() {
            "recency_days" => format!("CAST(DATEDIFF(day, last_day, {at}) AS DOUBLE)"),
            "frequency" => "CAST(frequency AS DOUBLE)".to_string(),
            "monetary" => "monetary".to_string(),
            "average_ticket" => "(monetary / frequency)".to_string(),
            other => {
                let i = other
                    .strip_prefix(SHARE_PREFIX)
                    .and_then(|c| categories.iter().position(|x| x == c))
                    .ok_or_else(|| SourceError::Snowflake {
                        action: "assigning segments in the warehouse".into(),
                        message: format!(
                            "the segment model's features: expected recency_days, frequency, \
                             monetary, average_ticket or {SHARE_PREFIX}<category> of its \
                             categories ({}); found `{other}`",
                            categories.join(", ")
                        ),
                    })?;
                format!("(CASE WHEN monetary > 0 THEN cat_{i} / monetary ELSE 0 END)")
            }
        };
        let t = match scaler.transforms[j] {
            Transform::Identity => raw,
            Transform::Log1p => format!("LN(1 + {raw})"),
        };
        z.push(format!(
            "{} * ({t} - {}) / {} AS z{j}",
            float_lit(scaler.weights[j]),
            float_lit(scaler.means[j]),
            float_lit(scaler.stds[j])
        ));
    }
    let dist: Vec<String> = model
        .centroids
        .iter()
        .enumerate()
        .map(|(c, centre)| {
            let terms: Vec<String> = centre
                .iter()
                .enumerate()
                .map(|(j, v)| format!("(z{j} - {v}) * (z{j} - {v})", v = float_lit(*v)))
                .collect();
            format!("{} AS d{c}", terms.join(" + "))
        })
        .collect();
    // The first centroid at the least distance: d_c ≤ every later one and
    // < every earlier one (earlier equals took the row already).
    let k = model.centroids.len();
    let mut case = String::from("CASE");
    for c in 0..k.saturating_sub(1) {
        let later: Vec<String> = (c + 1..k).map(|o| format!("d{c} <= d{o}")).collect();
        let _ = write!(case, " WHEN {} THEN {c}", later.join(" AND "));
    }
    let _ = write!(case, " ELSE {} END", k.saturating_sub(1));
    Ok(format!(
        "feat AS (SELECT customer_id, MAX(order_date) AS last_day, \
COUNT(DISTINCT order_id) AS frequency, {monetary} AS monetary{cats} FROM lines \
WHERE status = {done} AND order_date < {at} GROUP BY customer_id), \
zs AS (SELECT customer_id, {z} FROM feat), \
ds AS (SELECT customer_id, {dist} FROM zs), \
seg AS (SELECT customer_id, {case} AS segment FROM ds)",
        monetary = rounded(&sum_f64("revenue")),
        done = quote(STATUS_COMPLETED),
        z = z.join(", "),
        dist = dist.join(", "),
    ))
}

/// The CTEs every query of a view starts from: the cleaning, the segment
/// assignment, `sc` (the completed lines in the view's scope, with their
/// order, customer, product, day `d`, category, state, channel, segment,
/// revenue and month number `m`), `per` (period 0, the current one, and 1,
/// the comparison: days `a..=b` and the churn windows' bounds `e0`, `e1`)
/// and `inp` (each line of `sc` once per period it falls in, `p`).
fn scope_ctes(q: &Query, dims: &WarehouseDims, segments: Option<SegmentsAt<'_>>) -> Result<String> {
    let mut ctes = vec![cleaning_ctes()];
    let mut preds = vec![format!("l.status = {}", quote(STATUS_COMPLETED))];
    let seg_col = if let Some(s) = segments {
        ctes.push(segment_ctes(s)?);
        if let Some(k) = q.segment {
            preds.push(format!("s.segment = {k}"));
        }
        "s.segment"
    } else {
        if q.segment.is_some() {
            preds.push("FALSE".into());
        }
        "CAST(NULL AS INTEGER)"
    };
    for (column, list, mask) in [
        ("l.category", &dims.categories, &q.categories),
        ("l.state", &dims.states, &q.states),
        ("l.channel", &dims.channels, &q.channels),
    ] {
        if let Some(values) = WarehouseDims::chosen(list, mask) {
            preds.push(in_list(column, &values));
        }
    }
    let join = if segments.is_some() {
        " LEFT JOIN seg s ON s.customer_id = l.customer_id"
    } else {
        ""
    };
    let w = q.churn_window_days.max(1);
    let period = |from: NaiveDate, to: NaiveDate, p: u8| {
        let (a, b) = (dims.clamp(from), dims.clamp(to));
        let e0 = dims.clamp(to + Duration::days(1 - 2 * w));
        let e1 = dims.clamp(to + Duration::days(1 - w));
        format!(
            "SELECT {p} AS p, {} AS a, {} AS b, {} AS e0, {} AS e1",
            date_lit(a),
            date_lit(b),
            date_lit(e0),
            date_lit(e1)
        )
    };
    ctes.push(format!(
        "sc AS (SELECT l.order_id AS order_id, l.customer_id AS customer_id, \
l.product_id AS product_id, l.order_date AS d, l.category AS category, l.state AS state, \
l.channel AS channel, {seg_col} AS segment, l.revenue AS revenue, \
YEAR(l.order_date) * 12 + MONTH(l.order_date) - 1 AS m \
FROM lines l{join} WHERE {} AND l.order_date IS NOT NULL), \
per AS ({} UNION ALL {}), \
inp AS (SELECT per.p AS p, sc.* FROM sc JOIN per ON sc.d >= per.a AND sc.d <= per.b)",
        preds.join(" AND "),
        period(q.from, q.to, 0),
        period(q.compare_from, q.compare_to, 1),
    ));
    Ok(ctes.join(", "))
}

/// The SQL of one view: rows `kind, p, k, i, j, revenue, orders,
/// customers, n` (see [`SnowflakeSource::dashboard_scan`] for the kinds).
pub fn scan_sql(
    q: &Query,
    dims: &WarehouseDims,
    segments: Option<SegmentsAt<'_>>,
) -> Result<String> {
    let ctes = format!(
        "{}, \
act AS (SELECT per.p AS p, sc.customer_id AS customer_id, \
MAX(CASE WHEN sc.d < per.e1 THEN 1 ELSE 0 END) AS before_w, \
MAX(CASE WHEN sc.d >= per.e1 THEN 1 ELSE 0 END) AS within_w \
FROM sc JOIN per ON sc.d >= per.e0 AND sc.d <= per.b GROUP BY per.p, sc.customer_id), \
cm AS (SELECT DISTINCT customer_id, m FROM inp WHERE p = 0), \
firsts AS (SELECT customer_id, MIN(m) AS f FROM cm GROUP BY customer_id)",
        scope_ctes(q, dims, segments)?
    );
    let row = |kind: &str, p: &str, k: &str, i: &str, j: &str, rest: &str| {
        format!(
            "SELECT '{kind}' AS \"kind\", {p} AS \"p\", {k} AS \"k\", {i} AS \"i\", {j} AS \"j\", {rest}"
        )
    };
    let figures = format!(
        "{} AS \"revenue\", COUNT(DISTINCT order_id) AS \"orders\", \
COUNT(DISTINCT customer_id) AS \"customers\", COUNT(*) AS \"n\"",
        sum_f64("revenue")
    );
    let null_k = "CAST(NULL AS VARCHAR)";
    let null_i = "CAST(NULL AS BIGINT)";
    let selects = [
        format!(
            "{} FROM inp GROUP BY p",
            row("total", "p", null_k, null_i, null_i, &figures)
        ),
        format!(
            "{} FROM inp GROUP BY p, category",
            row("category", "p", "category", null_i, null_i, &figures)
        ),
        format!(
            "{} FROM inp GROUP BY p, state",
            row("state", "p", "state", null_i, null_i, &figures)
        ),
        format!(
            "{} FROM inp GROUP BY p, segment",
            row(
                "segment",
                "p",
                null_k,
                "CAST(segment AS BIGINT)",
                null_i,
                &figures
            )
        ),
        format!(
            "{} FROM sc GROUP BY m",
            row(
                "month",
                "0",
                null_k,
                "CAST(m AS BIGINT)",
                null_i,
                &format!(
                    "{} AS \"revenue\", 0 AS \"orders\", 0 AS \"customers\", COUNT(*) AS \"n\"",
                    sum_f64("revenue")
                )
            )
        ),
        format!(
            "{} FROM act GROUP BY p",
            row(
                "churn",
                "p",
                null_k,
                null_i,
                null_i,
                "CAST(0 AS DOUBLE) AS \"revenue\", SUM(before_w) AS \"orders\", \
SUM(CASE WHEN before_w = 1 AND within_w = 0 THEN 1 ELSE 0 END) AS \"customers\", 0 AS \"n\""
            )
        ),
        format!(
            "{} FROM cm JOIN firsts ON firsts.customer_id = cm.customer_id GROUP BY firsts.f, cm.m",
            row(
                "cohort",
                "0",
                null_k,
                "CAST(firsts.f AS BIGINT)",
                "CAST(cm.m - firsts.f AS BIGINT)",
                "CAST(0 AS DOUBLE) AS \"revenue\", 0 AS \"orders\", COUNT(*) AS \"customers\", 0 AS \"n\""
            )
        ),
    ];
    Ok(format!("WITH {ctes} {}", selects.join(" UNION ALL ")))
}

/// `YYYY × 12 + month0` of a day.
pub fn month_number(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

impl SnowflakeSource {
    /// The dimensions of the dashboard over the cleaned completed lines:
    /// sorted categories, states and channels, and the first and last day
    /// (a few rows come back). `None` when there is no completed order.
    pub fn dashboard_dims(&self) -> Result<Option<WarehouseDims>> {
        const ACTION: &str = "reading the dashboard's dimensions";
        let sql = format!(
            "WITH {} SELECT 'category' AS \"kind\", category AS \"v\", CAST(NULL AS DATE) AS \"d\" FROM lines \
WHERE status = {done} AND order_date IS NOT NULL AND category IS NOT NULL GROUP BY category \
UNION ALL SELECT 'state', state, CAST(NULL AS DATE) FROM lines \
WHERE status = {done} AND order_date IS NOT NULL AND state IS NOT NULL GROUP BY state \
UNION ALL SELECT 'channel', channel, CAST(NULL AS DATE) FROM lines \
WHERE status = {done} AND order_date IS NOT NULL AND channel IS NOT NULL GROUP BY channel \
UNION ALL SELECT 'min', NULL, MIN(order_date) FROM lines WHERE status = {done} \
UNION ALL SELECT 'max', NULL, MAX(order_date) FROM lines WHERE status = {done}",
            cleaning_ctes(),
            done = quote(STATUS_COMPLETED)
        );
        let df = self.query_as(&sql, ACTION)?;
        let kind = strings(&df, "kind", ACTION)?;
        let v = strings(&df, "v", ACTION)?;
        let d = dates(&df, "d", ACTION)?;
        let (mut categories, mut states, mut channels) = (Vec::new(), Vec::new(), Vec::new());
        let (mut min_date, mut max_date) = (None, None);
        for (i, kind) in kind.iter().enumerate() {
            let day = d[i];
            match (kind.as_deref(), v[i].clone()) {
                (Some("category"), Some(v)) => categories.push(v),
                (Some("state"), Some(v)) => states.push(v),
                (Some("channel"), Some(v)) => channels.push(v),
                (Some("min"), _) => min_date = day,
                (Some("max"), _) => max_date = day,
                _ => {}
            }
        }
        let (Some(min_date), Some(max_date)) = (min_date, max_date) else {
            return Ok(None);
        };
        categories.sort();
        states.sort();
        channels.sort();
        let first_month = month_number(min_date);
        Ok(Some(WarehouseDims {
            categories,
            states,
            channels,
            first_month,
            n_months: (month_number(max_date) - first_month + 1) as usize,
            min_date,
            max_date,
        }))
    }

    /// The figures of one view (`q.top` is not looked at: no leaderboards
    /// here), computed in the warehouse by one query ([`scan_sql`]). With
    /// `segments`, the segment filter and the per-segment figures use the
    /// model's assignment at its `as_of`; without, every customer is in
    /// no segment (and a segment filter keeps nothing).
    pub fn dashboard_scan(
        &self,
        q: &Query,
        dims: &WarehouseDims,
        segments: Option<SegmentsAt<'_>>,
    ) -> Result<Scan> {
        const ACTION: &str = "computing a dashboard view";
        let df = self.query_as(&scan_sql(q, dims, segments)?, ACTION)?;
        let n_seg = segments.map_or(0, |s| s.model.centroids.len());
        let nm = dims.n_months;
        let mut s = Scan::zeroed(
            dims.categories.len(),
            dims.states.len(),
            n_seg,
            dims.n_months,
        );
        if df.height() == 0 {
            return Ok(s);
        }
        let kind = strings(&df, "kind", ACTION)?;
        let key = strings(&df, "k", ACTION)?;
        let [p, i, j, orders, customers, n] =
            ["p", "i", "j", "orders", "customers", "n"].map(|c| ints(&df, c, ACTION));
        let (p, i, j, orders, customers, n) = (p?, i?, j?, orders?, customers?, n?);
        let revenue = f64s(&df, "revenue", ACTION)?;
        let month_slot = |m: Option<i64>| {
            m.and_then(|m| usize::try_from(m - i64::from(dims.first_month)).ok())
                .filter(|&m| m < nm)
        };
        for r in 0..df.height() {
            let prev = p[r] == Some(1);
            let (rev, o, c) = (
                revenue[r],
                orders[r].unwrap_or(0) as u64,
                customers[r].unwrap_or(0) as u64,
            );
            match kind[r].as_deref() {
                Some("total") => {
                    let t = if prev {
                        &mut s.previous
                    } else {
                        &mut s.current
                    };
                    t.revenue = rev;
                    t.orders = o;
                    t.active_customers = c;
                }
                Some("churn") => {
                    let t: &mut Totals = if prev {
                        &mut s.previous
                    } else {
                        &mut s.current
                    };
                    t.churn_base = o;
                    t.churned = c;
                }
                Some("category") => {
                    let x = WarehouseDims::index_of(&dims.categories, key[r].as_deref());
                    let (rv, od) = if prev {
                        (&mut s.cat_revenue_prev, &mut s.cat_orders_prev)
                    } else {
                        (&mut s.cat_revenue, &mut s.cat_orders)
                    };
                    rv[x] += rev;
                    od[x] += o;
                }
                Some("state") => {
                    let x = WarehouseDims::index_of(&dims.states, key[r].as_deref());
                    let (rv, od, cu) = if prev {
                        (
                            &mut s.state_revenue_prev,
                            &mut s.state_orders_prev,
                            &mut s.state_customers_prev,
                        )
                    } else {
                        (
                            &mut s.state_revenue,
                            &mut s.state_orders,
                            &mut s.state_customers,
                        )
                    };
                    rv[x] += rev;
                    od[x] += o;
                    cu[x] += c;
                }
                Some("segment") => {
                    let x = i[r]
                        .and_then(|g| usize::try_from(g).ok())
                        .filter(|&g| g < n_seg)
                        .unwrap_or(n_seg);
                    let (rv, od, cu) = if prev {
                        (
                            &mut s.seg_revenue_prev,
                            &mut s.seg_orders_prev,
                            &mut s.seg_customers_prev,
                        )
                    } else {
                        (&mut s.seg_revenue, &mut s.seg_orders, &mut s.seg_customers)
                    };
                    rv[x] += rev;
                    od[x] += o;
                    cu[x] += c;
                }
                Some("month") => {
                    if let Some(m) = month_slot(i[r]) {
                        s.monthly[m] += rev;
                        s.monthly_lines[m] += n[r].unwrap_or(0) as u64;
                    }
                }
                Some("cohort") => {
                    let off = j[r].and_then(|o| usize::try_from(o).ok());
                    if let (Some(f), Some(off)) = (month_slot(i[r]), off)
                        && f + off < nm
                    {
                        s.cohort_active[f][off] += c;
                        if off == 0 {
                            s.cohort_size[f] += c;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

/// One product or customer of a leaderboard computed in the warehouse:
/// its figures in both periods (the lines in scope, as the view's revenue).
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderRow {
    /// The product's or customer's id.
    pub id: String,
    /// A product's category; a customer's state.
    pub group: Option<String>,
    /// A customer's segment (None for a product, or without one).
    pub segment: Option<usize>,
    pub revenue: f64,
    /// Distinct orders (with the product; of the customer).
    pub orders: u64,
    pub revenue_prev: f64,
    pub orders_prev: u64,
}

/// Which leaderboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaders {
    Products,
    Customers,
}

/// One order of the drill-down computed in the warehouse (only its lines
/// in scope count).
#[derive(Clone, Debug, PartialEq)]
pub struct DrillOrder {
    pub order_id: String,
    pub date: NaiveDate,
    pub customer_id: String,
    pub state: Option<String>,
    pub segment: Option<usize>,
    pub channel: Option<String>,
    /// The categories of its lines in scope, each once, sorted.
    pub categories: Vec<String>,
    pub items: u64,
    pub revenue: f64,
}

/// A page of the drill-down and how many orders the view has.
#[derive(Clone, Debug, PartialEq)]
pub struct DrillPage {
    pub total: u64,
    pub rows: Vec<DrillOrder>,
}

/// The SQL of a leaderboard: every product or customer with an order in
/// either period, in leaderboard order (most revenue, then most revenue in
/// the comparison period, then id); `current_only` keeps those with an
/// order in the current period (the page's top products and customers,
/// as [`crate::dashboard::Scan::top_customers`]); at most `limit` rows.
pub fn leaders_sql(
    q: &Query,
    dims: &WarehouseDims,
    segments: Option<SegmentsAt<'_>>,
    which: Leaders,
    current_only: bool,
    limit: Option<usize>,
) -> Result<String> {
    let (id, group, segment) = match which {
        Leaders::Products => ("product_id", "MIN(category)", "CAST(NULL AS BIGINT)"),
        Leaders::Customers => ("customer_id", "MIN(state)", "CAST(MIN(segment) AS BIGINT)"),
    };
    let having = if current_only {
        " HAVING COUNT(DISTINCT CASE WHEN p = 0 THEN order_id END) > 0"
    } else {
        ""
    };
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    Ok(format!(
        "WITH {ctes} SELECT {id} AS \"id\", {group} AS \"group\", {segment} AS \"segment\", \
{rev} AS \"revenue\", COUNT(DISTINCT CASE WHEN p = 0 THEN order_id END) AS \"orders\", \
{rev_prev} AS \"revenue_prev\", COUNT(DISTINCT CASE WHEN p = 1 THEN order_id END) AS \"orders_prev\" \
FROM inp GROUP BY {id}{having} \
ORDER BY \"revenue\" DESC, \"revenue_prev\" DESC, \"id\"{limit}",
        ctes = scope_ctes(q, dims, segments)?,
        rev = sum_f64("CASE WHEN p = 0 THEN revenue ELSE 0 END"),
        rev_prev = sum_f64("CASE WHEN p = 1 THEN revenue ELSE 0 END"),
    ))
}

/// The SQL of a drill-down page: rows `kind` `order` (the page's orders,
/// `rn` their rank in page order: the sort key, then the order id), `cat`
/// (a category of the lines in scope of the order ranked `rn`, in the
/// `state` column) and one `total` (the view's orders, in `rn`).
pub fn orders_sql(
    q: &Query,
    dims: &WarehouseDims,
    segments: Option<SegmentsAt<'_>>,
    req: &OrdersRequest,
) -> Result<String> {
    let p = match req.which {
        Which::Current => 0,
        Which::Comparison => 1,
    };
    let key = match req.sort {
        OrderSort::Date => "d",
        OrderSort::Revenue => "revenue",
        OrderSort::Items => "items",
    };
    let dir = if req.descending { "DESC" } else { "ASC" };
    let (lo, hi) = (req.offset, req.offset.saturating_add(req.limit));
    Ok(format!(
        "WITH {ctes}, \
ord AS (SELECT order_id, MIN(d) AS d, MIN(customer_id) AS customer_id, MIN(state) AS state, \
MIN(segment) AS segment, MIN(channel) AS channel, COUNT(*) AS items, {rev} AS revenue \
FROM inp WHERE p = {p} GROUP BY order_id), \
ranked AS (SELECT ord.*, ROW_NUMBER() OVER (ORDER BY {key} {dir}, order_id) AS rn FROM ord), \
page AS (SELECT * FROM ranked WHERE rn > {lo} AND rn <= {hi}) \
SELECT 'order' AS \"kind\", CAST(rn AS BIGINT) AS \"rn\", order_id AS \"order_id\", d AS \"d\", \
customer_id AS \"customer_id\", state AS \"state\", CAST(segment AS BIGINT) AS \"segment\", \
channel AS \"channel\", CAST(items AS BIGINT) AS \"items\", revenue AS \"revenue\" FROM page \
UNION ALL SELECT DISTINCT 'cat', CAST(page.rn AS BIGINT), NULL, NULL, NULL, inp.category, NULL, NULL, \
NULL, NULL FROM page JOIN inp ON inp.order_id = page.order_id AND inp.p = {p} \
WHERE inp.category IS NOT NULL \
UNION ALL SELECT 'total', CAST(COUNT(*) AS BIGINT), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
FROM ord",
        ctes = scope_ctes(q, dims, segments)?,
        rev = sum_f64("revenue"),
    ))
}

fn segment_of(v: Option<i64>) -> Option<usize> {
    v.and_then(|g| usize::try_from(g).ok())
}

impl SnowflakeSource {
    /// A leaderboard of one view ([`leaders_sql`]): at most `limit` rows
    /// come back (the page's top ten), or one per product or customer in
    /// the view (the export).
    pub fn dashboard_leaders(
        &self,
        q: &Query,
        dims: &WarehouseDims,
        segments: Option<SegmentsAt<'_>>,
        which: Leaders,
        current_only: bool,
        limit: Option<usize>,
    ) -> Result<Vec<LeaderRow>> {
        const ACTION: &str = "ranking a dashboard leaderboard";
        let sql = leaders_sql(q, dims, segments, which, current_only, limit)?;
        let df = self.query_as(&sql, ACTION)?;
        if df.height() == 0 {
            return Ok(Vec::new());
        }
        let id = strings(&df, "id", ACTION)?;
        let group = strings(&df, "group", ACTION)?;
        let segment = ints(&df, "segment", ACTION)?;
        let revenue = f64s(&df, "revenue", ACTION)?;
        let revenue_prev = f64s(&df, "revenue_prev", ACTION)?;
        let orders = ints(&df, "orders", ACTION)?;
        let orders_prev = ints(&df, "orders_prev", ACTION)?;
        Ok((0..df.height())
            .map(|r| LeaderRow {
                id: id[r].clone().unwrap_or_default(),
                group: group[r].clone(),
                segment: segment_of(segment[r]),
                revenue: revenue[r],
                orders: orders[r].unwrap_or(0) as u64,
                revenue_prev: revenue_prev[r],
                orders_prev: orders_prev[r].unwrap_or(0) as u64,
            })
            .collect())
    }

    /// A page of the orders behind one view ([`orders_sql`]): the page's
    /// rows, their categories and the view's order count come back.
    pub fn dashboard_orders(
        &self,
        q: &Query,
        dims: &WarehouseDims,
        segments: Option<SegmentsAt<'_>>,
        req: &OrdersRequest,
    ) -> Result<DrillPage> {
        const ACTION: &str = "reading a page of the drill-down";
        let df = self.query_as(&orders_sql(q, dims, segments, req)?, ACTION)?;
        let mut page = DrillPage {
            total: 0,
            rows: Vec::new(),
        };
        if df.height() == 0 {
            return Ok(page);
        }
        let kind = strings(&df, "kind", ACTION)?;
        let rn = ints(&df, "rn", ACTION)?;
        let order_id = strings(&df, "order_id", ACTION)?;
        let d = dates(&df, "d", ACTION)?;
        let customer_id = strings(&df, "customer_id", ACTION)?;
        let state = strings(&df, "state", ACTION)?;
        let segment = ints(&df, "segment", ACTION)?;
        let channel = strings(&df, "channel", ACTION)?;
        let items = ints(&df, "items", ACTION)?;
        let revenue = f64s(&df, "revenue", ACTION)?;
        let mut by_rank: Vec<(i64, DrillOrder)> = Vec::new();
        let mut cats: Vec<(i64, String)> = Vec::new();
        for r in 0..df.height() {
            match kind[r].as_deref() {
                Some("total") => page.total = rn[r].unwrap_or(0) as u64,
                Some("cat") => {
                    if let (Some(n), Some(c)) = (rn[r], state[r].clone()) {
                        cats.push((n, c));
                    }
                }
                Some("order") => by_rank.push((
                    rn[r].unwrap_or(0),
                    DrillOrder {
                        order_id: order_id[r].clone().unwrap_or_default(),
                        date: d[r].unwrap_or_default(),
                        customer_id: customer_id[r].clone().unwrap_or_default(),
                        state: state[r].clone(),
                        segment: segment_of(segment[r]),
                        channel: channel[r].clone(),
                        categories: Vec::new(),
                        items: items[r].unwrap_or(0) as u64,
                        revenue: revenue[r],
                    },
                )),
                _ => {}
            }
        }
        by_rank.sort_by_key(|(n, _)| *n);
        for (n, c) in cats {
            if let Ok(i) = by_rank.binary_search_by_key(&n, |(m, _)| *m) {
                by_rank[i].1.categories.push(c);
            }
        }
        page.rows = by_rank
            .into_iter()
            .map(|(_, mut o)| {
                o.categories.sort();
                o
            })
            .collect();
        Ok(page)
    }
}

fn strings(df: &DataFrame, name: &str, action: &'static str) -> Result<Vec<Option<String>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(pe(action))?;
    Ok(c.str()
        .map_err(pe(action))?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

fn ints(df: &DataFrame, name: &str, action: &'static str) -> Result<Vec<Option<i64>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(pe(action))?;
    Ok(c.i64().map_err(pe(action))?.iter().collect())
}
