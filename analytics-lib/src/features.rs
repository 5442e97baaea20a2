//! Customer-spend features at a cutoff date, and the target to predict.
//!
//! One function, [`customer_features`], used by training, evaluation, the
//! retrain job and serving. At a cutoff `T`, for every customer with at
//! least one completed order before `T` (completed orders only, like every
//! KPI; days are calendar days of `order_ts`):
//!
//! | column | meaning |
//! |---|---|
//! | `recency_days` | whole days from the last completed order's date to `T` |
//! | `frequency` | completed orders before `T` |
//! | `monetary` | revenue before `T` |
//! | `tenure_days` | whole days from the first completed order's date to `T` |
//! | `average_ticket` | `monetary / frequency` |
//! | `orders_90d` | completed orders in `[T − 90 d, T)` |
//! | `revenue_90d` | revenue in `[T − 90 d, T)` (also the naive baseline prediction) |
//! | `share_<category>` | share of `monetary` spent in each category of a fixed, sorted list |
//! | `target_spend_90d` | revenue in `[T, T + 90 d)` — the target, 0 when nothing was bought |
//!
//! Every feature reads only lines dated before `T`: nothing on or after the
//! cutoff leaks in (a test changes orders after `T` and checks that the
//! features stay the same). The category list is part of the model: training
//! takes it from the data before the training cutoff, and every later call
//! (test cutoff, serving) passes that same list, so the columns line up.
//! Revenue in categories not on the list counts in `monetary` but in no share.
//!
//! Money sums (`monetary`, `revenue_90d`, the revenue per category behind
//! the shares, the target) are rounded to a millionth of a real
//! ([`round_money`]) before anything is derived from them. Summed in another
//! order (a warehouse, [`crate::source::WarehouseFeatures`]) they differ in
//! their last bits; rounded, they are the same numbers, so a model trained on
//! Snowflake's aggregates is the model trained on the Parquet lines, and the
//! data fingerprint does not depend on the source. (Line revenues have a few
//! decimals — cents times a discount — far from a millionth's rounding edge.)

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::kpi::Sales;

/// Days of the target window and of the "recent" features.
pub const HORIZON_DAYS: i64 = 90;
/// Name of the target column.
pub const TARGET: &str = "target_spend_90d";
/// Name of the column that is the naive baseline's prediction.
pub const BASELINE: &str = "revenue_90d";
/// The features that do not depend on the category list, in order.
pub const BASE_FEATURES: [&str; 7] = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "average_ticket",
    "orders_90d",
    "revenue_90d",
];
/// Prefix of the category share columns.
pub const SHARE_PREFIX: &str = "share_";

/// Money sums are rounded to this many units per real (a millionth).
pub const MONEY_UNITS: f64 = 1e6;

/// A money sum rounded to a millionth of a real (half away from zero): the
/// same value whatever order its terms were added in.
pub fn round_money(x: f64) -> f64 {
    let scaled = x * MONEY_UNITS;
    if scaled.is_finite() && scaled.abs() < 9.0e15 {
        scaled.round() / MONEY_UNITS
    } else {
        x
    }
}

const T: &str = "features";

fn pe(action: &'static str) -> impl FnOnce(PolarsError) -> DataError {
    DataError::polars(T, action)
}

/// The feature names, in model order, for a category list.
pub fn feature_names(categories: &[String]) -> Vec<String> {
    BASE_FEATURES
        .iter()
        .map(|s| s.to_string())
        .chain(categories.iter().map(|c| format!("{SHARE_PREFIX}{c}")))
        .collect()
}

/// A dense, row-major matrix of named features: the models' input.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMatrix {
    names: Vec<String>,
    rows: usize,
    values: Vec<f64>,
}

