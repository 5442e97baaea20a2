//! The customers' purchase summary at `as_of`, as lifetimes'
//! `summary_data_from_transaction_data(…, freq="D", monetary_value_col=…)`
//! computes it: one period = one day, on completed orders dated before
//! `as_of`.
//!
//! Per customer with at least one completed order before `as_of`:
//!
//! * the *purchase days* are the distinct days with a completed order
//!   (several orders on one day are one purchase, their revenue summed);
//! * `frequency` = purchase days − 1 (the repeat purchases);
//! * `recency` = last purchase day − first purchase day (days);
//! * `t` = `as_of` − first purchase day (days, ≥ 1);
//! * `monetary_value` = mean revenue of the repeat purchase days (the first
//!   day left out), 0 without a repeat purchase.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::features::{LineValues, codes_without_nulls, column, epoch_days};
use crate::kpi::Sales;

use super::errors::{ClvError, Result};

/// The purchase summary of every customer at one date, sorted by customer id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary {
    pub as_of: NaiveDate,
    pub customer_ids: Vec<String>,
    /// Repeat purchase days.
    pub frequency: Vec<u32>,
    /// Days from the first to the last purchase day.
    pub recency: Vec<f64>,
    /// Days from the first purchase day to `as_of`.
    pub t: Vec<f64>,
    /// Mean revenue of the repeat purchase days (R$); 0 without one.
    pub monetary_value: Vec<f64>,
}

fn pe(action: &'static str) -> impl FnOnce(PolarsError) -> DataError {
    DataError::polars("clv", action)
}

/// A customer id and its purchase days `(day, revenue)`, in order.
pub(crate) type CustomerDays<'a> = (&'a str, Vec<(i32, f64)>);

/// Completed purchase days before `end` (and on or after `start` when
/// given): per customer, its days in order with each day's revenue.
/// Customers are returned sorted by id.
pub(crate) fn purchase_days(
    sales: &Sales,
    start: Option<NaiveDate>,
    end: NaiveDate,
) -> Result<Vec<CustomerDays<'_>>> {
    let values = LineValues::read(&sales.lines)?;
    let end = epoch_days(end);
    let start = start.map(epoch_days).unwrap_or(i32::MIN);
    let Coded {
        codes,
        ids,
        in_id_order,
    } = customer_codes(sales)?;
    let mut rows: Vec<(u32, i32, f64)> = Vec::new();
    for (&k, (d, done, r)) in codes.iter().zip(values.iter()) {
        let (true, Some(d), true) = (k != NO_CUSTOMER, d, done) else {
            continue;
        };
        if d >= end || d < start {
            continue;
        }
        rows.push((k, d, r.unwrap_or(0.0)));
    }
    // Stable: a day's lines are summed in line order, whatever the codes.
    rows.par_sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut out: Vec<CustomerDays<'_>> = Vec::new();
    let mut current = NO_CUSTOMER;
    for (k, d, r) in rows {
        match out.last_mut() {
            Some((_, days)) if k == current => match days.last_mut() {
                Some((last, sum)) if *last == d => *sum += r,
                _ => days.push((d, r)),
            },
            _ => {
                current = k;
                out.push((ids[k as usize], vec![(d, r)]));
            }
        }
    }
    if !in_id_order {
        out.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    Ok(out)
}

/// A line without a customer id.
const NO_CUSTOMER: u32 = u32::MAX;

/// Each line's customer as a code ([`NO_CUSTOMER`] without one), the id of
/// each code, and whether code order is id order.
struct Coded<'a> {
    codes: Cow<'a, [u32]>,
    ids: Vec<&'a str>,
    in_id_order: bool,
}

/// Each line's customer as a code, the id of each code, and whether code
/// order is id order. The view's `customer_key` when every line has one and
/// the customers' ids are strictly increasing (a key is a row of
/// `sales.customers`, sorted by id: nothing hashed); otherwise (a view
/// built by hand, tables that were not cleaned) the ids' text coded by
/// first appearance.
fn customer_codes(sales: &Sales) -> Result<Coded<'_>> {
    let lines = &sales.lines;
    if lines.columns().iter().any(|c| c.name() == "customer_key")
        && let Some(keys) = codes_without_nulls(lines, "customer_key")?
    {
        let ids = column(&sales.customers, "customer_id")?
            .str()
            .map_err(pe("reading the customer ids"))?;
        let ids: Vec<&str> = ids.iter().flatten().collect();
        if ids.len() == sales.customers.height()
            && keys.iter().all(|&k| (k as usize) < ids.len())
            && ids.windows(2).all(|w| w[0] < w[1])
        {
            return Ok(Coded {
                codes: keys,
                ids,
                in_id_order: true,
            });
        }
    }
    let customer = column(lines, "customer_id")?
        .str()
        .map_err(pe("reading the sales lines"))?;
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut ids: Vec<&str> = Vec::new();
    let codes = customer
        .iter()
        .map(|c| match c {
            None => NO_CUSTOMER,
            Some(c) => *index.entry(c).or_insert_with(|| {
                ids.push(c);
                (ids.len() - 1) as u32
            }),
        })
        .collect();
    Ok(Coded {
        codes: Cow::Owned(codes),
        ids,
        in_id_order: false,
    })
}

