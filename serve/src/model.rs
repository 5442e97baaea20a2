//! The live customer-spend model: loading it from its registry version,
//! predicting with per-feature contributions, and the customer feature
//! table behind `{"customer_id"}` requests.
//!
//! Layout (the model registry, `analytics_lib::registry`): the live version
//! of `<models>/customer_spend/` (named by its `live.json`) is a folder
//! holding `<kind>.msgpack` (the checked artifact), `<kind>.json` (its
//! metadata), `best.json` (`{"best": "<kind>", …}`: the one to serve) and
//! `manifest.json` (checksums of every file, written last); the library's
//! `registry::BestChoice` reads the choice.
//!
//! A [`LiveModel`] is immutable once built; the service swaps whole
//! `Arc<LiveModel>`s (see `state.rs`), so a request keeps the model it
//! started with. Both tree models (random forest and XGBoost) are read once,
//! at load, into a flat [`TreeEnsemble`] (XGBoost: from the booster's JSON
//! model, `analytics_lib::models::xgboost::trees`), so a request is plain
//! Rust loops over arrays: no foreign call, no lock, no allocation per tree.
//! The walk is the library's (`TreeEnsemble::predict_with_contributions`),
//! the same one the CLI, the retrain job and the notebooks predict with.
//!
//! # Contributions
//!
//! * Random forest and XGBoost: path attribution (Saabas, what XGBoost
//!   computes with `approx_contribs`): every split on a row's path moves
//!   the expected value from the node's cover-weighted mean to the child's,
//!   and that move is credited to the split's feature. With the bias (the
//!   ensemble's mean output over its training cover) they add up to the
//!   prediction. It costs one more walk of each tree, like a prediction.
//!   It is not TreeSHAP: a feature's credit depends on where on the path
//!   it splits.
//! * OLS: `coefficient × (x − reference)`. The reference is each feature's
//!   mean over the customers of `--data` when the service has data, else 0
//!   (then the contributions plus the intercept add up to the prediction).
//!   It is not the training mean: the artifact does not store one.
//!
//! # Intervals and CLV
//!
//! The 80 % and 95 % intervals come from the model's own metadata
//! (`ModelMeta::intervals`, calibrated when it was trained). The CLV model
//! is fitted and saved by training with the version (`clv.json`): serve
//! never trains. When the version has one and the service has data, every
//! customer's CLV and P(alive) are computed once, when the version is
//! loaded, from the customers' purchase summary at the service data's
//! reference date ([`ServingData::clv`]), and kept as three `f32` per
//! customer row (CLV, P(alive), expected purchase days); a lookup reads
//! them by the row the feature lookup found, and the dashboard's "CLV by
//! segment" card sums them per segment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use analytics_lib::clv::{ClvModel, CustomerSummary};
use analytics_lib::features::{SHARE_PREFIX, feature_names};
use analytics_lib::kpi::Sales;
use analytics_lib::lookup::{CustomerRows, Projection};
use analytics_lib::models::trees::{TreeEnsemble, top_k};
use analytics_lib::models::{ModelKind, ModelMeta, Regressor, TrainedModel};
use anyhow::{Context, bail};
use chrono::NaiveDate;

/// The model family this service predicts with (`registry::SPEND`).
pub const FAMILY: &str = analytics_lib::registry::SPEND;

/// Customers' feature rows at one date, for one model's category list: a
/// [`Projection`] of the service's [`CustomerRows`] (which it shares with
/// every model and with the segment lookups).
#[derive(Debug)]
pub struct CustomerTable {
    pub as_of: NaiveDate,
    pub categories: Vec<String>,
    rows: Arc<CustomerRows>,
    projection: Projection,
    /// Mean of each feature over the customers: the contributions' reference.
    pub means: Vec<f64>,
}

impl CustomerTable {
    /// The rows of every customer with a completed order before the data's
    /// reference date, in the feature order of `categories`.
    pub fn new(rows: Arc<CustomerRows>, categories: &[String]) -> anyhow::Result<Self> {
        let projection = rows
            .projection(&feature_names(categories))
            .context("while laying out customer features for lookups")?;
        let means = rows.means(&projection);
        Ok(CustomerTable {
            as_of: rows.as_of(),
            categories: categories.to_vec(),
            rows,
            projection,
            means,
        })
    }

    /// Write customer `id`'s feature row into `out`; false when the
    /// customer has no row.
    pub fn write(&self, id: &str, out: &mut [f64]) -> bool {
        match self.rows.find(id) {
            Some(r) => {
                self.rows.write(r, &self.projection, out);
                true
            }
            None => false,
        }
    }

