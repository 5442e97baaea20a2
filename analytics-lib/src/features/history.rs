//! [`CustomerHistory`]: the sales lines grouped by customer once, and the
//! one-pass aggregates behind [`super::customer_features`] at each cutoff.

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use rayon::prelude::*;

use super::columns::{Lines, NO_CATEGORY, column};
use super::*;
use crate::sums::Kahan;

/// The sales lines grouped by customer once, for features at several
/// cutoffs (training computes them at three): reading the columns, coding
/// the categories and grouping the lines by customer is done here once
/// instead of at every cutoff.
///
/// The grouping is a counting sort on the lines' `customer_key` (the
/// customer's row in [`Sales::customers`], which are sorted by id): no
/// hashing of ids, and the customers come out in id order.
pub struct CustomerHistory<'a> {
    default_as_of: NaiveDate,
    lines: Lines,
    /// Category names by code.
    categories: Vec<&'a str>,
    /// The id of each customer with lines, in id order.
    ids: Vec<&'a str>,
    /// Customer `g`'s lines are `rows[start[g]..start[g + 1]]`, in row order.
    start: Vec<usize>,
    rows: Vec<u32>,
}

impl<'a> CustomerHistory<'a> {
    pub fn new(sales: &'a Sales) -> Result<Self> {
        let (lines, categories) = Lines::read(&sales.lines)?;
        let keys = column(&sales.lines, "customer_key")?
            .u32()
            .map_err(pe("reading the sales lines' customer codes"))?;
        if keys.null_count() > 0 {
            return Err(DataError::InvalidArgument {
                name: "sales lines",
                expected: "every line's customer in the customers table (cleaned data, as \
                           Source::prepare gives)"
                    .into(),
                found: format!("{} lines of unknown customers", keys.null_count()),
            });
        }
        let ids = column(&sales.customers, "customer_id")?
            .str()
            .map_err(pe("reading the customer ids"))?;
        // Lines per customer, then each customer's first slot.
        let mut count = vec![0usize; ids.len() + 1];
        for k in keys.into_no_null_iter() {
            let k = k as usize;
            if k >= ids.len() {
                return Err(DataError::InvalidArgument {
                    name: "sales lines",
                    expected: format!("customer codes below {}", ids.len()),
                    found: format!("code {k}"),
                });
            }
            count[k + 1] += 1;
        }
        for k in 1..count.len() {
            count[k] += count[k - 1];
        }
        let mut next = count.clone();
        let mut rows = vec![0u32; keys.len()];
        for (r, k) in keys.into_no_null_iter().enumerate() {
            let slot = &mut next[k as usize];
            rows[*slot] = r as u32;
            *slot += 1;
        }
        // Keep the customers that have lines.
        let mut kept_ids = Vec::new();
        let mut start = vec![0usize];
        for (k, id) in ids.iter().enumerate() {
            if count[k + 1] > count[k] {
                kept_ids.push(id.unwrap_or_default());
                start.push(count[k + 1]);
            }
        }
        Ok(CustomerHistory {
            default_as_of: sales.default_as_of,
            lines,
            categories,
            ids: kept_ids,
            start,
            rows,
        })
    }

    /// The rows of customer `g` (in id order), in row order.
    fn rows_of(&self, g: usize) -> &[u32] {
        &self.rows[self.start[g]..self.start[g + 1]]
    }

    /// [`customer_features`] at `cutoff`.
    pub fn at(&self, cutoff: NaiveDate, categories: Option<&[String]>) -> Result<CustomerFeatures> {
        if let Some(c) = categories {
            check_categories(c)?;
        }
        let agg = Aggregates::scan(self, cutoff);
        let categories = match categories {
            Some(c) => c.to_vec(),
            None => {
                let mut seen = agg.history_categories();
                seen.sort();
                seen
            }
        };
        let frame = agg.frame(cutoff, &categories)?;
        if frame.height() == 0 {
            return Err(no_order_before(cutoff));
        }
        Ok(CustomerFeatures {
            cutoff,
            categories,
            frame,
        })
    }
}

/// One customer's aggregates over its completed lines dated before
/// `cutoff + 90 d`.
#[derive(Default)]
struct Customer {
    /// Has a completed line before the cutoff (only those get a row).
    history: bool,
    last: i32,
    first: i32,
    frequency: u32,
    orders_90d: u32,
    monetary: Kahan,
    revenue_90d: Kahan,
    target: Kahan,
    /// Revenue per category code of the history lines (every category
    /// seen, even on a line without revenue).
    categories: Vec<(u32, Kahan)>,
}

/// Per-customer aggregates, customers sorted by id.
struct Aggregates<'h, 'a> {
    history: &'h CustomerHistory<'a>,
    customers: Vec<Customer>,
}

