//! A trained booster read into the flat [`TreeEnsemble`], so that serving
//! predicts and attributes with plain Rust loops (no foreign call, no lock,
//! no per-request matrix).
//!
//! Source: XGBoost's own JSON model (`XGBoosterSaveModelToBuffer` with
//! `{"format": "json"}`). Per tree it reads `left_children`,
//! `right_children` (`-1` at a leaf), `split_indices`, `split_conditions`
//! (the threshold of a split, the output of a leaf, learning rate
//! included), `default_left` (where a missing value goes) and `sum_hessian`
//! (the cover: rows for squared error). The bias is
//! `learner_model_param.base_score` (XGBoost 3 writes it as a string like
//! `"[1.2345E2]"`). Splits compare in `f32` ([`Compare::F32`], XGBoost's
//! rule) and trees add up (`scale = 1`).
//!
//! Only what `XgbModel` trains is accepted: a `gbtree` booster, objective
//! `reg:squarederror`, one output, numerical splits. Anything else is an
//! error naming what was found. Nodes are renumbered from the root, so
//! pruned (unreachable) nodes XGBoost may keep in its arrays are dropped.

use serde_json::Value;

use super::algorithm::XgbModel;
use crate::features::FeatureMatrix;
use crate::models::errors::{ModelError, Result};
use crate::models::trees::{Compare, LEAF, Node, TreeEnsemble};

const NAME: &str = "xgboost";

fn load_err(reason: impl Into<String>) -> ModelError {
    ModelError::Load {
        model: NAME,
        cause: reason.into().into(),
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value> {
    let mut cur = v;
    for (i, key) in path.iter().enumerate() {
        cur = cur.get(key).ok_or_else(|| {
            load_err(format!(
                "expected `{}` in the booster's JSON model; found no such field",
                path[..=i].join(".")
            ))
        })?;
    }
    Ok(cur)
}

/// A number that XGBoost may write as a JSON number or a string (its
/// parameters are strings; base_score may be `"[1.23E2]"`).
fn number(v: &Value, what: &str) -> Result<f64> {
    let parsed = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let t = s.trim().trim_start_matches('[').trim_end_matches(']');
            // A vector base_score with one value only (one target).
            (!t.contains(','))
                .then(|| t.trim().parse::<f64>().ok())
                .flatten()
        }
        Value::Array(a) if a.len() == 1 => a[0].as_f64(),
        _ => None,
    };
    parsed.filter(|x| x.is_finite()).ok_or_else(|| {
        load_err(format!(
            "expected {what} to be one finite number; found {v}"
        ))
    })
}

fn array<'a>(tree: &'a Value, t: usize, field: &str, len: usize) -> Result<&'a [Value]> {
    let a = tree.get(field).and_then(Value::as_array).ok_or_else(|| {
        load_err(format!(
            "tree {t}: expected an array `{field}`; found {}",
            tree.get(field)
                .map_or("nothing".to_string(), |v| short(v.to_string()))
        ))
    })?;
    if a.len() != len {
        return Err(load_err(format!(
            "tree {t}: expected `{field}` to have {len} entries (one per node); found {}",
            a.len()
        )));
    }
    Ok(a)
}