    /// The row of customer `id`, if any.
    pub fn find(&self, id: &str) -> Option<u32> {
        self.rows.find(id)
    }

    /// Write the feature row of row `r` (from [`CustomerTable::find`]) into `out`.
    pub fn write_row(&self, r: u32, out: &mut [f64]) {
        self.rows.write(r, &self.projection, out);
    }

    /// Customer `id`'s feature row.
    pub fn row(&self, id: &str) -> Option<Vec<f64>> {
        self.rows.row(id, &self.projection)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

enum Predictor {
    /// `intercept + Σ coef_j x_j`; contributions `coef_j (x_j − reference_j)`.
    Linear { intercept: f64, coef: Vec<f64> },
    /// Random forest or XGBoost: the library's flat ensemble, which walks
    /// blocks of rows through its own layout (`models::trees`).
    Trees(TreeEnsemble),
}

/// Predictions for a batch of rows: per row its value and its `k` largest
/// contributions (`(feature index, value)`, largest |value| first, ties in
/// feature order).
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    pub values: Vec<f64>,
    /// Contributions per row: `min(top, n_features)`.
    pub k: usize,
    /// `values.len() × k` entries, row-major.
    pub contributions: Vec<(u32, f64)>,
}

impl Predictions {
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Row `i`: its value and its contributions.
    pub fn row(&self, i: usize) -> (f64, &[(u32, f64)]) {
        (
            self.values[i],
            &self.contributions[i * self.k..(i + 1) * self.k],
        )
    }
}

/// The model being served, with everything a request needs.
pub struct LiveModel {
    pub kind: ModelKind,
    /// The registry version (`v0003`).
    pub version: String,
    pub meta: ModelMeta,
    pub file: PathBuf,
    predictor: Predictor,
    /// Per feature: a `share_<category>` (at most 1)?
    share: Vec<bool>,
    /// Pre-written JSON of the answers (see [`LiveModel::json_fragments`]).
    fragments: JsonFragments,
    /// Feature rows by customer id (when the service has data).
    pub customers: Option<std::sync::Arc<CustomerTable>>,
    /// The contributions' reference point (see the module docs).
    pub reference: Vec<f64>,
    /// Per customer row: CLV and P(alive) (when the version has a CLV
    /// model and the service has data).
    pub clv: Option<ClvValues>,
}

/// Every customer's purchase summary at the service's reference date, in
/// the row order of [`CustomerRows`] (days as integers: 20 bytes a row).
#[derive(Debug)]
pub struct ClvRows {
    frequency: Vec<u32>,
    recency: Vec<u32>,
    /// 0: no summary for this row (never a real T, which is ≥ 1).
    t: Vec<u32>,
    monetary: Vec<f64>,
}

impl ClvRows {
    /// The summary of `sales` at `rows.as_of()`, laid out by `rows`.
    pub fn compute(sales: &Sales, rows: &CustomerRows) -> anyhow::Result<Self> {
        let s = CustomerSummary::compute(sales, rows.as_of())
            .context("while summarising the customers' purchases for CLV")?;
        Ok(Self::from_summary(&s, rows))
    }

    /// A purchase summary (computed here or in the warehouse) laid out by `rows`.
    pub fn from_summary(s: &CustomerSummary, rows: &CustomerRows) -> Self {
        let n = rows.len();
        let mut out = ClvRows {
            frequency: vec![0; n],
            recency: vec![0; n],
            t: vec![0; n],
            monetary: vec![0.0; n],
        };
        for (i, id) in s.customer_ids.iter().enumerate() {
            if let Some(r) = rows.find(id) {
                let r = r as usize;
                out.frequency[r] = s.frequency[i];
                out.recency[r] = s.recency[i] as u32;
                out.t[r] = s.t[i] as u32;
                out.monetary[r] = s.monetary_value[i];
            }
        }
        out
    }

    /// CLV and P(alive) of every row under `model`.
    pub fn values(&self, model: &ClvModel) -> ClvValues {
        use rayon::prelude::*;
        let values = (0..self.t.len())
            .into_par_iter()
            .with_min_len(1024)
            .map(|r| {
                if self.t[r] == 0 {
                    return [f32::NAN; 3];
                }
                let v = model.value(
                    f64::from(self.frequency[r]),
                    f64::from(self.recency[r]),
                    f64::from(self.t[r]),
                    self.monetary[r],
                );
                [v.clv as f32, v.p_alive as f32, v.expected_purchases as f32]
            })
            .collect();
        ClvValues {
            horizon_days: model.params.horizon_days,
            values,
        }
    }
}

/// CLV, P(alive) and expected purchase days per customer row, from one
/// CLV model.
#[derive(Debug)]
pub struct ClvValues {
    pub horizon_days: u32,
    values: Vec<[f32; 3]>,
}

impl ClvValues {
    /// `(clv, p_alive)` of row `r`; `None` when the row has no summary or a
    /// value is not finite.
    pub fn get(&self, r: u32) -> Option<(f64, f64)> {
        self.all(r as usize).map(|(c, p, _)| (c, p))
    }