impl FeatureMatrix {
    /// A matrix from its column names and row-major values.
    pub fn new(names: Vec<String>, values: Vec<f64>) -> Result<Self> {
        let cols = names.len();
        if cols == 0 {
            return Err(DataError::InvalidArgument {
                name: "names",
                expected: "at least one feature".into(),
                found: "none".into(),
            });
        }
        if !values.len().is_multiple_of(cols) {
            return Err(DataError::InvalidArgument {
                name: "values",
                expected: format!("a multiple of {cols} values (one per feature and row)"),
                found: format!("{} values", values.len()),
            });
        }
        Ok(FeatureMatrix {
            rows: values.len() / cols,
            names,
            values,
        })
    }

    /// A matrix from rows (each as long as `names`).
    pub fn from_rows(names: Vec<String>, rows: &[Vec<f64>]) -> Result<Self> {
        if let Some((i, r)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != names.len())
        {
            return Err(DataError::InvalidArgument {
                name: "rows",
                expected: format!("{} values per row", names.len()),
                found: format!("{} values in row {i}", r.len()),
            });
        }
        Self::new(names, rows.concat())
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn n_rows(&self) -> usize {
        self.rows
    }
    pub fn n_cols(&self) -> usize {
        self.names.len()
    }
    /// Row-major values.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
    pub fn row(&self, i: usize) -> &[f64] {
        let c = self.n_cols();
        &self.values[i * c..(i + 1) * c]
    }
}

/// Features and target of every customer seen before a cutoff.
#[derive(Clone, Debug)]
pub struct CustomerFeatures {
    pub cutoff: NaiveDate,
    /// The sorted category list behind the `share_*` columns.
    pub categories: Vec<String>,
    /// One row per customer, sorted by `customer_id`: `customer_id`, the
    /// features in [`feature_names`] order (all Float64), then [`TARGET`].
    pub frame: DataFrame,
}

impl CustomerFeatures {
    /// Feature names in model order.
    pub fn feature_names(&self) -> Vec<String> {
        feature_names(&self.categories)
    }

    pub fn n_customers(&self) -> usize {
        self.frame.height()
    }

    fn f64_column(&self, name: &str) -> Result<Vec<f64>> {
        let ca = self
            .frame
            .column(name)
            .and_then(|c| c.f64().cloned())
            .map_err(pe("reading a feature column"))?;
        Ok(ca.iter().map(|v| v.unwrap_or(0.0)).collect())
    }

    /// The features as a matrix (rows in `customer_id` order).
    pub fn matrix(&self) -> Result<FeatureMatrix> {
        let names = self.feature_names();
        let cols: Vec<Vec<f64>> = names
            .iter()
            .map(|n| self.f64_column(n))
            .collect::<Result<_>>()?;
        let rows = self.frame.height();
        let mut values = Vec::with_capacity(rows * names.len());
        for r in 0..rows {
            values.extend(cols.iter().map(|c| c[r]));
        }
        Ok(FeatureMatrix {
            names,
            rows,
            values,
        })
    }

    /// Revenue in `[T, T + 90 d)`, per customer.
    pub fn target(&self) -> Result<Vec<f64>> {
        self.f64_column(TARGET)
    }

    /// The naive baseline's prediction: revenue in the 90 days before `T`.
    pub fn baseline(&self) -> Result<Vec<f64>> {
        self.f64_column(BASELINE)
    }

    /// `fnv1a64:<hex>` of the cutoff, the feature names, the customer ids
    /// and every value (target included): equal features, equal
    /// fingerprint, whichever source computed them.
    pub fn fingerprint(&self) -> Result<String> {
        let mut h = crate::models::Fnv64::default();
        h.write_str(&self.cutoff.to_string());
        for id in self.customer_ids()? {
            h.write_str(&id);
        }
        let m = self.matrix()?;
        for n in m.names() {
            h.write_str(n);
        }
        h.write_f64s(m.values());
        h.write_f64s(&self.target()?);
        Ok(format!("fnv1a64:{:016x}", h.finish()))
    }

