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
//! started with. Both tree models (random forest and XGBoost) are read once,
//! at load, into a flat [`TreeEnsemble`] (XGBoost: from the booster's JSON
//! model, `analytics_lib::models::xgboost::trees`), so a request is plain
//! Rust loops over arrays: no foreign call, no lock, no allocation per tree.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use analytics_lib::features::{SHARE_PREFIX, feature_names};
use analytics_lib::kpi::Sales;
use analytics_lib::lookup::{CustomerRows, Projection};
use analytics_lib::models::trees::{Compare, TreeEnsemble};
use analytics_lib::models::{ModelKind, ModelMeta, Regressor, TrainedModel};
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

/// A [`TreeEnsemble`] laid out for serving (see [`Flat`]), in the width of
/// its comparisons: `f32` for XGBoost's rule, `f64` otherwise.
enum FlatTrees {
    F32(Flat<f32>),
    F64(Flat<f64>),
}

/// One node: the threshold, the split feature and the two children (global
/// indices; a leaf's children are itself).
#[derive(Clone, Copy)]
struct FlatNode<T> {
    threshold: T,
    feature: u32,
    child: [u32; 2],
}

/// Every tree's nodes in one array, each tree with its depth. A block of
/// rows walks one tree together, every row exactly `depth` steps (a row
/// that reached its leaf stays there): no branch depends on the data, and
/// the rows' walks overlap in the CPU. A leaf carries its path's
/// contributions, `(feature, Σ scale × (child value − node value))` over
/// the edges of its path that split on that feature, so attribution is a
/// few additions per tree after the walk. Predictions are the library's
/// arithmetic in its order, equal to [`TreeEnsemble::predict_row`] to the
/// last bit; contributions equal [`TreeEnsemble::contributions`] to
/// rounding (a feature's edges on one path are summed first; tests check
/// both). Rows with a missing value (NaN) are left to
/// the library (they need `default_left`).
struct Flat<T> {
    p: usize,
    base: f64,
    scale: f64,
    nodes: Vec<FlatNode<T>>,
    /// Per node: the leaf's value (unused for inner nodes).
    leaf_value: Vec<f64>,
    /// Per node: its path's contributions, `path[path_at[i]..path_at[i + 1]]`.
    path_at: Vec<u32>,
    path: Vec<(u32, f64)>,
    /// Per tree: its root and its depth (edges on the longest path).
    roots: Vec<(u32, u32)>,
}

/// Rows walked together.
const BLOCK: usize = 16;

impl<T: Copy + PartialOrd + Default> Flat<T> {
    fn new(e: &TreeEnsemble, threshold: impl Fn(f64) -> T) -> anyhow::Result<Self> {
        let total = e.n_nodes();
        if total >= u32::MAX as usize / 2 {
            bail!("expected fewer than 2^31 nodes, found {total}");
        }
        let mut t = Flat {
            p: e.n_features(),
            base: e.base(),
            scale: e.scale(),
            nodes: Vec::with_capacity(total),
            leaf_value: Vec::with_capacity(total),
            path_at: Vec::with_capacity(total + 1),
            path: Vec::new(),
            roots: Vec::with_capacity(e.n_trees()),
        };
        for nodes in e.trees() {
            let off = t.nodes.len() as u32;
            // Per node: its parent (children always come after it).
            let mut parent = vec![u32::MAX; nodes.len()];
            let mut depth = vec![0u32; nodes.len()];
            for (i, n) in nodes.iter().enumerate() {
                let me = off + i as u32;
                t.leaf_value.push(n.value);
                if n.is_leaf() {
                    t.nodes.push(FlatNode {
                        threshold: T::default(),
                        feature: 0,
                        child: [me, me],
                    });
                } else {
                    t.nodes.push(FlatNode {
                        threshold: threshold(n.threshold),
                        feature: n.feature,
                        child: [off + n.left, off + n.right],
                    });
                    for c in [n.left, n.right] {
                        parent[c as usize] = i as u32;
                        depth[c as usize] = depth[i] + 1;
                    }
                }
            }
            for (i, n) in nodes.iter().enumerate() {
                t.path_at.push(t.path.len() as u32);
                if n.is_leaf() {
                    let mut edges = Vec::new();
                    let mut c = i;
                    while parent[c] != u32::MAX {
                        let up = parent[c] as usize;
                        edges.push((
                            nodes[up].feature,
                            t.scale * (nodes[c].value - nodes[up].value),
                        ));
                        c = up;
                    }
                    // One entry per feature (root first): fewer additions,
                    // none waiting on the one before.
                    for &(f, d) in edges.iter().rev() {
                        let start = t.path_at[t.path_at.len() - 1] as usize;
                        match t.path[start..].iter_mut().find(|e| e.0 == f) {
                            Some(e) => e.1 += d,
                            None => t.path.push((f, d)),
                        }
                    }
                }
            }
            t.roots
                .push((off, depth.iter().copied().max().unwrap_or(0)));
        }
        t.path_at.push(t.path.len() as u32);
        Ok(t)
    }

