//! The live customer-spend model: loading it from its registry version,
//! predicting with per-feature contributions, and the customer feature
//! table behind `{"customer_id"}` requests.
//!
//! Layout (the model registry, `analytics_lib::registry`): the live version
//! of `<models>/customer_spend/` (named by its `live.json`) is a folder
//! holding `<kind>.msgpack` (the checked artifact), `<kind>.json` (its
//! metadata), `best.json` (`{"best": "<kind>", …}`: the one to serve) and
//! `manifest.json` (checksums of every file, written last).
//!
//! A [`LiveModel`] is immutable once built; the service swaps whole
//! `Arc<LiveModel>`s (see `state.rs`), so a request keeps the model it
//! started with.
//!
//! # Contributions
//!
//! * XGBoost: XGBoost's own TreeSHAP values (`predict_contributions`); with
//!   the bias they add up to the prediction.
//! * OLS: `coefficient × (x − reference)`.
//! * Random forest: occlusion, `f(x) − f(x with that feature set to its
//!   reference)`: an approximation (it ignores interactions), one extra
//!   prediction per feature.
//!
//! The reference is each feature's mean over the customers of `--data` when
//! the service has data, else 0 (then the OLS contributions plus the
//! intercept add up to the prediction). It is not the training mean: the
//! artifact does not store one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use analytics_lib::features::{FeatureMatrix, customer_features, feature_names};
use analytics_lib::kpi::Sales;
use analytics_lib::models::{
    ForestModel, LinearModel, ModelKind, ModelMeta, Regressor, TrainedModel,
};
use anyhow::{Context, anyhow, bail};
use chrono::NaiveDate;

/// The model family this service predicts with (`registry::SPEND`).
pub const FAMILY: &str = analytics_lib::registry::SPEND;
/// The file of a version naming the model to serve.
pub const BEST_FILE: &str = "best.json";

