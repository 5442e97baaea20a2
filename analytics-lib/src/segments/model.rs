//! The segment model: fitted once (features → scaler → KMeans over a range
//! of k → names → profiles), then used to assign any customer.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::features::SHARE_PREFIX;
use crate::kpi::Sales;
use crate::models::artifact::{CODE_VERSION, Fnv64};

use super::errors::{Result, SegmentError};
use super::features::{RFM_FEATURES, Scaler, SegmentFeatures};
use super::kmeans::{KMeansParams, KMeansSearch, KScore, nearest};
use super::naming::{RfmPosition, name_groups};
use super::profile::{SegmentProfile, profiles};

/// The version of the segment file layout this library writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What to fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentParams {
    pub kmeans: KMeansParams,
    /// Cluster on the category shares too (else on RFM + average ticket only).
    pub category_mix: bool,
    /// Weight of each standardised share; `None`: `1/√(number of categories)`.
    pub share_weight: Option<f64>,
}

impl Default for SegmentParams {
    fn default() -> Self {
        SegmentParams {
            kmeans: KMeansParams::default(),
            category_mix: true,
            share_weight: None,
        }
    }
}

impl SegmentParams {
    pub fn check(&self) -> Result<&Self> {
        self.kmeans.check()?;
        if let Some(w) = self.share_weight
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(SegmentError::invalid(
                "segments",
                "share_weight",
                "None or a finite weight ≥ 0",
                w,
            ));
        }
        Ok(self)
    }
}

/// Provenance and contract of a segment model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub format_version: u32,
    /// `kmeans`.
    pub algorithm: String,
    /// The model's input columns, in order.
    pub feature_names: Vec<String>,
    /// The sorted category list behind the `share_*` features.
    pub categories: Vec<String>,
    pub as_of: NaiveDate,
    pub k: usize,
    pub seed: u64,
    pub params: SegmentParams,
    /// Silhouette of the chosen k (on a sample of `silhouette_rows`).
    pub silhouette: Option<f64>,
    pub silhouette_rows: usize,
    /// Inertia and silhouette per k tried.
    pub elbow: Vec<KScore>,
    pub customers: usize,
    /// `fnv1a64:<hex>` of the customer ids and raw features.
    pub data_fingerprint: String,
    pub code_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A fitted segmentation: everything needed to assign a new customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentModel {
    pub meta: SegmentMeta,
    /// Transforms, means and standard deviations of the training features.
    pub scaler: Scaler,
    /// `k` centroids in the scaled space, each as long as the feature list.
    pub centroids: Vec<Vec<f64>>,
    /// One per cluster, in id order (the name is `profiles[id].name`).
    pub profiles: Vec<SegmentProfile>,
}

/// The result of [`fit_segments`]: the model and the training customers' segments.
#[derive(Clone, Debug)]
pub struct Segmentation {
    pub model: SegmentModel,
    /// Cluster id of each customer of the features, in their order.
    pub labels: Vec<usize>,
    /// The scaled training features (rows × model features), for views.
    pub scaled: Array2<f64>,
    pub search: KMeansSearch,
}

/// A short profile of a segment (what `/segment` answers with).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    pub size: usize,
    pub share_customers: f64,
    pub revenue_share: f64,
    pub median_recency_days: f64,
    pub median_frequency: f64,
    pub median_monetary: f64,
    pub top_categories: Vec<String>,
}

impl From<&SegmentProfile> for ProfileSummary {
    fn from(p: &SegmentProfile) -> Self {
        ProfileSummary {
            size: p.size,
            share_customers: p.share_customers,
            revenue_share: p.revenue_share,
            median_recency_days: p.recency_days.median,
            median_frequency: p.frequency.median,
            median_monetary: p.monetary.median,
            top_categories: p
                .top_categories
                .iter()
                .map(|c| c.category.clone())
                .collect(),
        }
    }
}

/// One customer's segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub segment_id: i64,
    pub segment_name: String,
    /// Euclidean distance to the segment's centroid in the scaled space.
    pub distance: f64,
    pub profile: ProfileSummary,
}

/// Position in scaled RFM units of each row of `centroids` (a k × features
/// array in the scaler's space).
pub(crate) fn positions(scaler: &Scaler, centroids: &Array2<f64>) -> Result<Vec<RfmPosition>> {
    let at = |name: &str| {
        scaler.names.iter().position(|n| n == name).ok_or_else(|| {
            SegmentError::input(
                "segment features",
                format!("a feature `{name}` (segments are named by RFM)"),
                format!("[{}]", scaler.names.join(", ")),
            )
        })
    };
    let (r, f, m) = (at("recency_days")?, at("frequency")?, at("monetary")?);
    let unweight = |j: usize, v: f64| {
        if scaler.weights[j] != 0.0 {
            v / scaler.weights[j]
        } else {
            v
        }
    };
    Ok(centroids
        .rows()
        .into_iter()
        .map(|c| RfmPosition {
            recency: unweight(r, c[r]),
            frequency: unweight(f, c[f]),
            monetary: unweight(m, c[m]),
        })
        .collect())
}

