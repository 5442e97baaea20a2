//! Push-down: the heavy aggregations as SQL run inside Snowflake, so that
//! only aggregated rows come back.
//!
//! Each function here builds the SQL of one aggregation from the same
//! definitions as the local polars code ([`crate::kpi`],
//! [`crate::features`]); [`SnowflakeSource`] runs it and shapes the result
//! exactly like the local function does. Every query starts from the
//! cleaned tables and their line-level view, [`cleaning_ctes`] (final
//! cleaning as SQL, [`super::cleaning`]): the SQL twin of
//! [`crate::kpi::Sales`] after [`crate::clean`]:
//!
//! ```sql
//! lines = clean_order_items ⋈ clean_orders (inner) ⟕ clean_products ⟕ clean_customers,
//!         order_date = CAST(order_ts AS DATE),
//!         revenue = quantity × unit_price × (1 − discount)   -- DECIMAL(38, 10): exact sums
//! ```
//!
//! What comes back per job: the cleaning report and the category list
//! (a few dozen rows, [`summary_sql`]), the KPIs (one row, and one per
//! month), and the customer features (one row per customer and cutoff,
//! with the revenue per category from which any category list's shares
//! are derived, [`features_sql`]). `serve`'s dashboard asks per view
//! ([`super::dashboard`]).
//! Floating-point results equal the local path's up to the order of the
//! additions (the warehouse's sums are exact, polars' are compensated).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use super::cleaning::{TAGGED, cleaning_ctes, report_from_counts, sum_f64};
use super::snowflake::{SnowflakeSource, quote};
use super::{Result, SourceError};
use crate::clean::CleaningReport;
use crate::contract::STATUS_COMPLETED;
use crate::error::DataError;
use crate::kpi::{Filter, KpiOptions, Kpis};

/// `WITH <cleaning>, <more> <select>`: a query on the cleaned tables.
fn on_clean(more: &str, select: &str) -> String {
    if more.is_empty() {
        format!("WITH {} {select}", cleaning_ctes())
    } else {
        format!("WITH {}, {more} {select}", cleaning_ctes())
    }
}

/// A DATE literal.
pub fn date_lit(d: NaiveDate) -> String {
    format!("CAST('{d}' AS DATE)")
}

/// `column IN ('a', 'b')`, values quoted; `FALSE` for no values.
pub(super) fn in_list(column: &str, values: &[impl AsRef<str>]) -> String {
    if values.is_empty() {
        // An explicit empty customer set keeps nothing (as polars' is_in).
        return "FALSE".into();
    }
    let list: Vec<String> = values.iter().map(|v| quote(v.as_ref())).collect();
    format!("{column} IN ({})", list.join(", "))
}

/// The filter's scope (categories, states, channels, customers) as SQL.
pub fn scope_sql(filter: &Filter) -> String {
    let mut preds = vec!["TRUE".to_string()];
    if !filter.categories.is_empty() {
        preds.push(in_list("category", &filter.categories));
    }
    if !filter.states.is_empty() {
        preds.push(in_list("state", &filter.states));
    }
    if !filter.channels.is_empty() {
        preds.push(in_list("channel", &filter.channels));
    }
    if let Some(customers) = &filter.customers {
        preds.push(in_list("customer_id", customers));
    }
    preds.join(" AND ")
}

/// Scope and period (days inclusive) as SQL.
pub fn filter_sql(filter: &Filter) -> String {
    let mut s = scope_sql(filter);
    if let Some(from) = filter.from {
        let _ = write!(s, " AND order_date >= {}", date_lit(from));
    }
    if let Some(to) = filter.to {
        let _ = write!(s, " AND order_date <= {}", date_lit(to));
    }
    s
}

fn completed() -> String {
    format!("status = {}", quote(STATUS_COMPLETED))
}

/// Revenue, distinct completed orders and distinct customers in the filter.
pub fn totals_sql(filter: &Filter) -> String {
    on_clean(
        "",
        &format!(
            "SELECT {} AS \"revenue\", COUNT(DISTINCT order_id) AS \"orders\", \
COUNT(DISTINCT customer_id) AS \"customers\" FROM lines WHERE {} AND {}",
            sum_f64("revenue"),
            completed(),
            filter_sql(filter)
        ),
    )
}

