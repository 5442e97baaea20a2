//! Push-down: the heavy aggregations as SQL run inside Snowflake, so that
//! only aggregated rows come back.
//!
//! Each function here builds the SQL of one aggregation from the same
//! definitions as the local polars code ([`crate::kpi`],
//! [`crate::features`]); [`SnowflakeSource`] runs it and shapes the result
//! exactly like the local function does. Every query starts from one
//! line-level view, the SQL twin of [`crate::kpi::Sales`]:
//!
//! ```sql
//! lines = order_items ⋈ orders (inner) ⟕ products ⟕ customers,
//!         order_date = CAST(order_ts AS DATE),
//!         revenue = quantity × unit_price × (1 − discount)
//! ```
//!
//! The SQL does not repeat final cleaning ([`crate::clean`]): it expects
//! clean tables (the curated layer), and gives the local numbers on them
//! (float sums up to summation order).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use super::snowflake::{SnowflakeSource, quote};
use super::{Result, SourceError};
use crate::contract::STATUS_COMPLETED;
use crate::error::DataError;
use crate::kpi::{Filter, KpiOptions, Kpis};

/// The line-level view every aggregation starts from (a `WITH` item).
pub fn lines_cte() -> String {
    "lines AS (\
SELECT i.order_id AS order_id, o.customer_id AS customer_id, o.order_ts AS order_ts, \
CAST(o.order_ts AS DATE) AS order_date, o.channel AS channel, o.payment_type AS payment_type, \
o.status AS status, p.category AS category, c.state AS state, \
CAST(i.quantity AS DOUBLE) * i.unit_price * (1 - i.discount) AS revenue \
FROM order_items i \
JOIN orders o ON o.order_id = i.order_id \
LEFT JOIN products p ON p.product_id = i.product_id \
LEFT JOIN customers c ON c.customer_id = o.customer_id)"
        .to_string()
}

/// A DATE literal.
pub fn date_lit(d: NaiveDate) -> String {
    format!("CAST('{d}' AS DATE)")
}

fn in_list(column: &str, values: &[String]) -> String {
    if values.is_empty() {
        // An explicit empty customer set keeps nothing (as polars' is_in).
        return "FALSE".into();
    }
    let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
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
    format!(
        "WITH {} SELECT SUM(revenue) AS \"revenue\", COUNT(DISTINCT order_id) AS \"orders\", \
COUNT(DISTINCT customer_id) AS \"customers\" FROM lines WHERE {} AND {}",
        lines_cte(),
        completed(),
        filter_sql(filter)
    )
}

/// Customers with ≥ 1 and with ≥ 2 completed orders in the filter.
pub fn repeat_sql(filter: &Filter) -> String {
    format!(
        "WITH {}, per AS (SELECT customer_id, COUNT(DISTINCT order_id) AS n FROM lines \
WHERE {} AND {} GROUP BY customer_id) \
SELECT COUNT(*) AS \"buyers\", SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END) AS \"repeaters\" FROM per",
        lines_cte(),
        completed(),
        filter_sql(filter)
    )
}

