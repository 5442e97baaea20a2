//! Segmentation features per customer, and the transforms fitted on them.
//!
//! At `as_of`, for every customer with at least one completed order before
//! it (the contract's RFM; computed by [`crate::features::customer_features`],
//! the same function the spend models use, so the definitions cannot drift):
//!
//! | feature | meaning | transform |
//! |---|---|---|
//! | `recency_days` | whole days from the last completed order's date to `as_of` | standardised |
//! | `frequency` | completed orders | `log1p`, standardised |
//! | `monetary` | revenue (R$) | `log1p`, standardised |
//! | `average_ticket` | `monetary / frequency` | `log1p`, standardised |
//! | `share_<category>` | share of `monetary` in each category of a sorted list | standardised, weighted |
//!
//! [`Scaler`] is fitted once (means and standard deviations of the
//! transformed training features) and saved with the model, so a new
//! customer is scaled exactly like the training customers. The category
//! shares are many small, correlated columns: after standardisation each is
//! multiplied by `share_weight` (default `1/√(number of categories)`), so the
//! whole category mix weighs as much as one RFM feature in the distances.

use chrono::NaiveDate;
use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::features::{CustomerFeatures, FeatureData, FeatureMatrix, SHARE_PREFIX};

use super::errors::{Result, SegmentError};

/// The RFM features every segmentation uses, in order.
pub const RFM_FEATURES: [&str; 4] = ["recency_days", "frequency", "monetary", "average_ticket"];
/// The benchmark's KMeans input: recency, log1p frequency, log1p monetary.
pub const BENCH_FEATURES: [&str; 3] = ["recency_days", "frequency", "monetary"];

/// Raw (original units) segmentation features of the customers at `as_of`.
#[derive(Clone, Debug)]
pub struct SegmentFeatures {
    pub as_of: NaiveDate,
    /// The sorted category list behind the `share_*` columns (may be empty).
    pub categories: Vec<String>,
    /// One id per row, sorted.
    pub customer_ids: Vec<String>,
    /// Rows in `customer_ids` order; columns [`RFM_FEATURES`] then `share_*`.
    pub matrix: FeatureMatrix,
}

/// Segmentation feature names for a category list.
pub fn segment_feature_names(categories: &[String]) -> Vec<String> {
    RFM_FEATURES
        .iter()
        .map(|s| s.to_string())
        .chain(categories.iter().map(|c| format!("{SHARE_PREFIX}{c}")))
        .collect()
}

impl SegmentFeatures {
    /// Features of every customer with a completed order before `as_of`
    /// (default: the day after the last order). `categories` fixes the share
    /// columns (a saved model's list); `None` takes them from the data, sorted.
    /// `data`: the per-line sales, or aggregates a warehouse computed.
    pub fn compute<D: FeatureData + ?Sized>(
        data: &D,
        as_of: Option<NaiveDate>,
        categories: Option<&[String]>,
    ) -> Result<Self> {
        let as_of = as_of.unwrap_or_else(|| data.default_as_of());
        Self::from_customer_features(&data.customer_features(as_of, categories)?)
    }

    /// The segmentation columns of customer features computed at `as_of`.
    pub fn from_customer_features(cf: &CustomerFeatures) -> Result<Self> {
        Ok(SegmentFeatures {
            as_of: cf.cutoff,
            categories: cf.categories.clone(),
            customer_ids: cf.customer_ids()?,
            matrix: cf.select(segment_feature_names(&cf.categories))?,
        })
    }

    /// Features built by hand (tests, notebooks): the columns must be
    /// [`RFM_FEATURES`] followed by `share_<category>` for each category.
    pub fn from_parts(
        as_of: NaiveDate,
        categories: Vec<String>,
        customer_ids: Vec<String>,
        matrix: FeatureMatrix,
    ) -> Result<Self> {
        let expected = segment_feature_names(&categories);
        if matrix.names() != expected.as_slice() {
            return Err(
                crate::models::ModelError::feature_mismatch(&expected, matrix.names()).into(),
            );
        }
        if customer_ids.len() != matrix.n_rows() {
            return Err(SegmentError::input(
                "customer ids",
                format!("one id per row ({})", matrix.n_rows()),
                format!("{} ids", customer_ids.len()),
            ));
        }
        Ok(SegmentFeatures {
            as_of,
            categories,
            customer_ids,
            matrix,
        })
    }

    pub fn n_customers(&self) -> usize {
        self.matrix.n_rows()
    }

    pub fn names(&self) -> &[String] {
        self.matrix.names()
    }

    /// The customers at the given row indices (in that order), e.g. a
    /// sample for an O(n²) method; an index out of range is an error.
    pub fn subset(&self, rows: &[usize]) -> Result<Self> {
        let n = self.n_customers();
        if let Some(bad) = rows.iter().find(|&&r| r >= n) {
            return Err(SegmentError::input(
                "customer rows",
                format!("indices below {n}"),
                bad.to_string(),
            ));
        }
        let mut values = Vec::with_capacity(rows.len() * self.names().len());
        for &r in rows {
            values.extend_from_slice(self.matrix.row(r));
        }
        Ok(SegmentFeatures {
            as_of: self.as_of,
            categories: self.categories.clone(),
            customer_ids: rows.iter().map(|&r| self.customer_ids[r].clone()).collect(),
            matrix: FeatureMatrix::new(self.names().to_vec(), values)?,
        })
    }