    /// Up to [`BLOCK`] rows (`x`: row-major, in `T`): predictions into
    /// `out`; with `contrib` (`rows × p`, zeroed here), contributions too.
    #[inline(always)]
    fn block(&self, x: &[T], out: &mut [f64], mut contrib: Option<&mut [f64]>) {
        let p = self.p;
        let n = out.len();
        let mut sum = [0.0f64; BLOCK];
        if let Some(c) = contrib.as_deref_mut() {
            c.fill(0.0);
        }
        for &(root, depth) in &self.roots {
            let mut idx = [root; BLOCK];
            for _ in 0..depth {
                for (i, row) in idx[..n].iter_mut().zip(x.chunks_exact(p)) {
                    let node = &self.nodes[*i as usize];
                    let v = row[node.feature as usize];
                    // Left iff v < threshold (no NaN here: `run` leaves those
                    // rows to the library); a leaf's children are itself.
                    *i = node.child[usize::from(v >= node.threshold)];
                }
            }
            for (r, (&leaf, s)) in idx[..n].iter().zip(&mut sum).enumerate() {
                let leaf = leaf as usize;
                *s += self.leaf_value[leaf];
                if let Some(c) = contrib.as_deref_mut() {
                    let (a, b) = (self.path_at[leaf] as usize, self.path_at[leaf + 1] as usize);
                    let row = &mut c[r * p..(r + 1) * p];
                    for &(f, d) in &self.path[a..b] {
                        row[f as usize] += d;
                    }
                }
            }
        }
        for (o, s) in out.iter_mut().zip(&sum) {
            *o = self.base + self.scale * s;
        }
    }
}

impl FlatTrees {
    fn new(e: &TreeEnsemble) -> anyhow::Result<FlatTrees> {
        Ok(match e.compare() {
            Compare::F32 => FlatTrees::F32(Flat::new(e, |t| t as f32)?),
            Compare::F64 => FlatTrees::F64(Flat::new(e, |t| t)?),
        })
    }

    /// Predictions of the row-major `rows` appended to `values`; with
    /// `k > 0`, each row's `k` largest contributions appended to `top`.
    /// `e`: the ensemble itself, for rows with a missing value.
    fn predict(
        &self,
        e: &TreeEnsemble,
        rows: &[f64],
        k: usize,
        values: &mut Vec<f64>,
        top: &mut Vec<(u32, f64)>,
    ) -> anyhow::Result<()> {
        match self {
            FlatTrees::F32(f) => run(f, e, rows, k, values, top, |v| v as f32),
            FlatTrees::F64(f) => run(f, e, rows, k, values, top, |v| v),
        }
    }
}

fn run<T: Copy + PartialOrd + Default>(
    f: &Flat<T>,
    e: &TreeEnsemble,
    rows: &[f64],
    k: usize,
    values: &mut Vec<f64>,
    top: &mut Vec<(u32, f64)>,
    convert: impl Fn(f64) -> T,
) -> anyhow::Result<()> {
    let p = f.p;
    let mut x: Vec<T> = Vec::with_capacity(BLOCK * p);
    let mut contrib = vec![0.0; if k > 0 { BLOCK * p } else { 0 }];
    let mut scratch = Vec::with_capacity(p);
    let mut out = [0.0f64; BLOCK];
    for chunk in rows.chunks(BLOCK * p) {
        let n = chunk.len() / p;
        if chunk.iter().any(|v| v.is_nan()) {
            // Missing values follow `default_left`: the library's walk.
            for r in chunk.chunks_exact(p) {
                values.push(e.predict_row(r).map_err(|e| anyhow!("{e}"))?);
                if k > 0 {
                    let c = &mut contrib[..p];
                    e.contributions(r, c).map_err(|e| anyhow!("{e}"))?;
                    top_k(c, k, top, &mut scratch);
                }
            }
            continue;
        }
        x.clear();
        x.extend(chunk.iter().map(|&v| convert(v)));
        let c = (k > 0).then(|| &mut contrib[..n * p]);
        f.block(&x, &mut out[..n], c);
        values.extend_from_slice(&out[..n]);
        if k > 0 {
            for c in contrib[..n * p].chunks_exact(p) {
                top_k(c, k, top, &mut scratch);
            }
        }
    }
    Ok(())
}

enum Predictor {
    /// `intercept + Σ coef_j x_j`; contributions `coef_j (x_j − reference_j)`.
    Linear { intercept: f64, coef: Vec<f64> },
    /// Random forest or XGBoost, flattened (see the module docs).
    Trees(TreeEnsemble, FlatTrees),
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
}

impl ServingData {
    /// The customers' rows at `sales.default_as_of`.
    pub fn compute(sales: &Sales) -> anyhow::Result<Self> {
        let as_of = sales.default_as_of;
        let rows = CustomerRows::compute(sales, as_of)
            .context("while computing customer features for lookups")?;
        Ok(ServingData {
            as_of,
            rows: Arc::new(rows),
        })
    }
}