    pub fn customer_ids(&self) -> Result<Vec<String>> {
        let ca = self
            .frame
            .column("customer_id")
            .and_then(|c| c.str().cloned())
            .map_err(pe("reading customer ids"))?;
        Ok(ca
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    }
}

/// Sorted distinct categories of completed lines dated before `cutoff`.
pub fn categories_before(sales: &Sales, cutoff: NaiveDate) -> Result<Vec<String>> {
    let df = sales
        .lazy()
        .filter(col("completed").and(col("order_date").lt(lit(cutoff))))
        .select([col("category")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .map_err(pe("listing categories"))?;
    let ca = df
        .column("category")
        .and_then(|c| c.str().cloned())
        .map_err(pe("listing categories"))?;
    let mut cats: Vec<String> = ca.iter().flatten().map(str::to_string).collect();
    cats.sort();
    Ok(cats)
}

/// Days since 1970-01-01 of a date (polars' Date representation).
pub(crate) fn epoch_days(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    (d - epoch).num_days() as i32
}

/// A caller's category list must be sorted and without repeats (it names
/// the share columns in order).
pub(crate) fn check_categories(c: &[String]) -> Result<()> {
    if c.windows(2).any(|w| w[0] >= w[1]) {
        return Err(DataError::InvalidArgument {
            name: "categories",
            expected: "a sorted list of distinct categories".into(),
            found: format!("{c:?}"),
        });
    }
    Ok(())
}

/// Features at a cutoff before every completed order: nothing to train on.
pub(crate) fn no_order_before(cutoff: NaiveDate) -> DataError {
    DataError::InvalidArgument {
        name: "cutoff",
        expected: "a date after at least one completed order".into(),
        found: format!("{cutoff}: no completed order before it"),
    }
}

/// Where customer features come from: the per-line sales, computed here
/// ([`Sales`]), or aggregates a warehouse computed
/// ([`crate::source::WarehouseFeatures`], the Snowflake push-down). Training,
/// scoring and the segment features take either.
pub trait FeatureData {
    /// The day after the last order (the default reference date).
    fn default_as_of(&self) -> NaiveDate;
    /// Sorted distinct categories of completed lines dated before `cutoff`.
    fn categories_before(&self, cutoff: NaiveDate) -> Result<Vec<String>>;
    /// [`customer_features`] at `cutoff`.
    fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<CustomerFeatures>;
    /// The same data, ready for features at several cutoffs (training reads
    /// three): local lines are grouped by customer once ([`CustomerHistory`]);
    /// data that is already one row per customer is used as it is.
    fn for_cutoffs(&self) -> Result<Box<dyn FeatureData + '_>> {
        Ok(Box::new(Borrowed(self)))
    }
    /// The CLV purchase summary at `as_of` ([`crate::clv::CustomerSummary`]),
    /// or `None` when this data has no per-day purchases to summarise
    /// (one row per customer computed elsewhere, or lines already grouped
    /// for features).
    fn clv_summary(
        &self,
        as_of: NaiveDate,
    ) -> Option<crate::clv::Result<crate::clv::CustomerSummary>> {
        let _ = as_of;
        None
    }
}

/// A borrowed [`FeatureData`], as the default [`FeatureData::for_cutoffs`].
struct Borrowed<'a, D: ?Sized>(&'a D);

impl<D: FeatureData + ?Sized> FeatureData for Borrowed<'_, D> {
    fn default_as_of(&self) -> NaiveDate {
        self.0.default_as_of()
    }

    fn categories_before(&self, cutoff: NaiveDate) -> Result<Vec<String>> {
        self.0.categories_before(cutoff)
    }

    fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<CustomerFeatures> {
        self.0.customer_features(cutoff, categories)
    }

    fn for_cutoffs(&self) -> Result<Box<dyn FeatureData + '_>> {
        Ok(Box::new(Borrowed(self.0)))
    }

    fn clv_summary(
        &self,
        as_of: NaiveDate,
    ) -> Option<crate::clv::Result<crate::clv::CustomerSummary>> {
        self.0.clv_summary(as_of)
    }
}

impl FeatureData for Sales {
    fn default_as_of(&self) -> NaiveDate {
        self.default_as_of
    }