fn short(mut s: String) -> String {
    if s.len() > 80 {
        let mut cut = 80;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn int_at(a: &[Value], i: usize, t: usize, field: &str) -> Result<i64> {
    a[i].as_i64().ok_or_else(|| {
        load_err(format!(
            "tree {t}, node {i}: expected an integer in `{field}`; found {}",
            a[i]
        ))
    })
}

fn float_at(a: &[Value], i: usize, t: usize, field: &str) -> Result<f64> {
    a[i].as_f64().ok_or_else(|| {
        load_err(format!(
            "tree {t}, node {i}: expected a number in `{field}`; found {}",
            a[i]
        ))
    })
}

/// One XGBoost tree as [`Node`]s, renumbered in depth-first order from the
/// root (children always after their parent).
fn read_tree(tree: &Value, t: usize, n_features: usize) -> Result<Vec<Node>> {
    let n = tree
        .get("left_children")
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or_else(|| load_err(format!("tree {t}: expected an array `left_children`")))?;
    if n == 0 {
        return Err(load_err(format!(
            "tree {t}: expected at least one node; found none"
        )));
    }
    let left = array(tree, t, "left_children", n)?;
    let right = array(tree, t, "right_children", n)?;
    let feature = array(tree, t, "split_indices", n)?;
    let cond = array(tree, t, "split_conditions", n)?;
    let default_left = array(tree, t, "default_left", n)?;
    let hess = array(tree, t, "sum_hessian", n)?;
    if let Some(types) = tree.get("split_type").and_then(Value::as_array)
        && let Some(i) = types.iter().position(|v| v.as_i64() != Some(0))
    {
        return Err(load_err(format!(
            "tree {t}, node {i}: expected numerical splits (split_type 0); found split_type {}",
            types[i]
        )));
    }
    let mut out: Vec<Node> = Vec::with_capacity(n);
    // (old index, index of the parent's slot in `out` and which side).
    let mut stack: Vec<(usize, Option<(usize, bool)>)> = vec![(0, None)];
    let mut visited = vec![false; n];
    while let Some((i, parent)) = stack.pop() {
        if visited[i] {
            return Err(load_err(format!(
                "tree {t}: expected a tree; found node {i} reached twice"
            )));
        }
        visited[i] = true;
        let new = out.len();
        if let Some((p, is_left)) = parent {
            if is_left {
                out[p].left = new as u32;
            } else {
                out[p].right = new as u32;
            }
        }
        let cover = float_at(hess, i, t, "sum_hessian")?;
        let (l, r) = (
            int_at(left, i, t, "left_children")?,
            int_at(right, i, t, "right_children")?,
        );
        let value = float_at(cond, i, t, "split_conditions")?;
        if l == -1 && r == -1 {
            out.push(Node::leaf(value, cover));
            continue;
        }
        let child = |c: i64, side: &str| -> Result<usize> {
            usize::try_from(c).ok().filter(|&c| c < n).ok_or_else(|| {
                load_err(format!(
                    "tree {t}, node {i}: expected a {side} child in 0..{n} (or -1 at a leaf); found {c}"
                ))
            })
        };
        let (l, r) = (child(l, "left")?, child(r, "right")?);
        let f = int_at(feature, i, t, "split_indices")?;
        let f = u32::try_from(f)
            .ok()
            .filter(|&f| (f as usize) < n_features)
            .ok_or_else(|| {
                load_err(format!(
                    "tree {t}, node {i}: expected a feature index below {n_features}; found {f}"
                ))
            })?;
        let dl = match &default_left[i] {
            Value::Bool(b) => *b,
            v => match v.as_i64() {
                Some(0) => false,
                Some(1) => true,
                _ => {
                    return Err(load_err(format!(
                        "tree {t}, node {i}: expected 0/1 in `default_left`; found {v}"
                    )));
                }
            },
        };
        let mut node = Node::split(f, value, LEAF, LEAF, cover);
        node.default_left = dl;
        out.push(node);
        // Right pushed first: the left subtree is laid out right after its parent.
        stack.push((r, Some((new, false))));
        stack.push((l, Some((new, true))));
    }
    Ok(out)
}

/// The ensemble of a booster's JSON model (see the module documentation).
pub fn ensemble_from_json(json: &[u8], n_features: usize) -> Result<TreeEnsemble> {
    let v: Value = serde_json::from_slice(json).map_err(|e| {
        load_err(format!(
            "expected XGBoost's JSON model; found {} bytes that are not JSON: {e}",
            json.len()
        ))
    })?;
    let learner = at(&v, &["learner"])?;
    let booster = at(learner, &["gradient_booster", "name"])?;
    if booster.as_str() != Some("gbtree") {
        return Err(load_err(format!(
            "expected a `gbtree` booster; found {booster}"
        )));
    }
    if let Some(obj) = learner.get("objective").and_then(|o| o.get("name"))
        && obj.as_str() != Some("reg:squarederror")
    {
        return Err(load_err(format!(
            "expected the objective `reg:squarederror` (identity link); found {obj}"
        )));
    }
    let param = at(learner, &["learner_model_param"])?;
    for key in ["num_class", "num_target"] {
        if let Some(x) = param.get(key) {
            let k = number(x, &format!("learner_model_param.{key}"))?;
            if k > 1.0 {
                return Err(load_err(format!("expected one output; found {key} = {k}")));
            }
        }
    }
    if let Some(nf) = param.get("num_feature") {
        let nf = number(nf, "learner_model_param.num_feature")?;
        if nf != n_features as f64 {
            return Err(load_err(format!(
                "expected {n_features} features; found num_feature = {nf}"
            )));
        }
    }
    let base = number(
        at(param, &["base_score"])?,
        "learner_model_param.base_score",
    )?;
    let trees = at(learner, &["gradient_booster", "model", "trees"])?
        .as_array()
        .ok_or_else(|| load_err("expected `gradient_booster.model.trees` to be an array"))?;
    let trees = trees
        .iter()
        .enumerate()
        .map(|(t, tree)| read_tree(tree, t, n_features))
        .collect::<Result<Vec<_>>>()?;
    TreeEnsemble::new(n_features, base, 1.0, Compare::F32, trees)
}

/// XGBoost refuses `[`, `]` and `<` in feature names (as `algorithm.rs`).
fn xgb_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| n.replace(['[', ']', '<'], "_"))
        .collect()
}