fn fingerprint(features: &SegmentFeatures, names: &[String], raw: &Array2<f64>) -> String {
    let mut h = Fnv64::default();
    h.write_str(&features.as_of.to_string());
    for n in names {
        h.write_str(n);
    }
    for id in &features.customer_ids {
        h.write_str(id);
    }
    h.write(&(raw.nrows() as u64).to_le_bytes());
    for v in raw.iter() {
        h.write(&v.to_bits().to_le_bytes());
    }
    format!("fnv1a64:{:016x}", h.finish())
}

/// The features a segmentation with `params` is fitted on.
fn fitted_names(features: &SegmentFeatures, params: &SegmentParams) -> Vec<String> {
    if params.category_mix {
        features.names().to_vec()
    } else {
        RFM_FEATURES.iter().map(|s| s.to_string()).collect()
    }
}

/// The `data_fingerprint` [`fit_segments`] gives a model fitted on
/// `features` with `params` (nothing is fitted).
pub fn segment_fingerprint(features: &SegmentFeatures, params: &SegmentParams) -> Result<String> {
    let names = fitted_names(features, params);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(fingerprint(features, &names, &features.select(&refs)?))
}

/// Fit the segmentation on computed features.
pub fn fit_segments(features: &SegmentFeatures, params: &SegmentParams) -> Result<Segmentation> {
    params.check()?;
    let names = fitted_names(features, params);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let raw = features.select(&refs)?;
    let (scaler, scaled) = Scaler::fit_default_transform(&names, &raw, params.share_weight)?;
    let search = params.kmeans.fit(&scaled)?;
    let fit = &search.best;
    let pos = positions(&scaler, &fit.centroids)?;
    let labels: Vec<Option<usize>> = fit.labels.iter().map(|&l| Some(l)).collect();
    let seg_names = name_groups(features, &labels, fit.k)?.names;
    let profs = profiles(features, &labels, &seg_names, &pos, None)?;
    let categories = if params.category_mix {
        features.categories.clone()
    } else {
        Vec::new()
    };
    let meta = SegmentMeta {
        format_version: FORMAT_VERSION,
        algorithm: "kmeans".into(),
        feature_names: names.clone(),
        categories,
        as_of: features.as_of,
        k: fit.k,
        seed: params.kmeans.seed,
        params: params.clone(),
        silhouette: search.silhouette,
        silhouette_rows: search.silhouette_rows,
        elbow: search.curve.clone(),
        customers: features.n_customers(),
        data_fingerprint: fingerprint(features, &names, &raw),
        code_version: CODE_VERSION.to_string(),
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    let model = SegmentModel {
        meta,
        scaler,
        centroids: fit
            .centroids
            .rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect(),
        profiles: profs,
    };
    Ok(Segmentation {
        labels: fit.labels.clone(),
        model,
        scaled,
        search,
    })
}

/// Features at `as_of` (default: the day after the last order), then [`fit_segments`].
pub fn segment_customers(
    sales: &Sales,
    as_of: Option<NaiveDate>,
    params: &SegmentParams,
) -> Result<(SegmentFeatures, Segmentation)> {
    let features = SegmentFeatures::compute(sales, as_of, None)?;
    let seg = fit_segments(&features, params)?;
    Ok((features, seg))
}

impl SegmentModel {
    pub fn k(&self) -> usize {
        self.centroids.len()
    }

    pub fn feature_names(&self) -> &[String] {
        &self.scaler.names
    }

    /// Segment names in id order.
    pub fn names(&self) -> Vec<String> {
        self.profiles.iter().map(|p| p.name.clone()).collect()
    }

    fn centroid_array(&self) -> Result<Array2<f64>> {
        let d = self.scaler.n_features();
        Array2::from_shape_vec((self.k(), d), self.centroids.concat()).map_err(|e| {
            SegmentError::input(
                "segment model",
                format!("{} centroids of {d} values", self.k()),
                e.to_string(),
            )
        })
    }

    fn assignment(&self, id: usize, d2: f64) -> Assignment {
        let p = &self.profiles[id];
        Assignment {
            segment_id: id as i64,
            segment_name: p.name.clone(),
            distance: d2.sqrt(),
            profile: ProfileSummary::from(p),
        }
    }

    /// The segment of one customer, from features by name.
    ///
    /// `recency_days`, `frequency` and `monetary` are required;
    /// `average_ticket` defaults to `monetary / max(frequency, 1)`. Category shares
    /// are optional: with none, the customer is placed on the RFM features
    /// only; with some, the missing ones count as 0. Any other name is an
    /// error, as is a value that is not finite or out of range.
    pub fn assign(&self, row: &BTreeMap<String, f64>) -> Result<Assignment> {
        let (id, d2) = self.nearest_segment(row)?;
        Ok(self.assignment(id, d2))
    }

    /// [`SegmentModel::assign`]'s segment and squared distance, without
    /// the name and profile (a batch writes those once per segment).
    pub fn nearest_segment(&self, row: &BTreeMap<String, f64>) -> Result<(usize, f64)> {
        let names = self.feature_names();
        if let Some(unknown) = row.keys().find(|k| !names.contains(k)) {
            return Err(SegmentError::input(
                "segment request",
                format!("features among [{}]", names.join(", ")),
                format!("an unknown feature `{unknown}`"),
            ));
        }
        let get = |name: &str| -> Result<f64> {
            let v = row.get(name).copied().ok_or_else(|| {
                SegmentError::input(
                    "segment request",
                    format!("a value for `{name}` (required: recency_days, frequency, monetary)"),
                    format!(
                        "features [{}]",
                        row.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            if !v.is_finite() || v < 0.0 {
                return Err(SegmentError::input(
                    "segment request",
                    format!("a finite, non-negative `{name}`"),
                    v.to_string(),
                ));
            }
            Ok(v)
        };
        let (recency, frequency, monetary) =
            (get("recency_days")?, get("frequency")?, get("monetary")?);
        let any_share = row.keys().any(|k| k.starts_with(SHARE_PREFIX));
        let mut d2 = vec![0.0; self.k()];
        for (j, name) in names.iter().enumerate() {
            let is_share = name.starts_with(SHARE_PREFIX);
            if is_share && !any_share {
                continue;
            }
            let v = match name.as_str() {
                "recency_days" => recency,
                "frequency" => frequency,
                "monetary" => monetary,
                "average_ticket" => match row.get(name) {
                    Some(_) => get(name)?,
                    // At least one order's worth: finite for any finite
                    // monetary (a frequency of 1e-300 gave infinity).
                    None => monetary / frequency.max(1.0),
                },
                _ if is_share => match row.get(name) {
                    Some(_) => {
                        let s = get(name)?;
                        if s > 1.0 {
                            return Err(SegmentError::input(
                                "segment request",
                                format!("a share in [0, 1] for `{name}`"),
                                s.to_string(),
                            ));
                        }
                        s
                    }
                    None => 0.0,
                },
                _ => get(name)?,
            };
            let z = self.scaler.scale_value(j, v)?;
            for (c, acc) in d2.iter_mut().enumerate() {
                *acc += (z - self.centroids[c][j]).powi(2);
            }
        }
        let (id, best) = d2
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .ok_or_else(|| SegmentError::input("segment model", "at least one segment", "none"))?;
        Ok((id, best))
    }

    /// [`SegmentModel::assign`] for each record, in order; the first bad
    /// record is an error naming its index.
    pub fn assign_batch(&self, rows: &[BTreeMap<String, f64>]) -> Result<Vec<Assignment>> {
        rows.iter()
            .enumerate()
            .map(|(index, r)| {
                self.assign(r).map_err(|e| SegmentError::Record {
                    index,
                    source: Box::new(e),
                })
            })
            .collect()
    }

    /// Segment id and distance of every customer of `features` (which must
    /// hold the model's features; extra columns are ignored).
    ///
    /// Row by row, in blocks side by side: each row's model features are
    /// scaled into one small buffer and assigned, so no matrix of every
    /// customer is copied, scaled or allocated (at 2 M customers those were
    /// three fresh copies of the features, most of a dashboard's start-up).
    /// The values, distances and errors are those of selecting, scaling
    /// ([`Scaler::transform`]) and assigning the whole matrix: the same
    /// arithmetic per value, the first bad value (in row order) reported.
    pub fn assign_features(&self, features: &SegmentFeatures) -> Result<Vec<(usize, f64)>> {
        use rayon::prelude::*;
        const BLOCK: usize = 4096;
        let at: Vec<usize> = self
            .feature_names()
            .iter()
            .map(|n| features.position(n))
            .collect::<Result<_>>()?;
        let c = self.centroid_array()?;
        let n = features.n_customers();
        let blocks: Vec<Result<Vec<(usize, f64)>>> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut p = vec![0.0; at.len()];
                (b * BLOCK..((b + 1) * BLOCK).min(n))
                    .map(|r| {
                        let row = features.matrix.row(r);
                        self.scaler
                            .scale_row(r, at.iter().map(|&k| row[k]), p.iter_mut())?;
                        let (id, d2) = nearest(&c, &p);
                        Ok((id, d2.sqrt()))
                    })
                    .collect()
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for block in blocks {
            out.extend(block?);
        }
        Ok(out)
    }

    /// The model's features of the customers at `rows` of `features`,
    /// scaled as the model scales them (the sampled customers of a map or
    /// a silhouette: only those rows are copied, not every customer).
    pub fn scaled_rows(&self, features: &SegmentFeatures, rows: &[usize]) -> Result<Array2<f64>> {
        let refs: Vec<&str> = self.feature_names().iter().map(String::as_str).collect();
        self.scaler
            .transform(&features.subset(rows)?.select(&refs)?)
    }

    /// [`SegmentModel::assign_features`] as full assignments.
    pub fn assign_all(&self, features: &SegmentFeatures) -> Result<Vec<Assignment>> {
        Ok(self
            .assign_features(features)?
            .into_iter()
            .map(|(id, d)| self.assignment(id, d * d))
            .collect())
    }
}