    /// `(clv, p_alive, expected purchase days)` of row `r`, as [`Self::get`].
    pub fn all(&self, r: usize) -> Option<(f64, f64, f64)> {
        let [c, p, e] = *self.values.get(r)?;
        (c.is_finite() && p.is_finite() && e.is_finite())
            .then(|| (f64::from(c), f64::from(p), f64::from(e)))
    }

    /// Customer rows (the rows of the data the values were computed on).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for LiveModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveModel")
            .field("kind", &self.kind)
            .field("version", &self.version)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The constant parts of a prediction's JSON, written once per model:
/// `,"model":…,"version":…,"contributions":[` and, per feature,
/// `{"feature":"<name>","value":`.
#[derive(Clone, Debug)]
pub struct JsonFragments {
    pub head: Vec<u8>,
    pub feature: Vec<Vec<u8>>,
}

impl JsonFragments {
    fn new(kind: &str, version: &str, names: &[String]) -> anyhow::Result<Self> {
        let head = format!(
            ",\"model\":{},\"version\":{},\"contributions\":[",
            serde_json::to_string(kind)?,
            serde_json::to_string(version)?
        )
        .into_bytes();
        let feature = names
            .iter()
            .map(|n| {
                Ok(format!("{{\"feature\":{},\"value\":", serde_json::to_string(n)?).into_bytes())
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(JsonFragments { head, feature })
    }
}

/// What the lookups answer from: every customer's feature rows at the
/// data's reference date (the sales lines themselves are not kept).
pub struct ServingData {
    pub as_of: NaiveDate,
    pub rows: Arc<CustomerRows>,
    /// The purchase summary the CLV answers are computed from.
    pub clv: Option<Arc<ClvRows>>,
}

impl ServingData {
    /// The customers' rows at `sales.default_as_of`.
    pub fn compute(sales: &Sales) -> anyhow::Result<Self> {
        let as_of = sales.default_as_of;
        let rows = CustomerRows::compute(sales, as_of)
            .context("while computing customer features for lookups")?;
        let clv = ClvRows::compute(sales, &rows)?;
        Ok(ServingData {
            as_of,
            rows: Arc::new(rows),
            clv: Some(Arc::new(clv)),
        })
    }
}

impl LiveModel {
    /// Load a model file: the library's checks (format version, checksum,
    /// features), then its feature list must be the one the library computes
    /// for its categories, so that customer rows line up with it. A tree
    /// model is flattened into a [`TreeEnsemble`] here, once.
    /// `version`: the registry version it belongs to. `data`: compute the customer table (reusing `reuse` when its
    /// categories match).
    pub fn load(
        path: &Path,
        version: String,
        data: Option<&ServingData>,
        reuse: Option<std::sync::Arc<CustomerTable>>,
    ) -> anyhow::Result<LiveModel> {
        let bytes =
            std::fs::read(path).with_context(|| format!("while reading {}", path.display()))?;
        let model = Self::from_bytes(&bytes, path, version, data, reuse)?;
        // The CLV model saved beside it, if any.
        let clv_path = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(analytics_lib::registry::CLV_FILE);
        let clv = match std::fs::read(&clv_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("while reading {}", clv_path.display()));
            }
        };
        model.with_clv(clv.as_deref().map(|b| (b, clv_path.as_path())), data)
    }