/// Keep the `k` largest |value| of `c` (index, value), stable on ties.
fn top_k(c: &[f64], k: usize, out: &mut Vec<(u32, f64)>, scratch: &mut Vec<(u32, f64)>) {
    if k == 0 {
        return;
    }
    scratch.clear();
    scratch.extend(c.iter().enumerate().map(|(j, &v)| (j as u32, v)));
    // A total order (|value| descending, then feature index): the unstable
    // selection gives what a stable sort by |value| gives.
    let order =
        |a: &(u32, f64), b: &(u32, f64)| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0));
    if k < scratch.len() {
        scratch.select_nth_unstable_by(k - 1, order);
    }
    scratch[..k].sort_unstable_by(order);
    out.extend_from_slice(&scratch[..k]);
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
        let p = meta.feature_names.len();
        let predictor = match model {
            Regressor::Linear(m) => Predictor::Linear {
                intercept: m.intercept(),
                coef: m.coefficients(),
            },
            Regressor::RandomForest(m) => {
                let e = m.ensemble().clone();
                let flat = FlatTrees::new(&e)?;
                Predictor::Trees(e, flat)
            }
            Regressor::Xgboost(m) => {
                let e = m
                    .to_ensemble()
                    .with_context(|| format!("while reading the booster of {}", path.display()))?;
                let flat = FlatTrees::new(&e)?;
                Predictor::Trees(e, flat)
            }
        };
        let width = match &predictor {
            Predictor::Linear { coef, .. } => coef.len(),
            Predictor::Trees(e, _) => e.n_features(),
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
                match reuse.filter(|t| t.categories == meta.categories && t.as_of == d.as_of) {
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
        })
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
            Predictor::Trees(e, _) => Some(e),
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
            Predictor::Trees(e, flat) => {
                let mut values = Vec::with_capacity(n);
                flat.predict(e, rows, k, &mut values, &mut contributions)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use analytics_lib::features::FeatureMatrix;
    use analytics_lib::models::{ForestParams, XgbParams};

    fn data(n: usize) -> (FeatureMatrix, Vec<f64>) {
        let p = 5;
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let mut v = Vec::with_capacity(n * p);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let r: Vec<f64> = (0..p)
                .map(|j| (next() * 10.0 * (j + 1) as f64).round() / 4.0)
                .collect();
            y.push(r[0] * 2.0 + r[1] * r[2] / 10.0 + (r[3] > 5.0) as u8 as f64 * 3.0 + next());
            v.extend_from_slice(&r);
        }
        let names = (0..p).map(|j| format!("f{j}")).collect();
        (FeatureMatrix::new(names, v).expect("x"), y)
    }

    /// The block walk equals the library's row walk: values bit for bit,
    /// the top contributions (all of them, ties in feature order) to rounding.
    #[test]
    fn flat_trees_equal_the_library() {
        let (x, y) = data(2_000);
        let xgb = XgbParams::new()
            .rounds(30)
            .max_depth(5)
            .threads(Some(1))
            .fit(&x, &y)
            .expect("xgb")
            .to_ensemble()
            .expect("ensemble");
        let forest = ForestParams::new()
            .n_trees(12)
            .max_depth(Some(7))
            .fit(&x, &y)
            .expect("forest")
            .ensemble()
            .clone();
        let p = x.n_cols();
        // Some rows hit thresholds exactly (training values), some have NaN.
        let mut rows = x.values()[..301 * p].to_vec();
        rows[7] = f64::NAN;
        rows[p * 10 + 2] = f64::NAN;
        for e in [xgb, forest] {
            let flat = FlatTrees::new(&e).expect("flat");
            let (mut values, mut top) = (Vec::new(), Vec::new());
            flat.predict(&e, &rows, p, &mut values, &mut top)
                .expect("predict");
            assert_eq!(values.len(), 301);
            let mut c = vec![0.0; p];
            let mut want = Vec::new();
            let mut scratch = Vec::new();
            for (i, r) in rows.chunks(p).enumerate() {
                assert_eq!(
                    values[i].to_bits(),
                    e.predict_row(r).expect("row").to_bits(),
                    "row {i}"
                );
                e.contributions(r, &mut c).expect("contributions");
                top_k(&c, p, &mut want, &mut scratch);
            }
            // Same features in the same order; values to rounding (a
            // feature's edges on one path are added up first).
            assert_eq!(top.len(), want.len());
            for (i, (a, b)) in top.iter().zip(&want).enumerate() {
                assert!(
                    a.0 == b.0 && (a.1 - b.1).abs() <= 1e-12 * (1.0 + b.1.abs()),
                    "entry {i} (row {}): {a:?} vs library {b:?}",
                    i / p
                );
            }
            // Without contributions: the same values.
            let (mut v2, mut t2) = (Vec::new(), Vec::new());
            flat.predict(&e, &rows, 0, &mut v2, &mut t2)
                .expect("predict");
            assert!(t2.is_empty());
            assert_eq!(v2, values);
        }
    }

    #[test]
    fn top_k_keeps_the_largest_magnitudes_in_feature_order_on_ties() {
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        top_k(&[1.0, -3.0, 2.0, 3.0, 0.0], 3, &mut out, &mut scratch);
        assert_eq!(out, vec![(1, -3.0), (3, 3.0), (2, 2.0)]);
    }
}