/// Revenue per calendar month in the filter: `year`, `month`, `revenue`.
pub fn monthly_sql(filter: &Filter) -> String {
    format!(
        "WITH {} SELECT EXTRACT(YEAR FROM order_date) AS \"year\", EXTRACT(MONTH FROM order_date) AS \"month\", \
SUM(revenue) AS \"revenue\" FROM lines WHERE {} AND {} GROUP BY 1, 2 ORDER BY 1, 2",
        lines_cte(),
        completed(),
        filter_sql(filter)
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
    format!(
        "WITH {}, scope AS (SELECT * FROM lines WHERE {} AND {}), \
earlier AS ({}), later AS ({}) \
SELECT COUNT(*) AS \"active\", SUM(CASE WHEN l.customer_id IS NULL THEN 1 ELSE 0 END) AS \"churned\" \
FROM earlier e LEFT JOIN later l ON l.customer_id = e.customer_id",
        lines_cte(),
        completed(),
        scope_sql(filter),
        active_in(as_of - w - w, as_of - w),
        active_in(as_of - w, as_of)
    )
}

/// The last `order_ts` of all orders (the default `as_of` is its next day).
pub fn last_order_sql() -> String {
    "SELECT MAX(order_ts) AS \"last\" FROM orders".into()
}

/// Sorted distinct categories of completed lines before `cutoff`.
pub fn categories_sql(cutoff: NaiveDate) -> String {
    format!(
        "WITH {} SELECT DISTINCT category AS \"category\" FROM lines \
WHERE {} AND order_date < {} AND category IS NOT NULL",
        lines_cte(),
        completed(),
        date_lit(cutoff)
    )
}

/// Customer features at `cutoff` ([`crate::features`]), one row per customer
/// with a completed order before it; share columns are `share_0`, `share_1`…
/// in the order of `categories`.
pub fn features_sql(cutoff: NaiveDate, categories: &[String], horizon_days: i64) -> String {
    let t = date_lit(cutoff);
    let recent = date_lit(cutoff - Duration::days(horizon_days));
    let end = date_lit(cutoff + Duration::days(horizon_days));
    let mut cats = String::new();
    let mut shares = String::new();
    for (i, c) in categories.iter().enumerate() {
        let _ = write!(
            cats,
            ", SUM(CASE WHEN category = {} THEN revenue ELSE 0 END) AS cat_{i}",
            quote(c)
        );
        let _ = write!(
            shares,
            ", CASE WHEN h.monetary > 0 THEN h.cat_{i} / h.monetary ELSE 0 END AS \"share_{i}\""
        );
    }
    format!(
        "WITH {lines}, done AS (SELECT * FROM lines WHERE {completed}), \
hist AS (SELECT customer_id, \
DATEDIFF(day, MAX(order_date), {t}) AS recency_days, \
COUNT(DISTINCT order_id) AS frequency, \
SUM(revenue) AS monetary, \
DATEDIFF(day, MIN(order_date), {t}) AS tenure_days, \
COUNT(DISTINCT CASE WHEN order_date >= {recent} THEN order_id END) AS orders_90d, \
SUM(CASE WHEN order_date >= {recent} THEN revenue ELSE 0 END) AS revenue_90d{cats} \
FROM done WHERE order_date < {t} GROUP BY customer_id), \
tgt AS (SELECT customer_id, SUM(revenue) AS target FROM done \
WHERE order_date >= {t} AND order_date < {end} GROUP BY customer_id) \
SELECT h.customer_id AS \"customer_id\", h.recency_days AS \"recency_days\", h.frequency AS \"frequency\", \
h.monetary AS \"monetary\", h.tenure_days AS \"tenure_days\", h.monetary / h.frequency AS \"average_ticket\", \
h.orders_90d AS \"orders_90d\", h.revenue_90d AS \"revenue_90d\"{shares}, \
COALESCE(t.target, 0) AS \"target\" \
FROM hist h LEFT JOIN tgt t ON t.customer_id = h.customer_id",
        lines = lines_cte(),
        completed = completed(),
    )
}

fn pe(action: &'static str) -> impl FnOnce(PolarsError) -> SourceError {
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

impl SnowflakeSource {
    /// The day after the last order (the default reference date).
    pub fn default_as_of(&self) -> Result<NaiveDate> {
        let df = self.query_as(&last_order_sql(), "finding the last order")?;
        let last = if df.height() == 0 {
            None
        } else {
            df.column("last")
                .and_then(|c| c.cast(&DataType::Int64))
                .map_err(pe("finding the last order"))?
                .i64()
                .map_err(pe("finding the last order"))?
                .get(0)
        };
        last.and_then(chrono::DateTime::from_timestamp_micros)
            .map(|dt| dt.date_naive() + Duration::days(1))
            .ok_or_else(|| {
                DataError::InvalidArgument {
                    name: "orders",
                    expected: "at least one order with a timestamp".into(),
                    found: "no orders".into(),
                }
                .into()
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
        let get = |n: &str| -> Result<Column> {
            df.column(n)
                .and_then(|c| c.cast(&DataType::Float64))
                .map_err(pe("reading monthly revenue"))
        };
        let (y, m, r) = (get("year")?, get("month")?, get("revenue")?);
        let (y, m, r) = (
            y.f64().map_err(pe("monthly"))?,
            m.f64().map_err(pe("monthly"))?,
            r.f64().map_err(pe("monthly"))?,
        );
        for ((y, m), r) in y.iter().zip(m.iter()).zip(r.iter()) {
            if let (Some(y), Some(m)) = (y, m) {
                out.insert(format!("{:04}-{:02}", y as i64, m as i64), r.unwrap_or(0.0));
            }
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
        let default_as_of = self.default_as_of()?;
        let as_of = opts
            .as_of
            .or(filter.to.map(|d| d + Duration::days(1)))
            .unwrap_or(default_as_of);
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

    /// Sorted distinct categories of completed lines before `cutoff`.
    pub fn categories_before(&self, cutoff: NaiveDate) -> Result<Vec<String>> {
        let df = self.query_as(&categories_sql(cutoff), "listing categories")?;
        if df.height() == 0 {
            return Ok(Vec::new());
        }
        let ca = df
            .column("category")
            .and_then(|c| c.str().cloned())
            .map_err(pe("listing categories"))?;
        let mut cats: Vec<String> = ca.iter().flatten().map(str::to_string).collect();
        cats.sort();
        Ok(cats)
    }

    /// Customer-spend features at `cutoff` ([`crate::features::customer_features`]),
    /// computed in Snowflake: one row per customer comes back.
    #[cfg(feature = "models")]
    pub fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<crate::features::CustomerFeatures> {
        use crate::features::{
            BASE_FEATURES, CustomerFeatures, HORIZON_DAYS, SHARE_PREFIX, TARGET,
        };
        let categories: Vec<String> = match categories {
            Some(c) => {
                crate::features::check_categories(c)?;
                c.to_vec()
            }
            None => self.categories_before(cutoff)?,
        };
        let df = self.query_as(
            &features_sql(cutoff, &categories, HORIZON_DAYS),
            "computing customer features",
        )?;
        if df.height() == 0 {
            return Err(crate::features::no_order_before(cutoff).into());
        }
        let f = |n: &str| col(n).cast(DataType::Float64).alias(n);
        let mut select = vec![col("customer_id").cast(DataType::String)];
        select.extend(BASE_FEATURES.iter().map(|n| f(n)));
        for (i, c) in categories.iter().enumerate() {
            select.push(
                col(format!("share_{i}"))
                    .cast(DataType::Float64)
                    .alias(format!("{SHARE_PREFIX}{c}")),
            );
        }
        select.push(col("target").cast(DataType::Float64).alias(TARGET));
        let frame = df
            .lazy()
            .select(select)
            .sort(["customer_id"], SortMultipleOptions::default())
            .collect()
            .map_err(pe("shaping customer features"))?;
        Ok(CustomerFeatures {
            cutoff,
            categories,
            frame,
        })
    }
}

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