/// Customers with ≥ 1 and with ≥ 2 completed orders in the filter.
pub fn repeat_sql(filter: &Filter) -> String {
    on_clean(
        &format!(
            "per AS (SELECT customer_id, COUNT(DISTINCT order_id) AS n FROM lines \
WHERE {} AND {} GROUP BY customer_id)",
            completed(),
            filter_sql(filter)
        ),
        "SELECT COUNT(*) AS \"buyers\", SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END) AS \"repeaters\" FROM per",
    )
}

/// Revenue per calendar month in the filter: `year`, `month`, `revenue`.
pub fn monthly_sql(filter: &Filter) -> String {
    on_clean(
        "",
        &format!(
            "SELECT EXTRACT(YEAR FROM order_date) AS \"year\", EXTRACT(MONTH FROM order_date) AS \"month\", \
{} AS \"revenue\" FROM lines WHERE {} AND {} GROUP BY 1, 2 ORDER BY 1, 2",
            sum_f64("revenue"),
            completed(),
            filter_sql(filter)
        ),
    )
}

/// Churn at `as_of` with a window of `w` days, in the filter's scope (any
/// period): `active` (customers active in `[as_of − 2w, as_of − w)`) and
/// `churned` (those of them with no completed order in `[as_of − w, as_of)`).
pub fn churn_sql(filter: &Filter, as_of: NaiveDate, window_days: i64) -> String {
    let w = Duration::days(window_days);
    let active_in = |a: NaiveDate, b: NaiveDate| {
        format!(
            "SELECT DISTINCT customer_id FROM scope WHERE order_date >= {} AND order_date < {}",
            date_lit(a),
            date_lit(b)
        )
    };
    on_clean(
        &format!(
            "scope AS (SELECT * FROM lines WHERE {} AND {}), earlier AS ({}), later AS ({})",
            completed(),
            scope_sql(filter),
            active_in(as_of - w - w, as_of - w),
            active_in(as_of - w, as_of)
        ),
        "SELECT COUNT(*) AS \"active\", SUM(CASE WHEN l.customer_id IS NULL THEN 1 ELSE 0 END) AS \"churned\" \
FROM earlier e LEFT JOIN later l ON l.customer_id = e.customer_id",
    )
}

/// The date of the last `order_ts` of the cleaned orders (the default
/// `as_of` is its next day).
pub fn last_order_sql() -> String {
    on_clean(
        "",
        "SELECT CAST(MAX(order_ts) AS DATE) AS \"last\" FROM clean_orders",
    )
}

/// What a job needs before its features, in one query over the cleaned
/// tables: the cleaning report's counts (`what = 'rule'`: `pass`, `rule`,
/// `n`), the date of the last order (`what = 'last'`: `day`) and every
/// category of completed lines with the date of its first one
/// (`what = 'category'`: `name`, `day`).
pub fn summary_sql() -> String {
    let rule_rows: Vec<String> = TAGGED
        .iter()
        .enumerate()
        .map(|(pass, t)| {
            format!(
                "SELECT CAST('rule' AS VARCHAR) AS \"what\", CAST({pass} AS BIGINT) AS \"pass\", \
CAST(rule_code AS BIGINT) AS \"rule\", CAST(COUNT(*) AS BIGINT) AS \"n\", \
CAST(NULL AS VARCHAR) AS \"name\", CAST(NULL AS DATE) AS \"day\" FROM {t} GROUP BY rule_code"
            )
        })
        .collect();
    let rule_rows = rule_rows.join(" UNION ALL ");
    on_clean(
        "",
        &format!(
            "{rule_rows} UNION ALL \
SELECT 'last', NULL, NULL, NULL, NULL, CAST(MAX(order_ts) AS DATE) FROM clean_orders UNION ALL \
SELECT 'category', NULL, NULL, COUNT(*), category, MIN(order_date) FROM lines \
WHERE {} AND category IS NOT NULL GROUP BY category",
            completed()
        ),
    )
}