    fn categories_before(&self, cutoff: NaiveDate) -> Result<Vec<String>> {
        categories_before(self, cutoff)
    }

    fn customer_features(
        &self,
        cutoff: NaiveDate,
        categories: Option<&[String]>,
    ) -> Result<CustomerFeatures> {
        customer_features(self, cutoff, categories)
    }

    fn for_cutoffs(&self) -> Result<Box<dyn FeatureData + '_>> {
        Ok(Box::new(CustomerHistory::new(self)?))
    }

    fn clv_summary(
        &self,
        as_of: NaiveDate,
    ) -> Option<crate::clv::Result<crate::clv::CustomerSummary>> {
        Some(crate::clv::CustomerSummary::compute(self, as_of))
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

/// Customer-spend features at `cutoff`, with the target over the next 90
/// days. `categories` fixes the share columns (pass the model's list); with
/// `None` it is taken from the data before the cutoff, sorted.
///
/// An empty result (nobody bought before the cutoff) is an error: there is
/// nothing to train on or score.
///
/// One sequential pass over the sales lines (no group-by): each line finds
/// its customer in a hash map and updates running aggregates. Sums run in row
/// order with Kahan compensation, as polars' grouped `sum` does, so the
/// values are those of the equivalent polars query to the bit (a test keeps
/// that query and compares).
pub fn customer_features(
    sales: &Sales,
    cutoff: NaiveDate,
    categories: Option<&[String]>,
) -> Result<CustomerFeatures> {
    CustomerHistory::new(sales)?.at(cutoff, categories)
}

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

/// A running sum with Kahan compensation, updated exactly like polars'
/// `KahanSum` (the grouped `sum` of floats).
#[derive(Clone, Copy, Default)]
struct Kahan {
    sum: f64,
    err: f64,
}

impl Kahan {
    #[inline]
    fn add(&mut self, v: f64) {
        let y = v - self.err;
        let s = self.sum + y;
        let e = (s - self.sum) - y;
        self.sum = s;
        if e.is_finite() {
            self.err = e;
        }
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

/// The sales lines' columns that the features read.
struct Lines {
    /// Order code per line (`order_key`).
    order: Vec<u32>,
    date: Vec<Option<i32>>,
    completed: Vec<bool>,
    revenue: Vec<Option<f64>>,
    /// Category code per line (`NO_CATEGORY` for a null).
    category: Vec<u32>,
}

const NO_CATEGORY: u32 = u32::MAX;

/// Per-customer aggregates, customers sorted by id.
struct Aggregates<'h, 'a> {
    history: &'h CustomerHistory<'a>,
    customers: Vec<Customer>,
}

/// A column of the shared sales frame, found by a linear search of its
/// names. Not `DataFrame::column`: on a frame wider than 4 columns that
/// builds a hashed schema and caches it *inside* the frame. In an evcxr
/// notebook every cell is its own library with its own copy of polars'
/// global hash seed, so a schema cached by the features in one cell was not
/// found by the KPIs of a later cell ("unable to find column \"completed\";
/// valid columns: [… \"completed\" …]"). Reading the caller's frame must
/// not change it.
pub(crate) fn column<'a>(lines: &'a DataFrame, name: &str) -> Result<&'a Column> {
    lines
        .columns()
        .iter()
        .find(|c| c.name().as_str() == name)
        .ok_or_else(|| PolarsError::ColumnNotFound(format!("`{name}` in the sales lines").into()))
        .map_err(pe("reading the sales lines"))
}

pub(crate) fn column_as(lines: &DataFrame, name: &str, dtype: &DataType) -> Result<Column> {
    column(lines, name)?
        .cast(dtype)
        .map_err(pe("reading the sales lines"))
}

/// Rows of each group of `df` by `key`, in row order within a group.
fn groups_of(df: &DataFrame, key: &str) -> Result<Vec<Vec<u32>>> {
    let keys = column(df, key)?.clone();
    let gb = DataFrame::new(df.height(), vec![keys])
        .and_then(|d| d.group_by([key]).map(|g| g.into_groups()))
        .map_err(pe("grouping the sales lines"))?;
    Ok(gb
        .par_iter()
        .map(|g| {
            let mut rows: Vec<u32> = match g {
                GroupsIndicator::Idx((_, idx)) => idx.iter().copied().collect(),
                GroupsIndicator::Slice([first, len]) => (first..first + len).collect(),
            };
            if !rows.is_sorted() {
                rows.sort_unstable();
            }
            rows
        })
        .collect())
}

/// The lines' `order_key` codes (every line has one).
fn order_codes(lines: &DataFrame) -> Result<Vec<u32>> {
    let codes = column(lines, "order_key")?
        .u32()
        .map_err(pe("reading the sales lines' order codes"))?;
    if codes.null_count() > 0 {
        return Err(DataError::InvalidArgument {
            name: "sales lines",
            expected: "an order code on every line".into(),
            found: format!("{} lines without one", codes.null_count()),
        });
    }
    Ok(codes.into_no_null_iter().collect())
}

impl Lines {
    fn read(lines: &DataFrame) -> Result<(Lines, Vec<&str>)> {
        let strings = |name: &str| {
            column(lines, name)?
                .str()
                .map_err(pe("reading the sales lines"))
        };
        let date = column_as(lines, "order_date", &DataType::Date)?;
        let date = date.date().map_err(pe("reading the sales lines"))?;
        let completed = column_as(lines, "completed", &DataType::Boolean)?;
        let completed = completed.bool().map_err(pe("reading the sales lines"))?;
        let revenue = column_as(lines, "revenue", &DataType::Float64)?;
        let revenue = revenue.f64().map_err(pe("reading the sales lines"))?;
        let category = strings("category")?;
        // Category codes: one per distinct category, from polars' grouping.
        let mut codes = vec![NO_CATEGORY; lines.height()];
        let mut names = Vec::new();
        for rows in groups_of(lines, "category")? {
            if let Some(name) = rows.first().and_then(|&r| category.get(r as usize)) {
                for &r in &rows {
                    codes[r as usize] = names.len() as u32;
                }
                names.push(name);
            }
        }
        Ok((
            Lines {
                order: order_codes(lines)?,
                date: date.physical().iter().collect(),
                completed: completed.iter().map(|v| v == Some(true)).collect(),
                revenue: revenue.iter().collect(),
                category: codes,
            },
            names,
        ))
    }
}

impl<'h, 'a> Aggregates<'h, 'a> {
    fn scan(history: &'h CustomerHistory<'a>, cutoff: NaiveDate) -> Aggregates<'h, 'a> {
        let cols = &history.lines;
        let t = epoch_days(cutoff);
        let recent_start = epoch_days(cutoff - Duration::days(HORIZON_DAYS));
        let target_end = epoch_days(cutoff + Duration::days(HORIZON_DAYS));
        let customers: Vec<Customer> = (0..history.ids.len())
            .into_par_iter()
            .map(|g| {
                let rows = history.rows_of(g);
                let mut c = Customer {
                    last: i32::MIN,
                    first: i32::MAX,
                    ..Default::default()
                };
                let (mut orders, mut recent_orders): (Vec<u32>, Vec<u32>) = Default::default();
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
                let distinct = |mut v: Vec<u32>| {
                    if v.len() > 1 {
                        v.sort_unstable();
                        v.dedup();
                    }
                    v.len() as u32
                };
                c.frequency = distinct(orders);
                c.orders_90d = distinct(recent_orders);
                c
            })
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

/// The previous polars formulation of [`customer_features`], kept as the
/// reference the one-pass version is checked against (to the bit).
#[cfg(test)]
pub(crate) fn customer_features_polars(
    sales: &Sales,
    cutoff: NaiveDate,
    categories: Option<&[String]>,
) -> Result<CustomerFeatures> {
    let categories: Vec<String> = match categories {
        Some(c) => {
            check_categories(c)?;
            c.to_vec()
        }
        None => categories_before(sales, cutoff)?,
    };
    let horizon = Duration::days(HORIZON_DAYS);
    let recent_start = cutoff - horizon;
    let target_end = cutoff + horizon;

    let completed = sales.lazy().filter(col("completed"));
    // Everything the features see: completed lines strictly before the cutoff.
    let history = completed.clone().filter(col("order_date").lt(lit(cutoff)));
    let recent = col("order_date").gt_eq(lit(recent_start));

    let mut aggs = vec![
        col("order_date")
            .max()
            .cast(DataType::Int32)
            .alias("__last"),
        col("order_date")
            .min()
            .cast(DataType::Int32)
            .alias("__first"),
        col("order_id")
            .n_unique()
            .cast(DataType::Float64)
            .alias("frequency"),
        col("revenue").sum().alias("monetary"),
        col("order_id")
            .filter(recent.clone())
            .n_unique()
            .cast(DataType::Float64)
            .alias("orders_90d"),
        col("revenue").filter(recent).sum().alias("revenue_90d"),
    ];
    for (i, cat) in categories.iter().enumerate() {
        aggs.push(
            col("revenue")
                .filter(col("category").eq(lit(cat.as_str())))
                .sum()
                .alias(format!("__cat{i}")),
        );
    }

    let target = completed
        .filter(
            col("order_date")
                .gt_eq(lit(cutoff))
                .and(col("order_date").lt(lit(target_end))),
        )
        .group_by([col("customer_id")])
        .agg([col("revenue").sum().alias(TARGET)]);

    // The money sums rounded (as `customer_features` rounds them), then
    // everything derived from them.
    let mut sums = history
        .group_by([col("customer_id")])
        .agg(aggs)
        .join(
            target,
            [col("customer_id")],
            [col("customer_id")],
            JoinArgs::new(JoinType::Left),
        )
        .collect()
        .map_err(pe("computing customer features"))?;
    let money: Vec<String> = ["monetary", "revenue_90d", TARGET]
        .iter()
        .map(|s| s.to_string())
        .chain((0..categories.len()).map(|i| format!("__cat{i}")))
        .collect();
    for name in money {
        let rounded: Float64Chunked = sums
            .column(&name)
            .and_then(|c| c.f64().cloned())
            .map_err(pe("rounding money sums"))?
            .iter()
            .map(|v| v.map(round_money))
            .collect();
        sums.with_column(Column::new(name.as_str().into(), rounded.into_series()))
            .map_err(pe("rounding money sums"))?;
    }

    let t = epoch_days(cutoff);
    let mut select = vec![
        col("customer_id"),
        (lit(t) - col("__last"))
            .cast(DataType::Float64)
            .alias("recency_days"),
        col("frequency"),
        col("monetary"),
        (lit(t) - col("__first"))
            .cast(DataType::Float64)
            .alias("tenure_days"),
        (col("monetary") / col("frequency")).alias("average_ticket"),
        col("orders_90d"),
        col("revenue_90d"),
    ];
    for (i, cat) in categories.iter().enumerate() {
        select.push(
            when(col("monetary").gt(lit(0.0)))
                .then(col(format!("__cat{i}")) / col("monetary"))
                .otherwise(lit(0.0))
                .alias(format!("{SHARE_PREFIX}{cat}")),
        );
    }
    select.push(col(TARGET).fill_null(lit(0.0)).alias(TARGET));

    let frame = sums
        .lazy()
        .select(select)
        .sort(["customer_id"], SortMultipleOptions::default())
        .collect()
        .map_err(pe("computing customer features"))?;
    if frame.height() == 0 {
        return Err(no_order_before(cutoff));
    }
    Ok(CustomerFeatures {
        cutoff,
        categories,
        frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated sales (with the generator's cleaning defects, cleaned).
    fn generated(lines: u64, seed: u64) -> Sales {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = crate::data::generate::GeneratorConfig {
            lines,
            seed,
            ..Default::default()
        };
        crate::data::generate::generate(&cfg, dir.path()).expect("generate");
        let tables = crate::data::loader::load(dir.path())
            .and_then(|d| d.collect())
            .expect("load");
        let cleaned = crate::clean::clean(&tables).expect("clean");
        Sales::from_frames(&cleaned.frames).expect("sales")
    }

    fn same(sales: &Sales, cutoff: NaiveDate, categories: Option<&[String]>) {
        let fast = customer_features(sales, cutoff, categories).expect("one pass");
        let slow = customer_features_polars(sales, cutoff, categories).expect("polars");
        assert_eq!(fast.categories, slow.categories, "categories at {cutoff}");
        assert_eq!(
            fast.frame.schema(),
            slow.frame.schema(),
            "schema at {cutoff}"
        );
        assert!(
            fast.frame.equals_missing(&slow.frame),
            "features at {cutoff} differ:\none pass {}\npolars {}",
            fast.frame,
            slow.frame
        );
        // Bit for bit (`equals_missing` compares with ==).
        for (a, b) in fast.frame.columns().iter().zip(slow.frame.columns()) {
            if let (Ok(a), Ok(b)) = (a.f64(), b.f64()) {
                for (x, y) in a.iter().zip(b.iter()) {
                    assert_eq!(
                        x.map(f64::to_bits),
                        y.map(f64::to_bits),
                        "{} at {cutoff}",
                        a.name()
                    );
                }
            }
        }
    }

    #[test]
    fn bad_categories_and_an_early_cutoff_are_refused_with_what_was_found() {
        let sales = generated(3_000, 5);
        let as_of = sales.default_as_of;
        for bad in [
            vec!["b".to_string(), "a".to_string()],
            vec!["a".to_string(), "a".to_string()],
        ] {
            let e = customer_features(&sales, as_of, Some(&bad)).expect_err("refused");
            let msg = e.to_string();
            assert!(
                msg.contains("a sorted list of distinct categories"),
                "{msg}"
            );
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
        let ok = ["a".to_string(), "b".to_string()];
        assert!(check_categories(&ok).is_ok());
        let early = NaiveDate::from_ymd_opt(1990, 1, 1).expect("date");
        let e = customer_features(&sales, early, None).expect_err("no orders before 1990");
        assert!(
            e.to_string().contains("no completed order before it"),
            "{e}"
        );
    }

    /// The features read the caller's frame without caching a schema in it
    /// (see [`column`]: a schema cached by one evcxr cell broke the KPIs of
    /// the next).
    #[test]
    fn features_leave_no_cached_schema_in_the_sales_frame() {
        let sales = generated(5_000, 3);
        assert!(sales.lines.width() > 4, "a frame wide enough to cache");
        assert!(sales.lines.cached_schema().is_none(), "fresh frame");
        let f = customer_features(&sales, sales.default_as_of, None).expect("features");
        assert!(f.n_customers() > 0);
        assert!(
            sales.lines.cached_schema().is_none(),
            "customer_features cached a schema in the caller's frame"
        );
    }

    #[test]
    fn one_pass_features_equal_the_polars_query_to_the_bit() {
        let sales = generated(60_000, 7);
        let as_of = sales.default_as_of;
        for days in [0, 90, 180, 270, 500] {
            same(&sales, as_of - Duration::days(days), None);
        }
        // A fixed list: a subset (the others count in monetary, in no
        // share) and a category that never occurs.
        let cutoff = as_of - Duration::days(180);
        let all = categories_before(&sales, cutoff).expect("categories");
        let mut some: Vec<String> = all.iter().step_by(2).cloned().collect();
        some.push("zz_never_sold".into());
        some.sort();
        same(&sales, cutoff, Some(&all));
        same(&sales, cutoff, Some(&some));
        same(&sales, cutoff, Some(&[]));
        let first = customer_features(&sales, as_of, None).expect("features");
        assert_eq!(
            first.categories,
            categories_before(&sales, as_of).expect("c")
        );
    }
}