impl<'h, 'a> Aggregates<'h, 'a> {
    fn scan(history: &'h CustomerHistory<'a>, cutoff: NaiveDate) -> Aggregates<'h, 'a> {
        let cols = &history.lines;
        let t = epoch_days(cutoff);
        let recent_start = epoch_days(cutoff - Duration::days(HORIZON_DAYS));
        let target_end = epoch_days(cutoff + Duration::days(HORIZON_DAYS));
        let customers: Vec<Customer> = (0..history.ids.len())
            .into_par_iter()
            // Each thread's order lists are reused from customer to
            // customer (two allocations per customer otherwise).
            .map_init(
                <(Vec<u32>, Vec<u32>)>::default,
                |(orders, recent_orders), g| {
                    orders.clear();
                    recent_orders.clear();
                    let rows = history.rows_of(g);
                    let mut c = Customer {
                        last: i32::MIN,
                        first: i32::MAX,
                        ..Default::default()
                    };
                    for &r in rows {
                        let r = r as usize;
                        let Some(day) = cols.date[r] else { continue };
                        if !cols.completed[r] || day >= target_end {
                            continue;
                        }
                        let rev = cols.revenue[r];
                        if day >= t {
                            if let Some(v) = rev {
                                c.target.add(v);
                            }
                            continue;
                        }
                        c.history = true;
                        c.last = c.last.max(day);
                        c.first = c.first.min(day);
                        let recent = day >= recent_start;
                        let o = cols.order[r];
                        // Lines of one order are usually next to each other.
                        if orders.last() != Some(&o) {
                            orders.push(o);
                        }
                        if recent && recent_orders.last() != Some(&o) {
                            recent_orders.push(o);
                        }
                        let code = cols.category[r];
                        let slot = (code != NO_CATEGORY).then(|| {
                            match c.categories.iter().position(|(k, _)| *k == code) {
                                Some(i) => i,
                                None => {
                                    c.categories.push((code, Kahan::default()));
                                    c.categories.len() - 1
                                }
                            }
                        });
                        let Some(v) = rev else { continue };
                        c.monetary.add(v);
                        if recent {
                            c.revenue_90d.add(v);
                        }
                        if let Some(i) = slot {
                            c.categories[i].1.add(v);
                        }
                    }
                    let distinct = |v: &mut Vec<u32>| {
                        if v.len() > 1 {
                            v.sort_unstable();
                            v.dedup();
                        }
                        v.len() as u32
                    };
                    c.frequency = distinct(orders);
                    c.orders_90d = distinct(recent_orders);
                    c
                },
            )
            .collect();
        Aggregates { history, customers }
    }

    /// Distinct categories of the lines before the cutoff.
    fn history_categories(&self) -> Vec<String> {
        let mut seen = vec![false; self.history.categories.len()];
        for c in self.customers.iter().filter(|c| c.history) {
            for (k, _) in &c.categories {
                seen[*k as usize] = true;
            }
        }
        self.history
            .categories
            .iter()
            .zip(seen)
            .filter(|(_, s)| *s)
            .map(|(c, _)| c.to_string())
            .collect()
    }

    /// One row per customer with history, sorted by `customer_id`.
    fn frame(&self, cutoff: NaiveDate, categories: &[String]) -> Result<DataFrame> {
        let t = epoch_days(cutoff);
        let codes: Vec<Option<u32>> = categories
            .iter()
            .map(|cat| {
                self.history
                    .categories
                    .iter()
                    .position(|c| c == cat)
                    .map(|k| k as u32)
            })
            .collect();
        let n = self.customers.iter().filter(|c| c.history).count();
        let width = BASE_FEATURES.len() + categories.len() + 1;
        let mut values: Vec<Vec<f64>> = (0..width).map(|_| Vec::with_capacity(n)).collect();
        let mut ids = Vec::with_capacity(n);
        for (c, id) in self.customers.iter().zip(&self.history.ids) {
            if !c.history {
                continue;
            }
            ids.push(*id);
            let m = round_money(c.monetary.sum);
            let base = [
                f64::from(t - c.last),
                f64::from(c.frequency),
                m,
                f64::from(t - c.first),
                m / f64::from(c.frequency),
                f64::from(c.orders_90d),
                round_money(c.revenue_90d.sum),
            ];
            let shares = codes.iter().map(|code| {
                if m > 0.0 {
                    let spent = code
                        .and_then(|k| c.categories.iter().find(|(j, _)| *j == k))
                        .map_or(0.0, |(_, s)| round_money(s.sum));
                    spent / m
                } else {
                    0.0
                }
            });
            let row = base
                .into_iter()
                .chain(shares)
                .chain([round_money(c.target.sum)]);
            for (col, v) in values.iter_mut().zip(row) {
                col.push(v);
            }
        }
        let names = feature_names(categories)
            .into_iter()
            .chain([TARGET.to_string()]);
        let mut columns = vec![Column::new("customer_id".into(), ids)];
        columns.extend(
            names
                .zip(values)
                .map(|(name, v)| Column::new(name.into(), v)),
        );
        DataFrame::new(n, columns).map_err(pe("assembling customer features"))
    }
}

impl FeatureData for CustomerHistory<'_> {
    fn default_as_of(&self) -> NaiveDate {
        self.default_as_of
    }

    /// From the grouped lines: the categories of completed lines dated
    /// before `cutoff` (as [`categories_before`] on the lines).
    fn categories_before(&self, cutoff: NaiveDate) -> Result<Vec<String>> {
        let t = epoch_days(cutoff);
        let mut seen = vec![false; self.categories.len()];
        let l = &self.lines;
        for r in 0..l.category.len() {
            let code = l.category[r];
            if code != NO_CATEGORY && l.completed[r] && l.date[r].is_some_and(|d| d < t) {
                seen[code as usize] = true;
            }
        }
        let mut cats: Vec<String> = self
            .categories
            .iter()
            .zip(seen)
            .filter(|(_, s)| *s)
            .map(|(c, _)| c.to_string())
            .collect();
        cats.sort();
        Ok(cats)
    }

    fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<CustomerFeatures> {
        self.at(cutoff, categories)
    }

    fn for_cutoffs(&self) -> Result<Box<dyn FeatureData + '_>> {
        Ok(Box::new(Borrowed(self)))
    }
}