/// The kind named by `<dir>/best.json`.
pub fn read_best(dir: &Path) -> anyhow::Result<ModelKind> {
    let path = dir.join(BEST_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("while reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("while parsing {} as JSON", path.display()))?;
    let name = v.get("best").and_then(|b| b.as_str()).ok_or_else(|| {
        anyhow!(
            "{}: expected {{\"best\": \"<model kind>\"}}, found no string `best`",
            path.display()
        )
    })?;
    name.parse::<ModelKind>()
        .with_context(|| format!("while reading `best` in {}", path.display()))
}

/// Customers' feature rows at one date, for one category list.
#[derive(Debug)]
pub struct CustomerTable {
    pub as_of: NaiveDate,
    pub categories: Vec<String>,
    pub rows: HashMap<String, Vec<f64>>,
    /// Mean of each feature over the customers: the contributions' reference.
    pub means: Vec<f64>,
}

impl CustomerTable {
    /// Features of every customer with a completed order before `as_of`,
    /// with the model's category list (so the columns line up).
    pub fn compute(sales: &Sales, as_of: NaiveDate, categories: &[String]) -> anyhow::Result<Self> {
        let f = customer_features(sales, as_of, Some(categories))
            .context("while computing customer features for lookups")?;
        let m = f.matrix().context("while reading customer features")?;
        let ids = f.customer_ids().context("while reading customer ids")?;
        let cols = m.n_cols();
        let mut means = vec![0.0; cols];
        let mut rows = HashMap::with_capacity(ids.len());
        for (i, id) in ids.into_iter().enumerate() {
            let r = m.row(i);
            means.iter_mut().zip(r).for_each(|(s, v)| *s += v);
            rows.insert(id, r.to_vec());
        }
        let n = m.n_rows().max(1) as f64;
        means.iter_mut().for_each(|s| *s /= n);
        Ok(CustomerTable {
            as_of,
            categories: categories.to_vec(),
            rows,
            means,
        })
    }
}

/// Boosters are `Send` but not `Sync` (a predict call mutates the learner):
/// one single-threaded copy per HTTP worker, each behind its own lock, so
/// concurrent requests run in parallel instead of queueing on one booster.
struct BoosterPool {
    boosters: Vec<Mutex<xgb::Booster>>,
    next: AtomicUsize,
    names: Vec<String>,
}

impl BoosterPool {
    fn new(ubj: &[u8], copies: usize, names: &[String]) -> anyhow::Result<Self> {
        let boosters = (0..copies.max(1))
            .map(|_| {
                let mut b = xgb::Booster::load_buffer(ubj)
                    .map_err(|e| anyhow!("XGBoost refused the model bytes: {e}"))?;
                b.set_param("nthread", "1")
                    .map_err(|e| anyhow!("XGBoost refused nthread=1: {e}"))?;
                Ok(Mutex::new(b))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(BoosterPool {
            boosters,
            next: AtomicUsize::new(0),
            // XGBoost refuses `[`, `]` and `<` in feature names; analytics-lib
            // replaces them the same way when it saves the booster.
            names: names
                .iter()
                .map(|n| n.replace(['[', ']', '<'], "_"))
                .collect(),
        })
    }

    /// A free booster if there is one, else wait for the next in turn.
    fn with<T>(&self, f: impl FnOnce(&xgb::Booster) -> T) -> T {
        let n = self.boosters.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(b) = self.boosters[(start + i) % n].try_lock() {
                return f(&b);
            }
        }
        let b = self.boosters[start]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&b)
    }

    fn dmatrix(&self, x: &FeatureMatrix) -> anyhow::Result<xgb::DMatrix> {
        let values: Vec<f32> = x.values().iter().map(|&v| v as f32).collect();
        let mut d = xgb::DMatrix::from_dense(&values, x.n_rows())
            .map_err(|e| anyhow!("building the XGBoost matrix: {e}"))?;
        d.set_feature_names(&self.names.iter().map(String::as_str).collect::<Vec<_>>())
            .map_err(|e| anyhow!("naming the XGBoost features: {e}"))?;
        Ok(d)
    }

    /// Predictions and, per row, one contribution per feature (bias dropped).
    fn predict(&self, x: &FeatureMatrix) -> anyhow::Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let d = self.dmatrix(x)?;
        let p = x.n_cols();
        let (pred, contrib) = self.with(|b| {
            let pred = b.predict(&d);
            let contrib = b.predict_contributions(&d);
            (pred, contrib)
        });
        let pred = pred.map_err(|e| anyhow!("XGBoost predict: {e}"))?;
        let (values, (rows, cols)) =
            contrib.map_err(|e| anyhow!("XGBoost predict_contributions: {e}"))?;
        if rows != x.n_rows() || cols != p + 1 || values.len() != rows * cols {
            bail!(
                "XGBoost contributions: expected {} × {}, found {rows} × {cols}",
                x.n_rows(),
                p + 1
            );
        }
        let contrib = values
            .chunks(cols)
            .map(|r| r[..p].iter().map(|&v| f64::from(v)).collect())
            .collect();
        Ok((pred.into_iter().map(f64::from).collect(), contrib))
    }
}

enum Predictor {
    Linear(LinearModel),
    Forest(ForestModel),
    Xgboost(BoosterPool),
}

/// One prediction with its contributions, largest |value| first.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub value: f64,
    pub contributions: Vec<(String, f64)>,
}