impl CustomerSummary {
    /// The summary of every customer with a completed order before `as_of`.
    pub fn compute(sales: &Sales, as_of: NaiveDate) -> Result<Self> {
        let customers = purchase_days(sales, None, as_of)?;
        if customers.is_empty() {
            return Err(ClvError::data(
                "purchase summary",
                format!("at least one completed order before {as_of}"),
                "none",
            ));
        }
        let end = epoch_days(as_of);
        let n = customers.len();
        let mut s = CustomerSummary {
            as_of,
            customer_ids: Vec::with_capacity(n),
            frequency: Vec::with_capacity(n),
            recency: Vec::with_capacity(n),
            t: Vec::with_capacity(n),
            monetary_value: Vec::with_capacity(n),
        };
        for (id, days) in customers {
            let (first, last) = (days[0].0, days[days.len() - 1].0);
            let x = days.len() - 1;
            let repeat: f64 = days[1..].iter().map(|d| d.1).sum();
            s.customer_ids.push(id.to_string());
            s.frequency.push(x as u32);
            s.recency.push(f64::from(last - first));
            s.t.push(f64::from(end - first));
            s.monetary_value
                .push(if x > 0 { repeat / x as f64 } else { 0.0 });
        }
        Ok(s)
    }

    /// A summary from its columns (hand-made cases, other sources), checked:
    /// equal lengths, `frequency ≥ 0`, `0 ≤ recency ≤ t`, `t > 0`,
    /// `recency > 0` and `monetary_value > 0` with a repeat purchase,
    /// `recency = 0` without one.
    pub fn from_parts(
        as_of: NaiveDate,
        customer_ids: Vec<String>,
        frequency: Vec<u32>,
        recency: Vec<f64>,
        t: Vec<f64>,
        monetary_value: Vec<f64>,
    ) -> Result<Self> {
        let n = customer_ids.len();
        for (what, len) in [
            ("frequency", frequency.len()),
            ("recency", recency.len()),
            ("t", t.len()),
            ("monetary_value", monetary_value.len()),
        ] {
            if len != n {
                return Err(ClvError::data(
                    "summary columns",
                    format!("{n} values in `{what}` (one per customer id)"),
                    len,
                ));
            }
        }
        if n == 0 {
            return Err(ClvError::data(
                "purchase summary",
                "at least one customer",
                "none",
            ));
        }
        for i in 0..n {
            let (x, r, tt, m) = (frequency[i], recency[i], t[i], monetary_value[i]);
            let ok = tt.is_finite()
                && tt > 0.0
                && r.is_finite()
                && (0.0..=tt).contains(&r)
                && m.is_finite()
                && if x > 0 { r > 0.0 && m > 0.0 } else { r == 0.0 };
            if !ok {
                return Err(ClvError::data(
                    "purchase summary",
                    "t > 0, 0 ≤ recency ≤ t, and with frequency > 0 a positive recency and monetary value (recency 0 without)",
                    format!(
                        "customer `{}`: frequency {x}, recency {r}, t {tt}, monetary value {m}",
                        customer_ids[i]
                    ),
                ));
            }
        }
        Ok(CustomerSummary {
            as_of,
            customer_ids,
            frequency,
            recency,
            t,
            monetary_value,
        })
    }

    pub fn len(&self) -> usize {
        self.customer_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer_ids.is_empty()
    }

    /// Customers with at least one repeat purchase day.
    pub fn repeat_customers(&self) -> usize {
        self.frequency.iter().filter(|&&x| x > 0).count()
    }

    /// Row of customer `id` (the ids are sorted).
    pub fn position(&self, id: &str) -> Option<usize> {
        self.customer_ids
            .binary_search_by(|c| c.as_str().cmp(id))
            .ok()
    }

    /// The summary as a frame: `customer_id`, `frequency`, `recency`, `T`,
    /// `monetary_value` (lifetimes' column names).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let n = self.len();
        DataFrame::new(
            n,
            vec![
                Column::new("customer_id".into(), &self.customer_ids),
                Column::new("frequency".into(), &self.frequency),
                Column::new("recency".into(), &self.recency),
                Column::new("T".into(), &self.t),
                Column::new("monetary_value".into(), &self.monetary_value),
            ],
        )
        .map_err(|e| pe("building the summary frame")(e).into())
    }
}

/// Repeat purchases in a later period: per customer of `ids` (sorted), the
/// distinct completed purchase days in `[start, end)`.
pub(crate) fn purchase_days_between(
    sales: &Sales,
    ids: &[String],
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<u32>> {
    let later = purchase_days(sales, Some(start), end)?;
    let mut out = vec![0u32; ids.len()];
    for (id, days) in later {
        if let Ok(i) = ids.binary_search_by(|c| c.as_str().cmp(id)) {
            out[i] = days.len() as u32;
        }
    }
    Ok(out)
}