/// Customer aggregates at each of `cutoffs` ([`crate::features`]), one
/// row per customer with a completed order before the cutoff: `cutoff`,
/// `customer_id`, `recency_days`, `frequency`, `monetary`, `tenure_days`,
/// `orders_90d`, `revenue_90d`, the revenue before the cutoff in each of
/// `categories` (`cat_0`, `cat_1`…) and `target` (revenue in
/// `[T, T + horizon)`). Shares and the average ticket are derived from
/// these by the caller, as the local code derives them.
pub fn features_sql(cutoffs: &[NaiveDate], categories: &[String], horizon_days: i64) -> String {
    let h = Duration::days(horizon_days);
    let cuts: Vec<String> = cutoffs
        .iter()
        .map(|&t| {
            format!(
                "SELECT {} AS cutoff, {} AS recent, {} AS horizon_end",
                date_lit(t),
                date_lit(t - h),
                date_lit(t + h)
            )
        })
        .collect();
    let mut cats = String::new();
    let mut cat_out = String::new();
    for (i, c) in categories.iter().enumerate() {
        let _ = write!(
            cats,
            ", {} AS cat_{i}",
            sum_f64(&format!(
                "CASE WHEN d.category = {} THEN d.revenue ELSE 0 END",
                quote(c)
            ))
        );
        let _ = write!(cat_out, ", h.cat_{i} AS \"cat_{i}\"");
    }
    on_clean(
        &format!(
            "done AS (SELECT customer_id, order_id, order_date, category, revenue FROM lines WHERE {completed}), \
cuts AS ({cuts}), \
hist AS (SELECT k.cutoff AS cutoff, d.customer_id AS customer_id, \
DATEDIFF(day, MAX(d.order_date), k.cutoff) AS recency_days, \
COUNT(DISTINCT d.order_id) AS frequency, \
{monetary} AS monetary, \
DATEDIFF(day, MIN(d.order_date), k.cutoff) AS tenure_days, \
COUNT(DISTINCT CASE WHEN d.order_date >= k.recent THEN d.order_id END) AS orders_90d, \
{recent} AS revenue_90d{cats} \
FROM done d JOIN cuts k ON d.order_date < k.cutoff GROUP BY k.cutoff, d.customer_id), \
tgt AS (SELECT k.cutoff AS cutoff, d.customer_id AS customer_id, {target} AS target FROM done d \
JOIN cuts k ON d.order_date >= k.cutoff AND d.order_date < k.horizon_end GROUP BY k.cutoff, d.customer_id)",
            completed = completed(),
            cuts = cuts.join(" UNION ALL "),
            monetary = sum_f64("d.revenue"),
            recent = sum_f64("CASE WHEN d.order_date >= k.recent THEN d.revenue ELSE 0 END"),
            target = sum_f64("d.revenue"),
        ),
        &format!(
            "SELECT h.cutoff AS \"cutoff\", h.customer_id AS \"customer_id\", h.recency_days AS \"recency_days\", \
h.frequency AS \"frequency\", h.monetary AS \"monetary\", h.tenure_days AS \"tenure_days\", \
h.orders_90d AS \"orders_90d\", h.revenue_90d AS \"revenue_90d\"{cat_out}, \
COALESCE(t.target, 0) AS \"target\" \
FROM hist h LEFT JOIN tgt t ON t.cutoff = h.cutoff AND t.customer_id = h.customer_id"
        ),
    )
}

/// The CLV purchase summary at `as_of` ([`crate::clv::CustomerSummary`]):
/// per customer with a completed order before `as_of`, its purchase days
/// (several orders on one day are one purchase, their revenue summed):
/// `frequency` (days − 1), `recency` (last − first day), `t` (`as_of` −
/// first day) and `repeat_revenue` (the revenue of every day but the
/// first, exact in the warehouse; the mean is taken on this side). One row
/// per customer comes back.
pub fn clv_summary_sql(as_of: NaiveDate) -> String {
    let at = date_lit(as_of);
    on_clean(
        &format!(
            "pdays AS (SELECT customer_id, order_date AS d, SUM(revenue) AS r FROM lines \
WHERE {} AND customer_id IS NOT NULL AND order_date IS NOT NULL AND order_date < {at} \
GROUP BY customer_id, order_date), \
per AS (SELECT customer_id, MIN(d) AS first_day, MAX(d) AS last_day, COUNT(*) AS n_days, \
SUM(r) AS total FROM pdays GROUP BY customer_id)",
            completed()
        ),
        &format!(
            "SELECT p.customer_id AS \"customer_id\", p.n_days - 1 AS \"frequency\", \
DATEDIFF(day, p.first_day, p.last_day) AS \"recency\", DATEDIFF(day, p.first_day, {at}) AS \"t\", \
p.total - f.r AS \"repeat_revenue\" \
FROM per p JOIN pdays f ON f.customer_id = p.customer_id AND f.d = p.first_day"
        ),
    )
}