/// The model being served, with everything a request needs.
pub struct LiveModel {
    pub kind: ModelKind,
    /// The registry version (`v0003`).
    pub version: String,
    pub meta: ModelMeta,
    pub file: PathBuf,
    predictor: Predictor,
    /// Feature rows by customer id (when the service has data).
    pub customers: Option<std::sync::Arc<CustomerTable>>,
    /// The contributions' reference point (see the module docs).
    pub reference: Vec<f64>,
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

/// Where the customer rows come from.
pub struct ServingData {
    pub sales: Sales,
    pub as_of: NaiveDate,
}

impl LiveModel {
    /// Load a model file: the library's checks (format version, checksum,
    /// features), then its feature list must be the one the library computes
    /// for its categories, so that customer rows line up with it.
    /// `version`: the registry version it belongs to. `copies`: boosters in
    /// the XGBoost pool. `data`: compute the customer table (reusing `reuse`
    /// when its categories match).
    pub fn load(
        path: &Path,
        version: String,
        copies: usize,
        data: Option<&ServingData>,
        reuse: Option<std::sync::Arc<CustomerTable>>,
    ) -> anyhow::Result<LiveModel> {
        let bytes =
            std::fs::read(path).with_context(|| format!("while reading {}", path.display()))?;
        let trained = TrainedModel::from_bytes(&bytes, path)
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
        let predictor = match model {
            Regressor::Linear(m) => Predictor::Linear(m),
            Regressor::RandomForest(m) => Predictor::Forest(m),
            Regressor::Xgboost(m) => {
                let ubj = m.to_ubj().context("while copying the booster")?;
                Predictor::Xgboost(BoosterPool::new(&ubj, copies, &meta.feature_names)?)
            }
        };
        let customers = match data {
            None => None,
            Some(d) => {
                match reuse.filter(|t| t.categories == meta.categories && t.as_of == d.as_of) {
                    Some(t) => Some(t),
                    None => Some(std::sync::Arc::new(CustomerTable::compute(
                        &d.sales,
                        d.as_of,
                        &meta.categories,
                    )?)),
                }
            }
        };
        let reference = customers
            .as_ref()
            .map(|t| t.means.clone())
            .unwrap_or_else(|| vec![0.0; meta.feature_names.len()]);
        Ok(LiveModel {
            kind,
            version,
            file: path.to_path_buf(),
            meta,
            predictor,
            customers,
            reference,
        })
    }

    pub fn feature_names(&self) -> &[String] {
        &self.meta.feature_names
    }

    fn raw_predict(&self, x: &FeatureMatrix) -> anyhow::Result<Vec<f64>> {
        Ok(match &self.predictor {
            Predictor::Linear(m) => m.predict(x)?,
            Predictor::Forest(m) => m.predict(x)?,
            Predictor::Xgboost(pool) => pool.predict(x)?.0,
        })
    }

    /// Predict every row (each as long as [`LiveModel::feature_names`], all
    /// values finite: the routes check that), with the `top` largest
    /// contributions of each.
    pub fn predict(&self, rows: &[Vec<f64>], top: usize) -> anyhow::Result<Vec<Prediction>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let names = self.feature_names();
        let p = names.len();
        let x = FeatureMatrix::from_rows(names.to_vec(), rows)?;
        let (values, contrib): (Vec<f64>, Vec<Vec<f64>>) = match &self.predictor {
            Predictor::Xgboost(pool) => pool.predict(&x)?,
            Predictor::Linear(m) => {
                let coef = m.coefficients();
                let values = m.predict(&x)?;
                let contrib = rows
                    .iter()
                    .map(|r| {
                        (0..p)
                            .map(|j| coef[j] * (r[j] - self.reference[j]))
                            .collect()
                    })
                    .collect();
                (values, contrib)
            }
            Predictor::Forest(_) => {
                let values = self.raw_predict(&x)?;
                if top == 0 {
                    (values, vec![Vec::new(); rows.len()])
                } else {
                    // Row i, feature j at block i·p + j: x_i with x_ij = reference_j.
                    let mut occluded = Vec::with_capacity(rows.len() * p * p);
                    for r in rows {
                        for j in 0..p {
                            let mut o = r.clone();
                            o[j] = self.reference[j];
                            occluded.extend_from_slice(&o);
                        }
                    }
                    let ox = FeatureMatrix::new(names.to_vec(), occluded)?;
                    let op = self.raw_predict(&ox)?;
                    let contrib = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (0..p).map(|j| v - op[i * p + j]).collect())
                        .collect();
                    (values, contrib)
                }
            }
        };
        if values.len() != rows.len() || contrib.len() != rows.len() {
            bail!(
                "model answered {} predictions for {} rows",
                values.len(),
                rows.len()
            );
        }
        Ok(values
            .into_iter()
            .zip(contrib)
            .map(|(value, c)| {
                let mut c: Vec<(String, f64)> = names.iter().cloned().zip(c).collect();
                c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
                c.truncate(top);
                Prediction {
                    value,
                    contributions: c,
                }
            })
            .collect())
    }
}
