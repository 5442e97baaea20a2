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

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

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
fn epoch_days(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    (d - epoch).num_days() as i32
}

/// Customer-spend features at `cutoff`, with the target over the next 90
/// days. `categories` fixes the share columns (pass the model's list); with
/// `None` it is taken from the data before the cutoff, sorted.
///
/// An empty result (nobody bought before the cutoff) is an error: there is
/// nothing to train on or score.
pub fn customer_features(
    sales: &Sales,
    cutoff: NaiveDate,
    categories: Option<&[String]>,
) -> Result<CustomerFeatures> {
    let categories: Vec<String> = match categories {
        Some(c) => {
            let mut sorted = c.to_vec();
            sorted.sort();
            sorted.dedup();
            if sorted != c {
                return Err(DataError::InvalidArgument {
                    name: "categories",
                    expected: "a sorted list of distinct categories".into(),
                    found: format!("{c:?}"),
                });
            }
            sorted
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

    let frame = history
        .group_by([col("customer_id")])
        .agg(aggs)
        .join(
            target,
            [col("customer_id")],
            [col("customer_id")],
            JoinArgs::new(JoinType::Left),
        )
        .select(select)
        .sort(["customer_id"], SortMultipleOptions::default())
        .collect()
        .map_err(pe("computing customer features"))?;
    if frame.height() == 0 {
        return Err(DataError::InvalidArgument {
            name: "cutoff",
            expected: "a date after at least one completed order".into(),
            found: format!("{cutoff}: no completed order before it"),
        });
    }
    Ok(CustomerFeatures {
        cutoff,
        categories,
        frame,
    })
}