pub(super) fn pe(action: &'static str) -> impl FnOnce(PolarsError) -> SourceError {
    move |e| DataError::polars("snowflake", action)(e).into()
}

/// Row 0 of a numeric column as f64 (null or no rows → None).
fn scalar(df: &DataFrame, name: &str) -> Result<Option<f64>> {
    if df.height() == 0 {
        return Ok(None);
    }
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(pe("reading an aggregate"))?;
    let v = c.f64().map_err(pe("reading an aggregate"))?.get(0);
    Ok(v)
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// A column of a result as f64s (nulls as 0).
pub(super) fn f64s(df: &DataFrame, name: &str, action: &'static str) -> Result<Vec<f64>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(pe(action))?;
    Ok(c.f64()
        .map_err(pe(action))?
        .iter()
        .map(|v| v.unwrap_or(0.0))
        .collect())
}

/// A DATE column as dates.
pub(super) fn dates(
    df: &DataFrame,
    name: &str,
    action: &'static str,
) -> Result<Vec<Option<NaiveDate>>> {
    let c = df
        .column(name)
        .and_then(|c| c.cast(&DataType::Date))
        .map_err(pe(action))?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok(c.date()
        .map_err(pe(action))?
        .physical()
        .iter()
        .map(|d| d.map(|d| epoch + Duration::days(i64::from(d))))
        .collect())
}

fn no_orders() -> SourceError {
    DataError::InvalidArgument {
        name: "orders",
        expected: "at least one order with a timestamp (after final cleaning)".into(),
        found: "no orders".into(),
    }
    .into()
}

/// What the warehouse says about its cleaned tables before any feature:
/// [`summary_sql`], read.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Final cleaning's report, counted in the warehouse.
    pub report: CleaningReport,
    /// The day after the last order (the default reference date).
    pub default_as_of: NaiveDate,
    /// Every category of completed lines with the date of its first line,
    /// sorted by name.
    pub categories: Vec<(String, NaiveDate)>,
}

impl Summary {
    /// Order lines after cleaning.
    pub fn lines(&self) -> u64 {
        self.report.rows.get("order_items").map_or(0, |r| r.output)
    }
}

impl SnowflakeSource {
    /// The day after the last order (the default reference date).
    pub fn default_as_of(&self) -> Result<NaiveDate> {
        let df = self.query_as(&last_order_sql(), "finding the last order")?;
        if df.height() == 0 {
            return Err(no_orders());
        }
        dates(&df, "last", "finding the last order")?[0]
            .map(|d| d + Duration::days(1))
            .ok_or_else(no_orders)
    }

    /// The cleaning report, the default reference date and the categories,
    /// in one query ([`summary_sql`]).
    pub fn summary(&self) -> Result<Summary> {
        const ACTION: &str = "reading the cleaning report";
        let df = self.query_as(&summary_sql(), ACTION)?;
        if df.height() == 0 {
            return Err(no_orders());
        }
        let what = df
            .column("what")
            .and_then(|c| c.str().cloned())
            .map_err(pe(ACTION))?;
        let name = df
            .column("name")
            .and_then(|c| c.str().cloned())
            .map_err(pe(ACTION))?;
        let (pass, rule, n) = (
            f64s(&df, "pass", ACTION)?,
            f64s(&df, "rule", ACTION)?,
            f64s(&df, "n", ACTION)?,
        );
        let day = dates(&df, "day", ACTION)?;
        let mut counts = Vec::new();
        let mut last = None;
        let mut categories = Vec::new();
        for i in 0..df.height() {
            match what.get(i) {
                Some("rule") => counts.push((pass[i] as usize, rule[i] as usize, n[i] as u64)),
                Some("last") => last = day[i],
                Some("category") => {
                    if let (Some(c), Some(d)) = (name.get(i), day[i]) {
                        categories.push((c.to_string(), d));
                    }
                }
                _ => {}
            }
        }
        categories.sort();
        Ok(Summary {
            report: report_from_counts(&counts),
            default_as_of: last.map(|d| d + Duration::days(1)).ok_or_else(no_orders)?,
            categories,
        })
    }