    /// The matrix column of the feature `name`.
    pub(crate) fn position(&self, name: &str) -> Result<usize> {
        self.names().iter().position(|n| n == name).ok_or_else(|| {
            SegmentError::input(
                "segment features",
                format!("a feature `{name}`"),
                format!("[{}]", self.names().join(", ")),
            )
        })
    }

    /// One raw column by name.
    pub fn column(&self, name: &str) -> Result<Vec<f64>> {
        let j = self.position(name)?;
        Ok((0..self.n_customers())
            .map(|r| self.matrix.row(r)[j])
            .collect())
    }

    /// Only the given columns (in that order), as an `n × names.len()` array.
    pub fn select(&self, names: &[&str]) -> Result<Array2<f64>> {
        let cols: Vec<Vec<f64>> = names
            .iter()
            .map(|n| self.column(n))
            .collect::<Result<_>>()?;
        let n = self.n_customers();
        Ok(Array2::from_shape_fn((n, names.len()), |(r, c)| cols[c][r]))
    }
}

/// How one feature is transformed before standardisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    Identity,
    /// `ln(1 + x)`; needs `x > −1`.
    Log1p,
}

impl Transform {
    /// The transform the segmentation applies to a feature.
    pub fn for_feature(name: &str) -> Self {
        match name {
            "frequency" | "monetary" | "average_ticket" => Transform::Log1p,
            _ => Transform::Identity,
        }
    }

    /// The transformed value, not yet checked (NaN where undefined).
    fn raw(self, x: f64) -> f64 {
        match self {
            Transform::Identity => x,
            Transform::Log1p if x > -1.0 => x.ln_1p(),
            Transform::Log1p => f64::NAN,
        }
    }

    fn apply(self, name: &str, x: f64) -> Result<f64> {
        let y = self.raw(x);
        if y.is_finite() {
            Ok(y)
        } else {
            Err(self.error(name, x))
        }
    }

    /// What `apply` says of a value with no finite transform.
    fn error(self, name: &str, x: f64) -> SegmentError {
        SegmentError::input(
            "feature value",
            format!(
                "a finite number for `{name}`{}",
                if self == Transform::Log1p {
                    " greater than −1 (it is log1p-transformed)"
                } else {
                    ""
                }
            ),
            x.to_string(),
        )
    }

    /// Every value of a column transformed (in parallel; the same values as
    /// one by one), or the first row whose value has no finite transform.
    fn column(self, name: &str, x: ndarray::ArrayView1<'_, f64>) -> Result<Vec<f64>> {
        let raw: Vec<f64> = x.iter().copied().collect();
        let out: Vec<f64> = raw.par_iter().map(|&v| self.raw(v)).collect();
        match out.iter().position(|y| !y.is_finite()) {
            None => Ok(out),
            Some(r) => Err(with_row(self.error(name, raw[r]), r)),
        }
    }
}

/// The segmentation's transforms and weights for these features: the
/// [`Transform::for_feature`] transforms, RFM weight 1, shares weighted by
/// `share_weight` (`None`: `1/√(number of shares)`).
fn default_transforms(names: &[String], share_weight: Option<f64>) -> (Vec<Transform>, Vec<f64>) {
    let n_shares = names.iter().filter(|n| n.starts_with(SHARE_PREFIX)).count();
    let w = share_weight.unwrap_or(1.0 / (n_shares.max(1) as f64).sqrt());
    let transforms = names.iter().map(|n| Transform::for_feature(n)).collect();
    let weights = names
        .iter()
        .map(|n| if n.starts_with(SHARE_PREFIX) { w } else { 1.0 })
        .collect();
    (transforms, weights)
}

/// A value's error, located at its row.
fn with_row(e: SegmentError, r: usize) -> SegmentError {
    match e {
        SegmentError::Input {
            what,
            expected,
            found,
        } => SegmentError::Input {
            what,
            expected,
            found: format!("{found} in row {r}"),
        },
        e => e,
    }
}

/// Transforms, means, standard deviations and weights, fitted on training
/// features and saved with the model: `z = weight × (t(x) − mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub names: Vec<String>,
    pub transforms: Vec<Transform>,
    pub means: Vec<f64>,
    /// Population standard deviations; a constant column gets 1.
    pub stds: Vec<f64>,
    pub weights: Vec<f64>,
}

impl Scaler {
    /// Fit on the columns of `x`, with the transform and weight of each.
    pub fn fit(
        names: &[String],
        transforms: &[Transform],
        weights: &[f64],
        x: &Array2<f64>,
    ) -> Result<Self> {
        Ok(Self::fit_columns(names, transforms, weights, x)?.0)
    }