impl XgbModel {
    /// The booster as a [`TreeEnsemble`]: its predictions equal
    /// [`XgbModel::predict`] (to f32 rounding of XGBoost's sum) and its
    /// contributions equal XGBoost's `approx_contribs`.
    pub fn to_ensemble(&self) -> Result<TreeEnsemble> {
        let json = self
            .booster()
            .save_buffer(false)
            .map_err(|e| load_err(format!("XGBoost could not write its JSON model: {e}")))?;
        ensemble_from_json(&json, self.n_features())
    }

    /// XGBoost's own Saabas contributions (`approx_contribs`): per row,
    /// `n_features` values then the bias, row-major. For checking
    /// [`TreeEnsemble::contributions`] against the source.
    pub fn approx_contributions(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        self.booster_contributions(x, xgb::PredictType::PredictApproximateContributions)
    }

    /// XGBoost's exact TreeSHAP values, laid out as
    /// [`XgbModel::approx_contributions`].
    pub fn shap_contributions(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        self.booster_contributions(x, xgb::PredictType::PredictContribitions)
    }

    fn booster_contributions(&self, x: &FeatureMatrix, kind: xgb::PredictType) -> Result<Vec<f64>> {
        let err = |e: xgb::XGBError| ModelError::Predict {
            model: NAME,
            cause: e.into(),
        };
        if x.n_cols() != self.n_features() {
            return Err(ModelError::Shape {
                model: NAME,
                what: "features",
                expected: format!("{} columns", self.n_features()),
                found: format!("{} columns", x.n_cols()),
            });
        }
        let values: Vec<f32> = x.values().iter().map(|&v| v as f32).collect();
        let mut d = xgb::DMatrix::from_dense(&values, x.n_rows()).map_err(err)?;
        let names = xgb_names(x.names());
        d.set_feature_names(&names.iter().map(String::as_str).collect::<Vec<_>>())
            .map_err(err)?;
        let config = xgb::PredictConfig {
            _type: kind,
            ..Default::default()
        };
        let (out, _shape) = self
            .booster()
            .predict_matrix(&d, &config.as_json())
            .map_err(err)?;
        let want = x.n_rows() * (self.n_features() + 1);
        if out.len() != want {
            return Err(ModelError::Predict {
                model: NAME,
                cause: format!("expected {want} contributions; found {}", out.len()).into(),
            });
        }
        Ok(out.into_iter().map(f64::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::XgbParams;

    /// A smooth target with interactions, missing-free, on 6 features.
    fn data(n: usize, seed: u64) -> (FeatureMatrix, Vec<f64>) {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let p = 6;
        let mut values = Vec::with_capacity(n * p);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let r: Vec<f64> = (0..p).map(|j| next() * (1.0 + j as f64 * 10.0)).collect();
            y.push(3.0 * r[0] + r[1] * r[2] / 20.0 + (r[3] > 15.0) as u8 as f64 * 7.0 + next());
            values.extend_from_slice(&r);
        }
        let names = (0..p).map(|j| format!("f{j}")).collect();
        (FeatureMatrix::new(names, values).expect("matrix"), y)
    }

    fn model() -> (XgbModel, FeatureMatrix) {
        let (x, y) = data(3_000, 7);
        let m = XgbParams::new()
            .rounds(40)
            .max_depth(4)
            .seed(1)
            .threads(Some(1))
            .fit(&x, &y)
            .expect("fit");
        let (test, _) = data(500, 99);
        (m, test)
    }

    #[test]
    fn predictions_equal_the_boosters() {
        let (m, x) = model();
        let e = m.to_ensemble().expect("ensemble");
        assert_eq!(e.n_trees(), 40);
        assert_eq!(e.compare(), Compare::F32);
        let ours = e.predict(x.values()).expect("predict");
        let theirs = m.predict(&x).expect("xgb predict");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3_f64.max(1e-4 * b.abs()),
                "row {i}: ours {a}, XGBoost {b}"
            );
        }
        // And on the training rows' exact thresholds (the f32 rule matters there).
        let (train, _) = data(3_000, 7);
        let ours = e.predict(train.values()).expect("predict");
        let theirs = m.predict(&train).expect("xgb predict");
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-3, "largest difference {worst}");
    }

    #[test]
    fn contributions_equal_xgboosts_approx_contribs() {
        let (m, x) = model();
        let e = m.to_ensemble().expect("ensemble");
        let p = x.n_cols();
        let theirs = m.approx_contributions(&x).expect("approx");
        let shap = m.shap_contributions(&x).expect("shap");
        let mut c = vec![0.0; p];
        let mut sign_agree = 0usize;
        for i in 0..x.n_rows() {
            let bias = e.contributions(x.row(i), &mut c).expect("contrib");
            let t = &theirs[i * (p + 1)..(i + 1) * (p + 1)];
            assert!(
                (bias - t[p]).abs() <= 1e-3,
                "row {i}: bias {bias} vs {}",
                t[p]
            );
            for (j, (ours, theirs)) in c.iter().zip(&t[..p]).enumerate() {
                assert!(
                    (ours - theirs).abs() <= 1e-3_f64.max(1e-4 * theirs.abs()),
                    "row {i}, feature {j}: ours {ours} vs XGBoost {theirs}"
                );
            }
            let pred = e.predict_row(x.row(i)).expect("row");
            assert!((bias + c.iter().sum::<f64>() - pred).abs() < 1e-9);
            // The dominant feature (f0) has the sign TreeSHAP gives it.
            let s = &shap[i * (p + 1)..(i + 1) * (p + 1)];
            sign_agree += usize::from((c[0] >= 0.0) == (s[0] >= 0.0));
        }
        assert!(
            sign_agree * 10 >= x.n_rows() * 9,
            "{sign_agree} of {}",
            x.n_rows()
        );
    }

    #[test]
    fn malformed_json_models_are_refused_with_the_reason() {
        let (m, _) = model();
        let json = m.booster().save_buffer(false).expect("json");
        let e = ensemble_from_json(&json, 5).expect_err("width");
        assert!(e.to_string().contains("expected 5 features"), "{e}");
        let e = ensemble_from_json(b"{\"learner\": 1", 6).expect_err("not json");
        assert!(e.to_string().contains("not JSON"), "{e}");
        let mut v: Value = serde_json::from_slice(&json).expect("json");
        v["learner"]["gradient_booster"]["model"]["trees"][3]["left_children"][0] = 10_000.into();
        let e = ensemble_from_json(&serde_json::to_vec(&v).expect("bytes"), 6).expect_err("child");
        assert!(e.to_string().contains("tree 3, node 0"), "{e}");
        let mut v: Value = serde_json::from_slice(&json).expect("json");
        v["learner"]["learner_model_param"]["base_score"] = "[1E0,2E0]".into();
        assert!(ensemble_from_json(&serde_json::to_vec(&v).expect("bytes"), 6).is_err());
        assert_eq!(number(&"[1.5E2]".into(), "x").expect("n"), 150.0);
        assert_eq!(number(&"3".into(), "x").expect("n"), 3.0);
    }
}
