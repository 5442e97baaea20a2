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

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::kpi::Sales;

mod columns;
mod history;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub(crate) use columns::{LineValues, codes_without_nulls, column, for_each_true};
pub use history::CustomerHistory;
#[cfg(test)]
pub(crate) use reference::customer_features_polars;

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
        self.select(self.feature_names())
    }

    /// The named columns (in that order) as a row-major matrix, rows in
    /// `customer_id` order; a missing value reads as 0. Each column is
    /// read in place (no copy when it is one chunk without nulls) and the
    /// rows are written in parallel blocks: at millions of customers this
    /// is one pass over fresh memory instead of a copy per column and a
    /// second matrix.
    pub fn select(&self, names: Vec<String>) -> Result<FeatureMatrix> {
        let width = names.len();
        let mut cols: Vec<std::borrow::Cow<'_, [f64]>> = Vec::with_capacity(width);
        for n in &names {
            let ca = self
                .frame
                .column(n)
                .map_err(|_| DataError::InvalidArgument {
                    name: "customer features",
                    expected: format!("a column `{n}`"),
                    found: format!(
                        "columns [{}]",
                        self.frame
                            .get_column_names()
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?
                .f64()
                .map_err(pe("reading a feature column"))?;
            cols.push(match ca.cont_slice() {
                Ok(s) => std::borrow::Cow::Borrowed(s),
                Err(_) => std::borrow::Cow::Owned(ca.iter().map(|v| v.unwrap_or(0.0)).collect()),
            });
        }
        let rows = self.frame.height();
        let mut values = vec![0.0; rows * width];
        if width > 0 {
            const BLOCK: usize = 4096;
            values
                .par_chunks_mut(BLOCK * width)
                .enumerate()
                .for_each(|(b, out)| {
                    let first = b * BLOCK;
                    for (i, row) in out.chunks_exact_mut(width).enumerate() {
                        for (v, c) in row.iter_mut().zip(&cols) {
                            *v = c[first + i];
                        }
                    }
                });
        }
        FeatureMatrix::new(names, values)
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
        // the few distinct values named, not every line's
        .select([col("category").cast(DataType::String)])
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
    /// What training reads at `cutoff`: the feature matrix (columns in
    /// [`feature_names`] order, customers in id order), the target and the
    /// baseline, the same values [`FeatureData::customer_features`] gives
    /// with `categories`. The default reads them off that frame; grouped
    /// lines write them directly ([`CustomerHistory`]).
    fn training_rows(&self, cutoff: NaiveDate, categories: &[String]) -> Result<TrainingRows> {
        let f = self.customer_features(cutoff, Some(categories))?;
        Ok(TrainingRows {
            x: f.matrix()?,
            y: f.target()?,
            baseline: f.baseline()?,
        })
    }
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

/// A feature matrix with its target and baseline, rows in customer id
/// order ([`FeatureData::training_rows`]).
#[derive(Clone, Debug)]
pub struct TrainingRows {
    pub x: FeatureMatrix,
    pub y: Vec<f64>,
    /// The naive baseline's prediction ([`BASELINE`]).
    pub baseline: Vec<f64>,
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

    fn training_rows(&self, cutoff: NaiveDate, categories: &[String]) -> Result<TrainingRows> {
        self.0.training_rows(cutoff, categories)
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