    /// [`LiveModel::load`] from a file's bytes (the registry's verified
    /// bytes: decoded as they were checked); `path` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        path: &Path,
        version: String,
        data: Option<&ServingData>,
        reuse: Option<std::sync::Arc<CustomerTable>>,
    ) -> anyhow::Result<LiveModel> {
        let trained = TrainedModel::from_bytes(bytes, path)
            .with_context(|| format!("while loading {}", path.display()))?;
        let expected = feature_names(&trained.meta.categories);
        if trained.meta.feature_names != expected {
            bail!(
                "{}: expected the features {:?} (from its categories), found {:?}",
                path.display(),
                expected,
                trained.meta.feature_names
            );
        }
        let TrainedModel { meta, model } = trained;
        let kind = model.kind();
        let p = meta.feature_names.len();
        let predictor = match model {
            Regressor::Linear(m) => Predictor::Linear {
                intercept: m.intercept(),
                coef: m.coefficients(),
            },
            Regressor::RandomForest(m) => Predictor::Trees(m.ensemble().clone()),
            Regressor::Xgboost(m) => Predictor::Trees(
                m.to_ensemble()
                    .with_context(|| format!("while reading the booster of {}", path.display()))?,
            ),
            // The training mean: a constant, every contribution 0.
            Regressor::TrainingMean(m) => Predictor::Linear {
                intercept: m.mean,
                coef: vec![0.0; m.n_features()],
            },
        };
        let width = match &predictor {
            Predictor::Linear { coef, .. } => coef.len(),
            Predictor::Trees(e) => e.n_features(),
        };
        if width != p {
            bail!(
                "{}: expected a model of {p} features (its feature list), found one of {width}",
                path.display()
            );
        }
        let customers = match data {
            None => None,
            Some(d) => {
                match reuse
                    .filter(|t| t.categories == meta.categories && Arc::ptr_eq(&t.rows, &d.rows))
                {
                    Some(t) => Some(t),
                    None => Some(Arc::new(CustomerTable::new(
                        d.rows.clone(),
                        &meta.categories,
                    )?)),
                }
            }
        };
        let reference = customers
            .as_ref()
            .map(|t| t.means.clone())
            .unwrap_or_else(|| vec![0.0; p]);
        let share = meta
            .feature_names
            .iter()
            .map(|n| n.starts_with(SHARE_PREFIX))
            .collect();
        let fragments = JsonFragments::new(kind.name(), &version, &meta.feature_names)?;
        Ok(LiveModel {
            kind,
            version,
            file: path.to_path_buf(),
            meta,
            predictor,
            share,
            fragments,
            customers,
            reference,
            clv: None,
        })
    }

    /// This model with its version's CLV model (`clv.json`'s bytes, if the
    /// version has one) applied to every customer of `data`: CLV and
    /// P(alive) per customer row, recomputed whenever the model is loaded
    /// or re-bound to a new data snapshot. Without data or without a CLV
    /// model, lookups answer `clv` and `p_alive` as null.
    pub fn with_clv(
        mut self,
        clv: Option<(&[u8], &Path)>,
        data: Option<&ServingData>,
    ) -> anyhow::Result<LiveModel> {
        self.clv = match (data.and_then(|d| d.clv.as_ref()), clv) {
            (Some(rows), Some((bytes, path))) => {
                let what = path.display().to_string();
                let model = ClvModel::from_json(bytes, &what)
                    .with_context(|| format!("while loading {what}"))?;
                Some(rows.values(&model))
            }
            _ => None,
        };
        Ok(self)
    }

    pub fn feature_names(&self) -> &[String] {
        &self.meta.feature_names
    }

    /// Per feature: is it a `share_<category>` (a value in [0, 1])?
    pub fn is_share(&self) -> &[bool] {
        &self.share
    }

    /// The JSON pieces an answer of this model is written with.
    pub fn json_fragments(&self) -> &JsonFragments {
        &self.fragments
    }

    /// The flat ensemble of a tree model.
    pub fn ensemble(&self) -> Option<&TreeEnsemble> {
        match &self.predictor {
            Predictor::Trees(e) => Some(e),
            Predictor::Linear { .. } => None,
        }
    }

    /// Predict every row of the row-major `rows` (`feature_names().len()`
    /// values each, all finite: the routes check that), with the `top`
    /// largest contributions of each.
    pub fn predict(&self, rows: &[f64], top: usize) -> anyhow::Result<Predictions> {
        let p = self.feature_names().len();
        if p == 0 || !rows.len().is_multiple_of(p) {
            bail!(
                "expected rows of {p} values, found {} values in all",
                rows.len()
            );
        }
        let n = rows.len() / p;
        let k = top.min(p);
        let mut contributions = Vec::with_capacity(n * k);
        let mut buf = vec![0.0; p];
        let mut scratch = Vec::with_capacity(p);
        let values = match &self.predictor {
            Predictor::Linear { intercept, coef } => rows
                .chunks_exact(p)
                .map(|r| {
                    if k > 0 {
                        for (((b, c), x), m) in buf.iter_mut().zip(coef).zip(r).zip(&self.reference)
                        {
                            *b = c * (x - m);
                        }
                        top_k(&buf, k, &mut contributions, &mut scratch);
                    }
                    intercept + r.iter().zip(coef).map(|(x, b)| x * b).sum::<f64>()
                })
                .collect(),
            Predictor::Trees(e) => {
                let mut values = Vec::with_capacity(n);
                e.predict_with_contributions(rows, k, &mut values, &mut contributions)?;
                values
            }
        };
        Ok(Predictions {
            values,
            k,
            contributions,
        })
    }
}