    /// [`Scaler::fit`] and [`Scaler::transform`] of the same `x` in one go,
    /// each value transformed once; the same scaler and values, bit for bit.
    pub fn fit_transform(
        names: &[String],
        transforms: &[Transform],
        weights: &[f64],
        x: &Array2<f64>,
    ) -> Result<(Self, Array2<f64>)> {
        const BLOCK: usize = 4096;
        let (scaler, cols) = Self::fit_columns(names, transforms, weights, x)?;
        let d = cols.len();
        let mut out = Array2::zeros(x.raw_dim());
        out.axis_chunks_iter_mut(ndarray::Axis(0), BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(b, mut block)| {
                for (i, mut row) in block.outer_iter_mut().enumerate() {
                    for j in 0..d {
                        row[j] = scaler.standardise(j, cols[j][b * BLOCK + i]);
                    }
                }
            });
        Ok((scaler, out))
    }

    /// The scaler and the transformed columns it was fitted on.
    fn fit_columns(
        names: &[String],
        transforms: &[Transform],
        weights: &[f64],
        x: &Array2<f64>,
    ) -> Result<(Self, Vec<Vec<f64>>)> {
        let d = names.len();
        if transforms.len() != d || weights.len() != d || x.ncols() != d {
            return Err(SegmentError::input(
                "scaler",
                format!("{d} transforms, weights and columns (one per feature)"),
                format!(
                    "{} transforms, {} weights, {} columns",
                    transforms.len(),
                    weights.len(),
                    x.ncols()
                ),
            ));
        }
        if x.nrows() == 0 {
            return Err(SegmentError::input("scaler", "at least one row", "0 rows"));
        }
        let n = x.nrows() as f64;
        let (mut means, mut stds) = (vec![0.0; d], vec![1.0; d]);
        let mut cols = Vec::with_capacity(d);
        for j in 0..d {
            let col = transforms[j].column(&names[j], x.column(j))?;
            let mean = col.iter().sum::<f64>() / n;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            means[j] = mean;
            stds[j] = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
            cols.push(col);
        }
        let scaler = Scaler {
            names: names.to_vec(),
            transforms: transforms.to_vec(),
            means,
            stds,
            weights: weights.to_vec(),
        };
        Ok((scaler, cols))
    }

    /// The segmentation's default scaler for these features: the
    /// [`Transform::for_feature`] transforms, RFM weight 1, shares weighted
    /// by `share_weight` (`None`: `1/√(number of shares)`).
    pub fn fit_default(
        names: &[String],
        x: &Array2<f64>,
        share_weight: Option<f64>,
    ) -> Result<Self> {
        let (transforms, weights) = default_transforms(names, share_weight);
        Self::fit(names, &transforms, &weights, x)
    }

    /// [`Scaler::fit_default`] and the scaled `x` ([`Scaler::fit_transform`]).
    pub fn fit_default_transform(
        names: &[String],
        x: &Array2<f64>,
        share_weight: Option<f64>,
    ) -> Result<(Self, Array2<f64>)> {
        let (transforms, weights) = default_transforms(names, share_weight);
        Self::fit_transform(names, &transforms, &weights, x)
    }

    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// Scale one value of feature `j`.
    pub fn scale_value(&self, j: usize, x: f64) -> Result<f64> {
        let t = self.transforms[j].apply(&self.names[j], x)?;
        Ok(self.standardise(j, t))
    }

    /// Standardise and weight `t`, a value of feature `j` already
    /// transformed.
    #[inline]
    fn standardise(&self, j: usize, t: f64) -> f64 {
        self.weights[j] * (t - self.means[j]) / self.stds[j]
    }

    /// Scale row `r`: its features' values in the scaler's order into
    /// `out`; an error names the row. [`Scaler::transform`] scales a matrix
    /// with it, and [`super::SegmentModel::assign_features`] each row into
    /// one small buffer.
    pub(crate) fn scale_row<'a>(
        &self,
        r: usize,
        values: impl IntoIterator<Item = f64>,
        out: impl IntoIterator<Item = &'a mut f64>,
    ) -> Result<()> {
        for (j, (o, v)) in out.into_iter().zip(values).enumerate() {
            *o = self.scale_value(j, v).map_err(|e| with_row(e, r))?;
        }
        Ok(())
    }

    /// Scale a matrix whose columns are the scaler's features, in order.
    pub fn transform(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        if x.ncols() != self.n_features() {
            return Err(SegmentError::input(
                "features to scale",
                format!("{} columns ({})", self.n_features(), self.names.join(", ")),
                format!("{} columns", x.ncols()),
            ));
        }
        let mut out = Array2::zeros(x.raw_dim());
        for (r, (row, mut scaled)) in x.outer_iter().zip(out.outer_iter_mut()).enumerate() {
            self.scale_row(r, row.iter().copied(), scaled.iter_mut())?;
        }
        Ok(out)
    }
}