    /// Revenue per calendar month (`YYYY-MM`), computed in Snowflake.
    pub fn monthly_revenue(&self, filter: &Filter) -> Result<BTreeMap<String, f64>> {
        filter.check()?;
        let df = self.query_as(&monthly_sql(filter), "computing monthly revenue")?;
        let mut out = BTreeMap::new();
        if df.height() == 0 {
            return Ok(out);
        }
        let y = f64s(&df, "year", "reading monthly revenue")?;
        let m = f64s(&df, "month", "reading monthly revenue")?;
        let r = f64s(&df, "revenue", "reading monthly revenue")?;
        for i in 0..df.height() {
            out.insert(format!("{:04}-{:02}", y[i] as i64, m[i] as i64), r[i]);
        }
        Ok(out)
    }

    /// Churn rate at `as_of`, computed in Snowflake (`None` when nobody was
    /// active in the earlier window).
    pub fn churn_rate(
        &self,
        filter: &Filter,
        as_of: NaiveDate,
        window_days: i64,
    ) -> Result<Option<f64>> {
        if window_days <= 0 {
            return Err(DataError::InvalidArgument {
                name: "churn_window_days",
                expected: "a positive number of days".into(),
                found: window_days.to_string(),
            }
            .into());
        }
        let df = self.query_as(&churn_sql(filter, as_of, window_days), "computing churn")?;
        Ok(ratio(
            scalar(&df, "churned")?.unwrap_or(0.0),
            scalar(&df, "active")?.unwrap_or(0.0),
        ))
    }

    /// The headline KPIs ([`crate::kpi::kpis`]), computed in Snowflake.
    pub fn kpis(&self, filter: &Filter, opts: &KpiOptions) -> Result<Kpis> {
        filter.check()?;
        let as_of = match opts.as_of.or(filter.to.map(|d| d + Duration::days(1))) {
            Some(d) => d,
            None => self.default_as_of()?,
        };
        let totals = self.query_as(&totals_sql(filter), "computing revenue and orders")?;
        let revenue = scalar(&totals, "revenue")?.unwrap_or(0.0);
        let orders = scalar(&totals, "orders")?.unwrap_or(0.0) as u64;
        let active_customers = scalar(&totals, "customers")?.unwrap_or(0.0) as u64;
        let repeat = self.query_as(&repeat_sql(filter), "computing the repeat purchase rate")?;
        Ok(Kpis {
            revenue,
            orders,
            average_ticket: ratio(revenue, orders as f64),
            active_customers,
            churn_rate_90d: self.churn_rate(filter, as_of, opts.churn_window_days)?,
            churn_window_days: opts.churn_window_days,
            repeat_purchase_rate: ratio(
                scalar(&repeat, "repeaters")?.unwrap_or(0.0),
                scalar(&repeat, "buyers")?.unwrap_or(0.0),
            ),
            as_of,
            monthly_revenue: self.monthly_revenue(filter)?,
        })
    }
}

#[cfg(feature = "models")]
pub use features::WarehouseFeatures;

#[cfg(feature = "models")]
mod features;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn filters_become_predicates_with_quoted_values() {
        let f = Filter {
            from: Some(d("2024-01-01")),
            to: Some(d("2024-03-31")),
            categories: vec!["casa".into(), "it's".into()],
            channels: vec!["web".into()],
            ..Filter::all()
        };
        let s = filter_sql(&f);
        assert!(s.contains("category IN ('casa', 'it''s')"), "{s}");
        assert!(s.contains("channel IN ('web')"), "{s}");
        assert!(
            s.contains("order_date >= CAST('2024-01-01' AS DATE)"),
            "{s}"
        );
        assert!(
            s.contains("order_date <= CAST('2024-03-31' AS DATE)"),
            "{s}"
        );
        assert_eq!(scope_sql(&Filter::all()), "TRUE");
        let none = Filter {
            customers: Some(vec![]),
            ..Filter::all()
        };
        assert_eq!(scope_sql(&none), "TRUE AND FALSE");
    }

    #[test]
    fn churn_windows_are_half_open_days() {
        let s = churn_sql(&Filter::all(), d("2025-01-01"), 90);
        assert!(s.contains("order_date >= CAST('2024-07-05' AS DATE) AND order_date < CAST('2024-10-03' AS DATE)"), "{s}");
        assert!(s.contains("order_date >= CAST('2024-10-03' AS DATE) AND order_date < CAST('2025-01-01' AS DATE)"), "{s}");
    }

    #[test]
    fn quotes_escape_backslashes_and_quotes() {
        assert_eq!(quote(r"a\'b"), r"'a\\''b'");
    }
}
